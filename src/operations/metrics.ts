import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { BakError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** What one command learned about one job; fields it did not learn keep their values from the file. */
export interface JobMetricsUpdate {
  backup?: {
    /** When the attempt started. */
    at: Date;
    ok: boolean;
    durationSeconds: number;
    bytesRead?: number;
    bytesNew?: number;
  };
  snapshotsForgotten?: number;
  /** This job's snapshots in the repository after the command. */
  snapshots?: number;
  verify?: { at: Date; ok: boolean };
}

/** Every series bak writes: one gauge per name, labelled by job. */
const METRICS = {
  lastAttempt: ['bak_last_attempt_timestamp_seconds', 'Start of the last backup attempt of the job (Unix time).'],
  lastAttemptOk: ['bak_last_attempt_success', 'Whether the last backup attempt succeeded (1) or failed (0).'],
  lastSuccess: ['bak_last_success_timestamp_seconds', 'Start of the last successful backup of the job (Unix time).'],
  duration: ['bak_last_duration_seconds', 'How long the last backup attempt took, retention included.'],
  bytesRead: ['bak_last_bytes_read', 'Bytes the last successful backup read from the source.'],
  bytesNew: ['bak_last_bytes_new', 'Bytes the last successful backup added to the repository, after dedup and compression.'],
  forgotten: ['bak_last_snapshots_forgotten', 'Snapshots the last retention run forgot.'],
  snapshots: ['bak_snapshots', "The job's snapshots in the repository."],
  lastVerify: ['bak_last_verify_timestamp_seconds', "When the job's snapshots were last verified (Unix time)."],
  lastVerifyOk: ['bak_last_verify_success', 'Whether the last verify of the job found its snapshots sound (1) or not (0).'],
} as const;
type MetricKey = keyof typeof METRICS;

type Values = Map<string, Map<string, number>>; // metric name → job → value

/**
 * Updates jobs' series (one read and one write of the file, however many jobs) in a Prometheus text-format file, keeping every other job's (the node_exporter
 * textfile collector reads one file for all of them). The file is written beside itself and renamed into place,
 * so the collector never reads half a file. Two bak processes updating the same file at the same moment can lose
 * one's update (the next run writes it again); a run is one process, so `bak run` never races itself.
 */
export async function updateMetricsFile(file: string, updates: ReadonlyMap<string, JobMetricsUpdate>, log?: Logger): Promise<void> {
  const values = await readValues(file, log);
  for (const [job, update] of updates) applyUpdate(values, job, update);
  await writeAtomically(file, await render(values));
}

function applyUpdate(values: Values, job: string, update: JobMetricsUpdate): void {
  const set = (key: MetricKey, value: number) => {
    const name = METRICS[key][0];
    let byJob = values.get(name);
    if (!byJob) values.set(name, (byJob = new Map()));
    byJob.set(job, value);
  };
  const seconds = (d: Date) => d.getTime() / 1000;
  if (update.backup) {
    set('lastAttempt', seconds(update.backup.at));
    set('lastAttemptOk', update.backup.ok ? 1 : 0);
    set('duration', update.backup.durationSeconds);
    if (update.backup.ok) {
      set('lastSuccess', seconds(update.backup.at));
      if (update.backup.bytesRead !== undefined) set('bytesRead', update.backup.bytesRead);
      if (update.backup.bytesNew !== undefined) set('bytesNew', update.backup.bytesNew);
    }
  }
  if (update.snapshotsForgotten !== undefined) set('forgotten', update.snapshotsForgotten);
  if (update.snapshots !== undefined) set('snapshots', update.snapshots);
  if (update.verify) {
    set('lastVerify', seconds(update.verify.at));
    set('lastVerifyOk', update.verify.ok ? 1 : 0);
  }
}

async function readValues(file: string, log?: Logger): Promise<Values> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new BakError(`cannot read the metrics file ${file}: ${(err as Error).message}`);
  }
  // Loaded here, not at start-up: prom-client brings ~130 modules (OpenTelemetry's API among them) that only a run with a metrics file needs.
  const { default: parsePrometheusTextFormat } = await import('parse-prometheus-text-format');
  const values: Values = new Map();
  const known = new Set<string>(Object.values(METRICS).map(([name]) => name));
  try {
    for (const family of parsePrometheusTextFormat(text)) {
      if (!known.has(family.name)) continue;
      const byJob = new Map<string, number>();
      for (const sample of family.metrics) {
        const job = sample.labels?.job;
        const value = Number(sample.value);
        if (job !== undefined && Number.isFinite(value)) byJob.set(job, value);
      }
      values.set(family.name, byJob);
    }
  } catch (err) {
    // The file is bak's own; one it cannot parse is replaced, and what it held is lost (said so).
    log?.warn(`the metrics file ${file} could not be parsed (${(err as Error).message}): it is written anew with this run's values only`);
    return new Map();
  }
  return values;
}

async function render(values: Values): Promise<string> {
  const { Gauge, Registry } = await import('prom-client');
  const registry = new Registry();
  for (const [name, help] of Object.values(METRICS)) {
    const byJob = values.get(name);
    if (!byJob || byJob.size === 0) continue;
    const gauge = new Gauge({ name, help, labelNames: ['job'], registers: [registry] });
    for (const job of [...byJob.keys()].sort()) gauge.set({ job }, byJob.get(job)!);
  }
  return registry.metrics();
}

async function writeAtomically(file: string, text: string): Promise<void> {
  // A dotted name: the textfile collector reads only *.prom, so the temporary file is never collected.
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { mode: 0o644, flush: true });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw new BakError(`cannot write the metrics file ${file}: ${(err as Error).message}`, 1, {
      hint: 'the folder must exist and be writable by the user bak runs as',
    });
  }
}
