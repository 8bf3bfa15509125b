import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { StorageError } from '../../storage/object-store.ts';
import { mapS3Error } from '../../storage/s3.ts';
import type { LeanS3 } from '../../storage/s3-lean.ts';
import type { ListedPage } from '../../storage/s3-list-page.ts';
import { compareKeys } from '../../util/key-order.ts';
import { mappingErrors, pushSourceOf, type PushSource } from '../../util/push-source.ts';

/** One object as the listing shows it. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

export interface ListedVersion extends ListedObject {
  versionId: string;
}

/** The metadata bak preserves per object. */
export interface ObjectMetadata {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  cacheControl?: string | undefined;
  contentDisposition?: string | undefined;
  contentLanguage?: string | undefined;
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

export interface S3Context {
  client: S3Client;
  endpoint: string;
  /** Lean GETs and listings for the hot path of a backup (storage/s3-lean.ts); without it every read goes through the SDK. */
  lean?: LeanS3 | undefined;
}

const META_PREFIX = 'x-amz-meta-';
const clean = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** One page of a listing (up to 1,000 keys): through the lean client where it applies, else the SDK. */
export async function listPage(s3: S3Context, bucket: string, prefix: string, from: { token?: string | undefined; startAfter?: string | undefined }): Promise<ListedPage> {
  const fast = await s3.lean?.list(bucket, prefix, from);
  if (fast) return fast;
  const page = await s3.client
    .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: from.token, StartAfter: from.token ? undefined : from.startAfter, MaxKeys: 1000 }))
    .catch((err: unknown) => {
      throw mapS3Error(err, { bucket, where: `s3://${bucket}/${prefix}`, endpoint: s3.endpoint, action: 'list', notFound: 'bucket-missing' });
    });
  return {
    objects: (page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0, etag: clean(o.ETag), lastModified: (o.LastModified ?? new Date(0)).toISOString() })),
    nextToken: page.IsTruncated ? page.NextContinuationToken : undefined,
  };
}

/**
 * The keys after `startAfter` up to `last` (inclusive; undefined: to the end), page by page. The first page is
 * asked for at once, before the generator runs; each next one while the page before is consumed.
 */
function listRange(s3: S3Context, bucket: string, prefix: string, startAfter: string | undefined, last: string | undefined, asked?: Promise<ListedPage>): AsyncGenerator<ListedObject> {
  const first = asked ?? listPage(s3, bucket, prefix, { startAfter });
  first.catch(() => undefined); // surfaces when awaited; not if the consumer stopped early
  return (async function* () {
    let next: Promise<ListedPage> | undefined = first;
    while (next) {
      const page: ListedPage = await next;
      // On only while the page ended before `last` (a range usually ends exactly at a page's last key); an empty
      // page that says there is more is followed too.
      const lastListed = page.objects.at(-1)?.key;
      const endsBefore = last === undefined || lastListed === undefined || compareKeys(lastListed, last) < 0;
      const inRange = endsBefore ? page.objects : page.objects.filter((o) => compareKeys(o.key, last!) <= 0);
      next = endsBefore && page.nextToken !== undefined ? listPage(s3, bucket, prefix, { token: page.nextToken }) : undefined;
      next?.catch(() => undefined);
      yield* inRange;
    }
  })();
}

// Ranges of a split listing asked for at once. A page costs MinIO ~25 ms of CPU here, so one listing after another
// was most of an incremental backup's time; ranges in parallel use the server's cores.
const RANGES_AHEAD = 4;

/**
 * Every object under a prefix, in key order. With `splitAfter` (sorted keys, typically every 1,000th key of the
 * previous snapshot), the listing is cut into the ranges between them, RANGES_AHEAD listed at once and yielded
 * in order; each range pages on by itself, so keys added since are listed all the same. Memory: a few pages.
 */
