import type { Config } from '../config/schema.ts';
import { BakError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Manifest } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import { openForBackup, runBackup } from './backup.ts';
import { runGc, type PruneReport } from './gc.ts';
import { JobHooks } from './hooks.ts';
import { prepareSource } from './job-source.ts';
import { updateMetricsFile } from './metrics.ts';
import type { ProgressSink } from '../util/progress.ts';

/** What every job of a run (or a lone `bak backup --job`) is run with. */
export interface JobSettings {
  config: Config;
  configFile?: string | undefined;
  /** The job's repository, opened once per repository however many jobs use it. */
  openRepository(job: string): Promise<Repository>;
  log: Logger;
  concurrency: number;
  lockWaitMs: number;
  graceMs: number;
  metricsFile?: string | undefined;
  /** Aborted by an interrupt: the running job stops and cleans up, no further job or prune starts. */
  signal?: AbortSignal | undefined;
}

export interface RunRequest extends JobSettings {
  jobs: string[];
  /** Prune each repository once, after every job has applied its retention. */
  prune: boolean;
  /** A progress line for each job as it starts (the n-th of the run, from 0). */
  progressFor?(job: string, n: number): ProgressSink;
  /** Called as each job ends, so a summary can be printed as the night goes. */
  onJobDone?(outcome: JobOutcome): void;
}

export interface JobOutcome {
  job: string;
  ok: boolean;
  /** Why it failed: the backup, the retention, or the job's set-up. */
  error?: string;
  snapshot?: string;
  status?: string;
  durationSeconds: number;
  bytes: number;
  newBytes: number;
  /** Snapshots the job's retention forgot; null when the job has no retention policy. */
  forgotten: number | null;
}

export interface RepositoryPrune {
  repository: string;
  ok: boolean;
  error?: string;
  report?: PruneReport;
}

export interface RunReport {
  ok: boolean;
  jobs: JobOutcome[];
  prunes: RepositoryPrune[];
}

/**
 * The nightly command: each job backs up, then applies its retention (forget only), one job after the
 * other, a failure in one never stopping the next; then every repository a retention touched is pruned
 * once (a prune reads every index, so once per repository rather than once per job).
 * Hooks and the metrics file are updated as each job ends.
 */
export async function runJobs(request: RunRequest): Promise<RunReport> {
  const outcomes: JobOutcome[] = [];
  const toPrune = new Map<string, Repository>();
  for (const [n, job] of request.jobs.entries()) {
    const { outcome, forgotIn } = await runJob({ ...request, job, retention: true, progress: request.progressFor?.(job, n) });
    if (outcome.ok) request.log.info(describeOutcome(outcome));
    else request.log.error(describeOutcome(outcome));
    if (forgotIn) toPrune.set(forgotIn.description, forgotIn);
    outcomes.push(outcome);
    request.onJobDone?.(outcome);
    if (request.signal?.aborted) break;
  }
  const prunes: RepositoryPrune[] = [];
  if (request.prune && !request.signal?.aborted) {
    for (const [description, repo] of toPrune) {
      try {
        const gc = await runGc(repo, {
          dryRun: false,
          graceMs: request.graceMs,
          prune: true,
          lockWaitMs: request.lockWaitMs,
          log: request.log,
          concurrency: request.concurrency,
          signal: request.signal,
        });
        prunes.push({ repository: description, ok: true, report: gc.prune! });
      } catch (err) {
        request.log.error(`pruning ${description} failed: ${errorMessage(err)}`);
        prunes.push({ repository: description, ok: false, error: errorMessage(err) });
      }
    }
  }
  return { ok: outcomes.every((o) => o.ok) && prunes.every((p) => p.ok), jobs: outcomes, prunes };
}

export interface JobRequest extends JobSettings {
  job: string;
  /** Apply the job's retention (forget only) after a complete backup: `bak run` does, `bak backup --job` does not. */
  retention: boolean;
  /** Command-line engine options and tags on top of the job's (`bak backup --job`). */
  overrides?: Record<string, unknown>;
  extraTags?: string[];
  progress?: ProgressSink | undefined;
}

export interface JobResult {
  outcome: JobOutcome;
  manifest?: Manifest;
  /** What failed, as thrown (its exit code intact), for a caller that reports one job. */
  error?: unknown;
  /** The repository, when a retention ran in it (so it is pruned later). */
  forgotIn?: Repository;
}

