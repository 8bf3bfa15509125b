import { randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../helpers/servers.ts';

describe('fake-gcs-server test server', () => {
  const bucketName = `bak-smoke-${randomBytes(4).toString('hex')}`;
  let storage: Storage | undefined;

  beforeAll(async () => {
    const env = await requireServer('gcs');
    // An explicit apiEndpoint (not STORAGE_EMULATOR_HOST) makes the client treat it as a custom endpoint: no auth, no ADC lookup.
    storage = new Storage({ apiEndpoint: env.apiEndpoint, projectId: env.projectId });
  });

  afterAll(async () => {
    try {
      await storage?.bucket(bucketName).deleteFiles({ force: true });
      await storage?.bucket(bucketName).delete();
    } catch {
      // best effort: a bucket left behind has a unique name and harms no later run
    }
  });

  it('creates a bucket, stores, lists and reads back objects', async () => {
    const [bucket] = await storage!.createBucket(bucketName);
    expect(bucket.name).toBe(bucketName);

    const payload = Buffer.from(randomBytes(64 * 1024));
    await bucket.file('snapshots/a.bin').save(payload, { resumable: false, contentType: 'application/octet-stream' });
    await bucket.file('snapshots/b.txt').save('hello gcs', { resumable: false });
    await bucket.file('other/c.txt').save('elsewhere', { resumable: false });

    const [files] = await bucket.getFiles({ prefix: 'snapshots/' });
    expect(files.map((f) => f.name).sort()).toEqual(['snapshots/a.bin', 'snapshots/b.txt']);

    const [readBack] = await bucket.file('snapshots/a.bin').download();
    expect(readBack.equals(payload)).toBe(true);
    const [text] = await bucket.file('snapshots/b.txt').download();
    expect(text.toString('utf8')).toBe('hello gcs');

    const [metadata] = await bucket.file('snapshots/a.bin').getMetadata();
    expect(Number(metadata.size)).toBe(payload.length);
  });
});
