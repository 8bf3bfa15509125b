import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { PRIVATE_DIR_MODE } from '../../util/private-files.ts';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { BakError, MismatchError, UsageError } from '../../errors.ts';
import { writeBlobsToFile } from '../../repository/materialize.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { TaskPool } from '../../util/concurrency.ts';
import { describeZodError } from '../../util/validation.ts';
import type { EngineContext, RestoreReport, RestoreTarget } from '../engine.ts';
import { datomicDetails, segmentEntries } from './backup.ts';
import { jvmOptionsOf, runDatomic } from './cli.ts';
import { datomicBinOf, datomicToolFields, parseDatomicUri } from './source.ts';

export const datomicRestoreOptionsSchema = z
  .object({
    ...datomicToolFields,
    /** A local folder the backup folder is materialised in and kept: a later restore downloads only what it lacks. */
    cache: z.string().min(1).optional(),
    dryRun: z.boolean().default(false),
    /** `bak verify --level restore`: run verify-backup (every segment read) on the materialised folder instead. */
    scratch: z.boolean().default(false),
    /** Segments downloaded at once. */
    jobs: z.number().int().positive().max(256).default(16),
  })
  .strict();

/**
 * Writes a snapshot as the backup folder Datomic reads: owner, roots/<t>, values/xx/<id>. A segment already in the
 * folder with its size is left as it is (a cache kept between restores); the rest are downloaded `jobs` at a time,
 * each blob checked against its hash as it is read.
 */
export async function materialize(ctx: EngineContext, manifest: Manifest, dir: string, jobs: number): Promise<{ segments: number; downloaded: number; bytes: number }> {
  ctx.progress?.activity(`${manifest.id}: backup folder ${dir}`);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  for (const item of manifest.items) {
    const file = path.join(dir, item.name);
    await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
    await writeBlobsToFile(ctx.repo.blobs, item.blobs, file, { concurrency: 1 });
    ctx.progress?.advance(1, 0);
  }
  const pool = new TaskPool(jobs);
  const made = new Set<string>();
  let segments = 0;
  let downloaded = 0;
  let bytes = 0;
  for await (const entry of segmentEntries(ctx.repo.blobs, manifest)) {
    segments++;
    const file = path.join(dir, entry.key);
    const have = await stat(file).then((s) => s.size, () => -1);
    if (have === entry.size) {
      ctx.progress?.advance(1, entry.size); // in the cache already: nothing read from the repository
      continue;
    }
    const folder = path.dirname(file);
    if (!made.has(folder)) {
      await mkdir(folder, { recursive: true, mode: PRIVATE_DIR_MODE });
      made.add(folder);
    }
    await pool.submit(async () => {
      // Written whole under a temporary name, then renamed: a restore cut short leaves no half segment in the cache.
      const part = `${file}.bak-part`;
      await writeBlobsToFile(ctx.repo.blobs, entry.blobs, part, { concurrency: 1 });
      await rename(part, file);
      ctx.progress?.advance(1, 0);
      downloaded++;
      bytes += entry.size;
    });
  }
  await pool.drain();
  return { segments, downloaded, bytes };
}

/** `bak export`: the backup folder bin/datomic restore-db takes without bak. */
export async function exportDatomic(ctx: EngineContext, manifest: Manifest, dir: string): Promise<{ files: number; bytes: number }> {
  const done = await materialize(ctx, manifest, dir, ctx.concurrency * 4);
  return { files: done.segments + manifest.items.length, bytes: done.bytes };
}

/**
 * Restores a snapshot: its backup folder materialised locally (in `cache`, or a temporary folder removed after),
 * then bin/datomic restore-db at the snapshot's t into the target database. With `scratch` (verify --level restore)
 * verify-backup reads every segment instead; missing or unreadable segments exit 3.
 */
export async function restoreDatomic(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport> {
  const parsed = datomicRestoreOptionsSchema.safeParse(target.options);
  if (!parsed.success) throw new UsageError(`datomic restore options: ${describeZodError(parsed.error, target.options).replace(/\n/g, '; ')}`);
  const o = parsed.data;
  const details = datomicDetails(manifest);
  const targetUri = o.scratch ? undefined : parseDatomicUri(target.uri);
  const bin = datomicBinOf({ datomicBin: o.datomicBin ?? (process.env.DATOMIC_HOME ? undefined : details.bin) });
  const plan = { source: manifest.source, target: o.scratch ? 'verify-backup' : target.uri, t: details.t, segments: details.segments, action: o.scratch ? 'verify' : 'restore-db' };
  if (o.dryRun) return { items: details.segments, bytes: 0, details: { dryRun: true, plans: [plan] } };
  const dir = o.cache ? path.resolve(o.cache) : await mkdtemp(path.join(tmpdir(), 'bak-datomic-'));
  try {
    const got = await materialize(ctx, manifest, dir, o.jobs);
    ctx.log.info(`backup folder ${dir}: ${got.segments} segments, ${got.downloaded} downloaded`);
    const secrets = targetUri ? [...targetUri.matchAll(/[?&]password=([^&#]+)/gi)].map((m) => m[1]!) : [];
    ctx.progress?.activity(`${manifest.id}: ${o.scratch ? 'verify-backup' : 'restore-db'} at t ${details.t}`);
    if (o.scratch) {
      const run = await runDatomic(bin, jvmOptionsOf({ jvmOptions: o.jvmOptions }), 'verify-backup', [`file:${dir}`, 'true', String(details.t)], { secrets, okCodes: [1] });
      if (run.code === 1) throw new MismatchError(`verify-backup found problems in snapshot ${manifest.id} at t ${details.t}:\n${run.output.split('\n').slice(-12).join('\n')}`);
      return { items: got.segments, bytes: got.bytes, details: { plans: [plan], verify: run.output } };
    }
    const run = await runDatomic(bin, jvmOptionsOf({ jvmOptions: o.jvmOptions }), 'restore-db', [`file:${dir}`, targetUri!, String(details.t)], { secrets });
    if (!/:succeeded/.test(run.output)) throw new BakError(`bin/datomic restore-db did not report :succeeded:\n${run.output}`);
    return { items: got.segments, bytes: got.bytes, details: { plans: [plan], downloaded: got.downloaded, tool: run.output.split('\n').slice(-3).join('\n') } };
  } finally {
    if (!o.cache) await rm(dir, { recursive: true, force: true });
  }
}

