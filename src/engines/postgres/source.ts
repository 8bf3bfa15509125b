import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import { redactUri } from '../../util/redact.ts';
import type { Source } from '../engine.ts';

/** Engine options (config `options`, flags override). Secrets arrive resolved from their env/file references. */
export const postgresOptionsSchema = z
  .object({
    password: z.string().optional(),
    databases: z.array(z.string().min(1)).optional(),
    excludeDatabases: z.array(z.string().min(1)).optional(),
    /** Parallel pg_dump / pg_restore workers per database. */
    jobs: z.number().int().positive().max(64).optional(),
    /** Folder holding pg_dump, pg_restore, pg_dumpall (else BAK_PG_BIN, PATH, /usr/lib/postgresql/N/bin). */
    pgBin: z.string().optional(),
    /** Dump roles and tablespaces once per server (pg_dumpall --globals-only). */
    globals: z.boolean().default(true),
    /** Include role password hashes in the globals (off: a backup should not carry credentials). */
    rolePasswords: z.boolean().default(false),
    allowPartial: z.boolean().default(false),
  })
  .strict();
export type PostgresOptions = z.infer<typeof postgresOptionsSchema>;

/** Where to connect: everything but the password, which travels in PGPASSWORD only (never in argv). */
export interface PgConnection {
  host: string;
  port: number;
  user: string;
  /** The database named in the URI, if any. */
  database: string | undefined;
  /** libpq parameters from the query string (sslmode, sslrootcert …), passed through. */
  params: Record<string, string>;
  password: string | undefined;
}

export interface PostgresSource extends Source {
  options: PostgresOptions & { connection: PgConnection };
}

export function parsePgUri(uri: string, password?: string): PgConnection {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UsageError(`invalid PostgreSQL URI ${JSON.stringify(redactUri(uri))}: use postgres://user@host:port[/database]`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new UsageError(`not a PostgreSQL URI: ${redactUri(uri)}`);
  if (!url.hostname) throw new UsageError(`PostgreSQL URI ${redactUri(uri)} names no host`);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username) || process.env.PGUSER || 'postgres',
    database: database === '' ? undefined : database,
    params: Object.fromEntries(url.searchParams),
    password: url.password ? decodeURIComponent(url.password) : password,
  };
}

/** A libpq connection string for one database, without the password. */
export function connectionString(conn: PgConnection, database: string): string {
  const url = new URL(`postgres://${encodeURIComponent(conn.user)}@${conn.host.includes(':') ? `[${conn.host}]` : conn.host}:${conn.port}/`);
  url.pathname = `/${encodeURIComponent(database)}`;
  for (const [k, v] of Object.entries(conn.params)) url.searchParams.set(k, v);
  return url.toString();
}

/** Environment for pg_dump & co: the password only through PGPASSWORD, so it never shows in `ps`. */
export function toolEnv(conn: PgConnection): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (conn.password !== undefined) env.PGPASSWORD = conn.password;
  return env;
}

export function parsePostgresSource(uri: string, rawOptions: unknown): PostgresSource {
  const parsed = postgresOptionsSchema.safeParse(rawOptions ?? {});
  if (!parsed.success) throw new UsageError(`postgres options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const connection = parsePgUri(uri, parsed.data.password ?? process.env.PGPASSWORD);
  const secrets = [connection.password].filter((s): s is string => Boolean(s));
  // The URI stored in manifests: redacted, and without a database only when none was named.
  const shown = new URL(redactUri(uri));
  shown.password = '';
  return { engine: 'postgres', uri: shown.toString().replace(/\/$/, ''), options: { ...parsed.data, connection }, secrets };
}
