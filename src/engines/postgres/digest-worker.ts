// Worker thread: digests one pg_dump data file, so the per-row hashing of a big table runs on another
// core while the main thread chunks, hashes and compresses the same file into the repository.
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { digestDumpData } from './copy-digest.ts';

const { file } = workerData as { file: string };
parentPort!.postMessage(await digestDumpData(createReadStream(file, { highWaterMark: 1024 * 1024 })));
