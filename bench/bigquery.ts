// BigQuery engine benchmark on a bigquery-emulator of its own, in ONE run:
//   1. extract: `bak backup` of one table of --rows rows (local repository) in rows/s, against a plain client loop
//      reading the same table through the same API and discarding the rows: the Storage Read API (a read session,
//      ReadRows on each stream, the Avro blocks counted and dropped; goal bak >= 0.9 of it), and for information
//      tabledata.list (pages of 10,000 rows parsed and dropped) against `bak backup --reader tabledata`
//   2. a second backup of an unchanged dataset of --tables tables: no table data read, and the metadata calls it made
//      (O(tables): one tables.get per table, plus a handful per dataset)
//   3. peak RSS (GNU time %M) of `bak backup` of the --rows table and of a table a tenth its size (goal < 250 MB, flat)
// Each bak and plain run is its own process, so both pay a process start. The tools take turns going first over
// --rounds rounds; medians are reported.
//
// Usage: node bench/bigquery.ts [--rows N] [--tables N] [--rounds N] [--keep]
// Needs the emulator built (bash scripts/servers/install.sh); starts its own on free ports.
// `node bench/bigquery.ts --plain storage|tabledata ENDPOINT GRPC DATASET TABLE` is the plain client loop, run as a child.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Manifest } from '../src/repository/manifest.ts';
import { BigQueryStandIn, startOwnBigQuery, testClient, type BigQueryEnv } from '../test/helpers/bigquery.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { serversEnv } from '../test/helpers/servers.ts';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rows: { type: 'string', default: '1000000' },
    tables: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    plain: { type: 'string' },
  },
});

