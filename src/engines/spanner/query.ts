import type { protos } from '@google-cloud/spanner';
import { NO_STREAM_RETRIES, type IPartialResultSet, type SpannerClients } from './client.ts';
import { mergeChunks } from './read.ts';
import { decodeProtoValue, type RawCell } from './types.ts';

export type TransactionSelector = protos.google.spanner.v1.ITransactionSelector;

/** A small query's rows as objects by column name (schema and counts; table data goes through read.ts). */
export async function queryRows(clients: SpannerClients, session: string, sql: string, transaction: TransactionSelector): Promise<Array<Record<string, RawCell>>> {
  // ExecuteStreamingSql: handy-spanner takes a unary ExecuteSql for DML only.
  const stream = clients.data.executeStreamingSql({ session, sql, transaction }, NO_STREAM_RETRIES);
  let names: string[] | undefined;
  const values: RawCell[] = [];
  let chunk: RawCell | undefined;
  for await (const set of stream as AsyncIterable<IPartialResultSet>) {
    names ??= (set.metadata?.rowType?.fields ?? []).map((f) => f.name ?? '');
    const cells = (set.values ?? []).map(decodeProtoValue);
    if (chunk !== undefined && cells.length) {
      cells[0] = mergeChunks(chunk, cells[0]!);
      chunk = undefined;
    }
    if (set.chunkedValue && cells.length) chunk = cells.pop();
    values.push(...cells);
  }
  const width = names?.length ?? 0;
  const rows: Array<Record<string, RawCell>> = [];
  for (let i = 0; width > 0 && i < values.length; i += width) {
    const row: Record<string, RawCell> = {};
    for (let j = 0; j < width; j++) row[names![j]!] = values[i + j]!;
    rows.push(row);
  }
  return rows;
}
