/**
 * Reading pg_dump's directory-format output while pg_dump is still writing it, so storing a table
 * overlaps with dumping the next one instead of waiting for the whole dump.
 *
 * A table's data file (<dumpId>.dat, COPY text) is complete once its "\." end-of-data line and the two
 * empty lines pg_dump writes after it are there: a data row can never be the line "\." (COPY escapes
 * the backslash), and pg_dump closes the file right after. Any file is complete once pg_dump has exited.
 */
import { open, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** pg_dump's directory-format name of a table's COPY data. */
export const TABLE_DATA_FILE = /^\d+\.dat$/;

const POLL_MS = 15;
const READ_SIZE = 1024 * 1024;
// Read buffers of finished `reuseBuffer` follows, for the next file: a database of thousands of small
// tables would otherwise allocate (and make the GC free) a buffer per table.
const spareReadBuffers: Buffer[] = [];
const MAX_SPARE_READ_BUFFERS = 4;

/** What the followers know of the pg_dump process; the runner sets it. */
export interface DumpProgress {
  exited: boolean;
  failure: Error | null;
}

// "\n\\.\n\n\n": the end-of-data line after the last row, and what pg_dump writes after it.
const TRAILER = Buffer.from('\n\\.\n\n\n');

/** Watches the end of a COPY data file's bytes for pg_dump's end-of-data trailer. */
export class TrailerWatch {
  // The last TRAILER.length bytes seen, preceded by a "\n" before the first byte (an empty table's file is just "\\.\n\n\n").
  readonly #last = Buffer.from('\n\n\n\n\n\n');

  update(buf: Buffer): void {
    const keep = TRAILER.length;
    if (buf.length >= keep) {
      buf.copy(this.#last, 0, buf.length - keep);
      return;
    }
    this.#last.copy(this.#last, 0, buf.length);
    buf.copy(this.#last, keep - buf.length);
  }

  get complete(): boolean {
    return this.#last.equals(TRAILER);
  }
}

/**
 * Yields a file's bytes as another process appends to them, until `complete()` says the content is
 * whole or the dump process has exited (after which one last read catches its final writes).
 * By default each yielded Buffer is fresh memory that consumers (the chunker) may keep; with
 * `reuseBuffer` every read lands in the same buffer, for a consumer done with each piece before
 * asking for the next (a digester): no allocation per read, so no garbage for the GC to chase.
 */
export async function* followFile(file: string, dump: DumpProgress, complete: () => boolean, options: { reuseBuffer?: boolean } = {}): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  let buf = (options.reuseBuffer && spareReadBuffers.pop()) || Buffer.allocUnsafe(READ_SIZE);
  try {
    let position = 0;
    for (;;) {
      const exitedBefore = dump.exited;
      const { bytesRead } = await handle.read(buf, 0, READ_SIZE, position);
      if (bytesRead > 0) {
        position += bytesRead;
        if (options.reuseBuffer) {
          yield buf.subarray(0, bytesRead);
        } else if (bytesRead < READ_SIZE / 4) {
          // A short read of a growing file: copy it out rather than pin a mostly empty buffer.
          yield Buffer.from(buf.subarray(0, bytesRead));
        } else {
          yield buf.subarray(0, bytesRead);
          buf = Buffer.allocUnsafe(READ_SIZE);
        }
        continue;
      }
      if (complete() || exitedBefore) return;
      if (dump.failure) throw dump.failure;
      await sleep(POLL_MS);
    }
  } finally {
    await handle.close();
    // The consumer is done with the last piece once it asks past the end: the buffer can serve another file.
    if (options.reuseBuffer && spareReadBuffers.length < MAX_SPARE_READ_BUFFERS) spareReadBuffers.push(buf);
  }
}

/**
 * Yields the names of table data files as pg_dump creates them, each once, until pg_dump has exited
 * and a last listing has been taken. Stops early if the dump failed.
 */
export async function* newTableDataFiles(dir: string, dump: DumpProgress): AsyncGenerator<string> {
  const seen = new Set<string>();
  for (;;) {
    const exitedBefore = dump.exited;
    if (dump.failure) return;
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pg_dump has not made the folder yet
    }
    for (const name of names.sort()) {
      if (TABLE_DATA_FILE.test(name) && !seen.has(name)) {
        seen.add(name);
        yield name;
      }
    }
    if (exitedBefore) return;
    await sleep(POLL_MS * 2);
  }
}
