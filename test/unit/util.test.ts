import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compress, decompress, looksIncompressible } from '../../src/util/compress.ts';
import { Limiter, mapLimit, TaskPool } from '../../src/util/concurrency.ts';
import { newSnapshotId, SNAPSHOT_ID } from '../../src/util/ids.ts';
import { redactObject, redactUri, scrubSecrets } from '../../src/util/redact.ts';
import { withRetry } from '../../src/util/retry.ts';
import { sourceKeyOf } from '../../src/repository/source-key.ts';

describe('compression', () => {
  it.each(['zstd', 'gzip', 'none'] as const)('%s round-trips and is recognised by its magic', async (method) => {
    const data = Buffer.concat([randomBytes(1000), Buffer.alloc(5000, 'a')]);
    const stored = await compress(data, method);
    expect((await decompress(stored)).equals(data)).toBe(true);
    if (method !== 'none') expect(stored.length).toBeLessThan(data.length);
  });

  it('zstd: many blobs compressed at once through the kept streams each come back whole and alone', async () => {
    // Sizes from empty to past a stream's output piece (256 KiB), compressible and not, 32 in flight.
    const inputs = Array.from({ length: 400 }, (_, i) =>
      i % 3 === 0 ? randomBytes((i * 2_741) % 600_000) : Buffer.alloc((i * 7_919) % 1_500_000, String.fromCharCode(97 + (i % 26))),
    );
    const stored = await mapLimit(inputs, 32, (data) => compress(data, 'zstd'));
    const back = await mapLimit(stored, 32, (s, i) => decompress(s, inputs[i]!.length));
    back.forEach((b, i) => expect(b.equals(inputs[i]!), `blob ${i} (${inputs[i]!.length} bytes)`).toBe(true));
  });

  it.each(['zstd', 'gzip'] as const)('%s stores random bytes as they are, and compresses content with any compressible part', async (method) => {
    for (const size of [1024, 5000, 16 * 1024, 3 * 1024 * 1024]) {
      const random = randomBytes(size);
      const stored = await compress(random, method);
      expect(stored.length, `${size} random bytes`).toBe(size + 1);
      expect((await decompress(stored, size)).equals(random)).toBe(true);
    }
    // Random but for one text window among the sampled ones: compressed.
    const mixed = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(64 * 1024, 'log line 42\n')]);
    const stored = await compress(mixed, method);
    expect(stored.length).toBeLessThan(mixed.length - 32 * 1024);
    expect((await decompress(stored, mixed.length)).equals(mixed)).toBe(true);
  });

  it('sampled entropy tells random bytes from base64, text and repeats', () => {
    expect(looksIncompressible(randomBytes(1500))).toBe(true);
    expect(looksIncompressible(randomBytes(10 * 1024 * 1024))).toBe(true);
    expect(looksIncompressible(Buffer.from(randomBytes(300_000).toString('base64')))).toBe(false);
    expect(looksIncompressible(Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(1000)))).toBe(false);
    expect(looksIncompressible(Buffer.alloc(100_000))).toBe(false);
    // Too small to judge: compressed as asked.
    expect(looksIncompressible(randomBytes(200))).toBe(false);
  });

  it('stores raw content that starts with a magic number without misreading it', async () => {
    const tricky = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]);
    expect((await decompress(await compress(tricky, 'none'))).equals(tricky)).toBe(true);
  });

  it('rejects unknown encodings', async () => {
    await expect(decompress(Buffer.from('garbage'))).rejects.toThrow(/unknown blob encoding/);
  });
});

describe('redaction', () => {
  it.each([
    ['postgres://bak:s3cret@db:5432/app', 'postgres://bak:***@db:5432/app'],
    ['postgres://bak@db:5432/app', 'postgres://bak@db:5432/app'],
    ['s3://bucket/p?secretKey=abc&region=eu', 's3://bucket/p?secretKey=***&region=eu'],
    ['https://x/y?token=t0k&sig=zz', 'https://x/y?token=***&sig=***'],
  ])('%s → %s', (input, output) => expect(redactUri(input)).toBe(output));

  it('redacts secret-looking fields but shows env references', () => {
    expect(redactObject({ password: 'p', accessKeyId: 'AK', secretAccessKey: { env: 'S' }, url: 'postgres://u:p@h', jobs: 4 })).toEqual({
      password: '***',
      accessKeyId: '***',
      secretAccessKey: { env: 'S' },
      url: 'postgres://u:***@h',
      jobs: 4,
    });
  });

  it('scrubs known secret values from messages', () => {
    expect(scrubSecrets('auth failed for hunter22 at db', ['hunter22'])).toBe('auth failed for *** at db');
  });
});

describe('snapshot ids', () => {
  it('sort by time and match the documented shape', () => {
    const a = newSnapshotId(new Date('2026-11-22T01:02:03.456Z'));
    const b = newSnapshotId(new Date('2026-11-22T01:02:04.000Z'));
    expect(a).toMatch(/^2026-11-22T01-02-03Z-[0-9a-f]{6}$/);
    expect(a).toMatch(SNAPSHOT_ID);
    expect([b, a].sort()).toEqual([a, b]);
  });
});

describe('source keys', () => {
  it('are readable, stable and distinct', () => {
    const k = sourceKeyOf('postgres', 'postgres://bak:***@db.internal:5432/app');
    expect(k).toMatch(/^postgres-db.internal-5432-app-[0-9a-f]{8}$/);
    expect(sourceKeyOf('postgres', 'postgres://bak:***@db.internal:5432/app')).toBe(k);
    expect(sourceKeyOf('postgres', 'postgres://bak:***@db.internal:5432/App')).not.toBe(k);
  });
});

describe('concurrency', () => {
  it('Limiter never runs more than its limit', async () => {
    const limiter = new Limiter(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limiter.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 2));
          active--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });

  it('TaskPool applies back-pressure and reports the first failure', async () => {
    const pool = new TaskPool(2);
    let running = 0;
    let peak = 0;
    for (let i = 0; i < 10; i++) {
      await pool.submit(async () => {
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
      });
      expect(running).toBeLessThanOrEqual(2);
    }
    await pool.drain();
    expect(peak).toBe(2);

    const failing = new TaskPool(2);
    await failing.submit(async () => {
      throw new Error('boom');
    });
    await expect(failing.drain()).rejects.toThrow('boom');
  });

  it('mapLimit keeps order', async () => {
    expect(await mapLimit([3, 1, 2], 2, async (n) => n * 2)).toEqual([6, 2, 4]);
  });
});

describe('retry', () => {
  it('retries retryable errors, then succeeds', async () => {
    let calls = 0;
    const result = await withRetry(async () => {
      if (++calls < 3) throw new Error('flaky');
      return 'ok';
    }, { baseDelayMs: 1 });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('gives up after the attempts and does not retry permanent errors', async () => {
    let calls = 0;
    await expect(withRetry(async () => { calls++; throw new Error('down'); }, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow('down');
    expect(calls).toBe(3);
    calls = 0;
    await expect(withRetry(async () => { calls++; throw new Error('denied'); }, { retryable: () => false })).rejects.toThrow('denied');
    expect(calls).toBe(1);
  });
});
