import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeySlot, SlotSecret } from './key-slots.ts';
import { slotAad, type KeySource } from './key-source.ts';

const scryptAsync = promisify(scrypt) as (password: string | Buffer, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/**
 * scrypt's cost for new passphrase slots: N = 2^17, r = 8, p = 1 (128 MiB, OWASP's recommendation; ~0.6 s a try here,
 * which is what it costs a guesser too). Each slot records its own parameters. BAK_TEST_SCRYPT_LOG_N lowers N for new
 * slots, for test suites only: such a slot guards its passphrase far less.
 */
const DEFAULT_LOG_N = 17;
const R = 8;
const P = 1;

function newSlotLogN(env: NodeJS.ProcessEnv): number {
  const raw = env.BAK_TEST_SCRYPT_LOG_N;
  if (raw === undefined || raw === '') return DEFAULT_LOG_N;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 10 || n > 22) throw new Error(`BAK_TEST_SCRYPT_LOG_N must be an integer from 10 to 22, not ${JSON.stringify(raw)}`);
  return n;
}

async function deriveKey(passphrase: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  // scrypt needs 128 · N · r bytes; Node's default cap (32 MiB) is below the default cost.
  return scryptAsync(passphrase.normalize('NFC'), salt, 32, { N: 2 ** logN, r, p, maxmem: 129 * 2 ** logN * r + 1024 * 1024 });
}

/** A passphrase, read once from where `label` says (see sources.ts), wrapping the master key through scrypt and AES-256-GCM. */
export class PassphraseSource implements KeySource {
  readonly kind = 'passphrase' as const;
  readonly canWrap = true;
  readonly label: string;
  private readonly read: () => Promise<string>;
  private value: Promise<string> | undefined;
  private readonly env: NodeJS.ProcessEnv;

  constructor(label: string, read: () => Promise<string>, env: NodeJS.ProcessEnv = process.env) {
    this.label = label;
    this.read = read;
    this.env = env;
  }

  private passphrase(): Promise<string> {
    this.value ??= this.read().then((text) => {
      if (text === '') throw new Error(`the ${this.label} is empty`);
      return text;
    });
    return this.value;
  }

  async wrap(master: Buffer, repositoryId: string, slotId: string): Promise<SlotSecret> {
    const logN = newSlotLogN(this.env);
    const salt = randomBytes(16);
    const kek = await deriveKey(await this.passphrase(), salt, logN, R, P);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', kek, nonce);
    cipher.setAAD(slotAad(repositoryId, slotId));
    const wrapped = Buffer.concat([cipher.update(master), cipher.final(), cipher.getAuthTag()]);
    return { kind: 'passphrase', kdf: { name: 'scrypt', logN, r: R, p: P, salt: salt.toString('base64') }, nonce: nonce.toString('base64'), wrapped: wrapped.toString('base64') };
  }

  async unwrap(slot: KeySlot, repositoryId: string): Promise<Buffer> {
    if (slot.kind !== 'passphrase') throw new Error(`not a passphrase slot`);
    const { logN, r, p, salt } = slot.kdf;
    const kek = await deriveKey(await this.passphrase(), Buffer.from(salt, 'base64'), logN, r, p);
    const wrapped = Buffer.from(slot.wrapped, 'base64');
    if (wrapped.length < 17) throw new Error('the slot is damaged (its wrapped key is too short)');
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(slot.nonce, 'base64'));
    decipher.setAAD(slotAad(repositoryId, slot.id));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
    try {
      return Buffer.concat([decipher.update(wrapped.subarray(0, wrapped.length - 16)), decipher.final()]);
    } catch {
      throw new Error('wrong passphrase (or a damaged slot)');
    }
  }
}
