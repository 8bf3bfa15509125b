import { GetBucketVersioningCommand } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { BakError, UsageError } from '../../errors.ts';
import { blobRefSchema } from '../../repository/blobs.ts';
import { readIndexLines, type IndexLine } from '../../repository/index-blobs.ts';
import type { Manifest } from '../../repository/manifest.ts';
import type { Repository } from '../../repository/repository.ts';
import { isNotFound, StorageError } from '../../storage/object-store.ts';
import { createS3Client, mapS3Error } from '../../storage/s3.ts';
import { LeanS3 } from '../../storage/s3-lean.ts';
import { Limiter } from '../../util/concurrency.ts';
import { compareKeys } from '../../util/key-order.ts';
import { readAll } from '../../util/push-source.ts';
import { withRetry } from '../../util/retry.ts';
import { describeZodError } from '../../util/validation.ts';
import type { ListedPage } from '../../storage/s3-list-page.ts';
import type { BackupContext, BackupResult, EarlyStart } from '../engine.ts';
import { keyFilter } from './keys.ts';
import { headObjectMetadata, listCurrentVersions, listObjects, listPage, openObject, SplitCollector, type ListedObject, type ObjectMetadata, type OpenedObject, type S3Context } from './objects.ts';
import { storeSettingsOf, type S3Source } from './source.ts';

export const OBJECTS_INDEX = 'objects';

/** An index entry of a copy-mode snapshot: the object, its metadata, and the blobs holding its content. */
export const copyEntrySchema = z
  .object({
    key: z.string(),
    size: z.number(),
    etag: z.string(),
    lastModified: z.string(),
    contentType: z.string().optional(),
    contentEncoding: z.string().optional(),
    cacheControl: z.string().optional(),
    contentDisposition: z.string().optional(),
    contentLanguage: z.string().optional(),
    metadata: z.record(z.string(), z.string()),
    tags: z.record(z.string(), z.string()),
    checksum: z.string(),
    blobs: z.array(blobRefSchema),
  })
  .strict();
export type CopyEntry = z.infer<typeof copyEntrySchema>;

export const versionEntrySchema = z.object({ key: z.string(), versionId: z.string(), size: z.number(), etag: z.string(), lastModified: z.string() }).strict();
export type VersionEntry = z.infer<typeof versionEntrySchema>;

export const s3DetailsSchema = z
  .object({
    mode: z.enum(['copy', 'versions']),
    bucket: z.string(),
    prefix: z.string(),
    endpoint: z.string().nullable(),
    region: z.string().nullable(),
    forcePathStyle: z.boolean(),
    checksums: z.string().nullable(),
    deleteVersions: z.boolean(),
  })
  .loose();
export type S3Details = z.infer<typeof s3DetailsSchema>;

// Objects at least this big are downloaded two at a time, so many large objects cannot pile up in memory.
const LARGE_OBJECT = 32 * 1024 * 1024;
const LARGE_DOWNLOADS = 2;
// Listed objects whose index entries may wait for an earlier, slower one (a large object): a few hundred
// bytes each once done, so small objects keep flowing past a large one instead of stalling behind it.
const WINDOW = 2048;

/** An entry on its way into the index, in its JSON form: made by this backup, or the parent's carried as stored. */
interface EntryLine {
  json: string;
  size: number;
}
const lineOf = (entry: CopyEntry): EntryLine => ({ json: JSON.stringify(entry), size: entry.size });

type Pending = Promise<EntryLine | undefined>;

/**
 * The objects in flight, in listing order; entries enter the index in that order. A settled entry leaves from
 * the front at once rather than when the window is full: held for WINDOW more keys, every entry (and its
 * promises and closures) outlived V8's young generation, and the promoted garbage grew the old one, and the
 * peak RSS, with the key count.
 */
class EntryWindow {
  private readonly slots: Array<{ entry: Pending; settled: boolean }> = [];
  private readonly accept: (entry: EntryLine) => Promise<void>;

  constructor(accept: (entry: EntryLine) => Promise<void>) {
    this.accept = accept;
  }

  async push(entry: Pending): Promise<void> {
    const slot = { entry, settled: false };
    const settle = () => {
      slot.settled = true;
    };
    entry.then(settle, settle);
    this.slots.push(slot);
    while (this.slots.length >= WINDOW || this.slots[0]?.settled) await this.shift();
  }

