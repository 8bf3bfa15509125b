// Worker thread: digests pg_dump data files as pg_dump writes them, so the per-row hashing runs on
// another core while the main thread chunks, hashes and compresses the same files into the repository.
// Messages in: { file } to digest one file, { exited: true } once pg_dump is gone, { failed: message }.
// Messages out: { file, rows, digest } or { file, error }.
import { parentPort } from 'node:worker_threads';
import { Limiter } from '../../util/concurrency.ts';
import { CopyDigester } from './copy-digest.ts';
import { followFile, TrailerWatch, type DumpProgress } from './dump-follow.ts';

type Message = { file: string } | { exited: true } | { failed: string };

const dump: DumpProgress = { exited: false, failure: null };
const limiter = new Limiter(2);

async function digest(file: string): Promise<void> {
  try {
    const digester = new CopyDigester({ requireEndMarker: true });
    const trailer = new TrailerWatch();
    for await (const chunk of followFile(file, dump, () => trailer.complete, { reuseBuffer: true })) {
      digester.update(chunk);
      trailer.update(chunk);
    }
    parentPort!.postMessage({ file, ...digester.finish() });
  } catch (err) {
    parentPort!.postMessage({ file, error: (err as Error).message });
  }
}

parentPort!.on('message', (message: Message) => {
  if ('file' in message) void limiter.run(() => digest(message.file));
  else if ('exited' in message) dump.exited = true;
  else dump.failure = new Error(message.failed);
});
