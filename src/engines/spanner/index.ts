import type { Engine } from '../engine.ts';
import { parseSpannerSource, spannerOptionsSchema, type SpannerSource } from './source.ts';

// The gRPC clients and Avro load only when a Spanner source is really used.
const backup = () => import('./backup.ts');
const restore = () => import('./restore.ts');
const native = () => import('./native.ts');
const exporter = () => import('./export.ts');

/**
 * Cloud Spanner: every table read at one timestamp into Avro files in Google's export format (export mode), or a
 * Spanner managed backup recorded in the manifest (native mode); restores proven by row counts and cell digests.
 */
export const spannerEngine: Engine = {
  name: 'spanner',
  optionsSchema: spannerOptionsSchema,
  parseSource: parseSpannerSource,
  backup: async (ctx) => (await backup()).backupSpanner({ ...ctx, source: ctx.source as SpannerSource }),
  // Export mode keeps everything in the repository (the checker covers it); native mode's backup must still be READY.
  verify: async (_ctx, manifest) => (await native()).verifyNativeSnapshot(manifest),
  restore: async (ctx, manifest, target) => (await restore()).restoreSpanner(ctx, manifest, target),
  release: async (_ctx, manifest) => (await native()).releaseNativeSnapshot(manifest),
  doctor: async (source) => (await import('./doctor.ts')).doctorSpanner(source as SpannerSource),
  exportTo: async (ctx, manifest, dir) => (await exporter()).exportDataflowLayout(ctx, manifest, dir),
};
