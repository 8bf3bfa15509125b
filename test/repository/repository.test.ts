import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import { BlobCorruptError, blobKey, contentChecksum, type BlobRef } from '../../src/repository/blobs.ts';
import { Checker } from '../../src/repository/checker.ts';
import { readIndex } from '../../src/repository/index-blobs.ts';
import { writeBlobsToFile } from '../../src/repository/materialize.ts';
import { acquireLock, LockConflictError } from '../../src/repository/locks.ts';
import { ManifestUnreadableError, Repository } from '../../src/repository/repository.ts';
import { LocalStore } from '../../src/storage/local.ts';

let dir: string;
let store: LocalStore;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bak-repo-'));
  store = new LocalStore(dir);
  repo = await Repository.init(store);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('blobs', () => {
  it('stores identical content once and checks every read against its name', async () => {
    const a = await repo.blobs.put(Buffer.from('same content'));
    const b = await repo.blobs.put(Buffer.from('same content'));
    expect(b).toEqual(a);
    expect(repo.blobs.stats).toMatchObject({ blobsWritten: 1, blobsReused: 1 });
    expect((await repo.blobs.get(a)).toString()).toBe('same content');

    const other = await repo.blobs.put(Buffer.from('other content'));
    await store.put(blobKey(a.id), await store.getBuffer(blobKey(other.id)));
    await expect(repo.blobs.get(a)).rejects.toBeInstanceOf(BlobCorruptError);
  });
});

describe('item checksums', () => {
  async function snapshotOf(content: Buffer, checksum?: (c: string, blobs: BlobRef[]) => { checksum: string; blobs: BlobRef[] }) {
    const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///checksums' });
    const item = await writer.addItem({ name: 'content.bin', kind: 'file' }, [content]);
    if (checksum) Object.assign(item, checksum(item.checksum, item.blobs));
    return writer.commit();
  }
  const verify = async (manifest: Awaited<ReturnType<typeof snapshotOf>>) => new Checker(repo, 'data').verify(manifest);
  const whole = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  it('is the content hash for one blob and the hash of the blob names for more, and the checker recomputes both', async () => {
    const small = Buffer.from('one blob');
    const one = await snapshotOf(small);
    expect(one.items[0]!.checksum).toBe(whole(small));

    const big = randomBytes(9 * 1024 * 1024); // over the largest chunk (8 MiB): at least two blobs
    const many = await snapshotOf(big);
    const item = many.items[0]!;
    expect(item.blobs.length).toBeGreaterThan(1);
    expect(item.checksum).toMatch(/^sha256-blobs:[0-9a-f]{64}$/);
    expect(item.checksum).toBe(contentChecksum(item.blobs));
    expect((await verify(many)).ok).toBe(true);
  });

  it('still verifies an older snapshot’s whole-content checksum, and catches a wrong one or reordered blobs', async () => {
    const big = randomBytes(9 * 1024 * 1024); // at least two blobs, so reversing them changes the content
    expect((await verify(await snapshotOf(big, (_, blobs) => ({ checksum: whole(big), blobs })))).ok).toBe(true);

    const wrongWhole = await verify(await snapshotOf(big, (_, blobs) => ({ checksum: whole(Buffer.from('other')), blobs })));
    expect(wrongWhole.problems.map((p) => p.problem).join()).toMatch(/content checksum is sha256:/);

    const reordered = await verify(await snapshotOf(big, (c, blobs) => ({ checksum: c, blobs: [...blobs].reverse() })));
    expect(reordered.ok).toBe(false);
    expect(reordered.problems.map((p) => p.problem).join()).toMatch(/content checksum is sha256-blobs:/);
  });
});

