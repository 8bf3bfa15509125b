// Spanner type edge values through bak's own code (NUMERIC, JSON and FLOAT32 columns, NaN and ±Infinity are tested here because no server here can hold them): NUMERIC text/bytes, per-type Avro codecs, row digests, the Avro header.
import { describe, expect, it } from 'vitest';
import { AvroFileWriter, newAvroDecoder, tableAvro } from '../../src/engines/spanner/avro.ts';
import { cellCodec } from '../../src/engines/spanner/cells.ts';
import type { ColumnSchema, TableSchema } from '../../src/engines/spanner/schema.ts';
import { TableDigest } from '../../src/engines/spanner/table-digest.ts';
import {
  bytesToUnscaled,
  encodeProtoValue,
  numericToUnscaled,
  parseColumnType,
  SCALAR_CODES,
  unscaledToBytes,
  unscaledToNumeric,
  type RawCell,
  type ScalarCode,
} from '../../src/engines/spanner/types.ts';

const MAX = '99999999999999999999999999999.999999999';

/** Java's BigInteger.toByteArray(), written independently of src: minimal big-endian two's complement. */
function javaToByteArray(n: bigint): string {
  let k = 1;
  while (!(-(1n << BigInt(8 * k - 1)) <= n && n < 1n << BigInt(8 * k - 1))) k++;
  return BigInt.asUintN(8 * k, n).toString(16).padStart(2 * k, '0');
}

describe('NUMERIC: text, unscaled integer, decimal bytes', () => {
  it.each([
    [MAX, 99999999999999999999999999999999999999n],
    [`-${MAX}`, -99999999999999999999999999999999999999n],
    ['0', 0n],
    ['-0', 0n],
    ['-0.000000001', -1n],
    ['1e-9', 1n],
    ['12.5E3', 12_500_000_000_000n],
    ['1.50', 1_500_000_000n],
    ['+.5', 500_000_000n],
  ])('%s has unscaled value %s', (text, unscaled) => {
    expect(numericToUnscaled(text)).toBe(unscaled);
  });

  it.each([
    [128n, '0080'],
    [-128n, '80'],
    [-129n, 'ff7f'],
    [0n, '00'],
    [-1n, 'ff'],
    [127n, '7f'],
    [255n, '00ff'],
    [32768n, '008000'],
    [-32768n, '8000'],
    [99999999999999999999999999999999999999n, '4b3b4ca85a86c47a098a223fffffffff'],
    [-99999999999999999999999999999999999999n, 'b4c4b357a5793b85f675ddc000000001'],
  ])('unscaled %s is bytes %s, as BigInteger.toByteArray()', (unscaled, hex) => {
    expect(unscaledToBytes(unscaled).toString('hex')).toBe(hex);
    expect(javaToByteArray(unscaled)).toBe(hex);
    expect(bytesToUnscaled(Buffer.from(hex, 'hex'))).toBe(unscaled);
  });

  it('bytes match BigInteger.toByteArray() at every byte-length boundary', () => {
    for (let bits = 0; bits <= 127; bits++) {
      for (const n of [1n << BigInt(bits), (1n << BigInt(bits)) - 1n, -(1n << BigInt(bits)), -(1n << BigInt(bits)) - 1n]) {
        expect(unscaledToBytes(n).toString('hex'), String(n)).toBe(javaToByteArray(n));
        expect(bytesToUnscaled(unscaledToBytes(n))).toBe(n);
      }
    }
  });

  it.each([
    [MAX, MAX],
    [`-${MAX}`, `-${MAX}`],
    ['0', '0'],
    ['-0', '0'],
    ['-0.000000001', '-0.000000001'],
    ['1e-9', '0.000000001'],
    ['12.5E3', '12500'],
    ['1.50', '1.5'],
    ['100.000000000', '100'],
    ['-7.120000000', '-7.12'],
  ])('%s → bytes → %s (Spanner’s canonical text)', (text, canonical) => {
    expect(unscaledToNumeric(bytesToUnscaled(unscaledToBytes(numericToUnscaled(text))))).toBe(canonical);
  });

  it.each(['0.0000000001', '1e-10', '1.0000000001', '100000000000000000000000000000', `${MAX}9`, '1e29', '-1e29', '', '.', 'abc', '1,5', 'NaN'])(
    '%s is refused',
    (text) => {
      expect(() => numericToUnscaled(text)).toThrow();
    },
  );
});

