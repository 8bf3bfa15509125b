import { Storage, type Bucket, type GetFilesOptions, type StorageOptions } from '@google-cloud/storage';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer } from 'node:stream/consumers';
import {
  assertValidKey,
  connectionErrorCode,
  untrustedCertificateError,
  safeEndpoint,
  StorageError,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  joinedBody,
  type PutBody,
  type StoreInspection,
} from './object-store.ts';
import { LeanGcs } from './gcs-lean.ts';
import { LEAN_CONNECTIONS } from './http-exchange.ts';
import type { StoreSettings } from './open.ts';

const PAGE_SIZE = 1000;
/** Streams at least this long (or of unknown length) go resumable, so a dropped connection does not restart from zero. */
const RESUMABLE_FROM = 8 * 1024 * 1024;

/** Google Cloud Storage (or fake-gcs-server via `apiEndpoint`). Keys live under `prefix` ('' or ending in '/'). */
export class GcsStore implements ObjectStore {
  readonly description: string;
  readonly atomicCreateOnly = true;
  readonly bucketName: string;
  readonly prefix: string;
  private readonly bucket: Bucket;
  private readonly endpoint: string;
  /** Uploads of blobs in memory and whole-object reads skip the client library's per-request cost (gcs-lean.ts). */
  private readonly lean: LeanGcs;

  constructor(bucket: string, prefix: string, settings: StoreSettings) {
    this.bucketName = bucket;
    this.prefix = prefix;
    this.endpoint = settings.apiEndpoint ? safeEndpoint(settings.apiEndpoint) : 'https://storage.googleapis.com';
    this.description = `gs://${bucket}/${prefix}${settings.apiEndpoint ? ` (endpoint ${this.endpoint})` : ''}`;
    const attempts = settings.maxAttempts ?? 4;
    const options: StorageOptions = {
      // maxRetries: 0 is read as "use the default", so turning retries off needs autoRetry: false.
      retryOptions: attempts <= 1 ? { autoRetry: false } : { maxRetries: attempts - 1 },
    };
    if (settings.apiEndpoint) {
      options.apiEndpoint = settings.apiEndpoint;
      // Emulators take no credentials; a custom endpoint with a key file (private GCS endpoint) still authenticates.
      options.useAuthWithCustomEndpoint = settings.keyFilename !== undefined;
    }
    if (settings.projectId) options.projectId = settings.projectId;
    if (settings.keyFilename) options.keyFilename = settings.keyFilename;
    const storage = new Storage(options);
    this.bucket = storage.bucket(bucket);
    this.lean = new LeanGcs(storage, {
      apiEndpoint: settings.apiEndpoint ?? 'https://storage.googleapis.com',
      authenticate: !settings.apiEndpoint || settings.keyFilename !== undefined,
      connections: LEAN_CONNECTIONS,
    });
  }

  async close(): Promise<void> {
    await this.lean.close();
  }

  /** Public access prevention, IAM, versioning, retention and the server's clock, for `bak doctor` (gcs-inspect.ts). */
  async inspect(): Promise<StoreInspection> {
    const { inspectGcsBucket } = await import('./gcs-inspect.ts');
    return inspectGcsBucket(this.bucket, this.bucketName, this.endpoint);
  }

