import { hostname } from 'node:os';
import { z } from 'zod';
import { BakError, ConfigError } from '../../errors.ts';
import { isNotFound, type ObjectStore } from '../../storage/object-store.ts';
import { describeZodError } from '../../util/validation.ts';

/**
 * Key slots: the repository's master key, wrapped once per key source, each in an object of its own under `keys/`
 * (so adding or removing one never rewrites another, and two machines adding slots at once do not collide). A slot
 * holds nothing usable without its source: a passphrase-derived key, or a KMS key bak never sees.
 */
export const KEYS_PREFIX = 'keys/';

const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64');

const common = {
  format: z.literal('bak-key'),
  version: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{16}$/, 'a slot id is 16 hex digits'),
  createdAt: z.iso.datetime(),
  host: z.string(),
};

export const passphraseSlotSchema = z
  .object({
    ...common,
    kind: z.literal('passphrase'),
    /** scrypt's parameters, recorded so that a later default never locks this slot out. */
    kdf: z.object({ name: z.literal('scrypt'), logN: z.number().int().min(10).max(22), r: z.number().int().min(1).max(32), p: z.number().int().min(1).max(16), salt: base64 }).strict(),
    /** AES-256-GCM of the master key under the derived key: nonce, then ciphertext and tag. */
    nonce: base64,
    wrapped: base64,
  })
  .strict();

export const awsKmsSlotSchema = z
  .object({
    ...common,
    kind: z.literal('aws-kms'),
    /** The key as it was named (an id, an ARN, or an alias). */
    keyId: z.string().min(1),
    /** The key's ARN as KMS answered it, which Decrypt is held to. */
    keyArn: z.string().min(1),
    region: z.string().optional(),
    /** KMS's CiphertextBlob, made with the encryption context {"bak-repository": <repository id>}. */
    wrapped: base64,
  })
  .strict();

export const gcpKmsSlotSchema = z
  .object({
    ...common,
    kind: z.literal('gcp-kms'),
    /** projects/…/locations/…/keyRings/…/cryptoKeys/… */
    keyName: z.string().min(1),
    /** Cloud KMS's ciphertext, made with the repository id as additional authenticated data. */
    wrapped: base64,
  })
  .strict();

export const keySlotSchema = z.discriminatedUnion('kind', [passphraseSlotSchema, awsKmsSlotSchema, gcpKmsSlotSchema]);
export type KeySlot = z.infer<typeof keySlotSchema>;
export type PassphraseSlot = z.infer<typeof passphraseSlotSchema>;
export type AwsKmsSlot = z.infer<typeof awsKmsSlotSchema>;
export type GcpKmsSlot = z.infer<typeof gcpKmsSlotSchema>;
export type SlotKind = KeySlot['kind'];

/** The fields a slot's key source fills in; `slotFields` adds the rest. */
export type SlotSecret = Omit<PassphraseSlot, keyof typeof common> | Omit<AwsKmsSlot, keyof typeof common> | Omit<GcpKmsSlot, keyof typeof common>;

export function slotFields(id: string, secret: SlotSecret): KeySlot {
  return keySlotSchema.parse({ format: 'bak-key', version: 1, id, createdAt: new Date().toISOString(), host: hostname(), ...secret });
}

function slotKey(id: string): string {
  return `${KEYS_PREFIX}${id}.json`;
}

export async function writeSlot(store: ObjectStore, slot: KeySlot): Promise<void> {
  const { created } = await store.put(slotKey(slot.id), Buffer.from(`${JSON.stringify(slot, null, 2)}\n`), { ifAbsent: true });
  if (!created) throw new BakError(`key slot ${slot.id} already exists`);
}

export async function deleteSlot(store: ObjectStore, id: string): Promise<void> {
  await store.delete(slotKey(id));
}

/** Every slot, or the reason one cannot be read; a malformed slot hides no other. */
export async function readSlots(store: ObjectStore): Promise<{ slots: KeySlot[]; unreadable: Array<{ key: string; problem: string }> }> {
  const slots: KeySlot[] = [];
  const unreadable: Array<{ key: string; problem: string }> = [];
  for await (const obj of store.list(KEYS_PREFIX)) {
    if (!obj.key.endsWith('.json')) continue;
    let raw: Buffer;
    try {
      raw = await store.getBuffer(obj.key);
    } catch (err) {
      if (isNotFound(err)) continue; // removed since the listing
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      unreadable.push({ key: obj.key, problem: 'not valid JSON' });
      continue;
    }
    const parsed = keySlotSchema.safeParse(json);
    if (parsed.success) slots.push(parsed.data);
    else unreadable.push({ key: obj.key, problem: describeZodError(parsed.error, json).replace(/\n/g, '; ') });
  }
  return { slots, unreadable };
}

export function assertSlotId(id: string): void {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new ConfigError(`"${id}" is not a key slot id (16 hex digits, as bak key list shows)`);
}
