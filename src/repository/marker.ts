import { z } from 'zod';
import { DEFAULT_CHUNKING } from '../util/chunker.ts';

/** `bak-repository.json`: what makes a folder or bucket prefix a bak repository, and how to read it. */
/**
 * The format this bak writes, and every one it reads. 2 added `settings.compressionLevel`: a bak that reads only 1
 * (strict about the settings it knows) then says "format version 2 … upgrade bak" rather than "malformed".
 * The data itself did not change: version 1 repositories are read and written as they are.
 */
export const REPOSITORY_FORMAT_VERSION = 2;
/**
 * An encrypted repository's format (settings.encryption): a bak that reads only 1 and 2 refuses it ("upgrade bak")
 * instead of writing plaintext beside its ciphertext. Plain repositories stay at REPOSITORY_FORMAT_VERSION.
 */
export const ENCRYPTED_FORMAT_VERSION = 3;
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2, 3];
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

/** How an encrypted repository is sealed; its keys are in `keys/` (encryption/key-slots.ts), never here. */
export const markerEncryptionSchema = z
  .object({
    cipher: z.literal('aes-256-gcm'),
    blobNames: z.literal('hmac-sha256'),
    /** encryption/keys.ts keyCheck: tells this repository's master key from any other a slot might hold. */
    keyCheck: z.string().regex(/^[0-9a-f]{32}$/),
  })
  .strict();
export type MarkerEncryption = z.infer<typeof markerEncryptionSchema>;

export const markerSchema = z
  .object({
    format: z.literal('bak-repository'),
    version: z.union([z.literal(1), z.literal(2), z.literal(3)]),
    id: z.string().min(1),
    createdAt: z.iso.datetime(),
    createdBy: z.string(),
    settings: repositorySettingsSchema,
    encryption: markerEncryptionSchema.optional(),
  })
  .strict()
  .refine((m) => (m.version === ENCRYPTED_FORMAT_VERSION) === (m.encryption !== undefined), {
    message: `format version ${ENCRYPTED_FORMAT_VERSION} and "encryption" go together`,
    path: ['encryption'],
  });
export type RepositoryMarker = z.infer<typeof markerSchema>;