  /** An entry known at once (an unchanged object): straight into the index when nothing before it is still pending. */
  async pushReady(entry: EntryLine): Promise<void> {
    while (this.slots[0]?.settled) await this.shift();
    if (this.slots.length === 0) await this.accept(entry);
    else await this.push(Promise.resolve(entry));
  }

  async drain(): Promise<void> {
    while (this.slots.length > 0) await this.shift();
  }

  private async shift(): Promise<void> {
    const entry = await this.slots.shift()!.entry;
    if (entry) await this.accept(entry);
  }
}

/**
 * Runs `task` through `limiter` and resolves once it has started (with its result, boxed so it is not awaited):
 * the listing then runs at most a slot ahead of the downloads instead of queueing a closure per key.
 */
function whenStarted<T>(limiter: Limiter, task: () => Promise<T>): Promise<{ result: Promise<T> }> {
  return new Promise((started) => {
    const result = limiter.run(() => {
      const running = task();
      started({ result: running });
      return running;
    });
    result.catch(() => undefined);
  });
}

export function s3ContextOf(options: Parameters<typeof storeSettingsOf>[0]): S3Context {
  return createS3Client(storeSettingsOf(options));
}

/**
 * A backup's start (Engine.startBackup), begun while the repository opens: the clients, and in copy mode the listing's
 * first page (the credentials resolved and a connection open by the time the key is). Nothing is read but the listing.
 */
export class S3BackupStart implements EarlyStart {
  readonly s3: S3Context;
  /** ListObjectsV2 from the start of the prefix, asked for at once (copy mode). */
  readonly firstPage: Promise<ListedPage> | undefined;
  #closed = false;

  constructor(source: S3Source) {
    const o = source.options;
    this.s3 = s3ContextOf(o);
    if (o.mode === 'copy') {
      this.s3.lean = new LeanS3(this.s3.client, { endpoint: o.endpoint, forcePathStyle: o.forcePathStyle ?? false, connections: (o.concurrency ?? 8) + LARGE_DOWNLOADS });
      this.firstPage = listPage(this.s3, o.location.bucket, o.location.prefix, {});
      this.firstPage.catch(() => undefined); // reported where the listing reads it
    }
  }

  async cancel(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.s3.lean?.close();
    this.s3.client.destroy();
  }
}

// What a backup compares of the parent's entry with the listing. An unchanged entry is carried into the new index
// as stored, so only these fields are checked here: the whole entry is checked where it is read for its content
// (restore, verify, export), and the parent's index blobs are bak's own, named by their SHA-256 and checked on read.
// Checking every parent entry with copyEntrySchema was ~40 ms of a 0.5 s no-op backup of 12,000 keys.
const comparedEntrySchema = z.object({ key: z.string(), size: z.number(), etag: z.string(), lastModified: z.string() });
type ComparedEntry = z.infer<typeof comparedEntrySchema>;

/** One of the parent's entries: the fields compared, and the entry as stored. */
interface ParentEntry extends ComparedEntry {
  stored: IndexLine;
}

/** Reads the parent's index in step with the listing: both are sorted by key, so memory stays constant. */
class ParentCursor {
  private readonly entries: AsyncGenerator<IndexLine> | undefined;
  private readonly snapshot: string | undefined;
  private current: ParentEntry | undefined;
  private done = false;

  constructor(repo: Repository, parent: Manifest | undefined) {
    const ref = parent?.engineDetails.mode === 'copy' ? parent.indexes.find((i) => i.name === OBJECTS_INDEX) : undefined;
    this.entries = ref ? readIndexLines(repo.blobs, ref) : undefined;
    this.snapshot = parent?.id;
    this.done = !this.entries;
  }

  async find(key: string): Promise<ParentEntry | undefined> {
    while (!this.done) {
      if (this.current && compareKeys(this.current.key, key) >= 0) break;
      const next = await this.entries!.next();
      if (next.done) this.done = true;
      else this.current = { ...this.checked(comparedEntrySchema, next.value.value), stored: next.value };
    }
    return this.current?.key === key ? this.current : undefined;
  }

  /** The whole entry, for an object whose content is the parent's but whose metadata is read anew. */
  whole(entry: ParentEntry): CopyEntry {
    return this.checked(copyEntrySchema, entry.stored.value);
  }

  private checked<T>(schema: z.ZodType<T>, value: unknown): T {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new BakError(`parent snapshot ${this.snapshot}: a malformed ${OBJECTS_INDEX} entry (${describeZodError(parsed.error, value).replace(/\n/g, '; ')})`);
    return parsed.data;
  }
}

