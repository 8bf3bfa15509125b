import { z } from 'zod';
import { BakError } from '../../errors.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { describeZodError } from '../../util/validation.ts';
import type { BackedUpTable } from './backup.ts';
import type { DatabaseSchema } from './schema.ts';
import { SPANNER_DIGEST_ALGORITHM } from './table-digest.ts';

const detailsSchema = z
  .object({
    schema: z.object({ dialect: z.literal('GOOGLE_STANDARD_SQL'), tables: z.array(z.object({ name: z.string() }).loose()), views: z.array(z.object({ name: z.string() }).loose()) }).loose(),
    tables: z.array(z.object({ name: z.string(), rows: z.number(), digest: z.string(), files: z.array(z.string()), digestColumns: z.array(z.string()).optional(), partitions: z.number().int().positive().optional() }).strict()),
    digestAlgorithm: z.string(),
  })
  .loose();

export interface SpannerSnapshotContent {
  schema: DatabaseSchema;
  tables: BackedUpTable[];
  digestAlgorithm: string;
}

/** What an export-mode (or adopted) snapshot holds, read back from its manifest for restore and `bak export`. */
export function snapshotContent(manifest: Manifest): SpannerSnapshotContent {
  const parsed = detailsSchema.safeParse(manifest.engineDetails);
  if (!parsed.success) throw new BakError(`snapshot ${manifest.id} has no readable Spanner table list: ${describeZodError(parsed.error, manifest.engineDetails).replace(/\n/g, '; ')}`, 2);
  if (parsed.data.digestAlgorithm !== SPANNER_DIGEST_ALGORITHM) {
    throw new BakError(`snapshot ${manifest.id} records digests of kind ${parsed.data.digestAlgorithm}, which this bak cannot check (it knows ${SPANNER_DIGEST_ALGORITHM}): a newer bak wrote it`, 2);
  }
  return parsed.data as unknown as SpannerSnapshotContent;
}
