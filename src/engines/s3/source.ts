import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import type { StoreSettings } from '../../storage/open.ts';
import type { Source } from '../engine.ts';

/** How to reach a bucket: the same settings as an S3 repository. Shared by source and restore-target options. */
export const s3ConnectionFields = {
  endpoint: z.url().optional(),
  region: z.string().optional(),
  forcePathStyle: z.boolean().optional(),
  checksums: z.enum(['when-supported', 'when-required']).optional(),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  sessionToken: z.string().optional(),
};

export const s3OptionsSchema = z
  .object({
    ...s3ConnectionFields,
    /** copy: object contents into the repository; versions: key → versionId of a versioned (replica) bucket. */
    mode: z.enum(['copy', 'versions']).default('copy'),
    /** Globs over the key relative to the prefix: `*` stays within a `/` segment, `**` crosses them. */
    include: z.array(z.string().min(1)).default([]),
    exclude: z.array(z.string().min(1)).default([]),
    /** versions mode: when gc forgets a snapshot, delete the versions no remaining snapshot references. */
    deleteVersions: z.boolean().default(false),
    /** Objects transferred at once. */
    concurrency: z.number().int().positive().max(64).optional(),
  })
  .strict();
export type S3Options = z.infer<typeof s3OptionsSchema>;

export interface S3Location {
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
}

export interface S3Source extends Source {
  options: S3Options & { location: S3Location };
}

export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(match[1]!)) throw new UsageError(`invalid S3 URI ${JSON.stringify(uri)}: use s3://bucket[/prefix]`);
  const prefix = match[2] ?? '';
  return { bucket: match[1]!, prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/` };
}

export function parseS3Source(uri: string, rawOptions: unknown): S3Source {
  const parsed = s3OptionsSchema.safeParse(rawOptions ?? {});
  if (!parsed.success) throw new UsageError(`s3 options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const location = parseS3Uri(uri);
  const secrets = [parsed.data.secretAccessKey, parsed.data.sessionToken].filter((s): s is string => Boolean(s));
  return { engine: 's3', uri: `s3://${location.bucket}/${location.prefix}`.replace(/\/$/, ''), options: { ...parsed.data, location }, secrets };
}

export function storeSettingsOf(o: Partial<S3Options>): StoreSettings {
  return {
    url: 's3://unused',
    endpoint: o.endpoint,
    region: o.region,
    forcePathStyle: o.forcePathStyle,
    checksums: o.checksums,
    accessKeyId: o.accessKeyId,
    secretAccessKey: o.secretAccessKey,
    sessionToken: o.sessionToken,
  };
}
