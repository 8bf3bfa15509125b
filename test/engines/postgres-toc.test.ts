import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COPY_DIGEST_ALGORITHM,
  CopyDataError,
  CopyDigester,
  type CopyDigest,
  digestCopyOutput,
  digestDumpData,
  digestTable,
  dumpSessionSql,
  PG_DUMP_ENV,
} from '../../src/engines/postgres/copy-digest.ts';
import { checkRestoredDatabase, splitCopyTarget } from '../../src/engines/postgres/integrity.ts';
import { addDigests } from '../../src/util/row-sum.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { copyOutSql, parseBlobsToc, parseToc, type Toc, TocFormatError, tableDataEntries } from '../../src/engines/postgres/toc.ts';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';

const run = promisify(execFile);

function digestOf(chunks: (string | Buffer)[], requireEndMarker = false, algorithm?: string): CopyDigest {
  const d = new CopyDigester({ requireEndMarker, algorithm });
  for (const c of chunks) d.update(typeof c === 'string' ? Buffer.from(c) : c);
  return d.finish();
}

/** Reference sha256-rowsum: Σ SHA-256(line) mod 2^256 with BigInt. */
function sha256Row(line: string | Buffer): bigint {
  return BigInt('0x' + createHash('sha256').update(line).digest('hex'));
}

