import { BakError } from '../../errors.ts';

/**
 * BigQuery values in their three shapes: the REST API's JSON cells (tabledata.list), the Avro values a file holds
 * (BigQuery's own Avro mapping: decimals as bytes, TIMESTAMP as timestamp-micros, DATE as days, TIME as time-micros,
 * DATETIME/GEOGRAPHY/JSON as strings), and the one canonical form the Storage Write API takes and row digests hash.
 */

export interface Field {
  name: string;
  type: string;
  mode?: string;
  fields?: Field[];
}

/** Standard SQL names to the legacy ones tables.get may return either of. */
const TYPE_ALIASES: Record<string, string> = { INT64: 'INTEGER', FLOAT64: 'FLOAT', BOOL: 'BOOLEAN', STRUCT: 'RECORD', DECIMAL: 'NUMERIC', BIGDECIMAL: 'BIGNUMERIC' };

export function baseType(field: Field): string {
  const t = field.type.toUpperCase();
  return TYPE_ALIASES[t] ?? t;
}

const SCALE: Record<string, number> = { NUMERIC: 9, BIGNUMERIC: 38 };

/** The Avro schema of a table's rows, as BigQuery's Avro export writes it (logical types, nullable as ["null", T]). */
export function avroSchemaOf(fields: Field[], name = 'Root'): Record<string, unknown> {
  return { type: 'record', name, namespace: 'bak.bigquery', fields: fields.map((f) => avroField(f, name)) };
}

function avroField(field: Field, parent: string): Record<string, unknown> {
  let type: unknown;
  switch (baseType(field)) {
    case 'INTEGER':
      type = 'long';
      break;
    case 'FLOAT':
      type = 'double';
      break;
    case 'BOOLEAN':
      type = 'boolean';
      break;
    case 'STRING':
      type = 'string';
      break;
    case 'BYTES':
      type = 'bytes';
      break;
    case 'NUMERIC':
      type = { type: 'bytes', logicalType: 'decimal', precision: 38, scale: 9 };
      break;
    case 'BIGNUMERIC':
      type = { type: 'bytes', logicalType: 'decimal', precision: 77, scale: 38 };
      break;
    case 'TIMESTAMP':
      type = { type: 'long', logicalType: 'timestamp-micros' };
      break;
    case 'DATE':
      type = { type: 'int', logicalType: 'date' };
      break;
    case 'TIME':
      type = { type: 'long', logicalType: 'time-micros' };
      break;
    case 'DATETIME':
      type = { type: 'string', logicalType: 'datetime' };
      break;
    case 'GEOGRAPHY':
      type = { type: 'string', sqlType: 'GEOGRAPHY' };
      break;
    case 'JSON':
      type = { type: 'string', sqlType: 'JSON' };
      break;
    case 'RECORD':
      type = avroSchemaOf(field.fields ?? [], `${parent}__${field.name}`);
      delete (type as Record<string, unknown>).namespace;
      break;
    default:
      throw new BakError(`column ${field.name}: BigQuery type ${field.type} is not one bak can back up (RANGE and INTERVAL are not supported yet)`);
  }
  const mode = (field.mode ?? 'NULLABLE').toUpperCase();
  if (mode === 'REPEATED') return { name: field.name, type: { type: 'array', items: type } };
  if (mode === 'REQUIRED') return { name: field.name, type };
  return { name: field.name, type: ['null', type], default: null };
}

type Cell = { v: unknown };

/** A tabledata.list row ({f: [{v}]}) as the Avro value of `avroSchemaOf(fields)`. */
export function restRowToAvro(fields: Field[], row: { f: Cell[] }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  fields.forEach((field, i) => {
    out[field.name] = restCellToAvro(field, row.f[i]?.v ?? null);
  });
  return out;
}

function restCellToAvro(field: Field, v: unknown): unknown {
  if ((field.mode ?? '').toUpperCase() === 'REPEATED') return ((v as Cell[] | null) ?? []).map((c) => restScalarToAvro(field, c.v));
  return restScalarToAvro(field, v);
}

function restScalarToAvro(field: Field, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  const s = v as string;
  switch (baseType(field)) {
    case 'INTEGER':
      return BigInt(s);
    case 'FLOAT':
      return Number(s);
    case 'BOOLEAN':
      return s === 'true' || (v as unknown) === true;
    case 'STRING':
    case 'GEOGRAPHY':
    case 'JSON':
      return s;
    case 'DATETIME':
      return s.replace(' ', 'T');
    case 'BYTES':
      return Buffer.from(s, 'base64');
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return decimalToBytes(s, SCALE[baseType(field)]!);
    case 'TIMESTAMP':
      return timestampMicros(s);
    case 'DATE':
      return Math.round(Date.parse(`${s}T00:00:00Z`) / 86_400_000);
    case 'TIME':
      return timeMicros(s);
    case 'RECORD':
      return restRowToAvro(field.fields ?? [], v as { f: Cell[] });
    default:
      throw new BakError(`column ${field.name}: BigQuery type ${field.type} is not supported`);
  }
}

/**
 * A TIMESTAMP cell as microseconds: tabledata.list sends integer micros (with formatOptions.useInt64Timestamp),
 * or float seconds ("1767323045.123456"); the emulator sends nested ones as text ("2020-01-01 00:00:00+00").
 */
