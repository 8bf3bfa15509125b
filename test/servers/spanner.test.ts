import { randomBytes } from 'node:crypto';
import { Spanner, type Database } from '@google-cloud/spanner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../helpers/servers.ts';

describe('handy-spanner test server', () => {
  const databaseId = `bak-smoke-${randomBytes(4).toString('hex')}`;
  let spanner: Spanner | undefined;
  let database: Database | undefined;

  beforeAll(async () => {
    const env = await requireServer('spanner');
    // SPANNER_EMULATOR_HOST (host:port, no scheme) makes the v9 client set servicePath and port and use insecure gRPC
    // credentials (as passing sslCreds: grpc.credentials.createInsecure() would): no auth, and its Cloud Monitoring metrics off.
    process.env.SPANNER_EMULATOR_HOST = env.host;
    // handy-spanner ignores CreateSession's multiplexed flag and hands back a regular session; the client, which asks for
    // multiplexed sessions by default, then 'releases' it into its regular pool and fails with "Unable to release unknown
    // resource". The regular session pool works, so use it for every kind of transaction.
    process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS = 'false';
    process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW = 'false';
    process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_PARTITIONED_OPS = 'false';
    spanner = new Spanner({
      projectId: env.projectId,
      // Set explicitly so the transport does not ask for default credentials to learn it (that would probe the GCE metadata server).
      universeDomain: 'googleapis.com',
      disableBuiltInMetrics: true,
    });
    // handy-spanner has no InstanceAdmin: instances are implicit, so the instance is used without creating it.
    const instance = spanner.instance(env.instanceId);
    const [db, operation] = await instance.createDatabase(databaseId, {
      schema: [
        `CREATE TABLE Items (
           Id INT64 NOT NULL,
           Name STRING(MAX),
           Price FLOAT64,
           Tags ARRAY<STRING(64)>,
         ) PRIMARY KEY (Id)`,
      ],
    });
    await operation.promise();
    database = db;
  });

  afterAll(async () => {
    try {
      await database?.delete();
    } catch {
      // best effort: handy-spanner keeps data in memory only
    }
    await database?.close();
    spanner?.close();
  });

  it('inserts rows and queries them back', async () => {
    const db = database!;
    const rows = [
      { Id: 1, Name: 'one', Price: 1.5, Tags: ['a', 'b'] },
      { Id: 2, Name: 'two', Price: 2.25, Tags: [] },
      { Id: 3, Name: null, Price: null, Tags: null },
    ];
    await db.table('Items').insert(rows);

    const [result] = await db.run({ sql: 'SELECT Id, Name, Price, Tags FROM Items WHERE Id >= @min ORDER BY Id', params: { min: 1 }, json: true });
    expect(result).toEqual(rows);

    // handy-spanner runs DML only through ExecuteSql/ExecuteBatchDml, while the client's runUpdate streams
    // (ExecuteStreamingSql, which handy-spanner parses as a query): batchUpdate is the DML path that works.
    await db.runTransactionAsync(async (tx) => {
      const [counts] = await tx.batchUpdate([{ sql: "UPDATE Items SET Name = 'three' WHERE Id = 3" }]);
      expect(counts).toEqual([1]);
      await tx.commit();
    });
    const [after] = await db.run({ sql: 'SELECT Name FROM Items WHERE Id = 3', json: true });
    expect(after).toEqual([{ Name: 'three' }]);
  });
});
