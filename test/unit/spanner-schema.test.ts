// information-schema.ts readSchema and schema.ts restoreDdl against stand-ins answering as Cloud Spanner's and handy-spanner's INFORMATION_SCHEMA (no server here has Cloud Spanner's views, checks, generated columns and foreign keys all at once).
import { describe, expect, it } from 'vitest';
import type { SpannerClients } from '../../src/engines/spanner/client.ts';
import { readSchema } from '../../src/engines/spanner/information-schema.ts';
import { keepForeignKeysWithin, restoreDdl } from '../../src/engines/spanner/schema.ts';

type Cell = string | boolean | null;
type Rows = { fields: string[]; rows: Cell[][] };

const protoValue = (v: Cell) =>
  v === null ? { kind: 'nullValue', nullValue: 'NULL_VALUE' } : typeof v === 'boolean' ? { kind: 'boolValue', boolValue: v } : { kind: 'stringValue', stringValue: v };

/**
 * A stand-in whose executeStreamingSql answers by the INFORMATION_SCHEMA view a query names: rows as PartialResultSets
 * (metadata, then flat values, split over two sets), or the error a server without that view throws.
 */
function standIn(views: Record<string, Rows | { code: number; message: string }>) {
  const sqls: string[] = [];
  const clients = {
    data: {
      executeStreamingSql(request: { session: string; sql: string; transaction: unknown }) {
        sqls.push(request.sql);
        const view = /INFORMATION_SCHEMA\.(\w+)/.exec(request.sql)?.[1] ?? '';
        const answer = views[view];
        const stream = (async function* () {
          if (!answer) throw Object.assign(new Error(`3 INVALID_ARGUMENT: stand-in has no ${view}`), { code: 3 });
          if ('code' in answer) throw Object.assign(new Error(answer.message), { code: answer.code });
          const values = answer.rows.flat().map(protoValue);
          const half = Math.floor(values.length / 2);
          yield { metadata: { rowType: { fields: answer.fields.map((name) => ({ name, type: { code: 'STRING' } })) } }, values: values.slice(0, half) };
          yield { values: values.slice(half) };
        })();
        return Object.assign(stream, { cancel() {} });
      },
    },
  } as unknown as SpannerClients;
  return { clients, sqls };
}

const SESSION = 'projects/p/instances/i/databases/d/sessions/s';
const TX = { id: Buffer.from('tx') };

// ---- Cloud Spanner ------------------------------------------------------------------------------------------------------

const TABLES: Rows = {
  fields: ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'TABLE_TYPE', 'PARENT_TABLE_NAME', 'ON_DELETE_ACTION', 'SPANNER_STATE', 'INTERLEAVE_TYPE', 'ROW_DELETION_POLICY_EXPRESSION'],
  rows: [
    ['', '', 'Albums', 'BASE TABLE', 'Singers', 'CASCADE', 'COMMITTED', 'IN PARENT', null],
    ['', '', 'Concerts', 'BASE TABLE', null, null, 'COMMITTED', null, null],
    ['', '', 'SingerNames', 'VIEW', null, null, null, null, null],
    ['', '', 'Singers', 'BASE TABLE', null, null, 'COMMITTED', null, null],
  ],
};

