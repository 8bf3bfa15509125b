/**
 * Reader for the toc.dat of a pg_dump directory-format dump.
 *
 * Layout (src/bin/pg_dump/pg_backup_archiver.c WriteHead/WriteToc, pg_backup_directory.c _WriteExtraToc):
 *   "PGDMP", vmaj, vmin, vrev, intSize, offSize, format      one byte each
 *   compression    int (level) before 1.15; one byte (algorithm) from 1.15
 *   created        7 ints: sec, min, hour, mday, mon (0-based), year - 1900, isdst
 *   dbname, server version, pg_dump version                  strs
 *   count          int, then per entry:
 *     dumpId, hadDumper ints; tableoid, oid strs; tag, desc strs; section int;
 *     defn, dropStmt, copyStmt, namespace, tablespace, tableam (1.14+) strs;
 *     relkind int (1.16+); owner str; "false" str (WITH OIDS, long gone);
 *     dependency dumpIds as strs up to a NULL str; data file name str ("" = none).
 *   int = sign byte (0/1) + intSize little-endian magnitude bytes; str = int length (-1 = NULL) + bytes.
 * PostgreSQL 12-15 write 1.14, 16 writes 1.15, 17+ write 1.16.
 */
import { BakError } from '../../errors.ts';

export class TocFormatError extends BakError {}

/** ArchiveFormat codes; a directory dump's toc.dat carries the tar code (pg_backup_directory.c). */
const FORMATS: Record<number, string> = { 1: 'custom', 3: 'tar', 4: 'plain', 5: 'directory' };
const SECTIONS: Record<number, TocSection> = { 1: 'none', 2: 'pre-data', 3: 'data', 4: 'post-data' };
const COMPRESSION_ALGORITHMS: Record<number, CompressionAlgorithm> = { 0: 'none', 1: 'gzip', 2: 'lz4', 3: 'zstd' };
const MIN_VERSION = [1, 12] as const; // directory format exists since 1.12 (PostgreSQL 9.1)
const MAX_VERSION = [1, 16] as const;

export type TocSection = 'none' | 'pre-data' | 'data' | 'post-data';
export type CompressionAlgorithm = 'none' | 'gzip' | 'lz4' | 'zstd';

export interface TocHeader {
  magic: 'PGDMP';
  version: string; // "1.14.0"
  intSize: number;
  offSize: number;
  format: string;
  /** Level is known only before 1.15 (-1 = default gzip level), algorithm only from 1.15 on. */
  compression: { algorithm: CompressionAlgorithm; level: number | null };
  /** pg_dump's local wall-clock time; the file does not say which zone. */
  created: { year: number; month: number; day: number; hour: number; minute: number; second: number; isDst: boolean };
  databaseName: string | null;
  serverVersion: string | null;
  pgDumpVersion: string | null;
}

export interface TocEntry {
  dumpId: number;
  hadDumper: boolean;
  tableOid: number;
  oid: number;
  tag: string | null;
  desc: string | null;
  section: TocSection;
  defn: string | null;
  dropStmt: string | null;
  copyStmt: string | null;
  namespace: string | null;
  tablespace: string | null;
  tableam: string | null;
  relkind: string | null;
  owner: string | null;
  dependencies: number[];
  /** File in the dump directory ("3360.dat", "blobs.toc"); on disk it gains .gz/.lz4/.zst when compressed. */
  dataFile: string | null;
}

export interface Toc {
  header: TocHeader;
  /** From the ENCODING entry: the client encoding of every string and data file in the dump. */
  encoding: string | null;
  entries: TocEntry[];
}

