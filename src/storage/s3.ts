import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  assertValidKey,
  connectionErrorCode,
  safeEndpoint,
  untrustedCertificateError,
  StorageError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  joinedBody,
  type PutBody,
  type StoreInspection,
} from './object-store.ts';
import type { StoreSettings } from './open.ts';
import { LEAN_CONNECTIONS } from './http-exchange.ts';
import { LeanS3 } from './s3-lean.ts';
import { readAll } from '../util/push-source.ts';

/** An S3 client as bak configures it for AWS and S3-compatible servers, and its endpoint fit for messages. */
export function createS3Client(settings: StoreSettings): { client: S3Client; endpoint: string } {
  const region = settings.region ?? 'us-east-1';
  const endpoint = settings.endpoint ? safeEndpoint(settings.endpoint) : `https://s3.${region}.amazonaws.com`;
  const config: S3ClientConfig = {
    region,
    forcePathStyle: settings.forcePathStyle ?? false,
    maxAttempts: settings.maxAttempts ?? 3,
    // A dead endpoint should fail in seconds, not hang; no socket idle limit so slow large transfers survive.
    requestHandler: { connectionTimeout: 10_000 },
  };
  if (settings.endpoint) config.endpoint = settings.endpoint;
  if (settings.accessKeyId && settings.secretAccessKey) {
    config.credentials = {
      accessKeyId: settings.accessKeyId,
      secretAccessKey: settings.secretAccessKey,
      ...(settings.sessionToken ? { sessionToken: settings.sessionToken } : {}),
    };
  }
  if (settings.checksums === 'when-required') {
    // Servers like Ceph, R2 and older MinIO reject the CRC checksums and aws-chunked trailers newer SDKs send by default.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return { client: new S3Client(config), endpoint };
}

/** 8 MiB parts: few requests for big objects, and at most queueSize × 8 MiB held in memory while uploading. */
const PART_SIZE = 8 * 1024 * 1024;
const PAGE_SIZE = 1000;

/** S3 and S3-compatible servers (MinIO, Ceph, R2 …). Keys live under `prefix` ('' or ending in '/'). */
export class S3Store implements ObjectStore {
  readonly description: string;
  readonly atomicCreateOnly = true;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly endpoint: string;
  private readonly queueSize: number;
  /** PUTs of blobs in memory and whole-object reads skip the SDK's middleware (s3-lean.ts); the SDK does the rest. */
  private readonly lean: LeanS3;

  constructor(bucket: string, prefix: string, settings: StoreSettings) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.queueSize = settings.uploadConcurrency ?? 4;
    const { client, endpoint } = createS3Client(settings);
    this.client = client;
    this.endpoint = endpoint;
    this.lean = new LeanS3(client, { endpoint: settings.endpoint, forcePathStyle: settings.forcePathStyle, connections: LEAN_CONNECTIONS });
    this.description = `s3://${bucket}/${prefix} (endpoint ${this.endpoint})`;
  }

  private keyOf(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  async checkAccess(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // HeadBucket has no body, so a missing bucket shows only as a bare 404.
      throw this.mapError(err, undefined, 'check access to', { notFound: 'bucket-missing' });
    }
  }

  async put(key: string, put: PutBody, options: PutOptions = {}): Promise<{ created: boolean }> {
    const Key = this.keyOf(key);
    if (Buffer.isBuffer(put) || Array.isArray(put)) {
      const fast = await this.lean.put(this.bucket, Key, Buffer.isBuffer(put) ? [put] : put, options);
      if (fast) return fast;
    }
    const body = joinedBody(put);
    const params = {
      Bucket: this.bucket,
      Key,
      ...(options.ifAbsent ? { IfNoneMatch: '*' } : {}),
    };
    try {
      if (Buffer.isBuffer(body)) {
        await this.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }));
      } else {
        // Upload reads the stream part by part (multipart above 8 MiB), so a stream is never held whole.
        // Loaded here: an S3 source backed up into a local repository never streams into S3.
        const { Upload } = await import('@aws-sdk/lib-storage');
        const upload = new Upload({
          client: this.client,
          params: { ...params, Body: body, ...(options.contentLength !== undefined ? { ContentLength: options.contentLength } : {}) },
          partSize: PART_SIZE,
          queueSize: this.queueSize,
        });
        await upload.done();
      }
      return { created: true };
    } catch (err) {
      if (options.ifAbsent && isPreconditionFailure(err)) return { created: false };
      throw this.mapError(err, key, 'put');
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      // In Node the body is an http.IncomingMessage, i.e. a Readable.
      return out.Body as Readable;
    } catch (err) {
      throw this.mapError(err, key, 'get', { notFound: 'not-found' });
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const fast = await this.lean.get(this.bucket, this.keyOf(key));
    if (fast) {
      try {
        return await readAll(fast.body, fast.length);
      } catch {
        // cut off mid-body: the SDK reads it again below, and maps what fails there
      }
    }
    const stream = await this.get(key);
    try {
      return await buffer(stream);
    } catch (err) {
      throw this.mapError(err, key, 'read');
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return { key, size: out.ContentLength ?? 0, modified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.mapError(err, key, 'head');
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            MaxKeys: PAGE_SIZE,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw this.mapError(err, undefined, `list ${JSON.stringify(prefix)} in`, { notFound: 'bucket-missing' });
      }
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined) continue;
        yield { key: obj.Key.slice(this.prefix.length), size: obj.Size ?? 0, modified: obj.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    try {
      // S3 DeleteObject already succeeds for a missing key.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
    } catch (err) {
      if (statusOf(err) === 404 && errorName(err) !== 'NoSuchBucket') return;
      throw this.mapError(err, key, 'delete');
    }
  }

  /** Public access, versioning, object lock and the server's clock, for `bak doctor` (s3-inspect.ts). */
  async inspect(): Promise<StoreInspection> {
    const { inspectS3Bucket } = await import('./s3-inspect.ts');
    return inspectS3Bucket(this.client, this.bucket, this.endpoint);
  }

  async close(): Promise<void> {
    await this.lean.close();
    this.client.destroy();
  }

  private mapError(err: unknown, key: string | undefined, action: string, opts: { notFound?: 'not-found' | 'bucket-missing' } = {}): StorageError {
    const where = key === undefined ? `s3://${this.bucket}/${this.prefix}` : `s3://${this.bucket}/${this.prefix}${key}`;
    return mapS3Error(err, { bucket: this.bucket, where, endpoint: this.endpoint, action, ...opts });
  }

}

