import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { timeAsync } from './stage-profile.ts';

/**
 * Blob compression. zstd is fast enough to keep up with pg_dump and compresses well; the reader
 * recognises the format by its magic bytes, so stored data says by itself how to read it.
 */
export type Compression = 'zstd' | 'gzip' | 'none';

/**
 * Levels each method takes, and the level used when a repository names none. zstd's default is 1, measured with
 * bench/postgres.ts (2 rounds each, 2 cores): on realistic rows (uuids, hex, numerics, jsonb; 621 MiB of COPY text)
 * level 1 stored 283 MiB against level 3's 294 and took 6.7 CPU-seconds against 12.3 (backup 7.2 s against 8.4 s);
 * on pgbench data (652 MiB, ~100:1) it stored 6.9 MiB against 6.0 for about the same time. Decompression costs the
 * same at either level. Repositories created before levels were recorded write at this default too (reading never
 * needs the level).
 */
export const COMPRESSION_LEVELS = { zstd: { min: 1, max: 19, default: 1 }, gzip: { min: 1, max: 9, default: 6 } } as const;

/** `zstd`, `zstd:1`, `gzip:9`, `none`: a repository's compression as `bak init --compression` takes it. */
export function parseCompression(text: string): { method: Compression; level?: number } {
  const match = /^(zstd|gzip|none)(?::(\d+))?$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a compression: use zstd, gzip or none, with a level for zstd and gzip (zstd:1, gzip:9)`);
  const method = match[1] as Compression;
  if (match[2] === undefined) return { method };
  if (method === 'none') throw new Error('none takes no level');
  const level = Number(match[2]);
  const range = COMPRESSION_LEVELS[method];
  if (level < range.min || level > range.max) throw new Error(`${method} levels run from ${range.min} to ${range.max}, not ${level}`);
  return { method, level };
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
// A one-byte tag for stored-as-is data, so raw content that happens to start with a magic number is never misread.
const RAW_TAG = Buffer.from([0x00]);

// zlib's async functions return their output in `chunkSize` pieces, one thread-pool round trip each,
// and then concatenate them; 16 KiB by default: a 4 MiB chunk took 256 round trips, and decompressing
// cost 2.5x the CPU of one piece. An output piece is sized to the output expected, within these bounds
// (a blob's plain size is known and at most the largest chunk, so it decompresses in one piece).
const OUTPUT_PIECE_MIN = 16 * 1024;
const OUTPUT_PIECE_MAX = 16 * 1024 * 1024;
// Small blobs decompress on the calling thread: cheaper than the round trip (as compressSync).
const SYNC_DECOMPRESS_MAX = 64 * 1024;

function outputPiece(expectedBytes: number): number {
  return Math.min(OUTPUT_PIECE_MAX, Math.max(OUTPUT_PIECE_MIN, expectedBytes));
}

// One byte more than the plain size: zlib takes an output piece filled to the last byte as "maybe more", so it
// allocated a second piece of the same size and made one more thread-pool round trip to learn there was none.
// 320 decompressions of 1.9 MB: 34-36 GCs (100-121 ms) and 770-893 ms CPU with the exact size, 16-19 GCs
// (51-74 ms) and 693-756 ms with one byte more.
function decompressedPiece(plainSize: number | undefined, storedBytes: number): number {
  return plainSize === undefined ? outputPiece(storedBytes * 4) : outputPiece(plainSize + 1);
}

// Compressed output is unknown but usually much smaller than the input, and a result keeps its
// piece's memory until stored: a quarter of the input, at most 1 MiB, is a few round trips at worst.
function compressedPiece(inputBytes: number): number {
  return Math.min(1024 * 1024, outputPiece(inputBytes / 4));
}

const zstdDecompress = promisify(zlib.zstdDecompress);
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

// zstd compressors kept from one blob to the next. A one-shot zstdCompress builds and frees a compression
// context of a few MiB per call, outside V8's heap: that churn made V8 run a full collection every ~100 ms
// of a PostgreSQL backup (13 in 2.4 s, ~0.2 s of the main thread). A kept stream ends each blob's frame with
// a flush (ZSTD_e_end), so every blob is still one complete, independent zstd frame.
const idleZstd = new Map<number, zlib.ZstdCompress[]>();
const MAX_IDLE_ZSTD = 16;
const ZSTD_STREAM_PIECE = 256 * 1024;

/** One zstd frame, as the stream's output pieces (joined only by whoever needs one buffer). */
async function zstdCompressFrame(data: Buffer, level: number): Promise<Buffer[]> {
  let idle = idleZstd.get(level);
  if (!idle) idleZstd.set(level, (idle = []));
  const stream = idle.pop() ?? zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level }, chunkSize: ZSTD_STREAM_PIECE });
  const parts: Buffer[] = [];
  const onData = (piece: Buffer) => parts.push(piece);
  stream.on('data', onData);
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject);
      stream.write(data);
      stream.flush(zlib.constants.ZSTD_e_end, () => {
        stream.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    stream.destroy();
    throw err;
  } finally {
    stream.off('data', onData);
  }
  if (idle.length < MAX_IDLE_ZSTD) idle.push(stream);
  else stream.close();
  return parts;
}

// gzip pieces up to this size compress on the calling thread: a one-shot async gzip sets up a stream and makes a
// thread-pool round trip that cost ~10x compressing a few KiB. (zstd always uses a kept stream, above: no set-up.)
const SYNC_GZIP_MAX = 64 * 1024;

// Content already compressed or encrypted (media, archives, random data) measures ~8 bits of entropy per byte:
// zstd would only spend CPU (a thread-pool round trip per blob, ~70 µs for a small one here) to wrap it in raw
// blocks. Such content is stored as-is. The check samples a few spread 4 KiB windows and needs every one of
// them to look random, so content with any compressible part is compressed; it costs ~1 ns per sampled byte.
const SAMPLE_BYTES = 4096;
const SAMPLES = 4;
// Below this a sample says too little; small blobs are compressed as asked.
const MIN_SAMPLED = 1024;
// Bits per byte from which zstd saves (almost) nothing: its Huffman literals gain 1 - 7.9/8 ≈ 1 % at best.
const RANDOM_BITS = 7.9;
const counts = new Uint32Array(256);

/** Order-0 entropy of buf[from, to) in bits per byte, with the Miller–Madow correction for small samples. */
function entropyBits(buf: Uint8Array, from: number, to: number): number {
  counts.fill(0);
  for (let i = from; i < to; i++) counts[buf[i]!]!++;
  const n = to - from;
  let bits = 0;
  let used = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]!;
    if (c === 0) continue;
    used++;
    bits -= c * Math.log2(c / n);
  }
  return bits / n + (used - 1) / (2 * n * Math.LN2);
}

/** Whether compressing `data` would be wasted work: every sampled window looks like random bytes. */
export function looksIncompressible(data: Uint8Array): boolean {
  if (data.length < MIN_SAMPLED) return false;
  if (data.length <= SAMPLE_BYTES * SAMPLES) return entropyBits(data, 0, data.length) >= RANDOM_BITS;
  const stride = Math.floor((data.length - SAMPLE_BYTES) / (SAMPLES - 1));
  for (let s = 0; s < SAMPLES; s++) {
    const from = s * stride;
    if (entropyBits(data, from, from + SAMPLE_BYTES) < RANDOM_BITS) return false;
  }
  return true;
}

/**
 * Encodes a blob, as the pieces to store one after the other, and their total length. zstd and gzip store
 * content that looks incompressible (looksIncompressible) or did not shrink as-is instead: [RAW_TAG, data],
 * the content itself rather than a copy (a copy per chunk of a large random object was most of a backup's
 * memory outside V8's heap). The reader knows each form by its first bytes.
 */
export async function compressToParts(data: Buffer, method: Compression, level?: number): Promise<{ parts: Buffer[]; length: number }> {
  const raw = { parts: [RAW_TAG, data], length: data.length + RAW_TAG.length };
  if (method === 'none' || looksIncompressible(data)) return raw;
  const parts = await timeAsync(`compress (${method})`, data.length, () => encode(data, method, level ?? COMPRESSION_LEVELS[method].default));
  let length = 0;
  for (const piece of parts) length += piece.length;
  return length > data.length ? raw : { parts, length };
}

/** compressToParts as one buffer. */
export async function compress(data: Buffer, method: Compression, level?: number): Promise<Buffer> {
  const { parts, length } = await compressToParts(data, method, level);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}

async function encode(data: Buffer, method: Exclude<Compression, 'none'>, level: number): Promise<Buffer[]> {
  switch (method) {
    case 'zstd':
      return zstdCompressFrame(data, level);
    case 'gzip':
      return [data.length <= SYNC_GZIP_MAX ? zlib.gzipSync(data, { level }) : await gzip(data, { level, chunkSize: compressedPiece(data.length) })];
  }
}

/** `plainSize`, when known, is the size the content should have: it sizes the output, nothing checks it here. */
export function decompress(stored: Buffer, plainSize?: number): Promise<Buffer> {
  return timeAsync('decompress', stored.length, () => decode(stored, plainSize));
}

async function decode(stored: Buffer, plainSize?: number): Promise<Buffer> {
  const expected = plainSize ?? stored.length * 4;
  const chunkSize = decompressedPiece(plainSize, stored.length);
  if (stored.subarray(0, 4).equals(ZSTD_MAGIC)) {
    return expected <= SYNC_DECOMPRESS_MAX ? zlib.zstdDecompressSync(stored) : zstdDecompress(stored, { chunkSize });
  }
  if (stored.subarray(0, 2).equals(GZIP_MAGIC)) return expected <= SYNC_DECOMPRESS_MAX ? zlib.gunzipSync(stored) : gunzip(stored, { chunkSize });
  if (stored.subarray(0, 1).equals(RAW_TAG)) return stored.subarray(1);
  throw new Error('unknown blob encoding (neither zstd, gzip nor raw)');
}
