import { BakError } from '../../errors.ts';
import {
  bytesToUnscaled,
  floatOf,
  numericToUnscaled,
  parseDate,
  parseTimestamp,
  unscaledToBytes,
  unscaledToNumeric,
  type ColumnType,
  type RawCell,
  type ScalarCode,
} from './types.ts';

/**
 * Per-type handling of one cell, compiled once per column: to Avro (backup), from Avro to the raw value a mutation
 * carries (restore), and into the canonical bytes the row digest hashes (both). Every function takes the raw value
 * Spanner sends (types.ts RawCell), so a backup and the check of its restore hash the same typed values however
 * Spanner spells them.
 */
export interface CellCodec {
  avroType: unknown;
  toAvro(cell: RawCell): unknown;
  fromAvro(value: unknown): RawCell;
  digest(out: DigestWriter, cell: RawCell): void;
}

const DECIMAL = { type: 'bytes', logicalType: 'decimal', precision: 38, scale: 9 };
const AVRO_SCALAR: Record<ScalarCode, unknown> = {
  BOOL: 'boolean',
  INT64: 'long',
  FLOAT32: 'float',
  FLOAT64: 'double',
  NUMERIC: DECIMAL,
  STRING: 'string',
  BYTES: 'bytes',
  DATE: 'string',
  TIMESTAMP: 'string',
  JSON: 'string',
};

interface ScalarCodec {
  toAvro(cell: RawCell): unknown;
  fromAvro(value: unknown): RawCell;
  digest(out: DigestWriter, cell: RawCell): void;
}

const asString = (cell: RawCell) => cell as string;

const SCALARS: Record<ScalarCode, ScalarCodec> = {
  BOOL: { toAvro: (c) => c as boolean, fromAvro: (v) => v as boolean, digest: (o, c) => o.u8(c ? 1 : 0) },
  INT64: { toAvro: (c) => BigInt(c as string), fromAvro: (v) => (v as bigint).toString(), digest: (o, c) => o.int64Text(c as string) },
  FLOAT64: { toAvro: (c) => floatOf(c as string | number), fromAvro: (v) => v as number, digest: (o, c) => o.f64(floatOf(c as string | number)) },
  FLOAT32: { toAvro: (c) => floatOf(c as string | number), fromAvro: (v) => v as number, digest: (o, c) => o.f32(floatOf(c as string | number)) },
  NUMERIC: {
    toAvro: (c) => unscaledToBytes(numericToUnscaled(c as string)),
    fromAvro: (v) => unscaledToNumeric(bytesToUnscaled(v as Buffer)),
    digest: (o, c) => o.i128(numericToUnscaled(c as string)),
  },
  STRING: { toAvro: asString, fromAvro: (v) => v as string, digest: (o, c) => o.text(c as string) },
  JSON: { toAvro: asString, fromAvro: (v) => v as string, digest: (o, c) => o.text(c as string) },
  BYTES: { toAvro: (c) => Buffer.from(c as string, 'base64'), fromAvro: (v) => (v as Buffer).toString('base64'), digest: (o, c) => o.base64(c as string) },
  DATE: { toAvro: asString, fromAvro: (v) => v as string, digest: (o, c) => o.i32(parseDate(c as string)) },
  TIMESTAMP: {
    toAvro: asString,
    fromAvro: (v) => v as string,
    digest: (o, c) => {
      const t = parseTimestamp(c as string);
      o.safeI64(t.seconds);
      o.u32(t.nanos);
    },
  },
};

export function cellCodec(type: ColumnType, nullable: boolean): CellCodec {
  const scalar = SCALARS[type.code];
  if (!scalar) throw new BakError(`no codec for Spanner type ${type.sqlType}`);
  const scalarAvro = AVRO_SCALAR[type.code];
  if (!type.array) {
    return {
      avroType: nullable ? ['null', scalarAvro] : scalarAvro,
      toAvro: (c) => (c === null ? null : scalar.toAvro(c)),
      fromAvro: (v) => (v === null || v === undefined ? null : scalar.fromAvro(v)),
      digest: (o, c) => {
        if (c === null) o.u8(0);
        else {
          o.u8(1);
          scalar.digest(o, c);
        }
      },
    };
  }
  // Array elements are always nullable, as in Google's export format.
  const arrayAvro = { type: 'array', items: ['null', scalarAvro] };
  return {
    avroType: nullable ? ['null', arrayAvro] : arrayAvro,
    toAvro: (c) => (c === null ? null : (c as RawCell[]).map((e) => (e === null ? null : scalar.toAvro(e)))),
    fromAvro: (v) => (v === null || v === undefined ? null : (v as unknown[]).map((e) => (e === null ? null : scalar.fromAvro(e)))),
    digest: (o, c) => {
      if (c === null) {
        o.u8(0);
        return;
      }
      const list = c as RawCell[];
      o.u8(1);
      o.u32(list.length);
      for (const e of list) {
        if (e === null) o.u8(0);
        else {
          o.u8(1);
          scalar.digest(o, e);
        }
      }
    },
  };
}

/** A reusable, growing buffer for one row's canonical bytes. */
export class DigestWriter {
  buf = Buffer.allocUnsafe(4096);
  view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }

  i32(v: number): void {
    this.room(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
  }

  i64(v: bigint): void {
    this.room(8);
    this.view.setBigInt64(this.length, v);
    this.length += 8;
  }

  /** An INT64 of its decimal text: the same 8 bytes as `i64`, without a BigInt when the value is a safe integer. */
  int64Text(text: string): void {
    if (text.length < 16) this.safeI64(Number(text));
    else this.i64(BigInt(text));
  }

  /** A safe integer as a big-endian 64-bit two's complement, as `i64` writes it. */
  safeI64(v: number): void {
    this.room(8);
    const high = Math.floor(v / 4_294_967_296);
    this.view.setInt32(this.length, high);
    this.view.setUint32(this.length + 4, v - high * 4_294_967_296);
    this.length += 8;
  }

  i128(v: bigint): void {
    this.room(16);
    this.view.setBigInt64(this.length, v >> 64n);
    this.view.setBigUint64(this.length + 8, BigInt.asUintN(64, v));
    this.length += 16;
  }

  f64(v: number): void {
    this.room(8);
    // One NaN: Spanner may hand back any of the NaN bit patterns.
    if (Number.isNaN(v)) this.view.setUint32(this.length, 0x7ff80000), this.view.setUint32(this.length + 4, 0);
    else this.view.setFloat64(this.length, v);
    this.length += 8;
  }

  f32(v: number): void {
    this.room(4);
    if (Number.isNaN(v)) this.view.setUint32(this.length, 0x7fc00000);
    else this.view.setFloat32(this.length, v);
    this.length += 4;
  }

  text(s: string): void {
    const max = s.length * 3;
    this.room(4 + max);
    const n = this.buf.write(s, this.length + 4, 'utf8');
    this.view.setUint32(this.length, n);
    this.length += 4 + n;
  }

  base64(s: string): void {
    const max = Math.ceil((s.length * 3) / 4);
    this.room(4 + max);
    const n = this.buf.write(s, this.length + 4, 'base64');
    this.view.setUint32(this.length, n);
    this.length += 4 + n;
  }
}
