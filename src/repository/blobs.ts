import { Readable } from 'node:stream';
import { z } from 'zod';
import { MismatchError } from '../errors.ts';
import { StorageError, type ObjectStore } from '../storage/object-store.ts';
import { ChunkBufferPool, Chunker, chunkStream, type ByteSource, type ChunkingParams } from '../util/chunker.ts';
import { compressToParts, decompress, type Compression } from '../util/compress.ts';
import { TaskPool } from '../util/concurrency.ts';
import { sha256Hex } from '../util/hash.ts';
import type { PushSource } from '../util/push-source.ts';
import { withRetry } from '../util/retry.ts';
import { timeAsync } from '../util/stage-profile.ts';
import { SealedObjectError } from './encryption/sealed-store.ts';

/** A reference to one stored blob: its content hash, plain size and stored (compressed) size. */
export const blobRefSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{64}$/, 'a blob id is a 64-character lowercase SHA-256'),
    size: z.number().int().nonnegative(),
    stored: z.number().int().nonnegative(),
  })
  .strict();
export type BlobRef = z.infer<typeof blobRefSchema>;

/** Content written as a run of blobs, plus its checksum (`contentChecksum`). */
export interface StreamedContent {
  size: number;
  checksum: string;
  blobs: BlobRef[];
}

/** A chunk cut and hashed elsewhere (a worker thread); `release` is called once the store is done with `data`. */
export interface HashedChunk {
  id: string;
  data: Buffer;
  release(): void;
}

const SHA256_OF_NOTHING = sha256Hex(Buffer.alloc(0));
export const WHOLE_CHECKSUM = 'sha256:';
export const BLOB_LIST_CHECKSUM = 'sha256-blobs:';

/**
 * An item's checksum. Content of at most one blob: `sha256:` + its SHA-256, which is the blob's name.
 * Longer content: `sha256-blobs:` + the SHA-256 of its blob names in order. Every blob is checked against
 * its name when read, so this pins the whole content as surely as a hash of all its bytes would, and
 * costs no second pass over them (hashing every byte twice was a third of a PostgreSQL backup's CPU).
 * Older snapshots hold `sha256:` of the whole for long content too; the checker reads both.
 */
export function contentChecksum(blobs: readonly BlobRef[]): string {
  if (blobs.length === 0) return `${WHOLE_CHECKSUM}${SHA256_OF_NOTHING}`;
  if (blobs.length === 1) return `${WHOLE_CHECKSUM}${blobs[0]!.id}`;
  return `${BLOB_LIST_CHECKSUM}${sha256Hex(blobs.map((b) => b.id).join('\n'))}`;
}

/** Counters that tell how much a backup really sent, for reports and benchmarks. */
export interface BlobStats {
  blobsWritten: number;
  blobsReused: number;
  bytesWritten: number;
  bytesReused: number;
}

export class BlobCorruptError extends MismatchError {
  readonly blobId: string;
  constructor(blobId: string, problem: string) {
    super(`blob ${blobId} is corrupt: ${problem}`);
    this.blobId = blobId;
  }
}

export const BLOBS_PREFIX = 'blobs/';

export function blobKey(id: string): string {
  return `${BLOBS_PREFIX}${id.slice(0, 2)}/${id}`;
}

/** Content-addressed blobs: named by the SHA-256 of their plain content, compressed, written only if absent. */
export class BlobStore {
  readonly stats: BlobStats = { blobsWritten: 0, blobsReused: 0, bytesWritten: 0, bytesReused: 0 };
  private readonly store: ObjectStore;
  private readonly compression: Compression;
  private readonly compressionLevel: number | undefined;
  private readonly chunking: ChunkingParams;
  private readonly concurrency: number;
  private readonly chunkBuffers: ChunkBufferPool;
  private readObserver: ((bytes: number) => void) | undefined;
  private readonly naming: ((id: string) => string) | undefined;
  private readonly envelopeBytes: number;

  constructor(
    store: ObjectStore,
    options: {
      compression: Compression;
      compressionLevel?: number | undefined;
      chunking: ChunkingParams;
      concurrency: number;
      /** An encrypted repository's blob names (a keyed hash of the id); else a blob is stored under its id. */
      naming?: ((id: string) => string) | undefined;
      /** What the store adds to each object (an encrypted repository's envelope), so `stored` is the size in storage. */
      envelopeBytes?: number;
    },
  ) {
    this.store = store;
    this.naming = options.naming;
    this.envelopeBytes = options.envelopeBytes ?? 0;
    this.compression = options.compression;
    this.compressionLevel = options.compressionLevel;
    this.chunking = options.chunking;
    this.concurrency = options.concurrency;
    // One buffer per chunk in flight (`concurrency`), the one being filled, and one spare.
    this.chunkBuffers = new ChunkBufferPool(options.chunking.max, options.concurrency + 2);
  }

  /** Stores one piece of content (at most a chunk's size) unless a blob with its hash is already there. */
  put(data: Buffer): Promise<BlobRef> {
    return this.putHashed(sha256Hex(data), data);
  }

