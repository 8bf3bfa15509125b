import type { protos } from '@google-cloud/spanner';
import { BakError, UsageError } from '../../errors.ts';
import { describeSpannerError, grpcCode, openClients, Status, type SpannerClients } from './client.ts';
import { databasePath, type ConnectionOptions, type DatabaseRef } from './source.ts';

export type IDatabase = protos.google.spanner.admin.database.v1.IDatabase;

/** Clients plus one session on one database: what a backup, restore or check holds while it runs. */
export interface DatabaseSession {
  clients: SpannerClients;
  ref: DatabaseRef;
  session: string;
  close(): Promise<void>;
}

/**
 * The database as the admin API describes it, or a clear error: handy-spanner hands out sessions and even answers
 * queries for databases that do not exist, so existence is asked of GetDatabase, never inferred from a session.
 */
export async function describeDatabase(clients: SpannerClients, ref: DatabaseRef, what: string): Promise<IDatabase | undefined> {
  try {
    const [db] = await clients.admin.getDatabase({ name: databasePath(ref) });
    return db;
  } catch (err) {
    if (grpcCode(err) === Status.NOT_FOUND) return undefined;
    throw describeSpannerError(err, what, ref, clients.where);
  }
}

/** Refuses what bak does not carry: the PostgreSQL dialect. */
export function assertGoogleSql(db: IDatabase, ref: DatabaseRef): void {
  const dialect = String(db.databaseDialect ?? 'GOOGLE_STANDARD_SQL');
  if (dialect === 'POSTGRESQL' || dialect === '2') {
    throw new UsageError(`Spanner database ${databasePath(ref)} uses the PostgreSQL dialect, which bak does not back up yet (GoogleSQL only): use mode native`);
  }
}

export async function openSession(connection: ConnectionOptions, ref: DatabaseRef, what: string, clients = openClients(connection)): Promise<DatabaseSession> {
  try {
    const [session] = await clients.data.createSession({ database: databasePath(ref) });
    if (!session.name) throw new BakError(`${what}: Spanner returned a session without a name`);
    const name = session.name;
    return {
      clients,
      ref,
      session: name,
      async close() {
        // A server that went away must not hold the error up for gax's 30 s of retries.
        await clients.data.deleteSession({ name }, { timeout: 5000, maxRetries: 0 }).catch(() => undefined);
        await clients.close();
      },
    };
  } catch (err) {
    await clients.close();
    throw err instanceof BakError ? err : describeSpannerError(err, what, ref, clients.where);
  }
}
