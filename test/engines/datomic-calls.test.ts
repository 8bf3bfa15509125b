// What an incremental Datomic backup costs in remote calls, counted by a wrapper around the repository's
// ObjectStore, into MinIO and into fake-gcs-server: with 1 % new segments, a call or two per new segment, a handful
// for the root, owner, index and manifest, and no listing of blobs at all (the parent's segment index decides).
// bin/datomic is the STAND-IN (test/fixtures/datomic/bin/datomic-standin.mjs).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datomicEngine } from '../../src/engines/datomic/index.ts';
import { runBackup } from '../../src/operations/backup.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { makeLocation, type TestLocation } from '../helpers/backends.ts';
import { DATOMIC_STANDIN, standin, uniqueDbUri } from '../helpers/datomic.ts';

/** Every call the repository makes to its store, as `method key-or-prefix`. */
function counting(store: ObjectStore, calls: string[]): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || !['put', 'get', 'getBuffer', 'head', 'list', 'delete'].includes(String(prop))) return value;
      return (...args: unknown[]) => {
        calls.push(`${String(prop)} ${String(args[0])}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe.each(['minio', 'gcs'] as const)('datomic incremental backup into %s: remote calls', (backend) => {
  const log = pino({ level: 'silent' });
  const calls: string[] = [];
  let location: TestLocation;
  let store: ObjectStore;
  let repo: Repository;
  let work: string;
  const db = uniqueDbUri('calls');

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'bak-datomic-calls-'));
    process.env.DATOMIC_STANDIN_HOME = path.join(work, 'databases');
    location = await makeLocation(backend);
    store = await openStore(location.settings);
    repo = await Repository.init(counting(store, calls));
    await standin(process.env.DATOMIC_STANDIN_HOME, ['standin-create', db, '300']);
  });

  afterAll(async () => {
    await store?.close?.();
    await location?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stores only the new segments, with no listing of the repository\'s blobs', async () => {
    const source = datomicEngine.parseSource(db, { datomicBin: DATOMIC_STANDIN, staging: path.join(work, 'staging') });
    const first = await runBackup(repo, { engine: datomicEngine, source, log, concurrency: 4 });
    expect(first.engineDetails).toMatchObject({ segments: 300, newSegments: 300 });
    await standin(process.env.DATOMIC_STANDIN_HOME!, ['standin-transact', db, '3']);
    calls.length = 0;
    const second = await runBackup(repo, { engine: datomicEngine, source, log, concurrency: 4 });
    expect(second.engineDetails).toMatchObject({ segments: 303, newSegments: 3 });
    if (process.env.BAK_SHOW_CALLS) console.log(calls.join('\n'));
    const lists = calls.filter((c) => c.startsWith('list '));
    expect(lists.filter((c) => c.startsWith('list blobs'))).toEqual([]);
    // The lock and the parent lookup list their own small folders; nothing else is listed.
    for (const l of lists) expect(l).toMatch(/^list (locks\/|snapshots\/datomic-)/);
    const segmentPuts = calls.filter((c) => c.startsWith('put blobs/'));
    // 3 new segments + the root + index chunks; the owner's blob exists already (one head).
    expect(segmentPuts.length).toBeGreaterThanOrEqual(4);
    expect(calls.length, calls.join('\n')).toBeLessThanOrEqual(3 * 2 + 20);
  });
});
