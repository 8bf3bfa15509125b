// PostgreSQL engine benchmark, in ONE run on ONE database of at least 1 GB (pgbench -i -s 70 by default):
//   1. plain `pg_dump -Fd` (the same flags bak uses) vs `bak backup` into a fresh local repository
//   2. plain `pg_restore` into a new database vs `bak restore --as` (with its integrity check, and with --no-verify);
//      and the floor of a restore from compressed, verified blobs: `pg_restore` with the snapshot's blobs decoded
//      and hashed beside it by `zstd -dc | openssl sha256` (bench/decode-floor.ts; needs zstd and openssl)
//   3. bytes a second `bak backup` of the unchanged database adds (totals.newBytes) vs the first's
//   4. peak RSS of bak for backup and restore (GNU time %M: the largest of bak's process and its waited-for
//      children such as pg_dump, not their sum)
//   5. CPU seconds of each run, of the process and of the whole machine (server backends included), which
//      show how much of a ratio is the machine running out of cores rather than bak waiting
// and prints a table of figures against the goals (ratio <= 1.15, < 1 % re-upload, < 300 MB).
//
// Usage: node bench/postgres.ts [--dataset pgbench|realistic] [--scale N] [--jobs N] [--rounds N] [--compression M[:L]] [--drop] [--keep]
//   --dataset pgbench (default): pgbench -i data, which compresses about 100:1; realistic: about 1 GB of uuids,
//             hex text, numerics, timestamps and a small jsonb from a fixed seed, which compresses about 2.3:1 (what
//             real tables look like); it adds the default-compressed `pg_dump -Fd` (gzip) to the comparison
//   --scale   pgbench scale (default 70, about 1.05 GB); the database bak_bench_pgbench_s<N> (or bak_bench_realistic_v1)
//             is built once and kept for reruns (--drop removes it at the end)
//   --compression  the repository's compression, as `bak init --compression` takes it (default: bak's default)
//   --jobs    parallel workers for pg_dump/pg_restore and bak (default 2)
//   --rounds  repeat each timed pair and report the median (default 1)
//   --keep    keep the temporary dump folder and repository (printed) instead of deleting them
// Needs the PostgreSQL test server: bash scripts/servers/start.sh postgres
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Manifest } from '../src/repository/manifest.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { connectionArgs, createDatabase, dropDatabase, pgEnv, pgTool, pgUri, query, requirePostgres, type PgServer } from '../test/helpers/postgres.ts';
import { decodeBlobsCommand, requireDecodeTools } from './decode-floor.ts';
import { datasetDatabase, databaseBytes, ensureDatabase, settle, warmCache, type Dataset } from './postgres-datasets.ts';

