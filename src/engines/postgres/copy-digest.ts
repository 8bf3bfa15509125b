/**
 * Row count and order-independent digest of a table's COPY text data, computed the same way from a
 * pg_dump .dat file and from `COPY … TO STDOUT` of a restored table, so the two can be compared.
 *
 * A digest is a sum of per-row hashes (a row being the line's bytes without its "\n"), so row order
 * does not matter. A sum rather than XOR: with XOR two equal rows cancel, so {a, a} and {b, b} would
 * collide, and duplicate rows are common in tables without keys; a sum keeps multiplicities. It is an
 * integrity check against accidents and bugs, not a defence against someone forging rows. Two algorithms:
 *
 * - mix64-rowsum (written by backups): Σ mix64(row) mod 2^64, 16 hex digits. mix64 is a small
 *   non-cryptographic hash (row-hash.ts) that JavaScript runs at memory speed; a changed row goes
 *   unnoticed with probability about 2^-64.
 * - sha256-rowsum (snapshots of bak before it): Σ SHA-256(row) mod 2^256, 64 hex digits. One native
 *   call per row made it ~10x slower than pg_dump produces rows; still read to check old snapshots.
 */
import type { Client, Connection, Submittable } from 'pg';
import { BakError } from '../../errors.ts';
import { MIX64_ROWSUM, newRowSum, type RowSum } from '../../util/row-sum.ts';

/** The algorithm new backups record; checks use whichever one the snapshot recorded. */
export const COPY_DIGEST_ALGORITHM = MIX64_ROWSUM;

export interface CopyDigest {
  rows: number;
  digest: string;
}

export class CopyDataError extends BakError {}

/**
 * What pg_dump sets on each of its connections before it copies data (PostgreSQL 15):
 * search_path from ConnectDatabase() in src/bin/pg_dump/pg_backup_db.c (ALWAYS_SECURE_SEARCH_PATH_SQL),
 * the rest from setup_connection() in src/bin/pg_dump/pg_dump.c. Only DateStyle, IntervalStyle and
 * extra_float_digits change COPY output; row_security=off makes an RLS-filtered read fail instead of
 * silently returning fewer rows. client_encoding is left at the connection default, the database encoding.
 */
export const PG_DUMP_SESSION_SETTINGS: readonly (readonly [name: string, value: string])[] = [
  ['search_path', ''],
  ['DateStyle', 'ISO'],
  ['IntervalStyle', 'postgres'],
  ['extra_float_digits', '3'],
  ['synchronize_seqscans', 'off'],
  ['statement_timeout', '0'],
  ['lock_timeout', '0'],
  ['idle_in_transaction_session_timeout', '0'],
  ['row_security', 'off'],
];

/**
 * Output settings pg_dump leaves to server/role defaults although they change COPY text (timestamptz,
 * bytea). bak pins them for pg_dump through libpq's environment (PG_DUMP_ENV) and sets them for the check.
 */
export const PINNED_OUTPUT_SETTINGS: readonly (readonly [name: string, value: string])[] = [
  ['TimeZone', 'UTC'],
  ['bytea_output', 'hex'],
];

/** Environment for pg_dump so its data is written under PINNED_OUTPUT_SETTINGS (every -j worker inherits it); append to, not replace, a PGOPTIONS the user set. */
export const PG_DUMP_ENV: Readonly<Record<string, string>> = { PGTZ: 'UTC', PGOPTIONS: '-c bytea_output=hex' };

/**
 * SET statements for a connection whose COPY output must match a dump: pg_dump's settings, the pinned
 * ones, and the dump's encoding (Toc.encoding). lc_monetary also shapes `money` output; pass the value the
 * dump was taken under when the two servers may differ.
 */
export function dumpSessionSql(options: { clientEncoding: string; lcMonetary?: string }): string[] {
  const settings = [...PG_DUMP_SESSION_SETTINGS, ...PINNED_OUTPUT_SETTINGS, ['client_encoding', options.clientEncoding] as const];
  if (options.lcMonetary !== undefined) settings.push(['lc_monetary', options.lcMonetary]);
  return settings.map(([name, value]) => `SELECT pg_catalog.set_config('${name}', '${value.replace(/'/g, "''")}', false)`);
}