export async function* listObjects(
  s3: S3Context,
  bucket: string,
  prefix: string,
  splitAfter: readonly string[] = [],
  firstPage?: Promise<ListedPage>,
): AsyncGenerator<ListedObject> {
  const splits = usableSplits(prefix, splitAfter);
  const ranges: Array<AsyncGenerator<ListedObject>> = [];
  let started = 0;
  // Range i holds the keys after splits[i - 1] up to splits[i]; the last one runs to the end. The first one starts
  // with `firstPage` when it was asked for already (listPage from the start: the same request with or without splits).
  const startMore = () => {
    while (ranges.length < RANGES_AHEAD && started <= splits.length) {
      ranges.push(listRange(s3, bucket, prefix, splits[started - 1], splits[started], started === 0 ? firstPage : undefined));
      started++;
    }
  };
  startMore();
  while (ranges.length > 0) {
    const range = ranges.shift()!;
    startMore();
    yield* range;
  }
}

/** Split keys that can cut this listing: under the prefix and strictly increasing; anything else, none at all. */
function usableSplits(prefix: string, splitAfter: readonly string[]): readonly string[] {
  for (let i = 0; i < splitAfter.length; i++) {
    if (!splitAfter[i]!.startsWith(prefix) || (i > 0 && compareKeys(splitAfter[i - 1]!, splitAfter[i]!) >= 0)) return [];
  }
  return splitAfter;
}

/** Collects every `every`-th key of a listing as split keys for the next one, thinned to at most `max` (stride doubles). */
export class SplitCollector {
  readonly #max: number;
  #every: number;
  #seen = 0;
  #splits: string[] = [];

  constructor(every = 1000, max = 1024) {
    this.#every = every;
    this.#max = max;
  }

  add(key: string): void {
    if (++this.#seen % this.#every !== 0) return;
    this.#splits.push(key);
    if (this.#splits.length > this.#max) {
      this.#splits = this.#splits.filter((_, i) => i % 2 === 1);
      this.#every *= 2;
    }
  }

  get splits(): string[] {
    return this.#splits;
  }
}

/** The current version of every key under a prefix (a key whose newest version is a delete marker is absent), in key order. */
export async function* listCurrentVersions(s3: S3Context, bucket: string, prefix: string): AsyncGenerator<ListedVersion> {
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const page = await s3.client
      .send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker, MaxKeys: 1000 }))
      .catch((err: unknown) => {
        throw mapS3Error(err, { bucket, where: `s3://${bucket}/${prefix}`, endpoint: s3.endpoint, action: 'list versions of', notFound: 'bucket-missing' });
      });
    for (const v of page.Versions ?? []) {
      if (!v.IsLatest) continue;
      yield {
        key: v.Key!,
        versionId: v.VersionId ?? 'null',
        size: v.Size ?? 0,
        etag: clean(v.ETag),
        lastModified: (v.LastModified ?? new Date(0)).toISOString(),
      };
    }
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
  } while (keyMarker);
}

/** An object opened by a backup's one read: its content is pushed (see push-source.ts). */
export interface OpenedObject {
  body: PushSource;
  size: number;
  etag: string;
  lastModified: string;
  meta: ObjectMetadata;
  requests: number;
}

