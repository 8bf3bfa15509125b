import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BakError, UsageError } from '../../errors.ts';
import type { ItemInfo } from '../../repository/snapshot-writer.ts';
import { mapLimit } from '../../util/concurrency.ts';
import { runTool, streamTool } from '../../util/process.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { connect, listDatabases, serverVersion, type DatabaseInfo } from './connection.ts';
import { COPY_DIGEST_ALGORITHM, CopyDigester, PG_DUMP_ENV, type CopyDigest } from './copy-digest.ts';
import { connectionString, globMatch, toolEnv, type PostgresSource } from './source.ts';
import { copyOutSql, parseBlobsToc, parseToc, tableDataEntries } from './toc.ts';
import { findPgTools, type PgTools } from './tools.ts';

export const DUMP_FILE_KIND = 'pg-dump-file';
const WORKER_DIGEST_FROM = 16 * 1024 * 1024;

function digestInWorker(file: string): Promise<CopyDigest> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./digest-worker.ts', import.meta.url), { workerData: { file } });
    worker.once('message', (result: CopyDigest) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? undefined : reject(new BakError(`digest worker for ${path.basename(file)} exited with code ${code}`))));
  });
}
export const GLOBALS_KIND = 'pg-globals';
export const GLOBALS_ITEM = 'globals.sql';

/** What the manifest records per database, for restore and its integrity check. */
export interface DumpedDatabase {
  name: string;
  sizeBytes: number;
  encoding: string;
  collate: string;
  ctype: string;
  /** When pg_dump started: its snapshot of the database is taken as it connects. */
  dumpStartedAt: string;
  dumpEncoding: string | null;
  tables: number;
  rows: number;
  largeObjects: number;
}

/** Table-data item details: enough to re-run the same COPY against a restored database and compare. */
export interface TableDataDetails {
  database: string;
  schema: string;
  table: string;
  copy: string;
  digest: string;
  algorithm: string;
}

export function selectDatabases(all: DatabaseInfo[], source: PostgresSource): DatabaseInfo[] {
  const { connection, databases, excludeDatabases } = source.options;
  if (connection.database !== undefined) {
    const named = all.find((d) => d.name === connection.database);
    if (!named) throw new BakError(`database "${connection.database}" does not exist on ${connection.host}:${connection.port} (or accepts no connections)`);
    return [named];
  }
  const chosen = all.filter(
    (d) => (!databases?.length || databases.some((g) => globMatch(g, d.name))) && !excludeDatabases?.some((g) => globMatch(g, d.name)),
  );
  if (chosen.length === 0) throw new UsageError(`no database on ${connection.host}:${connection.port} matches the selection (found: ${all.map((d) => d.name).join(', ')})`);
  return chosen;
}

/**
 * Dumps each selected database with `pg_dump -Fd -Z0 --jobs` into local staging (one database at a
 * time), then streams every file into the repository, digesting table data in the same pass. -Z0
 * leaves compression to bak, so unchanged tables dedup byte for byte and the digests see plain COPY text.
 */
