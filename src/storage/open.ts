import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { LocalStore } from './local.ts';
import { StorageError, type ObjectStore } from './object-store.ts';

/** Settings for one storage location, already resolved (secrets read from the environment). */
export interface StoreSettings {
  url: string;
  /** S3: custom endpoint (MinIO, Ceph, R2 …). GCS: use `apiEndpoint`. */
  endpoint?: string | undefined;
  region?: string | undefined;
  forcePathStyle?: boolean | undefined;
  /** S3 checksum mode; `when-required` for MinIO/Ceph/R2-style servers. */
  checksums?: 'when-supported' | 'when-required' | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  sessionToken?: string | undefined;
  /** GCS only. */
  apiEndpoint?: string | undefined;
  projectId?: string | undefined;
  keyFilename?: string | undefined;
  /** Parallel parts per multipart/resumable upload. */
  uploadConcurrency?: number | undefined;
  /** Attempts per request including the first (SDK retries); 1 turns retries off. */
  maxAttempts?: number | undefined;
}

export type ParsedStoreUrl =
  | { scheme: 'file'; root: string }
  | { scheme: 's3'; bucket: string; prefix: string }
  | { scheme: 'gs'; bucket: string; prefix: string };

/** `file:///abs`, a plain path, `s3://bucket/prefix` or `gs://bucket/prefix`. */
export function parseStoreUrl(url: string): ParsedStoreUrl {
  if (url.startsWith('file://')) {
    try {
      return { scheme: 'file', root: fileURLToPath(url) };
    } catch (err) {
      throw new StorageError('invalid-url', `invalid file URL ${JSON.stringify(url)}: use file:///absolute/path`, { cause: err });
    }
  }
  const match = /^(s3|gs):\/\/([^/]+)\/?(.*)$/.exec(url);
  if (match) {
    const scheme = match[1] as 's3' | 'gs';
    const bucket = match[2]!;
    const prefix = normalizePrefix(match[3] ?? '');
    return { scheme, bucket, prefix };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StorageError('invalid-url', `unsupported repository URL ${JSON.stringify(url)}: use file:///path, s3://bucket/prefix or gs://bucket/prefix`);
  }
  return { scheme: 'file', root: path.resolve(url) };
}

function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

export async function openStore(settings: StoreSettings): Promise<ObjectStore> {
  const parsed = parseStoreUrl(settings.url);
  switch (parsed.scheme) {
    case 'file':
      return new LocalStore(parsed.root);
    case 's3': {
      const { S3Store } = await import('./s3.ts');
      return new S3Store(parsed.bucket, parsed.prefix, settings);
    }
    case 'gs': {
      const { GcsStore } = await import('./gcs.ts');
      return new GcsStore(parsed.bucket, parsed.prefix, settings);
    }
  }
}
