// One contract suite for every ObjectStore backend (as unstorage does for its drivers): the same cases, run unchanged.
import { createHash, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';
import { StorageError, type ObjectInfo, type ObjectStore, type StorageErrorKind } from '../../src/storage/object-store.ts';
import { openStore, type StoreSettings } from '../../src/storage/open.ts';
import { runProbe } from '../helpers/probe.ts';

const MiB = 1024 * 1024;

/** How a backend under test is reached. Optional cases are registered only for backends that can produce them. */
export interface ContractBackend {
  /** Creates this run's bucket or folder; throws (never skips) when the test server is missing. */
  setup(): Promise<void>;
  /** Settings for a store under the sub-prefix `sub` (ends with '/') of this run's bucket or folder. */
  settings(sub: string): StoreSettings;
  /** A store whose bucket does not exist. */
  missingBucket?(): StoreSettings;
  /** The run's bucket with a wrong secret; the secret must not appear in any message. */
  wrongCredentials?(): { settings: StoreSettings; secret: string };
  /** An endpoint nobody listens on. */
  unreachable?(): StoreSettings;
  /** Removes the bucket or folder again. */
  cleanup(): Promise<void>;
}

export function objectStoreContract(name: string, backend: ContractBackend): void {
  describe(`ObjectStore contract: ${name}`, () => {
    const opened: ObjectStore[] = [];
    let ready = false;
    let setupError: unknown;
    let store: ObjectStore;
    let mainSettings: StoreSettings;

    async function open(settings: StoreSettings): Promise<ObjectStore> {
      const s = await openStore(settings);
      opened.push(s);
      return s;
    }

    beforeAll(async () => {
      try {
        await backend.setup();
        ready = true;
        mainSettings = backend.settings('main/');
        store = await open(mainSettings);
      } catch (err) {
        setupError = err;
      }
    });

    // A failed setup (server not running) fails every case with its message, rather than reporting them as skipped.
    const it = (title: string, fn: () => Promise<void>) =>
      vitestIt(title, async () => {
        if (setupError !== undefined) throw setupError;
        await fn();
      });

    afterAll(async () => {
      for (const s of opened) await s.close?.();
      if (ready) await backend.cleanup();
    });

    it('describes itself without credentials and checks access', async () => {
      expect(store.description).toMatch(/^(file|s3|gs):\/\//);
      const secret = mainSettings.secretAccessKey;
      if (secret) expect(store.description).not.toContain(secret);
      await store.checkAccess();
    });

    it('round-trips a Buffer', async () => {
      const body = randomBytes(100_000);
      expect(await store.put('buf/one.bin', body)).toEqual({ created: true });
      expect((await store.getBuffer('buf/one.bin')).equals(body)).toBe(true);
      expect((await buffer(await store.get('buf/one.bin'))).equals(body)).toBe(true);
      const info = await store.head('buf/one.bin');
      expect(info?.key).toBe('buf/one.bin');
      expect(info?.size).toBe(body.length);
      expect(info?.modified).toBeInstanceOf(Date);
      expect(Math.abs(info!.modified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    });

    it('stores pieces (small and large, create-only) as their concatenation', async () => {
      for (const [name, pieces] of [
        ['small', [Buffer.from([0]), randomBytes(3000)]],
        ['large', [Buffer.from([0]), randomBytes(300_000), randomBytes(5)]],
      ] as const) {
        expect(await store.put(`pieces/${name}`, pieces, { ifAbsent: true })).toEqual({ created: true });
        expect((await store.getBuffer(`pieces/${name}`)).equals(Buffer.concat(pieces)), name).toBe(true);
        expect(await store.put(`pieces/${name}`, [Buffer.from('other')], { ifAbsent: true })).toEqual({ created: false });
      }
    });

    it('round-trips a stream larger than one 8 MiB part', async () => {
      const chunks = Array.from({ length: 9 }, () => randomBytes(MiB));
      chunks.push(randomBytes(12_345));
      expect(await store.put('stream/nine.bin', streamOf(chunks))).toEqual({ created: true });
      expect(sha256(await buffer(await store.get('stream/nine.bin')))).toBe(sha256(Buffer.concat(chunks)));
      expect((await store.head('stream/nine.bin'))?.size).toBe(9 * MiB + 12_345);
    });

    it('round-trips a small stream with a known length', async () => {
      const body = randomBytes(70_000);
      await store.put('stream/small.bin', streamOf([body.subarray(0, 30_000), body.subarray(30_000)]), { contentLength: body.length });
      expect((await store.getBuffer('stream/small.bin')).equals(body)).toBe(true);
    });

    it('stores zero-byte objects from a Buffer and from a stream', async () => {
      await store.put('empty/buffer', Buffer.alloc(0));
      await store.put('empty/stream', streamOf([]));
      for (const key of ['empty/buffer', 'empty/stream']) {
        expect((await store.head(key))?.size).toBe(0);
        expect((await store.getBuffer(key)).length).toBe(0);
      }
      expect((await collect(store.list('empty/'))).map((o) => [o.key, o.size])).toEqual([
        ['empty/buffer', 0],
        ['empty/stream', 0],
      ]);
    });

    it('reports a missing object: head → undefined, get → not-found', async () => {
      expect(await store.head('missing/nothing.bin')).toBeUndefined();
      expect((await storageError(store.get('missing/nothing.bin'))).kind).toBe('not-found');
      expect((await storageError(store.getBuffer('missing/nothing.bin'))).kind).toBe('not-found');
    });

    it('ifAbsent creates once and never overwrites (Buffer)', async () => {
      expect(await store.put('once/buf', Buffer.from('first'), { ifAbsent: true })).toEqual({ created: true });
      expect(await store.put('once/buf', Buffer.from('second'), { ifAbsent: true })).toEqual({ created: false });
      expect((await store.getBuffer('once/buf')).toString()).toBe('first');
    });

    it('ifAbsent creates once and never overwrites (multipart stream)', async () => {
      const first = [randomBytes(5 * MiB), randomBytes(5 * MiB)];
      expect(await store.put('once/stream', streamOf(first), { ifAbsent: true })).toEqual({ created: true });
      const second = [randomBytes(5 * MiB), randomBytes(5 * MiB)];
      expect(await store.put('once/stream', streamOf(second), { ifAbsent: true })).toEqual({ created: false });
      expect(sha256(await store.getBuffer('once/stream'))).toBe(sha256(Buffer.concat(first)));
    });

    it('ifAbsent lets exactly one of several concurrent writers win', async () => {
      const bodies = Array.from({ length: 6 }, (_, i) => Buffer.from(`writer ${i}`));
      const results = await Promise.all(bodies.map((b) => store.put('once/race', b, { ifAbsent: true })));
      const winners = results.flatMap((r, i) => (r.created ? [i] : []));
      expect(winners).toHaveLength(1);
      expect((await store.getBuffer('once/race')).toString()).toBe(`writer ${winners[0]}`);
    });

    it('overwrites without ifAbsent', async () => {
      await store.put('over/key', Buffer.from('old content'));
      expect(await store.put('over/key', Buffer.from('new'))).toEqual({ created: true });
      expect((await store.getBuffer('over/key')).toString()).toBe('new');
      expect((await store.head('over/key'))?.size).toBe(3);
    });

    it('deletes idempotently, and a deleted key can be created again with ifAbsent', async () => {
      await store.put('del/key', Buffer.from('x'));
      await store.delete('del/key');
      expect(await store.head('del/key')).toBeUndefined();
      expect((await storageError(store.get('del/key'))).kind).toBe('not-found');
      await store.delete('del/key');
      await store.delete('del/never-existed');
      expect(await store.put('del/key', Buffer.from('again'), { ifAbsent: true })).toEqual({ created: true });
      expect((await store.getBuffer('del/key')).toString()).toBe('again');
    });

    it('lists sorted keys under a prefix only, including nested folders', async () => {
      const keys = ['tree/ab.txt', 'tree/a/b/c/d.txt', 'tree/a.txt', 'tree/a/b.txt', 'tree/a/b/c.txt', 'treehouse/x', 'tre'];
      await forEachLimit(keys, 8, (k) => store.put(k, Buffer.from(k)).then(() => undefined));
      const tree = await collect(store.list('tree/'));
      expect(tree.map((o) => o.key)).toEqual(['tree/a.txt', 'tree/a/b.txt', 'tree/a/b/c.txt', 'tree/a/b/c/d.txt', 'tree/ab.txt']);
      expect(tree.find((o) => o.key === 'tree/a/b/c/d.txt')?.size).toBe('tree/a/b/c/d.txt'.length);
      expect((await collect(store.list('tree/a/'))).map((o) => o.key)).toEqual(['tree/a/b.txt', 'tree/a/b/c.txt', 'tree/a/b/c/d.txt']);
      // A prefix that ends inside a name segment matches like a plain string prefix.
      expect((await collect(store.list('tree/a'))).map((o) => o.key)).toEqual([
        'tree/a.txt',
        'tree/a/b.txt',
        'tree/a/b/c.txt',
        'tree/a/b/c/d.txt',
        'tree/ab.txt',
      ]);
      expect(await collect(store.list('no-such-prefix/'))).toEqual([]);
      expect((await store.getBuffer('tree/a/b/c/d.txt')).toString()).toBe('tree/a/b/c/d.txt');
    });

    it('lists 1,050 keys across pages: exact count, sorted, nothing from a sibling prefix', async () => {
      const count = 1050;
      const keys = Array.from({ length: count }, (_, i) => `many/${String(i).padStart(5, '0')}`);
      const siblings = ['many-sibling/00000', 'many0', 'man/y', 'manyx/1'];
      // Written in shuffled order so a sorted listing cannot come from insertion order.
      await forEachLimit(shuffle([...keys, ...siblings]), 16, (k) => store.put(k, Buffer.from('.')).then(() => undefined));
      const listed: string[] = [];
      for await (const o of store.list('many/')) listed.push(o.key);
      expect(listed).toHaveLength(count);
      expect(listed).toEqual(keys);
      expect(listed.every((k) => k.startsWith('many/'))).toBe(true);
    });

    it('keeps stores with different prefixes in one bucket apart', async () => {
      const a = await open(backend.settings('iso/'));
      const b = await open(backend.settings('iso2/'));
      await a.put('same/key', Buffer.from('from a'));
      await b.put('same/key', Buffer.from('from b'));
      await b.put('only-b', Buffer.from('b'));
      expect((await a.getBuffer('same/key')).toString()).toBe('from a');
      expect((await b.getBuffer('same/key')).toString()).toBe('from b');
      expect((await collect(a.list(''))).map((o) => o.key)).toEqual(['same/key']);
      expect((await collect(b.list(''))).map((o) => o.key)).toEqual(['only-b', 'same/key']);
      expect(await a.head('only-b')).toBeUndefined();
      await a.delete('same/key');
      expect((await b.getBuffer('same/key')).toString()).toBe('from b');
    });

    it('rejects keys that could escape the prefix', async () => {
      for (const key of ['', '/abs', '../up', 'a/../../b', 'a/./b']) {
        expect((await storageError(store.put(key, Buffer.from('x')))).kind).toBe('other');
      }
    });

    if (backend.missingBucket) {
      const missing = backend.missingBucket.bind(backend);
      it("maps a missing bucket to 'bucket-missing' (checkAccess, put, list)", async () => {
        const s = await open(missing());
        await expectKind(s.checkAccess(), 'bucket-missing');
        await expectKind(s.put('k', Buffer.from('x')), 'bucket-missing');
        await expectKind(s.put('k', streamOf([Buffer.from('x')])), 'bucket-missing');
        await expectKind(collect(s.list('')), 'bucket-missing');
      });
    }

    if (backend.wrongCredentials) {
      const wrong = backend.wrongCredentials.bind(backend);
      it("maps wrong credentials to 'access-denied' without leaking the secret", async () => {
        const { settings, secret } = wrong();
        const s = await open(settings);
        expect(s.description).not.toContain(secret);
        const attempts = [() => s.checkAccess(), () => s.put('k', Buffer.from('x')), () => s.get('buf/one.bin'), () => collect(s.list(''))];
        for (const attempt of attempts) {
          const err = await expectKind(attempt(), 'access-denied');
          expect(err.message).not.toContain(secret);
        }
      });
    }

    if (backend.unreachable) {
      const dead = backend.unreachable.bind(backend);
      it("maps an endpoint nobody listens on to 'unreachable', quickly", async () => {
        const settings = dead();
        const endpoint = settings.endpoint ?? settings.apiEndpoint ?? '';
        const s = await open(settings);
        const started = Date.now();
        const attempts = [() => s.checkAccess(), () => s.put('k', Buffer.from('x')), () => s.get('k'), () => collect(s.list(''))];
        for (const attempt of attempts) {
          const err = await expectKind(attempt(), 'unreachable');
          expect(err.message).toContain(endpoint.replace(/\/$/, ''));
          expect(err.message).toContain('unreachable');
        }
        expect(Date.now() - started).toBeLessThan(20_000);
      });
    }

    it('streams 20 MiB and 200 MiB with memory that does not grow with object size', async () => {
      const settings = backend.settings('probe/');
      const small = await runProbe(settings, 20 * MiB);
      const large = await runProbe(settings, 200 * MiB);
      for (const r of [small, large]) {
        console.log(
          `[stream-probe] ${name}: ${r.bytes / MiB} MiB in ${r.seconds.toFixed(2)} s ` +
            `(put ${r.putSeconds.toFixed(2)} s, get ${r.getSeconds.toFixed(2)} s, ${(((r.bytes / MiB) * 2) / r.seconds).toFixed(1)} MiB/s both ways), ` +
            `peak RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`,
        );
      }
      expect(small.sha256Match).toBe(true);
      expect(large.sha256Match).toBe(true);
      expect(large.maxRssBytes).toBeLessThan(small.maxRssBytes + ALLOWED_GROWTH);
      expect(large.maxRssBytes).toBeLessThan(400 * MiB);
    });
  });
}

/**
 * How much more the 200 MiB run may peak than the 20 MiB run: 64 MiB, plus 64 MiB because the small run never reaches
 * steady state. It cannot fill the S3 upload window (4 parts × 8 MiB), and V8 lets ~64 MiB of dead Buffers pile up
 * before a full GC. Measured growth: 25-90 MiB; buffering the object whole grows it by 350 MiB or more.
 */
const ALLOWED_GROWTH = 128 * MiB;

function streamOf(chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function storageError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected a StorageError, but the call succeeded');
}

async function expectKind(p: Promise<unknown>, kind: StorageErrorKind): Promise<StorageError> {
  const err = await storageError(p);
  expect(err.kind, err.message).toBe(kind);
  return err;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