// ---- cell codecs through Avro ---------------------------------------------------------------------------------------

const SQL: Record<ScalarCode, string> = {
  BOOL: 'BOOL',
  INT64: 'INT64',
  FLOAT32: 'FLOAT32',
  FLOAT64: 'FLOAT64',
  NUMERIC: 'NUMERIC',
  STRING: 'STRING(MAX)',
  BYTES: 'BYTES(MAX)',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  JSON: 'JSON',
};

/** Raw cells as Spanner sends them, for each type. */
const SAMPLES: Record<ScalarCode, RawCell[]> = {
  BOOL: [true, false],
  INT64: ['9223372036854775807', '-9223372036854775808', '-9223372036854775807', '0', '9007199254740993'],
  FLOAT32: [1.5, -0, 0, 'NaN', 'Infinity', '-Infinity', 3.4028234663852886e38, 1.401298464324817e-45, 16777216, 0.10000000149011612],
  FLOAT64: [0.1, -0, 0, 'NaN', 'Infinity', '-Infinity', 1.7976931348623157e308, 5e-324, 9007199254740993],
  NUMERIC: [MAX, `-${MAX}`, '0', '-0.000000001', '1.5', '128', '-129'],
  STRING: ['', 'ü€😀\n\t"\\\'', '\u0000', 'x'.repeat(10_000)],
  BYTES: ['', 'AA==', '/+8=', Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('base64')],
  DATE: ['0001-01-01', '9999-12-31', '1970-01-01'],
  TIMESTAMP: ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '2024-02-29T12:34:56.000000001Z'],
  JSON: ['{"a":[1,2.5,"x"],"b":null,"10":9007199254740993}', 'null', '[]', '"s"', '{"b":1,"a":2}', '1e400'],
};

function column(name: string, sqlType: string, nullable: boolean, extra: Partial<ColumnSchema> = {}): ColumnSchema {
  return { name, type: parseColumnType(sqlType, name), nullable, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false, ...extra };
}

function table(name: string, columns: ColumnSchema[], extra: Partial<TableSchema> = {}): TableSchema {
  return { name, parent: null, onDeleteCascade: false, columns, primaryKey: [{ column: columns[0]!.name, desc: false }], indexes: [], foreignKeys: [], checks: [], ...extra };
}

/** What the raw cell comes back as: the same, except non-finite floats sent as text come back as numbers. */
function expected(code: ScalarCode, cell: RawCell): RawCell {
  if (Array.isArray(cell)) return cell.map((e) => expected(code, e));
  if ((code === 'FLOAT32' || code === 'FLOAT64') && typeof cell === 'string') return Number(cell);
  return cell;
}

describe.each(SCALAR_CODES)('%s cells through Avro', (code) => {
  const sql = SQL[code];
  const t = table(`T_${code}`, [
    column('req', sql, false),
    column('opt', sql, true),
    column('arr_req', `ARRAY<${sql}>`, false),
    column('arr_opt', `ARRAY<${sql}>`, true),
  ]);
  const avro = tableAvro(t);
  const samples = SAMPLES[code];
  const rows: RawCell[][] = [
    ...samples.map((v) => [v, v, [v], [v, null, v]]),
    [samples[0]!, null, [], null],
    [samples[1]!, null, [null], [null, null]],
    [samples[0]!, samples[1]!, samples, []],
  ];

  it('every raw cell comes back the same after toAvro → encode → decode → fromAvro', () => {
    for (const row of rows) {
      const record = Object.fromEntries(t.columns.map((c, i) => [c.name, avro.codecs[i]!.toAvro(row[i]!)]));
      expect(avro.type.isValid(record), JSON.stringify(row)).toBe(true);
      const decoded = avro.type.fromBuffer(avro.type.toBuffer(record)) as Record<string, unknown>;
      const back = t.columns.map((c, i) => avro.codecs[i]!.fromAvro(decoded[c.name]));
      expect(back, JSON.stringify(row)).toEqual(row.map((cell) => expected(code, cell)));
      // What a restore writes back is what Spanner sent (non-finite floats travel as the same strings).
      expect(back.map(encodeProtoValue)).toEqual(row.map((cell) => encodeProtoValue(expected(code, cell))));
    }
  });

  it('a NULL in a NOT NULL column is refused by the Avro type', () => {
    const record = Object.fromEntries(t.columns.map((c, i) => [c.name, avro.codecs[i]!.toAvro(i === 0 ? null : rows[0]![i]!)]));
    expect(avro.type.isValid(record)).toBe(false);
  });
});

