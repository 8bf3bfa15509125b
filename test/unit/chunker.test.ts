import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobStore } from '../../src/repository/blobs.ts';
import { LocalStore } from '../../src/storage/local.ts';
import { StorageError } from '../../src/storage/object-store.ts';
import { ChunkBufferPool, chunkStream, type ChunkingParams } from '../../src/util/chunker.ts';
import type { PushSource } from '../../src/util/push-source.ts';

const params: ChunkingParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

async function chunksOf(data: Buffer, pieceSize: number, p = params): Promise<Buffer[]> {
  async function* pieces() {
    for (let i = 0; i < data.length; i += pieceSize) yield data.subarray(i, i + pieceSize);
  }
  const out: Buffer[] = [];
  for await (const c of chunkStream(pieces(), p)) out.push(c);
  return out;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('content-defined chunking', () => {
  const data = randomBytes(4 * 1024 * 1024);

  it('reassembles to the input, with every chunk within bounds', async () => {
    const chunks = await chunksOf(data, 65536);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    chunks.slice(0, -1).forEach((c) => {
      expect(c.length).toBeGreaterThanOrEqual(params.min);
      expect(c.length).toBeLessThanOrEqual(params.max);
    });
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(params.min);
    expect(mean).toBeLessThan(params.max);
  });

  it('cuts at the same places whatever the read sizes', async () => {
    const a = (await chunksOf(data, 65536)).map(digest);
    const b = (await chunksOf(data, 1000)).map(digest);
    const c = (await chunksOf(data, 3 * 1024 * 1024)).map(digest);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('an insertion near the start changes only the chunks around it', async () => {
    const before = (await chunksOf(data, 65536)).map(digest);
    const edited = Buffer.concat([data.subarray(0, 100_000), Buffer.from('inserted bytes'), data.subarray(100_000)]);
    const after = (await chunksOf(edited, 65536)).map(digest);
    const shared = after.filter((d) => before.includes(d)).length;
    expect(shared).toBeGreaterThanOrEqual(before.length - 3);
  });

  it('handles empty input, and input shorter than the minimum', async () => {
    expect(await chunksOf(Buffer.alloc(0), 10)).toEqual([]);
    const small = randomBytes(1000);
    const chunks = await chunksOf(small, 100);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.equals(small)).toBe(true);
  });

  it('cuts at max on data with no natural cut point', async () => {
    const zeros = Buffer.alloc(1024 * 1024);
    const chunks = await chunksOf(zeros, 65536);
    expect(Buffer.concat(chunks).equals(zeros)).toBe(true);
    chunks.slice(0, -1).forEach((c) => expect(c.length).toBeLessThanOrEqual(params.max));
  });

  it('with a buffer pool: the same chunks, from a source that reuses its buffer, in a few recycled buffers', async () => {
    const expected = (await chunksOf(data, 65536)).map(digest);
    // The source writes every piece into the same buffer, as a follower of a growing file does.
    async function* reusing() {
      const scratch = Buffer.alloc(50_000);
      for (let i = 0; i < data.length; i += scratch.length) {
        const n = data.copy(scratch, 0, i, i + scratch.length);
        yield scratch.subarray(0, n);
        scratch.fill(0xee); // anything still pointing at the old bytes would now see garbage
      }
    }
    const pool = new ChunkBufferPool(params.max, 2);
    const backings = new Set<ArrayBufferLike>();
    const got: string[] = [];
    for await (const chunk of chunkStream(reusing(), params, pool)) {
      got.push(digest(chunk));
      backings.add(chunk.buffer);
      pool.give(chunk);
    }
    expect(got).toEqual(expected);
    expect(backings.size).toBe(1);
    await expect(chunkStream([data], params, new ChunkBufferPool(params.max - 1, 2)).next()).rejects.toThrow(/smaller than the largest chunk/);
  });

  it('rejects inconsistent parameters', async () => {
    await expect(chunksOf(data, 10, { min: 10, avg: 5, max: 20 })).rejects.toThrow(/invalid chunking/);
  });
});

describe('BlobStore.writePushed', () => {
  /** A PushSource that reuses one buffer for every piece and pauses when asked, like a socket with `onread`. */
  function reusingSource(data: Buffer, pieceSize: number, failAt?: number): PushSource & { pauses: number } {
    const scratch = Buffer.alloc(pieceSize);
    let offset = 0;
    let sink: ((piece: Uint8Array) => boolean) | undefined;
    let done: { resolve(): void; reject(err: Error): void } | undefined;
    const source = {
      pauses: 0,
      pipe(s: (piece: Uint8Array) => boolean) {
        sink = s;
        return new Promise<void>((resolve, reject) => {
          done = { resolve, reject };
          setImmediate(flow);
        });
      },
      resume: () => setImmediate(flow),
      destroy: () => done?.reject(new Error('destroyed')),
    };
    function flow(): void {
      while (offset < data.length) {
        if (failAt !== undefined && offset >= failAt) return done!.reject(new StorageError('unreachable', 'cut off'));
        const n = data.copy(scratch, 0, offset, offset + pieceSize);
        offset += n;
        const goOn = sink!(scratch.subarray(0, n));
        scratch.fill(0xee); // a chunk still pointing at these bytes would now be wrong
        if (!goOn) {
          source.pauses++;
          return;
        }
      }
      done!.resolve();
    }
    return source;
  }

  it('stores the same blobs as writeStream, though the source reuses its memory, pausing while chunks wait', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-pushed-'));
    try {
      const blobs = new BlobStore(new LocalStore(dir), { compression: 'zstd', chunking: params, concurrency: 2 });
      const data = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(1024 * 1024, 'text ')]);
      const source = reusingSource(data, 50_000);
      const pushed = await blobs.writePushed(source);
      const streamed = await blobs.writeStream([data]);
      expect(pushed).toEqual(streamed);
      expect(source.pauses).toBeGreaterThan(0);
      expect(Buffer.concat(await Promise.all(pushed.blobs.map((b) => blobs.get(b)))).equals(data)).toBe(true);
      // A source that fails mid-way fails the write with its error.
      await expect(blobs.writePushed(reusingSource(data, 50_000, 2 * 1024 * 1024))).rejects.toThrow(/cut off/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
