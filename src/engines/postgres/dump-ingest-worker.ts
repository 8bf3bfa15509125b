// Worker thread: reads pg_dump's table data files as pg_dump writes them, digests their rows, cuts them
// into chunks at row ends (row-chunks.ts) and hashes each chunk, so the main thread only stores chunks.
// Each file's bytes are read once, here, straight into chunk buffers the two threads share: a fixed set of
// SharedArrayBuffers, named by index in messages. (Transferring fresh ArrayBuffers instead made each
// thread's GC chase the external memory that came and went: a third of the main thread's time.)
// workerData: { chunking, buffers: SharedArrayBuffer[] }.
// Messages in: { file } to ingest one file, { give: index } once a chunk buffer is stored, { exited: true }
// once pg_dump is gone, { failed: message }, { report: true } for its profile (bak --profile).
// Messages out, per file in order: { file, buffer: index, length, id } for each chunk, then
// { file, rows, digest } or { file, error }; { profile } for a report.
import { parentPort, workerData } from 'node:worker_threads';
import type { ChunkingParams } from '../../util/chunker.ts';
import { Limiter } from '../../util/concurrency.ts';
import { sha256Hex } from '../../util/hash.ts';
import { threadReport } from '../../util/stage-profile.ts';
import { followInto, TrailerWatch, type DumpProgress } from './dump-follow.ts';
import { RowChunker } from './row-chunks.ts';

type Message = { file: string } | { give: number } | { exited: true } | { failed: string } | { report: true };

const { chunking, buffers } = workerData as { chunking: ChunkingParams; buffers: SharedArrayBuffer[] };
const dump: DumpProgress = { exited: false, failure: null };
const files = new Limiter(2);
const INGEST_THREAD = 'pg dump ingest';

/** The shared chunk buffers not holding a chunk; a file waits for one the main thread has finished storing. */
const views = buffers.map((b) => Buffer.from(b));
const indexOf = new Map(buffers.map((b, i) => [b, i]));
const idle = views.map((_, i) => i);
const waiting: Array<(index: number) => void> = [];

function takeBuffer(): Promise<Buffer> {
  const free = idle.pop();
  if (free !== undefined) return Promise.resolve(views[free]!);
  return new Promise((resolve) => waiting.push((i) => resolve(views[i]!)));
}

function giveBuffer(index: number): void {
  const waiter = waiting.shift();
  if (waiter) waiter(index);
  else idle.push(index);
}

function send(file: string, chunk: Buffer): void {
  parentPort!.postMessage({ file, buffer: indexOf.get(chunk.buffer as SharedArrayBuffer), length: chunk.length, id: sha256Hex(chunk) });
}

async function ingest(file: string): Promise<void> {
  try {
    const chunker = new RowChunker(chunking, takeBuffer);
    const trailer = new TrailerWatch();
    let target = await chunker.readTarget();
    for await (const bytes of followInto(file, dump, () => trailer.complete, () => target)) {
      trailer.update(target.buffer.subarray(target.offset, target.offset + bytes));
      const chunk = await chunker.wrote(bytes);
      if (chunk) send(file, chunk);
      target = await chunker.readTarget();
    }
    const { chunk, digest } = chunker.finish();
    // The last chunk is in the buffer readTarget gave last; with none, that buffer goes back unused.
    if (chunk) send(file, chunk);
    else giveBuffer(indexOf.get(target.buffer.buffer as SharedArrayBuffer)!);
    parentPort!.postMessage({ file, ...digest });
  } catch (err) {
    parentPort!.postMessage({ file, error: (err as Error).message });
  }
}

parentPort!.on('message', (message: Message) => {
  if ('file' in message) void files.run(() => ingest(message.file));
  else if ('give' in message) giveBuffer(message.give);
  else if ('exited' in message) dump.exited = true;
  else if ('report' in message) parentPort!.postMessage({ profile: threadReport(INGEST_THREAD) });
  else dump.failure = new Error(message.failed);
});
