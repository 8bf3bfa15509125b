import { createHash } from 'node:crypto';
import type { protos } from '@google-cloud/bigquery-storage';
import { BakError } from '../../errors.ts';
import { frameBlock, avroHeader } from '../../util/avro-container.ts';
import { describeBigQueryError, errorReason, type BigQueryClients } from './client.ts';

type IReadSession = protos.google.cloud.bigquery.storage.v1.IReadSession;
type IReadRowsResponse = protos.google.cloud.bigquery.storage.v1.IReadRowsResponse;

export interface TablePath {
  project: string;
  dataset: string;
  table: string;
}

export function tablePath(t: TablePath): string {
  return `projects/${t.project}/datasets/${t.dataset}/tables/${t.table}`;
}

export interface ReadPlan {
  session: IReadSession;
  /** The session's Avro schema (the server's, with its logical types), parsed. */
  schema: Record<string, unknown>;
  streams: string[];
  /** The moment the rows are read at (the session's snapshot time). */
  readAt: string | null;
}

/** Opens a Storage Read API session on one table (or one partition, by row restriction), in Avro. */
export async function openReadSession(clients: BigQueryClients, table: TablePath, options: { maxStreams: number; rowRestriction?: string; snapshotTime?: Date }): Promise<ReadPlan> {
  const readSession: IReadSession = { table: tablePath(table), dataFormat: 'AVRO' };
  if (options.rowRestriction) readSession.readOptions = { rowRestriction: options.rowRestriction };
  if (options.snapshotTime) readSession.tableModifiers = { snapshotTime: { seconds: Math.floor(options.snapshotTime.getTime() / 1000), nanos: (options.snapshotTime.getTime() % 1000) * 1e6 } };
  let session: IReadSession;
  try {
    clients.count('storage.createReadSession');
    try {
      [session] = await clients.read.createReadSession({ parent: `projects/${clients.project}`, readSession, maxStreamCount: options.maxStreams });
    } catch (err) {
      // The emulator refuses more than one stream ("currently supported only one stream"); real BigQuery takes any count.
      if (options.maxStreams === 1 || !/only one stream/i.test((err as Error).message)) throw err;
      clients.count('storage.createReadSession');
      [session] = await clients.read.createReadSession({ parent: `projects/${clients.project}`, readSession, maxStreamCount: 1 });
    }
  } catch (err) {
    if (errorReason(err) === 'notFound') throw new BakError(`table ${table.project}.${table.dataset}.${table.table} does not exist at ${clients.where}`, 1, { cause: err });
    throw describeBigQueryError(err, `opening a read session on ${table.project}.${table.dataset}.${table.table}`, clients.where);
  }
  const schemaText = session.avroSchema?.schema;
  if (!schemaText) throw new BakError(`the read session on ${table.dataset}.${table.table} came without an Avro schema`);
  const snapshot = session.tableModifiers?.snapshotTime;
  const readAt = snapshot?.seconds ? new Date(Number(snapshot.seconds) * 1000 + Math.floor((snapshot.nanos ?? 0) / 1e6)).toISOString() : null;
  return { session, schema: JSON.parse(schemaText) as Record<string, unknown>, streams: (session.streams ?? []).map((s) => s.name!).filter(Boolean), readAt };
}

/** The sync marker of a table's files: derived from its name, so equal rows give equal files (and dedup). */
export function syncMarkerOf(key: string): Buffer {
  return createHash('sha256').update(`bak-bigquery-avro:${key}`).digest().subarray(0, 16);
}

/**
 * One read stream as an Avro container file: the session's schema in the header, then each response's rows as one
 * block, copied as they come (no row is decoded). A broken stream is resumed at the row it stopped at.
 */
export async function* streamAsAvroFile(clients: BigQueryClients, plan: ReadPlan, stream: string | null, syncMarker: Buffer, counted: { rows: number }, signal?: AbortSignal): AsyncGenerator<Buffer> {
  yield await avroHeader(plan.schema, syncMarker);
  if (stream === null) return;
  let offset = 0;
  for (let attempt = 1; ; attempt++) {
    clients.count('storage.readRows');
    const responses = clients.read.readRows({ readStream: stream, offset }) as AsyncIterable<IReadRowsResponse> & { cancel(): void };
    const cancel = () => responses.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const response of responses) {
        const rows = response.avroRows?.serializedBinaryRows;
        const count = Number(response.rowCount ?? response.avroRows?.rowCount ?? 0);
        if (!rows || count === 0) continue;
        offset += count;
        counted.rows += count;
        for (const piece of frameBlock(count, asBuffer(rows), syncMarker)) yield piece;
      }
      return;
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason = errorReason(err);
      if (attempt >= 4 || !(reason === 'backendError' || /UNAVAILABLE|ECONNRESET|RST_STREAM/i.test((err as Error).message))) {
        throw describeBigQueryError(err, `reading stream ${stream.split('/').pop()} of ${plan.session.table}`, clients.where);
      }
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  }
}

function asBuffer(bytes: Uint8Array | string): Buffer {
  if (typeof bytes === 'string') return Buffer.from(bytes, 'base64');
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