  /** `put` for content whose SHA-256 (`id`) the caller has computed already. */
  async putHashed(id: string, data: Buffer): Promise<BlobRef> {
    const key = this.keyOf(id);
    const existing = await timeAsync('blob exists? (head)', 0, () => withRetry(() => this.store.head(key), { retryable: isTransient }));
    if (existing && existing.size > 0) {
      this.stats.blobsReused++;
      this.stats.bytesReused += data.length;
      return { id, size: data.length, stored: existing.size };
    }
    const stored = await this.encode(data);
    // A lost race with another writer of the same content is fine: the blob there has the same bytes.
    await timeAsync('store blob (put)', stored.length, () => withRetry(() => this.store.put(key, stored.parts, { ifAbsent: true }), { retryable: isTransient }));
    this.stats.blobsWritten++;
    this.stats.bytesWritten += stored.length;
    return { id, size: data.length, stored: stored.length };
  }

  /**
   * Like `put`, for content that is most likely not stored yet (an object downloaded because it is new or
   * changed): a create-only write at once, instead of asking first whether the blob exists. Only when the
   * store answers "already there" is it asked for the stored size, which may differ if other settings wrote it.
   */
  async putNew(data: Buffer): Promise<BlobRef> {
    const id = sha256Hex(data);
    const key = this.keyOf(id);
    const stored = await this.encode(data);
    const { created } = await timeAsync('store blob (put)', stored.length, () => withRetry(() => this.store.put(key, stored.parts, { ifAbsent: true }), { retryable: isTransient }));
    if (!created) {
      const existing = await withRetry(() => this.store.head(key), { retryable: isTransient });
      this.stats.blobsReused++;
      this.stats.bytesReused += data.length;
      return { id, size: data.length, stored: existing?.size ?? stored.length };
    }
    this.stats.blobsWritten++;
    this.stats.bytesWritten += stored.length;
    return { id, size: data.length, stored: stored.length };
  }

  /** The blob as handed to the store: its pieces (see compressToParts), and the length they take in storage. */
  private async encode(data: Buffer): Promise<{ parts: Buffer[]; length: number }> {
    const encoded = await compressToParts(data, this.compression, this.compressionLevel);
    return { parts: encoded.parts, length: encoded.length + this.envelopeBytes };
  }

  /** The name blob `id` is stored under: the id, or in an encrypted repository its keyed hash. */
  storedName(id: string): string {
    return this.naming ? this.naming(id) : id;
  }

  /** The object key of blob `id`: `blobs/<2 hex>/<stored name>`. */
  keyOf(id: string): string {
    return blobKey(this.storedName(id));
  }

  /** Reads a blob, decompresses it and checks it against its name; corruption is an error, never silent. */
  async get(ref: BlobRef | string): Promise<Buffer> {
    const id = typeof ref === 'string' ? ref : ref.id;
    let stored: Buffer;
    try {
      stored = await timeAsync('read blob (get)', (got) => got.length, () => withRetry(() => this.store.getBuffer(this.keyOf(id)), { retryable: isTransient }));
    } catch (err) {
      if (err instanceof SealedObjectError) throw new BlobCorruptError(id, `${err.problem} (object ${err.key})`);
      throw err;
    }
    let data: Buffer;
    try {
      data = await decompress(stored, typeof ref === 'string' ? undefined : ref.size);
    } catch (err) {
      throw new BlobCorruptError(id, `cannot decompress (${(err as Error).message})`);
    }
    const actual = sha256Hex(data);
    if (actual !== id) throw new BlobCorruptError(id, `content hash is ${actual}`);
    if (typeof ref !== 'string' && data.length !== ref.size) throw new BlobCorruptError(id, `size ${data.length}, expected ${ref.size}`);
    this.readObserver?.(data.length);
    return data;
  }

  /**
   * Splits a stream into content-defined chunks and stores each, with bounded concurrency.
   * Memory stays at about (concurrency + 1) chunks whatever the stream's length.
   */
  async writeStream(source: ByteSource): Promise<StreamedContent> {
    const self = this;
    async function* hashed(): AsyncGenerator<HashedChunk> {
      for await (const chunk of chunkStream(source, self.chunking, self.chunkBuffers)) {
        // put keeps nothing of the chunk once it settles (it stores a compressed copy).
        yield { id: sha256Hex(chunk), data: chunk, release: () => self.chunkBuffers.give(chunk) };
      }
    }
    return this.writeChunks(hashed());
  }