describe('edge values kept exactly', () => {
  const roundTrip = (sqlType: string, cell: RawCell): RawCell => {
    const t = table('E', [column('c', sqlType, true)]);
    const { type, codecs } = tableAvro(t);
    const decoded = type.fromBuffer(type.toBuffer({ c: codecs[0]!.toAvro(cell) })) as { c: unknown };
    return codecs[0]!.fromAvro(decoded.c);
  };

  it('non-finite floats come back as numbers that a mutation spells as Spanner did', () => {
    for (const sqlType of ['FLOAT64', 'FLOAT32']) {
      for (const text of ['NaN', 'Infinity', '-Infinity']) {
        const back = roundTrip(sqlType, text);
        expect(typeof back).toBe('number');
        expect(encodeProtoValue(back)).toEqual({ stringValue: text });
      }
      expect(Object.is(roundTrip(sqlType, -0), -0)).toBe(true);
      expect(Object.is(roundTrip(sqlType, 0), 0)).toBe(true);
    }
  });

  it('INT64 extremes are exact (BigInt in Avro, not a double)', () => {
    const t = table('I', [column('c', 'INT64', false)]);
    const { type, codecs } = tableAvro(t);
    for (const text of ['9223372036854775807', '-9223372036854775808', '-9223372036854775807']) {
      const buf = type.toBuffer({ c: codecs[0]!.toAvro(text) });
      expect((type.fromBuffer(buf) as { c: unknown }).c).toBe(BigInt(text));
      expect(codecs[0]!.fromAvro((type.fromBuffer(buf) as { c: unknown }).c)).toBe(text);
    }
  });

  it('JSON text is kept byte for byte (no parse: key order, big integers)', () => {
    const text = '{"a":[1,2.5,"x"],"b":null,"10":9007199254740993}';
    expect(roundTrip('JSON', text)).toBe(text);
    expect(roundTrip('ARRAY<JSON>', [text, null])).toEqual([text, null]);
  });

  it('NUMERIC is Avro decimal bytes, the unscaled value at scale 9', () => {
    const codec = cellCodec(parseColumnType('NUMERIC', 'n'), false);
    expect(codec.avroType).toEqual({ type: 'bytes', logicalType: 'decimal', precision: 38, scale: 9 });
    expect((codec.toAvro('1') as Buffer).toString('hex')).toBe(javaToByteArray(1_000_000_000n));
    expect((codec.toAvro(`-${MAX}`) as Buffer).toString('hex')).toBe('b4c4b357a5793b85f675ddc000000001');
  });
});

// ---- row digests ------------------------------------------------------------------------------------------------------

