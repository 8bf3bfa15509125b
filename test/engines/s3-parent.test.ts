// The S3 engine's incremental backup against its parent's index (MinIO, local repository): what is carried from
// the parent as stored, what is read anew, and a parent index bak cannot use.
import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CopyEntry } from '../../src/engines/s3/backup.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { makeLocation, minioClient, uniqueName, type TestLocation } from '../helpers/backends.ts';
import { json, runBak, show } from '../helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, fillBucket, indexEntries, s3Flags, type FixtureObject } from '../helpers/s3-fixture.ts';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';

const OBJECTS: FixtureObject[] = ['a.txt', 'b/c.json', 'b/d.bin', 'e.txt'].map((key, i) => ({ key, body: Buffer.from(`object ${i}: ${key}\n`.repeat(20 + i)) }));

describe('s3 engine, incremental backup against the parent snapshot (local repository)', () => {
  let minio: ServersEnv['minio'];
  let s3: S3Client;
  let location: TestLocation;
  const bucket = uniqueName('bak-s3parent');

  const bak = (args: string[]) => runBak(['--repo', location.settings.url, ...args], { env: { ...location.env, ...awsEnv(minio) } });
  const backup = () => bak(['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
  const snapshotCount = async () => {
    const ls = await bak(['snapshots', '--json']);
    expect(ls.code, show(ls)).toBe(0);
    return json<{ snapshots: unknown[] }>(ls).snapshots.length;
  };

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation('local');
    const init = await bak(['init']);
    expect(init.code, show(init)).toBe(0);
    await createBucket(s3, bucket);
    await fillBucket(s3, bucket, '', OBJECTS);
  });

  afterAll(async () => {
    await deleteBucketCompletely(s3, bucket).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it('metadata replaced in place (same ETag, later time) is read anew without a download; unchanged entries are carried as stored', async () => {
    const first = await backup();
    expect(first.code, show(first)).toBe(0);
    const parent = json<Manifest>(first);
    // Listings and HEAD answers give whole seconds: the replacement must be at least a second later to be seen.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await s3.send(
      new CopyObjectCommand({ Bucket: bucket, Key: 'b/c.json', CopySource: `${bucket}/b/c.json`, MetadataDirective: 'REPLACE', ContentType: 'application/json', Metadata: { owner: 'ops' } }),
    );

    const second = await backup();
    expect(second.code, show(second)).toBe(0);
    const child = json<Manifest>(second);
    expect(child.parent).toBe(parent.id);
    const details = child.engineDetails as { downloaded: { objects: number } };
    expect(details.downloaded.objects, 'nothing downloaded: the content is the parent’s').toBe(0);

    const before = new Map((await indexEntries<CopyEntry>(location, parent)).map((e) => [e.key, e]));
    const after = new Map((await indexEntries<CopyEntry>(location, child)).map((e) => [e.key, e]));
    expect([...after.keys()].sort()).toEqual(OBJECTS.map((o) => o.key).sort());
    const replaced = after.get('b/c.json')!;
    expect(replaced.contentType).toBe('application/json');
    expect(replaced.metadata).toEqual({ owner: 'ops' });
    expect(replaced.blobs).toEqual(before.get('b/c.json')!.blobs);
    expect(replaced.lastModified > before.get('b/c.json')!.lastModified).toBe(true);
    for (const key of ['a.txt', 'b/d.bin', 'e.txt']) expect(after.get(key), key).toEqual(before.get(key));

    // Nothing changed since: the new index is the parent's, blob for blob.
    const third = await backup();
    expect(third.code, show(third)).toBe(0);
    const again = json<Manifest>(third);
    expect(again.indexes.find((i) => i.name === 'objects')!.blobs).toEqual(child.indexes.find((i) => i.name === 'objects')!.blobs);
  }, 120_000);

  it('a malformed entry in the parent’s index: exit 1 naming the parent snapshot, and no snapshot is written', async () => {
    const good = await backup();
    expect(good.code, show(good)).toBe(0);
    const model = json<Manifest>(good);
    // A parent as a buggy or foreign writer could leave it: same source and mode, an entry whose size is not a number.
    const store = await openStore(location.settings);
    let broken: Manifest;
    try {
      const repo = await Repository.open(store);
      const writer = await repo.beginSnapshot({ engine: 's3', source: model.source });
      const index = writer.openIndex('objects');
      await index.add({ key: 'a.txt', size: 'large', etag: 'x', lastModified: '2026-01-01T00:00:00.000Z' });
      await writer.closeIndex(index);
      broken = await writer.commit({ engineDetails: model.engineDetails });
    } finally {
      await store.close?.();
    }
    const count = await snapshotCount();

    const r = await backup();
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain(`parent snapshot ${broken.id}: a malformed objects entry`);
    expect(r.stderr).toContain('size');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await snapshotCount(), 'no snapshot written').toBe(count);
  }, 120_000);
});
