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
 * Chunk-sized buffers handed from the chunker to whoever stores the chunks, and back once stored, so
 * a long stream reuses a few buffers instead of allocating (and making the GC free) one per chunk.
 * Keeps at most `keep` idle buffers; more are allocated when more chunks are in flight.
 */
export class ChunkBufferPool {
  readonly size: number;
  readonly #keep: number;
  readonly #idle: ArrayBuffer[] = [];

  constructor(size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  take(): Buffer {
    const idle = this.#idle.pop();
    return idle ? Buffer.from(idle) : Buffer.allocUnsafeSlow(this.size);
  }

  /** Returns a chunk from `take` (or a slice of one); the caller must hold no other reference to it. */
  give(chunk: Buffer): void {
    const backing = chunk.buffer;
    if (backing instanceof ArrayBuffer && backing.byteLength === this.size && this.#idle.length < this.#keep && !this.#idle.includes(backing)) this.#idle.push(backing);
  }
}

/**
 * FastCDC-style content-defined chunking: cut points depend on the bytes around them, not on offsets,
 * so an insertion early in a dump shifts only the chunks it touches and the rest still dedup.
 * Scanning starts `min` bytes into a chunk with a fresh hash, with a stricter mask before `avg` and a
 * looser one after, and a chunk is cut at `max` regardless.
 * Each byte is copied once, into the chunk yielded. Without a pool, the chunk is held until its cut as
 * slices of the input pieces, so a source must not reuse a piece's memory after yielding it (Node
 * streams never do). With a pool (buffers of at least `max` bytes), bytes are copied into a pooled
 * buffer as they come: the source may reuse its pieces, and the consumer gives each chunk back.
 * Memory: at most `max` bytes of pending input, plus the chunks the consumer holds.
 */
export async function* chunkStream(source: ByteSource, params: ChunkingParams = DEFAULT_CHUNKING, pool?: ChunkBufferPool): AsyncGenerator<Buffer> {
  validateChunking(params);
  if (pool && pool.size < params.max) throw new Error(`chunk buffer pool of ${pool.size} bytes is smaller than the largest chunk (${params.max})`);
  const bits = Math.round(Math.log2(params.avg));
  // Normalised chunking: harder to cut before the average size, easier after, which narrows the size spread.
  const maskSmall = topBitsMask(Math.min(31, bits + 2));
  const maskLarge = topBitsMask(Math.max(1, bits - 2));
  let parts: Buffer[] = [];
  let pooled: Buffer | null = null;
  let length = 0; // bytes of the chunk so far
  let hash = 0;
  const append = (bytes: Buffer) => {
    if (pool) bytes.copy((pooled ??= pool.take()), length);
    else parts.push(bytes);
    length += bytes.length;
  };
  const finishChunk = (): Buffer => {
    const chunk = pool ? pooled!.subarray(0, length) : Buffer.concat(parts, length);
    parts = [];
    pooled = null;
    length = 0;
    hash = 0;
    return chunk;
  };

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
        append(input.subarray(0, take));
        input = input.subarray(take);
        continue;
      }
      append(input.subarray(0, cut));
      input = input.subarray(cut);
      yield finishChunk();
    }
  }
  if (length > 0) yield finishChunk();
}
