import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataFileHint, makePipes, PipeFeeder } from '../../src/engines/postgres/restore-pipes.ts';
import { Repository } from '../../src/repository/repository.ts';
import { LocalStore } from '../../src/storage/local.ts';

describe('pg_restore progress lines', () => {
  const tables = new Map([['public.a', '3344.dat'], ['Sales.Order Lines', '3345.dat']]);

  it('name the data file pg_restore reads next, in parallel and in serial mode', () => {
    expect(dataFileHint('pg_restore: launching item 3358 TABLE DATA pgbench_accounts', tables)).toBe('3358.dat');
    expect(dataFileHint('pg_restore: processing item 3344 TABLE DATA a', tables)).toBe('3344.dat');
    expect(dataFileHint('pg_restore: processing data for table "public.a"', tables)).toBe('3344.dat');
    expect(dataFileHint('pg_restore: processing data for table "Sales.Order Lines"', tables)).toBe('3345.dat');
    expect(dataFileHint('pg_restore: processing data for table "public.unknown"', tables)).toBeNull();
    expect(dataFileHint('pg_restore: creating TABLE "public.a"', tables)).toBeNull();
  });
});

describe('feeding named pipes', () => {
  let dir: string;
  let repo: Repository;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-pipes-'));
    repo = await Repository.init(new LocalStore(await mkdtemp(path.join(dir, 'repo-'))));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Reads a pipe to its end with another process, as pg_restore would. */
  function readPipe(file: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const cat = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
      const parts: Buffer[] = [];
      cat.stdout.on('data', (d: Buffer) => parts.push(d));
      cat.on('error', reject);
      cat.on('close', () => resolve(Buffer.concat(parts)));
    });
  }

  it('a reader that goes away is pg_restore’s failure to report, not the feeder’s, unless pg_restore claims success', async () => {
    const written = await repo.blobs.writeStream([randomBytes(3 * 1024 * 1024)]);
    for (const readAll of [false, true]) {
      const sub = await mkdtemp(path.join(dir, 'gone-'));
      await makePipes(sub, new Map([['5.dat', 3 * 1024 * 1024]]));
      const feeder = new PipeFeeder(sub, repo.blobs, new Map([['5.dat', written.blobs]]), (err) => {
        throw err;
      });
      feeder.start();
      await new Promise((resolve) => spawn('head', ['-c', '100', path.join(sub, '5.dat')], { stdio: 'ignore' }).on('close', resolve));
      if (readAll) await expect(feeder.finish(true)).rejects.toThrow(/pg_restore stopped reading 5\.dat/);
      else await expect(feeder.finish(false)).resolves.toBeUndefined();
    }
  });

  it('streams each pipe’s content to whoever opens it, hinted or not, and reports pipes nobody read', async () => {
    const content = randomBytes(5 * 1024 * 1024);
    const written = await repo.blobs.writeStream([content]);
    await makePipes(dir, new Map([['1.dat', content.length], ['2.dat', content.length], ['3.dat', 0]]));
    const feeder = new PipeFeeder(dir, repo.blobs, new Map([['1.dat', written.blobs], ['2.dat', written.blobs], ['3.dat', []]]), (err) => {
      throw err;
    });
    feeder.start();
    feeder.hint('1.dat');
    const [one, two] = await Promise.all([readPipe(path.join(dir, '1.dat')), readPipe(path.join(dir, '2.dat'))]);
    expect(one.equals(content)).toBe(true);
    expect(two.equals(content)).toBe(true); // found by the sweep over every pending pipe
    await expect(feeder.finish(true)).rejects.toThrow(/without reading the data of 3\.dat/);
  });
});