  /**
   * `writeStream` for content pushed in reused pieces (a socket's read buffer): each piece is chunked and copied
   * into a pooled chunk buffer inside the source's callback, and the source is paused while a chunk waits for a
   * store slot, so nothing is allocated per read and memory stays at the chunks in flight: at most
   * `concurrency` (default: the store's), which a caller with several such writes at once divides among them.
   */
  async writePushed(source: PushSource, concurrency = this.concurrency): Promise<StreamedContent> {
    const chunker = new Chunker(this.chunking, this.chunkBuffers);
    const ready: HashedChunk[] = [];
    let paused = false;
    let ended = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const hashed = (chunk: Buffer): HashedChunk => ({ id: sha256Hex(chunk), data: chunk, release: () => this.chunkBuffers.give(chunk) });
    const piped = source.pipe((piece) => {
      for (const chunk of chunker.push(piece)) ready.push(hashed(chunk));
      wake?.();
      paused = ready.length > 0;
      return !paused;
    });
    piped.then(
      () => {
        const last = chunker.end();
        if (last) ready.push(hashed(last));
        ended = true;
        wake?.();
      },
      (err: unknown) => {
        failure = err;
        ended = true;
        wake?.();
      },
    );
    async function* chunks(): AsyncGenerator<HashedChunk> {
      for (;;) {
        const next = ready.shift();
        if (next) {
          if (paused && ready.length === 0) {
            paused = false;
            source.resume();
          }
          yield next;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    }
    try {
      return await this.writeChunks(chunks(), concurrency);
    } catch (err) {
      source.destroy();
      for (const chunk of ready.splice(0)) chunk.release();
      throw err;
    }
  }

  /**
   * Stores content already cut into chunks and hashed (in order), with bounded concurrency; each chunk's
   * `release` is called once it is stored or failed. Memory: the chunks in flight, at most `concurrency`.
   */
  async writeChunks(chunks: AsyncIterable<HashedChunk>, concurrency = this.concurrency): Promise<StreamedContent> {
    const pool = new TaskPool(concurrency);
    const blobs: BlobRef[] = [];
    let size = 0;
    for await (const chunk of chunks) {
      size += chunk.data.length;
      const index = blobs.length;
      blobs.push({ id: chunk.id, size: chunk.data.length, stored: 0 });
      try {
        await pool.submit(async () => {
          try {
            blobs[index] = await this.putHashed(chunk.id, chunk.data);
          } finally {
            chunk.release();
          }
        });
      } catch (err) {
        chunk.release(); // the pool failed before this chunk had a slot
        throw err;
      }
    }
    await pool.drain();
    return { size, checksum: contentChecksum(blobs), blobs };
  }

  /** How content is cut into chunks: an engine that cuts its own (`writeChunks`) keeps to the same bounds. */
  get chunkingParams(): ChunkingParams {
    return this.chunking;
  }

  /** How many blobs are stored at once. */
  get writeConcurrency(): number {
    return this.concurrency;
  }

  /** Content below this size is one chunk, so `writeBuffer` stores it without the chunker. */
  get oneChunkLimit(): number {
    return this.chunking.min;
  }

  /**
   * Stores content already in memory, with the same blobs `writeStream` would make. Content smaller than a
   * chunk is one blob whose hash is also the whole's checksum: hashed once, no chunker, no existence check
   * first (`putNew`), as such content is typically new (a small object that was added or changed).
   */
  async writeBuffer(data: Buffer): Promise<StreamedContent> {
    if (data.length >= this.chunking.min) return this.writeStream([data]);
    if (data.length === 0) return { size: 0, checksum: contentChecksum([]), blobs: [] };
    const ref = await this.putNew(data);
    return { size: data.length, checksum: contentChecksum([ref]), blobs: [ref] };
  }

  /**
   * Calls `observer` with the size of every blob read back and verified, until the returned function is called:
   * how restore and export, whatever the engine, report the bytes they have read so far.
   */
  observeReads(observer: (bytes: number) => void): () => void {
    this.readObserver = observer;
    return () => {
      if (this.readObserver === observer) this.readObserver = undefined;
    };
  }

  /** Streams content back from its blobs in order, each verified, reading one blob ahead. */
  readStream(blobs: readonly BlobRef[]): Readable {
    const self = this;
    async function* generate(): AsyncGenerator<Buffer> {
      let next: Promise<Buffer> | undefined = blobs[0] ? self.get(blobs[0]) : undefined;
      for (let i = 0; i < blobs.length; i++) {
        const current = next!;
        // Start fetching the next blob while this one is consumed; swallow its rejection until awaited.
        next = blobs[i + 1] ? self.get(blobs[i + 1]!) : undefined;
        next?.catch(() => undefined);
        yield await current;
      }
    }
    return Readable.from(generate(), { objectMode: false });
  }

  async exists(ref: BlobRef): Promise<{ ok: true } | { ok: false; problem: string }> {
    const info = await this.store.head(this.keyOf(ref.id));
    if (!info) return { ok: false, problem: 'missing' };
    if (info.size !== ref.stored) return { ok: false, problem: `stored size ${info.size}, expected ${ref.stored}` };
    return { ok: true };
  }
}

/** Storage errors worth another try: the network, not a missing bucket or a denied request. */
export function isTransient(err: unknown): boolean {
  return err instanceof StorageError && (err.kind === 'unreachable' || err.kind === 'other');
}
