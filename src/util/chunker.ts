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

// The hash carried out of the last scan. A module-level slot instead of a returned tuple: scanning is
// synchronous, and a one-loop function returning a number is what V8 compiles to a tight loop (the
// earlier two-loop, tuple-returning scan ran at half the speed).
let carriedHash = 0;

/** Scans `buf[from, to)` with the gear hash from state `hash`; returns the cut position (exclusive) or -1, leaving the hash in carriedHash. */
function scanFor(buf: Uint8Array, from: number, to: number, hash: number, mask: number): number {
  let h = hash;
  for (let i = from; i < to; i++) {
    h = ((h << 1) + GEAR[buf[i]!]!) | 0;
    if ((h & mask) === 0) {
      carriedHash = h;
      return i + 1;
    }
  }
  carriedHash = h;
  return -1;
}

export function validateChunking(p: ChunkingParams): void {
  if (!(p.min > 0 && p.min <= p.avg && p.avg <= p.max)) throw new Error(`invalid chunking ${JSON.stringify(p)}: need 0 < min <= avg <= max`);
}

/**
 * FastCDC-style content-defined chunking: cut points depend on the bytes around them, not on offsets,
 * so an insertion early in a dump shifts only the chunks it touches and the rest still dedup.
 * Scanning starts `min` bytes into a chunk with a fresh hash, with a stricter mask before `avg` and a
 * looser one after, and a chunk is cut at `max` regardless.
 * Each byte is copied once, into the chunk yielded; until then the chunk is held as slices of the input
 * pieces, so a source must not reuse a piece's memory after yielding it (Node streams never do).
 * Memory: at most `max` bytes of pending slices.
 */
export async function* chunkStream(source: ByteSource, params: ChunkingParams = DEFAULT_CHUNKING): AsyncGenerator<Buffer> {
  validateChunking(params);
  const bits = Math.round(Math.log2(params.avg));
  // Normalised chunking: harder to cut before the average size, easier after, which narrows the size spread.
  const maskSmall = topBitsMask(Math.min(31, bits + 2));
  const maskLarge = topBitsMask(Math.max(1, bits - 2));
  let parts: Buffer[] = [];
  let length = 0; // bytes in `parts`: the chunk so far
  let hash = 0;

  for await (const piece of source) {
    let input = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (input.length > 0) {
      const take = Math.min(input.length, params.max - length);
      // Offsets into `input` where the chunk reaches min and avg bytes.
      const scanFrom = Math.max(0, params.min - length);
      const looseFrom = Math.max(scanFrom, params.avg - length);
      let cut = -1;
      if (scanFrom < take) {
        if (scanFrom < looseFrom) {
          cut = scanFor(input, scanFrom, Math.min(take, looseFrom), hash, maskSmall);
          hash = carriedHash;
        }
        if (cut < 0 && looseFrom < take) {
          cut = scanFor(input, looseFrom, take, hash, maskLarge);
          hash = carriedHash;
        }
      }
      if (cut < 0 && length + take === params.max) cut = take;
      if (cut < 0) {
        parts.push(input.subarray(0, take));
        length += take;
        input = input.subarray(take);
        continue;
      }
      parts.push(input.subarray(0, cut));
      yield Buffer.concat(parts, length + cut);
      input = input.subarray(cut);
      parts = [];
      length = 0;
      hash = 0;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}