/** Reference mix64 of one row, written from its description (byte by byte, BigInt-free 32-bit arithmetic). */
function mix64Row(line: string | Buffer): bigint {
  const bytes = typeof line === 'string' ? Buffer.from(line) : line;
  const imul = Math.imul;
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  const fmix = (x: number) => {
    x ^= x >>> 16;
    x = imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = imul(x, 0xc2b2ae35);
    return x ^ (x >>> 16);
  };
  let a = 0x2545f491;
  let b = 0x4f6cdd1d;
  // Words are 4 bytes little-endian from the row's start; a short last word is zero-padded.
  for (let i = 0; i < bytes.length; i += 4) {
    let w = 0;
    for (let k = 0; k < 4 && i + k < bytes.length; k++) w |= bytes[i + k]! << (8 * k);
    a = imul(rotl((a + imul(w, 0x85ebca77)) | 0, 13), 0x9e3779b1);
    b = imul(rotl(b ^ imul(w, 0xc2b2ae3d), 17), 0x27d4eb2f);
  }
  a ^= bytes.length;
  b ^= imul(Math.floor(bytes.length / 2 ** 32), 0x165667b1) ^ 0x165667b1;
  const lo = fmix((a + imul(b, 0xc2b2ae3d)) | 0) >>> 0;
  const hi = fmix(b ^ lo) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

const ALGORITHMS = [
  { algorithm: 'mix64-rowsum', rowHash: mix64Row, bits: 64n },
  { algorithm: 'sha256-rowsum', rowHash: sha256Row, bits: 256n },
];

async function* chunked(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

describe('COPY digest (unit)', () => {
  it('records mix64-rowsum for new backups, and refuses an algorithm it does not know', () => {
    expect(COPY_DIGEST_ALGORITHM).toBe('mix64-rowsum');
    expect(() => new CopyDigester({ requireEndMarker: false, algorithm: 'md5-rowsum' })).toThrow(/unknown row digest algorithm "md5-rowsum"/);
  });
});

describe.each(ALGORITHMS)('COPY digest $algorithm (unit)', ({ algorithm, rowHash, bits }) => {
  const reference = (lines: (string | Buffer)[]) => (lines.reduce((sum, l) => sum + rowHash(l), 0n) % 2n ** bits).toString(16).padStart(Number(bits / 4n), '0');
  const digest = (chunks: (string | Buffer)[], requireEndMarker = false) => digestOf(chunks, requireEndMarker, algorithm);
  const rows = ['1\tfoo\t\\N', '2\tb\\tar\\n', '', '3\t\\\\.', 'ünïcødé\t€', 'abc', 'abcd', 'abcdefghijk'];
  const text = rows.map((r) => r + '\n').join('');
  const dump = text + '\\.\n\n\n';
  const expected = { rows: rows.length, digest: reference(rows) };

  it('sums the hash of each line, and counts empty lines as rows', () => {
    expect(digest([text])).toEqual(expected);
    expect(digest([dump], true)).toEqual(expected);
  });

  it('gives the same result for every split point, including inside a row and inside the "\\." line', () => {
    const bytes = Buffer.from(dump);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(digest([bytes.subarray(0, cut), bytes.subarray(cut)], true), `cut at ${cut}`).toEqual(expected);
    }
    for (let a = 0; a <= bytes.length; a += 3) {
      for (let b = a; b <= bytes.length; b += 2) {
        expect(digest([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)], true)).toEqual(expected);
      }
    }
    expect(digest([...bytes].map((x) => Buffer.from([x])), true)).toEqual(expected);
    const marker = Buffer.from(dump).indexOf('\\.\n\n\n');
    expect(digest([bytes.subarray(0, marker + 1), bytes.subarray(marker + 1, marker + 2), bytes.subarray(marker + 2)], true)).toEqual(expected);
  });

  it('hashes a long row cut into uneven pieces as if it were whole', () => {
    const long = randomBytes(100_003).toString('base64');
    const bytes = Buffer.from(`${long}\nx\n`);
    for (const size of [1, 3, 4, 5, 4093, 65_536]) expect(digest([...chunkedSync(bytes, size)])).toEqual({ rows: 2, digest: reference([long, 'x']) });
  });

  it('does not depend on row order but keeps duplicates (where XOR would cancel them)', () => {
    const reversed = [...rows].reverse().map((r) => r + '\n').join('');
    expect(digest([reversed])).toEqual(expected);
    expect(digest(['a\na\n']).digest).not.toBe(digest(['b\nb\n']).digest);
    expect(digest(['a\na\n']).digest).not.toBe(digest(['a\n']).digest);
    expect(digest(['a\nb\n']).digest).not.toBe(digest(['a\nc\n']).digest);
    // Rows that differ only by trailing zero bytes or length still differ.
    expect(digest(['ab\n']).digest).not.toBe(digest(['ab\0\n']).digest);
  });

  it('carries correctly past the periodic normalisation and wraps modulo 2^bits', () => {
    // Equal rows make the reference a single multiplication; 2^20 + 5 of them cross one normalisation.
    const n = 2 ** 20 + 5;
    const all = Buffer.from('same\tline\n'.repeat(n) + 'a\nb\n');
    const d = new CopyDigester({ requireEndMarker: false, algorithm });
    for (let i = 0; i < all.length; i += 65_521) d.update(all.subarray(i, i + 65_521));
    const expectedSum = (BigInt(n) * rowHash('same\tline') + rowHash('a') + rowHash('b')) % 2n ** bits;
    expect(d.finish()).toEqual({ rows: n + 2, digest: expectedSum.toString(16).padStart(Number(bits / 4n), '0') });
  });

  it('rejects truncated or malformed data', () => {
    expect(() => digest([text], true)).toThrow(/no "\\\." end-of-data line after 8 rows/);
    expect(() => digest(['1\tx\n2\ty'])).toThrow(CopyDataError);
    expect(() => digest(['1\tx\n2\ty'])).toThrow(/row 2 has no end of line/);
    expect(() => digest([dump + 'junk\n'], true)).toThrow(/continues after the "\\\." end-of-data line/);
    expect(() => digest([dump, 'x'], true)).toThrow(CopyDataError);
  });

  it('reads async streams of Buffers', async () => {
    expect(await digestDumpData(chunked(Buffer.from(dump), 7), algorithm)).toEqual(expected);
    expect(await digestCopyOutput(chunked(Buffer.from(text), 5), algorithm)).toEqual(expected);
    await expect(digestDumpData(chunked(Buffer.from(text), 5), algorithm)).rejects.toThrow(CopyDataError);
  });
});

function* chunkedSync(buf: Buffer, size: number): Iterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

describe('parallel check helpers (unit)', () => {
  it('splits a recorded COPY into relation and columns, quotes and parentheses in names included', () => {
    expect(splitCopyTarget('COPY public.t (a, b) TO STDOUT')).toEqual({ relation: 'public.t', columns: 'a, b' });
    expect(splitCopyTarget('COPY "s(1)"."t ""x"" (" ("c)", "d""(") TO STDOUT')).toEqual({ relation: '"s(1)"."t ""x"" ("', columns: '"c)", "d""("' });
    expect(splitCopyTarget('COPY public.nocols  TO STDOUT')).toBeNull();
    expect(splitCopyTarget('SELECT 1')).toBeNull();
  });

  it('adds digests modulo their width', () => {
    expect(addDigests('0000000000000001', '0000000000000002')).toBe('0000000000000003');
    expect(addDigests('ffffffffffffffff', '0000000000000002')).toBe('0000000000000001');
    expect(() => addDigests('00', '0000')).toThrow(/different lengths/);
  });
});

