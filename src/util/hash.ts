import { createHash, webcrypto, type Hash } from 'node:crypto';

/** SHA-256 is the one content hash bak uses: blob names, item checksums, manifest digests. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function newSha256(): Hash {
  return createHash('sha256');
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

// Below this size hashing on the calling thread is cheaper than a round trip to the thread pool.
const ASYNC_HASH_FROM = 256 * 1024;

/**
 * sha256Hex for large buffers off the main thread: WebCrypto's digest runs in libuv's thread pool, so
 * chunk hashing overlaps with chunking the next piece instead of queueing behind it.
 */
export async function sha256HexAsync(data: Buffer): Promise<string> {
  if (data.length < ASYNC_HASH_FROM) return sha256Hex(data);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}
