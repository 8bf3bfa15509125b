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
import { timeAsync } from '../../util/stage-profile.ts';

/** pg_dump's directory-format name of a table's COPY data. */
export const TABLE_DATA_FILE = /^\d+\.dat$/;

const POLL_MS = 15;

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

/** Where a follower puts the next bytes it reads: `length` bytes of `buffer` from `offset`. */
export interface ReadTarget {
  buffer: Buffer;
  offset: number;
  length: number;
}

/**
 * Reads a file as another process appends to it, into the places `target` gives, yielding each read's
 * byte count, until `complete()` says the content is whole or the dump process has exited (after which
 * one last read catches its final writes). Fails with the dump's failure if it failed meanwhile.
 */
export async function* followInto(file: string, dump: DumpProgress, complete: () => boolean, target: () => ReadTarget | Promise<ReadTarget>): AsyncGenerator<number> {
  const handle = await open(file, 'r');
  try {
    let position = 0;
    for (;;) {
      const exitedBefore = dump.exited;
      const { buffer, offset, length } = await target();
      const { bytesRead } = await timeAsync('read dump file', (read) => read.bytesRead, () => handle.read(buffer, offset, length, position));
      if (bytesRead > 0) {
        position += bytesRead;
        yield bytesRead;
        continue;
      }
      if (complete() || exitedBefore) return;
      if (dump.failure) throw dump.failure;
      await sleep(POLL_MS);
    }
  } finally {
    await handle.close();
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
