import type { Config, JobConfig } from '../config/schema.ts';
import { resolveSecretsDeep } from '../config/secrets.ts';
import type { Engine, Source } from '../engines/engine.ts';
import { engineNameForUri, getEngine } from '../engines/registry.ts';
import { UsageError } from '../errors.ts';
import { retentionHorizonDays } from '../repository/retention.ts';

export interface SourceRequest {
  /** A job from the config, or … */
  job?: string | undefined;
  /** … a source URI given directly. */
  uri?: string | undefined;
  engine?: string | undefined;
  /** Options given on the command line; they win over the job's. */
  overrides?: Record<string, unknown>;
}

export interface PreparedSource {
  engine: Engine;
  source: Source;
  job: JobConfig | undefined;
}

/**
 * A job (or a bare URI) turned into an engine and a validated source: the job's options with their
 * secret references resolved, the command line's on top. Shared by backup, run and doctor.
 */
export function prepareSource(config: Config, request: SourceRequest, configFile?: string): PreparedSource {
  const job = request.job !== undefined ? config.jobs[request.job] : undefined;
  if (request.job !== undefined && !job) throw new UsageError(`no job named "${request.job}" in ${configFile ?? 'the config (no config file found)'}`);
  const sourceUri = job?.source ?? request.uri;
  if (sourceUri === undefined) throw new UsageError('give a source URI or a job');
  const engineName = request.engine ?? job?.engine ?? engineNameForUri(sourceUri);
  const engine = getEngine(engineName);
  const resolved = resolveSecretsDeep(job?.options ?? {}, `jobs.${request.job}.options`);
  const options: Record<string, unknown> = { ...(resolved.value as Record<string, unknown>) };
  // BigQuery table snapshots expire a little after the job's retention would forget them.
  if (engineName === 'bigquery' && job?.retention && options.retentionDays === undefined) {
    const days = retentionHorizonDays(job.retention);
    if (days !== undefined) options.retentionDays = days;
  }
  // Each engine validates the options it takes and names any it does not.
  for (const [key, value] of Object.entries(request.overrides ?? {})) if (value !== undefined) options[key] = value;
  const source = engine.parseSource(sourceUri, options);
  source.secrets.push(...resolved.secrets);
  return { engine, source, job };
}