class Reader {
  readonly buf: Buffer;
  pos = 0;
  intSize = 4;
  decoder: (b: Buffer) => string = (b) => b.toString('utf8');

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new TocFormatError(`toc.dat is truncated: ${what} needs ${n} bytes at offset ${this.pos}, file has ${this.buf.length}`);
    }
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  int(what: string): number {
    this.need(1 + this.intSize, what);
    const sign = this.buf[this.pos++]!;
    if (sign > 1) throw new TocFormatError(`toc.dat is corrupt: bad sign byte ${sign} for ${what} at offset ${this.pos - 1}`);
    let value = 0;
    for (let i = 0, scale = 1; i < this.intSize; i++, scale *= 256) value += this.buf[this.pos++]! * scale;
    return sign ? -value : value;
  }

  str(what: string): string | null {
    const len = this.int(`length of ${what}`);
    if (len === -1) return null;
    if (len < 0) throw new TocFormatError(`toc.dat is corrupt: length ${len} for ${what} at offset ${this.pos}`);
    this.need(len, what);
    const s = this.decoder(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

function atLeast(version: readonly number[], major: number, minor: number): boolean {
  return version[0]! > major || (version[0] === major && version[1]! >= minor);
}

function readHeader(r: Reader): { header: TocHeader; version: number[] } {
  r.need(5, 'magic');
  if (r.buf.toString('latin1', 0, 5) !== 'PGDMP') throw new TocFormatError('not a pg_dump archive: toc.dat does not start with "PGDMP"');
  r.pos = 5;
  const version = [r.byte('version'), r.byte('version'), r.byte('version')];
  if (!atLeast(version, ...MIN_VERSION) || atLeast(version, MAX_VERSION[0], MAX_VERSION[1] + 1)) {
    throw new TocFormatError(`unsupported pg_dump archive version ${version.join('.')} (bak reads ${MIN_VERSION.join('.')} to ${MAX_VERSION.join('.')})`);
  }
  const intSize = r.byte('int size');
  if (intSize < 1 || intSize > 8) throw new TocFormatError(`toc.dat is corrupt: integer size ${intSize}`);
  r.intSize = intSize;
  const offSize = r.byte('offset size');
  const formatCode = r.byte('format');
  const format = FORMATS[formatCode];
  if (format !== 'tar' && format !== 'directory') {
    throw new TocFormatError(`toc.dat has archive format ${format ?? formatCode}; bak reads only the toc.dat of a directory-format dump`);
  }
  let compression: TocHeader['compression'];
  if (atLeast(version, 1, 15)) {
    const code = r.byte('compression algorithm');
    const algorithm = COMPRESSION_ALGORITHMS[code];
    if (!algorithm) throw new TocFormatError(`toc.dat is corrupt: compression algorithm ${code}`);
    compression = { algorithm, level: null };
  } else {
    const level = r.int('compression level');
    compression = { algorithm: level === 0 ? 'none' : 'gzip', level };
  }
  const [second, minute, hour, day, month, year, isDst] = ['sec', 'min', 'hour', 'mday', 'mon', 'year', 'isdst'].map((f) => r.int(`created ${f}`));
  const header: TocHeader = {
    magic: 'PGDMP',
    version: version.join('.'),
    intSize,
    offSize,
    format,
    compression,
    created: { year: year! + 1900, month: month! + 1, day: day!, hour: hour!, minute: minute!, second: second!, isDst: isDst! > 0 },
    databaseName: r.str('database name'),
    serverVersion: r.str('server version'),
    pgDumpVersion: r.str('pg_dump version'),
  };
  return { header, version };
}

function oidOf(text: string | null, at: string): number {
  const oid = Number(text ?? 0);
  if (!Number.isInteger(oid) || oid < 0) throw new TocFormatError(`toc.dat is corrupt: ${at} has oid "${text}"`);
  return oid;
}

function readEntry(r: Reader, version: number[], index: number): TocEntry {
  const at = `entry ${index + 1}`;
  const dumpId = r.int(`${at} dump id`);
  if (dumpId <= 0) throw new TocFormatError(`toc.dat is corrupt: ${at} has dump id ${dumpId}`);
  const hadDumper = r.int(`${at} hadDumper`) !== 0;
  const tableOid = oidOf(r.str(`${at} table oid`), at);
  const oid = oidOf(r.str(`${at} oid`), at);
  const tag = r.str(`${at} tag`);
  const desc = r.str(`${at} desc`);
  const sectionCode = r.int(`${at} section`);
  const section = SECTIONS[sectionCode];
  if (!section) throw new TocFormatError(`toc.dat is corrupt: ${at} has section ${sectionCode}`);
  const defn = r.str(`${at} defn`);
  const dropStmt = r.str(`${at} dropStmt`);
  const copyStmt = r.str(`${at} copyStmt`);
  const namespace = r.str(`${at} namespace`);
  const tablespace = r.str(`${at} tablespace`);
  const tableam = atLeast(version, 1, 14) ? r.str(`${at} tableam`) : null;
  const relkindCode = atLeast(version, 1, 16) ? r.int(`${at} relkind`) : 0;
  const owner = r.str(`${at} owner`);
  if (r.str(`${at} with-oids flag`) === 'true') throw new TocFormatError(`${at} (${desc} ${tag}) is a table WITH OIDS, which no supported PostgreSQL restores`);
  const dependencies: number[] = [];
  for (let dep = r.str(`${at} dependency`); dep !== null; dep = r.str(`${at} dependency`)) {
    const id = Number(dep);
    if (!Number.isInteger(id)) throw new TocFormatError(`toc.dat is corrupt: ${at} has dependency "${dep}"`);
    dependencies.push(id);
  }
  const dataFile = r.str(`${at} data file name`) || null;
  const relkind = relkindCode ? String.fromCharCode(relkindCode) : null;
  return { dumpId, hadDumper, tableOid, oid, tag, desc, section, defn, dropStmt, copyStmt, namespace, tablespace, tableam, relkind, owner, dependencies, dataFile };
}

/** PostgreSQL encoding names whose bytes Node can decode; others fall back to latin1, which keeps every byte. */
const DECODERS: Record<string, string> = { UTF8: 'utf-8', LATIN1: 'iso-8859-1', WIN1252: 'windows-1252', EUC_JP: 'euc-jp', SJIS: 'shift_jis', GBK: 'gbk', BIG5: 'big5', EUC_KR: 'euc-kr', KOI8R: 'koi8-r', WIN1251: 'windows-1251' };

function decoderFor(encoding: string): (b: Buffer) => string {
  if (encoding === 'UTF8' || encoding === 'SQL_ASCII') return (b) => b.toString('utf8');
  const label = DECODERS[encoding];
  if (label) {
    try {
      const decoder = new TextDecoder(label);
      return (b) => decoder.decode(b);
    } catch {
      // this Node lacks the ICU data for it
    }
  }
  return (b) => b.toString('latin1');
}

/** Parses a whole toc.dat (it is small: metadata only). Throws TocFormatError on anything malformed. */
export function parseToc(buf: Buffer): Toc {
  const r = new Reader(buf);
  const { header, version } = readHeader(r);
  const count = r.int('entry count');
  // Every entry takes well over 20 bytes, so a count beyond that is corruption, not a reason to loop for ages.
  if (count < 0 || count > buf.length / 20) throw new TocFormatError(`toc.dat is corrupt: entry count ${count} for a ${buf.length}-byte file`);
  const entries: TocEntry[] = [];
  let encoding: string | null = null;
  for (let i = 0; i < count; i++) {
    const entry = readEntry(r, version, i);
    if (entry.desc === 'ENCODING' && entry.defn) {
      encoding = /'([^']+)'/.exec(entry.defn)?.[1] ?? null;
      if (encoding) r.decoder = decoderFor(encoding.toUpperCase());
    }
    entries.push(entry);
  }
  if (r.pos !== buf.length) throw new TocFormatError(`toc.dat is corrupt: ${buf.length - r.pos} unexpected bytes after the last entry`);
  return { header, encoding, entries };
}

