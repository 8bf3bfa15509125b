import type { Engine } from '../engine.ts';
import { parseS3Source, s3OptionsSchema, type S3Source } from './source.ts';

// The AWS SDK behind these loads only when an S3 source is really used, not for every command and engine.
const backup = () => import('./backup.ts');
const restore = () => import('./restore.ts');
const versions = () => import('./versions.ts');

/** S3 buckets: object copies in the repository (copy mode) or a key → versionId index of a versioned bucket (versions mode). */
export const s3Engine: Engine = {
  name: 's3',
  optionsSchema: s3OptionsSchema,
  parseSource: parseS3Source,
  // The clients and the listing's first page need no repository key.
  startBackup: async (source) => new (await backup()).S3BackupStart(source as S3Source),
  backup: async (ctx) => (await backup()).backupS3({ ...ctx, source: ctx.source as S3Source }),
  verify: async (ctx, manifest) => (await versions()).verifyVersions(ctx, manifest),
  restore: async (ctx, manifest, target) => (await restore()).restoreS3(ctx, manifest, target),
  release: async (ctx, manifest) => (await versions()).releaseVersions(ctx, manifest),
  exportTo: async (ctx, manifest, dir) => (await import('./export.ts')).exportS3(ctx, manifest, dir),
  doctor: async (source) => (await import('./doctor.ts')).doctorS3(source as S3Source),
};
