import { credentials } from '@grpc/grpc-js';
import { v1, type protos } from '@google-cloud/spanner';
import { BakError, UsageError } from '../../errors.ts';
import { databasePath, instancePath, type ConnectionOptions, type DatabaseRef } from './source.ts';

export type IValue = protos.google.protobuf.IValue;
export type IPartialResultSet = protos.google.spanner.v1.IPartialResultSet;
export type IMutation = protos.google.spanner.v1.IMutation;

/** gRPC status codes bak tells apart (google.rpc.Code). */
export const Status = { CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/**
 * Call options for server-streaming reads: gax would otherwise re-run a failed stream from its start up to twice, with
 * backoff, for any error (7 s for a query of a view handy-spanner lacks) and without a resume token; read.ts resumes
 * from the last resume token itself.
 */
export const NO_STREAM_RETRIES = { retryRequestOptions: { retries: 0, noResponseRetries: 0 } };

export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * The generated gRPC clients (the ones the high-level @google-cloud/spanner client is built on): bak reads rows as
 * raw protobuf values and commits mutations it builds itself, so it needs no session pool and no value codec. The
 * codec's JSON decoding (JSON.parse) would lose integers past 2^53 and reorder numeric keys, and its wrapper objects
 * cost an allocation per cell.
 */
export interface SpannerClients {
  data: v1.SpannerClient;
  admin: v1.DatabaseAdminClient;
  instances: v1.InstanceAdminClient;
  /** Where the clients connect, for messages. */
  where: string;
  emulator: boolean;
  close(): Promise<void>;
}

export function openClients(settings: ConnectionOptions): SpannerClients {
  const endpoint = settings.endpoint ?? (process.env.SPANNER_EMULATOR_HOST ? `http://${process.env.SPANNER_EMULATOR_HOST}` : undefined);
  let options: Record<string, {}> = {};
  let where = 'spanner.googleapis.com';
  let emulator = false;
  if (endpoint !== undefined) {
    const match = /^(?:(https?):\/\/)?([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(endpoint);
    if (!match) throw new UsageError(`invalid Spanner endpoint ${JSON.stringify(endpoint)}: use http://host:port (an emulator) or https://host[:port]`);
    const [, scheme, host, port] = match;
    emulator = scheme === 'http';
    where = `${host}:${port ?? (emulator ? 9010 : 443)}`;
    options = { servicePath: host!, port: Number(port ?? (emulator ? 9010 : 443)) };
    // An emulator speaks plain gRPC and wants no credentials.
    if (emulator) options.sslCreds = credentials.createInsecure();
  }
  if (settings.keyFile !== undefined) options.keyFilename = settings.keyFile;
  // Known explicitly, so the transport never asks the GCE metadata server.
  options.universeDomain = 'googleapis.com';
  const data = new v1.SpannerClient(options);
  const admin = new v1.DatabaseAdminClient(options);
  const instances = new v1.InstanceAdminClient(options);
  return {
    data,
    admin,
    instances,
    where,
    emulator,
    async close() {
      await Promise.allSettled([data.close(), admin.close(), instances.close()]);
    },
  };
}

/** An error from Spanner as the operator should read it: what was asked, of what, and what to do. */
export function describeSpannerError(err: unknown, what: string, ref: DatabaseRef, where: string): BakError {
  const code = grpcCode(err);
  // gax appends every retried attempt's error ("Previous errors: [...]"): the first says it all.
  const detail = ((err as Error)?.message ?? String(err)).replace(/^\d+ [A-Z_]+: /, '').replace(/\s*:?\s*Previous errors\s*:[\s\S]*$/, '').slice(0, 500);
  const db = databasePath(ref);
  switch (code) {
    case Status.NOT_FOUND:
      if (/instance/i.test(detail) && !/database/i.test(detail)) return new BakError(`${what}: Spanner instance ${instancePath(ref)} does not exist at ${where} (${detail})`, 1, { cause: err });
      return new BakError(`${what}: ${/table/i.test(detail) ? detail : `Spanner database ${db} does not exist at ${where} (${detail})`}`, 1, { cause: err });
    case Status.PERMISSION_DENIED:
      return new BakError(`${what}: permission denied on ${db} at ${where}: ${detail}`, 1, {
        cause: err,
        hint: 'the credentials (Application Default Credentials or keyFile) need roles/spanner.databaseReader to back up, roles/spanner.databaseUser and roles/spanner.databaseAdmin to restore, roles/spanner.backupAdmin for native mode',
      });
    case Status.UNAUTHENTICATED:
      return new BakError(`${what}: not authenticated to Spanner at ${where}: ${detail}`, 1, { cause: err, hint: 'run `gcloud auth application-default login` or set keyFile' });
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
      return new BakError(`${what}: Spanner at ${where} is unreachable or went away: ${detail}`, 1, { cause: err });
    default:
      return new BakError(`${what} (${db}): ${detail}`, 1, { cause: err });
  }
}
