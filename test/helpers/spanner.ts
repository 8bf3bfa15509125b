// The Spanner suites' own access to handy-spanner: databases made and filled through the generated gRPC client with
// protobuf values the test writes itself, and rows read back through the high-level @google-cloud/spanner client
// (its own codec, not bak's), so a round trip is judged by reads bak had no part in.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { Spanner, v1, type Database } from '@google-cloud/spanner';
import { requireServer, type ServersEnv } from './servers.ts';

export type SpannerEnv = ServersEnv['spanner'];

export async function requireSpanner(): Promise<SpannerEnv> {
  const env = await requireServer('spanner');
  // The high-level client reaches an emulator through this variable; handy-spanner ignores CreateSession's multiplexed
  // flag, so the regular session pool is used for every kind of transaction (see test/servers/spanner.test.ts).
  process.env.SPANNER_EMULATOR_HOST = env.host;
  process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS = 'false';
  process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW = 'false';
  process.env.GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_PARTITIONED_OPS = 'false';
  return env;
}

export function uniqueDatabaseId(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`.slice(0, 30);
}

export function databaseUri(env: { projectId: string; instanceId: string }, databaseId: string): string {
  return `spanner://projects/${env.projectId}/instances/${env.instanceId}/databases/${databaseId}`;
}

export function databaseName(env: { projectId: string; instanceId: string }, databaseId: string): string {
  return `projects/${env.projectId}/instances/${env.instanceId}/databases/${databaseId}`;
}

function gapic(host: string) {
  const [servicePath, port] = host.split(':');
  const options = { servicePath: servicePath!, port: Number(port), sslCreds: credentials.createInsecure(), universeDomain: 'googleapis.com' };
  return { data: new v1.SpannerClient(options), admin: new v1.DatabaseAdminClient(options) };
}

export type Cell = string | number | boolean | null | Cell[];

function protoValue(cell: Cell): object {
  if (cell === null) return { nullValue: 'NULL_VALUE' };
  if (typeof cell === 'string') return { stringValue: cell };
  if (typeof cell === 'boolean') return { boolValue: cell };
  if (typeof cell === 'number') return { numberValue: cell };
  return { listValue: { values: cell.map(protoValue) } };
}

/** A handle on one database of a handy-spanner server: DDL, writes in commits of the test's own size, own reads. */
export class TestDatabase {
  readonly env: { host: string; projectId: string; instanceId: string };
  readonly id: string;
  readonly #clients: ReturnType<typeof gapic>;
  #session: string | undefined;
  #spanner: Spanner | undefined;
  #database: Database | undefined;

  constructor(env: { host: string; projectId: string; instanceId: string }, id: string) {
    this.env = env;
    this.id = id;
    this.#clients = gapic(env.host);
  }

  get name(): string {
    return databaseName(this.env, this.id);
  }

  get uri(): string {
    return databaseUri(this.env, this.id);
  }

  async create(ddl: string[]): Promise<this> {
    const [op] = await this.#clients.admin.createDatabase({ parent: `projects/${this.env.projectId}/instances/${this.env.instanceId}`, createStatement: `CREATE DATABASE \`${this.id}\``, extraStatements: ddl });
    await op.promise();
    return this;
  }

  async #sessionName(): Promise<string> {
    if (!this.#session) this.#session = (await this.#clients.data.createSession({ database: this.name }))[0].name!;
    return this.#session;
  }

