// The PostgreSQL engine end to end, through the real `bak` CLI against the real PostgreSQL 15 test server:
// round trip of test/fixtures/postgres/rich-schema.sql into every repository backend (local, MinIO,
// fake-gcs-server), then, on a local repository only (fast), the integrity check, export, verify --level
// restore, database selection, and every bad input the issue names, each leaving nothing visible behind.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobKey } from '../../src/repository/blobs.ts';
import type { Manifest, ManifestItem } from '../../src/repository/manifest.ts';
import { openStore } from '../../src/storage/open.ts';
import { BACKENDS, makeLocation, type BackendName, type TestLocation } from '../helpers/backends.ts';
import { runBak, writeConfig, type CliResult, show } from '../helpers/cli.ts';
import {
  createDatabase,
  createRichDatabase,
  databaseExists,
  dropDatabase,
  largeObject,
  listDatabases,
  pgEnv,
  pgUri,
  query,
  requirePostgres,
  RICH_LARGE_OBJECT_OID,
  runPgTool,
  connectionArgs,
  schemaDump,
  sequenceStates,
  tableFingerprints,
  uniqueDbName,
  unusedPort,
  type PgServer,
} from '../helpers/postgres.ts';

interface TableDetails {
  [key: string]: unknown;
  database: string;
  schema: string;
  table: string;
  rows: number;
  digest: string;
}

/** What the round trip expects in the manifest for rich-schema.sql (rows per leaf table). */
const RICH_TABLE_ROWS: Record<string, number> = {
  'public.customers': 120,
  'public.products': 30,
  'public.orders_2022': 113,
  'public.orders_2023': 114,
  'public.orders_default': 13,
  'public.order_items': 240,
  'audit.Event Log': 60,
  'audit.raw_lines': 8,
  'audit.empty_table': 0,
};

/**
 * The table-data items of one database, keyed `schema.table`. The row count may sit in `details.rows` or in
 * the item's own `rows` field (the manifest schema has one); `details.rows` is filled from whichever is set.
 */
function tableItems(manifest: Manifest, database: string): Map<string, ManifestItem & { details: TableDetails }> {
  const out = new Map<string, ManifestItem & { details: TableDetails }>();
  for (const item of manifest.items) {
    const d = item.details as Partial<TableDetails> | undefined;
    if (d?.table === undefined || d.database !== database) continue;
    if (d.rows !== undefined && item.rows !== undefined) expect(item.rows, item.name).toBe(d.rows);
    const rows = d.rows ?? item.rows;
    out.set(`${d.schema}.${d.table}`, { ...item, details: { ...d, rows } as TableDetails });
  }
  return out;
}

/** One repository on one backend, a config naming it "test", and the rich database as the source. */
class Harness {
  server!: PgServer;
  location!: TestLocation;
  configFile!: string;
  source!: string;
  private readonly databases: string[] = [];
  private readonly dirs: string[] = [];

  async setup(backend: BackendName): Promise<void> {
    this.server = await requirePostgres();
    this.location = await makeLocation(backend);
    this.source = this.track(await createRichDatabase(this.server));
    this.configFile = await writeConfig({
      repositories: { test: this.location.configEntry },
      jobs: {
        rich: {
          engine: 'postgres',
          source: pgUri(this.server, this.source),
          repository: 'test',
          options: { password: { env: 'BAK_TEST_PG_PASSWORD' } },
        },
      },
    });
    this.dirs.push(path.dirname(this.configFile));
    const init = await this.cli(['init']);
    expect(init.code, show(init)).toBe(0);
  }

  async teardown(): Promise<void> {
    if (this.server) for (const db of this.databases) await dropDatabase(this.server, db).catch(() => undefined);
    await this.location?.cleanup();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }

