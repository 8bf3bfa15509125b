// Source buckets for the S3 engine tests and bench: awkward keys, every header bak must keep, tags, a
// streamed large object; a snapshot of a bucket's state for object-by-object comparisons; complete cleanup.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { expect } from 'vitest';
import type { ServersEnv } from './servers.ts';
import { mapLimit } from '../../src/util/concurrency.ts';
import { readIndex } from '../../src/repository/index-blobs.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import type { TestLocation } from './backends.ts';

export type Minio = ServersEnv['minio'];

/** Environment for a `bak` child process: the AWS SDK default chain picks these up for the source / target bucket. */
export function awsEnv(minio: Pick<Minio, 'accessKeyId' | 'secretAccessKey' | 'region'>, secretAccessKey = minio.secretAccessKey): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: minio.region,
    // Never let a developer's ~/.aws profile leak into a test.
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** The S3 flags of `bak backup` / `bak restore` for a MinIO endpoint. */
export function s3Flags(endpoint: string): string[] {
  return ['--endpoint', endpoint, '--path-style', '--checksums', 'when-required'];
}

export async function createBucket(client: S3Client, bucket: string, options: { versioned?: boolean } = {}): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  if (options.versioned) {
    await client.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  }
}

/** One object of a fixture: its key relative to the prefix, its content and the headers it is written with. */
export interface FixtureObject {
  key: string;
  body: Buffer;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  /** Upload as multipart (5 MiB parts), so its ETag is `<md5 of md5s>-<parts>`, not the content's MD5. */
  multipart?: boolean;
}

/**
 * Keys S3 allows but this MinIO refuses (XMinioInvalidObjectName / XMinioInvalidResourceName): a `//`, and `.` or
 * `..` as a whole path segment. They cannot be put into a MinIO source bucket, so the round trips cover the
 * nearest keys MinIO accepts (`..` and `.` inside segments, a `...` segment); the suite asserts MinIO's refusal
 * so this stays documented.
 */
export const MINIO_REJECTED_KEYS = ['a//b', 'x/../y', 'x/./y', 'double//slash/'];

const MiB = 1024 * 1024;

