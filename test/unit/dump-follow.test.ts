import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { followInto, newTableDataFiles, TrailerWatch, type DumpProgress } from '../../src/engines/postgres/dump-follow.ts';

/** The bytes `followInto` reads, each read copied out of the one buffer they land in. */
async function* followFile(file: string, dump: DumpProgress, complete: () => boolean): AsyncGenerator<Buffer> {
  const buffer = Buffer.alloc(4);
  for await (const n of followInto(file, dump, complete, () => ({ buffer, offset: 0, length: buffer.length }))) yield Buffer.from(buffer.subarray(0, n));
}

function watchOf(pieces: string[]): boolean {
  const watch = new TrailerWatch();
  for (const p of pieces) watch.update(Buffer.from(p));
  return watch.complete;
}

describe('TrailerWatch', () => {
  const data = '1\tone\n2\ttwo\n\\.\n\n\n';

  it('sees pg_dump’s end-of-data trailer however the bytes are split', () => {
    for (let a = 0; a <= data.length; a++) {
      for (let b = a; b <= data.length; b++) expect(watchOf([data.slice(0, a), data.slice(a, b), data.slice(b)]), `${a}/${b}`).toBe(true);
    }
    expect(watchOf([...data])).toBe(true);
    expect(watchOf(['\\.\n\n\n'])).toBe(true); // an empty table
  });

  it('is not fooled by data that only looks like the end', () => {
    expect(watchOf([data.slice(0, -1)])).toBe(false); // one empty line of the two still to come
    expect(watchOf(['1\tone\n'])).toBe(false);
    expect(watchOf(['x\\\\.\n\n\n'])).toBe(false); // a row ending in an escaped backslash and a dot
    expect(watchOf(['\n\n\n\n\n\n'])).toBe(false); // empty rows
    expect(watchOf([data, 'more\n'])).toBe(false);
  });
});

describe('following pg_dump output as it is written', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-follow-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function collect(gen: AsyncGenerator<Buffer>): Promise<string> {
    const parts: Buffer[] = [];
    for await (const b of gen) parts.push(b);
    return Buffer.concat(parts).toString();
  }

  it('reads a file while it grows and stops at its trailer, before the writer exits', async () => {
    const file = path.join(dir, '3001.dat');
    await writeFile(file, '');
    const dump: DumpProgress = { exited: false, failure: null };
    const watch = new TrailerWatch();
    const reading = collect(
      (async function* () {
        for await (const b of followFile(file, dump, () => watch.complete)) {
          watch.update(b);
          yield b;
        }
      })(),
    );
    for (const piece of ['1\tone\n', '2\ttw', 'o\n', '\\.\n', '\n\n']) {
      await sleep(30);
      await appendFile(file, piece);
    }
    expect(await reading).toBe('1\tone\n2\ttwo\n\\.\n\n\n');
    expect(dump.exited).toBe(false);
  });

  it('ends a file without a trailer when the writer exits, and fails when it failed', async () => {
    const file = path.join(dir, 'blob_1.dat');
    await writeFile(file, 'abc');
    const dump: DumpProgress = { exited: false, failure: null };
    const reading = collect(followFile(file, dump, () => false));
    await sleep(40);
    await appendFile(file, 'def');
    dump.exited = true;
    expect(await reading).toBe('abcdef');

    const failing: DumpProgress = { exited: false, failure: null };
    const stuck = collect(followFile(file, failing, () => false));
    await sleep(40);
    failing.failure = new Error('pg_dump exited with code 1');
    await expect(stuck).rejects.toThrow(/pg_dump exited with code 1/);
  });

  it('lists table data files as they appear, each once, and stops after the writer exits', async () => {
    const dump: DumpProgress = { exited: false, failure: null };
    const names: string[] = [];
    const listing = (async () => {
      for await (const name of newTableDataFiles(path.join(dir, 'dump'), dump)) names.push(name);
    })();
    await sleep(40); // the folder does not exist yet
    await mkdir(path.join(dir, 'dump'));
    await writeFile(path.join(dir, 'dump', '3002.dat'), '');
    await sleep(80);
    await writeFile(path.join(dir, 'dump', '3003.dat'), '');
    await writeFile(path.join(dir, 'dump', 'toc.dat'), '');
    await writeFile(path.join(dir, 'dump', 'blob_5.dat'), '');
    dump.exited = true;
    await listing;
    expect(names).toEqual(['3002.dat', '3003.dat']);
  });
});
