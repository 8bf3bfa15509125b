import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { requireServer, type ServersEnv } from './servers.ts';

export type BigQueryEnv = ServersEnv['bigquery'];

export async function requireBigQuery(): Promise<BigQueryEnv & { storageEndpoint: string }> {
  const env = await requireServer('bigquery');
  return { ...env, storageEndpoint: `http://127.0.0.1:${env.grpcPort}` };
}

export function uniqueDatasetId(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** The official client on the emulator, for the test's own writes and reads (never bak's code). */
export function testClient(env: BigQueryEnv): BigQuery {
  return new BigQuery({ projectId: env.projectId, apiEndpoint: env.endpoint, authClient: new PassThroughClient() });
}

/** One REST call as the test makes it: raw JSON, so the comparison sees exactly what the server holds. */
export async function rest<T = any>(env: BigQueryEnv, method: string, uri: string, body?: unknown): Promise<T> {
  const res = await fetch(`${env.endpoint}/bigquery/v2/projects/${env.projectId}${uri}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${uri}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** Every row of a table through tabledata.list, sorted by the JSON of the row: the test's own read. */
export async function allRows(env: BigQueryEnv, dataset: string, table: string): Promise<unknown[]> {
  const rows: unknown[] = [];
  let pageToken: string | undefined;
  do {
    const page = await rest(env, 'GET', `/datasets/${dataset}/tables/${encodeURIComponent(table)}/data?maxResults=1000&formatOptions.useInt64Timestamp=true${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`);
    rows.push(...(page.rows ?? []));
    pageToken = page.pageToken;
  } while (pageToken);
  return rows.map((r) => JSON.stringify(r)).sort().map((r) => JSON.parse(r));
}

export async function dropDataset(env: BigQueryEnv, dataset: string): Promise<void> {
  await rest(env, 'DELETE', `/datasets/${dataset}?deleteContents=true`).catch(() => undefined);
}

export interface Exchange {
  method: string;
  path: string;
  body: any;
}

/** An answer, or 'die': the stand-in drops this connection and every other and stops listening, as a server that died. */
type Handler = (exchange: Exchange) => { status: number; body: unknown } | 'die' | undefined;

/**
 * A stand-in in front of the emulator, for what the emulator lacks (copy jobs, table snapshots,
 * INFORMATION_SCHEMA.PARTITIONS, quota and permission errors): requests a handler answers are recorded and answered
 * here, the rest pass through to the emulator. The client-boundary evidence of copy and snapshot modes.
 */
export class BigQueryStandIn {
  readonly exchanges: Exchange[] = [];
  handlers: Handler[] = [];
  #server: Server | undefined;
  readonly #upstream: string;

  constructor(upstream: string) {
    this.#upstream = upstream;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}`;
  }

  readonly #sockets = new Set<import('node:net').Socket>();

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
  }

  /** Stops listening and drops every connection at once. */
  die(): void {
    this.#server?.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    if (!this.#server?.listening) return;
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }

  /** Recorded requests whose path matches. */
  calls(method: string, pathPattern: RegExp): Exchange[] {
    return this.exchanges.filter((e) => e.method === method && pathPattern.test(e.path));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    let body: unknown = null;
    try {
      body = raw.length ? JSON.parse(raw.toString()) : null;
    } catch {
      body = raw.toString();
    }
    const exchange: Exchange = { method: req.method ?? 'GET', path: req.url ?? '/', body };
    this.exchanges.push(exchange);
    for (const handler of this.handlers) {
      const answer = handler(exchange);
      if (answer === 'die') {
        this.die();
        return;
      }
      if (answer) {
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer.body));
        return;
      }
    }
    const upstream = await fetch(`${this.#upstream}${req.url}`, { method: req.method, headers: { 'content-type': 'application/json' }, ...(raw.length ? { body: raw } : {}) });
    const text = await upstream.text();
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  }
}

export function apiError(status: number, reason: string, message: string): { status: number; body: unknown } {
  return { status, body: { error: { code: status, message, errors: [{ reason, message }] } } };
}

/**
 * A bigquery-emulator of the caller's own on free ports (the benchmark's, so the suites' tables do not weigh on it):
 * the emulator keeps everything in one in-memory SQLite and slows as it fills.
 */
export async function startOwnBigQuery(bin: string, projectId: string): Promise<{ env: BigQueryEnv & { storageEndpoint: string }; stop(): void }> {
  const { spawn } = await import('node:child_process');
  const { unusedPort } = await import('./postgres.ts');
  const port = await unusedPort();
  const grpcPort = await unusedPort();
  const child = spawn(bin, [`--project=${projectId}`, '--host=127.0.0.1', `--port=${port}`, `--grpc-port=${grpcPort}`, '--log-level=error'], { stdio: 'ignore' });
  const env = { endpoint: `http://127.0.0.1:${port}`, grpcPort, projectId, bin, storageEndpoint: `http://127.0.0.1:${grpcPort}` };
  for (let i = 0; i < 240; i++) {
    const up = await fetch(`${env.endpoint}/bigquery/v2/projects/${projectId}/datasets`).then((r) => r.ok, () => false);
    if (up) return { env, stop: () => child.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`bigquery-emulator (${bin}) did not answer on ${env.endpoint}`);
}
