import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../helpers/servers.ts';

describe('minio test server', () => {
  const bucket = `bak-smoke-${randomBytes(4).toString('hex')}`;
  const key = 'dir/object.txt';
  let s3: S3Client | undefined;

  beforeAll(async () => {
    const env = await requireServer('minio');
    s3 = new S3Client({
      endpoint: env.endpoint,
      region: env.region,
      forcePathStyle: true,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });

  afterAll(async () => {
    if (!s3) return;
    try {
      const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
      for (const v of [...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])]) {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch {
      // best effort: a bucket left behind has a unique name and harms no later run
    }
    s3.destroy();
  });

  it('keeps every version of an object in a versioned bucket', async () => {
    const client = s3!;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    await client.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const versioning = await client.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    expect(versioning.Status).toBe('Enabled');

    const first = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'first body' }));
    const second = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'second, longer body' }));
    expect(first.VersionId).toBeTruthy();
    expect(second.VersionId).toBeTruthy();
    expect(second.VersionId).not.toBe(first.VersionId);

    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    const versions = listed.Versions ?? [];
    expect(versions).toHaveLength(2);
    expect(versions.map((v) => v.VersionId).sort()).toEqual([first.VersionId, second.VersionId].sort());
    expect(versions.find((v) => v.IsLatest)?.VersionId).toBe(second.VersionId);

    const bodyOf = async (versionId: string | undefined) => {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      return got.Body!.transformToString();
    };
    expect(await bodyOf(first.VersionId)).toBe('first body');
    expect(await bodyOf(second.VersionId)).toBe('second, longer body');
    expect(await bodyOf(undefined)).toBe('second, longer body');
  });
});