/** Entries whose data is a COPY file of one table (pg_dump writes one per table and per partition). */
export function tableDataEntries(toc: Toc): TocEntry[] {
  return toc.entries.filter((e) => e.desc === 'TABLE DATA' && e.dataFile !== null);
}

// pg_dump quotes with fmtId: an identifier is either lower-case ASCII or fully double-quoted.
const IDENT = String.raw`(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")`;
const COPY_STMT = new RegExp(String.raw`^COPY (${IDENT}\.${IDENT}(?: \(${IDENT}(?:, ${IDENT})*\))?) +FROM stdin;\n?$`);

/**
 * `COPY schema.table (cols) TO STDOUT` for a TABLE DATA entry: the same columns in the same order pg_dump
 * copied (it leaves out generated columns), so the output is byte-comparable with the .dat file.
 * The statement comes from a stored dump, so it is checked to be nothing but a quoted name and column list.
 */
export function copyOutSql(entry: TocEntry): string {
  const match = entry.copyStmt ? COPY_STMT.exec(entry.copyStmt) : null;
  if (!match) throw new TocFormatError(`TOC entry ${entry.dumpId} (${entry.desc} ${entry.namespace}.${entry.tag}) has no plain COPY statement: ${JSON.stringify(entry.copyStmt)}`);
  return `COPY ${match[1]} TO STDOUT`;
}

/** blobs.toc of a directory dump: one "<oid> blob_<oid>.dat" line per large object (pg_backup_directory.c _StartLO). */
export function parseBlobsToc(text: string): { oid: number; file: string }[] {
  const blobs: { oid: number; file: string }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const match = /^(\d+) (blob_\d+\.dat(?:\.gz|\.lz4|\.zst)?)$/.exec(line);
    if (!match) throw new TocFormatError(`blobs.toc is corrupt: line ${JSON.stringify(line)}`);
    blobs.push({ oid: Number(match[1]), file: match[2]! });
  }
  return blobs;
}
