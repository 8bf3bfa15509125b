import { CopyObjectCommand, DeleteObjectsCommand, PutObjectCommand, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { buffer } from 'node:stream/consumers';
import { z } from 'zod';
import { BakError, UsageError } from '../../errors.ts';
import { readIndex } from '../../repository/index-blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { mapS3Error } from '../../storage/s3.ts';
import { TaskPool } from '../../util/concurrency.ts';
import { withRetry } from '../../util/retry.ts';
import type { EngineContext, RestoreReport, RestoreTarget } from '../engine.ts';
import { copyEntrySchema, OBJECTS_INDEX, s3ContextOf, s3DetailsSchema, versionEntrySchema, type CopyEntry, type VersionEntry } from './backup.ts';
import { compareKeys } from '../../util/key-order.ts';
import { keyFilter } from './keys.ts';
import { encodeTags, getObject, headObjectMetadata, listObjects, sameMetadata, type ListedObject, type S3Context } from './objects.ts';
import { parseS3Uri, s3ConnectionFields } from './source.ts';

export const s3RestoreOptionsSchema = z
  .object({
    deleteExtra: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    include: z.array(z.string()).default([]),
    exclude: z.array(z.string()).default([]),
    ...s3ConnectionFields,
    concurrency: z.number().int().positive().max(64).default(8),
    /** Accepted for symmetry with the CLI's generic flags; S3 restores always compare. */
    verify: z.boolean().optional(),
    noOwner: z.boolean().optional(),
  })
  .strict();

const SMALL_OBJECT = 8 * 1024 * 1024;
const LISTED_KEYS_MAX = 1000;

interface Counters {
  copied: number;
  skipped: number;
  deleted: number;
  failed: Array<{ key: string; error: string }>;
  planned: { copy: string[]; delete: string[]; copyCount: number; deleteCount: number };
}

/**
 * Makes a bucket/prefix hold the snapshot: copies what differs (server-side from the recorded version
 * in versions mode when source and target share an endpoint, streamed otherwise), skips what is already
 * identical, and with deleteExtra removes keys the snapshot does not have. The target listing and the
 * snapshot's index are both in key order and are merge-joined, so neither is held in memory.
 */
export async function restoreS3(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport> {
  const parsed = s3RestoreOptionsSchema.safeParse(target.options);
  if (!parsed.success) throw new UsageError(`restore options: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const o = parsed.data;
  const details = s3DetailsSchema.parse(manifest.engineDetails);
  const to = parseS3Uri(target.uri);
  const sourceConn = {
    endpoint: details.endpoint ?? undefined,
    region: details.region ?? undefined,
    forcePathStyle: details.forcePathStyle,
    checksums: (details.checksums ?? undefined) as 'when-required' | 'when-supported' | undefined,
    accessKeyId: o.accessKeyId,
    secretAccessKey: o.secretAccessKey,
    sessionToken: o.sessionToken,
  };
  const targetConn = {
    ...sourceConn,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.region ? { region: o.region } : {}),
    ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : {}),
    ...(o.checksums ? { checksums: o.checksums } : {}),
  };
  const sameService = targetConn.endpoint === sourceConn.endpoint && targetConn.region === sourceConn.region;
  const dst = s3ContextOf(targetConn);
  const src = sameService ? dst : s3ContextOf(sourceConn);
  const ref = manifest.indexes.find((i) => i.name === OBJECTS_INDEX);
  if (!ref) throw new BakError(`snapshot ${manifest.id} has no object index`);
  const wanted = keyFilter(o.include, o.exclude);
  const counters: Counters = { copied: 0, skipped: 0, deleted: 0, failed: [], planned: { copy: [], delete: [], copyCount: 0, deleteCount: 0 } };
  const pool = new TaskPool(o.concurrency);
  const deletions: string[] = [];
  let bytes = 0;

  const targetKeyOf = (sourceKey: string) => to.prefix + sourceKey.slice(details.prefix.length);
  const existing = listObjects(dst, to.bucket, to.prefix)[Symbol.asyncIterator]();
  let current: ListedObject | undefined;
  let listingDone = false;
  const advance = async () => {
    const next = await existing.next();
    if (next.done) listingDone = true;
    current = next.done ? undefined : next.value;
  };
  // Target keys before `key` are not in the snapshot: extra.
  const skipExtrasBefore = async (key: string | undefined) => {
    for (;;) {
      if (!current && !listingDone) await advance();
      if (!current || (key !== undefined && compareKeys(current.key, key) >= 0)) return;
      if (o.deleteExtra && wanted(current.key.slice(to.prefix.length))) await planDelete(current.key);
      await advance();
    }
  };
  const planDelete = async (key: string) => {
    counters.planned.deleteCount++;
    if (counters.planned.delete.length < LISTED_KEYS_MAX) counters.planned.delete.push(key);
    if (o.dryRun) return;
    deletions.push(key);
    if (deletions.length >= 1000) await flushDeletes();
  };
  const flushDeletes = async () => {
    const batch = deletions.splice(0);
    if (batch.length === 0) return;
    const res = await dst.client.send(new DeleteObjectsCommand({ Bucket: to.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })).catch((err: unknown) => {
      throw mapS3Error(err, { bucket: to.bucket, where: `s3://${to.bucket}/${to.prefix}`, endpoint: dst.endpoint, action: 'delete from', notFound: 'bucket-missing' });
    });
    for (const e of res.Errors ?? []) counters.failed.push({ key: e.Key ?? '?', error: `delete: ${e.Code}: ${e.Message}` });
    counters.deleted += batch.length - (res.Errors?.length ?? 0);
  };

  try {
    for await (const raw of readIndex(ctx.repo.blobs, ref)) {
      ctx.signal?.throwIfAborted(); // interrupted: no more uploads; those in flight end as the clients close
      const entry = details.mode === 'copy' ? copyEntrySchema.parse(raw) : versionEntrySchema.parse(raw);
      if (!wanted(entry.key.slice(details.prefix.length))) continue;
      const key = targetKeyOf(entry.key);
      await skipExtrasBefore(key);
      const there = current?.key === key ? current : undefined;
      if (there) await advance();
      if (there && there.size === entry.size && there.etag === entry.etag && (await alreadyRestored(src, dst, details, to.bucket, key, entry))) {
        counters.skipped++;
        ctx.progress?.advance(1, entry.size);
        continue;
      }
      counters.planned.copyCount++;
      if (counters.planned.copy.length < LISTED_KEYS_MAX) counters.planned.copy.push(key);
      if (o.dryRun) continue;
      bytes += entry.size;
      await pool.submit(async () => {
        try {
          await withRetry(() => (details.mode === 'copy' ? putFromRepository(ctx, dst, to.bucket, key, entry as CopyEntry) : copyVersion(src, dst, details.bucket, to.bucket, key, entry as VersionEntry, sameService)), {
            attempts: 4,
            onRetry: (err, attempt) => ctx.log.warn(`retrying ${key} (attempt ${attempt + 1}): ${(err as Error).message}`),
          });
          counters.copied++;
          // Copied content was read through the blob store, which counts its bytes; a version copied on the server was not.
          ctx.progress?.advance(1, details.mode === 'copy' ? 0 : entry.size);
        } catch (err) {
          counters.failed.push({ key, error: (err as Error).message });
        }
      });
    }
    await skipExtrasBefore(undefined);
    await pool.drain();
    await flushDeletes();
  } finally {
    dst.client.destroy();
    if (src !== dst) src.client.destroy();
  }
  const { planned, ...rest } = counters;
  const report: RestoreReport = { items: counters.copied, bytes, details: { ...rest, dryRun: o.dryRun, failedCount: counters.failed.length, ...(o.dryRun ? { planned } : {}) } };
  if (counters.failed.length > 0) {
    throw Object.assign(new BakError(`${counters.failed.length} object(s) failed to restore:\n  ${counters.failed.slice(0, 20).map((f) => `${f.key}: ${f.error}`).join('\n  ')}`), { report });
  }
  return report;
}

