import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { BakError, MismatchError, UsageError } from '../../errors.ts';
import type { Manifest, ManifestItem } from '../../repository/manifest.ts';
import { writeBlobsToFile } from '../../repository/materialize.ts';
import { mapLimit } from '../../util/concurrency.ts';
import { runTool, streamTool } from '../../util/process.ts';
import type { EngineContext, RestoreReport, RestoreTarget } from '../engine.ts';
import { DUMP_FILE_KIND, GLOBALS_ITEM, type DumpedDatabase } from './backup.ts';
import { connect, quoteIdent, serverVersion } from './connection.ts';
import { TABLE_DATA_FILE } from './dump-follow.ts';
import { checkBytes, checkRestoredDatabase, userObjectCount, type TableMismatch } from './integrity.ts';
import { dataSection, needsLanes, planLanes, useListText } from './restore-lanes.ts';
import { dataFileHint, makePipes, PipeFeeder } from './restore-pipes.ts';
import { connectionString, parsePgUri, toolEnv, type PgConnection } from './source.ts';
import { parseToc, tableDataEntries } from './toc.ts';
import { findPgTools, type PgTools } from './tools.ts';

export const postgresRestoreOptionsSchema = z
  .object({
    databases: z.array(z.string().min(1)).optional(),
    as: z.string().min(1).optional(),
    clean: z.boolean().default(false),
    force: z.boolean().default(false),
    jobs: z.number().int().positive().max(64).default(2),
    dryRun: z.boolean().default(false),
    globals: z.boolean().default(false),
    verify: z.boolean().default(true),
    /** Only run the integrity check against an existing database. */
    checkOnly: z.boolean().default(false),
    /** Restore each database under a throwaway name, check it, and drop it (`bak verify --level restore`). */
    scratch: z.boolean().default(false),
    noOwner: z.boolean().default(false),
    password: z.string().optional(),
    pgBin: z.string().optional(),
  })
  .strict();
export type PostgresRestoreOptions = z.infer<typeof postgresRestoreOptionsSchema>;

const dumpedDatabaseSchema = z
  .object({ name: z.string(), encoding: z.string(), collate: z.string(), ctype: z.string(), dumpEncoding: z.string().nullable(), largeObjects: z.number() })
  .loose();

export interface PlannedRestore {
  source: string;
  target: string;
  action: 'create' | 'clean' | 'into-existing' | 'check-only';
  tablesChecked?: number;
  rowsChecked?: number;
  mismatches?: TableMismatch[];
}

function databasesOf(manifest: Manifest): DumpedDatabase[] {
  const parsed = z.array(dumpedDatabaseSchema).safeParse(manifest.engineDetails.databases);
  if (!parsed.success) throw new BakError(`snapshot ${manifest.id} has no readable list of PostgreSQL databases`);
  return parsed.data as unknown as DumpedDatabase[];
}

/**
 * Restores databases of a snapshot into a server: creates each target database (or refuses a
 * non-empty one without --clean/--force), rebuilds the pg_dump directory in local staging, runs
 * pg_restore, then proves the result: every table's rows and digest must match the snapshot.
 */
