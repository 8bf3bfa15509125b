import type { Manifest } from '../../repository/manifest.ts';
import type { TableDataDetails } from './backup.ts';
import type pg from 'pg';
import { connect, quoteIdent, serverVersion } from './connection.ts';
import { digestTable, dumpSessionSql } from './copy-digest.ts';
import { addDigests } from '../../util/row-sum.ts';
import type { PgConnection } from './source.ts';

export interface TableMismatch {
  table: string;
  problem: string;
}

/** The table-data items of one database, with what the backup recorded about each (bytes: its COPY text). */
export function tablesOf(manifest: Manifest, database: string): Array<TableDataDetails & { rows: number; bytes: number }> {
  return manifest.items.flatMap((item) => {
    const d = item.details as Partial<TableDataDetails> | undefined;
    if (!d || d.database !== database || typeof d.copy !== 'string' || typeof d.digest !== 'string') return [];
    return [{ ...(d as TableDataDetails), rows: item.rows ?? 0, bytes: item.bytes }];
  });
}

/** What the check of these databases reads back: their tables' COPY text, as the backup measured it. */
export function checkBytes(manifest: Manifest, databases: ReadonlyArray<{ name: string }>): number {
  return databases.reduce((sum, db) => sum + tablesOf(manifest, db.name).reduce((n, t) => n + t.bytes, 0), 0);
}

// A table is read in ranges of this many pages (128 MiB at 8 KiB pages) when it has more.
const PAGES_PER_RANGE = 16_384;

/** One COPY of the check: a whole table, or a range of its pages. */
interface CheckTask {
  table: number;
  sql: string;
  pages: number;
}

/**
 * Reads every table of a restored database with the same COPY, under the same session settings
 * pg_dump used, and compares row counts and order-independent digests with the manifest.
 * `jobs` connections share one snapshot and read tables in parallel; on PostgreSQL 14+ a big table
 * is read as page ranges (TID range scans) whose digests add up to the table's, since a digest is a
 * sum over rows. So the check of one big table runs on several cores too.
 */
