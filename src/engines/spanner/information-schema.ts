import { grpcCode, Status, type SpannerClients } from './client.ts';
import { queryRows, type TransactionSelector } from './query.ts';
import type { CheckSchema, ColumnSchema, DatabaseSchema, ForeignKeySchema, IndexSchema, KeyPart, TableSchema, ViewSchema } from './schema.ts';
import { parseColumnType, type RawCell } from './types.ts';

export interface SchemaReading {
  schema: DatabaseSchema;
  /** What this server's INFORMATION_SCHEMA could not say (handy-spanner lacks several views and columns). */
  gaps: string[];
  /** Schema features bak cannot restore (with the table they belong to): a backup of them is refused rather than restored without them. */
  unsupported: Array<{ table: string | null; problem: string }>;
}

type Row = Record<string, RawCell>;

const str = (v: RawCell | undefined): string | null => (v === null || v === undefined ? null : String(v));
const yes = (v: RawCell | undefined): boolean => v === true || v === 'YES' || v === 'TRUE' || v === 'true';

/**
 * Rebuilds the schema from INFORMATION_SCHEMA (GetDatabaseDdl gives text, but restoring in Google's order needs the
 * parts: tables, then rows, then indexes and foreign keys). Every query is `SELECT *`, and a view or column the server
 * does not have is a gap recorded in the manifest, not a failure: handy-spanner has no KEY_COLUMN_USAGE,
 * CHECK_CONSTRAINTS or VIEWS, and no IS_GENERATED.
 */
