import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Pool } from 'undici';
import { discard, readAll, type PushSource } from '../util/push-source.ts';
import { exchange, leanPool } from './http-exchange.ts';
import { PlainHttpClient } from './plain-http.ts';
import { parseListPage, type ListedPage } from './s3-list-page.ts';

/**
 * The hot S3 requests without the SDK's middleware: GET of a whole object, one ListObjectsV2 page, and PUT of a
 * blob held in memory, signed by @smithy/signature-v4 (the SDK's own signer) with the SDK client's credential
 * provider (refreshed when they expire) and region. PUTs (and answers plain-http.ts cannot frame) go over undici,
 * one keep-alive pool per origin; GETs over http and https through plain-http.ts (measured there).
 *
 * Why: the SDK's stack (schema serde, endpoint rules, retry, checksums, user agent) costs ~1.0 ms of CPU per
 * PutObject against ~0.4 ms here (5,000 PUTs of 20 KiB to MinIO, 16 at once), and ~0.8 ms per GetObject; with two
 * cores shared with the server that was a backup of many small objects or segments at the pace of the SDK.
 *
 * Only the plain case is handled here: any error before an answer, and any answer this does not expect, resolves
 * undefined and the caller repeats the request through the SDK, which retries, follows redirects and other
 * regions, corrects clock skew and maps the error.
 */
export interface LeanAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Pipe it or destroy it: an unread body holds its connection. */
  body: PushSource;
  length: number;
}

export interface LeanOptions {
  /** The S3 endpoint (MinIO, Ceph …); AWS's regional endpoint when absent. */
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  /** Connections per origin: the requests the caller has in flight at once. */
  connections: number;
}

const UNSIGNED = 'UNSIGNED-PAYLOAD';
/** No answer head within this: the SDK tries instead (and fails as it is configured to). */
const ANSWER_TIMEOUT_MS = 10_000;

// The signer keys two HMACs per request: one by the secret key (to look its signing key up in its cache), one by the
// day's signing key. Keyed by a string or bytes, node:crypto converts the key on every call (~9 µs, five times the
// HMAC itself; 0.45 s of CPU in 10,000 GETs): the keys seen last are kept as KeyObjects.
const keyObjects = new Map<string, KeyObject>();

