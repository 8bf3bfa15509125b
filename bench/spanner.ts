// Spanner engine benchmark on handy-spanner, in ONE run:
//   1. export: `bak backup` of a table of --rows rows of mixed types (local repository) in rows/s, against a plain
//      client loop (the high-level @google-cloud/spanner client: a strong read-only snapshot, createReadStream over
//      the whole table, rows discarded) reading the same table; goal bak >= 0.9 of it
//   2. restore: `bak restore --no-verify` of that snapshot into a new database in rows/s, against plain batched
//      inserts of the same rows (the high-level client's table.insert, in commits of the same row count bak uses);
//      goal >= 0.9
//   3. peak RSS (GNU time %M) of `bak backup` of the --rows table and of a table a tenth its size (goal < 250 MB, flat)
// Each bak and plain run is its own process, so both pay a process start. The tools take turns going first over
// --rounds rounds; medians are reported.
//
// Usage: node bench/spanner.ts [--rows N] [--rounds N] [--keep]
// Needs the handy-spanner test server (bash scripts/servers/start.sh spanner).
// `node bench/spanner.ts --plain read|write DATABASE TABLE ROWS` is the plain client loop, run as a child.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Manifest } from '../src/repository/manifest.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { requireSpanner, TestDatabase, uniqueDatabaseId, type Cell } from '../test/helpers/spanner.ts';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    plain: { type: 'string' },
  },
});

const SCHEMA = (table: string) =>
  `CREATE TABLE ${table} (Id INT64 NOT NULL, Name STRING(MAX), Score FLOAT64, Flag BOOL, Born DATE, Seen TIMESTAMP, Tags ARRAY<STRING(MAX)>, Blob BYTES(MAX)) PRIMARY KEY (Id)`;
const COLUMNS = ['Id', 'Name', 'Score', 'Flag', 'Born', 'Seen', 'Tags', 'Blob'];

/** Row i of the benchmark tables, the same every run: about 120 bytes of mixed types. */
function row(i: number): Cell[] {
  const day = 1 + (i % 28);
  return [
    String(i),
    `customer ${i} ${'abcdefghij'.slice(0, i % 10)}`,
    (i * 7.25) % 1000,
    i % 3 === 0,
    `19${50 + (i % 50)}-0${1 + (i % 9)}-${String(day).padStart(2, '0')}`,
    `2026-11-${String(day).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:00:00.${String(i % 1_000_000).padStart(6, '0')}Z`,
    i % 5 === 0 ? null : ['a', `t${i % 100}`],
    Buffer.from(`blob-${i}-${'x'.repeat(i % 16)}`).toString('base64'),
  ];
}

// ---- the plain client loops (child processes) ------------------------------------------------------------------------

async function plain(mode: string, database: string, table: string, rows: number): Promise<void> {
  const env = await requireSpanner();
  const { Spanner } = await import('@google-cloud/spanner');
  const spanner = new Spanner({ projectId: env.projectId, universeDomain: 'googleapis.com', disableBuiltInMetrics: true });
  const db = spanner.instance(env.instanceId).database(database);
  let n = 0;
  if (mode === 'read') {
    const [snapshot] = await db.getSnapshot({ strong: true });
    await new Promise<void>((resolve, reject) => {
      snapshot
        .createReadStream(table, { columns: COLUMNS, keySet: { all: true } })
        .on('data', () => n++)
        .on('error', reject)
        .on('end', resolve);
    });
    snapshot.end();
  } else {
    // The same rows, in commits of bak's default size: 40,000 mutations / 8 columns.
    const perCommit = Math.floor(40_000 / COLUMNS.length);
    const { Spanner: S } = await import('@google-cloud/spanner');
    for (let start = 0; start < rows; start += perCommit) {
      const batch = [];
      for (let i = start; i < Math.min(rows, start + perCommit); i++) {
        const r = row(i);
        batch.push({ Id: S.int(r[0] as string), Name: r[1], Score: S.float(r[2] as number), Flag: r[3], Born: S.date(r[4] as string), Seen: r[5], Tags: r[6], Blob: Buffer.from(r[7] as string, 'base64') });
      }
      await db.table(table).insert(batch);
      n += batch.length;
    }
  }
  await db.close();
  spanner.close();
  process.stdout.write(`${n}\n`);
}

if (flags.plain) {
  await plain(flags.plain, positionals[0]!, positionals[1]!, Number(positionals[2] ?? 0));
  process.exit(0);
}

// ---- the benchmark ----------------------------------------------------------------------------------------------------