export async function checkRestoredDatabase(
  conn: PgConnection,
  targetDb: string,
  manifest: Manifest,
  source: { name: string; dumpEncoding: string | null; largeObjects: number },
  options: { jobs: number; pagesPerRange?: number; onBytes?: (bytes: number) => void } = { jobs: 1 },
): Promise<{ tablesChecked: number; rowsChecked: number; mismatches: TableMismatch[] }> {
  const tables = tablesOf(manifest, source.name);
  const clients: pg.Client[] = [];
  const mismatches: TableMismatch[] = [];
  try {
    clients.push(await connect(conn, targetDb));
    const first = clients[0]!;
    for (const sql of dumpSessionSql({ clientEncoding: source.dumpEncoding ?? 'UTF8' })) await first.query(sql);
    await first.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const tasks = await planCheck(first, tables, options.jobs, options.pagesPerRange ?? PAGES_PER_RANGE);
    const workers = Math.max(1, Math.min(options.jobs, tasks.length));
    if (workers > 1) {
      // Every connection reads the same snapshot, as pg_dump's workers do.
      const { rows } = await first.query<{ id: string }>('SELECT pg_catalog.pg_export_snapshot() AS id');
      for (let i = 1; i < workers; i++) {
        const client = await connect(conn, targetDb);
        clients.push(client);
        for (const sql of dumpSessionSql({ clientEncoding: source.dumpEncoding ?? 'UTF8' })) await client.query(sql);
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await client.query(`SET TRANSACTION SNAPSHOT '${rows[0]!.id}'`);
      }
    }
    const results = tables.map(() => ({ rows: 0, digest: null as string | null, error: null as string | null }));
    let next = 0;
    await Promise.all(
      clients.map(async (client) => {
        for (let task = tasks[next++]; task; task = tasks[next++]) {
          const result = results[task.table]!;
          if (result.error !== null) continue;
          try {
            const got = await digestTable(client, task.sql, tables[task.table]!.algorithm, options.onBytes);
            result.rows += got.rows;
            result.digest = result.digest === null ? got.digest : addDigests(result.digest, got.digest);
          } catch (err) {
            result.error = (err as Error).message;
            // A failed COPY aborts the transaction; a fresh one (own snapshot) lets this connection go on.
            await client.query('ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY').catch(() => undefined);
          }
        }
      }),
    );
    let rowsChecked = 0;
    for (const [i, t] of tables.entries()) {
      const name = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
      const got = results[i]!;
      rowsChecked += got.rows;
      if (got.error !== null) mismatches.push({ table: name, problem: `cannot be read: ${got.error}` });
      else if (got.rows !== t.rows) mismatches.push({ table: name, problem: `${got.rows} rows, the snapshot has ${t.rows}` });
      else if (got.digest !== t.digest) mismatches.push({ table: name, problem: `same ${got.rows} rows, but their content differs from the snapshot` });
    }
    const { rows } = await first.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_largeobject_metadata');
    const largeObjects = Number(rows[0]!.n);
    if (largeObjects !== source.largeObjects) mismatches.push({ table: '(large objects)', problem: `${largeObjects} large objects, the snapshot has ${source.largeObjects}` });
    return { tablesChecked: tables.length, rowsChecked, mismatches };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

/**
 * The COPYs to run, biggest first. A table too big for one reader on a server with TID range scans
 * (14+) becomes ranges of pages; ctid ranges cover every page, the last one open-ended.
 */
async function planCheck(client: pg.Client, tables: ReadonlyArray<TableDataDetails>, jobs: number, pagesPerRange: number): Promise<CheckTask[]> {
  const rangesAllowed = jobs > 1 && (await serverVersion(client)).major >= 14;
  const tasks: CheckTask[] = [];
  for (const [i, t] of tables.entries()) {
    const target = rangesAllowed ? splitCopyTarget(t.copy) : null;
    let pages = 0;
    if (target) {
      // A table that does not exist (or is not readable) gets its error from the COPY itself.
      const { rows } = await client.query<{ pages: string | null }>(
        `SELECT (pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint)::text AS pages
           FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`,
        [target.relation],
      );
      pages = Number(rows[0]?.pages ?? 0);
    }
    const ranges = Math.ceil(pages / pagesPerRange);
    if (!target || ranges < 2) {
      tasks.push({ table: i, sql: t.copy, pages });
      continue;
    }
    for (let r = 0; r < ranges; r++) {
      const from = `ctid >= '(${r * pagesPerRange},0)'::pg_catalog.tid`;
      const to = r === ranges - 1 ? '' : ` AND ctid < '(${(r + 1) * pagesPerRange},0)'::pg_catalog.tid`;
      tasks.push({ table: i, sql: `COPY (SELECT ${target.columns} FROM ONLY ${target.relation} WHERE ${from}${to}) TO STDOUT`, pages: pagesPerRange });
    }
  }
  return tasks.sort((a, b) => b.pages - a.pages);
}

/**
 * Splits a recorded `COPY relation (columns) TO STDOUT` into its relation and column list, as pg_dump
 * wrote them (quoted identifiers). Null for a statement without a column list.
 */
export function splitCopyTarget(copySql: string): { relation: string; columns: string } | null {
  const match = /^COPY (.*) TO STDOUT$/s.exec(copySql);
  if (!match) return null;
  const target = match[1]!;
  let quoted = false;
  for (let i = 0; i < target.length; i++) {
    const c = target[i];
    if (c === '"') quoted = !quoted;
    else if (c === '(' && !quoted) {
      if (!target.endsWith(')')) return null;
      const columns = target.slice(i + 1, -1).trim();
      return columns === '' ? null : { relation: target.slice(0, i).trim(), columns };
    }
  }
  return null;
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

