import { BakError, UsageError } from '../../errors.ts';
import { globMatch } from '../../util/glob.ts';
import type { ColumnType } from './types.ts';

/** The schema of a database as bak records it in a manifest and rebuilds it on restore. */
export interface ColumnSchema {
  name: string;
  type: ColumnType;
  nullable: boolean;
  /** `AS (expression)`: generated columns are read for the digest but neither exported nor written back. */
  generationExpression: string | null;
  stored: boolean;
  defaultExpression: string | null;
  allowCommitTimestamp: boolean;
}

export interface KeyPart {
  column: string;
  desc: boolean;
}

export interface IndexSchema {
  name: string;
  unique: boolean;
  nullFiltered: boolean;
  columns: KeyPart[];
  storing: string[];
  interleaveIn: string | null;
}

export interface ForeignKeySchema {
  name: string;
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDeleteCascade: boolean;
}

export interface CheckSchema {
  name: string;
  expression: string;
}

export interface TableSchema {
  name: string;
  parent: string | null;
  onDeleteCascade: boolean;
  columns: ColumnSchema[];
  primaryKey: KeyPart[];
  indexes: IndexSchema[];
  foreignKeys: ForeignKeySchema[];
  checks: CheckSchema[];
}

export interface ViewSchema {
  name: string;
  definition: string;
  securityType: string;
}

export interface DatabaseSchema {
  dialect: 'GOOGLE_STANDARD_SQL';
  tables: TableSchema[];
  views: ViewSchema[];
}

export function quoteName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new BakError(`Spanner name ${JSON.stringify(name)} cannot be quoted for DDL`);
  return `\`${name}\``;
}

function keyList(parts: KeyPart[]): string {
  return parts.map((k) => `${quoteName(k.column)}${k.desc ? ' DESC' : ''}`).join(', ');
}

export function createTableDdl(table: TableSchema): string {
  const lines = table.columns.map((c) => {
    let line = `  ${quoteName(c.name)} ${c.type.sqlType}${c.nullable ? '' : ' NOT NULL'}`;
    if (c.generationExpression !== null) line += ` AS (${c.generationExpression})${c.stored ? ' STORED' : ''}`;
    if (c.defaultExpression !== null) line += ` DEFAULT (${c.defaultExpression})`;
    if (c.allowCommitTimestamp) line += ' OPTIONS (allow_commit_timestamp=true)';
    return `${line},`;
  });
  for (const check of table.checks) lines.push(`  CONSTRAINT ${quoteName(check.name)} CHECK (${check.expression}),`);
  let ddl = `CREATE TABLE ${quoteName(table.name)} (\n${lines.join('\n')}\n) PRIMARY KEY (${keyList(table.primaryKey)})`;
  if (table.parent !== null) ddl += `,\n  INTERLEAVE IN PARENT ${quoteName(table.parent)} ON DELETE ${table.onDeleteCascade ? 'CASCADE' : 'NO ACTION'}`;
  return ddl;
}

export function indexDdl(table: string, index: IndexSchema): string {
  let ddl = `CREATE ${index.unique ? 'UNIQUE ' : ''}${index.nullFiltered ? 'NULL_FILTERED ' : ''}INDEX ${quoteName(index.name)} ON ${quoteName(table)}(${index.columns
    .map((k) => `${quoteName(k.column)} ${k.desc ? 'DESC' : 'ASC'}`)
    .join(', ')})`;
  if (index.storing.length) ddl += ` STORING (${index.storing.map(quoteName).join(', ')})`;
  if (index.interleaveIn !== null) ddl += `, INTERLEAVE IN ${quoteName(index.interleaveIn)}`;
  return ddl;
}

export function foreignKeyDdl(table: string, fk: ForeignKeySchema): string {
  return (
    `ALTER TABLE ${quoteName(table)} ADD CONSTRAINT ${quoteName(fk.name)} FOREIGN KEY (${fk.columns.map(quoteName).join(', ')}) ` +
    `REFERENCES ${quoteName(fk.referencedTable)} (${fk.referencedColumns.map(quoteName).join(', ')})${fk.onDeleteCascade ? ' ON DELETE CASCADE' : ''}`
  );
}

export function viewDdl(view: ViewSchema): string {
  return `CREATE VIEW ${quoteName(view.name)} SQL SECURITY ${view.securityType || 'INVOKER'} AS ${view.definition}`;
}

/** Tables with every parent before its children (the order to create them and to load their rows). */
export function parentsFirst(tables: readonly TableSchema[]): TableSchema[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const out: TableSchema[] = [];
  const placed = new Set<string>();
  const place = (t: TableSchema, path: string[]) => {
    if (placed.has(t.name)) return;
    if (path.includes(t.name)) throw new BakError(`interleave cycle: ${[...path, t.name].join(' → ')}`);
    const parent = t.parent === null ? undefined : byName.get(t.parent);
    if (parent) place(parent, [...path, t.name]);
    placed.add(t.name);
    out.push(t);
  };
  for (const t of [...tables].sort((a, b) => a.name.localeCompare(b.name))) place(t, []);
  return out;
}

/** The DDL that makes the tables (one statement each, parents first), and what follows the data. */
export function restoreDdl(schema: DatabaseSchema): { tables: string[]; afterData: string[] } {
  const ordered = parentsFirst(schema.tables);
  return {
    tables: ordered.map(createTableDdl),
    // As Google's import: secondary indexes, then foreign keys, once the rows are in; views last (they may read any table).
    afterData: [
      ...ordered.flatMap((t) => t.indexes.map((i) => indexDdl(t.name, i))),
      ...ordered.flatMap((t) => t.foreignKeys.map((fk) => foreignKeyDdl(t.name, fk))),
      ...schema.views.map(viewDdl),
    ],
  };
}

/** Tables without the foreign keys that reference a table outside them (which a restore could not create). */
export function keepForeignKeysWithin(tables: readonly TableSchema[]): { tables: TableSchema[]; dropped: string[] } {
  const names = new Set(tables.map((t) => t.name));
  const dropped: string[] = [];
  const kept = tables.map((t) => {
    const fks = t.foreignKeys.filter((fk) => names.has(fk.referencedTable));
    for (const fk of t.foreignKeys) if (!fks.includes(fk)) dropped.push(`${t.name}.${fk.name} → ${fk.referencedTable}`);
    return fks.length === t.foreignKeys.length ? t : { ...t, foreignKeys: fks };
  });
  return { tables: kept, dropped };
}

/**
 * The tables matching `include` (all when empty) and no `exclude` glob, parents first. An interleaved child whose
 * parent is left out cannot be restored, so it is refused; so is a selection that matches nothing. `where` names what
 * is being selected from, for the messages.
 */
export function selectTables(tables: readonly TableSchema[], include: readonly string[] | undefined, exclude: readonly string[] | undefined, where: string): TableSchema[] {
  const chosen = tables.filter((t) => (!include?.length || include.some((g) => globMatch(g, t.name))) && !exclude?.some((g) => globMatch(g, t.name)));
  if ((include?.length || exclude?.length) && chosen.length === 0) {
    throw new UsageError(`no table of ${where} matches the selection (tables: ${tables.map((t) => t.name).join(', ') || 'none'})`);
  }
  const names = new Set(chosen.map((t) => t.name));
  for (const t of chosen) {
    if (t.parent !== null && !names.has(t.parent)) {
      throw new UsageError(`table ${t.name} is interleaved in ${t.parent}, which the selection leaves out: select ${t.parent} too (a child cannot be restored without its parent)`);
    }
  }
  return parentsFirst(chosen);
}
