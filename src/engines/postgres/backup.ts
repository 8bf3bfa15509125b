import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { BakError, UsageError } from '../../errors.ts';
import type { HashedChunk } from '../../repository/blobs.ts';
import type { ManifestItem } from '../../repository/manifest.ts';
import type { ChunkingParams } from '../../util/chunker.ts';
import { mapLimit, TaskPool } from '../../util/concurrency.ts';
import { globMatch } from '../../util/glob.ts';
import { runTool, streamTool } from '../../util/process.ts';
import { addThreadReport, profiling, type ThreadReport } from '../../util/stage-profile.ts';
import type { Logger } from '../../log.ts';
import type { BackupContext, BackupResult, EarlyStart } from '../engine.ts';
import { connect, listDatabases, serverVersion, type DatabaseInfo } from './connection.ts';
import { COPY_DIGEST_ALGORITHM, CopyDataError, PG_DUMP_ENV, type CopyDigest } from './copy-digest.ts';
import { newTableDataFiles, type DumpProgress } from './dump-follow.ts';
import { connectionString, toolEnv, type PostgresSource } from './source.ts';
import { StagedFile } from './staged-file.ts';
import { copyOutSql, parseBlobsToc, parseToc, tableDataEntries } from './toc.ts';
import { findPgTools, probePgTools, type PgTools } from './tools.ts';
import { countedPieces } from '../../util/progress.ts';

export const DUMP_FILE_KIND = 'pg-dump-file';
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

/** What a backup dumps, with what: found before any dump starts. */
interface DumpPlan {
  version: { major: number; text: string };
  selected: DatabaseInfo[];
  tools: PgTools;
}

