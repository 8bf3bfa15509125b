// The repository's compression level: parsed from `bak init --compression`, recorded in the marker, used for
// every blob (a higher zstd level stores the same compressible data smaller), and never needed to read it back.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { compress, decompress, parseCompression } from '../../src/util/compress.ts';
import { runBak, show } from '../helpers/cli.ts';

/** Text that compresses, but not trivially: words from a small vocabulary in a pseudo-random order. */
function prose(bytes: number): Buffer {
  const words = ['backup', 'restore', 'verify', 'snapshot', 'chunk', 'blob', 'manifest', 'index', 'repository', 'retention'];
  let x = 12345;
  const out: string[] = [];
  let n = 0;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const w = `${words[x % words.length]}${x % 997} `;
    out.push(w);
    n += w.length;
  }
  return Buffer.from(out.join('').slice(0, bytes));
}

describe('compression level', () => {
  it('parses method[:level] and refuses what is not one', () => {
    expect(parseCompression('zstd')).toEqual({ method: 'zstd' });
    expect(parseCompression('zstd:1')).toEqual({ method: 'zstd', level: 1 });
    expect(parseCompression('gzip:9')).toEqual({ method: 'gzip', level: 9 });
    expect(parseCompression('none')).toEqual({ method: 'none' });
    expect(() => parseCompression('zstd:0')).toThrow(/1 to 19/);
    expect(() => parseCompression('gzip:12')).toThrow(/1 to 9/);
    expect(() => parseCompression('none:3')).toThrow(/no level/);
    expect(() => parseCompression('brotli')).toThrow(/not a compression/);
  });

  it('a higher level stores the same data smaller, and both read back', async () => {
    const data = prose(1_000_000);
    const fast = await compress(data, 'zstd', 1);
    const small = await compress(data, 'zstd', 19);
    expect(small.length).toBeLessThan(fast.length);
    expect((await decompress(fast, data.length)).equals(data)).toBe(true);
    expect((await decompress(small, data.length)).equals(data)).toBe(true);
  });

  it('a format 1 repository (no level recorded, as an older bak made it) still opens, writes and reads', async () => {
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'bak-v1-')), 'repo');
    const init = await runBak(['init', dir]);
    expect(init.code, show(init)).toBe(0);
    const markerFile = path.join(dir, 'bak-repository.json');
    const marker = JSON.parse(await readFile(markerFile, 'utf8'));
    expect(marker.version).toBe(2);
    delete marker.settings.compressionLevel;
    await writeFile(markerFile, JSON.stringify({ ...marker, version: 1 }));
    const store = await openStore({ url: pathToFileURL(dir).href });
    const repo = await Repository.open(store);
    const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///srv/v1' });
    await writer.addItem({ name: 'prose.txt', kind: 'file' }, [prose(200_000)]);
    const [item] = (await writer.commit()).items;
    expect(Buffer.concat(await Promise.all(item!.blobs.map((b) => repo.blobs.get(b)))).equals(prose(200_000))).toBe(true);
    await store.close?.();
    const ls = await runBak(['--repo', dir, 'ls']);
    expect(ls.code, show(ls)).toBe(0);
  });

  it('bak init --compression zstd:1 records the level and the repository writes with it', async () => {
    const dirs = await Promise.all([1, 19].map(async () => mkdtemp(path.join(tmpdir(), 'bak-level-'))));
    const stored: number[] = [];
    for (const [i, level] of [1, 19].entries()) {
      const dir = path.join(dirs[i]!, 'repo');
      const init = await runBak(['init', dir, '--compression', `zstd:${level}`]);
      expect(init.code, show(init)).toBe(0);
      const marker = JSON.parse(await readFile(path.join(dir, 'bak-repository.json'), 'utf8'));
      expect(marker.settings.compressionLevel).toBe(level);
      const store = await openStore({ url: pathToFileURL(dir).href });
      const repo = await Repository.open(store);
      const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: 'dir:///srv/level' });
      await writer.addItem({ name: 'prose.txt', kind: 'file' }, [prose(1_000_000)]);
      const manifest = await writer.commit();
      stored.push(manifest.totals.storedBytes);
      const [item] = manifest.items;
      const back = Buffer.concat(await Promise.all(item!.blobs.map((b) => repo.blobs.get(b))));
      expect(back.equals(prose(1_000_000))).toBe(true);
      await store.close?.();
    }
    expect(stored[1]!).toBeLessThan(stored[0]!);
    const bad = await runBak(['init', path.join(dirs[0]!, 'other'), '--compression', 'zstd:40']);
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain('zstd levels run from 1 to 19');
  });
});
