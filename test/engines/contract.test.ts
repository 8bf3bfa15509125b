import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENGINE_NAMES } from '../../src/engines/names.ts';
import { getEngine, registeredEngines } from '../../src/engines/registry.ts';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { postgresEngine } from '../../src/engines/postgres/index.ts';
import { s3Engine } from '../../src/engines/s3/index.ts';
import { spannerEngine } from '../../src/engines/spanner/index.ts';
import { bigqueryEngine } from '../../src/engines/bigquery/index.ts';
import { datomicEngine } from '../../src/engines/datomic/index.ts';
import { DATOMIC_STANDIN, dump, standin, uniqueDbUri } from '../helpers/datomic.ts';
import { allRows, dropDataset, requireBigQuery, testClient, uniqueDatasetId } from '../helpers/bigquery.ts';
import { requireSpanner, TestDatabase, uniqueDatabaseId } from '../helpers/spanner.ts';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { requireServer } from '../helpers/servers.ts';
import { dirEngine, dirUri } from '../fixtures/dir-engine.ts';
import { createRichDatabase, dropDatabase, pgUri, requirePostgres, schemaDump, tableFingerprints, uniqueDbName } from '../helpers/postgres.ts';
import { makeFixtureTree, readTree } from '../helpers/fixture-tree.ts';
import { describeEngineContract, type EngineFixture } from './engine-contract.ts';

/** Engine fixtures, one per engine; a built-in engine without one fails the check below. */
const fixtures: Record<string, () => Promise<EngineFixture>> = {
  'fixture-dir': async () => {
    const dirs: string[] = [];
    return {
      engine: dirEngine,
      makeSource: async () => {
        const tree = await makeFixtureTree({ bigBytes: 3 * 1024 * 1024, smallFiles: 50 });
        dirs.push(tree);
        return dirEngine.parseSource(dirUri(tree), {});
      },
      makeTarget: async () => {
        const target = await mkdtemp(path.join(tmpdir(), 'bak-target-'));
        dirs.push(target);
        return { uri: dirUri(target), options: {} };
      },
      assertSameData: async (source, target) => {
        const read = (uri: string) => readTree(fileURLToPath(uri.replace(/^dir:/, 'file:')));
        const [want, got] = await Promise.all([read(source.uri), read(target.uri)]);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [name, content] of want) expect(got.get(name)!.equals(content), name).toBe(true);
      },
      cleanup: async () => {
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      },
    };
  },
};

fixtures.postgres = async () => {
  const server = await requirePostgres();
  const created: string[] = [];
  const dbOf = (uri: string) => decodeURIComponent(new URL(uri).pathname.slice(1));
  return {
    engine: postgresEngine,
    makeSource: async () => {
      const db = await createRichDatabase(server, 'bakc_src');
      created.push(db);
      return postgresEngine.parseSource(pgUri(server, db), { password: server.password, pgBin: server.bin, globals: false });
    },
    makeTarget: async () => {
      const db = uniqueDbName('bakc_dst');
      created.push(db);
      return { uri: pgUri(server, db), options: { password: server.password, pgBin: server.bin } };
    },
    // Checked independently of bak's own digests: the schema as pg_dump sees it, and every table's rows.
    assertSameData: async (source, target) => {
      const [from, to] = [dbOf(source.uri), dbOf(target.uri)];
      expect(await schemaDump(server, to)).toEqual(await schemaDump(server, from));
      expect(await tableFingerprints(server, to)).toEqual(await tableFingerprints(server, from));
    },
    cleanup: async () => {
      for (const db of created) await dropDatabase(server, db);
    },
  };
};

fixtures.s3 = async () => {
  const minio = await requireServer('minio');
  const client = minioClient(minio);
  const connection = { endpoint: minio.endpoint, region: minio.region, forcePathStyle: true, checksums: 'when-required', accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
  const bucketOf = (uri: string) => new URL(uri).hostname;
  const state = async (bucket: string) => {
    const out: Record<string, unknown> = {};
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of page.Contents ?? []) {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const body = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }))).Body!.transformToByteArray());
      out[o.Key!] = { body: body.toString('base64'), type: head.ContentType, meta: head.Metadata };
    }
    return out;
  };
  return {
    engine: s3Engine,
    makeSource: async () => {
      const bucket = uniqueName('bakc-src');
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      for (const [key, body] of [['a.txt', 'alpha'], ['dir/ünï.bin', randomBytes(70_000)], ['empty', '']] as const) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/x-bak', Metadata: { origin: 'contract' } }));
      }
      return s3Engine.parseSource(`s3://${bucket}`, connection);
    },
    makeTarget: async () => {
      const bucket = uniqueName('bakc-dst');
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return { uri: `s3://${bucket}`, options: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey } };
    },
    assertSameData: async (source, target) => {
      expect(await state(bucketOf(target.uri))).toEqual(await state(bucketOf(source.uri)));
    },
    cleanup: async () => client.destroy(),
  };
};