async function planDumps(source: PostgresSource, log: Logger): Promise<DumpPlan> {
  const conn = source.options.connection;
  // Finding pg_dump needs no server: ask the candidates while connecting.
  const probed = probePgTools(source.options.pgBin);
  probed.catch(() => undefined);
  const admin = await connect(conn, conn.database ?? 'postgres');
  let version: { major: number; text: string };
  let selected: DatabaseInfo[];
  try {
    version = await serverVersion(admin);
    selected = selectDatabases(await listDatabases(admin), source);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const tools = await findPgTools(version.major, source.options.pgBin, probed);
  log.info(`PostgreSQL ${version.text} at ${conn.host}:${conn.port}: dumping ${selected.map((d) => d.name).join(', ')} with pg_dump ${tools.version}`);
  return { version, selected, tools };
}

/**
 * A backup's start (Engine.startBackup): the plan, then the first database's pg_dump into its staging folder, begun
 * while the repository opens. pg_dump writes into local staging only, so it needs no key; what it writes meanwhile waits
 * there for the ingest. The backup takes the dump over (`takeFirstDump`); `cancel` stops a dump nobody took.
 */
export class PostgresBackupStart implements EarlyStart {
  readonly plan: Promise<DumpPlan>;
  readonly #firstDump: Promise<RunningDump | undefined>;
  #cancelled = false;
  #taken = false;

  constructor(source: PostgresSource, log: Logger) {
    this.plan = planDumps(source, log);
    this.#firstDump = this.plan.then((plan) => (this.#cancelled ? undefined : startDump(source, plan.tools, plan.selected[0]!, log)));
    this.plan.catch(() => undefined);
    this.#firstDump.catch(() => undefined);
  }

  /** The first selected database's dump, already running: the caller now ends it (endDump). */
  takeFirstDump(): Promise<RunningDump | undefined> {
    this.#taken = true;
    return this.#firstDump;
  }

  async cancel(): Promise<void> {
    this.#cancelled = true;
    if (this.#taken) return;
    this.#taken = true;
    const dump = await this.#firstDump.catch(() => undefined);
    if (dump) await endDump(dump);
  }
}

/**
 * Dumps each selected database with `pg_dump -Fd -Z0 --jobs` into local staging (one database at a
 * time), storing each table's file in the repository while pg_dump writes it and deleting it once
 * stored, so the dump and the upload overlap and staging holds only what is in flight. -Z0 leaves
 * compression to bak, so unchanged tables dedup byte for byte and the digests see plain COPY text.
 */
export async function backupPostgres(ctx: BackupContext & { source: PostgresSource }): Promise<BackupResult> {
  const { source, writer, log } = ctx;
  const conn = source.options.connection;
  const start = ctx.early instanceof PostgresBackupStart ? ctx.early : new PostgresBackupStart(source, log);
  try {
    const { version, selected, tools } = await start.plan;
    ctx.signal?.throwIfAborted();

    // Roles and tablespaces are dumped alongside the first database, not before it.
    const globals = source.options.globals ? backupGlobals(ctx, tools) : Promise.resolve();
    globals.catch(() => undefined);
    const dumped: DumpedDatabase[] = [];
    try {
      for (const [i, db] of selected.entries()) {
        ctx.progress?.activity(`${db.name}: pg_dump`);
        try {
          const dump = i === 0 ? await start.takeFirstDump() : await startDump(source, tools, db, log);
          if (!dump) throw new BakError('the dump was cancelled');
          dumped.push(await backupDatabase(ctx, dump));
        } catch (err) {
          if (ctx.signal?.aborted) throw ctx.signal.reason;
          const message = `database "${db.name}": ${(err as Error).message}`;
          if (!source.options.allowPartial) throw new BakError(message, 1, { cause: err });
          log.error(message);
          writer.recordFailure(db.name, (err as Error).message);
        }
      }
    } finally {
      await globals.catch(() => undefined); // pg_dumpall is done before any error is reported
    }
    await globals;
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
  } finally {
    // A first dump nobody took (the plan failed after all, or an error came first) is stopped and its staging removed.
    await start.cancel();
  }
}

async function backupGlobals(ctx: BackupContext & { source: PostgresSource }, tools: PgTools): Promise<void> {
  const conn = ctx.source.options.connection;
  const args = ['--globals-only', '--no-password', `--dbname=${connectionString(conn, conn.database ?? 'postgres')}`];
  if (!ctx.source.options.rolePasswords) args.push('--no-role-passwords');
  const tool = streamTool(tools.pgDumpall, args, { env: toolEnv(conn), secrets: ctx.source.secrets });
  tool.stdin.end();
  const item = await ctx.writer.addItem({ name: GLOBALS_ITEM, kind: GLOBALS_KIND }, tool.stdout);
  await tool.done;
  ctx.progress?.advance(1, item.bytes);
}

/** One database's pg_dump, running into its own staging folder; endDump stops it (if it still runs) and removes the folder. */
interface RunningDump {
  db: DatabaseInfo;
  staging: string;
  dir: string;
  progress: DumpProgress;
  startedAt: number;
  /** Settles as pg_dump exits: rejects with its failure. */
  exited: Promise<void>;
  stop: AbortController;
}

async function startDump(source: PostgresSource, tools: PgTools, db: DatabaseInfo, log: Logger): Promise<RunningDump> {
  const conn = source.options.connection;
  const jobs = source.options.jobs ?? 2;
  const staging = await mkdtemp(path.join(tmpdir(), 'bak-pg-'));
  const dir = path.join(staging, 'dump');
  const progress: DumpProgress = { exited: false, failure: null };
  const stop = new AbortController();
  const startedAt = Date.now();
  const exited = runTool(
    tools.pgDump,
    ['--format=directory', '--compress=0', `--jobs=${jobs}`, '--no-sync', '--no-password', `--file=${dir}`, `--dbname=${connectionString(conn, db.name)}`],
    { env: { ...toolEnv(conn), ...PG_DUMP_ENV, PGOPTIONS: [process.env.PGOPTIONS, PG_DUMP_ENV.PGOPTIONS].filter(Boolean).join(' ') }, secrets: source.secrets, signal: stop.signal },
  ).then(
    () => {
      progress.exited = true;
      log.info(`dumped ${db.name} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    },
    (err: Error) => {
      progress.failure = err;
      progress.exited = true;
      throw err;
    },
  );
  exited.catch(() => undefined);
  return { db, staging, dir, progress, startedAt, exited, stop };
}

async function endDump(dump: RunningDump): Promise<void> {
  if (!dump.progress.exited) dump.stop.abort();
  await dump.exited.catch(() => undefined);
  await rm(dump.staging, { recursive: true, force: true });
}

/** Stores one database's running dump; whatever happens, the dump ends and its staging goes. */
async function backupDatabase(ctx: BackupContext & { source: PostgresSource }, dump: RunningDump): Promise<DumpedDatabase> {
  try {
    return await storeDump(ctx, dump);
  } finally {
    await endDump(dump);
  }
}

async function storeDump(ctx: BackupContext & { source: PostgresSource }, dump: RunningDump): Promise<DumpedDatabase> {
  const { source, writer } = ctx;
  const { db, dir, progress } = dump;
  const jobs = source.options.jobs ?? 2;
  // Interrupted (bak stops on SIGINT/SIGTERM): pg_dump is stopped, and the followers end with its failure.
  const stopOnAbort = () => dump.stop.abort();
  ctx.signal?.addEventListener('abort', stopOnAbort, { once: true });
  if (ctx.signal?.aborted) stopOnAbort();
  const ingest = new DumpIngestWorker(ctx.repo.blobs.chunkingParams, ctx.repo.blobs.writeConcurrency);
  dump.exited.then(
    () => ingest.dumpExited(),
    (err: Error) => ingest.dumpFailed(err.message),
  );
  const followed = new Map<string, { item: ManifestItem; digest: Promise<CopyDigest> }>();
  try {
    // Store each table's data as pg_dump writes it: the worker reads, digests, cuts and hashes it; this thread stores the chunks.
    const pool = new TaskPool(Math.max(2, jobs));
    try {
      for await (const file of newTableDataFiles(dir, progress)) {
        await pool.submit(async () => {
          const staged = new StagedFile(path.join(dir, file));
          const { chunks, digest } = ingest.ingest(staged.path);
          digest.catch(() => undefined);
          const item = await writer.addChunkedItem({ name: `${db.name}/${file}`, kind: DUMP_FILE_KIND }, countedPieces(staged.freeingAsRead(chunks), ctx.progress, (chunk) => chunk.data.length));
          ctx.progress?.advance(1, 0);
          followed.set(file, { item, digest });
          await digest;
          await staged.remove();
        });
      }
      await pool.drain();
    } finally {
      // A failed dump ends the followers; let every task settle before the error is reported.
      await pool.drain().catch(() => undefined);
    }
    await dump.exited;

    const toc = parseToc(await readFile(path.join(dir, 'toc.dat')));
    const tables = new Map(tableDataEntries(toc).map((e) => [e.dataFile!, e]));
    let rows = 0;
    // Which table a data file holds is known only from toc.dat, which pg_dump writes last: complete the
    // items' records now (they are the manifest's own, written at commit).
    for (const [file, { item, digest }] of followed) {
      const entry = tables.get(file);
      if (!entry) throw new BakError(`pg_dump wrote ${file}, which its toc.dat does not list as table data`);
      const result = await digest;
      const details: TableDataDetails = {
        database: db.name,
        schema: entry.namespace ?? '',
        table: entry.tag ?? '',
        copy: copyOutSql(entry),
        digest: result.digest,
        algorithm: COPY_DIGEST_ALGORITHM,
      };
      item.rows = result.rows;
      item.details = { ...details };
      rows += result.rows;
    }
    const missing = [...tables.keys()].filter((f) => !followed.has(f));
    if (missing.length > 0) throw new BakError(`pg_dump's toc.dat lists table data files it did not write: ${missing.join(', ')}`);

    // The rest (toc.dat, large objects) is small next to table data, and complete now.
    const rest = (await readdir(dir)).filter((f) => !followed.has(f)).sort();
    await mapLimit(rest, 2, async (file) => {
      const item = await writer.addItem({ name: `${db.name}/${file}`, kind: DUMP_FILE_KIND }, createReadStream(path.join(dir, file)));
      ctx.progress?.advance(1, item.bytes);
    });
    const largeObjects = rest.includes('blobs.toc') ? parseBlobsToc(await readFile(path.join(dir, 'blobs.toc'), 'utf8')).length : 0;
    return {
      name: db.name,
      sizeBytes: db.sizeBytes,
      encoding: db.encoding,
      collate: db.collate,
      ctype: db.ctype,
      dumpStartedAt: new Date(dump.startedAt).toISOString(),
      dumpEncoding: toc.encoding,
      tables: tables.size,
      rows,
      largeObjects,
    };
  } finally {
    // Storing failed while pg_dump still runs: stop it before its staging folder goes.
    if (!progress.exited) dump.stop.abort();
    await dump.exited.catch(() => undefined);
    await ingest.close();
    ctx.signal?.removeEventListener('abort', stopOnAbort);
  }
}

type IngestMessage =
  | { profile: ThreadReport }
  | { file: string; buffer: number; length: number; id: string }
  | { file: string; rows: number; digest: string }
  | { file: string; error: string };

/**
 * The ingest worker thread (dump-ingest-worker.ts), one per database dump: it hands each table data file
 * back as hashed chunks in buffers both threads share (each handed back once stored) and the file's row digest.
 */
class DumpIngestWorker {
  readonly #worker: Worker;
  readonly #buffers: Buffer[];
  readonly #files = new Map<string, { chunks: Readable; resolve: (d: CopyDigest) => void; reject: (e: Error) => void }>();
  #failure: Error | null = null;
  #onProfile: ((report: ThreadReport) => void) | undefined;

  constructor(chunking: ChunkingParams, storeConcurrency: number) {
    // Two files at once, each with its stores in flight and one chunk being filled.
    const buffers = Array.from({ length: 2 * (storeConcurrency + 1) }, () => new SharedArrayBuffer(chunking.max));
    this.#buffers = buffers.map((b) => Buffer.from(b));
    this.#worker = new Worker(new URL('./dump-ingest-worker.ts', import.meta.url), { workerData: { chunking, buffers } });
    this.#worker.on('message', (m: IngestMessage) => this.#receive(m));
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new BakError(`the dump ingest worker exited with code ${code}`)));
  }

  ingest(file: string): { chunks: AsyncIterable<HashedChunk>; digest: Promise<CopyDigest> } {
    const chunks = new Readable({ objectMode: true, read() {} });
    const digest = new Promise<CopyDigest>((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#files.set(file, { chunks, resolve, reject });
      this.#worker.postMessage({ file });
    });
    digest.catch((err: Error) => chunks.destroy(err));
    return { chunks, digest };
  }

  dumpExited(): void {
    this.#worker.postMessage({ exited: true });
  }

  dumpFailed(message: string): void {
    this.#worker.postMessage({ failed: message });
  }

  async close(): Promise<void> {
    if (profiling() && !this.#failure) await this.#collectProfile();
    this.#worker.removeAllListeners('exit');
    await this.#worker.terminate();
  }

  /** Asks the worker for its stage timings (bak --profile), waiting at most a second for them. */
  async #collectProfile(): Promise<void> {
    const report = new Promise<void>((resolve) => {
      this.#onProfile = (r) => {
        addThreadReport(r);
        resolve();
      };
      this.#worker.postMessage({ report: true });
    });
    await Promise.race([report, sleep(1000, undefined, { ref: false })]);
  }

  #receive(m: IngestMessage): void {
    if ('profile' in m) return this.#onProfile?.(m.profile);
    const entry = this.#files.get(m.file);
    if (!entry) return;
    if ('buffer' in m) {
      // Once stored, the buffer goes back to the worker for a next chunk.
      const release = () => this.#worker.postMessage({ give: m.buffer });
      entry.chunks.push({ id: m.id, data: this.#buffers[m.buffer]!.subarray(0, m.length), release } satisfies HashedChunk);
      return;
    }
    this.#files.delete(m.file);
    if ('error' in m) return entry.reject(new CopyDataError(`${path.basename(m.file)}: ${m.error}`));
    entry.chunks.push(null);
    entry.resolve({ rows: m.rows, digest: m.digest });
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const entry of this.#files.values()) entry.reject(err);
    this.#files.clear();
  }
}
