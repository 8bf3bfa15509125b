// Google Cloud KMS key slots at the client boundary (no emulator exists): GcpKmsSource against a fake
// KeyManagementServiceClient that behaves as Cloud KMS does where bak depends on it: it really encrypts (AES-256-GCM
// under a key only the fake holds, one per crypto key), binds the additional authenticated data, refuses a ciphertext
// of another key or another AAD, and answers unknown keys and denied calls with gRPC-style errors. Not verified
// against a server.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.ts';
import { GcpKmsSource, type GcpKmsClient, type GcpKmsClientFactory, type GcpKmsSettings } from '../../src/repository/encryption/gcp-kms.ts';
import { slotFields, type KeySlot } from '../../src/repository/encryption/key-slots.ts';
import { NoUsableKeyError } from '../../src/repository/encryption/unlock.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';

const KEY = 'projects/bak-test/locations/europe-west1/keyRings/bak/cryptoKeys/repo';
const OTHER_KEY = 'projects/bak-test/locations/europe-west1/keyRings/bak/cryptoKeys/other';
const REPO_ID = '7d0c3f52-7b4e-4c43-9a59-0d6c1b2a9e11';

type Call = { op: 'encrypt' | 'decrypt'; name: string; data: Buffer; aad: Buffer };

/** gRPC's error shape: a numeric code and "<code> <STATUS>: <details>" as the message. */
function grpcError(code: number, status: string, details: string): Error {
  return Object.assign(new Error(`${code} ${status}: ${details}`), { code, details });
}

/**
 * Cloud KMS as far as bak uses it: symmetric crypto keys, each an AES-256 key the fake keeps to itself. encrypt answers
 * the ciphertext and the key version's name; decrypt needs the same key and the same additional authenticated data.
 */
class FakeCloudKms implements GcpKmsClient {
  readonly calls: Call[] = [];
  readonly settingsSeen: GcpKmsSettings[] = [];
  private readonly keys = new Map<string, Buffer>();
  /** Set to make every call fail with this error, as a denied permission does. */
  failWith: Error | undefined;

  constructor(...names: string[]) {
    for (const name of names) this.keys.set(name, randomBytes(32));
  }

  readonly factory: GcpKmsClientFactory = async (settings) => {
    this.settingsSeen.push(settings);
    return this;
  };

  private key(name: string): Buffer {
    const key = this.keys.get(name);
    if (!key) throw grpcError(5, 'NOT_FOUND', `${name} not found.`);
    return key;
  }

  async encrypt(request: { name: string; plaintext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ ciphertext: Uint8Array; name: string }]> {
    this.calls.push({ op: 'encrypt', name: request.name, data: Buffer.from(request.plaintext), aad: Buffer.from(request.additionalAuthenticatedData) });
    if (this.failWith) throw this.failWith;
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key(request.name), nonce);
    cipher.setAAD(request.additionalAuthenticatedData);
    const body = Buffer.concat([cipher.update(request.plaintext), cipher.final()]);
    // The library answers bytes fields as Uint8Array (or base64 strings with some options): a Uint8Array here.
    return [{ ciphertext: new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()])), name: `${request.name}/cryptoKeyVersions/1` }];
  }

  async decrypt(request: { name: string; ciphertext: Buffer; additionalAuthenticatedData: Buffer }): Promise<[{ plaintext: Uint8Array | string }]> {
    this.calls.push({ op: 'decrypt', name: request.name, data: Buffer.from(request.ciphertext), aad: Buffer.from(request.additionalAuthenticatedData) });
    if (this.failWith) throw this.failWith;
    const key = this.key(request.name);
    const c = request.ciphertext;
    if (c.length < 28) throw grpcError(3, 'INVALID_ARGUMENT', 'Decryption failed: the ciphertext is invalid.');
    const decipher = createDecipheriv('aes-256-gcm', key, c.subarray(0, 12));
    decipher.setAAD(request.additionalAuthenticatedData);
    decipher.setAuthTag(c.subarray(c.length - 16));
    try {
      return [{ plaintext: Buffer.concat([decipher.update(c.subarray(12, c.length - 16)), decipher.final()]).toString('base64') }];
    } catch {
      throw grpcError(3, 'INVALID_ARGUMENT', "Decryption failed: verify that 'name' refers to the correct CryptoKey.");
    }
  }
}

/** A slot as Repository writes it, from what wrap gave. */
async function wrapToSlot(source: GcpKmsSource, master: Buffer, repositoryId = REPO_ID): Promise<KeySlot> {
  return slotFields(randomBytes(8).toString('hex'), await source.wrap(master, repositoryId));
}

