import { open } from 'node:fs/promises';
import { mapLimit } from '../util/concurrency.ts';
import { PRIVATE_FILE_MODE } from '../util/private-files.ts';
import type { BlobRef, BlobStore } from './blobs.ts';

/**
 * Writes content stored as blobs to a new local file. Blobs are fetched, decompressed and verified
 * `concurrency` at a time and each is written at its own offset, so a large file is rebuilt at the
 * speed of several cores instead of one blob after another. Memory: about `concurrency` blobs.
 * `exclusive` refuses a file that already exists instead of truncating it. A new file is its owner's only
 * unless `mode` says otherwise.
 */
export async function writeBlobsToFile(
  blobs: BlobStore,
  refs: readonly BlobRef[],
  file: string,
  options: { concurrency: number; exclusive?: boolean; mode?: number },
): Promise<void> {
  const offsets: number[] = [];
  let offset = 0;
  for (const ref of refs) {
    offsets.push(offset);
    offset += ref.size;
  }
  const handle = await open(file, options.exclusive ? 'wx' : 'w', options.mode ?? PRIVATE_FILE_MODE);
  try {
    await mapLimit(refs, options.concurrency, async (ref, i) => {
      const data = await blobs.get(ref);
      let written = 0;
      while (written < data.length) written += (await handle.write(data, written, data.length - written, offsets[i]! + written)).bytesWritten;
    });
  } finally {
    await handle.close();
  }
}