const PROJECT = 'benchproject';
// What the emulator's Storage Read API encodes: REQUIRED columns (it fails on NULLs) of types other than DATETIME,
// TIME and GEOGRAPHY.
const FIELDS = [
  { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
  { name: 'name', type: 'STRING', mode: 'REQUIRED' },
  { name: 'score', type: 'FLOAT', mode: 'REQUIRED' },
  { name: 'flag', type: 'BOOLEAN', mode: 'REQUIRED' },
  { name: 'day', type: 'DATE', mode: 'REQUIRED' },
  { name: 'seen', type: 'TIMESTAMP', mode: 'REQUIRED' },
];

/** Row i of the benchmark tables, the same every run, in the Storage Write API's JSON form: about 60 bytes. */
function row(i: number): Record<string, unknown> {
  return { id: i, name: `customer ${i} ${'abcdefghij'.slice(0, i % 10)}`, score: (i * 7.25) % 1000, flag: i % 3 === 0, day: 18_000 + (i % 3000), seen: 1_767_000_000_000_000 + i * 1_000_003 };
}

// ---- the plain client loops (child processes) ------------------------------------------------------------------------

async function plain(mode: string, endpoint: string, grpc: string, dataset: string, table: string): Promise<void> {
  let n = 0;
  if (mode === 'storage') {
    const { v1 } = await import('@google-cloud/bigquery-storage');
    const { credentials } = await import('@grpc/grpc-js');
    const [host, port] = grpc.split(':');
    const client = new v1.BigQueryReadClient({ servicePath: host!, port: Number(port), sslCreds: credentials.createInsecure() } as never);
    const [session] = await client.createReadSession({ parent: `projects/${PROJECT}`, readSession: { table: `projects/${PROJECT}/datasets/${dataset}/tables/${table}`, dataFormat: 'AVRO' }, maxStreamCount: 1 });
    for (const stream of session.streams ?? []) {
      for await (const r of client.readRows({ readStream: stream.name! }) as AsyncIterable<{ rowCount?: unknown }>) n += Number(r.rowCount ?? 0);
    }
    await client.close();
  } else {
    let pageToken: string | undefined;
    do {
      const res = await fetch(`${endpoint}/bigquery/v2/projects/${PROJECT}/datasets/${dataset}/tables/${table}/data?maxResults=10000&formatOptions.useInt64Timestamp=true${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`);
      const page = (await res.json()) as { rows?: unknown[]; pageToken?: string };
      n += page.rows?.length ?? 0;
      pageToken = page.pageToken;
    } while (pageToken);
  }
  process.stdout.write(`${n}\n`);
}

if (flags.plain) {
  await plain(flags.plain, positionals[0]!, positionals[1]!, positionals[2]!, positionals[3]!);
  process.exit(0);
}

// ---- the benchmark ----------------------------------------------------------------------------------------------------

const ROWS = Number(flags.rows);
const TABLES = Number(flags.tables);
const ROUNDS = Number(flags.rounds);
const own = await startOwnBigQuery(serversEnv().bigquery.bin, PROJECT);
const env: BigQueryEnv & { storageEndpoint: string } = own.env;
const grpc = `127.0.0.1:${env.grpcPort}`;
const conn = ['--endpoint', env.endpoint, '--storage-endpoint', env.storageEndpoint];
const work = await mkdtemp(path.join(tmpdir(), 'bak-bench-bigquery-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Fills a table through the Storage Write API (the emulator's insertAll is far slower), 10,000 rows an append. */
async function seed(dataset: string, table: string, rows: number): Promise<void> {
  const started = performance.now();
  await testClient(env).dataset(dataset).createTable(table, { schema: { fields: FIELDS } });
  const { adapt, managedwriter } = await import('@google-cloud/bigquery-storage');
  const { credentials } = await import('@grpc/grpc-js');
  const writer = new managedwriter.WriterClient({ servicePath: '127.0.0.1', port: env.grpcPort, sslCreds: credentials.createInsecure() } as never);
  const parent = `projects/${PROJECT}/datasets/${dataset}/tables/${table}`;
  const streamId = await writer.createWriteStream({ streamType: managedwriter.PendingStream, destinationTable: parent });
  const connection = await writer.createStreamConnection({ streamId });
  const protoDescriptor = adapt.convertStorageSchemaToProto2Descriptor(adapt.convertBigQuerySchemaToStorageTableSchema({ fields: FIELDS } as never), 'root');
  const json = new managedwriter.JSONWriter({ connection, protoDescriptor });
  for (let i = 0; i < rows; i += 10_000) {
    const result = await json.appendRows(Array.from({ length: Math.min(10_000, rows - i) }, (_, k) => row(i + k)) as never, i).getResult();
    if (result.error) throw new Error(`seeding ${table}: ${result.error.message}`);
  }
  await connection.finalize();
  await writer.batchCommitWriteStream({ parent, writeStreams: [streamId] });
  json.close();
  writer.close();
  console.error(`[bench] seeded ${fmt(rows)} rows into ${dataset}.${table} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function bak(args: string[], rss = false): Promise<RunResult> {
  const r = await runCommand(BAK_BIN, ['-q', ...args], { rss, env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '' } });
  if (r.code !== 0) throw new Error(`bak ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return r;
}

async function plainRun(mode: 'storage' | 'tabledata', dataset: string, table: string, rows: number): Promise<RunResult> {
  const r = await runCommand(process.execPath, [import.meta.filename, '--plain', mode, env.endpoint, grpc, dataset, table], { rss: true });
  if (r.code !== 0 || Number(r.stdout.trim()) !== rows) throw new Error(`plain ${mode} failed (exit ${r.code}, ${r.stdout.trim()} rows):\n${r.stderr.slice(-3000)}`);
  return r;
}

try {
  await testClient(env).createDataset('bench');
  await seed('bench', 'big', ROWS);
  await seed('bench', 'small', Math.round(ROWS / 10));
  const repo = path.join(work, 'repo');
  await bak(['init', repo]);

  const times = { storagePlain: [] as number[], storageBak: [] as number[], tabledataPlain: [] as number[], tabledataBak: [] as number[] };
  const rss = { storage: [] as number[], tabledata: [] as number[], plainStorage: [] as number[], plainTabledata: [] as number[] };
  const big = `bigquery://${PROJECT}/bench/big`;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['plain', 'bak'] : ['bak', 'plain'];
    for (const reader of ['storage', 'tabledata'] as const) {
      for (const who of order) {
        if (who === 'plain') {
          const r = await plainRun(reader, 'bench', 'big', ROWS);
          times[reader === 'storage' ? 'storagePlain' : 'tabledataPlain'].push(r.seconds);
          rss[reader === 'storage' ? 'plainStorage' : 'plainTabledata'].push(r.maxRss ?? 0);
        } else {
          // A repository of its own each run: into the same one the table would be carried unread, or its blobs deduped.
          const own = `${repo}-${reader}-${round}`;
          await bak(['init', own]);
          const r = await bak(['--repo', own, '--json', 'backup', big, ...conn, '--reader', reader], true);
          const m = JSON.parse(r.stdout) as Manifest;
          if ((m.engineDetails.unitsTaken as number) !== 1) throw new Error(`backup ${m.id} carried the table instead of reading it`);
          times[reader === 'storage' ? 'storageBak' : 'tabledataBak'].push(r.seconds);
          rss[reader].push(r.maxRss ?? 0);
          await rm(own, { recursive: true, force: true });
        }
      }
    }
  }
  const smallStorage = await bak(['--repo', repo, 'backup', `bigquery://${PROJECT}/bench/small`, ...conn], true);
  await rm(path.join(repo, 'snapshots'), { recursive: true, force: true });
  const smallTabledata = await bak(['--repo', repo, 'backup', `bigquery://${PROJECT}/bench/small`, ...conn, '--reader', 'tabledata'], true);
  await rm(path.join(repo, 'snapshots'), { recursive: true, force: true });

  // The emulator answers tabledata.list with the whole table in one page and ReadRows with one message, so the RSS
  // above grows with the table whatever the client does. Real BigQuery pages: a stand-in in front of the emulator
  // serves the same rows in pages of 10,000, to show bak's own memory with a server that pages.
  const paged = new BigQueryStandIn(env.endpoint);
  paged.handlers.push((e) => {
    const m = /\/datasets\/bench\/tables\/(big|small)\/data\?(.*)$/.exec(e.path);
    if (!m) return undefined;
    const total = m[1] === 'big' ? ROWS : Math.round(ROWS / 10);
    const start = Number(new URLSearchParams(m[2]).get('pageToken') ?? 0);
    const end = Math.min(total, start + 10_000);
    const rows = [];
    for (let i = start; i < end; i++) {
      const r = row(i);
      rows.push({ f: [{ v: String(r.id) }, { v: r.name }, { v: String(r.score) }, { v: String(r.flag) }, { v: new Date((r.day as number) * 86_400_000).toISOString().slice(0, 10) }, { v: String(r.seen) }] });
    }
    return { status: 200, body: { totalRows: String(total), rows, ...(end < total ? { pageToken: String(end) } : {}) } };
  });
  await paged.start();
  const pagedConn = ['--endpoint', paged.endpoint, '--storage-endpoint', env.storageEndpoint, '--reader', 'tabledata'];
  const pagedSmall = await bak(['--repo', repo, 'backup', `bigquery://${PROJECT}/bench/small`, ...pagedConn], true);
  await rm(path.join(repo, 'snapshots'), { recursive: true, force: true });
  const pagedBig = await bak(['--repo', repo, 'backup', big, ...pagedConn], true);
  await rm(path.join(repo, 'snapshots'), { recursive: true, force: true });
  await paged.stop();

  // A dataset of many small tables, backed up twice: the second run reads no rows.
  const manyStarted = performance.now();
  const [many] = await testClient(env).createDataset('many');
  for (let i = 0; i < TABLES; i++) await many.createTable(`t${String(i).padStart(5, '0')}`, { schema: { fields: FIELDS.slice(0, 2) } });
  console.error(`[bench] created ${TABLES} tables in ${((performance.now() - manyStarted) / 1000).toFixed(1)} s`);
  const manyUri = `bigquery://${PROJECT}/many`;
  const firstMany = await bak(['--repo', repo, '--json', 'backup', manyUri, ...conn, '--reader', 'tabledata']);
  const secondMany = await bak(['--repo', repo, '--json', 'backup', manyUri, ...conn, '--reader', 'tabledata'], true);
  const m2 = JSON.parse(secondMany.stdout) as Manifest;
  const calls = m2.engineDetails.calls as Record<string, number>;
  const totalCalls = Object.values(calls).reduce((s, n) => s + n, 0);
  const dataCalls = Object.entries(calls).filter(([k]) => k.startsWith('storage.') || k === 'tabledata.list').reduce((s, [, n]) => s + n, 0);

  const rate = (s: number) => ROWS / s;
  const ratio = (plainS: number[], bakS: number[]) => (median(plainS) / median(bakS)).toFixed(2);
  const mb = (n: number) => Math.round(n / 1e6);
  const lines = [
    `| measure | plain client | bak | ratio (bak / plain) | goal |`,
    `|---|---|---|---|---|`,
    `| extract, ${fmt(ROWS)} rows of 6 columns, Storage Read API | ${fmt(rate(median(times.storagePlain)))} rows/s | ${fmt(rate(median(times.storageBak)))} rows/s | ${ratio(times.storagePlain, times.storageBak)} | >= 0.9 |`,
    `| extract, same table, tabledata.list | ${fmt(rate(median(times.tabledataPlain)))} rows/s | ${fmt(rate(median(times.tabledataBak)))} rows/s | ${ratio(times.tabledataPlain, times.tabledataBak)} | (information) |`,
    `| second backup of ${fmt(TABLES)} unchanged tables | | ${secondMany.seconds.toFixed(1)} s (first ${firstMany.seconds.toFixed(1)} s), ${totalCalls} calls, ${dataCalls} reading rows, ${m2.engineDetails.unitsTaken} tables read | | no table data, O(tables) calls |`,
    `| peak RSS, Storage Read API, ${fmt(ROWS / 10)} / ${fmt(ROWS)} rows | ${mb(median(rss.plainStorage))} MB (${fmt(ROWS)}) | ${mb(smallStorage.maxRss ?? 0)} / ${mb(median(rss.storage))} MB | x${(median(rss.storage) / (smallStorage.maxRss ?? 1)).toFixed(2)} | < 250 MB, flat |`,
    `| peak RSS, tabledata.list, ${fmt(ROWS / 10)} / ${fmt(ROWS)} rows | ${mb(median(rss.plainTabledata))} MB (${fmt(ROWS)}) | ${mb(smallTabledata.maxRss ?? 0)} / ${mb(median(rss.tabledata))} MB | x${(median(rss.tabledata) / (smallTabledata.maxRss ?? 1)).toFixed(2)} | < 250 MB, flat |`,
    `| peak RSS, tabledata.list paged by 10,000 rows (stand-in), ${fmt(ROWS / 10)} / ${fmt(ROWS)} rows | | ${mb(pagedSmall.maxRss ?? 0)} / ${mb(pagedBig.maxRss ?? 0)} MB | x${((pagedBig.maxRss ?? 0) / (pagedSmall.maxRss ?? 1)).toFixed(2)} | < 250 MB, flat |`,
  ];
  console.log(lines.join('\n'));
  console.log(`second backup's calls: ${JSON.stringify(calls)}`);
  console.log(`(medians of ${ROUNDS} rounds; walls: storage plain ${times.storagePlain.map((s) => s.toFixed(1)).join('/')} s, bak ${times.storageBak.map((s) => s.toFixed(1)).join('/')} s; tabledata plain ${times.tabledataPlain.map((s) => s.toFixed(1)).join('/')} s, bak ${times.tabledataBak.map((s) => s.toFixed(1)).join('/')} s)`);
} finally {
  own.stop();
  if (!flags.keep) await rm(work, { recursive: true, force: true });
  else console.error(`[bench] kept ${work}`);
}