describe('GcpKmsSource at the client boundary', () => {
  it('wrap sends the key name, the master key and the repository id as AAD; the slot holds the ciphertext and the key', async () => {
    const fake = new FakeCloudKms(KEY);
    const master = randomBytes(32);
    const source = new GcpKmsSource({ keyName: KEY, apiEndpoint: 'kms.example:443', projectId: 'bak-test' }, fake.factory);
    expect(source.label).toBe(`Google Cloud KMS key ${KEY}`);
    const slot = await wrapToSlot(source, master);

    expect(fake.settingsSeen).toEqual([{ keyName: KEY, apiEndpoint: 'kms.example:443', projectId: 'bak-test' }]);
    expect(fake.calls).toHaveLength(1);
    const [call] = fake.calls;
    expect(call!.op).toBe('encrypt');
    expect(call!.name).toBe(KEY);
    expect(call!.data.equals(master)).toBe(true);
    expect(call!.aad.toString('utf8')).toBe(REPO_ID);

    expect(slot.kind).toBe('gcp-kms');
    if (slot.kind !== 'gcp-kms') return;
    expect(slot.keyName).toBe(KEY);
    const wrapped = Buffer.from(slot.wrapped, 'base64');
    expect(wrapped.length).toBe(12 + 32 + 16);
    expect(wrapped.includes(master)).toBe(false);
  });

  it("unwrap sends the slot's key name and ciphertext with the same AAD, and returns the master key", async () => {
    const fake = new FakeCloudKms(KEY);
    const master = randomBytes(32);
    const slot = await wrapToSlot(new GcpKmsSource({ keyName: KEY }, fake.factory), master);
    if (slot.kind !== 'gcp-kms') throw new Error('not a gcp-kms slot');

    // Opening needs no key name in the settings: the slot names its key.
    const opener = new GcpKmsSource({}, fake.factory);
    const back = await opener.unwrap(slot, REPO_ID);
    expect(back.equals(master)).toBe(true);
    const decrypt = fake.calls.find((c) => c.op === 'decrypt')!;
    expect(decrypt.name).toBe(KEY);
    expect(decrypt.data.equals(Buffer.from(slot.wrapped, 'base64'))).toBe(true);
    expect(decrypt.aad.toString('utf8')).toBe(REPO_ID);
  });

  it("a slot opened for another repository id fails: the AAD is bound (KMS's message, naming the key)", async () => {
    const fake = new FakeCloudKms(KEY);
    const slot = await wrapToSlot(new GcpKmsSource({ keyName: KEY }, fake.factory), randomBytes(32));
    await expect(new GcpKmsSource({}, fake.factory).unwrap(slot, 'another-repository-id')).rejects.toThrow(
      `Google Cloud KMS refused to decrypt with ${KEY} (3 INVALID_ARGUMENT: Decryption failed: verify that 'name' refers to the correct CryptoKey.)`,
    );
  });

  it('a client error becomes an error naming the key and the message', async () => {
    const fake = new FakeCloudKms(KEY);
    const slot = await wrapToSlot(new GcpKmsSource({ keyName: KEY }, fake.factory), randomBytes(32));
    fake.failWith = new Error('7 PERMISSION_DENIED: Permission denied on resource');
    await expect(new GcpKmsSource({ keyName: KEY }, fake.factory).wrap(randomBytes(32), REPO_ID)).rejects.toThrow(
      `Google Cloud KMS refused to encrypt with ${KEY} (7 PERMISSION_DENIED: Permission denied on resource)`,
    );
    await expect(new GcpKmsSource({}, fake.factory).unwrap(slot, REPO_ID)).rejects.toThrow(`Google Cloud KMS refused to decrypt with ${KEY} (7 PERMISSION_DENIED: Permission denied on resource)`);
    // A key the service does not know.
    fake.failWith = undefined;
    await expect(new GcpKmsSource({ keyName: OTHER_KEY }, fake.factory).wrap(randomBytes(32), REPO_ID)).rejects.toThrow(`Google Cloud KMS refused to encrypt with ${OTHER_KEY} (5 NOT_FOUND: ${OTHER_KEY} not found.)`);
  });

  it('wrap without a key name says where to give one, and calls nothing', async () => {
    const fake = new FakeCloudKms(KEY);
    const source = new GcpKmsSource({}, fake.factory);
    expect(source.label).toBe('Google Cloud KMS');
    await expect(source.wrap(randomBytes(32), REPO_ID)).rejects.toThrow('no Google Cloud KMS key to wrap with: give one (--gcp-kms-key, or encryption.gcpKms.keyName in the config)');
    expect(fake.calls).toEqual([]);
    expect(fake.settingsSeen).toEqual([]);
  });

  it('an answer without a ciphertext or a plaintext is an error, not an empty key', async () => {
    const empty: GcpKmsClient = { encrypt: async () => [{ ciphertext: null }], decrypt: async () => [{ plaintext: undefined }] };
    const source = new GcpKmsSource({ keyName: KEY }, async () => empty);
    await expect(source.wrap(randomBytes(32), REPO_ID)).rejects.toThrow('Google Cloud KMS answered encrypt without a ciphertext');
    const slot = slotFields('0123456789abcdef', { kind: 'gcp-kms', keyName: KEY, wrapped: randomBytes(60).toString('base64') });
    await expect(source.unwrap(slot, REPO_ID)).rejects.toThrow('Google Cloud KMS answered decrypt without a plaintext');
  });
});