/** A deterministic byte pattern (fast, distinct per seed), for objects whose content must differ but need not be random. */
export function patternBytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off, 0, Math.min(block.length, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Keys with unicode (NFC and NFD of the same letter: two keys), spaces, dots, URL-special characters, trailing slashes; headers; tags. */
export function awkwardObjects(): FixtureObject[] {
  const text = (s: string) => Buffer.from(s, 'utf8');
  return [
    { key: 'plain.txt', body: text('hello, bucket\n') },
    { key: 'empty', body: Buffer.alloc(0) },
    { key: 'dir/', body: Buffer.alloc(0) },
    { key: 'dir/sub/', body: Buffer.alloc(0) },
    { key: 'dir/file-next-to-marker', body: text('beside a directory marker') },
    { key: 'trailing/slash/with-content/', body: text('a "folder" object that has content') },
    { key: 'with space/and  two  spaces.txt', body: text('spaces') },
    { key: ' leading space', body: text('leading space') },
    { key: 'space before /slash', body: text('space before slash') },
    { key: 'trailing space ', body: text('trailing space') },
    { key: 'unicode/é ü ñ 日本語 🎉.txt', body: text('unicode: é ü ñ 日本語 🎉') },
    { key: 'unicode/\u00e9', body: text('NFC e-acute') },
    { key: 'unicode/e\u0301', body: text('NFD e + combining acute') },
    { key: 'dots/..x/y..', body: text('dots inside segments') },
    { key: 'dots/.../three', body: text('a ... segment') },
    { key: 'dots/.hidden', body: text('hidden') },
    { key: 'dots/ends..', body: text('ends with two dots') },
    { key: 'specials/q?x=1&y#z', body: text('query and fragment characters') },
    { key: 'specials/pct%20enc%2F..%2F', body: text('percent-encoded-looking') },
    { key: 'specials/plus+sign=eq;semi,comma', body: text('plus') },
    { key: 'specials/back\\slash', body: text('backslash') },
    { key: 'specials/<angle>&amp"quote\'', body: text('xml specials') },
    { key: 'nested/deep/a/b/c/d/e/f.bin', body: patternBytes(100 * 1024 + 7, 'nested') },
    {
      key: 'meta/all-headers.txt.gz',
      body: gzipSync(text('gzip-encoded text, stored as is\n'.repeat(50))),
      contentType: 'text/plain; charset=utf-8',
      contentEncoding: 'gzip',
      cacheControl: 'max-age=3600, private',
      contentDisposition: `attachment; filename="report 1.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`,
      contentLanguage: 'de-CH',
      metadata: { owner: 'team-a', 'mixed-case': 'Value With  Spaces', empty: '', encoded: '=?UTF-8?B?w6nDqQ==?=' },
      tags: { env: 'prod', 'with space': 'x y', empty: '', 'k.2': 'a+b=c:/@' },
    },
    { key: 'meta/type-only.json', body: text('{"a":1}'), contentType: 'application/json' },
    { key: 'meta/tags-only', body: text('tagged'), tags: { only: 'tags' } },
    { key: 'meta/metadata-only', body: text('with user metadata'), metadata: { 'x-custom': '42', another: 'value' } },
    { key: 'multipart/6mib.bin', body: patternBytes(6 * MiB + 123, 'multipart'), contentType: 'application/x-test', metadata: { parts: '2' }, multipart: true },
  ];
}

function tagging(tags: Record<string, string> | undefined): string | undefined {
  if (!tags || Object.keys(tags).length === 0) return undefined;
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

export function joinKey(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix.replace(/\/$/, '')}/${key}`;
}

/** Writes one fixture object under `prefix`; returns the version id in a versioned bucket. */
export async function putFixtureObject(client: S3Client, bucket: string, prefix: string, obj: FixtureObject): Promise<string | undefined> {
  const params = {
    Bucket: bucket,
    Key: joinKey(prefix, obj.key),
    Body: obj.body,
    ContentType: obj.contentType,
    ContentEncoding: obj.contentEncoding,
    CacheControl: obj.cacheControl,
    ContentDisposition: obj.contentDisposition,
    ContentLanguage: obj.contentLanguage,
    Metadata: obj.metadata,
    Tagging: tagging(obj.tags),
  };
  if (obj.multipart) {
    const upload = new Upload({ client, params, partSize: 5 * MiB, queueSize: 2 });
    const done = await upload.done();
    return done.VersionId;
  }
  const out = await client.send(new PutObjectCommand({ ...params, ContentLength: obj.body.length }));
  return out.VersionId;
}

/** Fills `bucket` under `prefix` with the given objects (default: the awkward ones). */
export async function fillBucket(client: S3Client, bucket: string, prefix = '', objects: FixtureObject[] = awkwardObjects()): Promise<FixtureObject[]> {
  await mapLimit(objects, 8, (obj) => putFixtureObject(client, bucket, prefix, obj));
  return objects;
}

/**
 * Streams `bytes` pseudo-random bytes into `bucket/key` as a multipart upload, never holding more than a few parts in
 * memory; returns the content's sha256.
 */
export async function putLargeObject(client: S3Client, bucket: string, key: string, bytes: number, options: { partSize?: number } = {}): Promise<{ sha256: string; etag: string }> {
  const hash = createHash('sha256');
  const CHUNK = MiB;
  let sent = 0;
  const body = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= bytes) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(CHUNK, bytes - sent));
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: body, ContentType: 'application/octet-stream', Metadata: { large: 'yes' } },
    partSize: options.partSize ?? 16 * MiB,
    queueSize: 2,
  });
  const done = await upload.done();
  return { sha256: hash.digest('hex'), etag: (done.ETag ?? '').replace(/"/g, '') };
}

/** What bak must keep of one object; keys of a BucketState are relative to the prefix compared. */
export interface ObjectState {
  size: number;
  etag: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  cacheControl: string | undefined;
  contentDisposition: string | undefined;
  contentLanguage: string | undefined;
  metadata: Record<string, string>;
  tags: Record<string, string>;
  sha256: string;
}
export type BucketState = Map<string, ObjectState>;

/** Every key under `prefix` (all pages), in listing order. */
export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<Array<{ key: string; size: number; etag: string }>> {
  const out: Array<{ key: string; size: number; etag: string }> = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix === '' ? undefined : prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, etag: unquote(o.ETag) });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}

/**
 * The state of every object under `prefix` (a folder: pass it with or without the trailing slash), keyed by the key
 * relative to it: size, ETag, the headers, user metadata, tags and the sha256 of the content (streamed, so a large
 * object is fine).
 */
export async function bucketState(client: S3Client, bucket: string, prefix = ''): Promise<BucketState> {
  const folder = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const keys = await listKeys(client, bucket, folder);
  const state: BucketState = new Map();
  const entries = await mapLimit(keys, 8, async ({ key }) => {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of got.Body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    const s: ObjectState = {
      size,
      etag: unquote(got.ETag),
      contentType: got.ContentType,
      contentEncoding: got.ContentEncoding,
      cacheControl: got.CacheControl,
      contentDisposition: got.ContentDisposition,
      contentLanguage: got.ContentLanguage,
      metadata: { ...(got.Metadata ?? {}) },
      tags: Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key!, t.Value ?? ''])),
      sha256: hash.digest('hex'),
    };
    return [key.slice(folder.length), s] as const;
  });
  for (const [k, s] of entries) state.set(k, s);
  return state;
}

/**
 * Expects `got` to hold exactly the keys of `want`, each object equal: size, sha256, headers, user metadata, tags and
 * ETag. A multipart ETag (`…-N`) depends on the part size the writer chose (and a server-side copy turns it into a
 * single-part one), so ETags are compared only when both sides are single-part.
 */
export function expectSameObjects(got: BucketState, want: BucketState, label: string): void {
  expect([...got.keys()].sort(), `${label}: keys`).toEqual([...want.keys()].sort());
  for (const [key, w] of want) {
    const g = got.get(key)!;
    const multipart = g.etag.includes('-') || w.etag.includes('-');
    const strip = (o: ObjectState) => (multipart ? { ...o, etag: '(multipart)' } : o);
    expect(strip(g), `${label}: object ${JSON.stringify(key)}`).toEqual(strip(w));
  }
}

export interface VersionInfo {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
  size?: number;
  etag?: string;
}

/** Every version and delete marker under `prefix`, sorted by key then version id. */
export async function listVersions(client: S3Client, bucket: string, prefix = ''): Promise<VersionInfo[]> {
  const out: VersionInfo[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix === '' ? undefined : prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
    );
    for (const v of page.Versions ?? []) {
      out.push({ key: v.Key!, versionId: v.VersionId!, isLatest: v.IsLatest ?? false, deleteMarker: false, size: v.Size ?? 0, etag: unquote(v.ETag) });
    }
    for (const m of page.DeleteMarkers ?? []) out.push({ key: m.Key!, versionId: m.VersionId!, isLatest: m.IsLatest ?? false, deleteMarker: true });
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.versionId < b.versionId ? -1 : a.versionId > b.versionId ? 1 : 0));
}

/** Deletes every version, delete marker and object of a bucket (versioned or not), then the bucket. Missing bucket: no error. */
export async function deleteBucketCompletely(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    let versions: VersionInfo[];
    try {
      versions = await listVersions(client, bucket);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchBucket') return;
      throw err;
    }
    // An unversioned bucket lists its objects as versions with id "null" too; plain keys cover any server that does not.
    const ids: ObjectIdentifier[] = versions.map((v) => ({ Key: v.key, VersionId: v.versionId }));
    if (ids.length === 0) for (const o of await listKeys(client, bucket)) ids.push({ Key: o.key });
    if (ids.length === 0) break;
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000);
      try {
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
      } catch (err) {
        // A key XML 1.0 cannot carry (a control character) fails the batch request: delete those one by one.
        if ((err as { name?: string }).name !== 'MalformedXML') throw err;
        await mapLimit(batch, 8, (id) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: id.Key, VersionId: id.VersionId })));
      }
    }
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}


export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A free loopback TCP port (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A second, private MinIO on its own loopback port and data folder (same credentials as the shared one), so a test
 * can kill it, or serve https with a self-signed certificate made for it (`tls`). Never touches the shared server.
 */
export interface PrivateMinio {
  endpoint: string;
  port: number;
  /** With `tls`: the self-signed certificate (PEM) that clients must trust, e.g. through NODE_EXTRA_CA_CERTS. */
  caFile?: string;
  process: ChildProcess;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<void>;
  /** Kills it if still running and removes its data folder. */
  cleanup(): Promise<void>;
}

export async function startPrivateMinio(shared: Minio, options: { tls?: boolean } = {}): Promise<PrivateMinio> {
  if (!shared.bin) throw new Error('env.json has no minio.bin: restart the test servers with bash scripts/servers/start.sh');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bak-private-minio-'));
  const port = await freePort();
  const consolePort = await freePort();
  const certsDir = path.join(dataDir, 'certs');
  if (options.tls) await makeSelfSignedCertificate(certsDir);
  const tlsArgs = options.tls ? ['--certs-dir', certsDir] : [];
  const child = spawn(shared.bin, ['server', '--quiet', ...tlsArgs, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, path.join(dataDir, 'data')], {
    env: { ...process.env, MINIO_ROOT_USER: shared.accessKeyId, MINIO_ROOT_PASSWORD: shared.secretAccessKey, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const caFile = options.tls ? path.join(certsDir, 'public.crt') : undefined;
  const ca = caFile ? await readFile(caFile, 'utf8') : undefined;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`private minio exited with ${child.exitCode}: ${stderr}`);
    try {
      if (await healthy(`${endpoint}/minio/health/ready`, ca)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`private minio did not become ready on ${endpoint} within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    endpoint,
    port,
    ...(caFile ? { caFile } : {}),
    process: child,
    kill,
    cleanup: async () => {
      await kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A certificate for 127.0.0.1 signed by itself, as MinIO wants it in --certs-dir (public.crt, private.key). */
async function makeSelfSignedCertificate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1'];
  args.push('-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'private.key'), '-out', path.join(dir, 'public.crt'));
  await promisify(execFile)('openssl', args).catch((err: unknown) => {
    throw new Error(`openssl could not make a test certificate (apt-get install openssl): ${(err as Error).message}`);
  });
}

/** Whether a GET of `url` answers 2xx (https trusting `ca`). */
function healthy(url: string, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('error', reject);
  });
}

/**
 * A TCP relay in front of an S3 endpoint that counts object GETs (GET requests whose path names a key, not a listing)
 * as they pass, so a test can act after the first few downloads started. `close()` stops it and cuts every connection.
 */
export interface GetCountingProxy {
  endpoint: string;
  gets(): number;
  /** Resolves once at least `n` object GETs went through. */
  waitForGets(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startGetCountingProxy(upstreamPort: number, bucket: string): Promise<GetCountingProxy> {
  const sockets = new Set<Socket>();
  let count = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const requestLine = new RegExp(`(?:^|\\r\\n)GET /${bucket}/([^?\\s]+)(?:\\?(\\S*))? HTTP/1\\.1`, 'g');
  const server: Server = createServer((client) => {
    const upstream = createConnection(upstreamPort);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (data: Buffer) => {
      for (const m of data.toString('latin1').matchAll(requestLine)) {
        const query = m[2] ?? '';
        // A GET of a key (optionally ?versionId=…) downloads data; ?tagging, ?acl … do not.
        if (query === '' || /^(x-id=GetObject&?|versionId=[^&]*&?|partNumber=\d+&?)+$/.test(query)) count++;
      }
      for (const w of waiters.filter((w) => count >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    gets: () => count,
    waitForGets: (n, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        if (count >= n) return resolve();
        const timer = setTimeout(() => reject(new Error(`only ${count} object GETs went through the proxy in ${timeoutMs} ms (waiting for ${n})`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An S3 client for another endpoint with the shared MinIO's credentials (e.g. a private MinIO). */
export function clientFor(minio: Minio, endpoint = minio.endpoint, secretAccessKey = minio.secretAccessKey): S3Client {
  return new S3Client({
    endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A key relative to `folder` (entries and plans may carry full or relative keys: the contract says relative for globs). */
export function relative(folder: string, key: string): string {
  return folder !== '' && key.startsWith(folder) ? key.slice(folder.length) : key;
}

/** Every entry of a snapshot's index, read back through the repository, with its count checked against the manifest. */
export async function indexEntries<T>(location: TestLocation, manifest: Manifest, name = 'objects'): Promise<T[]> {
  const ref = manifest.indexes.find((i) => i.name === name);
  if (!ref) throw new Error(`manifest ${manifest.id} has no index "${name}" (indexes: ${manifest.indexes.map((i) => i.name).join(', ')})`);
  const store = await openStore(location.settings);
  try {
    const repo = await Repository.open(store);
    const out: T[] = [];
    for await (const entry of readIndex(repo.blobs, ref)) out.push(entry as T);
    expect(out.length, `index ${name}: count`).toBe(ref.count);
    return out;
  } finally {
    await store.close?.();
  }
}

export { mapLimit };