/**
 * Same size and ETag say the bytes match; the headers, metadata and tags must match too before a target
 * object counts as restored. Versions mode in place: the current version must be the recorded one.
 */
async function alreadyRestored(src: S3Context, dst: S3Context, details: { mode: string; bucket: string }, bucket: string, key: string, entry: CopyEntry | VersionEntry): Promise<boolean> {
  const target = await headObjectMetadata(dst, bucket, key);
  if ('versionId' in entry) {
    // Objects written while versioning was off (and MinIO's folder-like keys) report no version id: S3 calls it "null".
    if (bucket === details.bucket && key === entry.key && src === dst) return (target.versionId ?? 'null') === entry.versionId;
    const recorded = await headObjectMetadata(src, details.bucket, entry.key, entry.versionId);
    return sameMetadata(target.meta, recorded.meta);
  }
  return sameMetadata(target.meta, entry);
}

async function putFromRepository(ctx: EngineContext, dst: S3Context, bucket: string, key: string, entry: CopyEntry): Promise<void> {
  const params: PutObjectCommandInput = {
    Bucket: bucket,
    Key: key,
    ContentType: entry.contentType,
    ContentEncoding: entry.contentEncoding,
    CacheControl: entry.cacheControl,
    ContentDisposition: entry.contentDisposition,
    ContentLanguage: entry.contentLanguage,
    Metadata: entry.metadata,
    Tagging: encodeTags(entry.tags),
  };
  const where = { bucket, where: `s3://${bucket}/${key}`, endpoint: dst.endpoint, action: 'write', notFound: 'bucket-missing' as const };
  // Small objects in one PUT (their ETag then matches the source's); large ones stream as multipart.
  if (entry.size < SMALL_OBJECT) {
    const body = await buffer(ctx.repo.blobs.readStream(entry.blobs));
    await dst.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length })).catch((err: unknown) => {
      throw mapS3Error(err, where);
    });
    return;
  }
  await new Upload({ client: dst.client, params: { ...params, Body: ctx.repo.blobs.readStream(entry.blobs) }, partSize: SMALL_OBJECT, queueSize: 2 })
    .done()
    .catch((err: unknown) => {
      throw mapS3Error(err, where);
    });
}

