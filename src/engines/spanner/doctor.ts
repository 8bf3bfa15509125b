import type { DoctorCheck } from '../../operations/doctor.ts';
import { describeSpannerError, grpcCode, openClients, Status } from './client.ts';
import { databasePath, type SpannerSource } from './source.ts';

/** `bak doctor` for a Spanner source: one GetDatabase with the engine's clients (endpoint, key file or ADC), its state and dialect. */
export async function doctorSpanner(source: SpannerSource): Promise<DoctorCheck[]> {
  const ref = source.options.ref;
  const clients = openClients(source.options);
  const db = databasePath(ref);
  try {
    const [found] = await clients.admin.getDatabase({ name: db }, { timeout: 15_000, maxRetries: 0 });
    const dialect = String(found.databaseDialect ?? 'GOOGLE_STANDARD_SQL');
    const postgres = dialect === 'POSTGRESQL' || dialect === '2';
    return [
      postgres && source.options.mode !== 'native'
        ? { name: 'database', status: 'fail', detail: `${db} at ${clients.where} uses the PostgreSQL dialect, which export mode does not read`, fix: 'use mode native' }
        : { name: 'database', status: 'ok', detail: `${db} at ${clients.where}: ${String(found.state ?? 'state not reported')}` },
    ];
  } catch (err) {
    if (grpcCode(err) === Status.NOT_FOUND) {
      return [{ name: 'database', status: 'fail', detail: `${db} does not exist at ${clients.where}`, fix: 'correct the source URI (project, instance, database)' }];
    }
    const e = describeSpannerError(err, 'reading the database', ref, clients.where);
    return [{ name: 'database', status: 'fail', detail: e.message, fix: e.hint ?? 'check the endpoint and the credentials (keyFile, or Application Default Credentials)' }];
  } finally {
    await clients.close();
  }
}
