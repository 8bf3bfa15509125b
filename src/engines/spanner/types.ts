import { BakError } from '../../errors.ts';

/** The GoogleSQL column types bak backs up (columns cannot be STRUCT or nested ARRAY). */
export const SCALAR_CODES = ['BOOL', 'INT64', 'FLOAT32', 'FLOAT64', 'NUMERIC', 'STRING', 'BYTES', 'DATE', 'TIMESTAMP', 'JSON'] as const;
export type ScalarCode = (typeof SCALAR_CODES)[number];

export interface ColumnType {
  code: ScalarCode;
  array: boolean;
  /** As INFORMATION_SCHEMA.COLUMNS.SPANNER_TYPE spells it: `STRING(MAX)`, `ARRAY<INT64>` … */
  sqlType: string;
}

/** Parses SPANNER_TYPE; a type bak cannot carry (PROTO, ENUM, UUID, INTERVAL, TOKENLIST …) is refused by name. */
export function parseColumnType(sqlType: string, where: string): ColumnType {
  const text = sqlType.trim();
  const array = /^ARRAY<(.*)>(\(.*\))?$/i.exec(text);
  const inner = (array ? array[1]! : text).trim();
  const code = /^([A-Z0-9]+)/i.exec(inner)?.[1]?.toUpperCase();
  if (!code || !(SCALAR_CODES as readonly string[]).includes(code) || (code !== 'STRING' && code !== 'BYTES' && inner.toUpperCase() !== code)) {
    throw new BakError(`${where} has type ${sqlType}, which bak cannot back up (it carries ${SCALAR_CODES.join(', ')} and arrays of them)`, 2);
  }
  return { code: code as ScalarCode, array: Boolean(array), sqlType: text };
}

// ---- raw protobuf values -------------------------------------------------------------------------------------------

/** A cell as google.protobuf.Value carries it, decoded to JS: strings, numbers, booleans, null, arrays of those. */
export type RawCell = string | number | boolean | null | RawCell[];

interface ProtoValue {
  kind?: string | null;
  stringValue?: string | null;
  numberValue?: number | null;
  boolValue?: boolean | null;
  listValue?: { values?: ProtoValue[] | null } | null;
}

export function decodeProtoValue(value: ProtoValue): RawCell {
  switch (value.kind) {
    case 'stringValue':
      return value.stringValue!;
    case 'numberValue':
      return value.numberValue!;
    case 'boolValue':
      return value.boolValue!;
    case 'nullValue':
      return null;
    case 'listValue':
      return (value.listValue?.values ?? []).map(decodeProtoValue);
    default:
      throw new BakError(`Spanner sent a value of kind ${String(value.kind)}, which no column type bak reads has`);
  }
}

const NULL_VALUE = { nullValue: 'NULL_VALUE' as const };

/** The protobuf value Spanner takes in a mutation for a raw cell (non-finite floats travel as strings). */
export function encodeProtoValue(cell: RawCell): object {
  if (cell === null) return NULL_VALUE;
  if (typeof cell === 'string') return { stringValue: cell };
  if (typeof cell === 'boolean') return { boolValue: cell };
  if (typeof cell === 'number') return Number.isFinite(cell) ? { numberValue: cell } : { stringValue: floatText(cell) };
  return { listValue: { values: cell.map(encodeProtoValue) } };
}

function floatText(n: number): string {
  return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
}

/** FLOAT32/FLOAT64 arrive as numbers, or as the strings NaN, Infinity, -Infinity. */
export function floatOf(cell: string | number): number {
  if (typeof cell === 'number') return cell;
  if (cell === 'NaN') return Number.NaN;
  if (cell === 'Infinity') return Number.POSITIVE_INFINITY;
  if (cell === '-Infinity') return Number.NEGATIVE_INFINITY;
  const n = Number(cell);
  if (Number.isNaN(n)) throw new BakError(`not a float: ${JSON.stringify(cell)}`);
  return n;
}

// ---- NUMERIC: decimal(38, 9) ---------------------------------------------------------------------------------------

export const NUMERIC_SCALE = 9;
const NUMERIC_MAX = 10n ** 38n;

