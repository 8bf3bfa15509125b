import { createHash } from 'node:crypto';
import avro from 'avsc';
import { cellCodec, type CellCodec } from './cells.ts';
import { indexDdl, foreignKeyDdl, quoteName, type TableSchema } from './schema.ts';

/** INT64 as BigInt both ways: a JS number would round ids past 2^53. */
const INT64 = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.allocUnsafe(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as string),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

export const AVRO_FORMAT_VERSION = '1.0.0';

export interface TableAvro {
  /** The schema as Google's export writes it: Dataflow's import template and any Avro reader take it. */
  schema: Record<string, unknown>;
  type: avro.Type;
  /** Per column of `table.columns`: its codec, or undefined for a generated column (not exported, as Google's export). */
  codecs: Array<CellCodec | undefined>;
  /** The sync marker, derived from the table name so equal rows give equal files (and dedup across snapshots). */
  syncMarker: Buffer;
}

/** The Avro record for one table, with the properties Google's "Cloud Spanner to Avro" export template writes. */
export function tableAvro(table: TableSchema): TableAvro {
  const fields: Array<Record<string, unknown>> = [];
  const codecs: Array<CellCodec | undefined> = [];
  for (const column of table.columns) {
    const field: Record<string, unknown> = { name: column.name, sqlType: column.type.sqlType, hidden: 'false' };
    if (column.generationExpression !== null) {
      Object.assign(field, { type: 'null', default: null, notNull: String(!column.nullable), generationExpression: column.generationExpression, stored: String(column.stored) });
      codecs.push(undefined);
    } else {
      const codec = cellCodec(column.type, column.nullable);
      field.type = codec.avroType;
      codecs.push(codec);
    }
    if (column.allowCommitTimestamp) field.spannerOption_0 = 'allow_commit_timestamp=TRUE';
    if (column.defaultExpression !== null) field.defaultExpression = column.defaultExpression;
    fields.push(field);
  }
  const schema: Record<string, unknown> = {
    type: 'record',
    name: table.name.replace(/\./g, '_'),
    namespace: 'spannerexport',
    fields,
    spannerName: table.name,
    googleFormatVersion: AVRO_FORMAT_VERSION,
    googleStorage: 'CloudSpanner',
  };
  if (table.parent !== null) {
    schema.spannerParent = table.parent;
    schema.spannerInterleaveType = 'IN PARENT';
    schema.spannerOnDeleteAction = table.onDeleteCascade ? 'cascade' : 'no action';
  }
  const keyParts = table.primaryKey.map((k) => `${quoteName(k.column)} ${k.desc ? 'DESC' : 'ASC'}`);
  schema.spannerPrimaryKey = keyParts.join(',');
  keyParts.forEach((part, i) => (schema[`spannerPrimaryKey_${i}`] = part));
  table.indexes.forEach((index, i) => (schema[`spannerIndex_${i}`] = indexDdl(table.name, index)));
  table.foreignKeys.forEach((fk, i) => (schema[`spannerForeignKey_${i}`] = foreignKeyDdl(table.name, fk)));
  table.checks.forEach((check, i) => (schema[`spannerCheckConstraint_${i}`] = `CONSTRAINT ${quoteName(check.name)} CHECK (${check.expression})`));
  const type = avro.Type.forSchema(schema as avro.Schema, { registry: { long: INT64 } });
  const syncMarker = createHash('sha256').update(`bak-spanner-avro:${table.name}`).digest().subarray(0, 16);
  return { schema, type, codecs, syncMarker };
}

/**
 * An object container file for one table, as a byte stream: the header, then the encoder's blocks. avsc's
 * BlockEncoder writes its header from the Type it encodes with, and a Type exports neither Google's properties
 * (sqlType, spannerPrimaryKey_0 …) nor logical types, while the schema JSON alone would give a Type without the BigInt
 * INT64; so the header comes from an encoder of the schema JSON that encodes nothing, and the blocks from one of the
 * Type that writes no header. An empty table gets a file of the header alone, as Google's export writes it.
 */
export class AvroFileWriter {
  readonly encoder: avro.streams.BlockEncoder;
  readonly #header: Promise<Buffer>;

  constructor(avroTable: TableAvro) {
    this.#header = encodeAll(new avro.streams.BlockEncoder(avroTable.schema as avro.Schema, { syncMarker: avroTable.syncMarker, writeHeader: true } as never));
    this.encoder = new avro.streams.BlockEncoder(avroTable.type, { codec: 'null', syncMarker: avroTable.syncMarker, writeHeader: 'never' } as never);
  }

  async *bytes(): AsyncGenerator<Buffer> {
    yield await this.#header;
    for await (const block of this.encoder as AsyncIterable<Buffer>) yield block;
  }
}

/** The whole output of an encoder given no more records: a header-only file. */
export async function encodeAll(encoder: avro.streams.BlockEncoder): Promise<Buffer> {
  const parts: Buffer[] = [];
  encoder.on('data', (b: Buffer) => parts.push(b));
  const ended = new Promise((resolve, reject) => encoder.on('end', resolve).on('error', reject));
  encoder.end();
  await ended;
  return Buffer.concat(parts);
}

type Codec = (block: Buffer, done: (err: Error | null, data?: Buffer) => void) => void;

/** A decoder of object container files whose INT64 values come back as BigInt; `codecs` beyond avsc's null and deflate. */
export function newAvroDecoder(codecs: Record<string, Codec> = {}): avro.streams.BlockDecoder {
  return new avro.streams.BlockDecoder({
    parseHook: (schema: avro.Schema) => avro.Type.forSchema(schema, { registry: { long: INT64 } }),
    codecs: { ...avro.streams.BlockDecoder.defaultCodecs(), ...codecs },
  } as never);
}
