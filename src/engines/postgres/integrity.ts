import type { Manifest } from '../../repository/manifest.ts';
import type { TableDataDetails } from './backup.ts';
import { connect, quoteIdent } from './connection.ts';
import { digestTable, dumpSessionSql } from './copy-digest.ts';
import type { PgConnection } from './source.ts';

export interface TableMismatch {
  table: string;
  problem: string;
}

/** The table-data items of one database, with what the backup recorded about each. */
export function tablesOf(manifest: Manifest, database: string): Array<TableDataDetails & { rows: number }> {
  return manifest.items.flatMap((item) => {
    const d = item.details as Partial<TableDataDetails> | undefined;
    if (!d || d.database !== database || typeof d.copy !== 'string' || typeof d.digest !== 'string') return [];
    return [{ ...(d as TableDataDetails), rows: item.rows ?? 0 }];
  });
}

/**
 * Reads every table of a restored database with the same COPY, under the same session settings
 * pg_dump used, and compares row counts and order-independent digests with the manifest.
 */
export async function checkRestoredDatabase(
  conn: PgConnection,
  targetDb: string,
  manifest: Manifest,
  source: { name: string; dumpEncoding: string | null; largeObjects: number },
): Promise<{ tablesChecked: number; rowsChecked: number; mismatches: TableMismatch[] }> {
  const client = await connect(conn, targetDb);
  const mismatches: TableMismatch[] = [];
  let rowsChecked = 0;
  const tables = tablesOf(manifest, source.name);
  try {
    for (const sql of dumpSessionSql({ clientEncoding: source.dumpEncoding ?? 'UTF8' })) await client.query(sql);
    for (const t of tables) {
      const name = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
      try {
        const got = await digestTable(client, t.copy, t.algorithm);
        rowsChecked += got.rows;
        if (got.rows !== t.rows) mismatches.push({ table: name, problem: `${got.rows} rows, the snapshot has ${t.rows}` });
        else if (got.digest !== t.digest) mismatches.push({ table: name, problem: `same ${got.rows} rows, but their content differs from the snapshot` });
      } catch (err) {
        mismatches.push({ table: name, problem: `cannot be read: ${(err as Error).message}` });
      }
    }
    const { rows } = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_largeobject_metadata');
    const largeObjects = Number(rows[0]!.n);
    if (largeObjects !== source.largeObjects) mismatches.push({ table: '(large objects)', problem: `${largeObjects} large objects, the snapshot has ${source.largeObjects}` });
  } finally {
    await client.end().catch(() => undefined);
  }
  return { tablesChecked: tables.length, rowsChecked, mismatches };
}

/** Counts what a restore would collide with: relations outside the system schemas, and large objects. */
export async function userObjectCount(conn: PgConnection, database: string): Promise<number> {
  const client = await connect(conn, database);
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT ((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%')
             + (SELECT count(*) FROM pg_largeobject_metadata))::text AS n`,
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end().catch(() => undefined);
  }
}

