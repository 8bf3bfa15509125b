// The repository's encryption layer on a local folder: what init writes and leaves out, what open refuses.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.ts';
import { objectAad, open, seal } from '../../src/repository/encryption/envelope.ts';
import type { KeySlot, SlotSecret } from '../../src/repository/encryption/key-slots.ts';
import type { KeySource } from '../../src/repository/encryption/key-source.ts';
import { RepositoryKeys } from '../../src/repository/encryption/keys.ts';
import { PassphraseSource } from '../../src/repository/encryption/passphrase.ts';
import { NoUsableKeyError } from '../../src/repository/encryption/unlock.ts';
import { MARKER_KEY } from '../../src/repository/marker.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { randomBytes, createSecretKey } from 'node:crypto';
import pino from 'pino';
import { runGc } from '../../src/operations/gc.ts';
import { Checker } from '../../src/repository/checker.ts';
import { commitSynthetic } from '../helpers/synthetic.ts';

const CHEAP = { BAK_TEST_SCRYPT_LOG_N: '10' };
const passphrase = (text: string) => new PassphraseSource(`passphrase ${text}`, async () => text, CHEAP);

/** A key source that refuses to wrap, as a KMS that denies Encrypt. */
const refusing: KeySource = {
  kind: 'aws-kms',
  label: 'AWS KMS key alias/refusing',
  canWrap: true,
  wrap: async () => {
    throw new Error('AccessDeniedException: not allowed');
  },
  unwrap: async () => {
    throw new Error('AccessDeniedException: not allowed');
  },
};