const { values: flags } = parseArgs({
  options: {
    dataset: { type: 'string', default: 'pgbench' },
    compression: { type: 'string' },
    scale: { type: 'string', default: '70' },
    jobs: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    drop: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const scale = Number(flags.scale);
const jobs = Number(flags.jobs);
const rounds = Number(flags.rounds);
const realistic = flags.dataset === 'realistic';
if (![scale, jobs, rounds].every((n) => Number.isInteger(n) && n > 0) || !['pgbench', 'realistic'].includes(flags.dataset)) {
  throw new Error('usage: node bench/postgres.ts [--dataset pgbench|realistic] [--scale N] [--jobs N] [--rounds N] [--compression M[:L]] [--drop] [--keep]');
}

const MB = 1_000_000;
const MiB = 1024 * 1024;
type Run = RunResult;

/** Runs a command, timing it; with `rss`, under /usr/bin/time to get the peak RSS. Throws on a non-zero exit. */
async function run(cmd: string, args: string[], options: { env?: Record<string, string>; rss?: boolean; allowFail?: boolean } = {}): Promise<Run> {
  const out = await runCommand(cmd, args, { env: { ...process.env, ...options.env }, rss: Boolean(options.rss) });
  if (out.code !== 0 && !options.allowFail) {
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${out.code} after ${out.seconds.toFixed(1)} s\n${out.stderr.slice(-4000)}`);
  }
  return out;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Seconds to read every table of `db` back with `psql -c "\\copy … TO '/dev/null'"`, `jobs` tables at a time (biggest first). */
async function rereadTables(server: PgServer, db: string): Promise<number> {
  const tables = await query<{ name: string }>(
    server,
    db,
    "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY pg_relation_size(c.oid) DESC",
  );
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let t = tables[next++]; t; t = tables[next++]) {
        await run(pgTool(server, 'psql'), [...connectionArgs(server), '-X', '-q', '-c', `\\copy ${t.name} TO '/dev/null'`, db], { env: pgEnv(server) });
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

const tmpRoot = await mkdtemp(path.join(tmpdir(), 'bak-bench-pg-'));

async function main(): Promise<void> {
  const server = await requirePostgres();
  await requireDecodeTools();
  const env = pgEnv(server);
  const db = datasetDatabase(flags.dataset as Dataset, scale);
  await ensureDatabase(server, flags.dataset as Dataset, scale);
  const dbBytes = await databaseBytes(server, db);
  if (!realistic && dbBytes < 1e9) console.error(`[bench] warning: ${db} is ${(dbBytes / MB).toFixed(0)} MB, under the 1 GB the issue asks for; use a larger --scale`);

  // Warm the OS cache so the first timed run does not pay for cold reads the second one gets free.
  await warmCache(server, db, flags.dataset as Dataset);

  const repoDir = path.join(tmpRoot, 'repo');
  const bak = (args: string[], options: { rss?: boolean } = {}) => run(BAK_BIN, ['--repo', repoDir, '--quiet', ...args], { env, ...options });
  const initArgs = ['init', ...(flags.compression ? ['--compression', flags.compression] : [])];
  await bak(initArgs);

  // The flags bak passes to pg_dump (src/engines/postgres/backup.ts), so the comparison is like for like.
  const pgDumpArgs = (dir: string) => [...connectionArgs(server), '--format=directory', '--compress=0', `--jobs=${jobs}`, '--no-sync', '--no-password', `--file=${dir}`, db];

  const times = { pgDumpGzip: [] as number[], pgDump: [] as number[], bakBackup: [] as number[], pgRestore: [] as number[], restoreFloor: [] as number[], reread: [] as number[], bakRestore: [] as number[], bakRestoreNoVerify: [] as number[] };
  const rss = { pgDump: 0, bakBackup: 0, pgRestore: 0, bakRestore: 0 };
  // CPU seconds of the process with its children, and of the whole machine (the server's backends too).
  const cpu = { pgDumpGzip: [] as number[], pgDump: [] as number[], bakBackup: [] as number[], pgRestore: [] as number[], bakRestore: [] as number[] };
  const machineCpu = { pgDumpGzip: [] as number[], pgDump: [] as number[], bakBackup: [] as number[], pgRestore: [] as number[], bakRestore: [] as number[] };
  const noteCpu = (key: keyof typeof cpu, r: Run) => {
    cpu[key].push(r.cpuSeconds ?? NaN);
    machineCpu[key].push(r.machineCpuSeconds ?? NaN);
  };
  let firstManifest: Manifest | undefined;
  let plainDumpBytes = 0;
  let gzipDumpBytes = 0;
  const plainDir = path.join(tmpRoot, 'plain');
  // The plain restore of the -Z0 dump, alone or (the floor) beside the blobs' decoding.
  const pgRestore = (target: string, options: { rss?: boolean } = {}) =>
    run(pgTool(server, 'pg_restore'), [...connectionArgs(server), `--jobs=${jobs}`, '--no-password', `--dbname=${target}`, plainDir], { env, ...options });
  const targets: string[] = [];

  try {
    for (let round = 1; round <= rounds; round++) {
      await settle(server);
      console.error(`[bench] round ${round}/${rounds}: pg_dump -Fd -j ${jobs} …`);
      await rm(plainDir, { recursive: true, force: true });
      const dump = await run(pgTool(server, 'pg_dump'), pgDumpArgs(plainDir), { env, rss: true });
      times.pgDump.push(dump.seconds);
      noteCpu('pgDump', dump);
      rss.pgDump = Math.max(rss.pgDump, dump.maxRss ?? 0);
      plainDumpBytes = await dirBytes(plainDir);
      if (realistic) {
        // What most users run: pg_dump's default compression (gzip), in its own folder.
        await settle(server);
        console.error(`[bench] round ${round}/${rounds}: pg_dump -Fd -j ${jobs} (default gzip) …`);
        const gzDir = path.join(tmpRoot, 'plain-gzip');
        await rm(gzDir, { recursive: true, force: true });
        const gz = await run(pgTool(server, 'pg_dump'), pgDumpArgs(gzDir).filter((a) => a !== '--compress=0'), { env, rss: true });
        times.pgDumpGzip.push(gz.seconds);
        noteCpu('pgDumpGzip', gz);
        gzipDumpBytes = await dirBytes(gzDir);
        await rm(gzDir, { recursive: true, force: true });
      }
      // pg_dump --no-sync leaves its 650 MB dirty in the page cache: written back during the next timed run, it
      // would slow that run instead of its own. Every timed run starts on a quiet machine.
      await settle(server);

      console.error(`[bench] round ${round}/${rounds}: bak backup --jobs ${jobs} …`);
      // Every round's first backup goes into an empty repository, so it really uploads everything.
      if (round > 1) {
        await rm(repoDir, { recursive: true, force: true });
        await bak(initArgs);
      }
      const backup = await bak(['backup', pgUri(server, db), '--jobs', String(jobs), '--json'], { rss: true });
      times.bakBackup.push(backup.seconds);
      noteCpu('bakBackup', backup);
      rss.bakBackup = Math.max(rss.bakBackup, backup.maxRss ?? 0);
      firstManifest = JSON.parse(backup.stdout) as Manifest;
      await settle(server);

      console.error(`[bench] round ${round}/${rounds}: pg_restore -j ${jobs} …`);
      const plainTarget = `${db}_plain_restore`;
      targets.push(plainTarget);
      await dropDatabase(server, plainTarget);
      await createDatabase(server, plainTarget);
      const restore = await pgRestore(plainTarget, { rss: true });
      times.pgRestore.push(restore.seconds);
      noteCpu('pgRestore', restore);
      rss.pgRestore = Math.max(rss.pgRestore, restore.maxRss ?? 0);
      // What bak's integrity check does on top, done with plain psql: every table read back with COPY, --jobs at a time.
      times.reread.push(await rereadTables(server, plainTarget));
      await dropDatabase(server, plainTarget);
      await settle(server);

      console.error(`[bench] round ${round}/${rounds}: pg_restore -j ${jobs} beside zstd -dc | openssl sha256 of the blobs …`);
      const decode = await decodeBlobsCommand(repoDir, tmpRoot);
      await createDatabase(server, plainTarget);
      const floorStarted = performance.now();
      await Promise.all([pgRestore(plainTarget), run('sh', ['-c', decode])]);
      times.restoreFloor.push((performance.now() - floorStarted) / 1000);
      await dropDatabase(server, plainTarget);
      await settle(server);

      console.error(`[bench] round ${round}/${rounds}: bak restore --jobs ${jobs} (with the integrity check) …`);
      const bakTarget = `${db}_bak_restore`;
      targets.push(bakTarget);
      await dropDatabase(server, bakTarget);
      const restoreArgs = ['restore', firstManifest.id, '--to', pgUri(server), '--database', db, '--as', bakTarget, '--jobs', String(jobs)];
      const bakRestore = await bak(restoreArgs, { rss: true });
      times.bakRestore.push(bakRestore.seconds);
      noteCpu('bakRestore', bakRestore);
      rss.bakRestore = Math.max(rss.bakRestore, bakRestore.maxRss ?? 0);
      await dropDatabase(server, bakTarget);
      await settle(server);

      console.error(`[bench] round ${round}/${rounds}: bak restore --jobs ${jobs} --no-verify …`);
      const noVerify = await bak([...restoreArgs, '--no-verify'], { rss: true });
      times.bakRestoreNoVerify.push(noVerify.seconds);
      rss.bakRestore = Math.max(rss.bakRestore, noVerify.maxRss ?? 0);
      await dropDatabase(server, bakTarget);
    }

    console.error('[bench] second bak backup of the unchanged database …');
    const second = await bak(['backup', pgUri(server, db), '--jobs', String(jobs), '--json'], { rss: true });
    rss.bakBackup = Math.max(rss.bakBackup, second.maxRss ?? 0);
    const secondManifest = JSON.parse(second.stdout) as Manifest;
    // Where bak's time goes (#17): one more backup, untimed, into a fresh repository, with bak --profile.
    console.error('[bench] bak --profile backup into a fresh repository (untimed) …');
    const profileRepo = path.join(tmpRoot, 'repo-profile');
    await run(BAK_BIN, ['--repo', profileRepo, '--quiet', ...initArgs], { env });
    const profiled = await run(BAK_BIN, ['--repo', profileRepo, '--quiet', '--profile', 'backup', pgUri(server, db), '--jobs', String(jobs)], { env });
    const stageProfile = profiled.stderr.slice(profiled.stderr.indexOf('profile: '));
    await rm(profileRepo, { recursive: true, force: true });
    const repoBytes = await dirBytes(repoDir);

    const first = firstManifest!;
    const ratio = (a: number, b: number) => a / b;
    const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');
    const backupRatio = ratio(median(times.bakBackup), median(times.pgDump));
    const restoreRatio = ratio(median(times.bakRestore), median(times.pgRestore));
    const backupGoal = realistic ? 1.25 : 1.09;
    const gzipRatio = realistic ? ratio(median(times.bakBackup), median(times.pgDumpGzip)) : NaN;
    const restoreNvRatio = ratio(median(times.bakRestoreNoVerify), median(times.pgRestore));
    const restoreFloorRatio = ratio(median(times.bakRestoreNoVerify), median(times.restoreFloor));
    const plainRestoreAndReread = median(times.pgRestore.map((t, i) => t + times.reread[i]!));
    const rereadRatio = ratio(median(times.bakRestore), plainRestoreAndReread);
    const reupload = secondManifest.totals.newBytes / first.totals.newBytes;
    const rows: string[][] = [
      ['measure', 'plain', 'bak', 'bak/plain', 'goal', ''],
      ['backup wall time vs pg_dump -Z0 (s)', median(times.pgDump).toFixed(1), median(times.bakBackup).toFixed(1), backupRatio.toFixed(3), `<= ${backupGoal}`, mark(backupRatio <= backupGoal)],
      ...(realistic
        ? [
            ['backup wall time vs pg_dump default gzip (s)', median(times.pgDumpGzip).toFixed(1), median(times.bakBackup).toFixed(1), gzipRatio.toFixed(3), '<= 0.5', mark(gzipRatio <= 0.5)],
            ['stored bytes vs the gzip dump (MiB)', (gzipDumpBytes / MiB).toFixed(0), (first.totals.storedBytes / MiB).toFixed(0), (first.totals.storedBytes / gzipDumpBytes).toFixed(3), '<= 1', mark(first.totals.storedBytes <= gzipDumpBytes)],
            ['backup CPU vs gzip dump, process + children (s)', median(cpu.pgDumpGzip).toFixed(1), median(cpu.bakBackup).toFixed(1), '', '(info)', ''],
          ]
        : []),
      ['restore wall time, with check (s)', median(times.pgRestore).toFixed(1), median(times.bakRestore).toFixed(1), restoreRatio.toFixed(3), '<= 1.15', mark(restoreRatio <= 1.15)],
      ['restore wall time, --no-verify (s)', median(times.pgRestore).toFixed(1), median(times.bakRestoreNoVerify).toFixed(1), restoreNvRatio.toFixed(3), realistic ? '<= 1.05' : '(info)', realistic ? mark(restoreNvRatio <= 1.05) : ''],
      ['restore --no-verify vs its floor: pg_restore beside decoding the blobs (s)', median(times.restoreFloor).toFixed(1), median(times.bakRestoreNoVerify).toFixed(1), restoreFloorRatio.toFixed(3), '(floor)', ''],
      ['restore with check vs pg_restore + psql COPY of every table (s)', plainRestoreAndReread.toFixed(1), median(times.bakRestore).toFixed(1), rereadRatio.toFixed(3), '(info)', ''],
      [
        'second backup new bytes',
        `${(first.totals.newBytes / MiB).toFixed(1)} MiB (1st)`,
        `${(secondManifest.totals.newBytes / 1024).toFixed(1)} KiB (2nd)`,
        `${(reupload * 100).toFixed(4)} %`,
        '< 1 %',
        mark(reupload < 0.01),
      ],
      ['second backup wall time (s)', '', second.seconds.toFixed(1), '', '', ''],
      ['backup CPU, process + children (s)', median(cpu.pgDump).toFixed(1), median(cpu.bakBackup).toFixed(1), '', '(info)', ''],
      ['backup CPU, whole machine (s)', median(machineCpu.pgDump).toFixed(1), median(machineCpu.bakBackup).toFixed(1), '', '(info)', ''],
      ['restore CPU, whole machine (s)', median(machineCpu.pgRestore).toFixed(1), median(machineCpu.bakRestore).toFixed(1), '', '(info)', ''],
      ['peak RSS backup (MB)', (rss.pgDump / MB).toFixed(0), (rss.bakBackup / MB).toFixed(0), '', '< 300', mark(rss.bakBackup > 0 && rss.bakBackup < 300 * MB)],
      ['peak RSS restore (MB)', (rss.pgRestore / MB).toFixed(0), (rss.bakRestore / MB).toFixed(0), '', '< 300', mark(rss.bakRestore > 0 && rss.bakRestore < 300 * MB)],
      ['bytes on disk (MiB)', `${(plainDumpBytes / MiB).toFixed(0)} (dump dir)`, `${(repoBytes / MiB).toFixed(0)} (repo, 2 snapshots)`, '', '', ''],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const what = realistic ? 'realistic dataset' : `pgbench scale ${scale}`;
    console.log(`\nPostgreSQL engine benchmark: ${db} (${(dbBytes / MB).toFixed(0)} MB, ${what}), --jobs ${jobs}, ${rounds} round(s)${rounds > 1 ? ' (medians)' : ''}, compression ${flags.compression ?? 'default'}`);
    console.log(`server ${String(first.engineDetails.serverVersion ?? '?')}, pg_dump ${String(first.engineDetails.pgDumpVersion ?? '?')}; pg_dump flags: ${pgDumpArgs('DIR').slice(connectionArgs(server).length).join(' ')}`);
    for (const [i, r] of rows.entries()) {
      console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    console.log(
      `\n1st backup: ${first.totals.items} items, ${(first.totals.bytes / MiB).toFixed(0)} MiB plain, ${(first.totals.storedBytes / MiB).toFixed(0)} MiB stored; ` +
        `2nd: newBytes ${secondManifest.totals.newBytes} B of ${(secondManifest.totals.bytes / MiB).toFixed(0)} MiB plain`,
    );
    console.log('peak RSS is GNU time %M: the largest of the process and its waited-for children (pg_dump/pg_restore workers), not their sum');
    console.log(
      `whole-machine CPU includes the server's backends (and anything else running); with ${cpus().length} cores, a run that needs N CPU seconds takes at least N/${cpus().length} s`,
    );
    console.log(`\nbak backup --profile (an extra, untimed run into a fresh repository):\n${stageProfile}`);
  } finally {
    for (const t of targets) await dropDatabase(server, t).catch(() => undefined);
    if (flags.drop) {
      console.error(`[bench] dropping ${db}`);
      await dropDatabase(server, db);
    }
  }
}

try {
  await main();
} finally {
  if (flags.keep) console.error(`[bench] kept ${tmpRoot}`);
  else if (existsSync(tmpRoot)) await rm(tmpRoot, { recursive: true, force: true });
}
