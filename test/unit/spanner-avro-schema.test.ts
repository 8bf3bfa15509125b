// avro-schema.ts: Google's export properties read back into bak's schema model (adopting exports bak did not write),
// including the DDL texts Google prints for indexes, foreign keys and checks, and refusals by name.
import { describe, expect, it } from 'vitest';
import { tableAvro } from '../../src/engines/spanner/avro.ts';
import { parseForeignKeyDdl, parseIndexDdl, tableFromAvro, unsupportedEntity, viewFromAvro, type AvroRecordSchema } from '../../src/engines/spanner/avro-schema.ts';
import type { TableSchema } from '../../src/engines/spanner/schema.ts';
import { parseColumnType } from '../../src/engines/spanner/types.ts';

const albums: TableSchema = {
  name: 'Albums',
  parent: 'Singers',
  onDeleteCascade: true,
  columns: [
    { name: 'SingerId', type: parseColumnType('INT64', 'c'), nullable: false, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false },
    { name: 'AlbumId', type: parseColumnType('INT64', 'c'), nullable: false, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false },
    { name: 'Price', type: parseColumnType('NUMERIC', 'c'), nullable: true, generationExpression: null, stored: false, defaultExpression: '0', allowCommitTimestamp: false },
    { name: 'At', type: parseColumnType('TIMESTAMP', 'c'), nullable: true, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: true },
    { name: 'Tags', type: parseColumnType('ARRAY<STRING(MAX)>', 'c'), nullable: true, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false },
    { name: 'Double', type: parseColumnType('NUMERIC', 'c'), nullable: true, generationExpression: 'Price * 2', stored: true, defaultExpression: null, allowCommitTimestamp: false },
  ],
  primaryKey: [
    { column: 'SingerId', desc: false },
    { column: 'AlbumId', desc: true },
  ],
  indexes: [{ name: 'ByPrice', unique: true, nullFiltered: true, columns: [{ column: 'Price', desc: true }], storing: ['Tags'], interleaveIn: 'Singers' }],
  foreignKeys: [{ name: 'FK_Label', columns: ['SingerId'], referencedTable: 'Labels', referencedColumns: ['LabelId'], onDeleteCascade: true }],
  checks: [{ name: 'PricePositive', expression: 'Price > 0' }],
};

describe('tableFromAvro', () => {
  it("reads back every property bak's (and Google's) export writes", () => {
    expect(tableFromAvro(tableAvro(albums).schema as AvroRecordSchema)).toEqual(albums);
  });

  it("takes Google's older form (spannerParent '' on a top-level table, no spannerInterleaveType) and NULLS FIRST key parts", () => {
    const schema = { ...(tableAvro({ ...albums, parent: null, indexes: [], foreignKeys: [], checks: [] }).schema as AvroRecordSchema), spannerParent: '', spannerPrimaryKey_0: '`SingerId` ASC NULLS FIRST' };
    const table = tableFromAvro(schema);
    expect(table.parent).toBeNull();
    expect(table.primaryKey[0]).toEqual({ column: 'SingerId', desc: false });
  });

  it('parses the DDL texts Google prints, and refuses others by name', () => {
    expect(parseIndexDdl('CREATE INDEX `I` ON `T`(`a` ASC, `b` DESC)', 'T')).toEqual({ name: 'I', unique: false, nullFiltered: false, columns: [{ column: 'a', desc: false }, { column: 'b', desc: true }], storing: [], interleaveIn: null });
    expect(parseForeignKeyDdl('ALTER TABLE `T` ADD CONSTRAINT `fk` FOREIGN KEY (`a`, `b`) REFERENCES `R` (`x`, `y`) ON DELETE NO ACTION', 'T')).toEqual({ name: 'fk', columns: ['a', 'b'], referencedTable: 'R', referencedColumns: ['x', 'y'], onDeleteCascade: false });
    expect(() => parseIndexDdl('CREATE SEARCH INDEX `S` ON `T`(`tokens`)', 'T')).toThrow(/bak cannot restore the index/);
    expect(() => parseForeignKeyDdl('ALTER TABLE `T` ADD CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `R` (`x`) NOT ENFORCED', 'T')).toThrow(/bak cannot restore the foreign key/);
    expect(() => tableFromAvro({ ...(tableAvro(albums).schema as AvroRecordSchema), spannerOnDeleteAction: 'explode' })).toThrow(/unknown spannerOnDeleteAction/);
    expect(() => tableFromAvro({ name: 'X', fields: [{ name: 'a', type: 'long' }] })).toThrow(/no sqlType property/);
  });

  it('tells views and entities bak cannot restore', () => {
    expect(viewFromAvro({ name: 'V', spannerName: 'V', spannerViewQuery: 'SELECT 1 AS one', fields: [] })).toEqual({ name: 'V', definition: 'SELECT 1 AS one', securityType: 'INVOKER' });
    expect(unsupportedEntity({ name: 'S', spannerName: 'S', sequenceKind: 'bit_reversed_positive' })).toBe('sequence S');
    expect(unsupportedEntity({ name: 'C', spannerChangeStreamForClause: 'FOR ALL' })).toBe('change stream C');
    expect(unsupportedEntity({ name: 'M', spannerEntity: 'Model' })).toBe('Model M');
    expect(unsupportedEntity(tableAvro(albums).schema as AvroRecordSchema)).toBeUndefined();
  });
});
