import { BakError, UsageError } from '../../errors.ts';
import { Limiter, TaskPool } from '../../util/concurrency.ts';
import { addDigests } from '../../util/row-sum.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { describeSpannerError, grpcCode, Status } from './client.ts';
import { readSchema } from './information-schema.ts';
import { backupNative } from './native.ts';
import { Partitioner } from './partitions.ts';
import { readRawRows } from './read.ts';
import { keepForeignKeysWithin, restoreDdl, selectTables, type DatabaseSchema, type TableSchema } from './schema.ts';
import { assertGoogleSql, describeDatabase, openSession, type DatabaseSession } from './session.ts';
import { databasePath, type SpannerSource } from './source.ts';
import { parseTimestamp } from './types.ts';
import { SPANNER_DIGEST_ALGORITHM } from './table-digest.ts';
import { addDdlItem, TableFileWriter } from './table-files.ts';

/** What the manifest records per table: enough to restore it in order and prove the restore. */
export interface BackedUpTable {
  name: string;
  rows: number;
  digest: string;
  /** Item names of its Avro files, in order. */
  files: string[];
  /** The columns the digest covers, when not all of them (an adopted export has no generated columns' values). */
  digestColumns?: string[];
  /** How many partitions it was read in, when more than one (each has files of its own). */
  partitions?: number;
}

function readOnlyOptions(source: SpannerSource): Record<string, unknown> {
  const { readTimestamp, stalenessSeconds } = source.options;
  if (readTimestamp !== undefined) return { readTimestamp: parseTimestamp(readTimestamp), returnReadTimestamp: true };
  if (stalenessSeconds !== undefined) return { exactStaleness: { seconds: Math.floor(stalenessSeconds), nanos: Math.round((stalenessSeconds % 1) * 1e9) }, returnReadTimestamp: true };
  return { strong: true, returnReadTimestamp: true };
}

function timestampText(ts: { seconds?: unknown; nanos?: unknown } | null | undefined): string | null {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return null;
  const iso = new Date(Number(ts.seconds) * 1000).toISOString().replace(/\.000Z$/, '');
  const nanos = Number(ts.nanos ?? 0);
  return `${iso}${nanos ? `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}` : ''}Z`;
}

/**
 * Export mode: every selected table read in one read-only transaction (one timestamp), its rows streamed into Avro
 * object container files in Google's export format, each file a repository item, with a row count and a digest of
 * the typed cells per table. Tables are read `jobs` at a time; rows come in primary-key order, so an unchanged table
 * gives the same bytes and dedups against the last snapshot.
 */
export async function backupSpanner(ctx: BackupContext & { source: SpannerSource }): Promise<BackupResult> {
  const { source } = ctx;
  const ref = source.options.ref;
  const what = `backup of ${databasePath(ref)}`;
  if (source.options.mode === 'dataflow') return (await import('./dataflow.ts')).backupDataflow(ctx);
  if (source.options.fromExport !== undefined) {
    if (source.options.mode !== 'export') throw new UsageError('fromExport adopts a Dataflow export as an export-mode snapshot: it takes no other mode');
    return (await import('./adopt.ts')).adoptDataflowExport(ctx);
  }
  const session = await openSession(source.options, ref, what);
  try {
    const db = await describeDatabase(session.clients, ref, what);
    if (!db) throw new BakError(`${what}: Spanner database ${databasePath(ref)} does not exist at ${session.clients.where}`);
    assertGoogleSql(db, ref);
    if (source.options.mode === 'native') return await backupNative(ctx, session.clients);
    return await exportDatabase(ctx, session);
  } catch (err) {
    throw err instanceof BakError ? err : describeSpannerError(err, what, ref, session.clients.where);
  } finally {
    await session.close();
  }
}

