import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { requireServer, type ServersEnv } from './servers.ts';

const execFileAsync = promisify(execFile);

export type PgServer = ServersEnv['postgres'];

export const RICH_SCHEMA_SQL = path.resolve(import.meta.dirname, '../fixtures/postgres/rich-schema.sql');
/** The fixed OID of the large object rich-schema.sql creates. */
export const RICH_LARGE_OBJECT_OID = 424242;

/** The PostgreSQL test server, or a failed suite saying how to start it. */
export function requirePostgres(): Promise<PgServer> {
  return requireServer('postgres');
}

/** `postgres://user@host:port[/db]`, never with the password (bak reads that from PGPASSWORD or the config). */
export function pgUri(server: PgServer, database?: string): string {
  const base = `postgres://${encodeURIComponent(server.user)}@${server.host}:${server.port}`;
  return database === undefined ? base : `${base}/${encodeURIComponent(database)}`;
}

/** Environment for a bak child process talking to the test server. */
export function pgEnv(server: PgServer): Record<string, string> {
  return { PGPASSWORD: server.password, BAK_PG_BIN: server.bin, PGPASSFILE: '/nonexistent/.pgpass' };
}

/** A database name unique to this run: lower case, letters/digits/underscores only. */
export function uniqueDbName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`.toLowerCase();
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function connect(server: PgServer, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database });
  await client.connect();
  // Fixed session settings so text renderings (timestamptz above all) compare across connections.
  await client.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET client_encoding = 'UTF8'");
  return client;
}

/** Runs `fn` with a client connected to `database`, closing it afterwards. */
export async function withClient<T>(server: PgServer, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(server, database);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function query<R extends pg.QueryResultRow = Record<string, unknown>>(
  server: PgServer,
  database: string,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  return withClient(server, database, async (c) => (await c.query<R>(sql, params)).rows);
}

export async function createDatabase(server: PgServer, name: string): Promise<string> {
  await query(server, 'postgres', `CREATE DATABASE ${quoteIdent(name)}`);
  return name;
}

export async function dropDatabase(server: PgServer, name: string): Promise<void> {
  await query(server, 'postgres', `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
}

