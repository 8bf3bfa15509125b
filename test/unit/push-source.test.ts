import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pushSourceOf, readAll } from '../../src/util/push-source.ts';

describe('PushSource over a Readable (the SDK and node:https bodies)', () => {
  it('delivers every byte in order, pausing while the sink says so', async () => {
    const data = randomBytes(1_000_000);
    const source = pushSourceOf(Readable.from([data.subarray(0, 300_000), data.subarray(300_000, 700_000), data.subarray(700_000)]));
    const got: Buffer[] = [];
    let pauses = 0;
    await source.pipe((piece) => {
      got.push(Buffer.from(piece));
      if (got.length === 1) {
        pauses++;
        setTimeout(() => source.resume(), 5);
        return false;
      }
      return true;
    });
    expect(pauses).toBe(1);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('rejects on a stream error and on a close before the end; readAll grows past the announced length', async () => {
    const failing = new PassThrough();
    const read = readAll(pushSourceOf(failing), 10);
    failing.write('abc');
    failing.destroy(new Error('socket hang up'));
    await expect(read).rejects.toThrow('socket hang up');

    const cut = new PassThrough();
    const reading = readAll(pushSourceOf(cut), 10);
    cut.write('abc');
    setImmediate(() => cut.destroy());
    await expect(reading).rejects.toThrow(/closed before its end/);

    expect((await readAll(pushSourceOf(Readable.from([Buffer.from('more than'), Buffer.from(' announced')])), 4)).toString()).toBe('more than announced');
  });
});
