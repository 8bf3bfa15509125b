import { z } from 'zod';
import { BakError } from '../../errors.ts';
import { blobRefSchema } from '../../repository/blobs.ts';
import { readCheckedIndex } from '../../repository/index-blobs.ts';
import type { BlobStore } from '../../repository/blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { SortedCursor } from '../../util/sorted-cursor.ts';
import { describeZodError } from '../../util/validation.ts';

/**
 * What a BigQuery snapshot records, one index entry per table (index `tables`) and per dataset (index `datasets`),
 * in (dataset, table) order so the next backup walks its parent's entries beside its own listing.
 */

/** One Avro container file of a unit: a slice of its table entry's `blobs`. */
export const unitFileSchema = z.object({ rows: z.number().int().nonnegative(), bytes: z.number().int().nonnegative(), checksum: z.string(), blobStart: z.number().int().nonnegative(), blobCount: z.number().int().nonnegative() }).strict();
export type UnitFile = z.infer<typeof unitFileSchema>;

/** A table's data, whole (partition null) or one partition: read, copied or snapshotted by one snapshot, carried by later ones. */
export const unitSchema = z
  .object({
    partition: z.string().nullable(),
    rows: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    /** The change key it was taken at: the partition's last_modified_time, or the table's lastModifiedTime/numRows/numBytes. */
    modified: z.string(),
    /** The snapshot that read (or copied) it. */
    snapshot: z.string(),
    readAt: z.string().nullable(),
    /** extract mode: its files. */
    files: z.array(unitFileSchema).optional(),
    /** copy and snapshot modes: the backup table, PROJECT.DATASET.TABLE. */
    backupTable: z.string().optional(),
    /** The data changed since this unit was taken, and taking it again was deferred (a quota ran out): never carried. */
    stale: z.boolean().optional(),
  })
  .strict();
export type Unit = z.infer<typeof unitSchema>;


export const tableEntrySchema = z
  .object({
    key: z.string(),
    dataset: z.string(),
    table: z.string(),
    kind: z.string(),
    /** tables.get as it was, less volatile fields: schema, partitioning, clustering, labels, expiration, definitions … */
    resource: z.record(z.string(), z.unknown()),
    /** The table-level change key: lastModifiedTime, numRows, numBytes as tables.get gave them. */
    change: z.string(),
    /** How changes were told: by INFORMATION_SCHEMA.PARTITIONS (per partition), or by the table's own metadata. */
    changeBy: z.enum(['partitions', 'table', 'definition']),
    /** Rows the table's streaming buffer held (estimated): copy and snapshot jobs do not see them. */
    streamingRows: z.number().int().nonnegative(),
    units: z.array(unitSchema),
    /** Some units were left for the next run (a quota ran out): those are the parent's, marked stale, or missing. */
    deferred: z.boolean().optional(),
    /** extract mode: every unit's files' blobs, in unit order (the repository's checker and gc read this field). */
    blobs: z.array(blobRefSchema).optional(),
    checksum: z.string().optional(),
  })
  .strict();
export type TableEntry = z.infer<typeof tableEntrySchema>;

export const datasetEntrySchema = z
  .object({
    key: z.string(),
    /** datasets.get as it was: labels, default expirations, access entries, location, description … */
    resource: z.record(z.string(), z.unknown()),
    routines: z.array(z.record(z.string(), z.unknown())),
  })
  .strict();
export type DatasetEntry = z.infer<typeof datasetEntrySchema>;

export const bigqueryDetailsSchema = z
  .object({
    mode: z.enum(['extract', 'copy', 'snapshot']),
    project: z.string(),
    datasets: z.number().int().nonnegative(),
    tables: z.number().int().nonnegative(),
    /** Units read (or copied) by this snapshot, and carried from its parent. */
    unitsTaken: z.number().int().nonnegative(),
    unitsCarried: z.number().int().nonnegative(),
    deferred: z.number().int().nonnegative(),
    streamingRows: z.number().int().nonnegative(),
    /** REST and Storage API calls made, by kind. */
    calls: z.record(z.string(), z.number()),
    /** extract mode: which API read the rows (the restore check reads the restored tables the same way). */
    reader: z.enum(['storage', 'tabledata']).optional(),
    /** How to reach BigQuery again for verify and release: endpoints, key file path, location (no secrets). */
    connection: z.record(z.string(), z.string()).optional(),
  })
  .loose();
export type BigQueryDetails = z.infer<typeof bigqueryDetailsSchema>;

export function bigqueryDetails(manifest: Manifest): BigQueryDetails {
  const parsed = bigqueryDetailsSchema.safeParse(manifest.engineDetails);
  if (!parsed.success) throw new BakError(`snapshot ${manifest.id}: not a BigQuery snapshot bak can read (${describeZodError(parsed.error, manifest.engineDetails).replace(/\n/g, '; ')})`);
  return parsed.data;
}

export const tableEntries = (blobs: BlobStore, manifest: Manifest) => readCheckedIndex(blobs, manifest, 'tables', tableEntrySchema, 'BigQuery');
export const datasetEntries = (blobs: BlobStore, manifest: Manifest) => readCheckedIndex(blobs, manifest, 'datasets', datasetEntrySchema, 'BigQuery');

/** The parent's table entries, looked up in (dataset, table) order beside the backup's own sorted listing. */
export function parentEntries(entries: AsyncIterable<TableEntry> | undefined): SortedCursor<TableEntry, { dataset: string; table: string }> {
  return new SortedCursor(entries, (e, k) => compareKey(e.dataset, e.table, k.dataset, k.table));
}

export function compareKey(d1: string, t1: string, d2: string, t2: string): number {
  if (d1 !== d2) return d1 < d2 ? -1 : 1;
  return t1 < t2 ? -1 : t1 > t2 ? 1 : 0;
}
