import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import { globMatch } from '../../util/glob.ts';
import { describeZodError } from '../../util/validation.ts';
import type { Source } from '../engine.ts';

/** How to reach BigQuery: shared by source and restore-target options. */
export const bigqueryConnectionFields = {
  /** The REST root (`http://127.0.0.1:9050` for an emulator); unset: bigquery.googleapis.com. */
  endpoint: z.string().min(1).optional(),
  /** The Storage API's gRPC `host:port`; `http://host:port` is plain gRPC (an emulator). Unset: bigquerystorage.googleapis.com. */
  storageEndpoint: z.string().min(1).optional(),
  /** A service-account key file; unset: Application Default Credentials. */
  keyFile: z.string().min(1).optional(),
  /** Where jobs run (US, EU, a region); unset: the dataset's location. */
  location: z.string().min(1).optional(),
};

export interface ConnectionOptions {
  endpoint?: string | undefined;
  storageEndpoint?: string | undefined;
  keyFile?: string | undefined;
  location?: string | undefined;
}

/** A dataset elsewhere, as `dataset` (the source's project) or `project.dataset`. */
const datasetName = z.string().regex(/^([a-z][a-z0-9.:-]*[a-z0-9]\.)?[A-Za-z0-9_]{1,1024}$/, 'use DATASET or PROJECT.DATASET');

export const bigqueryOptionsSchema = z
  .object({
    ...bigqueryConnectionFields,
    /** extract: the rows into the repository; copy: copy jobs into a backup dataset; snapshot: BigQuery table snapshots. */
    mode: z.enum(['extract', 'copy', 'snapshot']).default('extract'),
    /** Dataset globs (`*`, `?`). */
    datasets: z.array(z.string().min(1)).optional(),
    excludeDatasets: z.array(z.string().min(1)).optional(),
    /** Table globs, over the table id or, when the glob has a dot, `dataset.table`. */
    tables: z.array(z.string().min(1)).optional(),
    excludeTables: z.array(z.string().min(1)).optional(),
    /** Tables backed up at once (`--jobs`): read sessions in extract mode, copy or snapshot jobs otherwise. */
    jobs: z.number().int().positive().max(64).default(4),
    /** tables.get calls in flight while listing. */
    metadataConcurrency: z.number().int().positive().max(256).default(16),
    /**
     * extract mode: storage, the Storage Read API (parallel streams at one snapshot time, rows copied as BigQuery
     * encodes them); tabledata, tabledata.list pages (no read charges, slower, not at one snapshot time).
     */
    reader: z.enum(['storage', 'tabledata']).default('storage'),
    /** Storage Read API streams asked for per table (the server may give fewer). */
    streamsPerTable: z.number().int().positive().max(64).default(4),
    /** copy mode: where the copies go. snapshot mode: where the snapshots go. */
    backupDataset: datasetName.optional(),
    /** snapshot mode: how long BigQuery keeps a table snapshot (days); unset: from the job's retention policy, else none. */
    expireAfterDays: z.number().positive().max(36_500).optional(),
    /** Set by `bak backup --job` from the job's retention policy: the longest any snapshot is kept (days). */
    retentionDays: z.number().positive().optional(),
    /** Stop after this many quota errors in a run (0: at the first); what did not run is deferred to the next backup. */
    quotaErrorsBeforeStop: z.number().int().nonnegative().default(0),
    allowPartial: z.boolean().default(false),
  })
  .strict();
export type BigQueryOptions = z.infer<typeof bigqueryOptionsSchema>;

export interface BigQueryRef {
  project: string;
  dataset?: string | undefined;
  table?: string | undefined;
}

export interface BigQuerySource extends Source {
  options: BigQueryOptions & { ref: BigQueryRef };
}

const PROJECT = /^[a-z][a-z0-9.:-]{4,61}[a-z0-9]$/;
const DATASET = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd} ]{1,1024}$/u;

/** `bigquery://project[/dataset[/table]]`. */
export function parseBigQueryUri(uri: string): BigQueryRef {
  const match = /^bigquery:\/\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?\/?$/.exec(uri);
  if (!match) throw new UsageError(`invalid BigQuery URI ${JSON.stringify(uri)}: use bigquery://PROJECT[/DATASET[/TABLE]]`);
  const [, project, dataset, table] = match as unknown as [string, string, string | undefined, string | undefined];
  if (!PROJECT.test(project)) throw new UsageError(`invalid BigQuery project id ${JSON.stringify(project)} in ${uri}`);
  if (dataset !== undefined && !DATASET.test(dataset)) throw new UsageError(`invalid BigQuery dataset id ${JSON.stringify(dataset)} in ${uri} (letters, digits and _)`);
  if (table !== undefined && !TABLE.test(table)) throw new UsageError(`invalid BigQuery table id ${JSON.stringify(table)} in ${uri}`);
  return { project, dataset, table };
}

export function bigqueryUri(ref: BigQueryRef): string {
  return `bigquery://${ref.project}${ref.dataset ? `/${ref.dataset}` : ''}${ref.dataset && ref.table ? `/${ref.table}` : ''}`;
}

export function parseBigQuerySource(uri: string, rawOptions: unknown): BigQuerySource {
  const parsed = bigqueryOptionsSchema.safeParse(rawOptions ?? {});
  if (!parsed.success) throw new UsageError(`bigquery options: ${describeZodError(parsed.error, rawOptions).replace(/\n/g, '; ')}`);
  const ref = parseBigQueryUri(uri);
  if (parsed.data.mode !== 'extract' && !parsed.data.backupDataset) {
    throw new UsageError(`bigquery options: ${parsed.data.mode} mode needs backupDataset (DATASET or PROJECT.DATASET) to ${parsed.data.mode === 'copy' ? 'copy tables into' : 'keep the snapshots in'}`);
  }
  return { engine: 'bigquery', uri: bigqueryUri(ref), options: { ...parsed.data, ref }, secrets: [] };
}

/** Resolves `dataset` or `project.dataset` against a default project. */
export function datasetRef(name: string, defaultProject: string): { project: string; dataset: string } {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? { project: defaultProject, dataset: name } : { project: name.slice(0, dot), dataset: name.slice(dot + 1) };
}

/** Whether a name passes include and exclude globs (no include list: everything). */
export function selected(name: string, include: readonly string[] | undefined, exclude: readonly string[] | undefined, qualified = name): boolean {
  const matches = (glob: string) => globMatch(glob, glob.includes('.') ? qualified : name);
  if (include && include.length > 0 && !include.some(matches)) return false;
  return !(exclude ?? []).some(matches);
}
