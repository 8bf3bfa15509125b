import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BakError, MismatchError, UsageError } from '../../errors.ts';
import type { Manifest, ManifestItem } from '../../repository/manifest.ts';
import type { Repository } from '../../repository/repository.ts';
import { Limiter } from '../../util/concurrency.ts';
import type { ProgressSink } from '../../util/progress.ts';
import { describeZodError } from '../../util/validation.ts';
import type { EngineContext, RestoreReport, RestoreTarget } from '../engine.ts';
import { tableRestoreFields } from '../restore-options.ts';
import { newAvroDecoder } from './avro.ts';
import type { BackedUpTable } from './backup.ts';
import { cellCodec } from './cells.ts';
import { snapshotContent, type SpannerSnapshotContent } from './content.ts';
import { describeSpannerError, openClients, type SpannerClients } from './client.ts';
import { checkRestoredTables, describeMismatch, type IntegrityResult } from './integrity.ts';
import { nativeDetails, restoreNative } from './native.ts';
import { queryRows } from './query.ts';
import { keepForeignKeysWithin, parentsFirst, restoreDdl, selectTables, type DatabaseSchema, type TableSchema } from './schema.ts';
import { describeDatabase, openSession, type DatabaseSession } from './session.ts';
import { databasePath, parseSpannerUri, spannerConnectionFields, type DatabaseRef } from './source.ts';
import { encodeProtoValue, type RawCell } from './types.ts';

export const spannerRestoreOptionsSchema = z
  .object({
    ...spannerConnectionFields,
    /** Only these tables of the snapshot (globs); a child needs its parent. */
    tables: z.array(z.string().min(1)).optional(),
    // force: load into a database that has tables; scratch: a throwaway database in the target's instance.
    ...tableRestoreFields,
    /**
     * Per commit: Spanner allows 80,000 mutations (cells, with index entries) and 100 MiB; Google's import commits about
     * 1 MiB at a time. 3 MiB also stays under the 4 MiB a gRPC server takes by default (handy-spanner does not raise it).
     */
    mutationsPerCommit: z.number().int().positive().max(80_000).default(40_000),
    bytesPerCommit: z.number().int().positive().max(100 * 1024 * 1024).default(3 * 1024 * 1024),
  })
  .strict();
export type SpannerRestoreOptions = z.infer<typeof spannerRestoreOptionsSchema>;

export interface SpannerRestorePlan {
  source: string;
  target: string;
  action: 'create' | 'into-empty' | 'into-existing' | 'check-only';
  tables: number;
  rows: number;
  tablesChecked?: number;
  rowsChecked?: number;
  commits?: number;
}

/**
 * Restores a snapshot into a Spanner database: the tables (parents first), then the rows, parents before children and
 * independent trees `jobs` at a time, in commits under Spanner's limits, then indexes and foreign keys, as Google's
 * import does; then the integrity check (row counts and cell digests of every table).
 */
