import { createHash } from 'node:crypto';
import avro from 'avsc';
import { AvroRowFileWriter, BIGINT_LONG } from '../../util/avro-container.ts';
import { cellCodec, type CellCodec } from './cells.ts';
import { indexDdl, foreignKeyDdl, quoteName, type TableSchema } from './schema.ts';

const INT64 = BIGINT_LONG;

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

/** An object container file for one table (see util/avro-container.ts AvroFileWriter). */
export class AvroFileWriter extends AvroRowFileWriter {
  constructor(avroTable: TableAvro) {
    super(avroTable.schema, avroTable.type, avroTable.syncMarker);
  }
}

type Codec = (block: Buffer, done: (err: Error | null, data?: Buffer) => void) => void;

/** A decoder of object container files whose INT64 values come back as BigInt; `codecs` beyond avsc's null and deflate. */
export function newAvroDecoder(codecs: Record<string, Codec> = {}): avro.streams.BlockDecoder {
  return new avro.streams.BlockDecoder({
    parseHook: (schema: avro.Schema) => avro.Type.forSchema(schema, { registry: { long: INT64 } }),
    codecs: { ...avro.streams.BlockDecoder.defaultCodecs(), ...codecs },
  } as never);
}
