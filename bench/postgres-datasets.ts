// The databases the PostgreSQL benchmarks run on (bench/postgres.ts, bench/encryption.ts): built once on the test
// server and kept between runs, a database comment marking a finished build (an interrupted one is redone).
//   pgbench:   bak_bench_pgbench_s<scale>, `pgbench -i -s <scale>` (scale 70 is about 1.05 GB); compresses ~100:1
//   realistic: bak_bench_realistic_v1, from a fixed seed in one psql session; compresses ~2.2:1
import * as path from 'node:path';
import { runCommand } from '../test/helpers/run.ts';
import { connectionArgs, createDatabase, databaseExists, dropDatabase, pgEnv, pgTool, query, type PgServer } from '../test/helpers/postgres.ts';

export type Dataset = 'pgbench' | 'realistic';
export const DATASETS: readonly Dataset[] = ['pgbench', 'realistic'];

/**
 * The realistic dataset, from a fixed seed (setseed, then random() in one session): 2.5 M orders (a uuid, 64 hex
 * characters, a numeric, a timestamptz, a small jsonb) and 1.5 M events of hex text, about 0.9 GB on disk.
 */
export const REALISTIC_SQL = [
  'SELECT setseed(0.4242)',
  `CREATE TABLE orders AS SELECT g AS id, md5(random()::text)::uuid AS ref, md5(random()::text) || md5(random()::text) AS digest,
     round((random() * 100000)::numeric, 2) AS amount, timestamptz '2026-01-01' + random() * interval '300 days' AS placed_at,
     jsonb_build_object('sku', (random() * 100000)::int, 'qty', (random() * 9)::int + 1, 'note', md5(random()::text)) AS attrs
   FROM generate_series(1, 2500000) g`,
  'CREATE TABLE events AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS payload FROM generate_series(1, 1500000) g',
  'ALTER TABLE orders ADD PRIMARY KEY (id)',
  'ALTER TABLE events ADD PRIMARY KEY (id)',
];

/** The database a dataset lives in. */
export function datasetDatabase(dataset: Dataset, scale: number): string {
  return dataset === 'realistic' ? 'bak_bench_realistic_v1' : `bak_bench_pgbench_s${scale}`;
}

/** The database comment that marks a finished build. */
export function readyMark(dataset: Dataset, scale: number): string {
  return dataset === 'realistic' ? 'bak bench: realistic v1 complete' : `bak bench: pgbench -i -s ${scale} complete`;
}

/** Runs a command, timing it; throws on a non-zero exit. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ seconds: number }> {
  const out = await runCommand(cmd, args, { env: { ...process.env, ...env } });
  if (out.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${out.code} after ${out.seconds.toFixed(1)} s\n${out.stderr.slice(-4000)}`);
  return out;
}

/** Whether the dataset's database is there and completely built (it is then reused as it is). */
export async function datasetReady(server: PgServer, dataset: Dataset, scale: number): Promise<boolean> {
  const db = datasetDatabase(dataset, scale);
  if (!(await databaseExists(server, db))) return false;
  const [row] = await query<{ mark: string | null }>(server, 'postgres', "SELECT shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1", [db]);
  return row?.mark === readyMark(dataset, scale);
}

/** Builds the dataset's database unless a complete one (marked by a database comment) is already there; returns its name. */
export async function ensureDatabase(server: PgServer, dataset: Dataset, scale: number): Promise<string> {
  const db = datasetDatabase(dataset, scale);
  if (await databaseExists(server, db)) {
    if (await datasetReady(server, dataset, scale)) {
      console.error(`[bench] reusing ${db}`);
      return db;
    }
    console.error(`[bench] ${db} exists but is incomplete: rebuilding it`);
    await dropDatabase(server, db);
  }
  await createDatabase(server, db);
  if (dataset === 'realistic') {
    console.error(`[bench] building ${db} from a fixed seed (a few minutes) …`);
    const started = performance.now();
    // One psql session: setseed holds for the statements after it.
    await run(pgTool(server, 'psql'), [...connectionArgs(server), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', REALISTIC_SQL.join(';\n'), db], pgEnv(server));
    console.error(`[bench] built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } else {
    console.error(`[bench] building ${db} with pgbench -i -s ${scale} (a few minutes) …`);
    const init = await run(pgTool(server, 'pgbench'), [...connectionArgs(server), '-i', '-s', String(scale), '-q', db], pgEnv(server));
    console.error(`[bench] pgbench -i took ${init.seconds.toFixed(1)} s`);
  }
  await query(server, 'postgres', `COMMENT ON DATABASE "${db}" IS '${readyMark(dataset, scale)}'`);
  return db;
}

/** The database's size on disk in bytes (pg_database_size). */
export async function databaseBytes(server: PgServer, db: string): Promise<number> {
  const [row] = await query<{ size: string }>(server, 'postgres', 'SELECT pg_database_size($1)::text AS size', [db]);
  return Number(row!.size);
}

/** Reads the dataset's big tables once, so the first timed run does not pay for cold reads the second one gets free. */
export async function warmCache(server: PgServer, db: string, dataset: Dataset): Promise<void> {
  await query(server, db, dataset === 'realistic' ? 'SELECT count(*) FROM orders; SELECT count(*) FROM events' : 'SELECT count(*) FROM pgbench_accounts; SELECT count(*) FROM pgbench_history; SELECT count(*) FROM pgbench_tellers');
}

/** Checkpoints the server and flushes dirty pages (untimed), so one run's write-back is not charged to the next. */
export async function settle(server: PgServer): Promise<void> {
  await query(server, 'postgres', 'CHECKPOINT');
  await run('sync', []);
}
