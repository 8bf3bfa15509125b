import type { Engine } from '../engine.ts';
import { backupS3 } from './backup.ts';
import { restoreS3 } from './restore.ts';
import { parseS3Source, s3OptionsSchema, type S3Source } from './source.ts';
import { releaseVersions, verifyVersions } from './versions.ts';

/** S3 buckets: object copies in the repository (copy mode) or a key → versionId index of a versioned bucket (versions mode). */
export const s3Engine: Engine = {
  name: 's3',
  optionsSchema: s3OptionsSchema,
  parseSource: parseS3Source,
  backup: (ctx) => backupS3({ ...ctx, source: ctx.source as S3Source }),
  verify: (ctx, manifest) => verifyVersions(ctx, manifest),
  restore: restoreS3,
  release: releaseVersions,
};