const COLUMN_FIELDS = ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'COLUMN_NAME', 'ORDINAL_POSITION', 'COLUMN_DEFAULT', 'DATA_TYPE', 'IS_NULLABLE', 'SPANNER_TYPE', 'IS_GENERATED', 'GENERATION_EXPRESSION', 'IS_STORED', 'SPANNER_STATE'];
const col = (table: string, name: string, pos: number, type: string, nullable: boolean, more: { def?: string; gen?: string } = {}): Cell[] => [
  '', '', table, name, String(pos), more.def ?? null, null, nullable ? 'YES' : 'NO', type, more.gen ? 'ALWAYS' : 'NEVER', more.gen ?? null, more.gen ? 'YES' : null, 'COMMITTED',
];
const COLUMNS: Rows = {
  fields: COLUMN_FIELDS,
  rows: [
    col('Albums', 'SingerId', 1, 'INT64', false),
    col('Albums', 'AlbumId', 2, 'INT64', false),
    col('Albums', 'AlbumTitle', 3, 'STRING(MAX)', true),
    col('Albums', 'UpdatedAt', 4, 'TIMESTAMP', true),
    col('Albums', 'Tags', 5, 'ARRAY<STRING(64)>', true),
    col('Concerts', 'ConcertId', 1, 'INT64', false),
    col('Concerts', 'SingerId', 2, 'INT64', false),
    col('Concerts', 'AlbumId', 3, 'INT64', true),
    col('Concerts', 'Price', 4, 'NUMERIC', true, { def: '0' }),
    col('Concerts', 'Info', 5, 'JSON', true),
    col('SingerNames', 'SingerId', 1, 'INT64', true),
    col('Singers', 'SingerId', 1, 'INT64', false),
    col('Singers', 'FirstName', 2, 'STRING(1024)', true),
    col('Singers', 'LastName', 3, 'STRING(1024)', false),
    col('Singers', 'FullName', 4, 'STRING(2049)', true, { gen: `ARRAY_TO_STRING([FirstName, LastName], " ")` }),
    col('Singers', 'Score', 5, 'FLOAT32', true),
  ],
};

const COLUMN_OPTIONS: Rows = {
  fields: ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'COLUMN_NAME', 'OPTION_NAME', 'OPTION_TYPE', 'OPTION_VALUE'],
  rows: [['', '', 'Albums', 'UpdatedAt', 'allow_commit_timestamp', 'BOOL', 'TRUE']],
};

const INDEX_FIELDS = ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'INDEX_NAME', 'INDEX_TYPE', 'PARENT_TABLE_NAME', 'IS_UNIQUE', 'IS_NULL_FILTERED', 'INDEX_STATE', 'SPANNER_IS_MANAGED'];
const idx = (table: string, name: string, type: string, parent: string, unique: boolean, nullFiltered: boolean, managed = false): Cell[] => [
  '', '', table, name, type, parent, unique, nullFiltered, type === 'PRIMARY_KEY' ? null : 'READ_WRITE', managed,
];
const INDEXES: Rows = {
  fields: INDEX_FIELDS,
  rows: [
    idx('Albums', 'PRIMARY_KEY', 'PRIMARY_KEY', 'Singers', true, false),
    idx('Albums', 'AlbumsByTitle', 'INDEX', '', true, true),
    idx('Albums', 'SingerAlbumsByTitle', 'INDEX', 'Singers', false, false),
    idx('Concerts', 'PRIMARY_KEY', 'PRIMARY_KEY', '', true, false),
    idx('Concerts', 'IDX_Concerts_SingerId_AlbumId_6A8F1C2E0B3D4E5F', 'INDEX', '', false, false, true),
    idx('Singers', 'PRIMARY_KEY', 'PRIMARY_KEY', '', true, false),
  ],
};

