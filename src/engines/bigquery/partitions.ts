import { SortedCursor } from '../../util/sorted-cursor.ts';
import type { BigQueryClients } from './client.ts';
import { errorReason } from './client.ts';
import { restCall } from './rest.ts';
import type { TableResource } from './catalog.ts';

/** One row of INFORMATION_SCHEMA.PARTITIONS: a partition's id (null for an unpartitioned table) and its data's state. */
export interface PartitionInfo {
  table: string;
  partition: string | null;
  rows: number;
  bytes: number;
  /** When the partition's data last changed: a description change leaves it alone. */
  modified: string;
}

interface QueryPage {
  jobReference?: { jobId: string; location?: string };
  jobComplete?: boolean;
  rows?: Array<{ f: Array<{ v: string | null }> }>;
  pageToken?: string;
}

/**
 * A dataset's partitions, sorted by table then partition id, streamed page by page: one query per dataset whatever
 * its table count (bytes billed: INFORMATION_SCHEMA's 10 MB minimum). Null when the server has no such view (the
 * emulator): the backup then tells change by each table's lastModifiedTime, rows and bytes.
 */
export async function datasetPartitions(clients: BigQueryClients, dataset: string): Promise<AsyncGenerator<PartitionInfo> | null> {
  const query =
    'SELECT table_name, partition_id, total_rows, total_logical_bytes, UNIX_MICROS(last_modified_time) ' +
    `FROM \`${clients.project}.${dataset}.INFORMATION_SCHEMA.PARTITIONS\` ORDER BY table_name, partition_id`;
  let first: QueryPage;
  try {
    first = await restCall<QueryPage>(clients, 'jobs.query', { uri: '/queries', method: 'POST', json: { query, useLegacySql: false, maxResults: 10_000, timeoutMs: 60_000 } });
    while (!first.jobComplete && first.jobReference) {
      first = await restCall<QueryPage>(clients, 'jobs.getQueryResults', { uri: `/queries/${first.jobReference.jobId}`, qs: { maxResults: 10_000, timeoutMs: 60_000, location: first.jobReference.location } });
    }
  } catch (err) {
    const reason = errorReason(err);
    if (reason === 'notFound' || reason === 'invalidQuery' || reason === 'invalid' || /INFORMATION_SCHEMA|not found|unsupported|not supported/i.test((err as Error).message)) return null;
    throw err;
  }
  return (async function* pages() {
    let page: QueryPage = first;
    for (;;) {
      for (const row of page.rows ?? []) {
        const [table, partition, rows, bytes, modified] = row.f.map((c) => c.v);
        yield { table: table!, partition: partition ?? null, rows: Number(rows ?? 0), bytes: Number(bytes ?? 0), modified: modified ?? '' };
      }
      if (!page.pageToken || !page.jobReference) return;
      page = await restCall<QueryPage>(clients, 'jobs.getQueryResults', { uri: `/queries/${page.jobReference.jobId}`, qs: { maxResults: 10_000, pageToken: page.pageToken, location: page.jobReference.location } });
    }
  })();
}

/** A dataset's partitions handed out table by table, as the backup walks its tables in the same sorted order. */
export function partitionCursor(partitions: AsyncIterable<PartitionInfo>): SortedCursor<PartitionInfo, string> {
  return new SortedCursor(partitions, (p, table) => (p.table < table ? -1 : p.table > table ? 1 : 0));
}

const quote = (s: string) => `\`${s.replace(/`/g, '\\`')}\``;

/**
 * The row restriction that selects one partition of a table, for a Storage Read API session. Partition ids are
 * YYYYMMDD[HH] / YYYYMM / YYYY for time partitioning, the range's start for range partitioning, and __NULL__ /
 * __UNPARTITIONED__ for rows without a partitioning value or still unpartitioned.
 */