/** One job with everything around it: hooks on start and at the end, the backup, its retention, the metrics file. */
export async function runJob(request: JobRequest): Promise<JobResult> {
  const { log, job } = request;
  const at = new Date();
  const jobConfig = request.config.jobs[job];
  const hooks = new JobHooks(job, jobConfig?.hooks, log);
  await hooks.send('start', `bak: job ${job} started`);
  const outcome: JobOutcome = { job, ok: false, durationSeconds: 0, bytes: 0, newBytes: 0, forgotten: null };
  const result: JobResult = { outcome };
  let repo: Repository | undefined;
  let inRetention = false;
  try {
    const { engine, source } = prepareSource(request.config, { job, ...(request.overrides ? { overrides: request.overrides } : {}) }, request.configFile);
    const opened = await openForBackup(engine, source, () => request.openRepository(job), { log, lockWaitMs: request.lockWaitMs, signal: request.signal });
    repo = opened.repo;
    const manifest = await runBackup(repo, {
      early: opened.early,
      engine,
      source,
      job,
      tags: [...(jobConfig?.tags ?? []), ...(request.extraTags ?? [])],
      log,
      concurrency: request.concurrency,
      lockWaitMs: request.lockWaitMs,
      progress: request.progress,
      signal: request.signal,
    });
    result.manifest = manifest;
    Object.assign(outcome, { snapshot: manifest.id, status: manifest.status, bytes: manifest.totals.bytes, newBytes: manifest.totals.newBytes });
    if (manifest.status !== 'complete') throw new BakError(`snapshot ${manifest.id} is ${manifest.status}: ${manifest.failures.map((f) => f.item).join(', ')} failed`);
    if (request.retention && jobConfig?.retention) {
      inRetention = true;
      const retention = jobConfig.retention;
      const gc = await runGc(repo, {
        forget: { select: (m) => m.job === job, policyFor: () => ({ policy: retention, origin: `job ${job}` }) },
        dryRun: false,
        graceMs: request.graceMs,
        prune: false,
        lockWaitMs: request.lockWaitMs,
        log,
        concurrency: request.concurrency,
        signal: request.signal,
      });
      outcome.forgotten = gc.forgotten.length;
      result.forgotIn = repo;
      if (gc.releasePending.length) throw new BakError(`release pending for ${gc.releasePending.length} forgotten snapshot(s): ${gc.releasePending.join(', ')}`);
    }
    outcome.ok = true;
  } catch (err) {
    result.error = err;
    outcome.error = inRetention ? `retention: ${errorMessage(err)}` : errorMessage(err);
  }
  outcome.durationSeconds = (Date.now() - at.getTime()) / 1000;
  await hooks.send(outcome.ok ? 'success' : 'failure', describeOutcome(outcome), { outcome });
  if (request.metricsFile !== undefined) {
    try {
      const update = {
        backup: { at, ok: outcome.ok, durationSeconds: outcome.durationSeconds, bytesRead: outcome.bytes, bytesNew: outcome.newBytes },
        ...(outcome.forgotten !== null ? { snapshotsForgotten: outcome.forgotten } : {}),
        ...(repo && result.manifest ? { snapshots: await countSnapshots(repo, result.manifest.sourceKey) } : {}),
      };
      await updateMetricsFile(request.metricsFile, new Map([[job, update]]), log);
    } catch (err) {
      // Monitoring then sees a stale file, which is what an alert on its age is for; the backup stands.
      log.error(errorMessage(err));
    }
  }
  return result;
}

/** A source's snapshots, from a listing of its manifests (none is read). */
async function countSnapshots(repo: Repository, sourceKey: string): Promise<number> {
  let count = 0;
  for await (const _ of repo.listManifestKeys(sourceKey)) count++;
  return count;
}

/** One line per job, for the summary, the ping body and the log. */
export function describeOutcome(o: JobOutcome): string {
  const forgot = o.forgotten === null ? '' : `, ${o.forgotten} snapshot(s) forgotten`;
  const what = o.snapshot ? `snapshot ${o.snapshot}, ${o.bytes} bytes read, ${o.newBytes} new` : 'no snapshot';
  return `job ${o.job} ${o.ok ? 'ok' : 'FAILED'} in ${o.durationSeconds.toFixed(1)} s: ${what}${forgot}${o.error ? `; ${o.error}` : ''}`;
}
