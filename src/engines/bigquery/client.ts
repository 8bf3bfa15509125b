import { credentials } from '@grpc/grpc-js';
import { BigQuery } from '@google-cloud/bigquery';
import { managedwriter, v1 as storage } from '@google-cloud/bigquery-storage';
import { PassThroughClient } from 'google-auth-library';
import { BakError, UsageError } from '../../errors.ts';
import type { ConnectionOptions } from './source.ts';

/**
 * The clients one BigQuery run needs: REST for metadata and jobs (the official client, with its auth and retries),
 * the Storage Read API's generated gRPC client (bak copies its Avro blocks as they come, so it needs no row objects),
 * and the Storage Write API's managed writer for restores.
 */
export interface BigQueryClients {
  rest: BigQuery;
  read: storage.BigQueryReadClient;
  writer: managedwriter.WriterClient;
  project: string;
  /** Where the clients connect, for messages. */
  where: string;
  emulator: boolean;
  /** Counts of REST calls by kind, for the benchmark's O(tables) claim and for logs. */
  calls: Map<string, number>;
  count(kind: string): void;
  close(): Promise<void>;
}

function grpcOptions(endpoint: string | undefined): { options: Record<string, {}>; where: string; insecure: boolean } {
  if (endpoint === undefined) return { options: {}, where: 'bigquerystorage.googleapis.com', insecure: false };
  const match = /^(?:(https?):\/\/)?([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(endpoint);
  if (!match) throw new UsageError(`invalid BigQuery Storage API endpoint ${JSON.stringify(endpoint)}: use http://host:port (an emulator, plain gRPC) or host[:port]`);
  const [, scheme, host, port] = match;
  const insecure = scheme === 'http';
  const options: Record<string, {}> = { servicePath: host!, port: Number(port ?? 443) };
  if (insecure) options.sslCreds = credentials.createInsecure();
  return { options, where: `${host}:${port ?? 443}`, insecure };
}

export function openClients(project: string, settings: ConnectionOptions): BigQueryClients {
  const emulatorHost = process.env.BIGQUERY_EMULATOR_HOST;
  const endpoint = settings.endpoint ?? (emulatorHost ? (emulatorHost.includes('://') ? emulatorHost : `http://${emulatorHost}`) : undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(endpoint)) throw new UsageError(`invalid BigQuery endpoint ${JSON.stringify(endpoint)}: use http://host:port (an emulator) or https://host`);
  const emulator = endpoint?.startsWith('http://') ?? false;
  const grpc = grpcOptions(settings.storageEndpoint);
  // Retries are bak's (rest.ts): the client's own would retry every 500 and, three times over, every refused connection.
  const restOptions: ConstructorParameters<typeof BigQuery>[0] = { projectId: project, retryOptions: { autoRetry: false }, ...(settings.location ? { location: settings.location } : {}) };
  if (endpoint !== undefined) restOptions.apiEndpoint = endpoint.replace(/\/$/, '');
  // An emulator has no credentials: without this the client looks for default ones, which probes the GCE metadata server.
  if (emulator) restOptions.authClient = new PassThroughClient();
  else if (settings.keyFile !== undefined) restOptions.keyFilename = settings.keyFile;
  const rest = new BigQuery(restOptions);

  const grpcSettings: Record<string, {}> = { ...grpc.options, universeDomain: 'googleapis.com' };
  if (!grpc.insecure && settings.keyFile !== undefined) grpcSettings.keyFilename = settings.keyFile;
  const read = new storage.BigQueryReadClient(grpcSettings);
  const writer = new managedwriter.WriterClient(grpcSettings);
  const calls = new Map<string, number>();
  return {
    rest,
    read,
    writer,
    project,
    where: endpoint ?? 'bigquery.googleapis.com',
    emulator,
    calls,
    count: (kind) => void calls.set(kind, (calls.get(kind) ?? 0) + 1),
    async close() {
      await Promise.allSettled([read.close(), writer.close()]);
    },
  };
}

interface ApiErrorShape {
  code?: number | string;
  message?: string;
  errors?: Array<{ reason?: string; message?: string }>;
  response?: { statusCode?: number };
}

/** The error's `reason` (notFound, accessDenied, quotaExceeded, rateLimitExceeded, duplicate …) or gRPC status name. */
export function errorReason(err: unknown): string | undefined {
  const e = err as ApiErrorShape | null;
  const reason = e?.errors?.find((x) => x.reason)?.reason;
  if (reason) return reason;
  if (typeof e?.code === 'number') {
    // gRPC codes from the Storage API.
    const grpcNames: Record<number, string> = { 5: 'notFound', 6: 'duplicate', 7: 'accessDenied', 8: 'quotaExceeded', 14: 'backendError', 16: 'unauthenticated' };
    const message = e.message ?? '';
    if (e.code === 404 || (e.code === 5 && !/HTTP/.test(message))) return 'notFound';
    if (e.code === 403) return /quota/i.test(message) ? 'quotaExceeded' : /rate limit/i.test(message) ? 'rateLimitExceeded' : 'accessDenied';
    if (e.code === 409) return 'duplicate';
    if (e.code === 429) return 'rateLimitExceeded';
    if (e.code === 401) return 'unauthenticated';
    return grpcNames[e.code];
  }
  return undefined;
}

/** Quota and rate errors: a run stops starting new work on these and defers what is left. */
export function isQuotaError(err: unknown): boolean {
  const reason = errorReason(err);
  return reason === 'quotaExceeded' || reason === 'rateLimitExceeded' || reason === 'jobRateLimitExceeded';
}

/** Errors worth another try after a pause: rate limits, the backend's own hiccups, and the network. */
export function isRetryable(err: unknown): boolean {
  const reason = errorReason(err);
  if (reason === 'rateLimitExceeded' || reason === 'userRateLimitExceeded' || reason === 'backendError') return true;
  // The emulator's SQLite answers concurrent writes with HTTP 500 "database is locked".
  if (/database is locked/.test((err as Error | null)?.message ?? '')) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === 502 || code === 503 || code === 504 || code === 'ECONNRESET' || code === 'ETIMEDOUT';
}

/** An error from BigQuery as the operator should read it: what was asked, of what, and what to do. */
export function describeBigQueryError(err: unknown, what: string, where: string): BakError {
  if (err instanceof BakError) return err;
  const reason = errorReason(err);
  const detail = ((err as Error)?.message ?? String(err)).replace(/^\d+ [A-Z_]+: /, '').slice(0, 500);
  switch (reason) {
    case 'notFound':
      return new BakError(`${what}: not found at ${where}: ${detail}`, 1, { cause: err });
    case 'accessDenied':
      return new BakError(`${what}: permission denied at ${where}: ${detail}`, 1, {
        cause: err,
        hint: 'the credentials (Application Default Credentials or keyFile) need roles/bigquery.dataViewer and roles/bigquery.readSessionUser to back up, roles/bigquery.dataEditor and roles/bigquery.jobUser to restore',
      });
    case 'unauthenticated':
      return new BakError(`${what}: not authenticated to BigQuery at ${where}: ${detail}`, 1, { cause: err, hint: 'run `gcloud auth application-default login` or set keyFile' });
    case 'quotaExceeded':
    case 'rateLimitExceeded':
      return new BakError(`${what}: BigQuery quota exceeded at ${where}: ${detail}`, 1, { cause: err });
    default:
      if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|UNAVAILABLE|socket hang up/i.test(detail)) return new BakError(`${what}: BigQuery at ${where} is unreachable or went away: ${detail}`, 1, { cause: err });
      return new BakError(`${what}: ${detail}`, 1, { cause: err });
  }
}