describe('TableDigest', () => {
  const t = table('D', [
    column('id', 'INT64', false),
    column('s', 'STRING(MAX)', true),
    column('s2', 'STRING(MAX)', true),
    column('f', 'FLOAT64', true),
    column('f32', 'FLOAT32', true),
    column('n', 'NUMERIC', true),
    column('ts', 'TIMESTAMP', true),
    column('a', 'ARRAY<STRING(MAX)>', true),
    column('b', 'BYTES(MAX)', true),
    column('j', 'JSON', true),
    column('d', 'DATE', true),
    column('ok', 'BOOL', true),
  ]);
  const base: RawCell[] = ['1', 'x', 'y', 1.25, 0.5, '1.5', '2024-01-01T00:00:00.000000001Z', ['p', null], 'AQI=', '{"k":1}', '2024-01-01', true];
  const digest = (rows: RawCell[][]) => {
    const d = new TableDigest(t.columns);
    for (const r of rows) d.add(r);
    return d.hex();
  };
  const rows: RawCell[][] = [base, ['2', null, '', 'NaN', -0, '-0.000000001', '0001-01-01T00:00:00Z', [], '', 'null', '0001-01-01', false], ['-9223372036854775808', 'z', null, '-Infinity', 'Infinity', MAX, '9999-12-31T23:59:59.999999999Z', null, null, null, null, null]];
  const with_ = (i: number, v: RawCell) => base.map((c, j) => (j === i ? v : c));

  it('does not depend on row order, and counts rows', () => {
    const d = new TableDigest(t.columns);
    for (const r of rows) d.add(r);
    expect(d.rows).toBe(3);
    expect(d.hex()).toMatch(/^[0-9a-f]{16}$/);
    expect(digest([rows[2]!, rows[0]!, rows[1]!])).toBe(d.hex());
    expect(digest([rows[1]!, rows[2]!, rows[0]!])).toBe(d.hex());
  });

  it('changes with any one cell', () => {
    const changed: RawCell[] = ['2', 'X', 'Y', 1.5, 0.25, '1.6', '2024-01-01T00:00:00.000000002Z', ['p'], 'AQM=', '{"k":2}', '2024-01-02', false];
    const seen = new Set([digest([base])]);
    changed.forEach((v, i) => seen.add(digest([with_(i, v)])));
    base.forEach((_, i) => i > 0 && seen.add(digest([with_(i, null)])));
    expect(seen.size).toBe(1 + changed.length + base.length - 1);
  });

  it('tells apart NULL and empty, -0 and 0, a nanosecond, swapped columns', () => {
    const pairs: Array<[RawCell[], RawCell[]]> = [
      [with_(1, null), with_(1, '')],
      [with_(7, null), with_(7, [])],
      [with_(7, [null]), with_(7, [])],
      [with_(7, [null]), with_(7, [''])],
      [with_(8, null), with_(8, '')],
      [with_(3, -0), with_(3, 0)],
      [with_(4, -0), with_(4, 0)],
      [with_(6, '2024-01-01T00:00:00Z'), with_(6, '2024-01-01T00:00:00.000000001Z')],
      [base, ['1', 'y', 'x', ...base.slice(3)]],
      [with_(7, ['ab', 'c']), with_(7, ['a', 'bc'])],
      [with_(10, '0001-01-01'), with_(10, '1901-01-01')],
      [with_(6, '0001-01-01T00:00:00Z'), with_(6, '1901-01-01T00:00:00Z')],
    ];
    for (const [a, b] of pairs) expect(digest([a]), JSON.stringify([a, b])).not.toBe(digest([b]));
  });

  it('hashes typed values: NaN spellings, NUMERIC and TIMESTAMP spellings, base64 padding', () => {
    const otherNaN = new Float64Array(new Uint32Array([1, 0x7ff00000]).buffer)[0]!;
    expect(Number.isNaN(otherNaN)).toBe(true);
    for (const nan of [Number.NaN, otherNaN, 0 / 0]) {
      expect(digest([with_(3, nan)])).toBe(digest([with_(3, 'NaN')]));
      expect(digest([with_(4, nan)])).toBe(digest([with_(4, 'NaN')]));
    }
    expect(digest([with_(3, 'Infinity')])).toBe(digest([with_(3, Number.POSITIVE_INFINITY)]));
    expect(digest([with_(5, '1.50')])).toBe(digest([with_(5, '1.5')]));
    expect(digest([with_(5, '15e-1')])).toBe(digest([with_(5, '1.5')]));
    expect(digest([with_(6, '2024-01-01T00:00:00.000000000Z')])).toBe(digest([with_(6, '2024-01-01T00:00:00Z')]));
    expect(digest([with_(6, '2024-01-01T01:00:00+01:00')])).toBe(digest([with_(6, '2024-01-01T00:00:00Z')]));
    expect(digest([with_(0, '1')])).toBe(digest([base]));
  });
});

// ---- the Avro object container file ---------------------------------------------------------------------------------

