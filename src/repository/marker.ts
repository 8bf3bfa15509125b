import { z } from 'zod';
import { DEFAULT_CHUNKING } from '../util/chunker.ts';

/** `bak-repository.json`: what makes a folder or bucket prefix a bak repository, and how to read it. */
/**
 * The format this bak writes, and every one it reads. 2 added `settings.compressionLevel`: a bak that reads only 1
 * (strict about the settings it knows) then says "format version 2 … upgrade bak" rather than "malformed".
 * The data itself did not change: version 1 repositories are read and written as they are.
 */
export const REPOSITORY_FORMAT_VERSION = 2;
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];
export const MARKER_KEY = 'bak-repository.json';

export const repositorySettingsSchema = z
  .object({
    compression: z.enum(['zstd', 'gzip', 'none']),
    /** The compression level; absent: the method's default (COMPRESSION_LEVELS). Readers never need it. */
    compressionLevel: z.number().int().min(1).max(19).optional(),
    chunking: z
      .object({ min: z.number().int().positive(), avg: z.number().int().positive(), max: z.number().int().positive() })
      .strict(),
  })
  .strict();
export type RepositorySettings = z.infer<typeof repositorySettingsSchema>;

export const DEFAULT_REPOSITORY_SETTINGS: RepositorySettings = { compression: 'zstd', chunking: DEFAULT_CHUNKING };

// Read loosely first, so that a newer format is reported as "newer", not as a schema error.
export const markerHeaderSchema = z.object({ format: z.literal('bak-repository'), version: z.number().int() }).loose();

export const markerSchema = z
  .object({
    format: z.literal('bak-repository'),
    version: z.union([z.literal(1), z.literal(2)]),
    id: z.string().min(1),
    createdAt: z.iso.datetime(),
    createdBy: z.string(),
    settings: repositorySettingsSchema,
  })
  .strict();
export type RepositoryMarker = z.infer<typeof markerSchema>;