export async function readSchema(clients: SpannerClients, session: string, transaction: TransactionSelector): Promise<SchemaReading> {
  const gaps: string[] = [];
  const unsupported: SchemaReading['unsupported'] = [];
  const refuse = (table: string | null, problem: string) => unsupported.push({ table, problem });
  const query = (sql: string) => queryRows(clients, session, sql, transaction);
  const optional = async (view: string, what: string, where = ''): Promise<Row[] | undefined> => {
    try {
      return await query(`SELECT * FROM INFORMATION_SCHEMA.${view}${where}`);
    } catch (err) {
      const code = grpcCode(err);
      if ((code === Status.INVALID_ARGUMENT || code === Status.NOT_FOUND) && /not found|unrecognized|does not exist/i.test((err as Error).message)) {
        gaps.push(`INFORMATION_SCHEMA.${view} (${what})`);
        return undefined;
      }
      throw err;
    }
  };
  const column = (rows: Row[], name: string, what: string): boolean => {
    if (rows.length === 0 || name in rows[0]!) return true;
    gaps.push(`INFORMATION_SCHEMA column ${name} (${what})`);
    return false;
  };

  const tableRows = await query(`SELECT * FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA NOT IN ('INFORMATION_SCHEMA', 'SPANNER_SYS')`);
  const columnRows = await query(`SELECT * FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = '' ORDER BY TABLE_NAME, ORDINAL_POSITION`);
  const optionRows = (await optional('COLUMN_OPTIONS', 'commit-timestamp columns', ` WHERE TABLE_SCHEMA = ''`)) ?? [];
  const indexRows = await query(`SELECT * FROM INFORMATION_SCHEMA.INDEXES WHERE TABLE_SCHEMA = ''`);
  const indexColumnRows = await query(`SELECT * FROM INFORMATION_SCHEMA.INDEX_COLUMNS WHERE TABLE_SCHEMA = '' ORDER BY TABLE_NAME, INDEX_NAME, ORDINAL_POSITION`);
  const referentialRows = (await optional('REFERENTIAL_CONSTRAINTS', 'foreign keys')) ?? [];
  const keyUsageRows = referentialRows.length ? await optional('KEY_COLUMN_USAGE', 'foreign-key columns') : [];
  const constraintRows = await optional('TABLE_CONSTRAINTS', 'which table a constraint is on');
  const checkRows = await optional('CHECK_CONSTRAINTS', 'check constraints');
  const viewRows = (await optional('VIEWS', 'views', ` WHERE TABLE_SCHEMA = ''`)) ?? [];
  for (const [view, what] of [['CHANGE_STREAMS', 'change stream'], ['SEQUENCES', 'sequence']] as const) {
    const rows = await optional(view, `${what}s`);
    for (const r of rows ?? []) refuse(null, `${what} ${str(r.CHANGE_STREAM_NAME ?? r.NAME)}`);
  }
  const generatedKnown = column(columnRows, 'IS_GENERATED', 'generated columns');
  column(columnRows, 'COLUMN_DEFAULT', 'column defaults');

  const tables: TableSchema[] = [];
  const views: ViewSchema[] = [];
  for (const t of tableRows) {
    const name = str(t.TABLE_NAME)!;
    if (str(t.TABLE_SCHEMA)) {
      refuse(null, `named schema ${str(t.TABLE_SCHEMA)} (table ${str(t.TABLE_SCHEMA)}.${name})`);
      continue;
    }
    if (str(t.TABLE_TYPE) === 'VIEW') continue;
    if (str(t.ROW_DELETION_POLICY_EXPRESSION)) refuse(name, `row deletion policy on ${name}`);
    if (str(t.INTERLEAVE_TYPE) === 'IN') refuse(name, `table ${name} interleaved IN (not IN PARENT) ${str(t.PARENT_TABLE_NAME)}`);
    const parent = str(t.PARENT_TABLE_NAME) || null;
    tables.push({ name, parent, onDeleteCascade: str(t.ON_DELETE_ACTION) === 'CASCADE', columns: [], primaryKey: [], indexes: [], foreignKeys: [], checks: [] });
  }
  const byName = new Map(tables.map((t) => [t.name, t]));

  for (const c of columnRows) {
    const table = byName.get(str(c.TABLE_NAME)!);
    if (!table) continue;
    const name = str(c.COLUMN_NAME)!;
    const generated = generatedKnown && str(c.IS_GENERATED) === 'ALWAYS';
    const col: ColumnSchema = {
      name,
      type: parseColumnType(str(c.SPANNER_TYPE)!, `column ${table.name}.${name}`),
      nullable: yes(c.IS_NULLABLE),
      generationExpression: generated ? str(c.GENERATION_EXPRESSION) : null,
      stored: generated && yes(c.IS_STORED),
      // handy-spanner types COLUMN_DEFAULT as BYTES (always NULL there); Spanner as STRING.
      defaultExpression: typeof c.COLUMN_DEFAULT === 'string' && c.COLUMN_DEFAULT !== '' ? c.COLUMN_DEFAULT : null,
      allowCommitTimestamp: optionRows.some((o) => o.TABLE_NAME === table.name && o.COLUMN_NAME === name && o.OPTION_NAME === 'allow_commit_timestamp' && yes(o.OPTION_VALUE)),
    };
    table.columns.push(col);
  }

  const indexParts = new Map<string, { keys: KeyPart[]; storing: string[] }>();
  for (const ic of indexColumnRows) {
    const key = `${str(ic.TABLE_NAME)}\u0000${str(ic.INDEX_NAME)}`;
    const parts = indexParts.get(key) ?? { keys: [], storing: [] };
    indexParts.set(key, parts);
    if (ic.ORDINAL_POSITION === null) parts.storing.push(str(ic.COLUMN_NAME)!);
    else parts.keys.push({ column: str(ic.COLUMN_NAME)!, desc: str(ic.COLUMN_ORDERING) === 'DESC' });
  }
  for (const i of indexRows) {
    const table = byName.get(str(i.TABLE_NAME)!);
    if (!table) continue;
    const parts = indexParts.get(`${table.name}\u0000${str(i.INDEX_NAME)}`) ?? { keys: [], storing: [] };
    const type = str(i.INDEX_TYPE);
    if (type === 'PRIMARY_KEY') {
      table.primaryKey = parts.keys;
      continue;
    }
    // Indexes Spanner made itself to back a foreign key come back with the key.
    if (yes(i.SPANNER_IS_MANAGED)) continue;
    if (type !== 'INDEX') {
      refuse(table.name, `${type?.toLowerCase() ?? 'unknown'} index ${str(i.INDEX_NAME)} on ${table.name}`);
      continue;
    }
    const index: IndexSchema = {
      name: str(i.INDEX_NAME)!,
      unique: yes(i.IS_UNIQUE),
      nullFiltered: yes(i.IS_NULL_FILTERED),
      columns: parts.keys,
      storing: parts.storing,
      interleaveIn: str(i.PARENT_TABLE_NAME) || null,
    };
    table.indexes.push(index);
  }

  for (const rc of referentialRows) {
    const name = str(rc.CONSTRAINT_NAME)!;
    if (!keyUsageRows) {
      refuse(null, `foreign key ${name}: this server's INFORMATION_SCHEMA has no KEY_COLUMN_USAGE, so its columns cannot be read`);
      continue;
    }
    const own = keyUsageRows.filter((k) => k.CONSTRAINT_NAME === name).sort((a, b) => Number(a.ORDINAL_POSITION) - Number(b.ORDINAL_POSITION));
    const referenced = keyUsageRows.filter((k) => k.CONSTRAINT_NAME === rc.UNIQUE_CONSTRAINT_NAME);
    const table = byName.get(str(own[0]?.TABLE_NAME) ?? '');
    const refCols = own.map((k) => referenced.find((r) => Number(r.ORDINAL_POSITION) === Number(k.POSITION_IN_UNIQUE_CONSTRAINT)));
    if (!table || own.length === 0 || refCols.some((r) => !r)) {
      refuse(table?.name ?? null, `foreign key ${name}: its columns could not be matched in KEY_COLUMN_USAGE`);
      continue;
    }
    const fk: ForeignKeySchema = {
      name,
      columns: own.map((k) => str(k.COLUMN_NAME)!),
      referencedTable: str(refCols[0]!.TABLE_NAME)!,
      referencedColumns: refCols.map((r) => str(r!.COLUMN_NAME)!),
      onDeleteCascade: str(rc.DELETE_RULE) === 'CASCADE',
    };
    table.foreignKeys.push(fk);
  }

  for (const ck of checkRows ?? []) {
    const name = str(ck.CONSTRAINT_NAME)!;
    // Spanner lists every NOT NULL as a check constraint of its own.
    if (name.startsWith('CK_IS_NOT_NULL_')) continue;
    const owner = constraintRows?.find((c) => c.CONSTRAINT_NAME === name);
    const table = byName.get(str(owner?.TABLE_NAME) ?? '');
    if (!table) {
      refuse(null, `check constraint ${name}: its table is not known`);
      continue;
    }
    const check: CheckSchema = { name, expression: str(ck.CHECK_CLAUSE)! };
    table.checks.push(check);
  }

  for (const v of viewRows) views.push({ name: str(v.TABLE_NAME)!, definition: str(v.VIEW_DEFINITION)!, securityType: str(v.SECURITY_TYPE) ?? 'INVOKER' });

  for (const t of tables) {
    if (t.parent !== null && !byName.has(t.parent)) refuse(t.name, `table ${t.name}: its interleave parent ${t.parent} is not listed`);
  }
  tables.sort((a, b) => a.name.localeCompare(b.name));
  return { schema: { dialect: 'GOOGLE_STANDARD_SQL', tables, views }, gaps, unsupported };
}
