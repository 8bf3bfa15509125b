import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { PRIVATE_DIR_MODE } from '../../util/private-files.ts';
import * as path from 'node:path';
import { z } from 'zod';
import { BakError } from '../../errors.ts';
import { blobRefSchema } from '../../repository/blobs.ts';
import { readCheckedIndex } from '../../repository/index-blobs.ts';
import type { BlobStore } from '../../repository/blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { mapOrdered } from '../../util/concurrency.ts';
import type { ProgressSink } from '../../util/progress.ts';
import { SortedCursor } from '../../util/sorted-cursor.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { jvmOptionsOf, runDatomic } from './cli.ts';
import { datomicBinOf, defaultStaging, type DatomicSource } from './source.ts';

/** One segment in a snapshot's `segments` index: its path in the backup folder and where its bytes are. */
export const segmentEntrySchema = z.object({ key: z.string().regex(/^values\/[^/]+\/[^/]+$/), size: z.number().int().nonnegative(), checksum: z.string(), blobs: z.array(blobRefSchema) }).strict();
export type SegmentEntry = z.infer<typeof segmentEntrySchema>;

export const datomicDetailsSchema = z
  .object({
    t: z.number().int().nonnegative(),
    owner: z.string(),
    segments: z.number().int().nonnegative(),
    newSegments: z.number().int().nonnegative(),
    staging: z.string(),
    /** When the staging folder was started (a re-base starts it anew), for `freshEveryDays`. */
    stagingSince: z.string().optional(),
    /** The bin/datomic that took it: restores and verify fall back to it. */
    bin: z.string().optional(),
    /** What backup-db said it did: "Copied N segments, skipped M segments". */
    tool: z.string(),
  })
  .loose();
export type DatomicDetails = z.infer<typeof datomicDetailsSchema>;

export function datomicDetails(manifest: Manifest): DatomicDetails {
  const parsed = datomicDetailsSchema.safeParse(manifest.engineDetails);
  if (!parsed.success) throw new BakError(`snapshot ${manifest.id} is not a Datomic snapshot bak can read`);
  return parsed.data;
}

/** A snapshot's segment entries, streamed in key order. */
export function segmentEntries(blobs: BlobStore, manifest: Manifest): AsyncGenerator<SegmentEntry> {
  return readCheckedIndex(blobs, manifest, 'segments', segmentEntrySchema, 'Datomic');
}

/**
 * The segment files of a backup folder, in key order (`values/xx/id`), names only: never a stat or a read. Each is
 * told to `progress` as found (its size unknown), and the listing's end too.
 */
async function* segmentFiles(staging: string, progress?: ProgressSink): AsyncGenerator<{ key: string; file: string }> {
  const values = path.join(staging, 'values');
  const dirs = (await readdir(values).catch(() => [] as string[])).sort();
  for (const dir of dirs) {
    for (const name of (await readdir(path.join(values, dir))).sort()) {
      progress?.expect(1, 0);
      yield { key: `values/${dir}/${name}`, file: path.join(values, dir, name) };
    }
  }
  progress?.totalsKnown();
}

/**
 * Runs backup-db into the staging folder (kept between runs, so backup-db copies only new segments), then stores
 * only the segments the parent snapshot does not list: the parent's index is read beside the staging folder's
 * (sorted) names, and a segment it has is carried by reference, unread (segments are immutable). Then the owner and
 * the new root. Nothing in the repository or a bucket is listed.
 */
export async function backupDatomic(ctx: BackupContext & { source: DatomicSource }): Promise<BackupResult> {
  const o = ctx.source.options;
  const staging = path.resolve(o.staging ?? defaultStaging(ctx.writer.sourceKey));
  const parentDetails = ctx.parent ? datomicDetails(ctx.parent) : undefined;
  const sameStaging = parentDetails?.staging === staging;
  const since = sameStaging ? parentDetails?.stagingSince : undefined;
  const due = o.freshEveryDays !== undefined && since !== undefined && Date.now() - Date.parse(since) > o.freshEveryDays * 86_400_000;
  let stagingSince = since ?? new Date().toISOString();
  if (o.fresh || due) {
    ctx.log.info(`${o.fresh ? '--fresh' : `the staging folder is older than ${o.freshEveryDays} days`}: starting a new staging folder ${staging}`);
    await rm(staging, { recursive: true, force: true });
    stagingSince = new Date().toISOString();
  }
  await mkdir(staging, { recursive: true, mode: PRIVATE_DIR_MODE });
  const bin = datomicBinOf(o);
  let lastLog = Date.now();
  let tool = '';
  ctx.progress?.activity(`${ctx.source.uri}: backup-db`);
  const run = await runDatomic(bin, jvmOptionsOf(o), 'backup-db', [o.databaseUri, `file:${staging}`], {
    secrets: ctx.source.secrets,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onLine: (line) => {
      if (!/^Copied \d+ segments/.test(line)) return;
      tool = line.trim();
      ctx.progress?.activity(`${ctx.source.uri}: backup-db: ${tool}`);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        ctx.log.info(`backup-db: ${tool}`);
      }
    },
  });
  if (!/:succeeded/.test(run.output)) throw new BakError(`bin/datomic backup-db did not report :succeeded:\n${run.output.split('\n').slice(-10).join('\n')}`);
  const owner = (await readFile(path.join(staging, 'owner'), 'utf8')).trim();
  const ts = (await readdir(path.join(staging, 'roots'))).filter((n) => /^\d+$/.test(n)).map(Number);
  if (ts.length === 0) throw new BakError(`backup-db wrote no root into ${staging}`);
  const t = Math.max(...ts);
  ctx.log.info(`backup-db: ${tool || 'done'}; storing the segments the parent lacks, and the root of t ${t}`);
  ctx.progress?.activity(`${ctx.source.uri}: storing segments`);
  ctx.progress?.expect(2, 0); // the owner and the root

  const parent = ctx.parent ? segmentEntries(ctx.repo.blobs, ctx.parent) : undefined;
  const fromParent = new SortedCursor(parent, (e: SegmentEntry, key: string) => (e.key < key ? -1 : e.key > key ? 1 : 0));
  const index = ctx.writer.openIndex('segments');
  let segments = 0;
  let newSegments = 0;
  let bytes = 0;
  const entries = mapOrdered(segmentFiles(staging, ctx.progress), o.jobs, async ({ key, file }): Promise<SegmentEntry> => {
    const [had] = await fromParent.take(key);
    if (had) {
      ctx.progress?.advance(1, had.size); // carried from the parent, unread: done as well
      return had;
    }
    const data = await readFile(file);
    const stored = await ctx.repo.blobs.writeBuffer(data);
    ctx.progress?.advance(1, stored.size);
    newSegments++;
    return { key, size: stored.size, checksum: stored.checksum, blobs: stored.blobs };
  });
  for await (const entry of entries) {
    segments++;
    bytes += entry.size;
    await index.add(entry);
  }
  await ctx.writer.closeIndex(index);
  const ownerItem = await ctx.writer.addItem({ name: 'owner', kind: 'owner' }, [Buffer.from(owner)]);
  ctx.progress?.advance(1, ownerItem.bytes);
  const rootItem = await ctx.writer.addItem({ name: `roots/${t}`, kind: 'root' }, [await readFile(path.join(staging, 'roots', String(t)))]);
  ctx.progress?.advance(1, rootItem.bytes);
  ctx.log.info(`${segments} segments, ${newSegments} new (the rest carried from the parent)`);
  const details: DatomicDetails = { t, owner, segments, newSegments, staging, stagingSince, bin, tool };
  return { engineDetails: details, totals: { items: segments, bytes } };
}