export async function backupS3(ctx: BackupContext & { source: S3Source }): Promise<BackupResult> {
  const { source, writer, log } = ctx;
  const o = source.options;
  const { bucket, prefix } = o.location;
  const start = ctx.early instanceof S3BackupStart ? ctx.early : new S3BackupStart(source);
  const s3 = start.s3;
  const concurrency = o.concurrency ?? 8;
  const wanted = keyFilter(o.include, o.exclude);
  const index = writer.openIndex(OBJECTS_INDEX);
  const stats = { objects: 0, bytes: 0, downloaded: { objects: 0, bytes: 0, getRequests: 0 } };
  let listingSplits: string[] | undefined;
  const progress = ctx.progress;
  progress?.activity(`s3://${bucket}/${prefix}`);
  try {
    if (o.mode === 'versions') {
      const status = await s3.client.send(new GetBucketVersioningCommand({ Bucket: bucket })).catch((err: unknown) => {
        throw mapS3Error(err, { bucket, where: `s3://${bucket}`, endpoint: s3.endpoint, action: 'read the versioning of', notFound: 'bucket-missing' });
      });
      if (status.Status !== 'Enabled') {
        throw new UsageError(`bucket ${bucket} has versioning ${status.Status ? status.Status.toLowerCase() : 'off'}: versions mode needs a versioned bucket (or use --mode copy)`);
      }
      for await (const v of listCurrentVersions(s3, bucket, prefix)) {
        ctx.signal?.throwIfAborted();
        if (!wanted(v.key.slice(prefix.length))) continue;
        await index.add(v);
        stats.objects++;
        stats.bytes += v.size;
        progress?.expect(1, v.size);
        progress?.advance(1, v.size);
      }
      progress?.totalsKnown();
    } else {
      const parent = new ParentCursor(ctx.repo, ctx.parent);
      const splits = new SplitCollector();
      const large = new Limiter(LARGE_DOWNLOADS);
      const downloads = new Limiter(concurrency);
      const retried = (obj: ListedObject) => () =>
        withRetry(() => downloadObject(ctx, s3, bucket, obj, stats), { attempts: 3, retryable: (err) => err instanceof StorageError && err.kind === 'unreachable' }).then((entry) => entry && lineOf(entry));
      // Large objects queue on their own limiter (not holding up the listing), so small ones keep flowing past them.
      const download = (obj: ListedObject): Promise<{ result: Pending }> => {
        if (obj.size < LARGE_OBJECT) return whenStarted(downloads, retried(obj));
        const result = large.run(retried(obj));
        result.catch(() => undefined);
        return Promise.resolve({ result });
      };
      const window = new EntryWindow(async (entry) => {
        await index.addSerialized(entry.json);
        stats.objects++;
        stats.bytes += entry.size;
        progress?.advance(1, entry.size);
      });
      for await (const obj of listObjects(s3, bucket, prefix, parentSplits(ctx.parent, prefix), start.firstPage)) {
        ctx.signal?.throwIfAborted(); // interrupted: no more GETs; the finally below closes the clients
        splits.add(obj.key);
        if (!wanted(obj.key.slice(prefix.length))) continue;
        progress?.expect(1, obj.size);
        const previous = await parent.find(obj.key);
        const unchanged = previous && previous.size === obj.size && previous.etag === obj.etag;
        // Same bytes: no GET. A newer LastModified with the same ETag means metadata replaced in place: re-read only that.
        if (unchanged && sameSecond(previous.lastModified, obj.lastModified)) {
          await window.pushReady({ json: previous.stored.json, size: previous.size });
          continue;
        }
        const pending = !unchanged ? (await download(obj)).result : (await whenStarted(downloads, () => refreshMetadata(s3, bucket, obj, parent.whole(previous), stats).then(lineOf))).result;
        await window.push(pending);
      }
      progress?.totalsKnown();
      await window.drain();
      listingSplits = splits.splits;
    }
    const ref = await writer.closeIndex(index);
    log.info(`${stats.objects} objects (${ref.count} indexed); downloaded ${stats.downloaded.objects} objects, ${stats.downloaded.getRequests} GET requests`);
  } finally {
    await start.cancel();
  }
  const details: S3Details & Record<string, unknown> = {
    mode: o.mode,
    bucket,
    prefix,
    endpoint: o.endpoint ?? null,
    region: o.region ?? null,
    forcePathStyle: o.forcePathStyle ?? false,
    checksums: o.checksums ?? null,
    deleteVersions: o.deleteVersions,
    objects: stats.objects,
    bytes: stats.bytes,
    downloaded: stats.downloaded,
    // Every ~1,000th key: the next backup lists the ranges between them in parallel (listObjects).
    ...(listingSplits ? { listingSplits } : {}),
  };
  return { engineDetails: details, externalData: o.mode === 'versions', totals: { items: stats.objects, bytes: stats.bytes } };
}