describe('toc.dat parsing (unit)', () => {
  it('rejects what is not a toc.dat', () => {
    expect(() => parseToc(Buffer.alloc(0))).toThrow(TocFormatError);
    expect(() => parseToc(Buffer.from('hello world'))).toThrow(/does not start with "PGDMP"/);
    expect(() => parseToc(Buffer.from([0x50, 0x47, 0x44, 0x4d, 0x50, 1, 9, 0]))).toThrow(/unsupported pg_dump archive version 1\.9\.0/);
    expect(() => parseToc(Buffer.from([0x50, 0x47, 0x44, 0x4d, 0x50, 1, 14, 0, 4, 8, 1]))).toThrow(/archive format custom/);
  });

  it('parses blobs.toc lines', () => {
    expect(parseBlobsToc('16410 blob_16410.dat\n16411 blob_16411.dat\n')).toEqual([
      { oid: 16410, file: 'blob_16410.dat' },
      { oid: 16411, file: 'blob_16411.dat' },
    ]);
    expect(() => parseBlobsToc('16410 ../etc/passwd\n')).toThrow(TocFormatError);
  });
});

describe('pg_dump -Fd toc.dat and COPY digests (real PostgreSQL)', () => {
  let env: ServersEnv['postgres'];
  let admin: pg.Client;
  let db: pg.Client;
  let dbName: string;
  let dumpDir: string;
  let toc: Toc;
  let loOid: number;
  let pgDumpMajor: number;

  const connect = async (database: string) => {
    const client = new pg.Client({ host: env.host, port: env.port, user: env.user, password: env.password, database });
    client.on('error', () => {}); // a dropped connection surfaces through the pending query instead
    await client.connect();
    return client;
  };

  beforeAll(async () => {
    env = await requireServer('postgres');
    dbName = `bak_toc_${Date.now()}_${randomBytes(3).toString('hex')}`;
    admin = await connect('postgres');
    await admin.query(`CREATE DATABASE ${dbName}`);
    // Output defaults unlike pg_dump's, so the check only matches when it applies the dump's session settings.
    await admin.query(
      `ALTER DATABASE ${dbName} SET timezone = 'Asia/Kolkata'; ALTER DATABASE ${dbName} SET bytea_output = 'escape';` +
        ` ALTER DATABASE ${dbName} SET datestyle = 'SQL, DMY'; ALTER DATABASE ${dbName} SET intervalstyle = 'sql_standard';` +
        ` ALTER DATABASE ${dbName} SET extra_float_digits = 0`,
    );
    db = await connect(dbName);
    await db.query(`
      CREATE SCHEMA s2;
      CREATE TABLE public.kinds (id int PRIMARY KEY, n numeric, f float8, txt text, b bytea, j jsonb, a int[], tags text[],
        ts timestamptz, d date, iv interval, u uuid, dropped int, g int GENERATED ALWAYS AS (id * 2) STORED);
      ALTER TABLE public.kinds DROP COLUMN dropped;
      INSERT INTO public.kinds (id, n, f, txt, b, j, a, tags, ts, d, iv, u) VALUES
        (1, 123456789.000123, 0.1, E'tab\\there\\nnewline back\\\\slash cr\\r ünïcødé 日本 🎉', '\\x00ff5c0a09', '{"k": [1, "two", null], "ü": true}',
         '{1,2,NULL}', ARRAY['a b', 'c"d', E'e\\\\f', NULL], '2024-02-29 13:14:15.123456+05:30', '2024-02-29', '1 year 2 mons 3 days 04:05:06.5', gen_random_uuid()),
        (2, -0.5, 'NaN', '', '', 'null', '{}', '{}', '-infinity', 'infinity', '-1 day', '00000000-0000-0000-0000-000000000000'),
        (3, NULL, 1e300, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      CREATE TABLE s2.lines (t text);
      INSERT INTO s2.lines VALUES (''), (E'\\\\.'), ('.'), (E'\\\\'), (NULL), ('');
      CREATE TABLE s2."Odd Näme" ("Col ü" text, "select" int);
      INSERT INTO s2."Odd Näme" VALUES ('x', 1);
      CREATE TABLE s2.empty (x int);
      CREATE TABLE public.measurements (id int, at date, v float8) PARTITION BY RANGE (at);
      CREATE TABLE public.measurements_2023 PARTITION OF public.measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
      CREATE TABLE public.measurements_2024 PARTITION OF public.measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      INSERT INTO public.measurements SELECT g, DATE '2023-06-01' + g, g / 7.0 FROM generate_series(1, 400) g;
      CREATE SEQUENCE s2.counter START 5;
      SELECT setval('s2.counter', 77);
      CREATE TABLE public.fwd (id int, label text);
      CREATE TABLE public.rev (id int, label text);
      CREATE TABLE public.changed (id int, label text);
      INSERT INTO public.fwd SELECT g % 250, md5(g::text) || E'\\t' || (g % 3) FROM generate_series(1, 500) g ORDER BY g;
      INSERT INTO public.fwd SELECT * FROM public.fwd WHERE id < 10; -- duplicate rows
      INSERT INTO public.rev SELECT * FROM public.fwd ORDER BY ctid DESC;
      INSERT INTO public.changed SELECT * FROM public.fwd ORDER BY ctid;
      UPDATE public.changed SET label = label || 'x' WHERE ctid = (SELECT min(ctid) FROM public.changed WHERE id = 42);
    `);
    loOid = (await db.query<{ oid: number }>(`SELECT lo_from_bytea(0, '\\x68656c6c6f00ff'::bytea) AS oid`)).rows[0]!.oid;

    dumpDir = path.join(await mkdtemp(path.join(tmpdir(), 'bak-pgtoc-')), 'dump');
    const pgDump = existsSync(path.join(env.bin, 'pg_dump')) ? path.join(env.bin, 'pg_dump') : 'pg_dump';
    const { stdout: version } = await run(pgDump, ['--version']);
    pgDumpMajor = Number(/\(PostgreSQL\) (\d+)/.exec(version)![1]);
    await run(pgDump, ['-Fd', '-Z0', '-j', '2', '-f', dumpDir, '-h', env.host, '-p', String(env.port), '-U', env.user, dbName], {
      env: { ...process.env, PGPASSWORD: env.password, ...PG_DUMP_ENV },
    });
    toc = parseToc(await readFile(path.join(dumpDir, 'toc.dat')));
  });

  afterAll(async () => {
    await db?.end().catch(() => {});
    if (admin && dbName) await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.end().catch(() => {});
    if (dumpDir) await rm(path.dirname(dumpDir), { recursive: true, force: true });
  });

  const tableData = (schema: string, table: string) => tableDataEntries(toc).find((e) => e.namespace === schema && e.tag === table);
  const datDigest = (schema: string, table: string) => digestDumpData(createReadStream(path.join(dumpDir, tableData(schema, table)!.dataFile!)));

  async function checkSession(): Promise<pg.Client> {
    const client = await connect(dbName);
    for (const sql of dumpSessionSql({ clientEncoding: toc.encoding! })) await client.query(sql);
    return client;
  }

  it('reads the header pg_dump wrote', async () => {
    const { rows } = await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    expect(toc.header).toMatchObject({ magic: 'PGDMP', intSize: 4, offSize: 8, format: 'tar', databaseName: dbName });
    if (pgDumpMajor <= 15) expect(toc.header.version).toBe('1.14.0');
    expect(toc.header.compression.algorithm).toBe('none');
    expect(toc.header.serverVersion).toBe(rows[0]!.v);
    expect(toc.header.pgDumpVersion).toMatch(new RegExp(`^${pgDumpMajor}\\.`));
    const now = new Date();
    expect(Math.abs(toc.header.created.year - now.getUTCFullYear())).toBeLessThanOrEqual(1);
    expect(toc.encoding).toBe('UTF8');
    expect(toc.entries[0]).toMatchObject({ desc: 'ENCODING', section: 'pre-data', dataFile: null });
  });

  it('finds every table with its schema, name and data file, and the file exists', async () => {
    const { rows: tables } = await db.query<{ schema: string; name: string; kind: string }>(`
      SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('public', 's2')`);
    expect(tables.length).toBe(10);
    for (const t of tables) {
      const table = toc.entries.find((e) => e.desc === 'TABLE' && e.namespace === t.schema && e.tag === t.name);
      expect(table, `${t.schema}.${t.name}`).toBeDefined();
      const data = tableData(t.schema, t.name);
      if (t.kind === 'p') {
        expect(data, 'a partitioned parent has no data of its own').toBeUndefined();
        continue;
      }
      expect(data, `${t.schema}.${t.name}`).toMatchObject({ section: 'data', hadDumper: true, dataFile: `${data!.dumpId}.dat` });
      expect(data!.dependencies).toContain(table!.dumpId);
      expect(existsSync(path.join(dumpDir, data!.dataFile!))).toBe(true);
    }
    expect(tableData('s2', 'Odd Näme')!.copyStmt).toBe('COPY s2."Odd Näme" ("Col ü", "select") FROM stdin;\n');
    expect(copyOutSql(tableData('public', 'kinds')!)).toBe('COPY public.kinds (id, n, f, txt, b, j, a, tags, ts, d, iv, u) TO STDOUT');
    expect(toc.entries.find((e) => e.desc === 'SEQUENCE SET' && e.namespace === 's2' && e.tag === 'counter')).toMatchObject({ dataFile: null });
    expect(toc.entries.find((e) => e.desc === 'SEQUENCE SET')!.defn).toContain("SELECT pg_catalog.setval('s2.counter', 77, true);");
    expect(toc.entries.find((e) => e.desc === 'SCHEMA' && e.tag === 's2')).toBeDefined();
  });

  it('points at the large objects: BLOB entries and blobs.toc with blob_<oid>.dat files', async () => {
    expect(toc.entries.find((e) => e.desc === 'BLOB' && e.tag === String(loOid))).toMatchObject({ section: 'pre-data', dataFile: null });
    const blobs = toc.entries.filter((e) => e.desc === 'BLOBS');
    expect(blobs.length).toBeGreaterThan(0);
    const listed = [];
    for (const entry of blobs) listed.push(...parseBlobsToc(await readFile(path.join(dumpDir, entry.dataFile!), 'utf8')));
    if (pgDumpMajor <= 16) expect(blobs[0]!.dataFile).toBe('blobs.toc');
    expect(listed).toEqual([{ oid: loOid, file: `blob_${loOid}.dat` }]);
    expect(await readFile(path.join(dumpDir, `blob_${loOid}.dat`))).toEqual(Buffer.from('68656c6c6f00ff', 'hex'));
  });

  it('writes each .dat file as COPY text ending with a "\\." line and two empty lines', async () => {
    const empty = await readFile(path.join(dumpDir, tableData('s2', 'empty')!.dataFile!), 'latin1');
    expect(empty).toBe('\\.\n\n\n');
    const lines = await readFile(path.join(dumpDir, tableData('s2', 'lines')!.dataFile!), 'latin1');
    expect(lines.endsWith('\n\\.\n\n\n')).toBe(true);
    expect(await datDigest('s2', 'lines')).toMatchObject({ rows: 6 });
  });

  it('gets the same row count and digest from each .dat file as from COPY … TO STDOUT with the dump session settings', async () => {
    const check = await checkSession();
    try {
      for (const entry of tableDataEntries(toc)) {
        const name = `${entry.namespace}.${entry.tag}`;
        const fromDump = await digestDumpData(createReadStream(path.join(dumpDir, entry.dataFile!)));
        const fromTable = await digestTable(check, copyOutSql(entry));
        expect(fromTable, name).toEqual(fromDump);
        const table = `${check.escapeIdentifier(entry.namespace!)}.${check.escapeIdentifier(entry.tag!)}`;
        const { rows } = await check.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
        expect(fromDump.rows, name).toBe(Number(rows[0]!.n));
      }
      expect((await datDigest('public', 'measurements_2023')).rows + (await datDigest('public', 'measurements_2024')).rows).toBe(400);
    } finally {
      await check.end();
    }
  });

  it('checks a database with parallel readers: big tables as page ranges whose digests add up, a changed table named', async () => {
    const tables = await Promise.all(
      tableDataEntries(toc).map(async (entry) => {
        const d = await digestDumpData(createReadStream(path.join(dumpDir, entry.dataFile!)));
        const details = { database: dbName, schema: entry.namespace!, table: entry.tag!, copy: copyOutSql(entry), digest: d.digest, algorithm: COPY_DIGEST_ALGORITHM };
        return { name: `${dbName}/${entry.dataFile}`, rows: d.rows, details };
      }),
    );
    const manifestOf = (items: typeof tables) => ({ items }) as unknown as Manifest;
    const conn = { host: env.host, port: env.port, user: env.user, password: env.password, database: dbName, params: {} };
    const source = { name: dbName, dumpEncoding: toc.encoding, largeObjects: 1 };
    const totalRows = tables.reduce((n, t) => n + t.rows, 0);
    // One page per range: every multi-page table (fwd, rev, changed, the partitions) is read in pieces.
    for (const options of [{ jobs: 1 }, { jobs: 3, pagesPerRange: 1 }, { jobs: 2, pagesPerRange: 2 }]) {
      expect(await checkRestoredDatabase(conn, dbName, manifestOf(tables), source, options), JSON.stringify(options)).toEqual({
        tablesChecked: tables.length,
        rowsChecked: totalRows,
        mismatches: [],
      });
    }
    const fwd = tables.find((t) => t.details.table === 'fwd')!;
    const altered = tables.map((t) => (t.details.table === 'changed' ? { ...t, details: { ...t.details, digest: fwd.details.digest } } : t));
    const result = await checkRestoredDatabase(conn, dbName, manifestOf(altered), source, { jobs: 2, pagesPerRange: 1 });
    expect(result.mismatches).toEqual([{ table: '"public"."changed"', problem: `same ${fwd.rows} rows, but their content differs from the snapshot` }]);
  });

  it('differs without those settings (the database defaults here are SQL dates, escape bytea, Asia/Kolkata)', async () => {
    const plain = await connect(dbName);
    try {
      const entry = tableData('public', 'kinds')!;
      expect((await digestTable(plain, copyOutSql(entry))).digest).not.toBe((await datDigest('public', 'kinds')).digest);
    } finally {
      await plain.end();
    }
  });

  it('does not depend on row order, and changes when one value changes', async () => {
    const fwd = await datDigest('public', 'fwd');
    const rev = await datDigest('public', 'rev');
    const changed = await datDigest('public', 'changed');
    const fwdBytes = await readFile(path.join(dumpDir, tableData('public', 'fwd')!.dataFile!));
    const revBytes = await readFile(path.join(dumpDir, tableData('public', 'rev')!.dataFile!));
    expect(revBytes.equals(fwdBytes), 'the two files hold the rows in different orders').toBe(false);
    expect(rev).toEqual(fwd);
    expect(changed.rows).toBe(fwd.rows);
    expect(changed.digest).not.toBe(fwd.digest);
  });

  it('reports a failing COPY and keeps the connection usable', async () => {
    const check = await checkSession();
    try {
      await expect(digestTable(check, 'COPY public.no_such_table TO STDOUT')).rejects.toThrow(/does not exist/);
      await expect(digestTable(check, 'SELECT 1')).rejects.toThrow(/not a COPY/);
      expect((await check.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await check.end();
    }
  });

  it('throws a clear error for a truncated or corrupted toc.dat, never a RangeError', async () => {
    const bytes = await readFile(path.join(dumpDir, 'toc.dat'));
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => parseToc(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(TocFormatError);
    }
    expect(() => parseToc(bytes.subarray(0, bytes.length - 3))).toThrow(/toc\.dat is truncated: .* at offset \d+/);
    expect(() => parseToc(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/unexpected bytes after the last entry/);
    for (let i = 0; i < 2000; i++) {
      const corrupt = Buffer.from(bytes);
      const at = (i * 7919) % corrupt.length;
      corrupt[at] = corrupt[at]! ^ (1 << i % 8);
      try {
        parseToc(corrupt);
      } catch (err) {
        expect(err, `flip ${i}`).toBeInstanceOf(TocFormatError);
      }
    }
  });

  it('refuses a .dat file cut short', async () => {
    const bytes = await readFile(path.join(dumpDir, tableData('public', 'fwd')!.dataFile!));
    await expect(digestDumpData(chunked(bytes.subarray(0, bytes.length - 5), 1000))).rejects.toThrow(/truncated/);
    await expect(digestDumpData(chunked(bytes.subarray(0, 1000), 100))).rejects.toThrow(/truncated/);
  });
});
