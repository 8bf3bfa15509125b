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
 * Each byte is copied once, into the chunk returned. Without a pool, the chunk is held until its cut as
 * slices of the input pieces, so a caller must not reuse a piece's memory after pushing it (Node
 * streams never do). With a pool (buffers of at least `max` bytes), bytes are copied into a pooled
 * buffer as they come: the caller may reuse its pieces (a socket's read buffer), and the consumer gives
 * each chunk back. Memory: at most `max` bytes of pending input, plus the chunks the consumer holds.
 */
export class Chunker {
  readonly #params: ChunkingParams;
  readonly #pool: ChunkBufferPool | undefined;
  readonly #maskSmall: number;
  readonly #maskLarge: number;
  #parts: Buffer[] = [];
  #pooled: Buffer | null = null;
  #length = 0; // bytes of the chunk so far
  #hash = 0;

  constructor(params: ChunkingParams = DEFAULT_CHUNKING, pool?: ChunkBufferPool) {
    validateChunking(params);
    if (pool && pool.size < params.max) throw new Error(`chunk buffer pool of ${pool.size} bytes is smaller than the largest chunk (${params.max})`);
    this.#params = params;
    this.#pool = pool;
    const bits = Math.round(Math.log2(params.avg));
    // Normalised chunking: harder to cut before the average size, easier after, which narrows the size spread.
    this.#maskSmall = topBitsMask(Math.min(31, bits + 2));
    this.#maskLarge = topBitsMask(Math.max(1, bits - 2));
  }

  /**
   * Takes the next piece of content and yields the chunks it completes, in order (usually none or one), each
   * as it is cut: a consumer that gives a chunk back before taking the next keeps to one pooled buffer. Run it
   * to the end before reusing the piece's memory.
   */
  *push(piece: Uint8Array): Generator<Buffer> {
    const params = this.#params;
    let input = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (input.length > 0) {
      const take = Math.min(input.length, params.max - this.#length);
      // Offsets into `input` where the chunk reaches min and avg bytes.
      const scanFrom = Math.max(0, params.min - this.#length);
      const looseFrom = Math.max(scanFrom, params.avg - this.#length);
      let cut = -1;
      if (scanFrom < take) {
        if (scanFrom < looseFrom) {
          cut = scanFor(input, scanFrom, Math.min(take, looseFrom), this.#hash, this.#maskSmall);
          this.#hash = carriedHash;
        }
        if (cut < 0 && looseFrom < take) {
          cut = scanFor(input, looseFrom, take, this.#hash, this.#maskLarge);
          this.#hash = carriedHash;
        }
      }
      if (cut < 0 && this.#length + take === params.max) cut = take;
      if (cut < 0) {
        this.#append(input.subarray(0, take));
        input = input.subarray(take);
        continue;
      }
      this.#append(input.subarray(0, cut));
      input = input.subarray(cut);
      yield this.#finishChunk();
    }
  }

  /** The last chunk, once the content has ended (undefined if nothing is pending). */
  end(): Buffer | undefined {
    return this.#length > 0 ? this.#finishChunk() : undefined;
  }

  #append(bytes: Buffer): void {
    if (this.#pool) bytes.copy((this.#pooled ??= this.#pool.take()), this.#length);
    else this.#parts.push(bytes);
    this.#length += bytes.length;
  }

  #finishChunk(): Buffer {
    const chunk = this.#pool ? this.#pooled!.subarray(0, this.#length) : Buffer.concat(this.#parts, this.#length);
    this.#parts = [];
    this.#pooled = null;
    this.#length = 0;
    this.#hash = 0;
    return chunk;
  }
}

/** `Chunker` over a pulled source: yields each chunk as it is cut. */
export async function* chunkStream(source: ByteSource, params: ChunkingParams = DEFAULT_CHUNKING, pool?: ChunkBufferPool): AsyncGenerator<Buffer> {
  const chunker = new Chunker(params, pool);
  for await (const piece of source) {
    yield* chunker.push(typeof piece === 'string' ? Buffer.from(piece) : piece);
  }
  const last = chunker.end();
  if (last) yield last;
}