const IC_FIELDS = ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'INDEX_NAME', 'INDEX_TYPE', 'COLUMN_NAME', 'ORDINAL_POSITION', 'COLUMN_ORDERING', 'IS_NULLABLE', 'SPANNER_TYPE'];
const ic = (table: string, index: string, column: string, pos: number | null, ordering: string | null, type = 'INT64'): Cell[] => [
  '', '', table, index, index === 'PRIMARY_KEY' ? 'PRIMARY_KEY' : 'INDEX', column, pos === null ? null : String(pos), ordering, 'YES', type,
];
const INDEX_COLUMNS: Rows = {
  fields: IC_FIELDS,
  rows: [
    ic('Albums', 'AlbumsByTitle', 'AlbumTitle', 1, 'ASC', 'STRING(MAX)'),
    ic('Albums', 'AlbumsByTitle', 'UpdatedAt', null, null, 'TIMESTAMP'),
    ic('Albums', 'AlbumsByTitle', 'Tags', null, null, 'ARRAY<STRING(64)>'),
    ic('Albums', 'PRIMARY_KEY', 'SingerId', 1, 'ASC'),
    ic('Albums', 'PRIMARY_KEY', 'AlbumId', 2, 'DESC'),
    ic('Albums', 'SingerAlbumsByTitle', 'SingerId', 1, 'ASC'),
    ic('Albums', 'SingerAlbumsByTitle', 'AlbumTitle', 2, 'DESC', 'STRING(MAX)'),
    ic('Concerts', 'IDX_Concerts_SingerId_AlbumId_6A8F1C2E0B3D4E5F', 'SingerId', 1, 'ASC'),
    ic('Concerts', 'IDX_Concerts_SingerId_AlbumId_6A8F1C2E0B3D4E5F', 'AlbumId', 2, 'ASC'),
    ic('Concerts', 'PRIMARY_KEY', 'ConcertId', 1, 'ASC'),
    ic('Singers', 'PRIMARY_KEY', 'SingerId', 1, 'ASC'),
  ],
};

const REFERENTIAL_CONSTRAINTS: Rows = {
  fields: ['CONSTRAINT_CATALOG', 'CONSTRAINT_SCHEMA', 'CONSTRAINT_NAME', 'UNIQUE_CONSTRAINT_CATALOG', 'UNIQUE_CONSTRAINT_SCHEMA', 'UNIQUE_CONSTRAINT_NAME', 'MATCH_OPTION', 'UPDATE_RULE', 'DELETE_RULE', 'SPANNER_STATE'],
  rows: [
    ['', '', 'FK_ConcertSinger', '', '', 'PK_Singers', 'SIMPLE', 'NO ACTION', 'CASCADE', 'COMMITTED'],
    ['', '', 'FK_ConcertAlbum', '', '', 'PK_Albums', 'SIMPLE', 'NO ACTION', 'NO ACTION', 'COMMITTED'],
  ],
};

