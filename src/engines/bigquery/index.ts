import type { Engine } from '../engine.ts';
import { bigqueryOptionsSchema, parseBigQuerySource, type BigQuerySource } from './source.ts';

// The clients load only when a BigQuery source is really used.
const backup = () => import('./backup.ts');
const restore = () => import('./restore.ts');
const external = () => import('./external.ts');
const sources = () => import('./sources.ts');

/**
 * BigQuery: per table (and per partition, where the server reports partitions) only what changed since the parent
 * snapshot is taken; the rest is carried by reference. Rows go into the repository as Avro (extract mode), or
 * BigQuery copies or table snapshots are recorded (copy and snapshot modes). Restores are proven by row counts and
 * row digests.
 */
export const bigqueryEngine: Engine = {
  name: 'bigquery',
  optionsSchema: bigqueryOptionsSchema,
  // A run cut short by a quota is partial; the next one builds on it, so a big project completes over several runs.
  resumesPartial: true,
  parseSource: parseBigQuerySource,
  backup: async (ctx) => (await backup()).backupBigQuery({ ...ctx, source: ctx.source as BigQuerySource }),
  verify: async (ctx, manifest, level) => (await external()).verifyBigQuery(ctx, manifest, level),
  restore: async (ctx, manifest, target) => (await restore()).restoreBigQuery(ctx, manifest, target),
  release: async (ctx, manifest) => (await external()).releaseBigQuery(ctx, manifest),
  doctor: async (source) => (await import('./doctor.ts')).doctorBigQuery(source as BigQuerySource),
  listSources: async (uri, options) => (await sources()).listBigQuerySources(parseBigQuerySource(uri, options)),
};
