import type { Readable } from 'node:stream';
import { BakError, ExitCode } from '../errors.ts';

/** What a listing or head returns for one object. */
export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

export interface PutOptions {
  /** Write only if no object has this key yet. Returns `created: false` instead of overwriting. */
  ifAbsent?: boolean;
  /** Known length of a stream body; lets backends skip multipart for small objects. */
  contentLength?: number;
}

/** A body to store: bytes in memory (one buffer, or pieces stored one after the other), or a stream. */
export type PutBody = Buffer | readonly Buffer[] | Readable;

/** A body's pieces as one buffer, for backends that need one (a network request copies anyway). */
export function joinedBody(body: Buffer | readonly Buffer[]): Buffer;
export function joinedBody(body: PutBody): Buffer | Readable;
export function joinedBody(body: PutBody): Buffer | Readable {
  return isPieces(body) ? Buffer.concat(body) : body;
}

function isPieces(body: PutBody): body is readonly Buffer[] {
  return Array.isArray(body);
}

/**
 * The small contract every backend (local folder, S3, GCS) implements. Keys are relative,
 * `/`-separated, never starting with `/`; the backend maps them under its own root or prefix.
 * Bodies stream both ways: nothing here may hold a whole large object in memory.
 */
export interface ObjectStore {
  /** Where this store points, safe to print (no credentials). */
  readonly description: string;
  /** True when `ifAbsent` is enforced atomically by the backend rather than by a check-then-write. */
  readonly atomicCreateOnly: boolean;
  put(key: string, body: PutBody, options?: PutOptions): Promise<{ created: boolean }>;
  /** Streams the object; throws StorageError('not-found') if it does not exist. */
  get(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  /** Size and modification time, or undefined when the object does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, page by page, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Fails with a clear StorageError when the bucket/folder is missing or unreachable. */
  checkAccess(): Promise<void>;
  /** What the data path never asks (for `bak doctor`): how the bucket/folder is protected, and the server's clock. Read-only. */
  inspect?(): Promise<StoreInspection>;
  close?(): Promise<void>;
}

/**
 * One aspect of a bucket's or folder's protection (public access, versioning, object lock …) as the backend judged it:
 * `unknown` when the server does not say (an emulator without the API or the field).
 */
export interface StoreFinding {
  aspect: string;
  verdict: 'ok' | 'warn' | 'fail' | 'unknown';
  detail: string;
  fix?: string;
}

export interface StoreInspection {
  findings: StoreFinding[];
  /** The Date header of one of the server's answers and the local clock (ms) when it came; none for a local folder. */
  serverClock?: { serverDate: Date; localMs: number; via: string };
}

export type StorageErrorKind =
  | 'not-found'
  | 'bucket-missing'
  | 'access-denied'
  | 'unreachable'
  /** The server's TLS certificate is not trusted here (self-signed, a private CA, expired, another name). */
  | 'untrusted-certificate'
  | 'precondition-failed'
  | 'invalid-url'
  | 'other';

export class StorageError extends BakError {
  readonly kind: StorageErrorKind;
  constructor(kind: StorageErrorKind, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, kind === 'invalid-url' ? ExitCode.usage : ExitCode.failed, options);
    this.kind = kind;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof StorageError && err.kind === 'not-found';
}

/** Keys are relative and `/`-separated; reject anything that could escape a root or prefix. */
export function assertValidKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new StorageError('other', `invalid object key: ${JSON.stringify(key)}`);
  }
}

/** Socket-level failure codes meaning the server could not be reached at all (TimeoutError: the SDK's connect timeout). */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'TimeoutError']);

/** The connection failure code in err or its causes (AggregateError from happy-eyeballs included), else undefined. */
export function connectionErrorCode(err: unknown, depth = 0): string | undefined {
  if (err === null || typeof err !== 'object' || depth > 4) return undefined;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return e.code;
  if (typeof e.name === 'string' && CONNECTION_CODES.has(e.name)) return e.name;
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const code = connectionErrorCode(inner, depth + 1);
    if (code) return code;
  }
  return undefined;
}

// Node's codes for a certificate chain it will not trust; none of them goes away on a retry.
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The endpoint's certificate is not trusted (err or a cause carries one of Node's certificate codes): a StorageError
 * that says how to trust a private CA, else undefined.
 */
export function untrustedCertificateError(err: unknown, what: string, endpoint: string, depth = 0): StorageError | undefined {
  if (err === null || typeof err !== 'object' || depth > 4) return undefined;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && CERTIFICATE_CODES.has(e.code)) {
    return new StorageError('untrusted-certificate', `cannot ${what}: the TLS certificate of ${endpoint} is not trusted (${e.code})`, {
      cause: err,
      hint: 'for a self-signed certificate or a private CA, set NODE_EXTRA_CA_CERTS to its PEM file (bak and every Node client then trust it)',
    });
  }
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = untrustedCertificateError(inner, what, endpoint, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** An endpoint URL fit for messages: any user:password part removed. */
export function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return endpoint.replace(/\/\/[^@/]*@/, '//');
  }
}
