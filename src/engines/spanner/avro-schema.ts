import { BakError } from '../../errors.ts';
import type { ColumnSchema, ForeignKeySchema, IndexSchema, KeyPart, TableSchema, ViewSchema } from './schema.ts';
import { parseColumnType } from './types.ts';

/*
 * Google's export writes a table's schema as properties of its Avro record (avro.ts writes the same): this reads them
 * back into bak's schema model, for adopting an export bak did not make. Index, foreign-key and check DDL arrive as
 * text; the forms Google's export prints are parsed, anything else is refused by name rather than dropped.
 */

type AvroField = Record<string, unknown> & { name: string; type: unknown };
export type AvroRecordSchema = Record<string, unknown> & { name: string; fields?: AvroField[] };

const NAME = '`?([A-Za-z_][A-Za-z0-9_]*)`?';

function numbered(schema: AvroRecordSchema, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; typeof schema[`${prefix}${i}`] === 'string'; i++) out.push(schema[`${prefix}${i}`] as string);
  return out;
}

function keyParts(list: string, where: string): KeyPart[] {
  return list.split(',').map((part) => {
    const match = new RegExp(`^\\s*${NAME}(?:\\s+(ASC|DESC))?(?:\\s+NULLS\\s+(?:FIRST|LAST))?\\s*$`, 'i').exec(part);
    if (!match) throw new BakError(`${where}: cannot read the key part ${JSON.stringify(part.trim())}`, 2);
    return { column: match[1]!, desc: match[2]?.toUpperCase() === 'DESC' };
  });
}

function names(list: string): string[] {
  return list.split(',').map((n) => n.trim().replace(/^`|`$/g, '')).filter(Boolean);
}

export function parseIndexDdl(ddl: string, table: string): IndexSchema {
  const match = new RegExp(
    `^CREATE\\s+(UNIQUE\\s+)?(NULL_FILTERED\\s+)?INDEX\\s+${NAME}\\s+ON\\s+${NAME}\\s*\\(([^)]*)\\)(?:\\s+STORING\\s*\\(([^)]*)\\))?(?:\\s*,\\s*INTERLEAVE\\s+IN\\s+${NAME})?\\s*$`,
    'i',
  ).exec(ddl.trim());
  if (!match || match[4] !== table) throw new BakError(`table ${table}: bak cannot restore the index ${JSON.stringify(ddl)}`, 2);
  return {
    name: match[3]!,
    unique: Boolean(match[1]),
    nullFiltered: Boolean(match[2]),
    columns: keyParts(match[5]!, `index ${match[3]}`),
    storing: match[6] ? names(match[6]) : [],
    interleaveIn: match[7] ?? null,
  };
}

export function parseForeignKeyDdl(ddl: string, table: string): ForeignKeySchema {
  const match = new RegExp(
    `^ALTER\\s+TABLE\\s+${NAME}\\s+ADD\\s+CONSTRAINT\\s+${NAME}\\s+FOREIGN\\s+KEY\\s*\\(([^)]*)\\)\\s+REFERENCES\\s+${NAME}\\s*\\(([^)]*)\\)(?:\\s+ON\\s+DELETE\\s+(CASCADE|NO\\s+ACTION))?\\s*$`,
    'i',
  ).exec(ddl.trim());
  if (!match || match[1] !== table) throw new BakError(`table ${table}: bak cannot restore the foreign key ${JSON.stringify(ddl)}`, 2);
  return { name: match[2]!, columns: names(match[3]!), referencedTable: match[4]!, referencedColumns: names(match[5]!), onDeleteCascade: /^CASCADE$/i.test(match[6] ?? '') };
}

/** Whether a field's Avro type admits null: `["null", T]`, or the `"null"` type of a generated column. */
function avroNullable(type: unknown): boolean {
  return type === 'null' || (Array.isArray(type) && type.includes('null'));
}

export function tableFromAvro(schema: AvroRecordSchema): TableSchema {
  const name = typeof schema.spannerName === 'string' ? schema.spannerName : schema.name;
  if (schema.spannerInterleaveType === 'IN') throw new BakError(`table ${name} is interleaved IN (not IN PARENT) ${String(schema.spannerParent)}: bak cannot restore that yet`, 2);
  const action = String(schema.spannerOnDeleteAction ?? 'no action').toLowerCase();
  if (action !== 'cascade' && action !== 'no action') throw new BakError(`table ${name}: unknown spannerOnDeleteAction ${JSON.stringify(schema.spannerOnDeleteAction)}`, 2);
  const columns: ColumnSchema[] = (schema.fields ?? []).map((field) => {
    const where = `column ${name}.${field.name}`;
    if (typeof field.sqlType !== 'string') throw new BakError(`${where} has no sqlType property: not a Cloud Spanner export`, 2);
    const generated = typeof field.generationExpression === 'string';
    const options = Object.keys(field).filter((k) => k.startsWith('spannerOption_')).map((k) => String(field[k]));
    return {
      name: field.name,
      type: parseColumnType(field.sqlType, where),
      nullable: generated ? field.notNull !== 'true' : avroNullable(field.type),
      generationExpression: generated ? (field.generationExpression as string) : null,
      stored: generated && field.stored === 'true',
      defaultExpression: typeof field.defaultExpression === 'string' ? field.defaultExpression : null,
      allowCommitTimestamp: options.some((o) => /^allow_commit_timestamp\s*=\s*true$/i.test(o)),
    };
  });
  const primaryKey = numbered(schema, 'spannerPrimaryKey_').flatMap((part) => keyParts(part, `table ${name} primary key`));
  const checks = numbered(schema, 'spannerCheckConstraint_').map((ddl) => {
    const match = new RegExp(`^CONSTRAINT\\s+${NAME}\\s+CHECK\\s*\\(([\\s\\S]*)\\)\\s*$`, 'i').exec(ddl.trim());
    if (!match) throw new BakError(`table ${name}: bak cannot restore the check constraint ${JSON.stringify(ddl)}`, 2);
    return { name: match[1]!, expression: match[2]! };
  });
  return {
    name,
    parent: typeof schema.spannerParent === 'string' && schema.spannerParent !== '' ? schema.spannerParent : null,
    onDeleteCascade: action === 'cascade',
    columns,
    primaryKey,
    indexes: numbered(schema, 'spannerIndex_').map((ddl) => parseIndexDdl(ddl, name)),
    foreignKeys: numbered(schema, 'spannerForeignKey_').map((ddl) => parseForeignKeyDdl(ddl, name)),
    checks,
  };
}

export function viewFromAvro(schema: AvroRecordSchema): ViewSchema | undefined {
  if (typeof schema.spannerViewQuery !== 'string') return undefined;
  return { name: typeof schema.spannerName === 'string' ? schema.spannerName : schema.name, definition: schema.spannerViewQuery, securityType: String(schema.spannerViewSecurity ?? 'INVOKER') };
}

/** What an export holds that bak cannot restore: refused rather than adopted without it. */
export function unsupportedEntity(schema: AvroRecordSchema): string | undefined {
  if (typeof schema.spannerEntity === 'string') return `${schema.spannerEntity} ${String(schema.spannerName ?? schema.name)}`;
  if (typeof schema.spannerChangeStreamForClause === 'string') return `change stream ${String(schema.spannerName ?? schema.name)}`;
  if (typeof schema.sequenceKind === 'string' || numbered(schema, 'sequenceOption_').length) return `sequence ${String(schema.spannerName ?? schema.name)}`;
  return undefined;
}