  private nameOf(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  async checkAccess(): Promise<void> {
    try {
      await this.bucket.getMetadata();
    } catch (err) {
      throw this.mapError(err, undefined, 'check access to', 'bucket-missing');
    }
  }

  async put(key: string, put: PutBody, options: PutOptions = {}): Promise<{ created: boolean }> {
    const name = this.nameOf(key);
    if (options.ifAbsent && (Buffer.isBuffer(put) || Array.isArray(put))) {
      const fast = await this.lean.create(this.bucketName, name, Buffer.isBuffer(put) ? [put] : put);
      if (fast) return fast;
    }
    const body = joinedBody(put);
    const file = this.bucket.file(name);
    // Generation 0 means "no live object": the server makes the create-only check atomically.
    const preconditionOpts = options.ifAbsent ? { ifGenerationMatch: 0 } : {};
    try {
      if (Buffer.isBuffer(body)) {
        await file.save(body, { resumable: false, preconditionOpts });
      } else {
        const resumable = options.contentLength === undefined || options.contentLength >= RESUMABLE_FROM;
        await pipeline(body, file.createWriteStream({ resumable, preconditionOpts }));
      }
      return { created: true };
    } catch (err) {
      if (options.ifAbsent && statusOf(err) === 412) return { created: false };
      // A 404 on upload can only mean the bucket.
      throw this.mapError(err, key, 'put', 'bucket-missing');
    }
  }

  async get(key: string): Promise<Readable> {
    const name = this.nameOf(key);
    let generation: number | undefined;
    try {
      // Ask first so a missing object fails here rather than on the first read (as LocalStore does).
      const [meta] = await this.bucket.file(name).getMetadata();
      generation = meta.generation === undefined ? undefined : Number(meta.generation);
    } catch (err) {
      throw this.mapError(err, key, 'get', 'not-found');
    }
    // Pin the generation just seen, so an overwrite mid-read cannot mix two versions.
    return this.bucket.file(name, generation === undefined ? {} : { generation }).createReadStream();
  }

  async getBuffer(key: string): Promise<Buffer> {
    // One request reads one generation whole, so no pinning is needed here (get() pins for a stream's reads).
    const fast = await this.lean.download(this.bucketName, this.nameOf(key));
    if (fast) return fast;
    const stream = await this.get(key);
    try {
      return await buffer(stream);
    } catch (err) {
      throw this.mapError(err, key, 'read', 'not-found');
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const [meta] = await this.bucket.file(this.nameOf(key)).getMetadata();
      return { key, size: Number(meta.size ?? 0), modified: new Date(meta.updated ?? 0) };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.mapError(err, key, 'head');
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let query: GetFilesOptions | undefined = { prefix: this.prefix + prefix, autoPaginate: false, maxResults: PAGE_SIZE };
    while (query) {
      let files, next;
      try {
        [files, next] = await this.bucket.getFiles(query);
      } catch (err) {
        throw this.mapError(err, undefined, `list ${JSON.stringify(prefix)} in`, 'bucket-missing');
      }
      for (const file of files) {
        const meta = file.metadata;
        yield { key: file.name.slice(this.prefix.length), size: Number(meta.size ?? 0), modified: new Date(meta.updated ?? 0) };
      }
      query = next && 'pageToken' in next && next.pageToken ? (next as GetFilesOptions) : undefined;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.bucket.file(this.nameOf(key)).delete({ ignoreNotFound: true });
    } catch (err) {
      throw this.mapError(err, key, 'delete');
    }
  }

  private mapError(err: unknown, key: string | undefined, action: string, on404?: 'not-found' | 'bucket-missing'): StorageError {
    if (err instanceof StorageError) return err;
    const where = `gs://${this.bucketName}/${this.prefix}${key ?? ''}`;
    const via = `(endpoint ${this.endpoint})`;
    const status = statusOf(err);
    const untrusted = untrustedCertificateError(err, `${action} ${where}`, this.endpoint);
    if (untrusted) return untrusted;
    const conn = connectionErrorCode(err);
    if (conn) {
      return new StorageError('unreachable', `cannot ${action} ${where}: GCS endpoint ${this.endpoint} is unreachable (${conn})`, {
        cause: err,
        hint: 'check the endpoint URL and that the server is running',
      });
    }
    if (status === 404 && on404 === 'bucket-missing') {
      return new StorageError('bucket-missing', `cannot ${action} ${where}: bucket '${this.bucketName}' does not exist ${via}`, { cause: err });
    }
    if (status === 404) return new StorageError('not-found', `not found: ${where} ${via}`, { cause: err });
    if (status === 401 || status === 403) {
      return new StorageError('access-denied', `access denied: cannot ${action} ${where} ${via}`, {
        cause: err,
        hint: 'check the credentials (keyFilename / GOOGLE_APPLICATION_CREDENTIALS) and the bucket IAM roles',
      });
    }
    if (status === 412) return new StorageError('precondition-failed', `precondition failed: cannot ${action} ${where} ${via}`, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    return new StorageError('other', `cannot ${action} ${where} ${via}${status ? ` (HTTP ${status})` : ''}: ${message}`, { cause: err });
  }
}

/** ApiError carries the HTTP status as a numeric `code`; socket errors carry a string code instead. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}