async function exportDatabase(ctx: BackupContext & { source: SpannerSource }, session: DatabaseSession): Promise<BackupResult> {
  const { source, writer, log } = ctx;
  const { clients, ref } = session;
  const began = new Date();
  const [tx] = await clients.data.beginTransaction({ session: session.session, options: { readOnly: readOnlyOptions(source) } });
  const transactionId = tx.id as Uint8Array;
  let readTimestamp = timestampText(tx.readTimestamp as { seconds?: unknown; nanos?: unknown } | null);
  // handy-spanner gives no read timestamp: record when the transaction began (or what was asked), and say so.
  const readTimestampFrom = readTimestamp !== null ? 'server' : source.options.readTimestamp !== undefined ? 'requested' : 'client clock at BeginTransaction';
  readTimestamp ??= source.options.readTimestamp ?? new Date(began.getTime() - (source.options.stalenessSeconds ?? 0) * 1000).toISOString();

  const reading = await readSchema(clients, session.session, { id: transactionId });
  const tables = selectTables(reading.schema.tables, source.options.tables, source.options.excludeTables, databasePath(ref));
  const selected = new Set(tables.map((t) => t.name));
  const unsupported = reading.unsupported.filter((u) => u.table === null || selected.has(u.table)).map((u) => u.problem);
  if (unsupported.length) {
    throw new BakError(`${databasePath(ref)} has schema features bak cannot restore, so it does not back it up: ${unsupported.join('; ')}`, 2, {
      hint: 'use mode native (a Spanner managed backup) for this database, or exclude the tables concerned with excludeTables',
    });
  }
  if (reading.gaps.length) log.warn(`this Spanner server's INFORMATION_SCHEMA lacks ${reading.gaps.join(', ')}: the snapshot records none of those`);
  if (reading.schema.tables.length === 0) log.warn(`${databasePath(ref)} has no tables`);
  const kept = keepForeignKeysWithin(tables);
  for (const fk of kept.dropped) log.warn(`foreign key ${fk} references a table the selection leaves out: the snapshot does not keep it`);
  // A view may read any table: kept only when every table is.
  const schema: DatabaseSchema = { ...reading.schema, tables: kept.tables, views: source.options.tables || source.options.excludeTables ? [] : reading.schema.views };

  let ddl: string[] | null = null;
  try {
    const [response] = await clients.admin.getDatabaseDdl({ database: databasePath(ref) });
    ddl = (response.statements ?? []) as string[];
  } catch (err) {
    if (grpcCode(err) !== Status.UNIMPLEMENTED) throw err;
  }
  const ddlSource = ddl !== null ? 'GetDatabaseDdl' : 'INFORMATION_SCHEMA';
  const rendered = restoreDdl(schema);
  const ddlItem = await addDdlItem(writer, ddl ?? [...rendered.tables, ...rendered.afterData], ddlSource);
  log.info(`Spanner ${databasePath(ref)} at ${clients.where}: ${tables.length} tables at ${readTimestamp} (schema from ${ddlSource})`);
  // Every table is known now; their sizes are not (Avro bytes are counted as they are stored).
  ctx.progress?.expect(tables.length, 0);
  ctx.progress?.totalsKnown();
  ctx.progress?.advance(0, ddlItem.bytes);

  const done: BackedUpTable[] = [];
  // `jobs` tables in flight, and `jobs` read streams in all: a table read in partitions takes several.
  const pool = new TaskPool(source.options.jobs);
  const streams = new Limiter(source.options.jobs);
  const partitioner = new Partitioner(clients, session.session, transactionId, source.options.partitionedReads ? source.options.jobs * 4 : 1);
  for (const table of tables) {
    await pool.submit(async () => {
      ctx.progress?.activity(`${ref.database}: ${table.name}`);
      done.push(await exportTable(ctx, session, streams, partitioner, transactionId, table));
      ctx.progress?.advance(1, 0);
    });
  }
  await pool.drain();
  const byName = new Map(done.map((t) => [t.name, t]));
  return {
    engineDetails: {
      database: databasePath(ref),
      dialect: schema.dialect,
      readTimestamp,
      readTimestampFrom,
      schemaFrom: 'INFORMATION_SCHEMA',
      ddlFrom: ddlSource,
      partitionedReads: partitioner.supported && source.options.partitionedReads,
      schemaGaps: reading.gaps,
      schema,
      digestAlgorithm: SPANNER_DIGEST_ALGORITHM,
      tables: tables.map((t) => byName.get(t.name)!),
    },
  };
}

async function exportTable(ctx: BackupContext & { source: SpannerSource }, session: DatabaseSession, streams: Limiter, partitioner: Partitioner, transactionId: Uint8Array, table: TableSchema): Promise<BackedUpTable> {
  const columns = table.columns.map((c) => c.name);
  const readInto = (part: number | undefined, partitionToken: Uint8Array | undefined) =>
    streams.run(async () => {
      const out = new TableFileWriter(ctx.writer, table, ctx.source.options.avroFileBytes, undefined, part, ctx.progress);
      try {
        const read = { session: session.session, transactionId, table: table.name, columns, ...(partitionToken ? { partitionToken } : {}) };
        for await (const batch of readRawRows(session.clients, read, ctx.signal)) for (const row of batch) await out.add(row);
        return await out.finish();
      } catch (err) {
        await out.abandon();
        throw err instanceof BakError ? err : describeSpannerError(err, `reading table ${table.name}`, session.ref, session.clients.where);
      }
    });
  let tokens: Uint8Array[] | undefined;
  try {
    tokens = await partitioner.partitions(table.name, columns);
  } catch (err) {
    throw describeSpannerError(err, `reading table ${table.name}`, session.ref, session.clients.where);
  }
  if (!tokens) return { name: table.name, ...(await readInto(undefined, undefined)) };
  // Partitions in parallel, each into files of its own; row counts and digests (sums over rows) add up.
  const parts = await Promise.all(tokens.map((token, part) => readInto(part, token)));
  return {
    name: table.name,
    rows: parts.reduce((sum, p) => sum + p.rows, 0),
    digest: parts.map((p) => p.digest).reduce(addDigests),
    files: parts.flatMap((p) => p.files),
    partitions: parts.length,
  };
}