export async function restorePostgres(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport> {
  const parsed = postgresRestoreOptionsSchema.safeParse(target.options);
  if (!parsed.success) throw new UsageError(`restore options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const options = parsed.data;
  const conn = parsePgUri(target.uri, options.password ?? process.env.PGPASSWORD);
  const secrets = [conn.password].filter((s): s is string => Boolean(s));

  let dbs = databasesOf(manifest);
  if (options.databases?.length) {
    const missing = options.databases.filter((d) => !dbs.some((x) => x.name === d));
    if (missing.length) throw new UsageError(`snapshot ${manifest.id} has no database ${missing.join(', ')} (it has: ${dbs.map((d) => d.name).join(', ')})`);
    dbs = dbs.filter((d) => options.databases!.includes(d.name));
  }
  const rename = options.scratch ? undefined : (options.as ?? conn.database);
  if (rename !== undefined && dbs.length !== 1) throw new UsageError(`--as (or a database in --to) needs exactly one database; the selection has ${dbs.length}: use --database`);
  const scratchTag = randomBytes(4).toString('hex');
  const targetName = (db: DumpedDatabase) => (options.scratch ? `bak_verify_${scratchTag}_${db.name}`.slice(0, 63) : (rename ?? db.name));

  const admin = await connect(conn, 'postgres');
  const plans: PlannedRestore[] = [];
  let tools: PgTools;
  try {
    tools = await findPgTools((await serverVersion(admin)).major, options.pgBin);
    for (const db of dbs) {
      const name = targetName(db);
      const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
      if (options.checkOnly) {
        if (!exists) throw new UsageError(`database "${name}" does not exist on ${conn.host}:${conn.port}: nothing to check`);
        plans.push({ source: db.name, target: name, action: 'check-only' });
        continue;
      }
      if (!exists) {
        plans.push({ source: db.name, target: name, action: 'create' });
        continue;
      }
      const objects = await userObjectCount(conn, name);
      if (objects > 0 && !options.clean && !options.force) {
        throw new UsageError(`database "${name}" on ${conn.host}:${conn.port} is not empty (${objects} objects): restore with --clean to drop and recreate the database, --force to restore into it as it is, or --as NEWNAME`);
      }
      plans.push({ source: db.name, target: name, action: options.clean ? 'clean' : 'into-existing' });
    }
    if (options.dryRun) return { items: plans.length, bytes: 0, details: { dryRun: true, plans } };
    if (options.globals && !options.checkOnly) await restoreGlobals(ctx, manifest, tools, conn, secrets);
    const checking = options.verify || options.checkOnly;
    // The check reads every table back (often a third or more of the time): its bytes join the goal up front, so the
    // line moves on through it instead of sitting at 100 %, and never goes back.
    if (checking) ctx.progress?.expect(0, checkBytes(manifest, dbs));
    // A check alone reads nothing from the repository: the snapshot's bytes count as handled from the start.
    if (options.checkOnly) ctx.progress?.advance(0, manifest.totals.bytes);
    const checked = (bytes: number) => ctx.progress?.advance(0, bytes);
    for (const [i, plan] of plans.entries()) {
      ctx.signal?.throwIfAborted();
      const db = dbs[i]!;
      if (plan.action === 'clean') {
        // --clean replaces the database whole: pg_restore's own --clean cannot drop partitions' inherited
        // constraints and would leave a half-dropped target behind.
        await admin.query(`DROP DATABASE ${quoteIdent(plan.target)} WITH (FORCE)`);
      }
      if (plan.action === 'create' || plan.action === 'clean') {
        await admin.query(
          `CREATE DATABASE ${quoteIdent(plan.target)} TEMPLATE template0 ENCODING '${db.encoding.replace(/'/g, "''")}' LC_COLLATE '${db.collate.replace(/'/g, "''")}' LC_CTYPE '${db.ctype.replace(/'/g, "''")}'`,
        );
      }
      try {
        if (plan.action !== 'check-only') {
          ctx.progress?.activity(`${plan.target}: pg_restore`);
          await restoreDatabase(ctx, manifest, db, plan, tools, conn, options, secrets);
        }
        if (checking) {
          ctx.progress?.activity(`${plan.target}: checking the restored rows`);
          Object.assign(plan, await checkRestoredDatabase(conn, plan.target, manifest, db, { jobs: options.jobs, onBytes: checked }));
        }
      } finally {
        if (options.scratch) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(plan.target)} WITH (FORCE)`);
      }
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
  const report: RestoreReport = { items: plans.length, bytes: bytesOf(manifest, dbs), details: { plans } };
  const bad = plans.flatMap((p) => (p.mismatches ?? []).map((m) => `${p.target}: table ${m.table}: ${m.problem}`));
  if (bad.length) throw Object.assign(new MismatchError(`integrity check failed:\n  ${bad.join('\n  ')}`), { report });
  return report;
}

function bytesOf(manifest: Manifest, dbs: DumpedDatabase[]): number {
  return manifest.items.filter((i) => dbs.some((d) => i.name.startsWith(`${d.name}/`))).reduce((n, i) => n + i.bytes, 0);
}

async function restoreDatabase(
  ctx: EngineContext,
  manifest: Manifest,
  db: DumpedDatabase,
  plan: PlannedRestore,
  tools: PgTools,
  conn: PgConnection,
  options: PostgresRestoreOptions,
  secrets: string[],
): Promise<void> {
  const staging = await mkdtemp(path.join(tmpdir(), 'bak-pg-restore-'));
  const dir = path.join(staging, 'dump');
  try {
    await mkdir(dir);
    const items = manifest.items.filter((item) => item.kind === DUMP_FILE_KIND && item.name.startsWith(`${db.name}/`));
    // Table data streams to pg_restore through pipes; toc.dat and the large objects are written out as files.
    const tableData = new Map<string, ManifestItem['blobs']>();
    const sizes = new Map<string, number>();
    const files: Array<{ file: string; item: ManifestItem }> = [];
    for (const item of items) {
      const file = item.name.slice(db.name.length + 1);
      if (file.includes('/') || file.startsWith('.')) throw new BakError(`snapshot ${manifest.id}: unexpected dump file name ${JSON.stringify(item.name)}`);
      if (!TABLE_DATA_FILE.test(file)) {
        files.push({ file, item });
        continue;
      }
      tableData.set(file, item.blobs);
      sizes.set(file, item.bytes);
    }
    // An item counts as done (progress) once written out, or fed whole into its pipe.
    const itemDone = () => ctx.progress?.advance(1, 0);
    await mapLimit(files, 2, async ({ file, item }) => {
      await writeBlobsToFile(ctx.repo.blobs, item.blobs, path.join(dir, file), { concurrency: ctx.repo.concurrency, exclusive: true });
      itemDone();
    });
    await makePipes(dir, sizes);
    const toc = parseToc(await readFile(path.join(dir, 'toc.dat')));
    const fileOfTable = new Map(tableDataEntries(toc).map((e) => [`${e.namespace}.${e.tag}`, e.dataFile!] as const));

    const stop = new AbortController();
    const feeder = new PipeFeeder(dir, ctx.repo.blobs, tableData, () => stop.abort(), itemDone);
    const common = ['--format=directory', '--verbose', '--no-password', '--exit-on-error', `--dbname=${connectionString(conn, plan.target)}`];
    if (options.noOwner) common.push('--no-owner');
    const pgRestore = (args: string[]) =>
      runTool(tools.pgRestore, [...common, ...args, dir], {
        env: toolEnv(conn),
        secrets,
        signal: stop.signal,
        onStderrLine: (line) => {
          const hint = dataFileHint(line, fileOfTable);
          if (hint) feeder.hint(hint);
          return isProgressLine(line);
        },
      });
    const data = dataSection(toc);
    const lanes = needsLanes(data, options.jobs) ? planLanes(data, options.jobs, (e) => (e.dataFile ? (sizes.get(e.dataFile) ?? 0) : 0)) : null;
    ctx.log.info(`restoring ${db.name} into ${plan.target} (${plan.action}) with pg_restore --jobs=${options.jobs}${lanes ? ` (data in ${lanes.length} lanes, biggest tables first)` : ''}`);
    feeder.start();
    let failed: unknown = null;
    const fail = (err: unknown) => {
      // The first failure stops the other pg_restores; theirs ("stopped") is not the one to report.
      if (failed === null) failed = err;
      stop.abort();
    };
    // Interrupted (bak stops on SIGINT/SIGTERM): every pg_restore is stopped, as on a failure.
    const interrupted = () => fail(ctx.signal!.reason);
    ctx.signal?.addEventListener('abort', interrupted, { once: true });
    if (ctx.signal?.aborted) interrupted();
    if (!lanes) {
      await pgRestore([`--jobs=${options.jobs}`]).catch(fail);
    } else {
      await pgRestore(['--section=pre-data']).catch(fail);
      if (failed === null) {
        await Promise.all(
          lanes.map(async (ids, i) => {
            const list = path.join(staging, `lane-${i}.list`);
            await writeFile(list, useListText(ids), { mode: 0o600 });
            await pgRestore(['--section=data', `--use-list=${list}`]).catch(fail);
          }),
        );
      }
      if (failed === null) await pgRestore(['--section=post-data', `--jobs=${options.jobs}`]).catch(fail);
    }
    // A failure feeding a pipe explains pg_restore being stopped: it is the error to report.
    await feeder.finish(failed === null);
    ctx.signal?.removeEventListener('abort', interrupted);
    if (failed !== null) throw failed;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** pg_restore --verbose progress ("processing item …", "creating TABLE …"), as opposed to errors and the context they come with. */
function isProgressLine(line: string): boolean {
  return line.startsWith('pg_restore: ') && !/^pg_restore: (?:error|warning|detail|hint|from TOC entry)/.test(line);
}

/** Roles and tablespaces, through psql; "already exists" errors are expected and reported, not fatal. */
async function restoreGlobals(ctx: EngineContext, manifest: Manifest, tools: PgTools, conn: PgConnection, secrets: string[]): Promise<void> {
  const item = manifest.items.find((i) => i.name === GLOBALS_ITEM);
  if (!item) throw new UsageError(`snapshot ${manifest.id} holds no globals (it was taken with globals: false)`);
  const psql = streamTool(tools.psql, ['-X', '-q', '--no-password', '-v', 'ON_ERROR_STOP=0', `--dbname=${connectionString(conn, 'postgres')}`, '-f', '-'], {
    env: toolEnv(conn),
    secrets,
  });
  psql.stdout.resume();
  await pipeline(ctx.repo.blobs.readStream(item.blobs), psql.stdin);
  await psql.done;
  ctx.log.info('restored roles and tablespaces (globals)');
}