export function timestampMicros(s: string): bigint {
  if (/^-?\d+$/.test(s)) return BigInt(s);
  const m = /^(-?)(\d+)(?:\.(\d{1,6})\d*)?(?:E([+-]?\d+))?$/i.exec(s);
  if (m && !m[4]) {
    const micros = BigInt(m[2]!) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0') || '0');
    return m[1] ? -micros : micros;
  }
  if (m) return BigInt(Math.round(Number(s) * 1e6));
  const t = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/.exec(s.trim());
  if (!t) throw new BakError(`not a TIMESTAMP value: ${JSON.stringify(s)}`);
  const zone = !t[4] || t[4] === 'Z' || t[4] === 'UTC' ? 'Z' : t[4].length === 3 ? `${t[4]}:00` : t[4].includes(':') ? t[4] : `${t[4].slice(0, 3)}:${t[4].slice(3)}`;
  const ms = Date.parse(`${t[1]}T${t[2]}${zone}`);
  if (Number.isNaN(ms)) throw new BakError(`not a TIMESTAMP value: ${JSON.stringify(s)}`);
  return BigInt(ms) * 1000n + BigInt((t[3] ?? '').padEnd(6, '0') || '0');
}

export function timeMicros(s: string): bigint {
  const m = /^(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) throw new BakError(`not a TIME value: ${JSON.stringify(s)}`);
  return (BigInt(m[1]!) * 3600n + BigInt(m[2]!) * 60n + BigInt(m[3]!)) * 1_000_000n + BigInt((m[4] ?? '').padEnd(6, '0'));
}

export function formatTime(micros: bigint): string {
  const totalSeconds = micros / 1_000_000n;
  const fraction = micros % 1_000_000n;
  const pad = (n: bigint) => n.toString().padStart(2, '0');
  const base = `${pad(totalSeconds / 3600n)}:${pad((totalSeconds / 60n) % 60n)}:${pad(totalSeconds % 60n)}`;
  return fraction === 0n ? base : `${base}.${fraction.toString().padStart(6, '0').replace(/0+$/, '')}`;
}

/** A decimal string ("-12.5", "1e3") as Avro decimal bytes: the unscaled value in big-endian two's complement. */
export function decimalToBytes(s: string, scale: number): Buffer {
  const unscaled = parseDecimal(s, scale);
  if (unscaled === 0n) return Buffer.from([0]);
  let hex = (unscaled < 0n ? -unscaled : unscaled).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  if (unscaled < 0n) {
    // Two's complement of the magnitude.
    for (let i = 0; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff;
    for (let i = bytes.length - 1; i >= 0; i--) {
      bytes[i] = (bytes[i]! + 1) & 0xff;
      if (bytes[i] !== 0) break;
    }
    if (!(bytes[0]! & 0x80)) bytes = Buffer.concat([Buffer.from([0xff]), bytes]);
  }
  return bytes;
}

function parseDecimal(s: string, scale: number): bigint {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new BakError(`not a decimal value: ${JSON.stringify(s)}`);
  const digits = `${m[2]}${m[3] ?? ''}`;
  const exponent = Number(m[4] ?? 0) - (m[3] ?? '').length + scale;
  let value = BigInt(digits || '0');
  if (exponent >= 0) value *= 10n ** BigInt(exponent);
  else value /= 10n ** BigInt(-exponent);
  return m[1] === '-' ? -value : value;
}

/** Avro decimal bytes as a decimal string with trailing zeros dropped ("1.5", "-2", "0"). */
export function bytesToDecimal(bytes: Buffer, scale: number): string {
  if (bytes.length === 0) return '0';
  let value = BigInt(`0x${bytes.toString('hex')}`);
  if (bytes[0]! & 0x80) value -= 1n << BigInt(bytes.length * 8);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/**
 * An Avro value (decoded with BigInt longs) in the canonical form: what the Storage Write API's JSON writer takes
 * (int64 as decimal strings, TIMESTAMP as micros, DATE as days, decimals and TIME as strings, BYTES as Buffers) and
 * what a row digest hashes. Both readers' files decode to the same canonical rows.
 */
export function canonicalRow(fields: Field[], row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const v = row[field.name];
    out[field.name] = (field.mode ?? '').toUpperCase() === 'REPEATED' ? ((v as unknown[] | null) ?? []).map((x) => canonicalScalar(field, x)) : canonicalScalar(field, v);
  }
  return out;
}

function canonicalScalar(field: Field, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (baseType(field)) {
    case 'INTEGER':
    case 'TIMESTAMP':
      return String(v);
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return bytesToDecimal(v as Buffer, SCALE[baseType(field)]!);
    case 'TIME':
      return formatTime(BigInt(v as bigint | number));
    case 'RECORD':
      return canonicalRow(field.fields ?? [], v as Record<string, unknown>);
    default:
      return v;
  }
}

/** A canonical row as stable bytes for hashing: field order, Buffers as base64, floats exact (-0, NaN, ±Infinity). */
export function rowBytes(row: Record<string, unknown>): Buffer {
  return Buffer.from(
    JSON.stringify(row, (_key, value: unknown) => {
      if (typeof value === 'number') return Object.is(value, -0) ? '-0' : Number.isFinite(value) ? value : String(value);
      if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
        return { b64: Buffer.from((value as { data: number[] }).data).toString('base64') };
      }
      return value;
    }),
  );
}