function hmacKey(secret: string | ArrayBuffer | ArrayBufferView): KeyObject {
  const bytes = bytesOf(secret);
  const id = typeof bytes === 'string' ? `s:${bytes}` : `b:${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
  let key = keyObjects.get(id);
  if (!key) {
    if (keyObjects.size >= 16) keyObjects.clear(); // a day's derivation and the per-request keys of a few credentials
    key = createSecretKey(typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
    keyObjects.set(id, key);
  }
  return key;
}

/** SHA-256 and HMAC-SHA-256 from node:crypto in the shape the signer takes. */
class NodeSha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', hmacKey(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

function bytesOf(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/** S3's URI encoding: every UTF-8 byte percent-encoded but the unreserved set (RFC 3986). */
function encodeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** S3's URI encoding of a key in a path: as encodeUri, but '/' stays. */
export function encodeKey(key: string): string {
  return encodeUri(key).replace(/%2F/g, '/');
}

/** Virtual-hosted addressing needs a DNS-safe bucket name without dots (TLS wildcard certificates). */
function pathStyleFor(bucket: string, forcePathStyle: boolean): boolean {
  return forcePathStyle || !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket);
}

/** The SDK's resolved config fields this reuses, so credentials (with refresh) and region come from one place. */
interface ResolvedConfig {
  credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined }>;
  region: () => Promise<string>;
}

interface BucketBase {
  origin: string;
  host: string;
  hostname: string;
  port: string;
  /** '' for a virtual-hosted bucket at the root, else the path the keys go under (no trailing slash). */
  path: string;
}

export class LeanS3 {
  readonly #options: LeanOptions;
  readonly #config: ResolvedConfig;
  readonly #signer: SignatureV4;
  readonly #pools = new Map<string, Pool>();
  readonly #bases = new Map<string, BucketBase>();
  readonly #plain = new Map<string, PlainHttpClient>();
  #region: string | undefined;

  constructor(client: S3Client, options: LeanOptions) {
    this.#options = options;
    this.#config = client.config as unknown as ResolvedConfig;
    this.#signer = new SignatureV4({ credentials: this.#config.credentials, region: this.#config.region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  }

  /** A GET of a whole object answered 200, or undefined when the SDK should ask instead. */
  async get(bucket: string, key: string): Promise<LeanAnswer | undefined> {
    return this.#expect200(await this.#send('GET', bucket, key, {}));
  }

  /** One page of ListObjectsV2 (up to 1,000 keys), or undefined when the SDK should ask instead (and map the error). */
  async list(bucket: string, prefix: string, from: { token?: string | undefined; startAfter?: string | undefined }): Promise<ListedPage | undefined> {
    const query: Record<string, string> = { 'list-type': '2', 'max-keys': '1000', prefix };
    if (from.token !== undefined) query['continuation-token'] = from.token;
    else if (from.startAfter !== undefined) query['start-after'] = from.startAfter;
    const answer = this.#expect200(await this.#send('GET', bucket, undefined, query));
    if (!answer) return undefined;
    try {
      return parseListPage((await readAll(answer.body, answer.length)).toString('utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * A PUT of content in memory (its pieces sent in order, never joined), create-only with `ifAbsent`:
   * `created` false when the server says it exists already (412); undefined when the SDK should do it instead.
   */
  async put(bucket: string, key: string, parts: readonly Buffer[], options: { ifAbsent?: boolean } = {}): Promise<{ created: boolean } | undefined> {
    const hash = createHash('sha256');
    let length = 0;
    for (const part of parts) {
      hash.update(part);
      length += part.length;
    }
    // The payload's hash is signed: the server checks what arrived against it.
    const headers: Record<string, string> = { 'content-length': String(length), 'x-amz-content-sha256': hash.digest('hex') };
    if (options.ifAbsent) headers['if-none-match'] = '*';
    const answer = await this.#send('PUT', bucket, key, {}, headers, parts);
    if (!answer) return undefined;
    discard(answer.body);
    if (answer.status === 200) return { created: true };
    if (options.ifAbsent && answer.status === 412) return { created: false };
    return undefined;
  }

  /** A signed request; its answer whatever the status, or undefined on any failure before one. */
  async #send(method: 'GET' | 'PUT', bucket: string, key: string | undefined, query: Record<string, string>, headers: Record<string, string> = {}, body?: readonly Buffer[]): Promise<LeanAnswer | undefined> {
    try {
      this.#region ??= await this.#config.region();
      const { origin, host, hostname, port, path: bucketPath } = this.#bucketBase(bucket, this.#region);
      // Built by hand: URL would resolve `.`/`..` segments, which are valid in keys.
      const path = key === undefined ? bucketPath || '/' : `${bucketPath}/${encodeKey(key)}`;
      const signed = await this.#signer.sign({
        method,
        protocol: origin.startsWith('https:') ? 'https:' : 'http:',
        hostname,
        ...(port ? { port: Number(port) } : {}),
        path,
        query,
        headers: { host, 'x-amz-content-sha256': UNSIGNED, ...headers },
      });
      const search = Object.keys(query)
        .sort()
        .map((name) => `${encodeUri(name)}=${encodeUri(query[name]!)}`)
        .join('&');
      const target = search ? `${path}?${search}` : path;
      if (method === 'GET') {
        // GETs: the hand-written client (plain-http.ts, why there); an answer it cannot frame (chunked) is asked
        // again through undici below.
        const plain = await this.#plainFor(origin).get(target, signed.headers as Record<string, string>);
        if (plain !== 'unframed') return plain;
      }
      const answer = await exchange(this.#poolFor(origin), {
        method,
        path: target,
        headers: signed.headers,
        // undici sends an iterable's pieces in turn (its types omit it): content stored as [tag, content] is never joined.
        ...(body ? { body: body.length === 1 ? body[0]! : (body as unknown as Buffer) } : {}),
      });
      return { ...answer, length: Number(answer.headers['content-length'] ?? 0) };
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
    for (const client of this.#plain.values()) client.close();
    this.#plain.clear();
  }

  #expect200(answer: LeanAnswer | undefined): LeanAnswer | undefined {
    if (answer && answer.status !== 200) {
      discard(answer.body);
      return undefined;
    }
    return answer;
  }

  #plainFor(origin: string): PlainHttpClient {
    let client = this.#plain.get(origin);
    if (!client) {
      const url = new URL(origin);
      const secure = url.protocol === 'https:';
      client = new PlainHttpClient({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || (secure ? 443 : 80)), maxSockets: this.#options.connections, answerTimeoutMs: ANSWER_TIMEOUT_MS, tls: secure });
      this.#plain.set(origin, client);
    }
    return client;
  }

  #poolFor(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = leanPool(origin, this.#options.connections);
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /**
   * Where a bucket's requests go: its origin (a virtual-hosted bucket is an origin of its own), host header and path
   * prefix; worked out once per bucket.
   */
  #bucketBase(bucket: string, region: string): BucketBase {
    let found = this.#bases.get(bucket);
    if (!found) {
      const base = new URL(this.#options.endpoint ?? `https://s3.${region}.amazonaws.com`);
      const basePath = base.pathname.replace(/\/+$/, '');
      const virtual = !pathStyleFor(bucket, this.#options.forcePathStyle ?? false) && isIP(base.hostname.replace(/^\[|\]$/g, '')) === 0;
      if (virtual) base.hostname = `${bucket}.${base.hostname}`;
      found = { origin: base.origin, host: base.host, hostname: base.hostname, port: base.port, path: virtual ? basePath : `${basePath}/${bucket}` };
      this.#bases.set(bucket, found);
    }
    return found;
  }
}