/** Where the AWS SDK's default chain looked for credentials, as this process is configured (for the message). */
function credentialSources(): string {
  const env = process.env;
  const home = env.HOME ?? '~';
  return [
    'the config and job options',
    'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY',
    `the profile ${JSON.stringify(env.AWS_PROFILE || 'default')} in ${env.AWS_SHARED_CREDENTIALS_FILE || `${home}/.aws/credentials`} and ${env.AWS_CONFIG_FILE || `${home}/.aws/config`} (SSO and credential_process included)`,
    'a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)',
    'the container and instance metadata services',
  ].join(', ');
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** 412 is the standard answer to If-None-Match: *; 409 ConditionalRequestConflict comes when a concurrent create races. */
function isPreconditionFailure(err: unknown): boolean {
  const name = errorName(err);
  const status = statusOf(err);
  return status === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict';
}

/** Maps an S3 SDK error to a StorageError whose message names the bucket or key and the endpoint. */
export function mapS3Error(
  err: unknown,
  opts: { bucket: string; where: string; endpoint: string; action: string; notFound?: 'not-found' | 'bucket-missing' },
): StorageError {
  if (err instanceof StorageError) return err;
  const { where, action } = opts;
  const via = `(endpoint ${opts.endpoint})`;
  const name = errorName(err);
  const status = statusOf(err);
  const untrusted = untrustedCertificateError(err, `${action} ${where}`, opts.endpoint);
  if (untrusted) return untrusted;
  const conn = connectionErrorCode(err);
  if (conn) {
    return new StorageError('unreachable', `cannot ${action} ${where}: S3 endpoint ${opts.endpoint} is unreachable (${conn})`, {
      cause: err,
      hint: 'check the endpoint URL and that the server is running',
    });
  }
  if (name === 'NoSuchBucket' || (opts.notFound === 'bucket-missing' && status === 404)) {
    return new StorageError('bucket-missing', `cannot ${action} ${where}: bucket '${opts.bucket}' does not exist ${via}`, { cause: err });
  }
  if (name === 'NoSuchKey' || (opts.notFound === 'not-found' && status === 404)) {
    return new StorageError('not-found', `not found: ${where} ${via}`, { cause: err });
  }
  if (name === 'CredentialsProviderError') {
    return new StorageError('access-denied', `cannot ${action} ${where}: no AWS credentials were found (looked in ${credentialSources()})`, {
      cause: err,
      hint: 'give the job or repository accessKeyId and secretAccessKey (as secret references), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE',
    });
  }
  if (
    status === 403 ||
    status === 401 ||
    name === 'AccessDenied' ||
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'Forbidden'
  ) {
    const why = name && name !== 'Unknown' && name !== 'Forbidden' ? name : `HTTP ${status ?? 403}`;
    return new StorageError('access-denied', `access denied: cannot ${action} ${where} ${via}: ${why}`, {
      cause: err,
      hint: 'check the access key, secret and bucket policy',
    });
  }
  if (status === 412) {
    return new StorageError('precondition-failed', `precondition failed: cannot ${action} ${where} ${via}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError('other', `cannot ${action} ${where} ${via}: ${name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${message}`, {
    cause: err,
  });
}
