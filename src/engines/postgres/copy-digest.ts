/**
 * Row count and order-independent digest of a table's COPY text data, computed the same way from a
 * pg_dump .dat file and from `COPY … TO STDOUT` of a restored table, so the two can be compared.
 *
 * digest = (Σ SHA-256(row line bytes, without "\n")) mod 2^256, as 64 hex digits.
 * A sum rather than XOR: with XOR two equal rows cancel, so {a, a} and {b, b} (same count) would
 * collide, and duplicate rows are common in tables without keys. A sum keeps multiplicities. It is an
 * integrity check against accidents and bugs, not a defence against someone forging rows.
 */
import { createHash, hash, type Hash } from 'node:crypto';
import type { Client, Connection, Submittable } from 'pg';
import { BakError } from '../../errors.ts';

export const COPY_DIGEST_ALGORITHM = 'sha256-rowsum';

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
const TWO_32 = 2 ** 32;
// Each lane gains < 2^32 per row; carrying every 2^20 rows keeps lanes below 2^53, where doubles are exact.
const NORMALIZE_EVERY = 2 ** 20;

/**
 * Push-style digester, so the engine can feed it the same chunks it uploads. Constant memory: a row cut
 * by a chunk boundary is hashed incrementally rather than reassembled.
 */
export class CopyDigester {
  readonly #requireEndMarker: boolean;
  // The running sum as 8 little-endian 32-bit limbs (lane 0 least significant), carries deferred.
  readonly #lanes = new Float64Array(8);
  #rows = 0;
  #sinceNormalize = 0;
  #partial: Hash | null = null;
  #partialLength = 0;
  #partialHead = 0; // first two bytes of the partial line, to recognise a split "\."
  #ended = false;
  #finished = false;

  /** requireEndMarker: the data must end with a "\." line, as pg_dump's .dat files do; its absence means truncation. */
  constructor(options: { requireEndMarker: boolean }) {
    this.#requireEndMarker = options.requireEndMarker;
  }

  update(chunk: Uint8Array): void {
    if (this.#finished) throw new Error('CopyDigester.update after finish');
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    if (this.#ended) return this.#checkTrailer(buf, 0);
    if (this.#partial !== null) {
      const nl = buf.indexOf(NL);
      const piece = nl === -1 ? buf : buf.subarray(0, nl);
      this.#extendPartial(piece);
      if (nl === -1) return;
      const partial = this.#partial;
      this.#partial = null;
      if (this.#partialLength === 2 && this.#partialHead === ((BACKSLASH << 8) | DOT)) {
        this.#ended = true;
        return this.#checkTrailer(buf, nl + 1);
      }
      this.#add(partial.digest('binary'));
      pos = nl + 1;
    }
    const end = buf.length;
    while (pos < end) {
      const nl = buf.indexOf(NL, pos);
      if (nl === -1) {
        this.#partial = createHash('sha256');
        this.#partialLength = 0;
        this.#partialHead = 0;
        this.#extendPartial(buf.subarray(pos));
        return;
      }
      if (nl - pos === 2 && buf[pos] === BACKSLASH && buf[pos + 1] === DOT) {
        this.#ended = true;
        return this.#checkTrailer(buf, nl + 1);
      }
      this.#add(hash('sha256', buf.subarray(pos, nl), 'binary'));
      pos = nl + 1;
    }
  }

  finish(): CopyDigest {
    if (this.#partial !== null) throw new CopyDataError(`COPY data is truncated: row ${this.#rows + 1} has no end of line`);
    if (this.#requireEndMarker && !this.#ended) throw new CopyDataError(`COPY data is truncated: no "\\." end-of-data line after ${this.#rows} rows`);
    if (!this.#finished) this.#normalize();
    this.#finished = true;
    let hex = '';
    for (let k = 7; k >= 0; k--) hex += this.#lanes[k]!.toString(16).padStart(8, '0');
    return { rows: this.#rows, digest: hex };
  }

  #extendPartial(piece: Buffer): void {
    for (let i = 0; i < piece.length && this.#partialLength + i < 2; i++) this.#partialHead = (this.#partialHead << 8) | piece[i]!;
    this.#partialLength += piece.length;
    this.#partial!.update(piece);
  }

  // h is the digest as a 'binary' (latin1) string: one char per byte. Node's 'buffer' output costs a Buffer
  // allocation per row and made hashing ~2.5x slower; a 32-char one-byte string is far cheaper.
  #add(h: string): void {
    const lanes = this.#lanes;
    for (let k = 0, i = 28; k < 8; k++, i -= 4) {
      lanes[k]! += ((h.charCodeAt(i) << 24) | (h.charCodeAt(i + 1) << 16) | (h.charCodeAt(i + 2) << 8) | h.charCodeAt(i + 3)) >>> 0;
    }
    this.#rows++;
    if (++this.#sinceNormalize === NORMALIZE_EVERY) this.#normalize();
  }

  #normalize(): void {
    let carry = 0;
    for (let k = 0; k < 8; k++) {
      const v = this.#lanes[k]! + carry;
      carry = Math.floor(v / TWO_32);
      this.#lanes[k] = v - carry * TWO_32;
    }
    this.#sinceNormalize = 0; // the carry out of lane 7 is dropped: mod 2^256
  }

  // pg_dump ends a .dat file with "\.\n\n\n"; only empty lines may follow the marker.
  #checkTrailer(buf: Buffer, from: number): void {
    for (let i = from; i < buf.length; i++) {
      if (buf[i] !== NL) throw new CopyDataError(`COPY data continues after the "\\." end-of-data line (after ${this.#rows} rows)`);
    }
  }
}

async function digestStream(stream: AsyncIterable<Uint8Array>, requireEndMarker: boolean): Promise<CopyDigest> {
  const digester = new CopyDigester({ requireEndMarker });
  for await (const chunk of stream) digester.update(chunk);
  return digester.finish();
}

/** Digest of a pg_dump -Z0 directory-format data file (<dumpId>.dat), which must end with its "\." line. */
export function digestDumpData(stream: AsyncIterable<Uint8Array>): Promise<CopyDigest> {
  return digestStream(stream, true);
}

/** Digest of `COPY … TO STDOUT` text output (no "\." line: the protocol ends the copy instead). */
export function digestCopyOutput(stream: AsyncIterable<Uint8Array>): Promise<CopyDigest> {
  return digestStream(stream, false);
}

/**
 * A pg Submittable that runs a COPY TO STDOUT and digests each CopyData message as it arrives: no
 * buffering and no dependency on pg-copy-streams. pg routes the backend's messages to these handlers.
 */
class CopyOutDigest implements Submittable {
  readonly text: string;
  readonly #digester = new CopyDigester({ requireEndMarker: false });
  readonly #resolve: (d: CopyDigest) => void;
  readonly #reject: (e: unknown) => void;
  #error: unknown = null;
  readonly result: Promise<CopyDigest>;

  constructor(text: string) {
    this.text = text;
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

/** Runs `copySql` (from toc.ts copyOutSql) on a client already set up with dumpSessionSql, and digests its output. */
export function digestTable(client: Client, copySql: string): Promise<CopyDigest> {
  return client.query(new CopyOutDigest(copySql)).result;
}
