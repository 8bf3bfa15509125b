// What the Spanner, BigQuery and Datomic engines tell a progress line, checked in-process against the real servers
// (handy-spanner, the BigQuery emulator, the bin/datomic STAND-IN): a backup's advanced items and bytes add up to what
// its snapshot records, the totals are declared final once and nothing is discovered after, and a restore names what
// it works on and counts its items.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigqueryEngine } from '../../src/engines/bigquery/index.ts';
import { datomicEngine } from '../../src/engines/datomic/index.ts';
import type { Engine, RestoreTarget, Source } from '../../src/engines/engine.ts';
import { spannerEngine } from '../../src/engines/spanner/index.ts';
import { runBackup } from '../../src/operations/backup.ts';
import { runRestore } from '../../src/operations/restore.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import type { ProgressSink } from '../../src/util/progress.ts';
import { makeLocation, type TestLocation } from '../helpers/backends.ts';
import { dropDataset, requireBigQuery, testClient, uniqueDatasetId } from '../helpers/bigquery.ts';
import { DATOMIC_STANDIN, standin, uniqueDbUri } from '../helpers/datomic.ts';
import { requireSpanner, TestDatabase, uniqueDatabaseId } from '../helpers/spanner.ts';

/** A ProgressSink that only records. */
class Recorder implements ProgressSink {
  items = 0;
  bytes = 0;
  expectedItems = 0;
  expectedBytes = 0;
  totalsKnownCalls = 0;
  expectAfterTotalsKnown = 0;
  readonly activities: string[] = [];

  activity(label: string): void {
    this.activities.push(label);
  }
  expect(items: number, bytes: number): void {
    if (this.totalsKnownCalls > 0) this.expectAfterTotalsKnown++;
    this.expectedItems += items;
    this.expectedBytes += bytes;
  }
  totalsKnown(): void {
    this.totalsKnownCalls++;
  }
  advance(items: number, bytes: number): void {
    this.items += items;
    this.bytes += bytes;
  }
}

const log = pino({ level: 'silent' });

