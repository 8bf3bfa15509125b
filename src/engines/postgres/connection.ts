import pg from 'pg';
import { BakError } from '../../errors.ts';
import type { PgConnection } from './source.ts';

/** Opens a `pg` client to one database, turning libpq-level failures into messages an operator can act on. */
export async function connect(conn: PgConnection, database: string): Promise<pg.Client> {
  const ssl = conn.params.sslmode && conn.params.sslmode !== 'disable' ? { rejectUnauthorized: conn.params.sslmode === 'verify-full' } : undefined;
  const client = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database,
    ...(conn.password !== undefined ? { password: conn.password } : {}),
    ...(ssl ? { ssl } : {}),
    connectionTimeoutMillis: 10_000,
    application_name: 'bak',
  });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw describePgError(err, conn, database);
  }
  return client;
}

export function describePgError(err: unknown, conn: PgConnection, database: string): BakError {
  const e = err as { code?: string; message?: string };
  const where = `${conn.host}:${conn.port}`;
  switch (e.code) {
    case '28P01':
    case '28000':
      return new BakError(`PostgreSQL at ${where} refused user "${conn.user}": authentication failed (wrong password, or no pg_hba.conf entry)`, 1, {
        cause: err,
        hint: 'set the password with PGPASSWORD, ~/.pgpass, or the job option "password": {"env": "NAME"}',
      });
    case '3D000':
      return new BakError(`database "${database}" does not exist on ${where}`, 1, { cause: err });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return new BakError(`cannot reach PostgreSQL at ${where} (${e.code})`, 1, { cause: err });
    default:
      if (/timeout/i.test(e.message ?? '')) return new BakError(`cannot reach PostgreSQL at ${where} (connection timed out)`, 1, { cause: err });
      return new BakError(`PostgreSQL at ${where}, database "${database}": ${e.message ?? String(err)}`, 1, { cause: err });
  }
}

export interface DatabaseInfo {
  name: string;
  sizeBytes: number;
  encoding: string;
  collate: string;
  ctype: string;
}

/** Every database a dump can cover: not a template, accepting connections. */
export async function listDatabases(client: pg.Client): Promise<DatabaseInfo[]> {
  const { rows } = await client.query<{ name: string; size: string; encoding: string; collate: string; ctype: string }>(
    `SELECT datname AS name, pg_database_size(oid)::text AS size, pg_encoding_to_char(encoding) AS encoding,
            datcollate AS collate, datctype AS ctype
       FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname`,
  );
  return rows.map((r) => ({ name: r.name, sizeBytes: Number(r.size), encoding: r.encoding, collate: r.collate, ctype: r.ctype }));
}

export async function serverVersion(client: pg.Client): Promise<{ major: number; text: string }> {
  const { rows } = await client.query<{ num: string; text: string }>(`SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text`);
  return { major: Math.floor(Number(rows[0]!.num) / 10000), text: rows[0]!.text };
}

/** Quotes an identifier for SQL text. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
