import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import { describeZodError } from '../../util/validation.ts';
import type { Source } from '../engine.ts';

/** How to reach Spanner: shared by source and restore-target options. */
export const spannerConnectionFields = {
  /**
   * `http://host:port`: an emulator (plain gRPC, no credentials); `https://host[:port]` or `host[:port]`: another API
   * endpoint over TLS. Unset: SPANNER_EMULATOR_HOST if the environment has it, else spanner.googleapis.com.
   */
  endpoint: z.string().min(1).optional(),
  /** A service-account key file; unset: Application Default Credentials. */
  keyFile: z.string().min(1).optional(),
};

export interface ConnectionOptions {
  endpoint?: string | undefined;
  keyFile?: string | undefined;
}

export const spannerOptionsSchema = z
  .object({
    ...spannerConnectionFields,
    /** export: the rows into the repository as Avro; native: a Spanner managed backup recorded in the manifest. */
    mode: z.enum(['export', 'native', 'dataflow']).default('export'),
    /** Table globs (`*`, `?`); an interleaved child needs its parent selected too. */
    tables: z.array(z.string().min(1)).optional(),
    excludeTables: z.array(z.string().min(1)).optional(),
    /** Read the database as of this moment (RFC 3339), within its version retention period. */
    readTimestamp: z.iso.datetime({ offset: true }).optional(),
    /** Read the database as it was this many seconds ago (exact staleness). */
    stalenessSeconds: z.number().positive().optional(),
    /** Tables read at once, and read streams in all (`--jobs`). */
    jobs: z.number().int().positive().max(64).default(4),
    /** Read a large table in partitions (PartitionRead) on several streams where the server has them. */
    partitionedReads: z.boolean().default(true),
    /** Uncompressed size at which a table's Avro file is closed and the next one begun. */
    avroFileBytes: z.number().int().min(64 * 1024).default(64 * 1024 * 1024),
    /** native mode: how long Spanner keeps the backup (seconds; at most a year). */
    expireAfterSeconds: z.number().int().positive().max(366 * 86_400).default(30 * 86_400),
    /** dataflow mode: where and how Google's export template runs. */
    dataflow: z
      .object({
        /** gs:// folder the job writes into (its export lands in <outputDir>/<instance>-<database>-<job id>/). */
        outputDir: z.string().min(1),
        region: z.string().min(1).default('us-central1'),
        /** Default gs://dataflow-templates-<region>/latest/Cloud_Spanner_to_GCS_Avro. */
        templatePath: z.string().min(1).optional(),
        serviceAccount: z.string().min(1).optional(),
        tempLocation: z.string().min(1).optional(),
        /** Default https://dataflow.googleapis.com; http://… is a stand-in without credentials (tests). */
        apiEndpoint: z.string().min(1).optional(),
        pollSeconds: z.number().positive().default(30),
        timeoutSeconds: z.number().positive().default(24 * 3600),
      })
      .strict()
      .optional(),
    /** Adopt this folder (a path or gs://…) written by Google's Dataflow export as the snapshot, instead of reading the database. */
    fromExport: z.string().min(1).optional(),
    allowPartial: z.boolean().default(false),
  })
  .strict();
export type SpannerOptions = z.infer<typeof spannerOptionsSchema>;

export interface DatabaseRef {
  project: string;
  instance: string;
  database: string;
}

export interface SpannerSource extends Source {
  options: SpannerOptions & { ref: DatabaseRef };
}

const ID = /^[a-z][a-z0-9_-]*[a-z0-9]$/;
const PROJECT = /^[a-z][a-z0-9.:-]*[a-z0-9]$/;

/** `spanner://projects/P/instances/I/databases/D`. */
export function parseSpannerUri(uri: string): DatabaseRef {
  const match = /^spanner:\/\/projects\/([^/]+)\/instances\/([^/]+)\/databases\/([^/]+)\/?$/.exec(uri);
  if (!match) throw new UsageError(`invalid Spanner URI ${JSON.stringify(uri)}: use spanner://projects/PROJECT/instances/INSTANCE/databases/DATABASE`);
  const [, project, instance, database] = match as unknown as [string, string, string, string];
  if (!PROJECT.test(project)) throw new UsageError(`invalid Spanner project id ${JSON.stringify(project)} in ${uri}`);
  if (!ID.test(instance)) throw new UsageError(`invalid Spanner instance id ${JSON.stringify(instance)} in ${uri}`);
  if (!ID.test(database) || database.length > 30) throw new UsageError(`invalid Spanner database id ${JSON.stringify(database)} in ${uri} (2-30 characters: a-z, 0-9, _ and -, starting with a letter)`);
  return { project, instance, database };
}

export function spannerUri(ref: DatabaseRef): string {
  return `spanner://projects/${ref.project}/instances/${ref.instance}/databases/${ref.database}`;
}

export function databasePath(ref: DatabaseRef): string {
  return `projects/${ref.project}/instances/${ref.instance}/databases/${ref.database}`;
}

export function instancePath(ref: DatabaseRef): string {
  return `projects/${ref.project}/instances/${ref.instance}`;
}

export function parseSpannerSource(uri: string, rawOptions: unknown): SpannerSource {
  const parsed = spannerOptionsSchema.safeParse(rawOptions ?? {});
  if (!parsed.success) throw new UsageError(`spanner options: ${describeZodError(parsed.error, rawOptions).replace(/\n/g, '; ')}`);
  if (parsed.data.readTimestamp !== undefined && parsed.data.stalenessSeconds !== undefined) {
    throw new UsageError('spanner options: give readTimestamp or stalenessSeconds, not both');
  }
  const ref = parseSpannerUri(uri);
  return { engine: 'spanner', uri: spannerUri(ref), options: { ...parsed.data, ref }, secrets: [] };
}