/** The unscaled integer of a NUMERIC text at scale 9 (`-1.5` → -1500000000n). */
export function numericToUnscaled(text: string): bigint {
  const match = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) throw new BakError(`not a NUMERIC: ${JSON.stringify(text)}`);
  const [, sign, int, frac = '', exp = '0'] = match;
  // text = digits · 10^-(frac length) · 10^exp, so unscaled = digits · 10^power
  const digits = BigInt(`${int}${frac}` || '0');
  const power = NUMERIC_SCALE + Number(exp) - frac.length;
  let unscaled: bigint;
  if (power >= 0) unscaled = digits * 10n ** BigInt(power);
  else {
    const divisor = 10n ** BigInt(-power);
    if (digits % divisor !== 0n) throw new BakError(`NUMERIC ${text} has more than ${NUMERIC_SCALE} decimals`);
    unscaled = digits / divisor;
  }
  if (unscaled >= NUMERIC_MAX) throw new BakError(`NUMERIC ${text} has more than 29 integer digits`);
  return sign === '-' ? -unscaled : unscaled;
}

/** The shortest NUMERIC text of an unscaled value (`-1500000000n` → `-1.5`), as Spanner itself prints it. */
export function unscaledToNumeric(unscaled: bigint): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(NUMERIC_SCALE + 1, '0');
  const int = digits.slice(0, -NUMERIC_SCALE);
  const frac = digits.slice(-NUMERIC_SCALE).replace(/0+$/, '');
  return `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** Avro decimal bytes: the unscaled value in big-endian two's complement, as few bytes as it needs. */
export function unscaledToBytes(unscaled: bigint): Buffer {
  let hex = (unscaled < 0n ? (1n << 136n) + unscaled : unscaled).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (unscaled < 0n) {
    let start = bytes.length - 17;
    while (start < bytes.length - 1 && bytes[start] === 0xff && (bytes[start + 1]! & 0x80) !== 0) start++;
    bytes = bytes.subarray(Math.max(0, start));
  } else if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.of(0), bytes]);
  return Buffer.from(bytes);
}

export function bytesToUnscaled(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const value = BigInt(`0x${bytes.toString('hex')}`);
  return bytes[0]! & 0x80 ? value - (1n << BigInt(8 * bytes.length)) : value;
}

// ---- TIMESTAMP and DATE --------------------------------------------------------------------------------------------

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil): integers only, no Date. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const digitsAt = (text: string, from: number, count: number): number => {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
};

/**
 * Seconds since the epoch and nanoseconds of a TIMESTAMP as Spanner writes it (`YYYY-MM-DDTHH:MM:SS[.f…]Z`), read
 * by position: a regex and Date.parse per cell were a tenth of a backup's CPU. Any other RFC 3339 form (an offset,
 * lowercase) takes the general path.
 */
export function parseTimestamp(text: string): { seconds: number; nanos: number } {
  const fast = text.length >= 20 && text.charCodeAt(text.length - 1) === 90 /* Z */ && text[4] === '-' && text[10] === 'T';
  if (fast) {
    const days = daysFromCivil(digitsAt(text, 0, 4), digitsAt(text, 5, 2), digitsAt(text, 8, 2));
    const secondsOfDay = digitsAt(text, 11, 2) * 3600 + digitsAt(text, 14, 2) * 60 + digitsAt(text, 17, 2);
    let nanos = 0;
    if (text.length > 20) {
      const digits = text.length - 21;
      nanos = text[19] === '.' && digits >= 1 && digits <= 9 ? digitsAt(text, 20, digits) * 10 ** (9 - digits) : Number.NaN;
    }
    const seconds = days * 86_400 + secondsOfDay;
    if (Number.isFinite(seconds) && Number.isFinite(nanos)) return { seconds, nanos };
  }
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (!match) throw new BakError(`not a TIMESTAMP: ${JSON.stringify(text)}`);
  const ms = Date.parse(`${match[1]}${match[3]!.toUpperCase()}`);
  if (Number.isNaN(ms)) throw new BakError(`not a TIMESTAMP: ${JSON.stringify(text)}`);
  return { seconds: ms / 1000, nanos: Number((match[2] ?? '').padEnd(9, '0')) };
}

/** Days since 1970-01-01 of a DATE (`YYYY-MM-DD`, years 1-9999). */
export function parseDate(text: string): number {
  const days = text.length === 10 && text[4] === '-' && text[7] === '-' ? daysFromCivil(digitsAt(text, 0, 4), digitsAt(text, 5, 2), digitsAt(text, 8, 2)) : Number.NaN;
  if (!Number.isFinite(days)) throw new BakError(`not a DATE: ${JSON.stringify(text)}`);
  return days;
}