const kcu = (constraint: string, table: string, column: string, pos: number, inUnique: number | null): Cell[] => ['', '', constraint, '', '', table, column, String(pos), inUnique === null ? null : String(inUnique)];
const KEY_COLUMN_USAGE: Rows = {
  fields: ['CONSTRAINT_CATALOG', 'CONSTRAINT_SCHEMA', 'CONSTRAINT_NAME', 'TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'COLUMN_NAME', 'ORDINAL_POSITION', 'POSITION_IN_UNIQUE_CONSTRAINT'],
  rows: [
    // FK_ConcertAlbum's columns out of order: the ordinal decides, not the row order.
    kcu('FK_ConcertAlbum', 'Concerts', 'AlbumId', 2, 2),
    kcu('FK_ConcertAlbum', 'Concerts', 'SingerId', 1, 1),
    kcu('FK_ConcertSinger', 'Concerts', 'SingerId', 1, 1),
    kcu('PK_Albums', 'Albums', 'AlbumId', 2, null),
    kcu('PK_Albums', 'Albums', 'SingerId', 1, null),
    kcu('PK_Concerts', 'Concerts', 'ConcertId', 1, null),
    kcu('PK_Singers', 'Singers', 'SingerId', 1, null),
  ],
};

const tc = (name: string, table: string, type: string): Cell[] => ['', '', name, '', '', table, type, 'NO', 'NO', 'YES'];
const TABLE_CONSTRAINTS: Rows = {
  fields: ['CONSTRAINT_CATALOG', 'CONSTRAINT_SCHEMA', 'CONSTRAINT_NAME', 'TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'CONSTRAINT_TYPE', 'IS_DEFERRABLE', 'INITIALLY_DEFERRED', 'ENFORCED'],
  rows: [
    tc('CK_IS_NOT_NULL_Singers_SingerId', 'Singers', 'CHECK'),
    tc('CK_IS_NOT_NULL_Singers_LastName', 'Singers', 'CHECK'),
    tc('FK_ConcertAlbum', 'Concerts', 'FOREIGN KEY'),
    tc('FK_ConcertSinger', 'Concerts', 'FOREIGN KEY'),
    tc('PK_Albums', 'Albums', 'PRIMARY KEY'),
    tc('PK_Concerts', 'Concerts', 'PRIMARY KEY'),
    tc('PK_Singers', 'Singers', 'PRIMARY KEY'),
    tc('PriceNonNegative', 'Concerts', 'CHECK'),
  ],
};

const CHECK_CONSTRAINTS: Rows = {
  fields: ['CONSTRAINT_CATALOG', 'CONSTRAINT_SCHEMA', 'CONSTRAINT_NAME', 'CHECK_CLAUSE', 'SPANNER_STATE'],
  rows: [
    ['', '', 'CK_IS_NOT_NULL_Singers_LastName', 'LastName IS NOT NULL', 'COMMITTED'],
    ['', '', 'CK_IS_NOT_NULL_Singers_SingerId', 'SingerId IS NOT NULL', 'COMMITTED'],
    ['', '', 'PriceNonNegative', 'Price >= 0', 'COMMITTED'],
  ],
};

const VIEWS: Rows = {
  fields: ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'VIEW_DEFINITION', 'SECURITY_TYPE'],
  rows: [['', '', 'SingerNames', 'SELECT Singers.SingerId AS SingerId FROM Singers', 'INVOKER']],
};

const CLOUD = {
  TABLES,
  COLUMNS,
  COLUMN_OPTIONS,
  INDEXES,
  INDEX_COLUMNS,
  REFERENTIAL_CONSTRAINTS,
  KEY_COLUMN_USAGE,
  TABLE_CONSTRAINTS,
  CHECK_CONSTRAINTS,
  VIEWS,
  CHANGE_STREAMS: { fields: ['CHANGE_STREAM_CATALOG', 'CHANGE_STREAM_SCHEMA', 'CHANGE_STREAM_NAME', 'ALL'], rows: [] },
  SEQUENCES: { fields: ['CATALOG', 'SCHEMA', 'NAME', 'DATA_TYPE'], rows: [] },
};

describe('readSchema on Cloud Spanner', () => {
  it('reads tables, columns, keys, indexes, foreign keys, checks and views', async () => {
    const { clients } = standIn(CLOUD);
    const { schema, gaps, unsupported } = await readSchema(clients, SESSION, TX);
    expect(gaps).toEqual([]);
    expect(unsupported).toEqual([]);
    expect(schema.tables.map((t) => t.name)).toEqual(['Albums', 'Concerts', 'Singers']);
    const [albums, concerts, singers] = schema.tables as [(typeof schema.tables)[0], (typeof schema.tables)[0], (typeof schema.tables)[0]];
    expect(albums).toMatchObject({ parent: 'Singers', onDeleteCascade: true, primaryKey: [{ column: 'SingerId', desc: false }, { column: 'AlbumId', desc: true }] });
    expect(albums.columns.find((c) => c.name === 'UpdatedAt')).toMatchObject({ allowCommitTimestamp: true, nullable: true, type: { code: 'TIMESTAMP', array: false } });
    expect(albums.columns.find((c) => c.name === 'Tags')!.type).toEqual({ code: 'STRING', array: true, sqlType: 'ARRAY<STRING(64)>' });
    expect(albums.indexes).toEqual([
      { name: 'AlbumsByTitle', unique: true, nullFiltered: true, columns: [{ column: 'AlbumTitle', desc: false }], storing: ['UpdatedAt', 'Tags'], interleaveIn: null },
      { name: 'SingerAlbumsByTitle', unique: false, nullFiltered: false, columns: [{ column: 'SingerId', desc: false }, { column: 'AlbumTitle', desc: true }], storing: [], interleaveIn: 'Singers' },
    ]);
    expect(concerts.indexes).toEqual([]); // the FK's own index (SPANNER_IS_MANAGED) comes back with the key
    expect(concerts.foreignKeys).toEqual([
      { name: 'FK_ConcertSinger', columns: ['SingerId'], referencedTable: 'Singers', referencedColumns: ['SingerId'], onDeleteCascade: true },
      { name: 'FK_ConcertAlbum', columns: ['SingerId', 'AlbumId'], referencedTable: 'Albums', referencedColumns: ['SingerId', 'AlbumId'], onDeleteCascade: false },
    ]);
    expect(concerts.checks).toEqual([{ name: 'PriceNonNegative', expression: 'Price >= 0' }]);
    expect(singers.checks).toEqual([]); // NOT NULL is not a check of its own
    expect(concerts.columns.find((c) => c.name === 'Price')).toMatchObject({ defaultExpression: '0', generationExpression: null });
    expect(singers.columns.find((c) => c.name === 'FullName')).toMatchObject({ generationExpression: 'ARRAY_TO_STRING([FirstName, LastName], " ")', stored: true });
    expect(singers.columns.map((c) => [c.name, c.nullable])).toEqual([['SingerId', false], ['FirstName', true], ['LastName', false], ['FullName', true], ['Score', true]]);
    expect(schema.views).toEqual([{ name: 'SingerNames', definition: 'SELECT Singers.SingerId AS SingerId FROM Singers', securityType: 'INVOKER' }]);
  });

  it('a selection without a referenced table keeps the tables but not the foreign keys into it', async () => {
    const { clients } = standIn(CLOUD);
    const { schema } = await readSchema(clients, SESSION, TX);
    const withoutAlbums = schema.tables.filter((t) => t.name !== 'Albums');
    const kept = keepForeignKeysWithin(withoutAlbums);
    expect(kept.dropped).toEqual(['Concerts.FK_ConcertAlbum → Albums']);
    expect(kept.tables.find((t) => t.name === 'Concerts')!.foreignKeys.map((fk) => fk.name)).toEqual(['FK_ConcertSinger']);
    expect(keepForeignKeysWithin(schema.tables).dropped).toEqual([]);
  });

  it('restoreDdl: parents first, then indexes, foreign keys and views after the data', async () => {
    const { schema } = await readSchema(standIn(CLOUD).clients, SESSION, TX);
    const ddl = restoreDdl(schema);
    expect(ddl.tables).toEqual([
      'CREATE TABLE `Singers` (\n' +
        '  `SingerId` INT64 NOT NULL,\n' +
        '  `FirstName` STRING(1024),\n' +
        '  `LastName` STRING(1024) NOT NULL,\n' +
        '  `FullName` STRING(2049) AS (ARRAY_TO_STRING([FirstName, LastName], " ")) STORED,\n' +
        '  `Score` FLOAT32,\n' +
        ') PRIMARY KEY (`SingerId`)',
      'CREATE TABLE `Albums` (\n' +
        '  `SingerId` INT64 NOT NULL,\n' +
        '  `AlbumId` INT64 NOT NULL,\n' +
        '  `AlbumTitle` STRING(MAX),\n' +
        '  `UpdatedAt` TIMESTAMP OPTIONS (allow_commit_timestamp=true),\n' +
        '  `Tags` ARRAY<STRING(64)>,\n' +
        ') PRIMARY KEY (`SingerId`, `AlbumId` DESC),\n' +
        '  INTERLEAVE IN PARENT `Singers` ON DELETE CASCADE',
      'CREATE TABLE `Concerts` (\n' +
        '  `ConcertId` INT64 NOT NULL,\n' +
        '  `SingerId` INT64 NOT NULL,\n' +
        '  `AlbumId` INT64,\n' +
        '  `Price` NUMERIC DEFAULT (0),\n' +
        '  `Info` JSON,\n' +
        '  CONSTRAINT `PriceNonNegative` CHECK (Price >= 0),\n' +
        ') PRIMARY KEY (`ConcertId`)',
    ]);
    expect(ddl.afterData).toEqual([
      'CREATE UNIQUE NULL_FILTERED INDEX `AlbumsByTitle` ON `Albums`(`AlbumTitle` ASC) STORING (`UpdatedAt`, `Tags`)',
      'CREATE INDEX `SingerAlbumsByTitle` ON `Albums`(`SingerId` ASC, `AlbumTitle` DESC), INTERLEAVE IN `Singers`',
      'ALTER TABLE `Concerts` ADD CONSTRAINT `FK_ConcertSinger` FOREIGN KEY (`SingerId`) REFERENCES `Singers` (`SingerId`) ON DELETE CASCADE',
      'ALTER TABLE `Concerts` ADD CONSTRAINT `FK_ConcertAlbum` FOREIGN KEY (`SingerId`, `AlbumId`) REFERENCES `Albums` (`SingerId`, `AlbumId`)',
      'CREATE VIEW `SingerNames` SQL SECURITY INVOKER AS SELECT Singers.SingerId AS SingerId FROM Singers',
    ]);
  });

  it('refuses what it cannot restore: change streams, sequences, named schemas, row deletion policies, INTERLEAVE IN', async () => {
    const tables: Rows = {
      fields: TABLES.fields,
      rows: [
        ...TABLES.rows,
        ['', 'sales', 'Orders', 'BASE TABLE', null, null, 'COMMITTED', null, null],
        ['', '', 'Events', 'BASE TABLE', null, null, 'COMMITTED', null, 'OLDER_THAN(CreatedAt, INTERVAL 30 DAY)'],
        ['', '', 'Loose', 'BASE TABLE', 'Singers', 'NO ACTION', 'COMMITTED', 'IN', null],
      ],
    };
    const { clients } = standIn({
      ...CLOUD,
      TABLES: tables,
      CHANGE_STREAMS: { fields: CLOUD.CHANGE_STREAMS.fields, rows: [['', '', 'EverythingStream', true]] },
      SEQUENCES: { fields: CLOUD.SEQUENCES.fields, rows: [['', '', 'OrderIds', 'INT64']] },
    });
    const { unsupported } = await readSchema(clients, SESSION, TX);
    expect(unsupported).toEqual(
      expect.arrayContaining([
        { table: null, problem: 'change stream EverythingStream' },
        { table: null, problem: 'sequence OrderIds' },
        { table: null, problem: 'named schema sales (table sales.Orders)' },
        { table: 'Events', problem: 'row deletion policy on Events' },
        { table: 'Loose', problem: 'table Loose interleaved IN (not IN PARENT) Singers' },
      ]),
    );
    expect(unsupported).toHaveLength(5);
  });

  it('an error that is not a missing view propagates', async () => {
    const { clients } = standIn({ ...CLOUD, CHECK_CONSTRAINTS: { code: 7, message: '7 PERMISSION_DENIED: Caller is missing IAM permission spanner.databases.select' } });
    await expect(readSchema(clients, SESSION, TX)).rejects.toMatchObject({ code: 7 });
  });
});

// ---- handy-spanner --------------------------------------------------------------------------------------------------------

describe('readSchema on a server without several INFORMATION_SCHEMA views (handy-spanner)', () => {
  const missing = (view: string) => ({ code: 3, message: `Table not found: ${view}` });
  const HANDY_COLUMNS = ['TABLE_CATALOG', 'TABLE_SCHEMA', 'TABLE_NAME', 'COLUMN_NAME', 'ORDINAL_POSITION', 'COLUMN_DEFAULT', 'DATA_TYPE', 'IS_NULLABLE', 'SPANNER_TYPE'];
  const HANDY = {
    TABLES: { fields: TABLES.fields.slice(0, 6), rows: [['', '', 'Concerts', 'BASE TABLE', '', ''], ['', '', 'Singers', 'BASE TABLE', '', '']] },
    COLUMNS: {
      fields: HANDY_COLUMNS,
      rows: [
        ['', '', 'Concerts', 'ConcertId', '1', null, null, 'NO', 'INT64'],
        ['', '', 'Concerts', 'SingerId', '2', null, null, 'NO', 'INT64'],
        ['', '', 'Singers', 'SingerId', '1', null, null, 'NO', 'INT64'],
      ],
    },
    COLUMN_OPTIONS: { fields: COLUMN_OPTIONS.fields, rows: [] },
    INDEXES: { fields: INDEX_FIELDS, rows: [idx('Concerts', 'PRIMARY_KEY', 'PRIMARY_KEY', '', true, false), idx('Singers', 'PRIMARY_KEY', 'PRIMARY_KEY', '', true, false)] },
    INDEX_COLUMNS: { fields: IC_FIELDS, rows: [ic('Concerts', 'PRIMARY_KEY', 'ConcertId', 1, 'ASC'), ic('Singers', 'PRIMARY_KEY', 'SingerId', 1, 'ASC')] },
    REFERENTIAL_CONSTRAINTS: { fields: REFERENTIAL_CONSTRAINTS.fields, rows: [REFERENTIAL_CONSTRAINTS.rows[0]!] },
    KEY_COLUMN_USAGE: missing('KEY_COLUMN_USAGE'),
    TABLE_CONSTRAINTS: missing('TABLE_CONSTRAINTS'),
    CHECK_CONSTRAINTS: missing('CHECK_CONSTRAINTS'),
    VIEWS: missing('VIEWS'),
    CHANGE_STREAMS: missing('CHANGE_STREAMS'),
    SEQUENCES: missing('SEQUENCES'),
  };

  it('records each missing view and column as a gap, and an unreadable foreign key as unsupported', async () => {
    const { clients, sqls } = standIn(HANDY);
    const { schema, gaps, unsupported } = await readSchema(clients, SESSION, TX);
    expect(gaps).toEqual([
      'INFORMATION_SCHEMA.KEY_COLUMN_USAGE (foreign-key columns)',
      'INFORMATION_SCHEMA.TABLE_CONSTRAINTS (which table a constraint is on)',
      'INFORMATION_SCHEMA.CHECK_CONSTRAINTS (check constraints)',
      'INFORMATION_SCHEMA.VIEWS (views)',
      'INFORMATION_SCHEMA.CHANGE_STREAMS (change streams)',
      'INFORMATION_SCHEMA.SEQUENCES (sequences)',
      'INFORMATION_SCHEMA column IS_GENERATED (generated columns)',
    ]);
    expect(unsupported).toEqual([{ table: null, problem: "foreign key FK_ConcertSinger: this server's INFORMATION_SCHEMA has no KEY_COLUMN_USAGE, so its columns cannot be read" }]);
    expect(sqls.some((q) => q.includes('INFORMATION_SCHEMA.KEY_COLUMN_USAGE'))).toBe(true);
    expect(schema.views).toEqual([]);
    expect(schema.tables.map((t) => [t.name, t.parent, t.primaryKey, t.foreignKeys, t.checks])).toEqual([
      ['Concerts', null, [{ column: 'ConcertId', desc: false }], [], []],
      ['Singers', null, [{ column: 'SingerId', desc: false }], [], []],
    ]);
    expect(schema.tables[0]!.columns.every((c) => c.generationExpression === null && c.defaultExpression === null)).toBe(true);
    expect(restoreDdl(schema).afterData).toEqual([]);
  });

  it('without foreign keys it does not ask for KEY_COLUMN_USAGE', async () => {
    const { clients, sqls } = standIn({ ...HANDY, REFERENTIAL_CONSTRAINTS: missing('REFERENTIAL_CONSTRAINTS') });
    const { gaps, unsupported } = await readSchema(clients, SESSION, TX);
    expect(sqls.some((q) => q.includes('KEY_COLUMN_USAGE'))).toBe(false);
    expect(gaps[0]).toBe('INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS (foreign keys)');
    expect(unsupported).toEqual([]);
  });
});
