// Runs the ObjectStore contract over a local folder, MinIO and fake-gcs-server, each in a fresh bucket/folder per run.
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { minioClient, minioStoreSettings } from '../helpers/backends.ts';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';
import { objectStoreContract } from './object-store.contract.ts';

const runId = () => `bak-contract-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

let root = '';
objectStoreContract('local', {
  async setup() {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bak-contract-'));
  },
  settings(sub) {
    // A local store's folder plays the bucket: it exists before the store is used.
    const dir = path.join(root, sub);
    mkdirSync(dir, { recursive: true });
    return { url: pathToFileURL(dir).href };
  },
  // A folder that does not exist plays the missing bucket: bak never creates it behind the operator's back.
  missingBucket: () => ({ url: pathToFileURL(path.join(root, 'no-such-folder')).href }),
  async cleanup() {
    await fs.rm(root, { recursive: true, force: true });
  },
});

let minio: ServersEnv['minio'];
let s3Bucket = '';
let s3Admin: S3Client;
const minioSettings = (bucket: string, prefix: string) => minioStoreSettings(minio, `s3://${bucket}/${prefix}`);
objectStoreContract('MinIO (s3)', {
  async setup() {
    minio = await requireServer('minio');
    s3Bucket = runId();
    s3Admin = minioClient(minio);
    await s3Admin.send(new CreateBucketCommand({ Bucket: s3Bucket }));
    // Versioned like the buckets the s3 engine's version mode reads: deletes leave markers, ifAbsent must still work.
    await s3Admin.send(new PutBucketVersioningCommand({ Bucket: s3Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  },
  settings: (sub) => minioSettings(s3Bucket, `contract/${sub}`),
  missingBucket: () => minioSettings(`${runId()}-missing`, ''),
  wrongCredentials() {
    const secret = 'not-the-secret-4f9a';
    return { settings: { ...minioSettings(s3Bucket, 'contract/main/'), secretAccessKey: secret }, secret };
  },
  unreachable: () => ({ ...minioSettings(s3Bucket, ''), endpoint: 'http://127.0.0.1:1', maxAttempts: 2 }),
  async cleanup() {
    await emptyVersionedBucket(s3Admin, s3Bucket);
    await s3Admin.send(new DeleteBucketCommand({ Bucket: s3Bucket }));
    s3Admin.destroy();
  },
});

let gcs: ServersEnv['gcs'];
let gcsBucket = '';
const gcsSettings = (bucket: string, prefix: string) => ({
  url: `gs://${bucket}/${prefix}`,
  apiEndpoint: gcs.apiEndpoint,
  projectId: gcs.projectId,
});
objectStoreContract('fake-gcs-server (gcs)', {
  async setup() {
    gcs = await requireServer('gcs');
    gcsBucket = runId();
    await new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId }).createBucket(gcsBucket);
  },
  settings: (sub) => gcsSettings(gcsBucket, `contract/${sub}`),
  missingBucket: () => gcsSettings(`${runId()}-missing`, ''),
  // fake-gcs-server accepts any or no credentials, so there is no access-denied case to provoke.
  unreachable: () => ({ ...gcsSettings(gcsBucket, ''), apiEndpoint: 'http://127.0.0.1:1', maxAttempts: 2 }),
  async cleanup() {
    const bucket = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId }).bucket(gcsBucket);
    await bucket.deleteFiles({ force: true });
    await bucket.delete();
  },
});

/** Deletes every version and delete marker, 1,000 per request, so the bucket itself can go. */
async function emptyVersionedBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId! }));
    if (objects.length === 0) return;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
  }
}
