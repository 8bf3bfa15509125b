import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CopyDigester } from '../../src/engines/postgres/copy-digest.ts';
import { RowChunker } from '../../src/engines/postgres/row-chunks.ts';
import type { ChunkingParams } from '../../src/util/chunker.ts';

const params: ChunkingParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

/** Feeds `data` through a RowChunker in reads of at most `readSize` bytes, as the ingest worker does. */
async function chunksOf(data: Buffer, readSize: number, p = params) {
  const chunker = new RowChunker(p, async () => Buffer.alloc(p.max));
  const chunks: Buffer[] = [];
  let pos = 0;
  while (pos < data.length) {
    const target = await chunker.readTarget();
    const n = Math.min(readSize, target.length, data.length - pos);
    data.copy(target.buffer, target.offset, pos, pos + n);
    pos += n;
    const chunk = await chunker.wrote(n);
    if (chunk) chunks.push(Buffer.from(chunk));
  }
  const { chunk, digest } = chunker.finish();
  if (chunk) chunks.push(Buffer.from(chunk));
  return { chunks, digest };
}

function copyData(rows: string[]): Buffer {
  return Buffer.from(`${rows.join('\n')}\n\\.\n\n\n`);
}

/** Rows that differ from each other but are the same on every run, so cut points are too. */
function rowsOf(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `${from + i}\t${createHash('sha256').update(String(from + i)).digest('hex').slice(0, 16 + (i % 48))}\t2026-11-22 01:02:03+00`);
}

function plainDigest(data: Buffer) {
  const digester = new CopyDigester({ requireEndMarker: true });
  digester.update(data);
  return digester.finish();
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('row-aligned chunking of COPY data', () => {
  const rows = rowsOf(20_000);
  const data = copyData(rows);

  it('reassembles to the input, cuts after whole rows within bounds, and digests like the plain digester', async () => {
    const { chunks, digest } = await chunksOf(data, 7000);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(params.min);
      expect(c.length).toBeLessThanOrEqual(params.max);
    }
    // A chunk ends mid-row only when no row between min and max was chosen (rare: a hard limit, as in FastCDC).
    const atRowEnds = chunks.filter((c) => c[c.length - 1] === 0x0a).length;
    expect(atRowEnds).toBeGreaterThanOrEqual(chunks.length - 1);
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(params.avg / 2);
    expect(mean).toBeLessThan(params.avg * 2);
    expect(digest).toEqual(plainDigest(data));
  });

  it('cuts at the same places whatever the read sizes', async () => {
    const a = (await chunksOf(data, params.min)).chunks.map(sha);
    expect((await chunksOf(data, 37)).chunks.map(sha)).toEqual(a);
    expect((await chunksOf(data, 4093)).chunks.map(sha)).toEqual(a);
  });

  it('an insertion changes only the chunks around it', async () => {
    const before = new Set((await chunksOf(data, 65536)).chunks.map(sha));
    const edited = copyData([...rows.slice(0, 9000), ...rowsOf(5, 99_000), ...rows.slice(9000)]);
    const after = (await chunksOf(edited, 65536)).chunks.map(sha);
    const changed = after.filter((h) => !before.has(h));
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.length).toBeLessThanOrEqual(2);
  });

  it('cuts a row longer than the largest chunk at the largest size, and still digests it', async () => {
    const big = copyData(['1\t' + 'x'.repeat(params.max * 2 + 123), '2\tsmall']);
    const { chunks, digest } = await chunksOf(big, 10_000);
    expect(chunks[0]!.length).toBe(params.max);
    expect(chunks[1]!.length).toBe(params.max);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    expect(digest).toEqual(plainDigest(big));
  });

  it('fails on truncated data, as the digester does', async () => {
    await expect(chunksOf(data.subarray(0, data.length - 8), 65536)).rejects.toThrow(/truncated/);
  });
});
