import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StagedFile } from '../../src/engines/postgres/staged-file.ts';
import type { HashedChunk } from '../../src/repository/blobs.ts';

const MiB = 1024 * 1024;

describe('staging files freed as they are read', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-staged-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('turns the part already read into a hole once past the threshold, keeps the rest intact, and deletes the file', async () => {
    const file = path.join(dir, '3358.dat');
    const content = randomBytes(24 * MiB);
    await writeFile(file, content);
    const staged = new StagedFile(file, { from: 8 * MiB, step: 4 * MiB });
    async function* chunks(): AsyncGenerator<HashedChunk> {
      for (let i = 0; i < 16 * MiB; i += MiB) {
        await sleep(20); // as pg_dump writes: time for a hole to be punched between pieces
        yield { id: '', data: content.subarray(i, i + MiB), release: () => {} };
      }
    }
    let passed = 0;
    for await (const chunk of staged.freeingAsRead(chunks())) passed += chunk.data.length;
    await staged.settled();
    expect(passed).toBe(16 * MiB);

    const after = await stat(file);
    expect(after.size, 'the size pg_dump sees does not change').toBe(content.length);
    expect(after.blocks * 512, 'what was read is no longer stored').toBeLessThanOrEqual(12 * MiB);
    const bytes = await readFile(file);
    expect(bytes.subarray(16 * MiB).equals(content.subarray(16 * MiB)), 'the unread part is intact').toBe(true);
    expect(bytes.subarray(0, 8 * MiB).every((b) => b === 0), 'the hole reads as zeros').toBe(true);

    await staged.remove();
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});