const ROWS = Number(flags.rows);
const ROUNDS = Number(flags.rounds);
const env = await requireSpanner();
const endpoint = `http://${env.host}`;
const work = await mkdtemp(path.join(tmpdir(), 'bak-bench-spanner-'));
const made: TestDatabase[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function seed(id: string, table: string, rows: number): Promise<TestDatabase> {
  const db = new TestDatabase(env, id);
  made.push(db);
  await db.create([SCHEMA(table)]);
  const started = performance.now();
  const step = 5000;
  for (let i = 0; i < rows; i += step) await db.insert(table, COLUMNS, Array.from({ length: Math.min(step, rows - i) }, (_, k) => row(i + k)), step);
  console.error(`[bench] seeded ${fmt(rows)} rows into ${id}.${table} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return db;
}

async function bak(args: string[], rss = false): Promise<RunResult> {
  const r = await runCommand(BAK_BIN, ['-q', ...args], { rss, env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '' } });
  if (r.code !== 0) throw new Error(`bak ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return r;
}

async function plainRun(mode: 'read' | 'write', database: string, table: string, rows: number): Promise<RunResult> {
  const r = await runCommand(process.execPath, [import.meta.filename, '--plain', mode, database, table, String(rows)], { rss: true });
  if (r.code !== 0 || Number(r.stdout.trim()) !== rows) throw new Error(`plain ${mode} failed (exit ${r.code}, ${r.stdout.trim()} rows):\n${r.stderr.slice(-3000)}`);
  return r;
}

try {
  const big = await seed(uniqueDatabaseId('bench-big'), 'Mixed', ROWS);
  const small = await seed(uniqueDatabaseId('bench-small'), 'Mixed', Math.round(ROWS / 10));
  const repo = path.join(work, 'repo');
  await bak(['init', repo]);

  const exportBak: number[] = [];
  const exportPlain: number[] = [];
  const restoreBak: number[] = [];
  const restorePlain: number[] = [];
  const rss: number[] = [];
  let snapshot = '';
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['plain', 'bak'] : ['bak', 'plain'];
    for (const who of order) {
      if (who === 'plain') exportPlain.push((await plainRun('read', big.id, 'Mixed', ROWS)).seconds);
      else {
        const r = await bak(['--repo', repo, '--json', 'backup', big.uri, '--endpoint', endpoint], true);
        exportBak.push(r.seconds);
        rss.push(r.maxRss ?? 0);
        snapshot = (JSON.parse(r.stdout) as Manifest).id;
      }
    }
    for (const who of order) {
      const target = new TestDatabase(env, uniqueDatabaseId('bench-dst'));
      made.push(target);
      if (who === 'plain') {
        await target.create([SCHEMA('Mixed')]);
        restorePlain.push((await plainRun('write', target.id, 'Mixed', ROWS)).seconds);
      } else {
        restoreBak.push((await bak(['--repo', repo, 'restore', snapshot, '--to', target.uri, '--endpoint', endpoint, '--no-verify'])).seconds);
      }
      await target.drop();
    }
  }
  const smallRun = await bak(['--repo', repo, 'backup', small.uri, '--endpoint', endpoint], true);

  const rate = (s: number) => ROWS / s;
  const lines = [
    `| measure | plain client | bak | ratio (bak / plain) | goal |`,
    `|---|---|---|---|---|`,
    `| export, ${fmt(ROWS)} rows of 8 mixed columns | ${fmt(rate(median(exportPlain)))} rows/s | ${fmt(rate(median(exportBak)))} rows/s | ${(median(exportPlain) / median(exportBak)).toFixed(2)} | >= 0.9 |`,
    `| restore (no check), same rows | ${fmt(rate(median(restorePlain)))} rows/s | ${fmt(rate(median(restoreBak)))} rows/s | ${(median(restorePlain) / median(restoreBak)).toFixed(2)} | >= 0.9 |`,
    `| peak RSS of bak backup, ${fmt(ROWS / 10)} / ${fmt(ROWS)} rows | | ${Math.round((smallRun.maxRss ?? 0) / 1e6)} / ${Math.round(median(rss) / 1e6)} MB | x${(median(rss) / (smallRun.maxRss ?? 1)).toFixed(2)} | < 250 MB, flat |`,
  ];
  console.log(lines.join('\n'));
  console.log(`(medians of ${ROUNDS} rounds; walls: export plain ${exportPlain.map((s) => s.toFixed(1)).join('/')} s, bak ${exportBak.map((s) => s.toFixed(1)).join('/')} s; restore plain ${restorePlain.map((s) => s.toFixed(1)).join('/')} s, bak ${restoreBak.map((s) => s.toFixed(1)).join('/')} s)`);
} finally {
  if (!flags.keep) {
    for (const db of made) await db.drop();
    await rm(work, { recursive: true, force: true });
  } else console.error(`[bench] kept ${work} and databases ${made.map((d) => d.id).join(', ')}`);
  for (const db of made) await db.close();
}
