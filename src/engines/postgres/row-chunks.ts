/**
 * Cuts a pg_dump COPY data file into content-defined chunks at row ends, in the same pass that digests
 * its rows: a row whose hash falls under a threshold (set by its length, so chunks average `avg` bytes
 * whatever the row size) ends a chunk once the chunk has `min` bytes; a chunk with no such row is cut
 * at `max` bytes. Cut points depend only on the rows around them, so an insertion shifts only the chunks
 * it touches, as with the byte-wise gear chunker (util/chunker.ts), but the per-byte scan is gone: the
 * row hashes are computed for the digest anyway.
 *
 * Bytes are read straight into chunk-sized buffers; pieces of at most `min` bytes mean a piece holds at
 * most one cut, so a finished chunk owns its whole buffer (which can then be moved to another thread)
 * and only the bytes after a cut are copied.
 */
import type { ChunkingParams } from '../../util/chunker.ts';
import { timeAsync, timeSync } from '../../util/stage-profile.ts';
import { CopyDigester, type CopyDigest } from './copy-digest.ts';
import type { ReadTarget } from './dump-follow.ts';

const MAX_READ = 1024 * 1024;
const TWO_32 = 2 ** 32;

export class RowChunker {
  readonly #params: ChunkingParams;
  readonly #take: () => Promise<Buffer>;
  readonly #digester: CopyDigester;
  // Threshold per byte of row: a row of L bytes (with its "\n") is a cut point with probability L / span.
  readonly #perByte: number;
  readonly readSize: number;
  #buf: Buffer | null = null;
  #fill = 0; // bytes of the current chunk in #buf
  #regionStart = 0; // where the piece being digested starts in #buf
  #cut = -1; // where a row cut falls in #buf during one piece, or -1

  /** `take` gives an empty buffer of at least `params.max` bytes (it may wait until one is free). */
  constructor(params: ChunkingParams, take: () => Promise<Buffer>) {
    this.#params = params;
    this.#take = () => timeAsync('wait for a free chunk buffer', 0, take);
    this.#perByte = TWO_32 / Math.max(1, params.avg - params.min);
    this.readSize = Math.min(MAX_READ, params.min);
    this.#digester = new CopyDigester({ requireEndMarker: true, onRow: (end, length, hash) => this.#rowEnd(end, length, hash) });
  }

  /** Where the next bytes of the file go: read at most `length` bytes into `buffer` at `offset`, then call `wrote`. */
  async readTarget(): Promise<ReadTarget> {
    this.#buf ??= await this.#take();
    return { buffer: this.#buf, offset: this.#fill, length: Math.min(this.readSize, this.#params.max - this.#fill) };
  }

  /** Digests the `bytes` just read; returns the chunk they completed, if any (its buffer is the caller's now). */
  async wrote(bytes: number): Promise<Buffer | null> {
    const buf = this.#buf!;
    this.#regionStart = this.#fill;
    this.#cut = -1;
    timeSync('row digest and chunk cuts', bytes, () => this.#digester.update(buf.subarray(this.#fill, this.#fill + bytes)));
    this.#fill += bytes;
    if (this.#cut >= 0) {
      const rest = this.#fill - this.#cut;
      const next = await this.#take();
      buf.copy(next, 0, this.#cut, this.#fill);
      this.#buf = next;
      this.#fill = rest;
      return buf.subarray(0, this.#cut);
    }
    if (this.#fill < this.#params.max) return null;
    this.#buf = null;
    this.#fill = 0;
    return buf.subarray(0, this.#params.max);
  }

  /** The last chunk (null if the file ended on a cut) and the file's row count and digest; throws if the data is truncated. */
  finish(): { chunk: Buffer | null; digest: CopyDigest } {
    const digest = this.#digester.finish();
    const chunk = this.#buf && this.#fill > 0 ? this.#buf.subarray(0, this.#fill) : null;
    this.#buf = null;
    this.#fill = 0;
    return { chunk, digest };
  }

  #rowEnd(end: number, length: number, hash: number): void {
    const at = this.#regionStart + end;
    // At most one cut per piece: pieces are at most `min` bytes, and the next chunk needs `min` before its cut.
    if (this.#cut < 0 && at >= this.#params.min && hash < (length + 1) * this.#perByte) this.#cut = at;
  }
}