const NL = 0x0a;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

/** The position of the next "\n" in bytes[from, end), or -1. */
function nextLine(bytes: Buffer, from: number, end: number): number {
  const nl = bytes.indexOf(NL, from);
  return nl >= end ? -1 : nl;
}

/**
 * Push-style digester, so the engine can feed it the same chunks it uploads. Constant memory: a row cut
 * by a chunk boundary is hashed incrementally rather than reassembled.
 */
/** Told of each complete row: where it ends (after its "\n", as an offset into the piece passed to `update`), its length without the "\n", and 32 bits of its hash. */
export type RowEndObserver = (end: number, length: number, hash: number) => void;

export class CopyDigester {
  readonly #requireEndMarker: boolean;
  readonly #sum: RowSum;
  readonly #onRow: RowEndObserver | undefined;
  #rows = 0;
  #inRow = false; // a row started in an earlier chunk is still open
  #rowLength = 0;
  #rowHead = 0; // first two bytes of the open row, to recognise a split "\."
  #ended = false;
  #finished = false;
  #backing: ArrayBufferLike | null = null;
  #bytes: Buffer = Buffer.alloc(0);
  #view: DataView = new DataView(new ArrayBuffer(0));

  /**
   * requireEndMarker: the data must end with a "\." line, as pg_dump's .dat files do; its absence means truncation.
   * algorithm: the row digest to compute (default: the one backups record now).
   */
  constructor(options: { requireEndMarker: boolean; algorithm?: string; onRow?: RowEndObserver }) {
    this.#requireEndMarker = options.requireEndMarker;
    this.#onRow = options.onRow;
    this.#sum = newRowSum(options.algorithm ?? COPY_DIGEST_ALGORITHM);
  }

  /** Whether the "\." end-of-data line has been seen: nothing but empty lines may follow. */
  get ended(): boolean {
    return this.#ended;
  }