describe('Avro files as Google’s export writes them', () => {
  const t = table(
    'Albums',
    [
      column('SingerId', 'INT64', false),
      column('AlbumId', 'INT64', false),
      column('Price', 'NUMERIC', true),
      column('Title', 'STRING(MAX)', true),
      column('TitleUpper', 'STRING(MAX)', true, { generationExpression: 'UPPER(Title)', stored: true }),
      column('UpdatedAt', 'TIMESTAMP', true, { allowCommitTimestamp: true }),
      column('Info', 'JSON', true),
    ],
    { parent: 'Singers', onDeleteCascade: true, primaryKey: [{ column: 'SingerId', desc: false }, { column: 'AlbumId', desc: true }] },
  );
  const records = [
    { SingerId: 9223372036854775807n, AlbumId: -1n, Price: unscaledToBytes(numericToUnscaled(MAX)), Title: 'ü', TitleUpper: null, UpdatedAt: '9999-12-31T23:59:59.999999999Z', Info: '{"10":9007199254740993}' },
    { SingerId: 1n, AlbumId: 2n, Price: null, Title: null, TitleUpper: null, UpdatedAt: null, Info: null },
  ];

  async function writeAndRead(written = records): Promise<{ header: Record<string, unknown> | undefined; rows: unknown[] }> {
    const file = new AvroFileWriter(tableAvro(t));
    for (const r of written) file.encoder.write(r);
    file.encoder.end();
    const parts: Buffer[] = [];
    for await (const b of file.bytes()) parts.push(b);
    const decoder = newAvroDecoder();
    const rows: unknown[] = [];
    let header: Record<string, unknown> | undefined;
    decoder.on('metadata', (_type: unknown, _codec: unknown, h: { meta: Record<string, Buffer> }) => (header = JSON.parse(h.meta['avro.schema']!.toString())));
    decoder.on('data', (r: unknown) => rows.push(r));
    const done = new Promise((resolve, reject) => decoder.on('end', resolve).on('error', reject));
    decoder.end(Buffer.concat(parts));
    await done;
    return { header, rows };
  }

  it('records decode back (INT64 as BigInt)', async () => {
    const { rows } = await writeAndRead();
    expect(rows.map((r) => ({ ...(r as object) }))).toEqual(records);
  });

  it('the header schema carries Google’s properties', async () => {
    const { header } = await writeAndRead();
    expect(header).toBeDefined();
    expect(header).toMatchObject({
      type: 'record',
      name: 'Albums',
      namespace: 'spannerexport',
      spannerName: 'Albums',
      googleStorage: 'CloudSpanner',
      googleFormatVersion: '1.0.0',
      spannerParent: 'Singers',
      spannerInterleaveType: 'IN PARENT',
      spannerOnDeleteAction: 'cascade',
      spannerPrimaryKey: '`SingerId` ASC,`AlbumId` DESC',
      spannerPrimaryKey_0: '`SingerId` ASC',
      spannerPrimaryKey_1: '`AlbumId` DESC',
    });
    const fields = header!.fields as Array<Record<string, unknown>>;
    const field = (name: string) => fields.find((f) => f.name === name);
    expect(field('SingerId')).toMatchObject({ type: 'long', sqlType: 'INT64' });
    expect(field('Price')).toMatchObject({ sqlType: 'NUMERIC', type: ['null', { type: 'bytes', logicalType: 'decimal', precision: 38, scale: 9 }] });
    expect(field('TitleUpper')).toMatchObject({ type: 'null', sqlType: 'STRING(MAX)', generationExpression: 'UPPER(Title)', stored: 'true' });
    expect(field('UpdatedAt')).toMatchObject({ sqlType: 'TIMESTAMP', spannerOption_0: 'allow_commit_timestamp=TRUE' });
    expect(field('Info')).toMatchObject({ sqlType: 'JSON', type: ['null', 'string'] });
  });

  it('a table without rows still gets a file with that header', async () => {
    const { header, rows } = await writeAndRead([]);
    expect(rows).toEqual([]);
    expect(header).toMatchObject({ spannerName: 'Albums', googleStorage: 'CloudSpanner' });
  });
});
