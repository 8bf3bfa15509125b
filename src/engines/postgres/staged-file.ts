/**
 * A pg_dump output file in local staging, freed as it is read once it is big: past PUNCH_FROM bytes,
 * every PUNCH_STEP bytes read become a hole (`fallocate --punch-hole`, util-linux), so a table of any size
 * needs at most about PUNCH_FROM + PUNCH_STEP of staging space. pg_dump only appends, so a hole behind it
 * changes nothing it writes. Smaller files are deleted once stored: punching takes the file's lock while
 * pg_dump writes it, and on a 700 MB table cost more of pg_dump's time (~0.25 s) than deleting the whole
 * file at the end (~0.13 s). Where punching is not possible (no fallocate, a file system without holes),
 * files are deleted once stored, whatever their size.
 */
import { unlink } from 'node:fs/promises';
import type { HashedChunk } from '../../repository/blobs.ts';
import { runTool } from '../../util/process.ts';

const PUNCH_FROM = 1024 * 1024 * 1024;
const PUNCH_STEP = 256 * 1024 * 1024;
// Block-aligned holes: a partial block is only zeroed, not freed.
const ALIGN = 64 * 1024;

let punchingWorks = true;

export class StagedFile {
  readonly path: string;
  readonly #from: number;
  readonly #step: number;
  #punched = 0;
  #punching: Promise<void> | null = null;

  constructor(file: string, bounds: { from: number; step: number } = { from: PUNCH_FROM, step: PUNCH_STEP }) {
    this.path = file;
    this.#from = bounds.from;
    this.#step = bounds.step;
  }

  /** Resolves once any hole being punched is done. */
  settled(): Promise<void> {
    return this.#punching ?? Promise.resolve();
  }

  /** Passes chunks of this file's content through, freeing what they cover as they go by. */
  async *freeingAsRead(chunks: AsyncIterable<HashedChunk>): AsyncGenerator<HashedChunk> {
    let read = 0;
    for await (const chunk of chunks) {
      read += chunk.data.length;
      if (read >= this.#from && read - this.#punched >= this.#step && !this.#punching && punchingWorks) this.#punch(read - (read % ALIGN));
      yield chunk;
    }
  }

  /** Deletes the file once no punching is under way. */
  async remove(): Promise<void> {
    await this.settled();
    await unlink(this.path);
  }

  #punch(upTo: number): void {
    this.#punching = runTool('fallocate', ['--punch-hole', '--offset', '0', '--length', String(upTo), this.path]).then(
      () => {
        this.#punched = upTo;
        this.#punching = null;
      },
      () => {
        punchingWorks = false; // the file is still deleted at the end; it just holds its full size until then
        this.#punching = null;
      },
    );
  }
}