  update(chunk: Uint8Array): void {
    if (this.#finished) throw new Error('CopyDigester.update after finish');
    if (chunk.byteLength === 0) return;
    // Work in offsets into the chunk's backing memory: pg hands over each COPY row as a slice of one
    // receive buffer, and a DataView per row cost more than hashing the row.
    if (chunk.buffer !== this.#backing) {
      this.#backing = chunk.buffer;
      this.#bytes = Buffer.from(chunk.buffer);
      this.#view = new DataView(chunk.buffer);
    }
    const bytes = this.#bytes;
    const view = this.#view;
    const end = chunk.byteOffset + chunk.byteLength;
    let pos = chunk.byteOffset;
    if (this.#ended) return this.#checkTrailer(bytes, pos, end);
    const sum = this.#sum;
    if (this.#inRow) {
      const nl = nextLine(bytes, pos, end);
      this.#extendRow(bytes, view, pos, nl === -1 ? end : nl);
      if (nl === -1) return;
      this.#inRow = false;
      if (this.#rowLength === 2 && this.#rowHead === ((BACKSLASH << 8) | DOT)) {
        this.#ended = true;
        return this.#checkTrailer(bytes, nl + 1, end);
      }
      sum.endRow();
      this.#rows++;
      this.#onRow?.(nl + 1 - chunk.byteOffset, this.#rowLength, sum.lastRowHash);
      pos = nl + 1;
    }
    while (pos < end) {
      const nl = nextLine(bytes, pos, end);
      if (nl === -1) {
        this.#inRow = true;
        this.#rowLength = 0;
        this.#rowHead = 0;
        sum.beginRow();
        return this.#extendRow(bytes, view, pos, end);
      }
      if (nl - pos === 2 && bytes[pos] === BACKSLASH && bytes[pos + 1] === DOT) {
        this.#ended = true;
        return this.#checkTrailer(bytes, nl + 1, end);
      }
      sum.addRow(bytes, view, pos, nl);
      this.#rows++;
      this.#onRow?.(nl + 1 - chunk.byteOffset, nl - pos, sum.lastRowHash);
      pos = nl + 1;
    }
  }

  finish(): CopyDigest {
    if (this.#inRow) throw new CopyDataError(`COPY data is truncated: row ${this.#rows + 1} has no end of line`);
    if (this.#requireEndMarker && !this.#ended) throw new CopyDataError(`COPY data is truncated: no "\\." end-of-data line after ${this.#rows} rows`);
    this.#finished = true;
    return { rows: this.#rows, digest: this.#sum.hex() };
  }

  // Feeds bytes[from, to) to the open row.
  #extendRow(bytes: Buffer, view: DataView, from: number, to: number): void {
    for (let i = from; i < to && this.#rowLength + (i - from) < 2; i++) this.#rowHead = (this.#rowHead << 8) | bytes[i]!;
    this.#rowLength += to - from;
    this.#sum.feedRow(bytes, view, from, to);
  }

  // pg_dump ends a .dat file with "\.\n\n\n"; only empty lines may follow the marker.
  #checkTrailer(bytes: Buffer, from: number, end: number): void {
    for (let i = from; i < end; i++) {
      if (bytes[i] !== NL) throw new CopyDataError(`COPY data continues after the "\\." end-of-data line (after ${this.#rows} rows)`);
    }
  }
}

async function digestStream(stream: AsyncIterable<Uint8Array>, requireEndMarker: boolean, algorithm?: string): Promise<CopyDigest> {
  const digester = new CopyDigester({ requireEndMarker, algorithm });
  for await (const chunk of stream) digester.update(chunk);
  return digester.finish();
}

/** Digest of a pg_dump -Z0 directory-format data file (<dumpId>.dat), which must end with its "\." line. */
export function digestDumpData(stream: AsyncIterable<Uint8Array>, algorithm?: string): Promise<CopyDigest> {
  return digestStream(stream, true, algorithm);
}

/** Digest of `COPY … TO STDOUT` text output (no "\." line: the protocol ends the copy instead). */
export function digestCopyOutput(stream: AsyncIterable<Uint8Array>, algorithm?: string): Promise<CopyDigest> {
  return digestStream(stream, false, algorithm);
}

/**
 * A pg Submittable that runs a COPY TO STDOUT and digests each CopyData message as it arrives: no
 * buffering and no dependency on pg-copy-streams. pg routes the backend's messages to these handlers.
 */
class CopyOutDigest implements Submittable {
  readonly text: string;
  readonly #digester: CopyDigester;
  readonly #resolve: (d: CopyDigest) => void;
  readonly #reject: (e: unknown) => void;
  readonly #onBytes: ((bytes: number) => void) | undefined;
  #error: unknown = null;
  readonly result: Promise<CopyDigest>;

  constructor(text: string, algorithm?: string, onBytes?: (bytes: number) => void) {
    this.text = text;
    this.#onBytes = onBytes;
    this.#digester = new CopyDigester({ requireEndMarker: false, algorithm });
    let resolve!: (d: CopyDigest) => void;
    let reject!: (e: unknown) => void;
    this.result = new Promise<CopyDigest>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: Connection): void {
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    if (this.#error !== null) return;
    this.#onBytes?.(msg.chunk.length);
    try {
      this.#digester.update(msg.chunk);
    } catch (err) {
      this.#error = err; // the server is still sending; report once it is done
    }
  }

  handleRowDescription(): void {
    this.#error ??= new Error(`not a COPY … TO STDOUT statement: ${this.text}`);
  }

  handleCopyInResponse(connection: Connection & { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('bak expected COPY TO STDOUT');
  }

  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleError(err: unknown): void {
    this.#reject(err);
  }

  handleReadyForQuery(): void {
    if (this.#error !== null) return this.#reject(this.#error);
    try {
      this.#resolve(this.#digester.finish());
    } catch (err) {
      this.#reject(err);
    }
  }
}

/**
 * Runs `copySql` (from toc.ts copyOutSql) on a client already set up with dumpSessionSql, and digests its output;
 * `onBytes` hears the size of each piece of COPY text as it arrives.
 */
export function digestTable(client: Client, copySql: string, algorithm?: string, onBytes?: (bytes: number) => void): Promise<CopyDigest> {
  return client.query(new CopyOutDigest(copySql, algorithm, onBytes)).result;
}