describe('a repository whose key is a Google Cloud KMS key (fake client)', () => {
  let dir: string;
  let store: ObjectStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-gcp-kms-'));
    store = await openStore({ url: pathToFileURL(dir).href });
  });
  afterEach(async () => {
    await store.close?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('init wraps the master key with the key; open unwraps it and reads what was written', async () => {
    const fake = new FakeCloudKms(KEY);
    const repo = await Repository.init(store, undefined, [new GcpKmsSource({ keyName: KEY }, fake.factory)]);
    expect(repo.encrypted).toBe(true);
    const { slots } = await repo.keySlots();
    expect(slots.map((s) => s.kind)).toEqual(['gcp-kms']);
    expect((await readdir(path.join(dir, 'keys'))).length).toBe(1);
    const content = Buffer.from('sealed under a key Cloud KMS wraps\n'.repeat(100));
    const written = await repo.blobs.writeBuffer(content);

    const opened = await Repository.open(store, { keys: [new GcpKmsSource({}, fake.factory)] });
    expect(opened.marker.id).toBe(repo.marker.id);
    expect(opened.openedWith!.slot.id).toBe(slots[0]!.id);
    expect(opened.openedWith!.source.kind).toBe('gcp-kms');
    expect(Buffer.concat(await Promise.all(written.blobs.map((b) => opened.blobs.get(b)))).equals(content)).toBe(true);
    const decrypts = fake.calls.filter((c) => c.op === 'decrypt');
    expect(decrypts).toHaveLength(1);
    expect(decrypts[0]!.aad.toString('utf8')).toBe(repo.marker.id);
  });

  it("a key that decrypts to another key's bytes is not this repository's: NoUsableKeyError, exit 2", async () => {
    const fake = new FakeCloudKms(KEY);
    await Repository.init(store, undefined, [new GcpKmsSource({ keyName: KEY }, fake.factory)]);
    // A service (or a swapped slot) that answers decrypt with 32 bytes of some other key.
    const liar: GcpKmsClient = {
      encrypt: (request) => fake.encrypt(request),
      decrypt: async () => [{ plaintext: new Uint8Array(randomBytes(32)) }],
    };
    const err = await Repository.open(store, { keys: [new GcpKmsSource({}, async () => liar)] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoUsableKeyError);
    expect((err as NoUsableKeyError).exitCode).toBe(ExitCode.usage);
    expect((err as Error).message).toMatch(/is encrypted and no key opened it:\n {2}- Google Cloud KMS, slot [0-9a-f]{16}: it holds a key that is not this repository's$/);
  });

  it('the service refusing at open is named per slot; without a Cloud KMS source the slot kind is named with where to give one', async () => {
    const fake = new FakeCloudKms(KEY);
    await Repository.init(store, undefined, [new GcpKmsSource({ keyName: KEY }, fake.factory)]);
    fake.failWith = grpcError(7, 'PERMISSION_DENIED', "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource");
    const refused = await Repository.open(store, { keys: [new GcpKmsSource({}, fake.factory)] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NoUsableKeyError);
    expect((refused as Error).message).toContain(`Google Cloud KMS refused to decrypt with ${KEY} (7 PERMISSION_DENIED: Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource)`);

    const none = await Repository.open(store, { keys: [] }).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(NoUsableKeyError);
    expect((none as Error).message).toContain('1 gcp-kms slot: no key given (encryption.gcpKms');
  });

  it('init with a key the service refuses writes nothing', async () => {
    const fake = new FakeCloudKms(KEY);
    fake.failWith = new Error('7 PERMISSION_DENIED: Permission denied on resource');
    await expect(Repository.init(store, undefined, [new GcpKmsSource({ keyName: KEY }, fake.factory)])).rejects.toThrow(/cannot wrap the repository key with the Google Cloud KMS key .*: Google Cloud KMS refused to encrypt/);
    expect((await readdir(dir)).filter((f) => f !== '.tmp')).toEqual([]);
  });
});
