import { createHash } from 'node:crypto';

/** Chunk size bounds for content-defined chunking, in bytes. */
export interface ChunkingParams {
  min: number;
  avg: number;
  max: number;
}

/** Anything that yields bytes: a Readable, an async generator, or a plain array of buffers. */
export type ByteSource = AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

export const DEFAULT_CHUNKING: ChunkingParams = { min: 512 * 1024, avg: 2 * 1024 * 1024, max: 8 * 1024 * 1024 };

// Gear table from SHA-256 of a fixed seed: deterministic across runs and machines, which dedup depends on.
// Int32 throughout: values above 2^31 as uint32 would leave V8's small-integer fast path and run ~5x slower.
const GEAR = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`bak-gear-${i}`).digest().readInt32BE(0);
  return table;
})();

function topBitsMask(bits: number): number {
  return ((2 ** bits - 1) * 2 ** (32 - bits)) | 0;
}

/** Scans `buf[from, to)` with the gear hash; returns the cut position (exclusive) or -1, and the hash to carry on with. */
function scan(buf: Buffer, from: number, to: number, hash: number, avg: number, maskSmall: number, maskLarge: number): [number, number] {
  let h = hash;
  let i = from;
  const belowAvg = Math.min(to, avg);
  for (; i < belowAvg; i++) {
    h = ((h << 1) + GEAR[buf[i]!]!) | 0;
    if ((h & maskSmall) === 0) return [i + 1, h];
  }
  for (; i < to; i++) {
    h = ((h << 1) + GEAR[buf[i]!]!) | 0;
    if ((h & maskLarge) === 0) return [i + 1, h];
  }
  return [-1, h];
}

export function validateChunking(p: ChunkingParams): void {
  if (!(p.min > 0 && p.min <= p.avg && p.avg <= p.max)) throw new Error(`invalid chunking ${JSON.stringify(p)}: need 0 < min <= avg <= max`);
}

/**
 * FastCDC-style content-defined chunking: cut points depend on the bytes around them, not on offsets,
 * so an insertion early in a dump shifts only the chunks it touches and the rest still dedup.
 * Memory: one chunk of at most `max` bytes plus the input buffer being scanned.
 */
export async function* chunkStream(source: ByteSource, params: ChunkingParams = DEFAULT_CHUNKING): AsyncGenerator<Buffer> {
  validateChunking(params);
  const bits = Math.round(Math.log2(params.avg));
  // Normalised chunking: harder to cut before the average size, easier after, which narrows the size spread.
  const maskSmall = topBitsMask(Math.min(31, bits + 2));
  const maskLarge = topBitsMask(Math.max(1, bits - 2));
  // Reused for every chunk (what is yielded is a copy), and grown only as needed: a small object
  // never pays for a max-sized buffer.
  let chunk = Buffer.allocUnsafe(Math.min(params.max, 64 * 1024));
  let length = 0;
  let hash = 0;

  for await (const piece of source) {
    let input = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (input.length > 0) {
      const take = Math.min(input.length, params.max - length);
      if (length + take > chunk.length) {
        const grown = Buffer.allocUnsafe(Math.min(params.max, Math.max(chunk.length * 2, length + take)));
        chunk.copy(grown, 0, 0, length);
        chunk = grown;
      }
      input.copy(chunk, length, 0, take);
      input = input.subarray(take);
      const scanFrom = Math.max(length, params.min);
      length += take;
      let cut: number;
      [cut, hash] = scanFrom < length ? scan(chunk, scanFrom, length, hash, params.avg, maskSmall, maskLarge) : [-1, hash];
      if (cut < 0 && length === params.max) cut = length;
      if (cut >= 0) {
        yield Buffer.from(chunk.subarray(0, cut));
        // Bytes after the cut start the next chunk; rescan them from a fresh hash.
        const rest = chunk.subarray(cut, length);
        input = input.length === 0 ? Buffer.from(rest) : Buffer.concat([rest, input]);
        length = 0;
        hash = 0;
      }
    }
  }
  if (length > 0) yield Buffer.from(chunk.subarray(0, length));
}
