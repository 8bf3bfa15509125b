// A PostgreSQL backup starts pg_dump while the repository opens (Engine.startBackup: an encrypted repository's key
// takes ~0.3 s to derive). These tests make the open slow (a --password-command that sleeps) and check what an
// operator relies on: pg_dump is already running by then; a key that fails, or a repository lock that is refused, stops
// it and leaves no staging behind and nothing in the repository; a dump that ended before the repository opened is
// stored whole (restored and compared with the test's own read of the table).
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassphraseSource } from '../../src/repository/encryption/passphrase.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { json, runBak, show } from '../helpers/cli.ts';
import { createDatabase, dropDatabase, pgEnv, pgUri, query, requirePostgres, uniqueDbName, pgDumpSessions, withTableLocked, type PgServer } from '../helpers/postgres.ts';
import { eventually } from '../helpers/poll.ts';
import type { Manifest } from '../../src/repository/manifest.ts';

const PASSPHRASE = 'early start: the right passphrase';

describe('postgres backup started while the repository opens', () => {
  let server: PgServer;
  let work: string;
  let repoDir: string;
  let staging: string;
  const db = uniqueDbName('bakearly');
  const restored = `${db}_restored`;

  beforeAll(async () => {
    server = await requirePostgres();
    work = await mkdtemp(path.join(tmpdir(), 'bak-early-'));
    repoDir = path.join(work, 'repo');
    staging = path.join(work, 'staging');
    await runBak(['init', repoDir], { env: { BAK_PASSWORD: PASSPHRASE, BAK_TEST_SCRYPT_LOG_N: '10' } }).then((r) => expect(r.code, show(r)).toBe(0));
    await createDatabase(server, db);
    await query(server, db, `CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g`);
  });

  afterAll(async () => {
    if (server) for (const d of [db, restored]) await dropDatabase(server, d).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** bak backup of the test database, the passphrase from a command that first sleeps `delay` seconds. */
  const backup = async (passphrase: string, delay: number) => {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    return runBak(['--repo', repoDir, '--password-command', `sleep ${delay}; echo '${passphrase}'`, 'backup', pgUri(server, db), '--json'], {
      env: { ...pgEnv(server), BAK_PASSWORD: '', TMPDIR: staging },
    });
  };
  const pgDumpsOnDb = () => pgDumpSessions(server, db);
  const snapshotCount = async () => {
    const repo = await Repository.open(await openStore({ url: pathToFileURL(repoDir).href }), { keys: [new PassphraseSource('test', async () => PASSPHRASE)] });
    let n = 0;
    for await (const _ of repo.listSnapshots()) n++;
    return n;
  };

  const holdingTable = <T>(fn: () => Promise<T>) => withTableLocked(server, db, 't', fn);

  it('a key that fails stops the pg_dump it started: exit 2, no pg_dump left, no staging, no snapshot', async () => {
    await holdingTable(async () => {
      const running = backup('not the passphrase', 2);
      // pg_dump connects while the password command still sleeps.
      expect(await eventually(async () => (await pgDumpsOnDb()) > 0, 1900)).toBe(true);
      const r = await running;
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain('no key opened it');
      expect(await eventually(async () => (await pgDumpsOnDb()) === 0, 5000)).toBe(true);
    });
    expect(await readdir(staging)).toEqual([]);
    expect(await snapshotCount()).toBe(0);
  }, 30_000);

  it('a repository lock refused stops the pg_dump it started: exit 1, no pg_dump left, no staging, no snapshot', async () => {
    const repo = await Repository.open(await openStore({ url: pathToFileURL(repoDir).href }), { keys: [new PassphraseSource('test', async () => PASSPHRASE)] });
    const lock = await repo.lock('exclusive', { command: 'test: gc' });
    try {
      await holdingTable(async () => {
        const running = backup(PASSPHRASE, 1);
        expect(await eventually(async () => (await pgDumpsOnDb()) > 0, 900)).toBe(true);
        const r = await running;
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr).toMatch(/lock/i);
        expect(await eventually(async () => (await pgDumpsOnDb()) === 0, 5000)).toBe(true);
      });
    } finally {
      await lock.release();
    }
    expect(await readdir(staging)).toEqual([]);
    expect(await snapshotCount()).toBe(0);
  }, 30_000);

  it('a dump that ended before the repository opened is stored whole: restored equal to the table', async () => {
    const r = await backup(PASSPHRASE, 1.5);
    expect(r.code, show(r)).toBe(0);
    const manifest = json<Manifest>(r);
    expect(manifest.totals.rows).toBe(2000);
    expect(await readdir(staging)).toEqual([]);
    const restore = await runBak(['--repo', repoDir, 'restore', manifest.id, '--to', pgUri(server), '--database', db, '--as', restored], {
      env: { ...pgEnv(server), BAK_PASSWORD: PASSPHRASE },
    });
    expect(restore.code, show(restore)).toBe(0);
    const rows = (d: string) => query(server, d, 'SELECT id, note FROM t ORDER BY id');
    expect(await rows(restored)).toEqual(await rows(db));
  }, 60_000);
});