export async function restoreSpanner(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport> {
  const parsed = spannerRestoreOptionsSchema.safeParse(target.options);
  if (!parsed.success) throw new UsageError(`spanner restore options: ${describeZodError(parsed.error, target.options).replace(/\n/g, '; ')}`);
  const options = parsed.data;
  let ref = parseSpannerUri(target.uri);
  if (options.scratch) ref = { ...ref, database: `bak-verify-${randomBytes(4).toString('hex')}` };

  const native = nativeDetails(manifest);
  if (native) {
    const clients = openClients(options);
    try {
      if (options.dryRun) return { items: 1, bytes: 0, details: { dryRun: true, plans: [{ source: native.backup, target: databasePath(ref), action: 'create' }] } };
      ctx.progress?.activity(`${ref.database}: restoring managed backup ${native.backup.split('/').pop()}`);
      const restored = await restoreNative(clients.admin, native, ref, clients.where);
      // Spanner restores it on the server: nothing is read from the repository.
      ctx.progress?.advance(1, native.sizeBytes);
      if (options.scratch) await clients.admin.dropDatabase({ database: restored.database }).catch(() => undefined);
      return { items: 1, bytes: native.sizeBytes, details: { plans: [{ source: native.backup, target: restored.database, action: 'create' }] } };
    } finally {
      await clients.close();
    }
  }

  const content = snapshotContent(manifest);
  const selected = selectRestoreTables(content, options.tables, manifest.id);
  const plan: SpannerRestorePlan = {
    source: String(manifest.engineDetails.database ?? manifest.source),
    target: databasePath(ref),
    action: 'create',
    tables: selected.length,
    rows: selected.reduce((sum, t) => sum + t.recorded.rows, 0),
  };
  const what = `restore into ${databasePath(ref)}`;
  const clients = openClients(options);
  let session: DatabaseSession | undefined;
  let created = false;
  try {
    const existing = await describeDatabase(clients, ref, what);
    if (options.checkOnly) {
      if (!existing) throw new UsageError(`Spanner database ${databasePath(ref)} does not exist at ${clients.where}: nothing to check`);
      plan.action = 'check-only';
    } else if (existing) {
      session = await openSession(options, ref, what, clients);
      const tables = await userTables(session);
      if (tables.length > 0 && !options.force) {
        throw new UsageError(`Spanner database ${databasePath(ref)} is not empty (${tables.length} tables: ${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ' …' : ''}): restore into a new database, or pass --force to load into it as it is`);
      }
      plan.action = tables.length > 0 ? 'into-existing' : 'into-empty';
    }
    if (options.dryRun) return { items: 0, bytes: 0, details: { dryRun: true, plans: [plan] } };

    const kept = keepForeignKeysWithin(selected.map((t) => t.schema));
    for (const fk of kept.dropped) ctx.log.warn(`foreign key ${fk} is not restored: its table is not restored`);
    const schema: DatabaseSchema = { ...content.schema, tables: kept.tables };
    const ddl = restoreDdl({ ...schema, views: options.tables ? [] : content.schema.views });
    if (plan.action === 'create') {
      ctx.log.info(`creating Spanner database ${databasePath(ref)} with ${ddl.tables.length} tables`);
      const [operation] = await clients.admin.createDatabase({ parent: `projects/${ref.project}/instances/${ref.instance}`, createStatement: `CREATE DATABASE \`${ref.database}\``, extraStatements: ddl.tables });
      created = true;
      await operation.promise();
    } else if (plan.action === 'into-empty' || plan.action === 'into-existing') {
      const have = new Set(await userTables(session!));
      const missing = parentsFirst(schema.tables).filter((t) => !have.has(t.name));
      if (missing.length) await updateDdl(clients, ref, restoreDdl({ ...schema, tables: missing, views: [] }).tables);
    }
    session ??= await openSession(options, ref, what, clients);

    let commits = 0;
    let bytes = 0;
    if (plan.action !== 'check-only') {
      // A fresh database takes plain inserts (insert-or-update with no non-key column is not valid on every server);
      // rows already there (--force) are updated.
      const mutation = plan.action === 'into-existing' ? 'insertOrUpdate' : 'insert';
      const loaded = await loadTables(ctx.repo, manifest, session, selected, { ...options, mutation }, ctx.signal, ctx.progress);
      commits = loaded.commits;
      bytes = loaded.bytes;
      plan.commits = commits;
      if (ddl.afterData.length) {
        ctx.log.info(`creating ${ddl.afterData.length} indexes, foreign keys and views`);
        ctx.progress?.activity(`${ref.database}: creating indexes, foreign keys and views`);
        await updateDdl(clients, ref, plan.action === 'create' || plan.action === 'into-empty' ? ddl.afterData : await missingAfterData(session, ddl.afterData));
        await assertSchemaCreated(session, schema);
      }
    }

    if (options.verify || options.checkOnly) {
      ctx.progress?.activity(`${ref.database}: integrity check`);
      const result = await checkRestoredTables(session, selected, options.jobs, ctx.signal);
      plan.tablesChecked = result.tablesChecked;
      plan.rowsChecked = result.rowsChecked;
      if (result.mismatches.length) throw mismatchError(ref, result, plan);
    }
    return { items: selected.length, bytes, details: { plans: [plan] } };
  } catch (err) {
    if (err instanceof BakError) throw err;
    throw describeSpannerError(err, what, ref, clients.where);
  } finally {
    if (options.scratch && created) await clients.admin.dropDatabase({ database: databasePath(ref) }).catch(() => undefined);
    if (session) await session.close();
    else await clients.close();
  }
}

function mismatchError(ref: DatabaseRef, result: IntegrityResult, plan: SpannerRestorePlan): MismatchError {
  const err = new MismatchError(`integrity check of ${databasePath(ref)} failed: ${result.mismatches.map(describeMismatch).join('; ')}`);
  (err as MismatchError & { report?: unknown }).report = { details: { plans: [plan], mismatches: result.mismatches } };
  return err;
}

export function selectRestoreTables(content: SpannerSnapshotContent, globs: string[] | undefined, snapshot: string): Array<{ schema: TableSchema; recorded: BackedUpTable }> {
  const recorded = new Map(content.tables.map((t) => [t.name, t]));
  const inSnapshot = content.schema.tables.filter((t) => recorded.has(t.name));
  return selectTables(inSnapshot, globs, undefined, `snapshot ${snapshot}`).map((schema) => ({ schema, recorded: recorded.get(schema.name)! }));
}

async function userTables(session: DatabaseSession): Promise<string[]> {
  const rows = await queryRows(session.clients, session.session, `SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ''`, { singleUse: { readOnly: { strong: true } } });
  return rows.map((r) => String(r.TABLE_NAME));
}

async function missingAfterData(session: DatabaseSession, statements: string[]): Promise<string[]> {
  const rows = await queryRows(session.clients, session.session, `SELECT INDEX_NAME FROM INFORMATION_SCHEMA.INDEXES WHERE TABLE_SCHEMA = ''`, { singleUse: { readOnly: { strong: true } } });
  const have = new Set(rows.map((r) => String(r.INDEX_NAME)));
  return statements.filter((s) => {
    const index = /^CREATE (?:UNIQUE )?(?:NULL_FILTERED )?INDEX `([^`]+)`/.exec(s)?.[1];
    return index === undefined || !have.has(index);
  });
}

/** UpdateDatabaseDdl can report success for statements it did not apply (handy-spanner drops their errors): check. */
async function assertSchemaCreated(session: DatabaseSession, schema: DatabaseSchema): Promise<void> {
  const names = async (sql: string, column: string) =>
    new Set((await queryRows(session.clients, session.session, sql, { singleUse: { readOnly: { strong: true } } })).map((r) => String(r[column])));
  const indexes = await names(`SELECT INDEX_NAME FROM INFORMATION_SCHEMA.INDEXES WHERE TABLE_SCHEMA = ''`, 'INDEX_NAME');
  const missing = schema.tables.flatMap((t) => t.indexes.filter((i) => !indexes.has(i.name)).map((i) => `index ${t.name}.${i.name}`));
  if (schema.tables.some((t) => t.foreignKeys.length)) {
    const keys = await names(`SELECT CONSTRAINT_NAME FROM INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS`, 'CONSTRAINT_NAME');
    missing.push(...schema.tables.flatMap((t) => t.foreignKeys.filter((fk) => !keys.has(fk.name)).map((fk) => `foreign key ${t.name}.${fk.name}`)));
  }
  if (missing.length) throw new BakError(`the restore's indexes and foreign keys were not all created in ${databasePath(session.ref)}: ${missing.join(', ')} missing (the rows are in)`);
}

async function updateDdl(clients: SpannerClients, ref: DatabaseRef, statements: string[]): Promise<void> {
  if (statements.length === 0) return;
  const [operation] = await clients.admin.updateDatabaseDdl({ database: databasePath(ref), statements });
  await operation.promise();
}

/** A commit gets 5 minutes, retries included: gax's default would retry a too-large commit for an hour. */
const COMMIT_CALL = { timeout: 300_000 };

/** Loads every selected table: a table starts once its parent's rows are all in; `jobs` tables at a time. */
async function loadTables(
  repo: Repository,
  manifest: Manifest,
  session: DatabaseSession,
  tables: ReadonlyArray<{ schema: TableSchema; recorded: BackedUpTable }>,
  options: SpannerRestoreOptions & { mutation: 'insert' | 'insertOrUpdate' },
  signal?: AbortSignal,
  progress?: ProgressSink,
): Promise<{ commits: number; bytes: number }> {
  const items = new Map(manifest.items.map((i) => [i.name, i]));
  const limiter = new Limiter(options.jobs);
  const finished = new Map<string, Promise<void>>();
  let commits = 0;
  let bytes = 0;
  for (const { schema, recorded } of tables) {
    const parent = schema.parent === null ? Promise.resolve() : finished.get(schema.parent)!;
    const files = recorded.files.map((name) => {
      const item = items.get(name);
      if (!item) throw new BakError(`snapshot ${manifest.id} lists ${name} for table ${schema.name}, but has no such item`);
      return item;
    });
    const loading = parent.then(() =>
      limiter.run(async () => {
        progress?.activity(`${session.ref.database}: ${schema.name}`);
        const loaded = await loadTable(repo, session, schema, files, options, signal);
        commits += loaded.commits;
        bytes += files.reduce((sum, f) => sum + f.bytes, 0);
        // Its files' bytes were counted as the repository read them; its rows are committed now.
        progress?.advance(files.length, 0);
      }),
    );
    loading.catch(() => undefined);
    finished.set(schema.name, loading);
  }
  await Promise.all(finished.values());
  return { commits, bytes };
}

async function loadTable(
  repo: Repository,
  session: DatabaseSession,
  table: TableSchema,
  files: ManifestItem[],
  options: SpannerRestoreOptions & { mutation: 'insert' | 'insertOrUpdate' },
  signal?: AbortSignal,
): Promise<{ commits: number }> {
  // Generated columns are computed by Spanner, never written.
  const written = table.columns.filter((c) => c.generationExpression === null);
  const codecs = written.map((c) => cellCodec(c.type, c.nullable));
  const names = written.map((c) => c.name);
  const rowsPerCommit = Math.max(1, Math.floor(options.mutationsPerCommit / Math.max(1, names.length)));
  let batch: object[] = [];
  let batchBytes = 0;
  let commits = 0;
  const commit = async () => {
    if (batch.length === 0) return;
    const values = batch;
    batch = [];
    batchBytes = 0;
    const [tx] = await session.clients.data.beginTransaction({ session: session.session, options: { readWrite: {} } });
    await session.clients.data.commit({ session: session.session, transactionId: tx.id, mutations: [{ [options.mutation]: { table: table.name, columns: names, values } }] }, COMMIT_CALL);
    commits++;
  };
  for (const file of files) {
    const decoder = newAvroDecoder();
    const blobs = repo.blobs.readStream(file.blobs);
    blobs.on('error', (err) => decoder.destroy(err));
    blobs.pipe(decoder);
    for await (const record of decoder as AsyncIterable<Record<string, unknown>>) {
      if (signal?.aborted) throw signal.reason;
      const values: object[] = new Array(names.length);
      for (let i = 0; i < names.length; i++) {
        const cell: RawCell = codecs[i]!.fromAvro(record[names[i]!]);
        values[i] = encodeProtoValue(cell);
        batchBytes += cellBytes(cell);
      }
      batch.push({ values });
      if (batch.length >= rowsPerCommit || batchBytes >= options.bytesPerCommit) await commit();
    }
  }
  await commit();
  return { commits };
}

/** A cell's size as a commit counts it, near enough to stay under the byte limit. */
function cellBytes(cell: RawCell): number {
  if (cell === null || typeof cell === 'boolean') return 1;
  if (typeof cell === 'number') return 8;
  if (typeof cell === 'string') return cell.length;
  return cell.reduce((sum: number, e) => sum + cellBytes(e), 0);
}