describe('engines report progress', () => {
  let location: TestLocation;
  let store: ObjectStore;
  let repo: Repository;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    location = await makeLocation('local');
    store = await openStore(location.settings);
    repo = await Repository.init(store);
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await store?.close?.();
    await location?.cleanup();
  });

  const backup = async (engine: Engine, source: Source) => {
    const progress = new Recorder();
    const manifest = await runBackup(repo, { engine, source, log, concurrency: 4, progress });
    expect(manifest.status).toBe('complete');
    expect(progress.totalsKnownCalls).toBe(1);
    expect(progress.expectAfterTotalsKnown).toBe(0);
    expect(progress.activities.length).toBeGreaterThan(0);
    return { manifest, progress };
  };

  const restore = async (manifest: Manifest, target: RestoreTarget) => {
    const progress = new Recorder();
    await runRestore(repo, manifest, { target, dryRun: false, log, concurrency: 4, progress });
    // Beyond the operation's own label ("restore <id>"), the engine names what it is on.
    expect(progress.activities.length).toBeGreaterThan(1);
    return progress;
  };

  it('spanner export mode: every table advanced once, every stored byte counted as it was stored', async () => {
    const env = await requireSpanner();
    const endpoint = `http://${env.host}`;
    const made = [new TestDatabase(env, uniqueDatabaseId('bakp-src')), new TestDatabase(env, uniqueDatabaseId('bakp-dst'))];
    const [db, target] = made as [TestDatabase, TestDatabase];
    cleanups.push(async () => {
      for (const d of made) {
        await d.drop().catch(() => undefined);
        await d.close();
      }
    });
    await db.create([
      'CREATE TABLE Parent (Id INT64 NOT NULL, Name STRING(MAX)) PRIMARY KEY (Id)',
      'CREATE TABLE Child (Id INT64 NOT NULL, N INT64 NOT NULL, Data STRING(MAX)) PRIMARY KEY (Id, N), INTERLEAVE IN PARENT Parent ON DELETE CASCADE',
      'CREATE TABLE Empty (K STRING(10) NOT NULL) PRIMARY KEY (K)',
    ]);
    await db.insert('Parent', ['Id', 'Name'], Array.from({ length: 40 }, (_, i) => [String(i), `p${i}`]));
    // Big enough for several Avro files of the smallest size allowed.
    await db.insert('Child', ['Id', 'N', 'Data'], Array.from({ length: 600 }, (_, i) => [String(i % 40), String(i), `c${i} ${'x'.repeat(300)}`]));
    const { manifest, progress } = await backup(spannerEngine, spannerEngine.parseSource(db.uri, { endpoint, avroFileBytes: 64 * 1024 }));
    const tables = manifest.engineDetails.tables as Array<{ files: string[] }>;
    expect(tables.length).toBe(3);
    expect(tables.flatMap((t) => t.files).length).toBeGreaterThan(3);
    expect(progress.expectedItems).toBe(3);
    expect(progress.items).toBe(3);
    expect(progress.bytes).toBe(manifest.totals.bytes);

    const restored = await restore(manifest, { uri: target.uri, options: { endpoint } });
    // One per Avro file loaded (the DDL item is not read: the schema comes from the manifest).
    expect(restored.items).toBe(tables.flatMap((t) => t.files).length);
  });

  it('bigquery extract mode: tables advanced as recorded, bytes as read, carried units counted on the next backup', async () => {
    const env = await requireBigQuery();
    const id = uniqueDatasetId('bakp_src');
    const targetId = uniqueDatasetId('bakp_dst');
    cleanups.push(() => dropDataset(env, id), () => dropDataset(env, targetId));
    const [dataset] = await testClient(env).createDataset(id);
    const schema = { fields: [{ name: 'id', type: 'INTEGER', mode: 'REQUIRED' }, { name: 'name', type: 'STRING' }] };
    for (const name of ['a', 'b']) {
      const [t] = await dataset.createTable(name, { schema });
      await t.insert(Array.from({ length: 30 }, (_, i) => ({ id: i, name: `${name}${i}` })));
    }
    await dataset.createTable('v', { view: { query: `SELECT id FROM \`${env.projectId}.${id}.a\``, useLegacySql: false } } as never);
    const source = bigqueryEngine.parseSource(`bigquery://${env.projectId}/${id}`, { endpoint: env.endpoint, storageEndpoint: env.storageEndpoint, reader: 'tabledata' });
    const first = await backup(bigqueryEngine, source);
    expect(first.manifest.totals.items).toBe(3);
    expect(first.manifest.totals.bytes).toBeGreaterThan(0);
    expect(first.progress.expectedItems).toBe(3);
    expect(first.progress.items).toBe(first.manifest.totals.items);
    expect(first.progress.bytes).toBe(first.manifest.totals.bytes);

    // Nothing changed: every unit is carried, and counted all the same.
    const second = await backup(bigqueryEngine, source);
    expect((second.manifest.engineDetails as { unitsTaken: number }).unitsTaken).toBe(0);
    expect(second.progress.items).toBe(second.manifest.totals.items);
    expect(second.progress.bytes).toBe(second.manifest.totals.bytes);

    const restored = await restore(first.manifest, { uri: `bigquery://${env.projectId}/${targetId}`, options: { endpoint: env.endpoint, storageEndpoint: env.storageEndpoint, jobs: 1 } });
    expect(restored.items).toBe(3);
  });

  it('datomic: every segment expected as listed and advanced as stored or carried, the owner and the root too', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'bakp-datomic-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const home = path.join(work, 'databases');
    process.env.DATOMIC_STANDIN_HOME = home;
    const uri = uniqueDbUri('bakp-src');
    await standin(home, ['standin-create', uri, '40']);
    const source = datomicEngine.parseSource(uri, { datomicBin: DATOMIC_STANDIN, staging: path.join(work, 'staging') });
    const first = await backup(datomicEngine, source);
    expect(first.manifest.engineDetails).toMatchObject({ segments: 40, newSegments: 40 });
    expect(first.progress.expectedItems).toBe(first.manifest.totals.items);
    expect(first.progress.items).toBe(first.manifest.totals.items);
    expect(first.progress.bytes).toBe(first.manifest.totals.bytes);

    await standin(home, ['standin-transact', uri, '3']);
    const second = await backup(datomicEngine, source);
    expect(second.manifest.engineDetails).toMatchObject({ segments: 43, newSegments: 3 });
    expect(second.progress.items).toBe(second.manifest.totals.items);
    expect(second.progress.bytes).toBe(second.manifest.totals.bytes);

    const restored = await restore(second.manifest, { uri: uniqueDbUri('bakp-dst'), options: { datomicBin: DATOMIC_STANDIN } });
    expect(restored.items).toBe(second.manifest.totals.items);
  });
});
