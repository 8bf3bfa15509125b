import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { StoreSettings } from '../../src/storage/open.ts';
import { requireServer, type ServersEnv } from './servers.ts';

export type BackendName = 'local' | 'minio' | 'gcs';
export const BACKENDS: BackendName[] = ['local', 'minio', 'gcs'];

/** A fresh, empty storage location on one backend, and a cleanup that removes it. */
export interface TestLocation {
  backend: BackendName;
  settings: StoreSettings;
  /** The same settings as a config-file repository entry, secrets passed through env references. */
  configEntry: Record<string, unknown>;
  /** Environment the config entry's secret references need. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** An SDK client for a MinIO; `ca` (PEM) for one that serves https with a certificate of its own. */
export function minioClient(minio: ServersEnv['minio'], options: { ca?: string } = {}): S3Client {
  return new S3Client({
    ...(options.ca ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: options.ca, keepAlive: true, maxSockets: 64 }) }) } : {}),
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Store settings for a MinIO bucket/prefix, the way bak is configured for S3-compatible servers. */
export function minioStoreSettings(minio: ServersEnv['minio'], url: string): StoreSettings {
  return {
    url,
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    checksums: 'when-required',
    accessKeyId: minio.accessKeyId,
    secretAccessKey: minio.secretAccessKey,
  };
}

export async function makeLocation(backend: BackendName, prefix = 'repo'): Promise<TestLocation> {
  switch (backend) {
    case 'local': {
      const dir = await mkdtemp(path.join(tmpdir(), 'bak-test-'));
      await mkdir(path.join(dir, prefix));
      const url = pathToFileURL(path.join(dir, prefix)).href;
      return {
        backend,
        settings: { url },
        configEntry: { url },
        env: {},
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    }
    case 'minio': {
      const minio = await requireServer('minio');
      const bucket = uniqueName('bak-test');
      const client = minioClient(minio);
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const url = `s3://${bucket}/${prefix}`;
      return {
        backend,
        settings: minioStoreSettings(minio, url),
        configEntry: {
          url,
          endpoint: minio.endpoint,
          region: minio.region,
          forcePathStyle: true,
          checksums: 'when-required',
          accessKeyId: { env: 'BAK_TEST_S3_ACCESS_KEY' },
          secretAccessKey: { env: 'BAK_TEST_S3_SECRET_KEY' },
        },
        env: { BAK_TEST_S3_ACCESS_KEY: minio.accessKeyId, BAK_TEST_S3_SECRET_KEY: minio.secretAccessKey },
        cleanup: async () => {
          for (;;) {
            const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
            const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
            if (keys.length === 0) break;
            await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
          }
          await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
          client.destroy();
        },
      };
    }
    case 'gcs': {
      const gcs = await requireServer('gcs');
      const bucket = uniqueName('bak-test');
      const storage = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId, useAuthWithCustomEndpoint: false });
      await storage.createBucket(bucket);
      const url = `gs://${bucket}/${prefix}`;
      return {
        backend,
        settings: { url, apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId },
        configEntry: { url, apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId },
        env: {},
        cleanup: async () => {
          await storage.bucket(bucket).deleteFiles({ force: true }).catch(() => undefined);
          await storage.bucket(bucket).delete().catch(() => undefined);
        },
      };
    }
  }
}
