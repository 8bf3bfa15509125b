import { setTimeout as sleep } from 'node:timers/promises';
import { GoogleAuth } from 'google-auth-library';
import { BakError, UsageError } from '../../errors.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { adoptDataflowExport } from './adopt.ts';
import type { SpannerSource } from './source.ts';

/*
 * Dataflow mode, the path past one machine: Google's "Cloud Spanner to GCS Avro" template is launched through the
 * Dataflow REST API, bak waits for the job (logging its state), then adopts the folder it wrote (adopt.ts: every
 * file checked against its MD5, rows counted and digested) as the snapshot. Not verified against a server: Dataflow
 * exists nowhere here; test/unit/spanner-dataflow.test.ts drives it against a stand-in of the two REST calls.
 */

const DEFAULT_API = 'https://dataflow.googleapis.com';
const TERMINAL_FAILED = new Set(['JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_DRAINED', 'JOB_STATE_UPDATED']);

interface Requester {
  request<T>(options: { url: string; method: 'GET' | 'POST'; data?: unknown }): Promise<{ data: T }>;
}

/** An unauthenticated requester for a plain-http stand-in; Application Default Credentials (or keyFile) otherwise. */
function requester(api: string, keyFile: string | undefined): Requester {
  if (api.startsWith('http://')) {
    return {
      async request<T>({ url, method, data }: { url: string; method: 'GET' | 'POST'; data?: unknown }) {
        const response = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(data === undefined ? {} : { body: JSON.stringify(data) }) });
        const text = await response.text();
        if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}: ${text.slice(0, 300)}`), { status: response.status });
        return { data: JSON.parse(text) as T };
      },
    };
  }
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'], ...(keyFile ? { keyFilename: keyFile } : {}) });
  return {
    async request<T>(options: { url: string; method: 'GET' | 'POST'; data?: unknown }) {
      const client = await auth.getClient();
      return (await client.request<T>(options)) as { data: T };
    },
  };
}

function describeHttpError(err: unknown, what: string): BakError {
  const status = (err as { status?: number; response?: { status?: number } }).status ?? (err as { response?: { status?: number } }).response?.status;
  const message = (err as Error).message ?? String(err);
  if (status === 403) return new BakError(`${what}: permission denied: ${message}`, 1, { cause: err, hint: 'the credentials need roles/dataflow.developer, and the job\'s service account roles/spanner.databaseReader and write access to outputDir' });
  if (status === 404) return new BakError(`${what}: not found (project, region or template): ${message}`, 1, { cause: err });
  return new BakError(`${what}: ${message}`, 1, { cause: err });
}

export async function backupDataflow(ctx: BackupContext & { source: SpannerSource }): Promise<BackupResult> {
  const { source, log } = ctx;
  const { ref, dataflow } = source.options;
  if (!dataflow?.outputDir) throw new UsageError('spanner mode dataflow needs dataflow.outputDir (a gs:// folder the job writes its export to)');
  const api = (dataflow.apiEndpoint ?? DEFAULT_API).replace(/\/$/, '');
  const region = dataflow.region;
  const template = dataflow.templatePath ?? `gs://dataflow-templates-${region}/latest/Cloud_Spanner_to_GCS_Avro`;
  const http = requester(api, source.options.keyFile);
  const jobName = `bak-${ref.database}-${ctx.writer.id}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/-+$/, '');
  const parameters: Record<string, string> = { instanceId: ref.instance, databaseId: ref.database, outputDir: dataflow.outputDir, spannerProjectId: ref.project };
  if (source.options.readTimestamp) parameters.snapshotTime = source.options.readTimestamp;
  const base = `${api}/v1b3/projects/${encodeURIComponent(ref.project)}/locations/${encodeURIComponent(region)}`;
  const what = `Dataflow export of ${ref.database}`;

  let jobId: string;
  try {
    const launched = await http.request<{ job?: { id?: string } }>({
      url: `${base}/templates:launch?gcsPath=${encodeURIComponent(template)}`,
      method: 'POST',
      data: { jobName, parameters, environment: { ...(dataflow.serviceAccount ? { serviceAccountEmail: dataflow.serviceAccount } : {}), ...(dataflow.tempLocation ? { tempLocation: dataflow.tempLocation } : {}) } },
    });
    if (!launched.data.job?.id) throw new BakError(`${what}: Dataflow launched no job (answer: ${JSON.stringify(launched.data).slice(0, 300)})`);
    jobId = launched.data.job.id;
  } catch (err) {
    throw err instanceof BakError ? err : describeHttpError(err, `${what}: launching ${template}`);
  }
  log.info(`Dataflow job ${jobId} (${jobName}) in ${region} exports ${ref.database} to ${dataflow.outputDir}`);

  let state = 'JOB_STATE_UNKNOWN';
  const started = Date.now();
  for (;;) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    let job: { currentState?: string };
    try {
      job = (await http.request<{ currentState?: string }>({ url: `${base}/jobs/${encodeURIComponent(jobId)}`, method: 'GET' })).data;
    } catch (err) {
      throw describeHttpError(err, `${what}: asking for job ${jobId}`);
    }
    const next = job.currentState ?? 'JOB_STATE_UNKNOWN';
    if (next !== state) log.info(`Dataflow job ${jobId}: ${next} after ${Math.round((Date.now() - started) / 1000)} s`);
    if (next !== state) ctx.progress?.activity(`${ref.database}: Dataflow job ${jobId} ${next}`);
    state = next;
    if (state === 'JOB_STATE_DONE') break;
    if (TERMINAL_FAILED.has(state)) throw new BakError(`${what}: Dataflow job ${jobId} ended ${state}: see it in the Cloud Console (region ${region})`);
    if (Date.now() - started > dataflow.timeoutSeconds * 1000) throw new BakError(`${what}: Dataflow job ${jobId} not done after ${dataflow.timeoutSeconds} s (state ${state}); it goes on running`);
    await sleep(dataflow.pollSeconds * 1000);
  }

  // The template writes into <outputDir>/<instance>-<database>-<job id>/.
  const folder = `${dataflow.outputDir.replace(/\/$/, '')}/${ref.instance}-${ref.database}-${jobId}`;
  const adopted = await adoptDataflowExport({ ...ctx, source: { ...source, options: { ...source.options, fromExport: folder } } });
  return { ...adopted, engineDetails: { ...adopted.engineDetails, readTimestamp: source.options.readTimestamp ?? null, dataflowJob: { id: jobId, name: jobName, region, template, folder } } };
}