describe('writeBlobsToFile', () => {
  it('rebuilds content from many blobs fetched in parallel, byte for byte, and refuses to overwrite when exclusive', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    // Uneven pieces, so blobs differ in size and each must land at its own offset.
    const pieces = [1, 700_000, 123_457, 1_000_003];
    const refs: BlobRef[] = [];
    for (let offset = 0, k = 0; offset < content.length; k++) {
      const size = pieces[k % pieces.length]!;
      refs.push(await repo.blobs.put(content.subarray(offset, offset + size)));
      offset += size;
    }
    const file = path.join(dir, 'rebuilt.bin');
    await writeBlobsToFile(repo.blobs, refs, file, { concurrency: 3, exclusive: true });
    expect((await readFile(file)).equals(content)).toBe(true);
    await expect(writeBlobsToFile(repo.blobs, refs, file, { concurrency: 3, exclusive: true })).rejects.toThrow(/EEXIST/);

    const empty = path.join(dir, 'empty.bin');
    await writeBlobsToFile(repo.blobs, [], empty, { concurrency: 3 });
    expect((await readFile(empty)).length).toBe(0);
  });

  it('fails on a corrupt blob', async () => {
    const a = await repo.blobs.put(Buffer.from('first'));
    const b = await repo.blobs.put(Buffer.from('second'));
    await store.put(blobKey(b.id), await store.getBuffer(blobKey(a.id)));
    await expect(writeBlobsToFile(repo.blobs, [a, b], path.join(dir, 'bad.bin'), { concurrency: 2 })).rejects.toBeInstanceOf(BlobCorruptError);
  });
});

describe('index blobs', () => {
  const entries = (n: number, changed = -1) => Array.from({ length: n }, (_, i) => ({ key: `objects/${String(i).padStart(7, '0')}`, size: i === changed ? -1 : i * 7 }));

  async function writeIndex(list: object[]) {
    const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///x' });
    const index = writer.openIndex('keys');
    for (const e of list) await index.add(e);
    const ref = await writer.closeIndex(index);
    await writer.abort();
    return ref;
  }

  it('streams entries back in order', async () => {
    const list = entries(20_000);
    const ref = await writeIndex(list);
    expect(ref.count).toBe(20_000);
    expect(ref.blobs.length).toBeGreaterThan(3);
    const back: unknown[] = [];
    for await (const e of readIndex(repo.blobs, ref)) back.push(e);
    expect(back).toEqual(list);
  });

  it('a change in one entry changes only the chunk around it', async () => {
    const first = await writeIndex(entries(50_000));
    const second = await writeIndex(entries(50_000, 25_000));
    const firstIds = new Set(first.blobs.map((b) => b.id));
    const changed = second.blobs.filter((b) => !firstIds.has(b.id));
    expect(second.blobs.length).toBeGreaterThan(5);
    expect(changed.length).toBeLessThanOrEqual(2);
  });
});