export function partitionFilter(resource: TableResource, partition: string): string {
  const range = resource.rangePartitioning;
  if (range) {
    const column = quote(range.field);
    if (partition === '__NULL__') return `${column} IS NULL`;
    if (partition === '__UNPARTITIONED__') return `(${column} < ${BigInt(range.range.start)} OR ${column} >= ${BigInt(range.range.end)})`;
    const start = BigInt(partition);
    return `${column} >= ${start} AND ${column} < ${start + BigInt(range.range.interval)}`;
  }
  const time = resource.timePartitioning;
  if (!time) throw new Error(`table ${JSON.stringify(resource.id)} has no partitioning, yet partition ${partition} was asked for`);
  const columnName = time.field ?? '_PARTITIONTIME';
  const column = time.field ? quote(time.field) : '_PARTITIONTIME';
  const fieldType = fieldTypeOf(resource, columnName);
  const literal = (d: string) => (fieldType === 'DATE' ? `DATE '${d.slice(0, 10)}'` : fieldType === 'DATETIME' ? `DATETIME '${d.replace('T', ' ').replace('Z', '')}'` : `TIMESTAMP '${d.replace('T', ' ')}'`);
  if (partition === '__NULL__') return `${column} IS NULL`;
  // Ingestion time: rows still in the streaming buffer. A column: values outside the partitionable 1960-2159.
  if (partition === '__UNPARTITIONED__') return time.field ? `(${column} < ${literal('1960-01-01T00:00:00Z')} OR ${column} >= ${literal('2160-01-01T00:00:00Z')})` : `${column} IS NULL`;
  const { start, end } = partitionBounds(partition);
  return `${column} >= ${literal(start)} AND ${column} < ${literal(end)}`;
}

/** The half-open time range of a partition id: YYYY, YYYYMM, YYYYMMDD or YYYYMMDDHH (UTC). */
export function partitionBounds(partition: string): { start: string; end: string } {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?$/.exec(partition);
  if (!m) throw new Error(`not a time partition id: ${partition}`);
  const [, y, mo, d, h] = m;
  const start = new Date(Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1, h ? Number(h) : 0));
  const end = new Date(start);
  if (h) end.setUTCHours(end.getUTCHours() + 1);
  else if (d) end.setUTCDate(end.getUTCDate() + 1);
  else if (mo) end.setUTCMonth(end.getUTCMonth() + 1);
  else end.setUTCFullYear(end.getUTCFullYear() + 1);
  const iso = (x: Date) => x.toISOString().replace('.000', '');
  return { start: iso(start), end: iso(end) };
}

function fieldTypeOf(resource: TableResource, name: string): string {
  if (name === '_PARTITIONTIME') return 'TIMESTAMP';
  const field = (resource.schema?.fields as Array<{ name: string; type: string }> | undefined)?.find((f) => f.name === name);
  return field?.type === 'DATE' ? 'DATE' : field?.type === 'DATETIME' ? 'DATETIME' : 'TIMESTAMP';
}


/**
 * The partition a (canonical) row falls in, by its partitioning column, as INFORMATION_SCHEMA.PARTITIONS names it:
 * so a restore check sums rows per partition and a mismatch names the partition. '' when rows cannot be told apart
 * by their values (no partitioning, or ingestion time: _PARTITIONTIME is not a column).
 */
export function partitionIdOf(resource: TableResource, row: Record<string, unknown>): string {
  const range = resource.rangePartitioning;
  if (range) {
    const v = row[range.field];
    if (v === null || v === undefined) return '__NULL__';
    const n = BigInt(v as string);
    const start = BigInt(range.range.start);
    const end = BigInt(range.range.end);
    const interval = BigInt(range.range.interval);
    if (n < start || n >= end) return '__UNPARTITIONED__';
    return String(start + ((n - start) / interval) * interval);
  }
  const time = resource.timePartitioning;
  if (!time?.field) return '';
  const v = row[time.field];
  if (v === null || v === undefined) return '__NULL__';
  let iso: string;
  if (typeof v === 'number') iso = new Date(v * 86_400_000).toISOString(); // DATE: days since the epoch
  else if (/^-?\d+$/.test(String(v))) {
    // TIMESTAMP: microseconds, floored to milliseconds (BigInt division truncates toward zero).
    const micros = BigInt(v as string);
    iso = new Date(Number((micros - (((micros % 1000n) + 1000n) % 1000n)) / 1000n)).toISOString();
  } else iso = String(v); // DATETIME: YYYY-MM-DDTHH:MM:SS[.ffffff]
  const year = Number(iso.slice(0, 4));
  if (year < 1960 || year > 2159) return '__UNPARTITIONED__';
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}`;
  return { HOUR: digits, DAY: digits.slice(0, 8), MONTH: digits.slice(0, 6), YEAR: digits.slice(0, 4) }[time.type ?? 'DAY'] ?? digits.slice(0, 8);
}