  /** Inserts rows (cells as Spanner's protobuf values carry them: INT64 as strings, BYTES as base64) in commits of `perCommit`. */
  async insert(table: string, columns: string[], rows: Cell[][], perCommit = 5000): Promise<void> {
    const session = await this.#sessionName();
    for (let i = 0; i < rows.length; i += perCommit) {
      const [tx] = await this.#clients.data.beginTransaction({ session, options: { readWrite: {} } });
      await this.#clients.data.commit({
        session,
        transactionId: tx.id,
        mutations: [{ insert: { table, columns, values: rows.slice(i, i + perCommit).map((r) => ({ values: r.map(protoValue) })) } }],
      });
    }
  }

  async update(table: string, columns: string[], rows: Cell[][]): Promise<void> {
    const session = await this.#sessionName();
    const [tx] = await this.#clients.data.beginTransaction({ session, options: { readWrite: {} } });
    await this.#clients.data.commit({ session, transactionId: tx.id, mutations: [{ update: { table, columns, values: rows.map((r) => ({ values: r.map(protoValue) })) } }] });
  }

  async deleteKey(table: string, key: Cell[]): Promise<void> {
    const session = await this.#sessionName();
    const [tx] = await this.#clients.data.beginTransaction({ session, options: { readWrite: {} } });
    await this.#clients.data.commit({ session, transactionId: tx.id, mutations: [{ delete: { table, keySet: { keys: [{ values: key.map(protoValue) }] } } }] });
  }

  #highLevel(): Database {
    if (!this.#database) {
      this.#spanner = new Spanner({ projectId: this.env.projectId, universeDomain: 'googleapis.com', disableBuiltInMetrics: true });
      this.#database = this.#spanner.instance(this.env.instanceId).database(this.id);
    }
    return this.#database;
  }

  /** Every row of a table in key order, each cell rendered by the high-level client's own codec into comparable text. */
  async rows(table: string, orderBy: string): Promise<string[][]> {
    const [rows] = await this.#highLevel().run({ sql: `SELECT * FROM ${table} ORDER BY ${orderBy}` });
    return (rows as unknown as Array<Array<{ name: string; value: unknown }>>).map((row) => row.map((c) => `${c.name}=${render(c.value)}`));
  }

  async count(table: string): Promise<number> {
    const [rows] = await this.#highLevel().run({ sql: `SELECT COUNT(*) AS n FROM ${table}`, json: true });
    return Number((rows[0] as { n: unknown }).n);
  }

  async query(sql: string): Promise<Array<Record<string, unknown>>> {
    const [rows] = await this.#highLevel().run({ sql, json: true, jsonOptions: { wrapNumbers: false } });
    return rows as Array<Record<string, unknown>>;
  }

  async exists(): Promise<boolean> {
    try {
      await this.#clients.admin.getDatabase({ name: this.name });
      return true;
    } catch {
      return false;
    }
  }

  async drop(): Promise<void> {
    await this.#clients.admin.dropDatabase({ database: this.name }).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#session) await this.#clients.data.deleteSession({ name: this.#session }, { timeout: 3000, maxRetries: 0 }).catch(() => undefined);
    await this.#database?.close();
    this.#spanner?.close();
    await Promise.allSettled([this.#clients.data.close(), this.#clients.admin.close()]);
  }
}

/** A cell as text: typed by the client's wrapper classes, so 1 and 1.0, NULL and '' stay apart. */
function render(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Array.isArray(value)) return `[${value.map(render).join(',')}]`;
  if (Buffer.isBuffer(value)) return `b64:${value.toString('base64')}`;
  if (typeof value === 'object') {
    const v = value as { constructor: { name: string }; value?: unknown; toFullTimeString?: () => string; toJSON?: () => unknown };
    const kind = v.constructor.name;
    if (kind === 'PreciseDate' && v.toFullTimeString) return `ts:${(value as { toISOString(): string }).toISOString()}/${v.toFullTimeString()}`;
    if ('value' in v) return `${kind}:${Object.is(v.value, -0) ? '-0' : String(v.value)}`;
    return `${kind}:${JSON.stringify(v.toJSON ? v.toJSON() : v)}`;
  }
  return `${typeof value}:${Object.is(value, -0) ? '-0' : String(value)}`;
}

/** A handy-spanner of the test's own on a free port, for the test that kills its server mid-backup. */
export async function startOwnSpanner(bin: string, port: number): Promise<{ host: string; process: ChildProcess; stop(): void }> {
  const child = spawn(bin, ['-addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  const { createConnection } = await import('node:net');
  for (let i = 0; i < 120; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) return { host, process: child, stop: () => child.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`handy-spanner (${bin}) did not listen on ${host}`);
}
