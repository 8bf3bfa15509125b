import { randomBytes } from 'node:crypto';
import type { Manifest } from '../../src/repository/manifest.ts';
import type { Repository } from '../../src/repository/repository.ts';

/**
 * Commits a snapshot at a chosen time, with one item shared by every snapshot of the source and
 * one item of its own (`unique` random bytes), plus an index whose entries reference blobs of their own.
 */
export async function commitSynthetic(
  repo: Repository,
  options: { at: Date; source?: string; job?: string | null; unique?: number; entries?: number; status?: Manifest['status'] },
): Promise<Manifest> {
  const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: options.source ?? 'dir:///synthetic', job: options.job === undefined ? 'nightly' : options.job, now: options.at });
  await writer.addItem({ name: 'shared.txt', kind: 'file' }, [Buffer.from('the same in every snapshot\n')]);
  await writer.addItem({ name: 'own.bin', kind: 'file' }, [randomBytes(options.unique ?? 4096)]);
  const index = writer.openIndex('files');
  for (let i = 0; i < (options.entries ?? 3); i++) {
    const written = await repo.blobs.writeStream([randomBytes(512)]);
    await index.add({ name: `entry-${i}`, size: written.size, checksum: written.checksum, blobs: written.blobs });
  }
  await writer.closeIndex(index);
  return writer.commit(options.status ? { status: options.status } : {});
}

/** Every object in the store with its size and content hash: two equal listings mean nothing changed. */
export async function fingerprint(repo: Repository): Promise<string[]> {
  const { createHash } = await import('node:crypto');
  const out: string[] = [];
  for await (const obj of repo.store.list('')) {
    out.push(`${obj.key} ${obj.size} ${createHash('sha256').update(await repo.store.getBuffer(obj.key)).digest('hex')}`);
  }
  return out;
}
