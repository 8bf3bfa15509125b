/**
 * Feeds pg_restore each table's data through a named pipe in place of its <dumpId>.dat file, streamed
 * from the repository as pg_restore reads it: restoring needs no local copy of the dump's data (only
 * toc.dat and the large-object files are written out), and pg_restore starts at once instead of after
 * the whole dump has been rebuilt on disk.
 *
 * A pipe can only be written once pg_restore opens it, and pg_restore blocks in that open until a writer
 * comes. So each pipe is tried with a non-blocking open (ENXIO: nobody reading yet): often for the files
 * pg_restore's progress lines say it is about to read, now and then for all the others, so nothing waits
 * forever even if those lines change shape.
 */
import { constants, open } from 'node:fs';
import { Socket } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { BakError } from '../../errors.ts';
import type { BlobRef, BlobStore } from '../../repository/blobs.ts';
import { runTool } from '../../util/process.ts';

const openFd = promisify(open);

const HINTED_POLL_MS = 2;
// Every pending pipe is tried at least this often; longer for many pipes, so trying stays cheap.
const SWEEP_MIN_MS = 50;
const SWEEP_MS_PER_PIPE = 0.02;
const MKFIFO_BATCH = 500;

/** Creates a named pipe for each data file of `sizes` (name → bytes) in `dir`. Node has no mkfifo; coreutils' makes them, one process per batch. */
export async function makePipes(dir: string, sizes: ReadonlyMap<string, number>): Promise<void> {
  const names = [...sizes.keys()];
  for (let i = 0; i < names.length; i += MKFIFO_BATCH) {
    await runTool('mkfifo', ['-m', '600', '--', ...names.slice(i, i + MKFIFO_BATCH).map((n) => path.join(dir, n))]);
  }
}

/**
 * pg_restore's verbose lines that name the data file it reads next: "launching item <dumpId> TABLE DATA …"
 * in parallel mode, "processing item <dumpId> …" and "processing data for table "<schema>.<table>"" otherwise.
 */
export function dataFileHint(line: string, fileOfTable: ReadonlyMap<string, string>): string | null {
  const item = /^pg_restore: (?:launching|processing) item (\d+) /.exec(line);
  if (item) return `${item[1]}.dat`;
  const table = /^pg_restore: processing data for table "(.*)"$/.exec(line);
  return table ? (fileOfTable.get(table[1]!) ?? null) : null;
}

export class PipeFeeder {
  readonly #dir: string;
  readonly #blobs: BlobStore;
  readonly #pending: Map<string, readonly BlobRef[]>;
  readonly #hinted = new Set<string>();
  readonly #serving = new Set<Promise<void>>();
  readonly #pipes = new Set<Socket>();
  readonly #onFailure: (err: Error) => void;
  readonly #onFed: (file: string) => void;
  #failure: Error | null = null;
  #readerGone: Error | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  /**
   * `files`: pipe name → the blobs of its content. `onFailure` is told of the first failure: it must stop pg_restore.
   * `onFed` hears of each pipe whose content has all been written.
   */
  constructor(dir: string, blobs: BlobStore, files: ReadonlyMap<string, readonly BlobRef[]>, onFailure: (err: Error) => void, onFed: (file: string) => void = () => undefined) {
    this.#dir = dir;
    this.#blobs = blobs;
    this.#pending = new Map(files);
    this.#onFailure = onFailure;
    this.#onFed = onFed;
  }

  start(): void {
    this.#loop = this.#run();
    this.#loop.catch(() => undefined);
  }

  /** pg_restore says it is about to read `file`. */
  hint(file: string): void {
    if (!this.#pending.has(file)) return;
    this.#hinted.add(file);
    this.#wake?.();
  }

  /**
   * Once pg_restore has exited: stops trying and waits for writes in progress. Throws what stopped pg_restore
   * (a failed read from the repository); with `readAll` (pg_restore succeeded), also if it left a pipe unread.
   */
  async finish(readAll: boolean): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await Promise.all(this.#serving);
    for (const pipe of this.#pipes) pipe.destroy(); // pg_restore is gone: close what a failure left open
    if (this.#failure) throw this.#failure;
    if (!readAll) return;
    if (this.#readerGone) throw this.#readerGone;
    if (this.#pending.size > 0) {
      throw new BakError(`pg_restore finished without reading the data of ${[...this.#pending.keys()].sort().join(', ')}`);
    }
  }

  async #run(): Promise<void> {
    let lastSweep = 0;
    while (!this.#stopped && this.#pending.size > 0) {
      const sweepEvery = Math.max(SWEEP_MIN_MS, this.#pending.size * SWEEP_MS_PER_PIPE);
      const sweep = Date.now() - lastSweep >= sweepEvery;
      if (sweep) lastSweep = Date.now();
      for (const file of sweep ? [...this.#pending.keys()] : [...this.#hinted]) {
        if (this.#stopped) return;
        await this.#tryServe(file);
      }
      // A hinted pipe is tried again soon; with none, sleep until the next sweep or the next hint.
      const wait = this.#hinted.size > 0 ? HINTED_POLL_MS : Math.max(HINTED_POLL_MS, lastSweep + sweepEvery - Date.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  async #tryServe(file: string): Promise<void> {
    let fd: number;
    try {
      fd = await openFd(path.join(this.#dir, file), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENXIO') return; // not opened for reading yet
      return this.#fail(new BakError(`cannot open the pipe for ${file}: ${(err as Error).message}`));
    }
    const blobs = this.#pending.get(file)!;
    this.#pending.delete(file);
    this.#hinted.delete(file);
    // A pipe's fd as a socket: written from the event loop, never blocking a thread-pool thread.
    const pipe = new Socket({ fd, readable: false, writable: true });
    this.#pipes.add(pipe);
    const source = this.#blobs.readStream(blobs);
    const serving = new Promise<void>((resolve) => {
      pipe.on('finish', () => {
        this.#onFed(file);
        resolve();
      });
      // The reader went away (EPIPE): pg_restore failed or was stopped, and its own error says why.
      pipe.on('error', (err) => {
        this.#readerGone ??= new BakError(`pg_restore stopped reading ${file}: ${err.message}`);
        resolve();
      });
      // A failed read leaves the pipe open: pg_restore must be stopped before it could take the end of
      // the pipe for the end of the table's data and commit half of it.
      source.on('error', (err) => {
        err.message = `reading ${file} from the repository: ${err.message}`; // keeps its kind: a corrupt blob exits 3
        resolve(this.#fail(err));
      });
    });
    this.#serving.add(serving);
    source.pipe(pipe);
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#stopped = true;
    this.#onFailure(err);
  }
}
