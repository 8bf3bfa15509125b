// The Spanner engine end to end, through the real `bak` CLI against handy-spanner: a database with interleaved tables
// three levels deep (ON DELETE CASCADE), secondary indexes, every type handy-spanner holds with its edge values, a
// table larger than one commit may hold and an empty table, backed up, restored into a new database and compared
// cell by cell with the test's own reads; the integrity check; a second backup after one table changed; the Dataflow
// export read by an independent Avro reader (Python fastavro); and the bad inputs, each leaving nothing visible.
// handy-spanner dies on NUMERIC, JSON and FLOAT32 columns, so those are proven in test/unit/spanner-values.test.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import avro from 'avsc';
import { compressSync } from 'snappy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/repository/manifest.ts';
import { json, runBak, show } from '../helpers/cli.ts';
import { unusedPort } from '../helpers/postgres.ts';
import { serversEnv } from '../helpers/servers.ts';
import { requireSpanner, startOwnSpanner, TestDatabase, uniqueDatabaseId, type Cell, type SpannerEnv } from '../helpers/spanner.ts';

const SCHEMA = [
  `CREATE TABLE Singers (SingerId INT64 NOT NULL, Name STRING(100) NOT NULL, Born DATE) PRIMARY KEY (SingerId)`,
  `CREATE TABLE Albums (SingerId INT64 NOT NULL, AlbumId INT64 NOT NULL, Title STRING(MAX)) PRIMARY KEY (SingerId, AlbumId DESC), INTERLEAVE IN PARENT Singers ON DELETE CASCADE`,
  `CREATE TABLE Songs (SingerId INT64 NOT NULL, AlbumId INT64 NOT NULL, SongId INT64 NOT NULL, Seconds FLOAT64) PRIMARY KEY (SingerId, AlbumId DESC, SongId), INTERLEAVE IN PARENT Albums ON DELETE CASCADE`,
  `CREATE TABLE Types (Id INT64 NOT NULL, B BOOL, I INT64, F FLOAT64, S STRING(MAX), Y BYTES(MAX), D DATE, T TIMESTAMP,
     CT TIMESTAMP OPTIONS (allow_commit_timestamp=true), AB ARRAY<BOOL>, AI ARRAY<INT64>, AF ARRAY<FLOAT64>, ASt ARRAY<STRING(MAX)>,
     AY ARRAY<BYTES(MAX)>, AD ARRAY<DATE>, ATs ARRAY<TIMESTAMP>) PRIMARY KEY (Id)`,
  `CREATE TABLE Big (Id INT64 NOT NULL, Payload STRING(MAX), N FLOAT64) PRIMARY KEY (Id)`,
  `CREATE TABLE Empty (K STRING(10) NOT NULL) PRIMARY KEY (K)`,
  `CREATE TABLE KeyOnly (K STRING(10) NOT NULL, J INT64 NOT NULL) PRIMARY KEY (K, J DESC)`,
  `CREATE UNIQUE NULL_FILTERED INDEX AlbumsByTitle ON Albums(Title) STORING (AlbumId)`,
  `CREATE INDEX SongsBySeconds ON Songs(SingerId, Seconds DESC), INTERLEAVE IN Singers`,
];
const TYPE_COLUMNS = ['Id', 'B', 'I', 'F', 'S', 'Y', 'D', 'T', 'CT', 'AB', 'AI', 'AF', 'ASt', 'AY', 'AD', 'ATs'];
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('base64');
const TYPE_ROWS: Cell[][] = [
  ['1', true, '9223372036854775807', 1.7976931348623157e308, 'ü€😀\n\t"\\\'', ALL_BYTES, '9999-12-31', '9999-12-31T23:59:59.999999999Z', '2024-01-02T03:04:05.123456789Z',
    [true, null, false], ['9223372036854775807', null, '-9223372036854775808'], [-0, null, 5e-324], ['', null, 'x'], [ALL_BYTES, null, ''], ['0001-01-01', null], ['2000-02-29T12:00:00.000001Z', null]],
  ['2', false, '-9223372036854775808', -0, '', '', '0001-01-01', '0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', [], [], [], [], [], [], []],
  ['3', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
  ['4', true, '0', 5e-324, ' ', 'AA==', '2024-02-29', '2024-02-29T23:59:59.5Z', '2026-11-30T10:00:00.000000001Z', [null], [null], [null], [null], [null], [null], [null]],
];
const BIG_ROWS = 30_000; // 3 cells each: 90,000 mutations, more than the 80,000 one commit may hold
const ORDER: Record<string, string> = { Singers: 'SingerId', Albums: 'SingerId, AlbumId DESC', Songs: 'SingerId, AlbumId DESC, SongId', Types: 'Id', Big: 'Id', Empty: 'K', KeyOnly: 'K, J DESC' };

describe('spanner engine against handy-spanner', () => {
  let env: SpannerEnv;
  let endpoint: string;
  let work: string;
  let repo: string;
  let source: TestDatabase;
  const made: TestDatabase[] = [];
  let first: Manifest;

  const target = (prefix: string) => {
    const db = new TestDatabase(env, uniqueDatabaseId(prefix));
    made.push(db);
    return db;
  };
  const bak = (args: string[]) => runBak(['--repo', repo, ...args]);

  beforeAll(async () => {
    env = await requireSpanner();
    endpoint = `http://${env.host}`;
    work = await mkdtemp(path.join(tmpdir(), 'bak-spanner-'));
    repo = path.join(work, 'repo');
    expect((await runBak(['init', repo])).code).toBe(0);
    source = target('bak-src');
    await source.create(SCHEMA);
    await source.insert('Singers', ['SingerId', 'Name', 'Born'], [['1', 'Ada', '1815-12-10'], ['2', 'Grace', null], ['3', 'Edsger', '1930-05-11']]);
    await source.insert('Albums', ['SingerId', 'AlbumId', 'Title'], [['1', '1', 'Notes'], ['1', '2', null], ['2', '1', 'COBOL'], ['3', '7', 'GOTO']]);
    await source.insert('Songs', ['SingerId', 'AlbumId', 'SongId', 'Seconds'], [['1', '1', '1', 180.5], ['1', '1', '2', null], ['1', '2', '1', 3], ['3', '7', '1', 42]]);
    await source.insert('Types', TYPE_COLUMNS, TYPE_ROWS);
    await source.insert('KeyOnly', ['K', 'J'], [['a', '1'], ['a', '2'], ['b', '-1']]);
    await source.insert('Big', ['Id', 'Payload', 'N'], Array.from({ length: BIG_ROWS }, (_, i) => [String(i), `row ${i} ${'x'.repeat(i % 50)}`, i / 7]));
  });

  afterAll(async () => {
    for (const db of made) {
      await db.drop();
      await db.close();
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function sameRows(a: TestDatabase, b: TestDatabase, table: string): Promise<void> {
    const [left, right] = await Promise.all([a.rows(table, ORDER[table]!), b.rows(table, ORDER[table]!)]);
    expect(right.length, `${table} rows`).toBe(left.length);
    expect(right, `${table} cells`).toEqual(left);
  }

  it('backs up every table at one timestamp and restores it cell by cell, batching a table past one commit', async () => {
    const backup = await bak(['--json', 'backup', source.uri, '--endpoint', endpoint]);
    expect(backup.code, show(backup)).toBe(0);
    first = json<Manifest>(backup);
    const tables = first.engineDetails.tables as Array<{ name: string; rows: number; files: string[] }>;
    expect(Object.fromEntries(tables.map((t) => [t.name, t.rows]))).toEqual({ Singers: 3, Albums: 4, Songs: 4, Types: 4, Big: BIG_ROWS, Empty: 0, KeyOnly: 3 });
    // Parents before children, as restore needs them.
    const order = tables.map((t) => t.name);
    expect(order.indexOf('Singers')).toBeLessThan(order.indexOf('Albums'));
    expect(order.indexOf('Albums')).toBeLessThan(order.indexOf('Songs'));
    expect(first.engineDetails).toMatchObject({ schemaFrom: 'INFORMATION_SCHEMA', ddlFrom: 'INFORMATION_SCHEMA', partitionedReads: false });
    expect(typeof first.engineDetails.readTimestamp).toBe('string');

    const restored = target('bak-dst');
    const restore = await bak(['--json', 'restore', first.id, '--to', restored.uri, '--endpoint', endpoint]);
    expect(restore.code, show(restore)).toBe(0);
    const plan = json(restore).details.plans[0];
    expect(plan).toMatchObject({ action: 'create', tablesChecked: 7, rowsChecked: BIG_ROWS + 18 });
    // 90,000 cells of Big at the default 40,000 mutations per commit: three commits for it alone.
    expect(plan.commits).toBeGreaterThanOrEqual(3 + 4);
    for (const table of Object.keys(ORDER)) await sameRows(source, restored, table);

    const indexes = await restored.query(`SELECT INDEX_NAME, IS_UNIQUE, IS_NULL_FILTERED, PARENT_TABLE_NAME FROM INFORMATION_SCHEMA.INDEXES WHERE INDEX_TYPE = 'INDEX' ORDER BY INDEX_NAME`);
    expect(indexes).toEqual([
      { INDEX_NAME: 'AlbumsByTitle', IS_UNIQUE: true, IS_NULL_FILTERED: true, PARENT_TABLE_NAME: '' },
      { INDEX_NAME: 'SongsBySeconds', IS_UNIQUE: false, IS_NULL_FILTERED: false, PARENT_TABLE_NAME: 'Singers' },
    ]);
    const options = await restored.query(`SELECT TABLE_NAME, COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMN_OPTIONS WHERE OPTION_NAME = 'allow_commit_timestamp'`);
    expect(options).toEqual([{ TABLE_NAME: 'Types', COLUMN_NAME: 'CT' }]);

    // The interleaving and its ON DELETE CASCADE came back: deleting a singer takes its albums and songs along.
    await restored.deleteKey('Singers', ['1']);
    expect(await restored.count('Albums')).toBe(2);
    expect(await restored.count('Songs')).toBe(1);
  });

  it('fails the integrity check of a target whose one cell changed, naming the table (exit 3)', async () => {
    const restored = target('bak-chk');
    const restore = await bak(['restore', first.id, '--to', restored.uri, '--endpoint', endpoint]);
    expect(restore.code, show(restore)).toBe(0);
    const clean = await bak(['restore', first.id, '--to', restored.uri, '--endpoint', endpoint, '--check-only']);
    expect(clean.code, show(clean)).toBe(0);
    await restored.update('Types', ['Id', 'S'], [['4', '  ']]);
    const check = await bak(['restore', first.id, '--to', restored.uri, '--endpoint', endpoint, '--check-only']);
    expect(check.code, show(check)).toBe(3);
    expect(check.stderr).toMatch(/integrity check .* failed: Types: same 4 rows, but cell values differ/);
    expect(check.stderr).not.toMatch(/Big:|Singers:/);
  });

  it('refuses to restore into a database that has tables, unless --force', async () => {
    const restored = target('bak-full');
    await restored.create([`CREATE TABLE Other (K INT64 NOT NULL) PRIMARY KEY (K)`]);
    const refused = await bak(['restore', first.id, '--to', restored.uri, '--endpoint', endpoint]);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toMatch(/is not empty \(1 tables: Other\).*--force/);
    expect(await restored.query(`SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ''`)).toEqual([{ TABLE_NAME: 'Other' }]);
    const dry = await bak(['--json', 'restore', first.id, '--to', restored.uri, '--endpoint', endpoint, '--force', '--dry-run']);
    expect(dry.code, show(dry)).toBe(0);
    expect(json(dry).details.plans[0]).toMatchObject({ action: 'into-existing', tables: 7 });
    const forced = await bak(['restore', first.id, '--to', restored.uri, '--endpoint', endpoint, '--force', '--table', 'Singers', '--table', 'Empty']);
    expect(forced.code, show(forced)).toBe(0);
    await sameRows(source, restored, 'Singers');
  });

  it('a second backup after one table changed stores new data for that table only', async () => {
    await source.update('Types', ['Id', 'S'], [['3', 'changed']]);
    const second = await bak(['--json', 'backup', source.uri, '--endpoint', endpoint]);
    expect(second.code, show(second)).toBe(0);
    const next = json<Manifest>(second);
    expect(next.parent).toBe(first.id);
    const blobsOf = (m: Manifest, table: string) => m.items.filter((i) => i.details?.table === table).flatMap((i) => i.blobs.map((b) => b.id));
    for (const table of ['Singers', 'Albums', 'Songs', 'Big', 'Empty', 'KeyOnly']) expect(blobsOf(next, table), table).toEqual(blobsOf(first, table));
    expect(blobsOf(next, 'Types')).not.toEqual(blobsOf(first, 'Types'));
    const typesStored = next.items.filter((i) => i.details?.table === 'Types').reduce((s, i) => s + i.blobs.reduce((t, b) => t + b.stored, 0), 0);
    expect(next.totals.newBytes).toBeLessThanOrEqual(typesStored);
    await source.update('Types', ['Id', 'S'], [['3', null]]);
  });

  it('exports the Dataflow layout: manifests with the right MD5s, Avro files an independent reader takes', async () => {
    const dir = path.join(work, 'export');
    const exported = await bak(['--json', 'export', first.id, '--to-dir', dir]);
    expect(exported.code, show(exported)).toBe(0);
    const listing = JSON.parse(await readFile(path.join(dir, 'spanner-export.json'), 'utf8'));
    expect(listing.tables.map((t: { name: string }) => t.name).sort()).toEqual(Object.keys(ORDER).sort());
    const files = await readdir(dir);
    for (const { name, manifestFile } of listing.tables as Array<{ name: string; manifestFile: string }>) {
      expect(manifestFile).toBe(`${name}-manifest.json`);
      const manifest = JSON.parse(await readFile(path.join(dir, manifestFile), 'utf8'));
      expect(manifest.files.length).toBeGreaterThanOrEqual(1);
      for (const f of manifest.files) {
        expect(f.name).toMatch(new RegExp(`^${name}\\.avro-\\d{5}-of-\\d{5}$`));
        expect(files).toContain(f.name);
        expect(f.md5).toBe(createHash('md5').update(await readFile(path.join(dir, f.name))).digest('base64'));
      }
    }
    // Python's fastavro, not bak's avsc: schema properties and every record.
    const script = `
import fastavro, json, sys, glob, os
out = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.avro-*'))):
    with open(path, 'rb') as f:
        reader = fastavro.reader(f)
        schema = json.loads(reader.metadata['avro.schema'])
        rows = list(reader)
    t = out.setdefault(schema['spannerName'], {'rows': 0, 'schema': schema, 'first': None})
    t['rows'] += len(rows)
    if rows and t['first'] is None:
        t['first'] = rows[0]
print(json.dumps(out, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))
`;
    const read = JSON.parse(execFileSync('python3', ['-c', script, dir], { env: { ...process.env, PYTHONPATH: serversEnv().fastavro.pythonPath }, maxBuffer: 64 * 1024 * 1024 }).toString());
    expect(Object.fromEntries(Object.entries(read).map(([k, v]) => [k, (v as { rows: number }).rows]))).toEqual({ Singers: 3, Albums: 4, Songs: 4, Types: 4, Big: BIG_ROWS, Empty: 0, KeyOnly: 3 });
    const albums = read.Albums.schema;
    expect(albums).toMatchObject({ googleStorage: 'CloudSpanner', googleFormatVersion: '1.0.0', spannerParent: 'Singers', spannerOnDeleteAction: 'cascade', spannerPrimaryKey_0: '`SingerId` ASC', spannerPrimaryKey_1: '`AlbumId` DESC' });
    expect(albums.spannerIndex_0).toBe('CREATE UNIQUE NULL_FILTERED INDEX `AlbumsByTitle` ON `Albums`(`Title` ASC) STORING (`AlbumId`)');
    const types = read.Types;
    expect(types.schema.fields.find((f: { name: string }) => f.name === 'CT')).toMatchObject({ sqlType: 'TIMESTAMP', spannerOption_0: 'allow_commit_timestamp=TRUE' });
    expect(types.first).toMatchObject({ Id: 1, I: 9223372036854775807, S: 'ü€😀\n\t"\\\'', D: '9999-12-31', T: '9999-12-31T23:59:59.999999999Z', AI: [9223372036854775807, null, -9223372036854775808] });
  });

  it("adopts a Dataflow export (snappy blocks, Google's older properties) as a snapshot that restores cell by cell; a damaged file is refused", async () => {
    // Google's export as Beam writes it: the same records, in snappy-compressed blocks (the test's own writer).
    const exported = path.join(work, 'export');
    const dataflow = path.join(work, 'dataflow');
    await mkdir(dataflow);
    const listing = JSON.parse(await readFile(path.join(exported, 'spanner-export.json'), 'utf8'));
    for (const { manifestFile } of listing.tables as Array<{ manifestFile: string }>) {
      const manifest = JSON.parse(await readFile(path.join(exported, manifestFile), 'utf8'));
      for (const f of manifest.files) {
        const content = await toSnappy(await readFile(path.join(exported, f.name)));
        await writeFile(path.join(dataflow, f.name), content);
        f.md5 = createHash('md5').update(content).digest('base64');
      }
      await writeFile(path.join(dataflow, manifestFile), JSON.stringify(manifest));
    }
    await writeFile(path.join(dataflow, 'spanner-export.json'), JSON.stringify(listing));
    const adoptedSource = target('bak-adopted');
    const adopt = await bak(['--json', 'backup', adoptedSource.uri, '--from-export', dataflow]);
    expect(adopt.code, show(adopt)).toBe(0);
    const adopted = json<Manifest>(adopt);
    expect(adopted.engineDetails).toMatchObject({ adoptedFrom: dataflow, readTimestamp: null, schemaFrom: 'Dataflow export' });
    expect((adopted.engineDetails.tables as Array<{ name: string; rows: number }>).map((t) => [t.name, t.rows])).toEqual(
      (first.engineDetails.tables as Array<{ name: string; rows: number }>).map((t) => [t.name, t.rows]),
    );
    const restored = target('bak-adopt-r');
    const restore = await bak(['--json', 'restore', adopted.id, '--to', restored.uri, '--endpoint', endpoint]);
    expect(restore.code, show(restore)).toBe(0);
    expect(json(restore).details.plans[0]).toMatchObject({ tablesChecked: 7, rowsChecked: BIG_ROWS + 18 });
    for (const table of Object.keys(ORDER)) await sameRows(source, restored, table);

    // One flipped byte in one data file: refused (exit 3), naming the file, and no snapshot.
    const manifest = JSON.parse(await readFile(path.join(dataflow, 'Types-manifest.json'), 'utf8'));
    const damaged = path.join(dataflow, manifest.files[0].name);
    const bytes = await readFile(damaged);
    bytes.writeUInt8(bytes[bytes.length - 20]! ^ 0x01, bytes.length - 20);
    await writeFile(damaged, bytes);
    const before = json<{ snapshots: Manifest[] }>(await bak(['--json', 'snapshots'])).snapshots.length;
    const refused = await bak(['backup', adoptedSource.uri, '--from-export', dataflow]);
    expect(refused.code, show(refused)).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`data file ${manifest.files[0].name.replace(/\./g, '\\.')} of table Types has MD5 \\S+, its manifest says`));
    expect(json<{ snapshots: Manifest[] }>(await bak(['--json', 'snapshots'])).snapshots.length).toBe(before);
  });

  it('a foreign key a snapshot records (as Cloud Spanner describes it) is created after the rows, and checked to be there', async () => {
    // handy-spanner cannot describe foreign keys, so the snapshot is one of a server that can: the first one, with a key added.
    const withKey = structuredClone(first) as Manifest & { engineDetails: { schema: { tables: Array<{ name: string; foreignKeys: unknown[] }> } } };
    withKey.id = `${first.id.slice(0, -6)}f0f0f0`;
    withKey.engineDetails.schema.tables.find((t) => t.name === 'Songs')!.foreignKeys.push({ name: 'FK_SongSinger', columns: ['SingerId'], referencedTable: 'Singers', referencedColumns: ['SingerId'], onDeleteCascade: false });
    await writeFile(path.join(repo, 'snapshots', first.sourceKey, `${withKey.id}.json`), JSON.stringify(withKey));
    const restored = target('bak-fk-r');
    const restore = await bak(['restore', withKey.id, '--to', restored.uri, '--endpoint', endpoint]);
    // handy-spanner answers ALTER TABLE … ADD CONSTRAINT with success and does not apply it: bak says so instead of passing.
    expect(restore.code, show(restore)).toBe(1);
    expect(restore.stderr).toMatch(/indexes and foreign keys were not all created .*: foreign key Songs\.FK_SongSinger missing \(the rows are in\)/);
    await rm(path.join(repo, 'snapshots', first.sourceKey, `${withKey.id}.json`));
  });

  it('verify --level restore restores into a scratch database, checks it and drops it', async () => {
    const verify = await bak(['--json', 'verify', first.id, '--level', 'restore', '--scratch', `spanner://projects/${env.projectId}/instances/${env.instanceId}/databases/unused`]);
    // the scratch restore reaches handy-spanner through SPANNER_EMULATOR_HOST, as a verify run by cron would through its environment
    expect(verify.code, show(verify)).toBe(0);
    const left = await source.query(`SELECT 1 AS one`);
    expect(left).toEqual([{ one: 1 }]);
  });

  describe('bad input', () => {
    // handy-spanner makes any database it is asked about (GetDatabase, CreateSession), so a missing database or
    // instance is tested at the client boundary: test/unit/spanner-native.test.ts (describeSpannerError).
    it('a schema feature bak cannot restore (a foreign key this server does not describe): exit 2, nothing stored', async () => {
      const db = target('bak-fk');
      await db.create([`CREATE TABLE A (Id INT64 NOT NULL) PRIMARY KEY (Id)`, `CREATE TABLE B (Id INT64 NOT NULL, AId INT64, CONSTRAINT FK_A FOREIGN KEY (AId) REFERENCES A (Id)) PRIMARY KEY (Id)`]);
      const refused = await bak(['backup', db.uri, '--endpoint', endpoint]);
      expect(refused.code, show(refused)).toBe(2);
      expect(refused.stderr).toMatch(/schema features bak cannot restore.*foreign key FK_A: this server's INFORMATION_SCHEMA has no KEY_COLUMN_USAGE/);
      const list = json<{ snapshots: Manifest[] }>(await bak(['--json', 'snapshots'])).snapshots;
      expect(list.some((m) => m.source === db.uri)).toBe(false);
    });

    it('an interleaved child selected without its parent, and options Spanner does not take: exit 2', async () => {
      const child = await bak(['backup', source.uri, '--endpoint', endpoint, '--table', 'Albums']);
      expect(child.code, show(child)).toBe(2);
      expect(child.stderr).toMatch(/table Albums is interleaved in Singers, which the selection leaves out/);
      const region = await bak(['backup', source.uri, '--endpoint', endpoint, '--region', 'eu']);
      expect(region.code, show(region)).toBe(2);
      expect(region.stderr).toMatch(/spanner options: .*region/);
      const uri = await bak(['backup', 'spanner://projects/p/databases/d']);
      expect(uri.code, show(uri)).toBe(2);
      expect(uri.stderr).toMatch(/invalid Spanner URI/);
    });

    it('the server going away mid-backup: exit 1, no snapshot visible', async () => {
      const own = await startOwnSpanner(env.bin, await unusedPort());
      const db = new TestDatabase({ ...env, host: own.host }, uniqueDatabaseId('bak-die'));
      try {
        await db.create([`CREATE TABLE Lines (Id INT64 NOT NULL, Payload STRING(MAX)) PRIMARY KEY (Id)`]);
        await db.insert('Lines', ['Id', 'Payload'], Array.from({ length: 20_000 }, (_, i) => [String(i), 'y'.repeat(200)]), 10_000);
        // Killed once the read has begun: the backup logs its tables and read timestamp as it starts reading.
        const result = await runBak(['--repo', repo, 'backup', db.uri, '--endpoint', `http://${own.host}`], { onStderr: (text) => text.includes('tables at') && own.stop() });
        expect(result.code, show(result)).toBe(1);
        expect(result.stderr).toMatch(/reading table Lines: Spanner at 127\.0\.0\.1:\d+ is unreachable or went away/);
        const list = json<{ snapshots: Manifest[] }>(await bak(['--json', 'snapshots'])).snapshots;
        expect(list.some((m) => m.source === db.uri)).toBe(false);
      } finally {
        own.stop();
        await db.close();
      }
    });
  });
});

/** The test's own Beam-style writer: an Avro file's records again, in snappy blocks (each followed by its CRC-32). */
async function toSnappy(file: Buffer): Promise<Buffer> {
  const long = avro.types.LongType.__with({
    fromBuffer: (b: Buffer) => b.readBigInt64LE(),
    toBuffer: (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(n);
      return b;
    },
    fromJSON: BigInt,
    toJSON: Number,
    isValid: (n: unknown) => typeof n === 'bigint',
    compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
  });
  let schema: Record<string, unknown> = {};
  const records: unknown[] = [];
  const decoder = new avro.streams.BlockDecoder({ parseHook: (s: avro.Schema) => avro.Type.forSchema(s, { registry: { long } }) });
  decoder.on('metadata', (_t: unknown, _c: unknown, header: { meta: Record<string, Buffer> }) => (schema = JSON.parse(header.meta['avro.schema']!.toString())));
  decoder.end(file);
  for await (const record of decoder) records.push(record);
  // Older exports: an empty spannerParent on top-level tables, no spannerInterleaveType.
  if (!schema.spannerParent) schema.spannerParent = '';
  delete schema.spannerInterleaveType;
  const snappy = (buf: Buffer, done: (err: Error | null, out?: Buffer) => void) => {
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc32(buf) >>> 0);
    done(null, Buffer.concat([compressSync(buf), sum]));
  };
  const collect = async (encoder: avro.streams.BlockEncoder, values: unknown[]) => {
    const parts: Buffer[] = [];
    encoder.on('data', (b: Buffer) => parts.push(b));
    const ended = new Promise((resolve, reject) => encoder.on('end', resolve).on('error', reject));
    for (const v of values) encoder.write(v);
    encoder.end();
    await ended;
    return Buffer.concat(parts);
  };
  const sync = Buffer.alloc(16, 7);
  const opts = { codec: 'snappy', codecs: { snappy }, syncMarker: sync };
  const header = await collect(new avro.streams.BlockEncoder(schema as avro.Schema, { ...opts, writeHeader: true } as never), []);
  const blocks = await collect(new avro.streams.BlockEncoder(avro.Type.forSchema(schema as avro.Schema, { registry: { long } }), { ...opts, writeHeader: 'never', blockSize: 4096 } as never), records);
  return Buffer.concat([header, blocks]);
}
