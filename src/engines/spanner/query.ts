import type { protos } from '@google-cloud/spanner';
import { NO_STREAM_RETRIES, type SpannerClients } from './client.ts';
import { streamRows, type OpenStream } from './read.ts';
import type { RawCell } from './types.ts';

export type TransactionSelector = protos.google.spanner.v1.ITransactionSelector;

/** A small query's rows as objects by column name (schema and counts; table data goes through readRawRows). */
export async function queryRows(clients: SpannerClients, session: string, sql: string, transaction: TransactionSelector): Promise<Array<Record<string, RawCell>>> {
  // ExecuteStreamingSql: handy-spanner takes a unary ExecuteSql for DML only.
  const open: OpenStream = () => clients.data.executeStreamingSql({ session, sql, transaction }, NO_STREAM_RETRIES) as unknown as ReturnType<OpenStream>;
  let names: string[] = [];
  const rows: Array<Record<string, RawCell>> = [];
  // No resumes: a query that fails is the caller's to judge (a view the server lacks is a gap, not an outage).
  for await (const batch of streamRows(open, 'the query', { maxResumes: 0, onFields: (f) => (names = f) })) {
    for (const cells of batch) rows.push(Object.fromEntries(names.map((name, i) => [name, cells[i]!])));
  }
  return rows;
}