/** Opens the current version of an object for a backup: the lean GET where it applies, else the SDK. */
export async function openObject(s3: S3Context, bucket: string, key: string): Promise<OpenedObject> {
  const fast = await s3.lean?.get(bucket, key);
  if (!fast) {
    const got = await getObject(s3, bucket, key);
    return { ...got, body: pushSourceOf(got.body) };
  }
  const h = fast.headers;
  const one = (name: string) => {
    const v = h[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const metadata: Record<string, string> = {};
  for (const name of Object.keys(h)) {
    if (name.startsWith(META_PREFIX)) metadata[name.slice(META_PREFIX.length)] = one(name)!;
  }
  const tagCount = Number(one('x-amz-tagging-count') ?? 0);
  let tags: Record<string, string> = {};
  try {
    if (tagCount > 0) tags = await getTags(s3, bucket, key, undefined);
  } catch (err) {
    fast.body.destroy(); // an unread body holds its connection
    throw err;
  }
  const modified = one('last-modified');
  return {
    // A connection cut mid-body is the network's failure: retryable, like the SDK's unreachable endpoint.
    body: mappingErrors(fast.body, (err) => new StorageError('unreachable', `reading s3://${bucket}/${key} was cut off (endpoint ${s3.endpoint}): ${err.message}`, { cause: err })),
    size: fast.length,
    etag: clean(one('etag')),
    lastModified: (modified ? new Date(modified) : new Date(0)).toISOString(),
    meta: {
      contentType: one('content-type'),
      contentEncoding: one('content-encoding'),
      cacheControl: one('cache-control'),
      contentDisposition: one('content-disposition'),
      contentLanguage: one('content-language'),
      metadata,
      tags,
    },
    requests: tagCount > 0 ? 2 : 1,
  };
}

/** Opens an object (or one version of it) for reading through the SDK, with the metadata and tags bak keeps. */
export async function getObject(
  s3: S3Context,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<{ body: Readable; size: number; etag: string; lastModified: string; meta: ObjectMetadata; requests: number }> {
  const where = `s3://${bucket}/${key}`;
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((err: unknown) => {
    throw mapS3Error(err, { bucket, where, endpoint: s3.endpoint, action: 'read', notFound: 'not-found' });
  });
  let requests = 1;
  let tags: Record<string, string> = {};
  if ((res.TagCount ?? 0) > 0) {
    tags = await getTags(s3, bucket, key, versionId);
    requests++;
  }
  return {
    body: res.Body as Readable,
    size: res.ContentLength ?? 0,
    etag: clean(res.ETag),
    lastModified: (res.LastModified ?? new Date(0)).toISOString(),
    meta: {
      contentType: res.ContentType,
      contentEncoding: res.ContentEncoding,
      cacheControl: res.CacheControl,
      contentDisposition: res.ContentDisposition,
      contentLanguage: res.ContentLanguage,
      metadata: res.Metadata ?? {},
      tags,
    },
    requests,
  };
}

async function getTags(s3: S3Context, bucket: string, key: string, versionId: string | undefined): Promise<Record<string, string>> {
  const tagging = await s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((err: unknown) => {
    throw mapS3Error(err, { bucket, where: `s3://${bucket}/${key}`, endpoint: s3.endpoint, action: 'read the tags of' });
  });
  return Object.fromEntries((tagging.TagSet ?? []).map((t) => [t.Key!, t.Value ?? '']));
}

/** The metadata and tags of an object (HEAD + tagging), without reading its content. */
export async function headObjectMetadata(s3: S3Context, bucket: string, key: string, versionId?: string): Promise<{ versionId: string | undefined; meta: ObjectMetadata }> {
  const where = { bucket, where: `s3://${bucket}/${key}`, endpoint: s3.endpoint, action: 'read the metadata of', notFound: 'not-found' as const };
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((err: unknown) => {
    throw mapS3Error(err, where);
  });
  const tagging = await s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId })).catch((err: unknown) => {
    throw mapS3Error(err, where);
  });
  return {
    versionId: head.VersionId,
    meta: {
      contentType: head.ContentType,
      contentEncoding: head.ContentEncoding,
      cacheControl: head.CacheControl,
      contentDisposition: head.ContentDisposition,
      contentLanguage: head.ContentLanguage,
      metadata: head.Metadata ?? {},
      tags: Object.fromEntries((tagging.TagSet ?? []).map((t) => [t.Key!, t.Value ?? ''])),
    },
  };
}

/** Whether two objects carry the same headers, user metadata and tags. */
export function sameMetadata(a: ObjectMetadata, b: ObjectMetadata): boolean {
  const norm = (m: ObjectMetadata) =>
    JSON.stringify([
      m.contentType ?? null,
      m.contentEncoding ?? null,
      m.cacheControl ?? null,
      m.contentDisposition ?? null,
      m.contentLanguage ?? null,
      Object.entries(m.metadata).sort(),
      Object.entries(m.tags).sort(),
    ]);
  return norm(a) === norm(b);
}

/** `Tagging` header value for PutObject / multipart uploads. */
export function encodeTags(tags: Record<string, string>): string | undefined {
  const entries = Object.entries(tags);
  if (entries.length === 0) return undefined;
  return entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}