describe('encrypted repository layer', () => {
  let dir: string;
  let store: ObjectStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-enc-layer-'));
    store = await openStore({ url: pathToFileURL(dir).href });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const listing = async () => (await readdir(dir, { recursive: true })).filter((f) => !f.startsWith('.tmp')).sort();

  it('records format 3 and how it is sealed in the marker, the wrapped key only in a slot, and no key in either', async () => {
    const repo = await Repository.init(store, undefined, [passphrase('one'), passphrase('two')]);
    expect(repo.encrypted).toBe(true);
    const marker = JSON.parse(await readFile(path.join(dir, MARKER_KEY), 'utf8'));
    expect(marker.version).toBe(3);
    expect(Object.keys(marker.encryption).sort()).toEqual(['blobNames', 'cipher', 'keyCheck']);
    const { slots } = await repo.keySlots();
    expect(slots.map((s) => s.kind)).toEqual(['passphrase', 'passphrase']);
    for (const name of ['one', 'two']) expect((await Repository.open(store, { keys: [passphrase(name)] })).openedWith!.source.label).toBe(`passphrase ${name}`);
  });

  it('writes nothing when a key source refuses to wrap at init', async () => {
    await expect(Repository.init(store, undefined, [passphrase('one'), refusing])).rejects.toThrow(/cannot wrap the repository key with the AWS KMS key alias\/refusing: AccessDeniedException/);
    expect(await listing()).toEqual([]);
  });

  it('refuses a plain marker when the config expects encryption: a replaced marker never turns backups into plaintext', async () => {
    await Repository.init(store);
    await expect(Repository.open(store, { expectEncrypted: true })).rejects.toMatchObject({ exitCode: ExitCode.usage, message: expect.stringMatching(/is not encrypted, but its config gives encryption keys/) });
  });

  it('names a slot that holds another key, and every source it tried, with exit 2', async () => {
    const repo = await Repository.init(store, undefined, [passphrase('one')]);
    // A slot wrapping a key of its own, as if planted by someone who can write to the bucket.
    const planted = await passphrase('mallory').wrap(randomBytes(32), repo.marker.id, 'aaaaaaaaaaaaaaaa');
    const slot = { format: 'bak-key', version: 1, id: 'aaaaaaaaaaaaaaaa', createdAt: new Date().toISOString(), host: 'x', ...planted } as KeySlot;
    await writeFile(path.join(dir, 'keys', `${slot.id}.json`), JSON.stringify(slot));
    const err = await Repository.open(store, { keys: [passphrase('mallory'), refusing] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoUsableKeyError);
    expect((err as NoUsableKeyError).exitCode).toBe(ExitCode.usage);
    const message = (err as Error).message;
    expect(message).toMatch(/passphrase mallory, slot aaaaaaaaaaaaaaaa: it holds a key that is not this repository's/);
    expect(message).toMatch(/passphrase mallory, slot [0-9a-f]{16}: wrong passphrase/);
    expect(message).toMatch(/AWS KMS key alias\/refusing: the repository has no aws-kms slot/);
    // The real key still opens it.
    expect((await Repository.open(store, { keys: [passphrase('one')] })).encrypted).toBe(true);
  });

  it('seals under the object name: a sealed object moved to another name, or of another repository, does not open', () => {
    const keys = new RepositoryKeys(randomBytes(32), 'repo-a');
    const sealed = Buffer.concat(seal(keys.data, objectAad('repo-a', 'snapshots/x/1.json'), [Buffer.from('{"a":'), Buffer.from('1}')]));
    expect(open(keys.data, objectAad('repo-a', 'snapshots/x/1.json'), sealed).toString()).toBe('{"a":1}');
    expect(() => open(keys.data, objectAad('repo-a', 'snapshots/x/2.json'), sealed)).toThrow(/authentication failed/);
    expect(() => open(keys.data, objectAad('repo-b', 'snapshots/x/1.json'), sealed)).toThrow(/authentication failed/);
    expect(() => open(createSecretKey(randomBytes(32)), objectAad('repo-a', 'snapshots/x/1.json'), sealed)).toThrow(/authentication failed/);
  });

  it('gives every sealed object a nonce of its own, across the batches nonces are drawn in', () => {
    const keys = new RepositoryKeys(randomBytes(32), 'repo-a');
    const headers = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const sealed = Buffer.concat(seal(keys.data, objectAad('repo-a', `blobs/${i}`), [Buffer.from(`content ${i}`)]));
      expect(sealed[0]).toBe(1);
      headers.add(sealed.subarray(1, 13).toString('hex'));
      if (i % 997 === 0) expect(open(keys.data, objectAad('repo-a', `blobs/${i}`), sealed).toString()).toBe(`content ${i}`);
    }
    expect(headers.size).toBe(10_000);
  });

  it('names blobs and source folders by keyed hashes: the same content gets another name in another repository', () => {
    const id = 'ab'.repeat(32);
    const a = new RepositoryKeys(randomBytes(32), 'repo-a');
    const b = new RepositoryKeys(randomBytes(32), 'repo-b');
    expect(a.blobName(id)).toMatch(/^[0-9a-f]{64}$/);
    expect(a.blobName(id)).not.toBe(id);
    expect(a.blobName(id)).not.toBe(b.blobName(id));
    expect(a.sourceFolder('postgres-127.0.0.1-shop')).toMatch(/^s-[0-9a-f]{32}$/);
    expect(a.sourceFolder('postgres-127.0.0.1-shop')).not.toBe(b.sourceFolder('postgres-127.0.0.1-shop'));
  });

  it('gc forgets and prunes by keyed blob names: what remains verifies at data level, what was only forgotten is gone', async () => {
    const repo = await Repository.init(store, undefined, [passphrase('one')]);
    const made = [];
    for (let day = 1; day <= 4; day++) made.push(await commitSynthetic(repo, { at: new Date(Date.UTC(2026, 10, day, 2)), unique: 20_000 + day, entries: 3 }));
    const blobsBefore = (await listing()).filter((f) => f.startsWith('blobs/') && f.split('/').length === 3).length;
    const report = await runGc(repo, { forget: { select: () => true, policyFor: () => ({ policy: { keepLast: 2 }, origin: 'test' }) }, dryRun: false, graceMs: 0, prune: true, log: pino({ level: 'silent' }), concurrency: 4 });
    expect(report.forgotten).toHaveLength(2);
    // Each forgotten snapshot had its own item blob and three entry blobs; its index blob is its own too.
    expect(report.prune!.blobsDeleted).toBeGreaterThanOrEqual(2 * 4);
    expect(report.prune!.blobsReferenced).toBe(blobsBefore - report.prune!.blobsDeleted);
    const reopened = await Repository.open(store, { keys: [passphrase('one')] });
    const checker = new Checker(reopened, 'data');
    const kept = [];
    for await (const entry of reopened.listSnapshots()) {
      if ('error' in entry) throw new Error(entry.error);
      kept.push(entry.id);
      expect((await checker.verify(entry.manifest)).problems).toEqual([]);
    }
    expect(kept.sort()).toEqual(made.slice(2).map((m) => m.id).sort());
    for (const m of made.slice(0, 2)) expect(await reopened.blobs.exists(m.items.find((i) => i.name === 'own.bin')!.blobs[0]!)).toEqual({ ok: false, problem: 'missing' });
  });

  it('records the scrypt cost in each slot, and opens a slot by its own recorded cost', async () => {
    const slotSecret = (await new PassphraseSource('p', async () => 'pw', { BAK_TEST_SCRYPT_LOG_N: '11' }).wrap(randomBytes(32), 'r', '0123456789abcdef')) as Extract<SlotSecret, { kind: 'passphrase' }>;
    expect(slotSecret.kdf).toMatchObject({ name: 'scrypt', logN: 11, r: 8, p: 1 });
    const defaults = (await new PassphraseSource('p', async () => 'pw', {}).wrap(randomBytes(32), 'r', '0123456789abcdef')) as Extract<SlotSecret, { kind: 'passphrase' }>;
    expect(defaults.kdf.logN).toBe(17);
  });
});