/** The parent's split keys for listing, if it listed the same prefix in copy mode (older snapshots have none). */
function parentSplits(parent: Manifest | undefined, prefix: string): string[] {
  if (parent?.engineDetails.mode !== 'copy' || parent.engineDetails.prefix !== prefix) return [];
  const parsed = z.array(z.string()).safeParse(parent.engineDetails.listingSplits);
  return parsed.success ? parsed.data : [];
}

/** Listings give milliseconds, HTTP headers whole seconds: compare what both can say. */
function sameSecond(a: string, b: string): boolean {
  return a === b || Math.floor(Date.parse(a) / 1000) === Math.floor(Date.parse(b) / 1000);
}

async function refreshMetadata(s3: S3Context, bucket: string, obj: ListedObject, previous: CopyEntry, stats: { downloaded: { getRequests: number } }): Promise<CopyEntry> {
  const { meta } = await headObjectMetadata(s3, bucket, obj.key);
  stats.downloaded.getRequests += 2;
  // The content (and so its blobs) is the parent's; headers, metadata and tags are read anew.
  return {
    key: previous.key,
    size: previous.size,
    etag: previous.etag,
    checksum: previous.checksum,
    blobs: previous.blobs,
    lastModified: obj.lastModified,
    ...definedHeaders(meta),
    metadata: meta.metadata,
    tags: meta.tags,
  };
}

function definedHeaders(m: ObjectMetadata): Partial<Pick<CopyEntry, 'contentType' | 'contentEncoding' | 'cacheControl' | 'contentDisposition' | 'contentLanguage'>> {
  return {
    ...(m.contentType !== undefined ? { contentType: m.contentType } : {}),
    ...(m.contentEncoding !== undefined ? { contentEncoding: m.contentEncoding } : {}),
    ...(m.cacheControl !== undefined ? { cacheControl: m.cacheControl } : {}),
    ...(m.contentDisposition !== undefined ? { contentDisposition: m.contentDisposition } : {}),
    ...(m.contentLanguage !== undefined ? { contentLanguage: m.contentLanguage } : {}),
  };
}

async function downloadObject(
  ctx: BackupContext,
  s3: S3Context,
  bucket: string,
  obj: ListedObject,
  stats: { downloaded: { objects: number; bytes: number; getRequests: number } },
): Promise<CopyEntry | undefined> {
  let got: OpenedObject;
  try {
    got = await openObject(s3, bucket, obj.key);
  } catch (err) {
    // Deleted between the listing and the read: the snapshot shows the bucket without it.
    if (isNotFound(err)) return undefined;
    throw err;
  }
  stats.downloaded.getRequests += got.requests;
  // An object smaller than a chunk is read whole (bounded by that size) and stored as one blob, skipping the chunker.
  const small = obj.size < ctx.repo.blobs.oneChunkLimit && got.size < ctx.repo.blobs.oneChunkLimit;
  // Large objects are read LARGE_DOWNLOADS at a time: they share the store's chunk slots, so their chunks in memory stay bounded.
  const written = small
    ? await ctx.repo.blobs.writeBuffer(await readAll(got.body, got.size))
    : await ctx.repo.blobs.writePushed(got.body, Math.max(1, Math.floor(ctx.repo.blobs.writeConcurrency / LARGE_DOWNLOADS)));
  stats.downloaded.objects++;
  stats.downloaded.bytes += written.size;
  const m = got.meta;
  return {
    key: obj.key,
    size: written.size,
    etag: got.etag,
    // The listing's time, as the next backup compares it with the listing (a GET's header has only seconds).
    lastModified: obj.lastModified,
    ...definedHeaders(m),
    metadata: m.metadata,
    tags: m.tags,
    checksum: written.checksum,
    blobs: written.blobs,
  };
}
