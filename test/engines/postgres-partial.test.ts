import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLocation, type TestLocation } from '../helpers/backends.ts';
import { runBak, writeConfig } from '../helpers/cli.ts';
import { createDatabase, dropDatabase, pgEnv, query, requirePostgres, uniqueDbName, type PgServer } from '../helpers/postgres.ts';

/**
 * One database of two cannot be dumped (the backup role may not read a table in it): the snapshot
 * fails as a whole and stays invisible, unless --allow-partial, which records the failure.
 */
describe('postgres backup when one database fails', () => {
  let server: PgServer;
  let location: TestLocation;
  let config: string;
  const prefix = uniqueDbName('bakp');
  const [good, bad] = [`${prefix}_good`, `${prefix}_bad`];
  const role = `${prefix}_role`;
  const password = 'limited-role-pw';

  beforeAll(async () => {
    server = await requirePostgres();
    location = await makeLocation('local');
    config = await writeConfig({ repositories: { r: location.configEntry }, defaults: { repository: 'r' } });
    expect((await runBak(['--config', config, 'init'])).code).toBe(0);
    await query(server, 'postgres', `CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    for (const db of [good, bad]) {
      await createDatabase(server, db);
      await query(server, db, `CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); GRANT SELECT ON t TO ${role}`);
    }
    // A table the backup role may not read: pg_dump of this database fails.
    await query(server, bad, `CREATE TABLE secret (x int); REVOKE ALL ON secret FROM PUBLIC`);
  });

  afterAll(async () => {
    for (const db of [good, bad]) await dropDatabase(server, db);
    await query(server, 'postgres', `DROP ROLE IF EXISTS ${role}`);
    await location?.cleanup();
  });

  const backup = (...extra: string[]) =>
    runBak(['--config', config, 'backup', `postgres://${role}@${server.host}:${server.port}`, '--database', `${prefix}_*`, '--json', ...extra], {
      env: { ...pgEnv(server), PGPASSWORD: password },
    });
  const snapshots = async () => JSON.parse((await runBak(['--config', config, 'ls', '--json'])).stdout).snapshots as Array<{ id: string; status: string }>;

  it('fails the whole snapshot (exit 1), names the database and the cause, leaves nothing visible', async () => {
    const result = await backup();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`database "${bad}"`);
    expect(result.stderr).toContain('permission denied');
    expect(result.stderr).toContain('secret');
    expect(result.stderr).not.toContain(password);
    expect(await snapshots()).toEqual([]);
  });

  it('with --allow-partial keeps what succeeded, marks the snapshot partial and lists the failure (exit 1)', async () => {
    const result = await backup('--allow-partial');
    expect(result.code).toBe(1);
    const manifest = JSON.parse(result.stdout);
    expect(manifest.status).toBe('partial');
    expect(manifest.failures.map((f: { item: string }) => f.item)).toEqual([bad]);
    expect(manifest.engineDetails.databases.map((d: { name: string }) => d.name)).toEqual([good]);
    expect((await snapshots()).map((s) => s.status)).toEqual(['partial']);
  });
});

/**
 * pg_dump fails in the middle of a table's data, after bak has begun storing that table (a row that
 * cannot be converted to the client encoding ends the COPY): the backup fails, no snapshot appears,
 * and the staging folder is gone.
 */
describe('postgres backup when pg_dump fails while its output is being stored', () => {
  let server: PgServer;
  let location: TestLocation;
  let config: string;
  let staging: string;
  const db = uniqueDbName('bakmid');

  beforeAll(async () => {
    server = await requirePostgres();
    location = await makeLocation('local');
    config = await writeConfig({ repositories: { r: location.configEntry }, defaults: { repository: 'r' } });
    expect((await runBak(['--config', config, 'init'])).code).toBe(0);
    staging = await mkdtemp(path.join(tmpdir(), 'bak-staging-'));
    await createDatabase(server, db);
    // ~8 MB of ASCII rows (several reads of the follower), then one row LATIN1 cannot hold.
    await query(server, db, `CREATE TABLE t (id int, pad text); INSERT INTO t SELECT g, repeat('x', 80) FROM generate_series(1, 100000) g; INSERT INTO t VALUES (0, '日本')`);
  });

  afterAll(async () => {
    await dropDatabase(server, db);
    await location?.cleanup();
    if (staging) await rm(staging, { recursive: true, force: true });
  });

  it('exits 1 with pg_dump’s error, leaves no snapshot and no staging behind', async () => {
    const result = await runBak(['--config', config, 'backup', `postgres://${server.user}@${server.host}:${server.port}/${db}`, '--json'], {
      env: { ...pgEnv(server), PGCLIENTENCODING: 'LATIN1', TMPDIR: staging },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/pg_dump/);
    expect(result.stderr).toMatch(/has no equivalent in encoding "LATIN1"/);
    expect(JSON.parse((await runBak(['--config', config, 'ls', '--json'])).stdout).snapshots).toEqual([]);
    expect(await readdir(staging)).toEqual([]);
  });
});
