import { z } from 'zod';
import { SNAPSHOT_ID } from '../util/ids.ts';
import { blobRefSchema } from './blobs.ts';
import { indexRefSchema } from './index-blobs.ts';

export const MANIFEST_FORMAT_VERSION = 1;

export const snapshotStatusSchema = z.enum(['complete', 'partial', 'failed']);
export type SnapshotStatus = z.infer<typeof snapshotStatusSchema>;

/** One thing a snapshot holds: a dump file, a table, a DDL script … */
export const manifestItemSchema = z
  .object({
    name: z.string().min(1),
    kind: z.string().min(1),
    bytes: z.number().int().nonnegative(),
    rows: z.number().int().nonnegative().optional(),
    // blobs.ts contentChecksum: the content's SHA-256, or for content of several blobs the SHA-256 of their names.
    checksum: z.string().regex(/^sha256(-blobs)?:[0-9a-f]{64}$/, 'a checksum is sha256:<64 hex> or sha256-blobs:<64 hex>'),
    blobs: z.array(blobRefSchema),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type ManifestItem = z.infer<typeof manifestItemSchema>;

export const manifestSchema = z
  .object({
    formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
    id: z.string().regex(SNAPSHOT_ID, 'not a snapshot id'),
    engine: z.string().min(1),
    /** Always redacted: no password, key or token. */
    source: z.string().min(1),
    sourceKey: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
    job: z.string().nullable(),
    host: z.string(),
    bakVersion: z.string(),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime(),
    status: snapshotStatusSchema,
    parent: z.string().nullable(),
    tags: z.array(z.string()),
    items: z.array(manifestItemSchema),
    indexes: z.array(indexRefSchema),
    failures: z.array(z.object({ item: z.string(), error: z.string() }).strict()),
    engineDetails: z.record(z.string(), z.unknown()),
    /** True when the snapshot references data kept outside the repository, which the engine's release must free. */
    externalData: z.boolean(),
    totals: z
      .object({
        items: z.number().int().nonnegative(),
        bytes: z.number().int().nonnegative(),
        storedBytes: z.number().int().nonnegative(),
        newBytes: z.number().int().nonnegative(),
        rows: z.number().int().nonnegative().optional(),
      })
      .strict(),
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;