export async function databaseExists(server: PgServer, name: string): Promise<boolean> {
  return (await query(server, 'postgres', 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
}

export async function listDatabases(server: PgServer): Promise<string[]> {
  const rows = await query<{ datname: string }>(server, 'postgres', 'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname');
  return rows.map((r) => r.datname);
}

/** Runs an SQL file (plain SQL, no psql meta-commands) against a database in one simple-protocol query. */
export async function loadSqlFile(server: PgServer, database: string, file: string): Promise<void> {
  const sql = await readFile(file, 'utf8');
  await withClient(server, database, async (c) => void (await c.query(sql)));
}

/** Creates a uniquely named database holding rich-schema.sql. */
export async function createRichDatabase(server: PgServer, prefix = 'bakt_rich'): Promise<string> {
  const name = await createDatabase(server, uniqueDbName(prefix));
  await loadSqlFile(server, name, RICH_SCHEMA_SQL);
  return name;
}

export function pgTool(server: PgServer, tool: 'pg_dump' | 'pg_restore' | 'pg_dumpall' | 'psql' | 'pgbench' | 'createdb'): string {
  return path.join(server.bin, tool);
}

/** Runs one of the server's client tools with the password in its environment; rejects on a non-zero exit. */
export async function runPgTool(
  server: PgServer,
  tool: Parameters<typeof pgTool>[1],
  args: string[],
  options: { maxBuffer?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(pgTool(server, tool), args, {
    env: { ...process.env, PGPASSWORD: server.password, PGPASSFILE: '/nonexistent/.pgpass' },
    maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
  });
}

export function connectionArgs(server: PgServer): string[] {
  return ['-h', server.host, '-p', String(server.port), '-U', server.user];
}

/**
 * `pg_dump --schema-only --no-owner` of a database, normalised so the dumps of two databases holding the
 * same schema compare equal: no `\restrict` / `\unrestrict` lines (their key is random per run), no
 * "Dumped from/by" header lines, and the database's own name replaced by `<database>`.
 */
export async function schemaDump(server: PgServer, database: string): Promise<string> {
  const { stdout } = await runPgTool(server, 'pg_dump', [...connectionArgs(server), '--schema-only', '--no-owner', '--dbname', database]);
  return normaliseSchemaDump(stdout, database);
}

export function normaliseSchemaDump(dump: string, database: string): string {
  const nameRe = new RegExp(`\\b${database.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'g');
  return dump
    .split('\n')
    .filter((line) => !/^\\(un)?restrict\b/.test(line))
    .filter((line) => !/^-- (Dumped from database version|Dumped by pg_dump version|Started on|Completed on)\b/.test(line))
    .map((line) => line.replace(nameRe, '<database>'))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

export interface TableFingerprint {
  rows: number;
  md5: string;
}

/**
 * Row count and an order-independent md5 of every table and materialized view (leaf partitions, not their
 * parents), computed by the server from each row's text form sorted in C collation. An independent
 * cross-check of bak's own integrity check.
 */
export async function tableFingerprints(server: PgServer, database: string): Promise<Record<string, TableFingerprint>> {
  return withClient(server, database, async (c) => {
    const tables = await c.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
       ORDER BY 1, 2`,
    );
    const out: Record<string, TableFingerprint> = {};
    for (const t of tables.rows) {
      const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
      const r = await c.query<{ rows: string; md5: string }>(
        `SELECT count(*) AS rows, md5(coalesce(string_agg(r, E'\\n' ORDER BY r COLLATE "C"), '')) AS md5
         FROM (SELECT t::text AS r FROM ${rel} t) s`,
      );
      out[`${t.schema}.${t.name}`] = { rows: Number(r.rows[0]!.rows), md5: r.rows[0]!.md5 };
    }
    return out;
  });
}

export interface SequenceState {
  lastValue: string;
  isCalled: boolean;
}

export async function sequenceStates(server: PgServer, database: string): Promise<Record<string, SequenceState>> {
  return withClient(server, database, async (c) => {
    const seqs = await c.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'S' ORDER BY 1, 2`,
    );
    const out: Record<string, SequenceState> = {};
    for (const s of seqs.rows) {
      const r = await c.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value::text AS last_value, is_called FROM ${quoteIdent(s.schema)}.${quoteIdent(s.name)}`,
      );
      out[`${s.schema}.${s.name}`] = { lastValue: r.rows[0]!.last_value, isCalled: r.rows[0]!.is_called };
    }
    return out;
  });
}

/** The content of a large object, or undefined when the database has none with that OID. */
export async function largeObject(server: PgServer, database: string, oid: number): Promise<Buffer | undefined> {
  const rows = await query<{ data: Buffer }>(
    server,
    database,
    'SELECT lo_get(m.oid) AS data FROM pg_largeobject_metadata m WHERE m.oid = $1::oid',
    [oid],
  );
  return rows[0]?.data;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound once, then released). */
export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** pg_dump sessions connected to `database`, as the server sees them (pg_stat_activity). */
export async function pgDumpSessions(server: PgServer, database: string): Promise<number> {
  return Number((await query(server, 'postgres', `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump'`, [database]))[0]!.n);
}

/**
 * Runs `fn` while the test holds an ACCESS EXCLUSIVE lock on `table` (in a transaction rolled back after): a pg_dump
 * of the database waits on it, still running, for as long as `fn` takes.
 */
export async function withTableLocked<T>(server: PgServer, database: string, table: string, fn: () => Promise<T>): Promise<T> {
  return withClient(server, database, async (c) => {
    await c.query(`BEGIN; LOCK TABLE ${quoteIdent(table)} IN ACCESS EXCLUSIVE MODE`);
    try {
      return await fn();
    } finally {
      await c.query('ROLLBACK');
    }
  });
}