export async function backupPostgres(ctx: BackupContext & { source: PostgresSource }): Promise<BackupResult> {
  const { source, writer, log } = ctx;
  const conn = source.options.connection;
  const admin = await connect(conn, conn.database ?? 'postgres');
  let version: { major: number; text: string };
  let selected: DatabaseInfo[];
  try {
    version = await serverVersion(admin);
    selected = selectDatabases(await listDatabases(admin), source);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const tools = await findPgTools(version.major, source.options.pgBin);
  log.info(`PostgreSQL ${version.text} at ${conn.host}:${conn.port}: dumping ${selected.map((d) => d.name).join(', ')} with pg_dump ${tools.version}`);

  if (source.options.globals) await backupGlobals(ctx, tools);
  const dumped: DumpedDatabase[] = [];
  for (const db of selected) {
    try {
      dumped.push(await backupDatabase(ctx, tools, db));
    } catch (err) {
      const message = `database "${db.name}": ${(err as Error).message}`;
      if (!source.options.allowPartial) throw new BakError(message, 1, { cause: err });
      log.error(message);
      writer.recordFailure(db.name, (err as Error).message);
    }
  }
  return {
    engineDetails: {
      serverVersion: version.text,
      pgDumpVersion: tools.version,
      host: `${conn.host}:${conn.port}`,
      databases: dumped,
      globals: source.options.globals,
      digestAlgorithm: COPY_DIGEST_ALGORITHM,
    },
  };
}

async function backupGlobals(ctx: BackupContext & { source: PostgresSource }, tools: PgTools): Promise<void> {
  const conn = ctx.source.options.connection;
  const args = ['--globals-only', '--no-password', `--dbname=${connectionString(conn, conn.database ?? 'postgres')}`];
  if (!ctx.source.options.rolePasswords) args.push('--no-role-passwords');
  const tool = streamTool(tools.pgDumpall, args, { env: toolEnv(conn), secrets: ctx.source.secrets });
  tool.stdin.end();
  await ctx.writer.addItem({ name: GLOBALS_ITEM, kind: GLOBALS_KIND }, tool.stdout);
  await tool.done;
}

async function backupDatabase(ctx: BackupContext & { source: PostgresSource }, tools: PgTools, db: DatabaseInfo): Promise<DumpedDatabase> {
  const { source, writer, log } = ctx;
  const conn = source.options.connection;
  const staging = await mkdtemp(path.join(tmpdir(), 'bak-pg-'));
  const dir = path.join(staging, 'dump');
  try {
    const started = Date.now();
    await runTool(
      tools.pgDump,
      ['--format=directory', '--compress=0', `--jobs=${source.options.jobs ?? 2}`, '--no-sync', '--no-password', `--file=${dir}`, `--dbname=${connectionString(conn, db.name)}`],
      { env: { ...toolEnv(conn), ...PG_DUMP_ENV, PGOPTIONS: [process.env.PGOPTIONS, PG_DUMP_ENV.PGOPTIONS].filter(Boolean).join(' ') }, secrets: source.secrets },
    );
    log.info(`dumped ${db.name} in ${((Date.now() - started) / 1000).toFixed(1)} s; storing`);
    const toc = parseToc(await readFile(path.join(dir, 'toc.dat')));
    const tables = new Map(tableDataEntries(toc).map((e) => [e.dataFile!, e]));
    const files = (await readdir(dir)).sort();
    let rows = 0;
    await mapLimit(files, 2, async (file) => {
      const entry = tables.get(file);
      const info: ItemInfo = { name: `${db.name}/${file}`, kind: DUMP_FILE_KIND };
      if (!entry) {
        await writer.addItem(info, createReadStream(path.join(dir, file)));
        return;
      }
      const filePath = path.join(dir, file);
      // A big table is digested by a worker thread (the second read comes from the page cache) while this
      // thread stores it; a small one in the same pass that stores it.
      const inWorker = (await stat(filePath)).size >= WORKER_DIGEST_FROM ? digestInWorker(filePath) : undefined;
      inWorker?.catch(() => undefined);
      const digester = inWorker ? undefined : new CopyDigester({ requireEndMarker: true });
      async function* digested() {
        for await (const chunk of createReadStream(filePath)) {
          digester?.update(chunk as Buffer);
          yield chunk as Buffer;
        }
        const result = inWorker ? await inWorker : digester!.finish();
        info.rows = result.rows;
        rows += result.rows;
        const details: TableDataDetails = {
          database: db.name,
          schema: entry!.namespace ?? '',
          table: entry!.tag ?? '',
          copy: copyOutSql(entry!),
          digest: result.digest,
          algorithm: COPY_DIGEST_ALGORITHM,
        };
        info.details = { ...details };
      }
      await writer.addItem(info, digested());
    });
    const largeObjects = files.includes('blobs.toc') ? parseBlobsToc(await readFile(path.join(dir, 'blobs.toc'), 'utf8')).length : 0;
    return {
      name: db.name,
      sizeBytes: db.sizeBytes,
      encoding: db.encoding,
      collate: db.collate,
      ctype: db.ctype,
      dumpStartedAt: new Date(started).toISOString(),
      dumpEncoding: toc.encoding,
      tables: tables.size,
      rows,
      largeObjects,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