fixtures.spanner = async () => {
  const env = await requireSpanner();
  const endpoint = `http://${env.host}`;
  const made: TestDatabase[] = [];
  const byUri = (uri: string) => made.find((d) => d.uri === uri)!;
  const ORDER = { Parent: 'Id', Child: 'Id, N DESC' };
  return {
    engine: spannerEngine,
    makeSource: async () => {
      const db = new TestDatabase(env, uniqueDatabaseId('bakc-src'));
      made.push(db);
      await db.create([
        'CREATE TABLE Parent (Id INT64 NOT NULL, Name STRING(MAX), Seen TIMESTAMP) PRIMARY KEY (Id)',
        'CREATE TABLE Child (Id INT64 NOT NULL, N INT64 NOT NULL, Data BYTES(MAX), Tags ARRAY<STRING(MAX)>) PRIMARY KEY (Id, N DESC), INTERLEAVE IN PARENT Parent ON DELETE CASCADE',
      ]);
      await db.insert('Parent', ['Id', 'Name', 'Seen'], Array.from({ length: 50 }, (_, i) => [String(i), i % 7 ? `p${i}` : null, `2026-12-01T00:00:${String(i).padStart(2, '0')}.${i}Z`]));
      await db.insert('Child', ['Id', 'N', 'Data', 'Tags'], Array.from({ length: 120 }, (_, i) => [String(i % 50), String(i), Buffer.from(`c${i}`).toString('base64'), i % 3 ? ['x', null] : []]));
      return spannerEngine.parseSource(db.uri, { endpoint });
    },
    makeTarget: async () => {
      const db = new TestDatabase(env, uniqueDatabaseId('bakc-dst'));
      made.push(db);
      return { uri: db.uri, options: { endpoint } };
    },
    // The test's own reads through the high-level client, not bak's digests.
    assertSameData: async (source, target) => {
      for (const [table, order] of Object.entries(ORDER)) expect(await byUri(target.uri).rows(table, order)).toEqual(await byUri(source.uri).rows(table, order));
    },
    cleanup: async () => {
      for (const db of made) {
        await db.drop();
        await db.close();
      }
    },
  };
};

fixtures.bigquery = async () => {
  const env = await requireBigQuery();
  const connection = { endpoint: env.endpoint, storageEndpoint: env.storageEndpoint, reader: 'tabledata' };
  const made: string[] = [];
  const datasetOf = (uri: string) => uri.split('/').pop()!;
  return {
    engine: bigqueryEngine,
    makeSource: async () => {
      const id = uniqueDatasetId('bakc_src');
      made.push(id);
      const [dataset] = await testClient(env).createDataset(id);
      const [t] = await dataset.createTable('items', { schema: { fields: [{ name: 'id', type: 'INTEGER', mode: 'REQUIRED' }, { name: 'name', type: 'STRING' }, { name: 'tags', type: 'STRING', mode: 'REPEATED' }, { name: 'at', type: 'TIMESTAMP' }] } });
      await t.insert(Array.from({ length: 40 }, (_, i) => ({ id: i, name: i % 5 ? `n${i}` : null, tags: i % 3 ? ['a', 'b'] : [], at: `2026-12-01T00:00:${String(i).padStart(2, '0')}Z` })));
      return bigqueryEngine.parseSource(`bigquery://${env.projectId}/${id}`, connection);
    },
    makeTarget: async () => {
      const id = uniqueDatasetId('bakc_dst');
      made.push(id);
      // One table at a time: the emulator's SQLite answers concurrent writes with "database is locked".
      return { uri: `bigquery://${env.projectId}/${id}`, options: { endpoint: env.endpoint, storageEndpoint: env.storageEndpoint, jobs: 1 } };
    },
    // The test's own tabledata.list reads, not bak's digests.
    assertSameData: async (source, target) => {
      expect(await allRows(env, datasetOf(target.uri), 'items')).toEqual(await allRows(env, datasetOf(source.uri), 'items'));
    },
    cleanup: async () => {
      for (const d of made) await dropDataset(env, d);
    },
  };
};

// bin/datomic is the STAND-IN (test/fixtures/datomic/bin/datomic-standin.mjs): Datomic Pro cannot be installed here.
fixtures.datomic = async () => {
  const work = await mkdtemp(path.join(tmpdir(), 'bakc-datomic-'));
  process.env.DATOMIC_STANDIN_HOME = path.join(work, 'databases');
  const home = process.env.DATOMIC_STANDIN_HOME;
  return {
    engine: datomicEngine,
    makeSource: async () => {
      const uri = uniqueDbUri('bakc-src');
      await standin(home, ['standin-create', uri, '25']);
      await standin(home, ['standin-transact', uri, '4']);
      return datomicEngine.parseSource(uri, { datomicBin: DATOMIC_STANDIN, staging: path.join(work, 'staging') });
    },
    makeTarget: async () => ({ uri: uniqueDbUri('bakc-dst'), options: { datomicBin: DATOMIC_STANDIN } }),
    // The stand-in's own reading of both databases: t, segment count and a digest of every segment's bytes.
    assertSameData: async (source, target) => {
      expect(await dump(home, target.uri)).toEqual(await dump(home, (source.options as { databaseUri: string }).databaseUri));
    },
    cleanup: async () => rm(work, { recursive: true, force: true }),
  };
};

describe('engine registry', () => {
  it('knows every engine by name and says plainly which are not built yet', () => {
    for (const name of ENGINE_NAMES) {
      if (registeredEngines().some((e) => e.name === name)) expect(getEngine(name).name).toBe(name);
      else expect(() => getEngine(name)).toThrow(`the ${name} engine is not available in this version of bak yet`);
    }
    expect(() => getEngine('oracle')).toThrow(/unknown engine "oracle"/);
  });

  it('every built-in engine joins the contract suite', () => {
    for (const engine of registeredEngines()) expect(fixtures[engine.name], `no contract fixture for ${engine.name}`).toBeDefined();
  });
});

for (const [name, make] of Object.entries(fixtures)) describeEngineContract(name, make);
