import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import * as path from 'node:path';

/** Addresses of the test servers, as scripts/servers/start.sh wrote them. */
export interface ServersEnv {
  postgres: { host: string; port: number; user: string; password: string; bin: string };
  minio: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bin: string };
  gcs: { apiEndpoint: string; projectId: string };
  bigquery: { endpoint: string; grpcPort: number; projectId: string; bin: string };
  spanner: { host: string; projectId: string; instanceId: string; databaseId: string; bin: string };
  /** local-kms, an AWS KMS emulator (it keeps its keys between runs: tests create their own). */
  kms: { endpoint: string; region: string; accountId: string };
  /** An Avro reader that is not bak's own (Python fastavro), for the Spanner export test. */
  fastavro: { pythonPath: string };
}

export type ServerName = Exclude<keyof ServersEnv, 'fastavro'>;

const START_HINT = 'start the test servers with: bash scripts/servers/start.sh (install them first with: bash scripts/servers/install.sh)';

export function serversEnv(): ServersEnv {
  const dir = process.env.BAK_SERVERS_DIR ?? path.resolve(import.meta.dirname, '../../.servers');
  const file = path.join(dir, 'env.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ServersEnv;
  } catch {
    throw new Error(`test servers are not running (no ${file}): ${START_HINT}`);
  }
}

function hostPortOf(name: ServerName, env: ServersEnv): { host: string; port: number } {
  switch (name) {
    case 'postgres':
      return { host: env.postgres.host, port: env.postgres.port };
    case 'spanner': {
      const [host, port] = env.spanner.host.split(':');
      return { host: host!, port: Number(port) };
    }
    default: {
      const endpoints: Record<Exclude<ServerName, 'postgres' | 'spanner'>, string | undefined> = {
        minio: env.minio?.endpoint,
        gcs: env.gcs?.apiEndpoint,
        bigquery: env.bigquery?.endpoint,
        kms: env.kms?.endpoint,
      };
      const endpoint = endpoints[name];
      // An env.json written before a server was added to start.sh lacks its entry.
      if (endpoint === undefined) throw new Error(`test server '${name}' is not in the servers' env.json: ${START_HINT}`);
      const url = new URL(endpoint);
      return { host: url.hostname, port: Number(url.port) };
    }
  }
}

/**
 * Returns the server's settings once a TCP connection to it succeeds; otherwise throws an error that says how to start it.
 * Suites call this in beforeAll, so a missing server fails the suite instead of skipping it.
 */
export async function requireServer<N extends ServerName>(name: N): Promise<ServersEnv[N]> {
  const env = serversEnv();
  const { host, port } = hostPortOf(name, env);
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host, port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(`test server '${name}' is not reachable on ${host}:${port} (${why}): ${START_HINT}`));
    };
    socket.once('timeout', () => fail('timeout'));
    socket.once('error', (err) => fail(err.message));
  });
  return env[name];
}
