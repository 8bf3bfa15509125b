import { mapLimit } from '../../util/concurrency.ts';
import type { BackedUpTable } from './backup.ts';
import { readRawRows } from './read.ts';
import type { TableSchema } from './schema.ts';
import type { DatabaseSession } from './session.ts';
import { TableDigest } from './table-digest.ts';

export interface TableMismatch {
  table: string;
  expectedRows: number;
  actualRows: number;
  digestMatches: boolean;
}

export interface IntegrityResult {
  tablesChecked: number;
  rowsChecked: number;
  mismatches: TableMismatch[];
}

/**
 * Reads every restored table back in one read-only transaction and compares its row count and cell digest with
 * what the snapshot recorded: the proof that the restore holds exactly the rows that were backed up.
 */
export async function checkRestoredTables(
  session: DatabaseSession,
  tables: ReadonlyArray<{ schema: TableSchema; recorded: BackedUpTable }>,
  parallelism: number,
  signal?: AbortSignal,
): Promise<IntegrityResult> {
  const [tx] = await session.clients.data.beginTransaction({ session: session.session, options: { readOnly: { strong: true } } });
  const transactionId = tx.id as Uint8Array;
  const results = await mapLimit(tables, parallelism, async ({ schema, recorded }) => {
    const columns = recorded.digestColumns ? schema.columns.filter((c) => recorded.digestColumns!.includes(c.name)) : schema.columns;
    const digest = new TableDigest(columns);
    const read = { session: session.session, transactionId, table: schema.name, columns: columns.map((c) => c.name) };
    for await (const batch of readRawRows(session.clients, read, signal)) for (const row of batch) digest.add(row);
    return { table: schema.name, expectedRows: recorded.rows, actualRows: digest.rows, digestMatches: digest.hex() === recorded.digest };
  });
  return {
    tablesChecked: results.length,
    rowsChecked: results.reduce((sum, r) => sum + r.actualRows, 0),
    mismatches: results.filter((r) => r.actualRows !== r.expectedRows || !r.digestMatches),
  };
}

export function describeMismatch(m: TableMismatch): string {
  return m.actualRows !== m.expectedRows ? `${m.table}: ${m.actualRows} rows, the snapshot has ${m.expectedRows}` : `${m.table}: same ${m.actualRows} rows, but cell values differ`;
}