describe('manifests and snapshot ids', () => {
  async function commitAt(time: string) {
    const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///x', now: new Date(time) });
    await writer.addItem({ name: 'f', kind: 'file' }, [Buffer.from(time)]);
    return writer.commit();
  }

  it('resolves unique prefixes and rejects ambiguous or unknown ones', async () => {
    const a = await commitAt('2026-11-01T10:00:00Z');
    const b = await commitAt('2026-11-01T11:00:00Z');
    expect((await repo.resolveSnapshot(a.id.slice(0, 14) + '0')).manifest.id).toBe(a.id);
    expect((await repo.resolveSnapshot(b.id)).manifest.id).toBe(b.id);
    const ambiguous = repo.resolveSnapshot('2026-11-01T1');
    await expect(ambiguous).rejects.toBeInstanceOf(UsageError);
    await expect(repo.resolveSnapshot('2026-11-01T1')).rejects.toThrow(/ambiguous.*matches/);
    await expect(repo.resolveSnapshot('1999')).rejects.toThrow(/no snapshot matches "1999"/);
  });

  it('never overwrites a manifest, and reports a malformed one by key', async () => {
    const m = await commitAt('2026-11-02T10:00:00Z');
    await expect(repo.writeManifest(m)).rejects.toThrow(/already exists/);
    const key = `snapshots/${m.sourceKey}/${m.id}.json`;
    await store.put(key, Buffer.from(JSON.stringify({ ...m, status: 'maybe' })));
    const err = await repo.readManifest(key).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestUnreadableError);
    expect((err as Error).message).toContain('status');
    expect((err as Error).message).toContain('"maybe"');
  });

  it('finds the newest complete snapshot of a source as the parent', async () => {
    await commitAt('2026-11-03T10:00:00Z');
    const newest = await commitAt('2026-11-03T12:00:00Z');
    expect((await repo.latestSnapshot(newest.sourceKey, 'complete'))!.id).toBe(newest.id);
    expect(await repo.latestSnapshot(newest.sourceKey, 'partial')).toBeUndefined();
  });

  it('tells apart snapshots started in one second by their start, not by the random part of their ids', async () => {
    // Ids sort to the second; within it the random suffix decides. Ten pairs make a wrong order near certain to show.
    for (let i = 0; i < 10; i++) {
      const second = `2026-11-04T10:00:${String(i).padStart(2, '0')}`;
      await commitAt(`${second}.100Z`);
      const later = await commitAt(`${second}.900Z`);
      expect((await repo.latestSnapshot(later.sourceKey, 'complete'))!.id).toBe(later.id);
    }
    const partialLast = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///x', now: new Date('2026-11-04T10:00:09.950Z') });
    partialLast.recordFailure('f', 'boom');
    const partial = await partialLast.commit();
    expect((await repo.latestSnapshot(partial.sourceKey, ['complete', 'partial']))!.id).toBe(partial.id);
  });
});

describe('locks', () => {
  it('shares shared locks, and keeps exclusive ones exclusive', async () => {
    const s1 = await acquireLock(store, 'shared');
    const s2 = await acquireLock(store, 'shared');
    await expect(acquireLock(store, 'exclusive')).rejects.toBeInstanceOf(LockConflictError);
    await s1.release();
    await s2.release();
    const x = await acquireLock(store, 'exclusive');
    await expect(acquireLock(store, 'shared')).rejects.toThrow(/locked \(exclusive\)/);
    await x.release();
    (await acquireLock(store, 'shared')).release();
  });

  it('ignores a stale lock left by a crashed process', async () => {
    const crashed = await acquireLock(store, 'exclusive', { ttlMs: 1000, now: () => new Date(Date.now() - 60_000) });
    // Simulate the crash: the holder stops refreshing without releasing.
    (crashed as unknown as { timer: NodeJS.Timeout }).timer.close();
    const x = await acquireLock(store, 'exclusive');
    await x.release();
  });

  it('refreshes a held lock before it expires', async () => {
    const lock = await acquireLock(store, 'shared', { ttlMs: 3000 });
    const first = lock.info.expiresAt;
    await new Promise((r) => setTimeout(r, 1300));
    const onDisk = JSON.parse((await store.getBuffer(`locks/${lock.info.id}.json`)).toString());
    expect(Date.parse(onDisk.expiresAt)).toBeGreaterThan(Date.parse(first));
    lock.assertHeld();
    await lock.release();
  });

  it('a crashed snapshot writer leaves nothing visible', async () => {
    const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///x' });
    await writer.addItem({ name: 'f', kind: 'file' }, [Buffer.from('data')]);
    await writer.abort();
    const listed = [];
    for await (const s of repo.listSnapshots()) listed.push(s);
    expect(listed).toEqual([]);
  });
});

describe('opening', () => {
  it('refuses a folder that is not a repository, and a second init', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'bak-none-'));
    await expect(Repository.open(new LocalStore(empty))).rejects.toThrow(/no bak repository/);
    await expect(Repository.init(store)).rejects.toThrow(/already exists/);
    await rm(empty, { recursive: true });
  });
});
