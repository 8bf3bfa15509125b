import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { BakError, UsageError } from '../../errors.ts';
import { readIndex } from '../../repository/index-blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { writeBlobsToFile } from '../../repository/materialize.ts';
import { TaskPool } from '../../util/concurrency.ts';
import { PRIVATE_DIR_MODE } from '../../util/private-files.ts';
import type { EngineContext } from '../engine.ts';
import { copyEntrySchema, OBJECTS_INDEX, s3DetailsSchema } from './backup.ts';

/** Keys named in a failure message; the rest are counted. */
const NAMED_MAX = 20;

/**
 * `bak export` of a copy-mode snapshot: every object as a file at its key (relative to the snapshot's prefix), as
 * `rclone copy` lays a bucket out on disk. Headers, metadata and tags are not files: they stay in the snapshot.
 * A key that is no file name (empty, `.` or `..` segments, a trailing `/`) or that collides with another (`a` and
 * `a/b`) is not written; every other object is, and then the export fails naming what it left out, so nothing is
 * dropped unsaid. A directory marker (a zero-byte key ending in `/`) becomes its folder.
 */
export async function exportS3(ctx: EngineContext, manifest: Manifest, directory: string): Promise<{ files: number; bytes: number }> {
  const details = s3DetailsSchema.parse(manifest.engineDetails);
  if (details.mode !== 'copy') {
    throw new UsageError(`snapshot ${manifest.id} is a versions-mode snapshot: its objects' contents are versions in the bucket, not in the repository`, {
      hint: `restore it into a bucket instead: bak restore ${manifest.id} --to s3://BUCKET`,
    });
  }
  const ref = manifest.indexes.find((i) => i.name === OBJECTS_INDEX);
  if (!ref) throw new BakError(`snapshot ${manifest.id} has no object index`);
  const root = path.resolve(directory);
  const pool = new TaskPool(ctx.concurrency);
  const left: Array<{ key: string; why: string }> = [];
  let files = 0;
  let bytes = 0;
  for await (const raw of readIndex(ctx.repo.blobs, ref)) {
    const entry = copyEntrySchema.parse(raw);
    const relative = entry.key.slice(details.prefix.length);
    const segments = relative.split('/');
    if (relative.endsWith('/') && entry.size === 0 && segments.slice(0, -1).every(safeSegment)) {
      await mkdir(path.join(root, relative), { recursive: true, mode: PRIVATE_DIR_MODE });
      ctx.progress?.advance(1, 0);
      continue;
    }
    if (!segments.every(safeSegment)) {
      left.push({ key: entry.key, why: 'not a file name (an empty, "." or ".." segment, or a trailing "/")' });
      continue;
    }
    const file = path.join(root, ...segments);
    await pool.submit(async () => {
      try {
        await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
        await writeBlobsToFile(ctx.repo.blobs, entry.blobs, file, { concurrency: 1, exclusive: true });
        files++;
        bytes += entry.size;
        ctx.progress?.advance(1, 0);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
        left.push({ key: entry.key, why: 'collides with another key (one names a file, the other a folder in its place)' });
      }
    });
  }
  await pool.drain();
  if (left.length > 0) {
    const named = left.slice(0, NAMED_MAX).map((l) => `${l.key}: ${l.why}`);
    throw new BakError(
      `exported ${files} objects to ${root}, but ${left.length} could not be files:\n  ${named.join('\n  ')}${left.length > NAMED_MAX ? `\n  … and ${left.length - NAMED_MAX} more` : ''}`,
      1,
      { hint: `those are still in the snapshot: bak restore ${manifest.id} --to s3://BUCKET --include KEY restores them into a bucket` },
    );
  }
  return { files, bytes };
}

function safeSegment(segment: string): boolean {
  return segment !== '' && segment !== '.' && segment !== '..';
}