  /** Runs bak against the "test" repository with the server's password in PGPASSWORD (override with `env`). */
  cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runBak(['--config', this.configFile, '--repo', 'test', ...args], {
      env: { ...this.location.env, ...pgEnv(this.server), ...env },
    });
  }

  track(database: string): string {
    this.databases.push(database);
    return database;
  }

  newDatabaseName(prefix: string): string {
    return this.track(uniqueDbName(prefix));
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async backup(args: string[] = [], env: Record<string, string> = {}): Promise<Manifest> {
    const result = await this.cli(['backup', pgUri(this.server, this.source), '--json', ...args], env);
    expect(result.code, show(result)).toBe(0);
    this.expectNoPassword(result);
    return JSON.parse(result.stdout) as Manifest;
  }

  async snapshotIds(): Promise<string[]> {
    const result = await this.cli(['snapshots', '--json']);
    expect(result.code, show(result)).toBe(0);
    return (JSON.parse(result.stdout) as { snapshots: Array<{ id: string }> }).snapshots.map((s) => s.id).sort();
  }

  expectNoPassword(result: CliResult): void {
    expect(result.stdout + result.stderr).not.toContain(this.server.password);
  }

  /** The restored database holds what the source holds: schema, rows, sequences, the large object. */
  async expectSameDatabase(target: string): Promise<void> {
    const [wantSchema, gotSchema] = await Promise.all([schemaDump(this.server, this.source), schemaDump(this.server, target)]);
    expect(gotSchema).toEqual(wantSchema);
    expect(await tableFingerprints(this.server, target)).toEqual(await tableFingerprints(this.server, this.source));
    expect(await sequenceStates(this.server, target)).toEqual(await sequenceStates(this.server, this.source));
    const want = await largeObject(this.server, this.source, RICH_LARGE_OBJECT_OID);
    const got = await largeObject(this.server, target, RICH_LARGE_OBJECT_OID);
    expect(want, 'large object in the source').toBeDefined();
    expect(got, `large object ${RICH_LARGE_OBJECT_OID} in ${target}`).toBeDefined();
    expect(got!.equals(want!)).toBe(true);
  }
}

