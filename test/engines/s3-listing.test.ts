// The S3 engine's listing against MinIO: the lean client (storage/s3-lean.ts) and the SDK give the same objects (awkward keys
// included), and a listing split into ranges (by a previous snapshot's split keys) gives exactly the plain
// listing, whether a range holds a few keys, more than a page, keys added since, or a split key now deleted.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3ContextOf } from '../../src/engines/s3/backup.ts';
import { listObjects, listPage, SplitCollector, type S3Context } from '../../src/engines/s3/objects.ts';
import { LeanS3 } from '../../src/storage/s3-lean.ts';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { awkwardObjects, createBucket, deleteBucketCompletely, fillBucket, mapLimit, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

let minio: Minio;
const bucket = uniqueName('bak-list');
const key = (i: number) => `k/${String(i).padStart(4, '0')}`;
const contexts: S3Context[] = [];

function context(lean: boolean): S3Context {
  const s3 = s3ContextOf({
    location: { bucket, prefix: '' },
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    accessKeyId: minio.accessKeyId,
    secretAccessKey: minio.secretAccessKey,
  } as Parameters<typeof s3ContextOf>[0]);
  if (lean) s3.lean = new LeanS3(s3.client, { endpoint: minio.endpoint, forcePathStyle: true, connections: 4 });
  contexts.push(s3);
  return s3;
}

async function keysOf(s3: S3Context, prefix: string, splits: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for await (const o of listObjects(s3, bucket, prefix, splits)) out.push(o.key);
  return out;
}

beforeAll(async () => {
  minio = await requireServer('minio');
  const client = minioClient(minio);
  await createBucket(client, bucket);
  await mapLimit(
    Array.from({ length: 1200 }, (_, i) => i),
    32,
    (i) => client.send(new PutObjectCommand({ Bucket: bucket, Key: key(i), Body: 'x' })),
  );
  await fillBucket(client, bucket, 'awkward/', awkwardObjects());
  client.destroy();
}, 120_000);

afterAll(async () => {
  for (const s3 of contexts) {
    await s3.lean?.close();
    s3.client.destroy();
  }
  if (minio) {
    const client = minioClient(minio);
    await deleteBucketCompletely(client, bucket);
    client.destroy();
  }
});

describe('S3 listing (MinIO)', () => {
  it('the lean client lists what the SDK lists: keys, sizes, ETags and times, over several pages', async () => {
    const all = async (s3: S3Context) => {
      const out = [];
      for await (const o of listObjects(s3, bucket, '')) out.push(o);
      return out;
    };
    const [lean, sdk] = [await all(context(true)), await all(context(false))];
    expect(lean.length).toBeGreaterThan(1200);
    expect(lean).toEqual(sdk);
  });

  it('split into ranges, it lists exactly the plain listing, in order', async () => {
    const s3 = context(true);
    const plain = await keysOf(s3, 'k/');
    expect(plain).toHaveLength(1200);
    // A range of more than a page (after k/0000), short ranges, a split key that no longer exists (k/0550x).
    for (const splits of [[key(0)], [key(100), key(105), 'k/0550x', key(999)], [key(1199)], Array.from({ length: 11 }, (_, i) => key(i * 100 + 99))]) {
      expect(await keysOf(s3, 'k/', splits), splits.join(',')).toEqual(plain);
    }
    // Unusable splits (unsorted, or outside the prefix) are ignored, not trusted.
    expect(await keysOf(s3, 'k/', [key(500), key(100)])).toEqual(plain);
    expect(await keysOf(s3, 'k/', ['awkward/x'])).toEqual(plain);
    // Through the SDK as well.
    expect(await keysOf(context(false), 'k/', [key(100), key(999)])).toEqual(plain);
  });

  it('keys added and deleted since the splits were taken are listed as they are now', async () => {
    const client = minioClient(minio);
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'k/0100a', Body: 'new' }));
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(105) }));
      const s3 = context(true);
      const plain = await keysOf(s3, 'k/');
      expect(plain).toContain('k/0100a');
      expect(plain).not.toContain(key(105));
      expect(await keysOf(s3, 'k/', [key(100), key(105), key(999)])).toEqual(plain);
    } finally {
      client.destroy();
    }
  });

  it('a first page asked for early (a backup begun while its repository opens) starts the listing, with or without splits', async () => {
    const s3 = context(true);
    const plain = await keysOf(s3, 'k/');
    for (const splits of [[], [key(100), key(999)], [key(1199)]]) {
      const out: string[] = [];
      for await (const o of listObjects(s3, bucket, 'k/', splits, listPage(s3, bucket, 'k/', {}))) out.push(o.key);
      expect(out, splits.join(',')).toEqual(plain);
    }
  });

  it('split keys for the next listing: every 1,000th, thinned to a bounded count as keys grow', () => {
    const c = new SplitCollector(10, 4);
    for (let i = 1; i <= 100; i++) c.add(key(i));
    expect(c.splits.length).toBeLessThanOrEqual(4);
    expect(c.splits).toEqual([...c.splits].sort());
    const d = new SplitCollector();
    for (let i = 1; i <= 2500; i++) d.add(`x${i}`);
    expect(d.splits).toEqual(['x1000', 'x2000']);
  });
});
