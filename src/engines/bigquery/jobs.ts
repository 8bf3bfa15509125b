import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BakError } from '../../errors.ts';
import { errorReason, type BigQueryClients } from './client.ts';
import { restCall } from './rest.ts';

export interface TableRef {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export function tableName(t: TableRef): string {
  return `${t.projectId}.${t.datasetId}.${t.tableId}`;
}

export function parseTableName(name: string): TableRef {
  const m = /^(.+)\.([^.]+)\.([^.]+)$/.exec(name);
  if (!m) throw new BakError(`not a PROJECT.DATASET.TABLE name: ${name}`);
  return { projectId: m[1]!, datasetId: m[2]!, tableId: m[3]! };
}

/** A job that failed inside BigQuery, with the reason its errorResult gave (quotaExceeded, notFound …). */
export class JobError extends Error {
  readonly errors: Array<{ reason?: string; message?: string }>;
  constructor(message: string, errors: Array<{ reason?: string; message?: string }>) {
    super(message);
    this.errors = errors;
  }
}

/** A deterministic job id: a retried insert of the same work finds the job it started instead of starting a second. */
export function jobId(prefix: string, ...parts: string[]): string {
  return `bak_${prefix}_${createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32)}`;
}

/**
 * Runs one job inside BigQuery (copy, snapshot, clone, load) and waits for it: bak only orchestrates. Polls with
 * backoff from 0.5 s to 10 s; an insert that finds its own job id already taken follows that job.
 */
export async function runJob(clients: BigQueryClients, configuration: Record<string, unknown>, id: string, options: { location?: string | undefined; project?: string } = {}): Promise<Record<string, unknown>> {
  const project = options.project ?? clients.project;
  const jobReference = { projectId: project, jobId: id, ...(options.location ? { location: options.location } : {}) };
  let job: Record<string, unknown>;
  try {
    job = await restCall(clients, 'jobs.insert', { uri: '/jobs', method: 'POST', project, json: { jobReference, configuration } });
  } catch (err) {
    if (errorReason(err) !== 'duplicate') throw err;
    job = await restCall(clients, 'jobs.get', { uri: `/jobs/${id}`, project, qs: { location: options.location } });
  }
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    const status = job.status as { state?: string; errorResult?: { reason?: string; message?: string }; errors?: Array<{ reason?: string; message?: string }> } | undefined;
    if (status?.state === 'DONE') {
      if (status.errorResult) throw new JobError(`job ${id} failed: ${status.errorResult.message ?? status.errorResult.reason}`, [status.errorResult, ...(status.errors ?? [])]);
      return job;
    }
    await sleep(delay);
    const location = (job.jobReference as { location?: string } | undefined)?.location ?? options.location;
    job = await restCall(clients, 'jobs.get', { uri: `/jobs/${id}`, project, qs: { location } });
  }
}