describe.each(BACKENDS)('postgres engine round trip on %s', (backend) => {
  const h = new Harness();
  let manifest: Manifest;

  beforeAll(() => h.setup(backend));
  afterAll(() => h.teardown());

  it('backs up a database into one complete snapshot listing dump files, row counts and digests', async () => {
    manifest = await h.backup(['--tag', 'roundtrip']);
    expect(manifest.engine).toBe('postgres');
    expect(manifest.status).toBe('complete');
    expect(manifest.tags).toContain('roundtrip');
    expect(manifest.failures).toEqual([]);
    expect(manifest.source).not.toContain(h.server.password);

    const names = manifest.items.map((i) => i.name);
    expect(names).toContain(`${h.source}/toc.dat`);
    expect(names).toContain('globals.sql');
    expect(names.some((n) => /^[^/]+\/\d+\.dat$/.test(n) && n.startsWith(`${h.source}/`))).toBe(true);
    // The large object is a dump file of its own in pg_dump's directory format.
    expect(names.filter((n) => n.startsWith(`${h.source}/`) && n.includes(String(RICH_LARGE_OBJECT_OID)))).not.toEqual([]);
    for (const item of manifest.items.filter((i) => i.name.startsWith(`${h.source}/`))) expect(item.kind, item.name).toBe('pg-dump-file');

    const tables = tableItems(manifest, h.source);
    expect(Object.fromEntries([...tables].map(([k, v]) => [k, v.details.rows]))).toEqual(RICH_TABLE_ROWS);
    for (const [name, item] of tables) expect(item.details.digest, name).toMatch(/\S{16,}/);
    // Order-independent digests differ between tables with different content.
    expect(new Set([...tables.values()].map((t) => t.details.digest)).size).toBeGreaterThan(tables.size - 2);

    expect(String(manifest.engineDetails.serverVersion)).toMatch(/^15\b|\b15\./);
    expect(String(manifest.engineDetails.pgDumpVersion)).toMatch(/\b1[5-9]\./);
    expect(JSON.stringify(manifest.engineDetails.databases)).toContain(h.source);

    expect(await h.snapshotIds()).toEqual([manifest.id]);

    // `bak show` names a table's data by the table (the file id stays in --json).
    const shown = await h.cli(['show', manifest.id]);
    expect(shown.code, show(shown)).toBe(0);
    expect(shown.stdout).toContain(`${h.source}: public.customers`);
    expect(shown.stdout).not.toMatch(/^\S+\/\d+\.dat /m);
    expect(shown.stdout).toContain(`${h.source}/toc.dat`);
  });

  it('restores into a new database (--as) with the same schema, rows, sequences and large object; the integrity check passes', async () => {
    const target = h.newDatabaseName('bakt_rt');
    expect(await databaseExists(h.server, target)).toBe(false);
    const result = await h.cli(['restore', manifest.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--jobs', '2']);
    expect(result.code, show(result)).toBe(0);
    h.expectNoPassword(result);
    await h.expectSameDatabase(target);
    // The source is untouched by a restore under another name.
    expect(Object.keys(await tableFingerprints(h.server, h.source))).toContain('public.customers');
  });
});

describe('postgres engine on a local repository: integrity check, export, selection and bad input', () => {
  const h = new Harness();
  let first: Manifest;
  let restored: string;

  beforeAll(async () => {
    await h.setup('local');
    first = await h.backup();
  });
  afterAll(() => h.teardown());

  /** Runs a failing command and checks that the repository shows no new snapshot afterwards. */
  async function expectFailure(args: string[], code: number | number[], env: Record<string, string> = {}): Promise<CliResult> {
    const before = await h.snapshotIds();
    const result = await h.cli(args, env);
    expect([code].flat(), show(result)).toContain(result.code);
    expect(result.stderr.trim(), 'an error message on stderr').not.toBe('');
    expect(result.stderr, 'no stack trace for an operator error').not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
    h.expectNoPassword(result);
    expect(await h.snapshotIds()).toEqual(before);
    return result;
  }

  it('a second backup of the unchanged database uploads no table data again', async () => {
    const second = await h.backup();
    expect(second.parent).toBe(first.id);
    const before = tableItems(first, h.source);
    const after = tableItems(second, h.source);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [name, item] of after) {
      expect(item.checksum, name).toBe(before.get(name)!.checksum);
      expect(item.details.digest, name).toBe(before.get(name)!.details.digest);
    }
    // Only files whose content changed (toc.dat carries the dump time) may cost new bytes.
    const known = new Set(first.items.map((i) => i.checksum));
    const changed = second.items.filter((i) => !known.has(i.checksum));
    const changedBytes = changed.reduce((n, i) => n + i.bytes, 0);
    expect(second.totals.newBytes, `changed: ${changed.map((i) => i.name).join(', ')}`).toBeLessThanOrEqual(changedBytes + 4096);
    expect(second.totals.newBytes).toBeLessThan(first.totals.newBytes);
  });

  it('backs up a config job whose password comes from an env reference', async () => {
    const result = await h.cli(['backup', '--job', 'rich', '--json'], { PGPASSWORD: '', BAK_TEST_PG_PASSWORD: h.server.password });
    expect(result.code, show(result)).toBe(0);
    const manifest = JSON.parse(result.stdout) as Manifest;
    expect(manifest.job).toBe('rich');
    expect(manifest.status).toBe('complete');
    expect(tableItems(manifest, h.source).get('public.customers')?.details.rows).toBe(120);
    expect(JSON.stringify(manifest)).not.toContain(h.server.password);
  });

  it('restores into a new database and passes the integrity check', async () => {
    restored = h.newDatabaseName('bakt_local');
    const result = await h.cli(['restore', first.id.slice(0, 24), '--to', pgUri(h.server), '--database', h.source, '--as', restored]);
    expect(result.code, show(result)).toBe(0);
    await h.expectSameDatabase(restored);
  });

  it('--profile prints CPU by thread and time by stage on stderr, and leaves --json output as it is', async () => {
    const result = await h.cli(['--profile', 'backup', pgUri(h.server, h.source), '--json']);
    expect(result.code, show(result)).toBe(0);
    expect((JSON.parse(result.stdout) as Manifest).status).toBe('complete');
    const profile = result.stderr.slice(result.stderr.indexOf('profile: '));
    const seconds = (label: string) => Number(new RegExp(`^ +${label} +([0-9.]+)`, 'm').exec(profile)?.[1] ?? NaN);
    expect(seconds('bak, all threads')).toBeGreaterThan(0);
    expect(seconds('main')).toBeGreaterThan(0);
    expect(seconds('pg dump ingest')).toBeGreaterThan(0); // the worker thread's own report arrived
    expect(seconds('bak, all threads')).toBeGreaterThanOrEqual(seconds('main') + seconds('pg dump ingest') - 0.01);
    for (const stage of ['row digest and chunk cuts +pg dump ingest +cpu', 'SHA-256 +pg dump ingest +cpu', 'read dump file +pg dump ingest +wait', 'blob exists\\? \\(head\\) +main +wait']) {
      expect(profile, stage).toMatch(new RegExp(`^  ${stage} `, 'm'));
    }
  });

  it('restores in parallel, with fewer and with more tables than jobs, even when pg_restore\'s output reaches bak only after it has finished', async () => {
    // Nothing may wait on pg_restore's lines (they only hint which pipe to feed next): a wrapper that holds back
    // all of its stderr until it exits is the worst case. With more tables than jobs bak runs the data in lanes
    // (restore-lanes.ts); before, sized placeholders raced those lines and a late line failed the restore.
    const bin = await h.tempDir('bakt-late-pg-restore-');
    for (const tool of ['pg_dump', 'pg_dumpall', 'psql']) await symlink(path.join(h.server.bin, tool), path.join(bin, tool));
    const wrapper = path.join(bin, 'pg_restore');
    const real = path.join(h.server.bin, 'pg_restore');
    await writeFile(wrapper, `#!/bin/sh\nout=$(mktemp)\n"${real}" "$@" 2>"$out"\nrc=$?\ncat "$out" >&2\nrm -f "$out"\nexit $rc\n`);
    await chmod(wrapper, 0o755);
    const tables = tableItems(first, h.source).size;
    expect(tables).toBeGreaterThan(2);
    for (const jobs of [tables + 2, 2]) {
      // tables + 2: room for the large objects' file too, so no lanes.
      const target = h.newDatabaseName('bakt_late');
      const result = await h.cli(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--jobs', String(jobs)], {
        BAK_PG_BIN: bin,
      });
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr.includes('data in 2 lanes'), `--jobs ${jobs}: ${result.stderr}`).toBe(jobs === 2);
      await h.expectSameDatabase(target);
    }
  });

  it('refuses a non-empty target without --clean or --force (exit 2) and leaves it untouched', async () => {
    const before = await tableFingerprints(h.server, restored);
    const result = await expectFailure(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', restored], 2);
    expect(result.stderr).toContain(restored);
    expect(result.stderr).toMatch(/--clean|--force/);
    expect(await tableFingerprints(h.server, restored)).toEqual(before);
  });

  it('--dry-run says what it would do and creates nothing', async () => {
    const target = h.newDatabaseName('bakt_dry');
    const result = await h.cli(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--dry-run']);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout + result.stderr).toContain(target);
    expect(await databaseExists(h.server, target)).toBe(false);
  });

  let altered: string;

  it('a table altered after the restore fails the integrity check (exit 3) naming it', async () => {
    const target = (altered = h.newDatabaseName('bakt_alt'));
    const restore = await h.cli(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--no-verify']);
    expect(restore.code, show(restore)).toBe(0);
    const check = ['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--check-only'];

    const clean = await h.cli(check);
    expect(clean.code, show(clean)).toBe(0);

    await query(h.server, target, "UPDATE customers SET name = 'tampered' WHERE id = 7");
    const changed = await h.cli(check);
    expect(changed.code, show(changed)).toBe(3);
    expect(changed.stdout + changed.stderr).toContain('customers');
    expect(changed.stdout + changed.stderr).not.toMatch(/\bproducts\b/);

    // A row missing from a quoted, mixed-case table in the second schema is named too.
    await query(h.server, target, 'DELETE FROM audit."Event Log" WHERE id = 1');
    const missing = await h.cli(check);
    expect(missing.code, show(missing)).toBe(3);
    expect(missing.stdout + missing.stderr).toContain('customers');
    expect(missing.stdout + missing.stderr).toContain('Event Log');

    // A table that is gone altogether is named as well.
    await query(h.server, target, 'DROP TABLE audit.raw_lines');
    const gone = await h.cli(check);
    expect(gone.code, show(gone)).toBe(3);
    expect(gone.stdout + gone.stderr).toContain('raw_lines');
  });

  it('--clean restores over the altered database (partitioned tables included), and the check passes again', async () => {
    const target = altered;
    const check = ['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--check-only'];
    const again = await h.cli(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target, '--clean']);
    expect(again.code, show(again)).toBe(0);
    await h.expectSameDatabase(target);
    expect((await h.cli(check)).code).toBe(0);
  });

  it('verify --level restore --scratch restores into a throwaway database, checks it and drops it', async () => {
    const before = await listDatabases(h.server);
    const result = await h.cli(['verify', first.id, '--level', 'restore', '--scratch', pgUri(h.server)]);
    expect(result.code, show(result)).toBe(0);
    const after = await listDatabases(h.server);
    expect(after.filter((d) => !before.includes(d) && !d.startsWith('bak_bench'))).toEqual([]);
  });

  it('export writes pg_dump directories that plain pg_restore restores without bak', async () => {
    const dir = await h.tempDir('bakt-export-');
    const out = path.join(dir, 'out');
    const result = await h.cli(['export', first.id, '--to-dir', out]);
    expect(result.code, show(result)).toBe(0);
    const dumpDir = path.join(out, h.source);
    expect(existsSync(path.join(dumpDir, 'toc.dat')), `${dumpDir}/toc.dat`).toBe(true);

    const list = await runPgTool(h.server, 'pg_restore', ['--list', dumpDir]);
    expect(list.stdout).toContain('TABLE DATA public customers');
    const target = await createDatabase(h.server, h.newDatabaseName('bakt_export'));
    await runPgTool(h.server, 'pg_restore', [...connectionArgs(h.server), '--exit-on-error', '--jobs', '2', '--dbname', target, dumpDir]);
    await h.expectSameDatabase(target);
  });

  it('--database / --exclude-database globs choose the databases of a server-wide backup', async () => {
    const prefix = uniqueDbName('bakt_glob');
    const [a, b] = [h.track(`${prefix}_a`), h.track(`${prefix}_b`)];
    for (const db of [a, b]) {
      await createDatabase(h.server, db);
      await query(h.server, db, `CREATE TABLE t (id int PRIMARY KEY, who text); INSERT INTO t SELECT i, '${db}' FROM generate_series(1, 5) i`);
    }
    const result = await h.cli(['backup', pgUri(h.server), '--database', `${prefix}_*`, '--exclude-database', b, '--json']);
    expect(result.code, show(result)).toBe(0);
    const manifest = JSON.parse(result.stdout) as Manifest;
    const dbs = new Set(manifest.items.filter((i) => i.name.includes('/')).map((i) => i.name.split('/')[0]));
    expect([...dbs]).toEqual([a]);
    expect(tableItems(manifest, a).get('public.t')?.details.rows).toBe(5);
    expect(JSON.stringify(manifest.engineDetails.databases)).not.toContain(b);

    await expectFailure(['backup', pgUri(h.server), '--database', `${prefix}_nomatch_*`], [1, 2]);
  });

  it('bak sources lists the databases with their sizes', async () => {
    const human = await h.cli(['sources', pgUri(h.server)]);
    expect(human.code, show(human)).toBe(0);
    expect(human.stdout).toContain(h.source);
    const json = await h.cli(['sources', pgUri(h.server), '--json']);
    expect(json.code, show(json)).toBe(0);
    const parsed = JSON.parse(json.stdout) as unknown;
    const wrapped = parsed as { sources?: unknown[]; databases?: unknown[] };
    const list = (Array.isArray(parsed) ? parsed : (wrapped.sources ?? wrapped.databases)) as Array<Record<string, unknown>>;
    expect(Array.isArray(list), json.stdout).toBe(true);
    const entry = list.find((e) => Object.values(e).includes(h.source));
    expect(entry, json.stdout).toBeDefined();
    const sizes = Object.entries(entry!).filter(([k, v]) => /size|bytes/i.test(k) && typeof v === 'number');
    expect(sizes.length, JSON.stringify(entry)).toBeGreaterThan(0);
    expect(sizes[0]![1] as number).toBeGreaterThan(1_000_000);
    expect(list.some((e) => Object.values(e).includes('template0'))).toBe(false);
  });

  describe('bad input: a clear message, the right exit code, no snapshot', () => {
    it('wrong password (exit 1), without echoing it', async () => {
      const wrong = 'wrong-pw-3f9c1e77';
      const result = await expectFailure(['backup', pgUri(h.server, h.source)], 1, { PGPASSWORD: wrong });
      expect(result.stderr).toMatch(/password authentication failed|authentication/i);
      expect(result.stdout + result.stderr).not.toContain(wrong);
      const sources = await h.cli(['sources', pgUri(h.server)], { PGPASSWORD: wrong });
      expect(sources.code, show(sources)).toBe(1);
      expect(sources.stdout + sources.stderr).not.toContain(wrong);
    });

    it('unreachable host (exit 1)', async () => {
      const port = await unusedPort();
      const result = await expectFailure(['backup', `postgres://${h.server.user}@127.0.0.1:${port}/${h.source}`], 1);
      expect(result.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1.*${port}|${port}.*127\\.0\\.0\\.1|refused|could not connect`, 'i'));
    });

    it('a database named in the URI that does not exist (exit 1 or 2)', async () => {
      const missing = uniqueDbName('bakt_missing');
      const result = await expectFailure(['backup', pgUri(h.server, missing)], [1, 2]);
      expect(result.stderr).toContain(missing);
      expect(result.stderr).toMatch(/does not exist|not found|no such database/i);
    });

    it('pg_dump missing (exit 1), saying what to install', async () => {
      const result = await expectFailure(['backup', pgUri(h.server, h.source)], 1, { BAK_PG_BIN: '/nonexistent/pg-bin' });
      expect(result.stderr).toContain('pg_dump');
      expect(result.stderr).toMatch(/install/i);
      expect(result.stderr).toMatch(/postgresql-client|BAK_PG_BIN/);
    });

    it('pg_dump older than the server (exit 1), saying so', async () => {
      const dir = await h.tempDir('bakt-oldpg-');
      for (const tool of ['pg_dump', 'pg_restore', 'pg_dumpall', 'psql']) {
        const file = path.join(dir, tool);
        await writeFile(file, `#!/bin/sh\necho "${tool} (PostgreSQL) 11.22"\nexit 0\n`);
        await chmod(file, 0o755);
      }
      const result = await expectFailure(['backup', pgUri(h.server, h.source)], 1, { BAK_PG_BIN: dir });
      expect(result.stderr).toContain('pg_dump');
      expect(result.stderr).toMatch(/too old|older|version/i);
      expect(result.stderr).toContain('15');
    });

    it('a snapshot id that does not exist (exit 2), for restore, export and verify', async () => {
      const unknown = '2020-01-01T00-00-00Z-dead';
      const target = h.newDatabaseName('bakt_never');
      const restore = await expectFailure(['restore', unknown, '--to', pgUri(h.server), '--as', target], 2);
      expect(restore.stderr).toContain(unknown);
      expect(await databaseExists(h.server, target)).toBe(false);
      const dir = await h.tempDir('bakt-export-none-');
      await expectFailure(['export', unknown, '--to-dir', path.join(dir, 'out')], 2);
      expect(existsSync(path.join(dir, 'out', h.source))).toBe(false);
      await expectFailure(['verify', unknown, '--level', 'restore', '--scratch', pgUri(h.server)], 2);
      await expectFailure(['restore', 'not-a-snapshot', '--to', pgUri(h.server), '--as', target], 2);
    });

    it('an ambiguous snapshot id prefix (exit 2)', async () => {
      const ids = await h.snapshotIds();
      expect(ids.length).toBeGreaterThanOrEqual(2);
      let prefix = '';
      while (prefix.length < ids[0]!.length && ids.every((id) => id.startsWith(ids[0]!.slice(0, prefix.length + 1)))) prefix = ids[0]!.slice(0, prefix.length + 1);
      expect(prefix.length).toBeGreaterThan(0);
      const target = h.newDatabaseName('bakt_ambig');
      const result = await expectFailure(['restore', prefix, '--to', pgUri(h.server), '--as', target], 2);
      expect(result.stderr).toMatch(/ambiguous/i);
      expect(await databaseExists(h.server, target)).toBe(false);
    });

    it('restore into a database on an unreachable server (exit 1), creating nothing', async () => {
      const port = await unusedPort();
      await expectFailure(['restore', first.id, '--to', `postgres://${h.server.user}@127.0.0.1:${port}`, '--database', h.source, '--as', 'x'], 1);
    });

    it('a corrupt blob of table data stops the restore (exit 3) naming it, and no part of that table is committed', async () => {
      const item = tableItems(first, h.source).get('public.customers')!;
      const store = await openStore(h.location.settings);
      const key = blobKey(item.blobs[0]!.id);
      const original = await store.getBuffer(key);
      const target = h.newDatabaseName('bakt_corrupt');
      try {
        await store.put(key, await store.getBuffer(blobKey(first.items.find((i) => i !== item && i.blobs.length > 0)!.blobs[0]!.id)));
        const result = await expectFailure(['restore', first.id, '--to', pgUri(h.server), '--database', h.source, '--as', target], 3);
        expect(result.stderr).toContain(item.blobs[0]!.id);
        expect(result.stderr).toContain(item.name.split('/')[1]);
        const [row] = await query<{ n: string }>(h.server, target, 'SELECT count(*)::text AS n FROM customers');
        expect(row?.n).toBe('0');
      } finally {
        await store.put(key, original);
        await store.close?.();
      }
    });
  });
});