async function copyVersion(src: S3Context, dst: S3Context, fromBucket: string, toBucket: string, key: string, entry: VersionEntry, sameService: boolean): Promise<void> {
  const where = { bucket: toBucket, where: `s3://${toBucket}/${key}`, endpoint: dst.endpoint, action: 'copy to' };
  if (sameService) {
    // CopyObject keeps metadata and tags (COPY directives); objects over 5 GiB would need a multipart copy.
    if (entry.size > 5 * 1024 ** 3) throw new BakError(`${entry.key}: objects over 5 GiB cannot be copied server-side yet`);
    const copySource = `${fromBucket}/${entry.key.split('/').map(encodeURIComponent).join('/')}?versionId=${encodeURIComponent(entry.versionId)}`;
    await dst.client.send(new CopyObjectCommand({ Bucket: toBucket, Key: key, CopySource: copySource, MetadataDirective: 'COPY', TaggingDirective: 'COPY' })).catch((err: unknown) => {
      throw mapS3Error(err, { ...where, notFound: 'not-found' });
    });
    return;
  }
  const got = await getObject(src, fromBucket, entry.key, entry.versionId);
  const m = got.meta;
  await new Upload({
    client: dst.client,
    params: {
      Bucket: toBucket,
      Key: key,
      Body: got.body,
      ContentType: m.contentType,
      ContentEncoding: m.contentEncoding,
      CacheControl: m.cacheControl,
      ContentDisposition: m.contentDisposition,
      ContentLanguage: m.contentLanguage,
      Metadata: m.metadata,
      Tagging: encodeTags(m.tags),
    },
    partSize: SMALL_OBJECT,
    queueSize: 2,
  })
    .done()
    .catch((err: unknown) => {
      throw mapS3Error(err, where);
    });
}
