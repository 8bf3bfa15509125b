import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { VerifyProblem } from '../../repository/checker.ts';
import { readIndex } from '../../repository/index-blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { mapS3Error } from '../../storage/s3.ts';
import { TaskPool } from '../../util/concurrency.ts';
import { sha256Hex } from '../../util/hash.ts';
import { IdPrefixSet } from '../../util/id-set.ts';
import type { EngineContext } from '../engine.ts';
import { OBJECTS_INDEX, s3ContextOf, s3DetailsSchema, versionEntrySchema, type S3Details } from './backup.ts';
import type { S3Context } from './objects.ts';

function contextOf(details: S3Details): S3Context {
  return s3ContextOf({
    endpoint: details.endpoint ?? undefined,
    region: details.region ?? undefined,
    forcePathStyle: details.forcePathStyle,
    checksums: (details.checksums ?? undefined) as 'when-required' | undefined,
  });
}

async function* versionsOf(ctx: EngineContext, manifest: Manifest) {
  const ref = manifest.indexes.find((i) => i.name === OBJECTS_INDEX);
  if (!ref) return;
  for await (const raw of readIndex(ctx.repo.blobs, ref)) yield versionEntrySchema.parse(raw);
}

/** HEAD of one version: its size, or undefined when the version is gone. */
async function headVersion(s3: S3Context, bucket: string, key: string, versionId?: string): Promise<{ size: number; versionId: string | undefined } | undefined> {
  try {
    const res = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return { size: res.ContentLength ?? 0, versionId: res.VersionId };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    // 404 for a missing version; 405 when the version is a delete marker.
    if (status === 404 || status === 405) return undefined;
    throw mapS3Error(err, { bucket, where: `s3://${bucket}/${key}`, endpoint: s3.endpoint, action: 'check' });
  }
}

/** Versions mode: every recorded version must still exist with its size. */
export async function verifyVersions(ctx: EngineContext, manifest: Manifest): Promise<VerifyProblem[]> {
  const details = s3DetailsSchema.parse(manifest.engineDetails);
  if (details.mode !== 'versions') return [];
  const s3 = contextOf(details);
  const problems: VerifyProblem[] = [];
  const pool = new TaskPool(ctx.concurrency * 2);
  try {
    for await (const v of versionsOf(ctx, manifest)) {
      await pool.submit(async () => {
        const found = await headVersion(s3, details.bucket, v.key, v.versionId);
        if (!found) problems.push({ where: `object ${v.key}`, problem: `version ${v.versionId} no longer exists in s3://${details.bucket}` });
        else if (found.size !== v.size) problems.push({ where: `object ${v.key}`, problem: `version ${v.versionId} has ${found.size} bytes, the snapshot recorded ${v.size}` });
      });
    }
    await pool.drain();
  } finally {
    s3.client.destroy();
  }
  return problems;
}

const versionId = (key: string, version: string) => sha256Hex(`${key}\u0000${version}`);

/**
 * Called by gc for a forgotten versions-mode snapshot whose job opted in (deleteVersions): deletes the
 * versions it recorded that no remaining snapshot of the source references, and never a current version.
 */
export async function releaseVersions(ctx: EngineContext, manifest: Manifest): Promise<void> {
  const details = s3DetailsSchema.parse(manifest.engineDetails);
  if (details.mode !== 'versions' || !details.deleteVersions) return;
  // gc holds the exclusive lock: the remaining snapshots cannot change while this runs.
  const referenced = new IdPrefixSet();
  for await (const obj of ctx.repo.listManifestKeys(manifest.sourceKey)) {
    const other = await ctx.repo.readManifest(obj.key);
    if (other.engineDetails.mode !== 'versions') continue;
    for await (const v of versionsOf(ctx, other)) referenced.add(versionId(v.key, v.versionId));
  }
  const s3 = contextOf(details);
  let deleted = 0;
  const pool = new TaskPool(ctx.concurrency);
  try {
    for await (const v of versionsOf(ctx, manifest)) {
      if (referenced.has(versionId(v.key, v.versionId))) continue;
      await pool.submit(async () => {
        const current = await headVersion(s3, details.bucket, v.key);
        if (current?.versionId === v.versionId) return;
        await s3.client.send(new DeleteObjectCommand({ Bucket: details.bucket, Key: v.key, VersionId: v.versionId })).catch((err: unknown) => {
          throw mapS3Error(err, { bucket: details.bucket, where: `s3://${details.bucket}/${v.key}`, endpoint: s3.endpoint, action: 'delete a version of' });
        });
        deleted++;
      });
    }
    await pool.drain();
  } finally {
    s3.client.destroy();
  }
  ctx.log.info(`snapshot ${manifest.id}: deleted ${deleted} version(s) no remaining snapshot references`);
}
