// Encrypted against plain repositories, same data, in ONE run: the two take turns going first each round (plain first
// in odd rounds), every round into fresh repositories of each kind (so both write everything), medians of --rounds.
//   0. opening a repository: `bak snapshots` of an empty encrypted repository vs a plain one, i.e. what unlocking
//      the key costs every command (scrypt N=2^17, r=8, p=1 at the default cost: BAK_TEST_SCRYPT_LOG_N is removed)
//   1. PostgreSQL (the database of bench/postgres.ts, bench/postgres-datasets.ts): `bak backup --jobs N`, then
//      `bak restore --as` with its integrity check and with --no-verify
//   2. S3 (the bucket of bench/s3.ts, bench/s3-bucket.ts, on the MinIO test server): `bak backup` (copy mode), then
//      `bak restore` into a fresh bucket
// For each: wall time (goal: encrypted <= 1.05 × plain, backup and restore), CPU seconds of the bak process with its
// children (GNU time %U + %S) and of the whole machine (/proc/stat), peak RSS (GNU time %M), bytes stored.
// And each one's floor, last in every round: the plain run again, with what encryption adds done beside it by openssl
// (the slot's scrypt once, then AES-256-CTR and GMAC over every byte of the plain repository: bench/crypto-floor.ts).
//
// Usage: node bench/encryption.ts [--only postgres|s3] [--rounds 3] [--dir D] [--keep]
//          [--dataset realistic|pgbench] [--scale 70] [--jobs 2]
//          [--small 10000] [--json 2000] [--large 3] [--large-mib 64] [--concurrency 8] [--opens 5]
//   --only     one part (default both; the open cost is always measured)
//   --rounds   repeat each timed pair, taking turns, and report medians (default 3)
//   --dir      where the repositories go (default the system temp folder; /dev/shm takes the disk out, see bench/s3.ts)
//   --dataset  realistic (default: bak_bench_realistic_v1, built once if missing, a few minutes) or pgbench
//              (bak_bench_pgbench_s<--scale>)
//   --jobs     bak backup / restore --jobs for PostgreSQL (default 2)
//   --small, --json, --large, --large-mib  the S3 bucket: random 1–8 KiB objects, JSON-log objects of 16–64 KiB,
//              and large random objects of --large-mib MiB (defaults 10000, 2000, 3, 64)
//   --concurrency  bak --concurrency for S3 (default 8)
//   --opens    `bak snapshots` runs of each kind for the open cost (default 5)
//   --key      what opens the encrypted repositories: passphrase (default: a scrypt slot, BAK_PASSWORD) or aws-kms (an
//              AWS KMS slot on the local-kms test server, made for the run: no key derivation, one Decrypt per command)
//   --keep     keep the repositories, the temporary folder and the buckets (printed); restored databases are dropped anyway
// Needs the test servers (bash scripts/servers/start.sh postgres minio, and kms for --key aws-kms) and openssl (the floor).
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '../src/repository/manifest.ts';
import { minioClient, uniqueName } from '../test/helpers/backends.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { dropDatabase, pgEnv, pgUri, requirePostgres, type PgServer } from '../test/helpers/postgres.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags } from '../test/helpers/s3-fixture.ts';
import { requireServer } from '../test/helpers/servers.ts';
import { databaseBytes, DATASETS, ensureDatabase, settle as settlePostgres, warmCache, type Dataset } from './postgres-datasets.ts';
import { cryptoFloorCommand, type ScryptCost } from './crypto-floor.ts';
import { requireTool } from './decode-floor.ts';
import { fillBucket } from './s3-bucket.ts';

const USAGE =
  'usage: node bench/encryption.ts [--only postgres|s3] [--rounds N] [--dir D] [--keep] [--dataset realistic|pgbench] [--scale N] [--jobs N] ' +
  '[--small N] [--json N] [--large N] [--large-mib N] [--concurrency N] [--opens N] [--key passphrase|aws-kms]';
const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
    dataset: { type: 'string', default: 'realistic' },
    scale: { type: 'string', default: '70' },
    jobs: { type: 'string', default: '2' },
    small: { type: 'string', default: '10000' },
    json: { type: 'string', default: '2000' },
    large: { type: 'string', default: '3' },
    'large-mib': { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '8' },
    opens: { type: 'string', default: '5' },
    key: { type: 'string', default: 'passphrase' },
  },
});
const ROUNDS = Number(flags.rounds);
const SCALE = Number(flags.scale);
const JOBS = Number(flags.jobs);
const SMALL = Number(flags.small);
const JSON_LOGS = Number(flags.json);
const LARGE = Number(flags.large);
const LARGE_MIB = Number(flags['large-mib']);
const CONCURRENCY = Number(flags.concurrency);
const OPENS = Number(flags.opens);
const DATASET = flags.dataset as Dataset;
if (
  ![ROUNDS, SCALE, JOBS, LARGE_MIB, CONCURRENCY, OPENS].every((n) => Number.isInteger(n) && n > 0) ||
  ![SMALL, JSON_LOGS, LARGE].every((n) => Number.isInteger(n) && n >= 0) ||
  SMALL + JSON_LOGS + LARGE === 0 ||
  !DATASETS.includes(DATASET) ||
  (flags.only !== undefined && !['postgres', 's3'].includes(flags.only)) ||
  !['passphrase', 'aws-kms'].includes(flags.key)
) {
  throw new Error(USAGE);
}
const doPostgres = flags.only !== 's3';
const doS3 = flags.only !== 'postgres';

const MB = 1_000_000;
const MiB = 1024 * 1024;
const PASSPHRASE = 'bak-bench-encryption: correct horse battery staple';

type Side = 'plain' | 'encrypted';
/** Plain first in odd rounds, encrypted first in even ones. */
const turns = (round: number): Side[] => (round % 2 === 1 ? ['plain', 'encrypted'] : ['encrypted', 'plain']);

// The environment of every bak run: no user config, no key source but the one given, and scrypt at its real cost.
const baseEnv: Record<string, string> = { ...(process.env as Record<string, string>), BAK_CONFIG: '', BAK_REPOSITORY: '' };
for (const name of ['BAK_PASSWORD', 'BAK_PASSWORD_FILE', 'BAK_PASSWORD_COMMAND', 'BAK_TEST_SCRYPT_LOG_N']) {
  if (name === 'BAK_TEST_SCRYPT_LOG_N' && process.env[name]) console.error(`[bench] ignoring ${name}=${process.env[name]}: the benchmark runs scrypt at its default cost`);
  delete baseEnv[name];
}
const KMS = flags.key === 'aws-kms';
const sideEnv = (side: Side): Record<string, string> => (side === 'encrypted' && !KMS ? { BAK_PASSWORD: PASSPHRASE } : {});

/** With --key aws-kms: the KMS key made for this run, as a repository's config names it. */
let kmsSlot: { keyId: string; region: string; endpoint: string; accessKeyId: string; secretAccessKey: string } | undefined;

/** How bak is told the repository: its path, or (an encrypted one with --key aws-kms) a config naming it with its KMS key. */
function repoArgs(side: Side, repo: string): string[] {
  if (side === 'plain' || !KMS) return ['--repo', repo];
  const config = `${repo}.config.json`;
  if (!existsSync(config)) writeFileSync(config, JSON.stringify({ repositories: { enc: { url: pathToFileURL(repo).href, encryption: { awsKms: kmsSlot } } } }));
  return ['--config', config, '--repo', 'enc'];
}

/** Runs a command under /usr/bin/time (peak RSS, CPU), timing it. Throws on a non-zero exit. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const out = await runCommand(cmd, args, { env: { ...baseEnv, ...env }, rss: true });
  if (out.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${out.code} after ${out.seconds.toFixed(1)} s\n${out.stderr.slice(-4000)}`);
  return out;
}

/** bak against `repo`, with the side's passphrase (encrypted) or none (plain). */
const bak = (side: Side, repo: string, args: string[], env: Record<string, string> = {}) => run(BAK_BIN, [...repoArgs(side, repo), '--quiet', ...args], { ...env, ...sideEnv(side) });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function dirStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

/** What one measure collected on each side: per-run wall and CPU seconds, the highest peak RSS. */
interface Figures {
  seconds: number[];
  cpu: number[];
  machineCpu: number[];
  maxRss: number;
}
const emptyFigures = (): Figures => ({ seconds: [], cpu: [], machineCpu: [], maxRss: 0 });

class Measure {
  readonly sides: Record<Side, Figures> = { plain: emptyFigures(), encrypted: emptyFigures() };
  /** The plain run with openssl doing encryption's work beside it (wall seconds per round). */
  readonly floor: number[] = [];
  readonly label: string;
  /** The goal on encrypted/plain wall time, if there is one. */
  readonly goal: number | undefined;

  constructor(label: string, goal?: number) {
    this.label = label;
    this.goal = goal;
  }

  add(side: Side, r: RunResult): void {
    const f = this.sides[side];
    f.seconds.push(r.seconds);
    f.cpu.push(r.cpuSeconds ?? NaN);
    f.machineCpu.push(r.machineCpuSeconds ?? NaN);
    f.maxRss = Math.max(f.maxRss, r.maxRss ?? 0);
  }

  wall(side: Side): number {
    return median(this.sides[side].seconds);
  }
}

/** Inits a fresh repository of the side's kind and checks that it is what it should be. */
async function initRepo(side: Side, repo: string, inits: Measure, env: Record<string, string> = {}): Promise<void> {
  inits.add(side, await bak(side, repo, ['init'], env));
  const marker = JSON.parse(await readFile(path.join(repo, 'bak-repository.json'), 'utf8')) as { encryption?: { cipher: string } };
  if (Boolean(marker.encryption) !== (side === 'encrypted')) throw new Error(`${repo}: expected a ${side} repository, got ${JSON.stringify(marker.encryption ?? 'plain')}`);
}

/** The key slot's scrypt parameters (none for a KMS slot). */
async function slotKdf(repo: string): Promise<(ScryptCost & { name: string }) | undefined> {
  const [file] = await readdir(path.join(repo, 'keys'));
  const slot = JSON.parse(await readFile(path.join(repo, 'keys', file!), 'utf8')) as { kdf?: { name: string; logN: number; r: number; p: number } };
  return slot.kdf;
}

/** `main` (a plain bak run) with encryption's work on `plainRepo` done beside it by openssl: the wall time of both. */
async function beside(plainRepo: string, main: () => Promise<RunResult>): Promise<number> {
  const started = performance.now();
  await Promise.all([main(), run('sh', ['-c', cryptoFloorCommand(plainRepo, scrypt)])]);
  return (performance.now() - started) / 1000;
}

/** Runs that failed and were run again (their times are not counted), for the report. */
const failures: string[] = [];

/**
 * Runs `fn` after `prepare`, up to 3 times: an intermittent failure is recorded (and printed with the figures) rather
 * than losing the whole run; only a successful attempt's figures count.
 */
async function attempts(label: string, prepare: () => Promise<void>, fn: () => Promise<RunResult>): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    await prepare();
    console.error(`[bench] ${label}${attempt > 1 ? ` (attempt ${attempt})` : ''} …`);
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 3) throw err;
      const why = (err as Error).message.split('\n').slice(1, 5).join(' | ');
      failures.push(`${label}, attempt ${attempt}: ${why}`);
      console.error(`[bench] ${label} FAILED (attempt ${attempt}), running it again: ${(err as Error).message}`);
    }
  }
}

const tmpRoot = await mkdtemp(path.join(flags.dir, 'bak-bench-enc-'));
const inits = new Measure('bak init (not compared)');
const sections: Array<{ title: string; measures: Measure[]; notes: string[]; stored?: { plain: number; encrypted: number; files: { plain: number; encrypted: number } } }> = [];
let scrypt: ScryptCost | undefined;
let kdf = '?';

/** 0. The cost of opening a repository: `bak snapshots` of an empty one, taking turns. */
async function openCost(): Promise<Measure> {
  const open = new Measure('bak snapshots of an empty repository (s)');
  const repos: Record<Side, string> = { plain: path.join(tmpRoot, 'open-plain'), encrypted: path.join(tmpRoot, 'open-encrypted') };
  for (const side of turns(1)) await initRepo(side, repos[side], inits);
  const cost = await slotKdf(repos.encrypted);
  scrypt = cost;
  kdf = cost ? `passphrase slot: ${cost.name} N=2^${cost.logN}, r=${cost.r}, p=${cost.p}` : `AWS KMS slot on local-kms (${kmsSlot!.endpoint})`;
  for (let i = 1; i <= OPENS; i++) {
    for (const side of turns(i)) open.add(side, await bak(side, repos[side], ['snapshots']));
  }
  return open;
}

/** 1. PostgreSQL: backup, restore with the check, restore with --no-verify. */
async function postgres(): Promise<void> {
  const server: PgServer = await requirePostgres();
  const env = pgEnv(server);
  const db = await ensureDatabase(server, DATASET, SCALE);
  const dbBytes = await databaseBytes(server, db);
  await warmCache(server, db, DATASET);
  const backup = new Measure(`backup --jobs ${JOBS} (s)`, 1.05);
  const restore = new Measure(`restore --jobs ${JOBS}, with the check (s)`, 1.05);
  const noVerify = new Measure(`restore --jobs ${JOBS} --no-verify (s)`, 1.05);
  const targets: Record<Side, string> = { plain: `${db}_enc_bench_plain`, encrypted: `${db}_enc_bench_encrypted` };
  const stored = { plain: 0, encrypted: 0, files: { plain: 0, encrypted: 0 } };
  let manifest: Manifest | undefined;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const repos: Record<Side, string> = { plain: path.join(tmpRoot, `pg-plain-${round}`), encrypted: path.join(tmpRoot, `pg-encrypted-${round}`) };
      for (const side of turns(round)) await initRepo(side, repos[side], inits, env);
      const ids = { plain: '', encrypted: '' };
      for (const side of turns(round)) {
        // A failed backup may leave blobs behind: each attempt goes into a fresh repository.
        let attempt = 0;
        const prepare = async () => {
          if (attempt++ > 0) {
            repos[side] = `${repos[side].replace(/-retry\d+$/, '')}-retry${attempt}`;
            await initRepo(side, repos[side], inits, env);
          }
          await settlePostgres(server);
        };
        const r = await attempts(`postgres round ${round}/${ROUNDS}: bak backup --jobs ${JOBS}, ${side}`, prepare, () =>
          bak(side, repos[side], ['backup', pgUri(server, db), '--jobs', String(JOBS), '--json'], env),
        );
        backup.add(side, r);
        manifest = JSON.parse(r.stdout) as Manifest;
        ids[side] = manifest.id;
      }
      // The floor: the plain backup again, into a fresh repository, with encryption's work on this round's plain one beside it.
      const floorRepo = path.join(tmpRoot, `pg-floor-${round}`);
      await initRepo('plain', floorRepo, inits, env);
      await settlePostgres(server);
      console.error(`[bench] postgres round ${round}/${ROUNDS}: bak backup, plain, beside openssl (the floor) …`);
      backup.floor.push(await beside(repos.plain, () => bak('plain', floorRepo, ['backup', pgUri(server, db), '--jobs', String(JOBS)], env)));
      await rm(floorRepo, { recursive: true, force: true });
      for (const side of ['plain', 'encrypted'] as const) {
        const s = await dirStats(repos[side]);
        stored[side] = s.bytes;
        stored.files[side] = s.files;
      }
      for (const [measure, extra] of [
        [restore, []],
        [noVerify, ['--no-verify']],
      ] as const) {
        for (const side of turns(round)) {
          const label = `postgres round ${round}/${ROUNDS}: bak restore --jobs ${JOBS}${extra.length ? ' --no-verify' : ''}, ${side}`;
          const args = ['restore', ids[side], '--to', pgUri(server), '--database', db, '--as', targets[side], '--jobs', String(JOBS), ...extra];
          const prepare = async () => {
            await dropDatabase(server, targets[side]);
            await settlePostgres(server);
          };
          measure.add(side, await attempts(label, prepare, () => bak(side, repos[side], args, env)));
          await dropDatabase(server, targets[side]);
        }
        await dropDatabase(server, targets.plain);
        await settlePostgres(server);
        console.error(`[bench] postgres round ${round}/${ROUNDS}: bak restore${extra.length ? ' --no-verify' : ''}, plain, beside openssl (the floor) …`);
        const args = ['restore', ids.plain, '--to', pgUri(server), '--database', db, '--as', targets.plain, '--jobs', String(JOBS), ...extra];
        measure.floor.push(await beside(repos.plain, () => bak('plain', repos.plain, args, env)));
        await dropDatabase(server, targets.plain);
      }
    }
  } finally {
    for (const t of Object.values(targets)) await dropDatabase(server, t).catch(() => undefined);
  }
  const what = DATASET === 'realistic' ? 'realistic dataset' : `pgbench scale ${SCALE}`;
  sections.push({
    title: `PostgreSQL: ${db} (${(dbBytes / MB).toFixed(0)} MB on the server, ${what}; ${manifest!.totals.items} items, ${(manifest!.totals.bytes / MiB).toFixed(0)} MiB of dump, ${(manifest!.totals.storedBytes / MiB).toFixed(1)} MiB stored), --jobs ${JOBS}`,
    measures: [backup, restore, noVerify],
    notes: ['CPU and peak RSS include the pg_dump / pg_restore children (GNU time); whole-machine CPU includes the server backends'],
    stored,
  });
}

/** 2. S3: backup of the bucket, restore into a fresh bucket. */
async function s3(): Promise<void> {
  const minio = await requireServer('minio');
  const client: S3Client = minioClient(minio);
  const env = awsEnv(minio);
  const source = uniqueName('bak-bench-enc');
  const buckets: string[] = [source];
  const objects = SMALL + JSON_LOGS + LARGE;
  const backup = new Measure(`backup, copy mode, --concurrency ${CONCURRENCY} (s)`, 1.05);
  const restore = new Measure(`restore into a new bucket, --concurrency ${CONCURRENCY} (s)`, 1.05);
  const stored = { plain: 0, encrypted: 0, files: { plain: 0, encrypted: 0 } };
  let contentBytes = 0;
  try {
    console.error(`[bench] bucket ${source}: ${SMALL} small objects (1–8 KiB) + ${JSON_LOGS} JSON logs (16–64 KiB) + ${LARGE} × ${LARGE_MIB} MiB …`);
    const started = performance.now();
    const approx = await fillBucket(client, source, { small: SMALL, json: JSON_LOGS, large: LARGE, largeMib: LARGE_MIB });
    console.error(`[bench] filled in ${((performance.now() - started) / 1000).toFixed(1)} s (about ${approx.toFixed(0)} MiB)`);
    // Repositories stay until the end (see bench/s3.ts: deleting thousands of files right before a run slows it on ext4).
    for (let round = 1; round <= ROUNDS; round++) {
      const repos: Record<Side, string> = { plain: path.join(tmpRoot, `s3-plain-${round}`), encrypted: path.join(tmpRoot, `s3-encrypted-${round}`) };
      for (const side of turns(round)) await initRepo(side, repos[side], inits, env);
      const ids = { plain: '', encrypted: '' };
      for (const side of turns(round)) {
        // A failed backup may leave blobs behind: each attempt goes into a fresh repository.
        let attempt = 0;
        const prepare = async () => {
          if (attempt++ > 0) {
            repos[side] = `${repos[side].replace(/-retry\d+$/, '')}-retry${attempt}`;
            await initRepo(side, repos[side], inits, env);
          }
          await run('sync', []);
        };
        const r = await attempts(`s3 round ${round}/${ROUNDS}: bak backup, ${side}`, prepare, () =>
          bak(side, repos[side], ['--concurrency', String(CONCURRENCY), 'backup', `s3://${source}`, ...s3Flags(minio.endpoint), '--json'], env),
        );
        backup.add(side, r);
        const m = JSON.parse(r.stdout) as Manifest;
        const got = (m.engineDetails as { objects: number; bytes: number }).objects;
        if (got !== objects) throw new Error(`${side} backup recorded ${got} objects, expected ${objects}`);
        contentBytes = (m.engineDetails as { bytes: number }).bytes;
        ids[side] = m.id;
      }
      const floorRepo = path.join(tmpRoot, `s3-floor-${round}`);
      await initRepo('plain', floorRepo, inits, env);
      await run('sync', []);
      console.error(`[bench] s3 round ${round}/${ROUNDS}: bak backup, plain, beside openssl (the floor) …`);
      backup.floor.push(await beside(repos.plain, () => bak('plain', floorRepo, ['--concurrency', String(CONCURRENCY), 'backup', `s3://${source}`, ...s3Flags(minio.endpoint)], env)));
      for (const side of ['plain', 'encrypted'] as const) {
        const s = await dirStats(repos[side]);
        stored[side] = s.bytes;
        stored.files[side] = s.files;
      }
      for (const side of turns(round)) {
        let target = '';
        const prepare = async () => {
          target = uniqueName(`bak-bench-enc-${side === 'plain' ? 'p' : 'e'}`);
          await createBucket(client, target);
          buckets.push(target);
          await run('sync', []);
        };
        const r = await attempts(`s3 round ${round}/${ROUNDS}: bak restore into a new bucket, ${side}`, prepare, () =>
          bak(side, repos[side], ['--concurrency', String(CONCURRENCY), 'restore', ids[side], '--to', `s3://${target}`, '--endpoint', minio.endpoint, '--path-style', '--json'], env),
        );
        restore.add(side, r);
        const report = JSON.parse(r.stdout) as { items: number };
        if (report.items !== objects) throw new Error(`${side} restore copied ${report.items} objects, expected ${objects}`);
      }
      const floorTarget = uniqueName('bak-bench-enc-f');
      await createBucket(client, floorTarget);
      buckets.push(floorTarget);
      await run('sync', []);
      console.error(`[bench] s3 round ${round}/${ROUNDS}: bak restore into a new bucket, plain, beside openssl (the floor) …`);
      restore.floor.push(
        await beside(repos.plain, () =>
          bak('plain', repos.plain, ['--concurrency', String(CONCURRENCY), 'restore', ids.plain, '--to', `s3://${floorTarget}`, '--endpoint', minio.endpoint, '--path-style'], env),
        ),
      );
    }
  } finally {
    if (flags.keep) console.error(`[bench] kept buckets ${buckets.join(', ')}`);
    else {
      for (const b of buckets) {
        console.error(`[bench] deleting bucket ${b} …`);
        await deleteBucketCompletely(client, b).catch((err: unknown) => console.error(`[bench] could not delete ${b}: ${String(err)}`));
      }
    }
    client.destroy();
  }
  sections.push({
    title: `S3 on MinIO (${minio.endpoint}): ${SMALL} random objects of 1–8 KiB + ${JSON_LOGS} JSON logs of 16–64 KiB + ${LARGE} × ${LARGE_MIB} MiB random (${objects} objects, ${(contentBytes / MiB).toFixed(0)} MiB)`,
    measures: [backup, restore],
    notes: [],
    stored,
  });
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '?');
const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');

/** The rows of one measure: wall time against its goal, then CPU, whole-machine CPU and peak RSS, for information. */
function measureRows(m: Measure, openExtra: number): string[][] {
  const p = m.sides.plain;
  const e = m.sides.encrypted;
  const wallRatio = m.wall('encrypted') / m.wall('plain');
  const cpuP = median(p.cpu);
  const cpuE = median(e.cpu);
  const mcP = median(p.machineCpu);
  const mcE = median(e.machineCpu);
  const beyond = m.wall('encrypted') - m.wall('plain') - openExtra;
  const floor = median(m.floor);
  const floorRatio = m.wall('encrypted') / floor;
  return [
    [m.label, fmt(m.wall('plain')), fmt(m.wall('encrypted')), fmt(wallRatio, 3), m.goal ? `<= ${m.goal}` : '', m.goal ? mark(wallRatio <= m.goal) : ''],
    ['  … of which beyond the key open (s)', '', '', `${beyond >= 0 ? '+' : ''}${fmt(beyond)}`, '', ''],
    ['  floor: plain beside openssl doing the crypto (s)', fmt(floor), fmt(m.wall('encrypted')), fmt(floorRatio, 3), m.goal ? `<= ${m.goal} (proposed)` : '', m.goal ? mark(floorRatio <= m.goal) : ''],
    ['  CPU, bak + children, user + sys (s)', fmt(cpuP), fmt(cpuE), fmt(cpuE / cpuP, 3), '', ''],
    ['  CPU, whole machine (s)', fmt(mcP, 1), fmt(mcE, 1), fmt(mcE / mcP, 3), '', ''],
    ['  peak RSS (MB)', (p.maxRss / MB).toFixed(0), (e.maxRss / MB).toFixed(0), fmt(e.maxRss / p.maxRss, 3), '', ''],
  ];
}

/** --key aws-kms: a KMS key of its own on the local-kms test server, scheduled for deletion when the run ends. */
async function makeKmsKey(): Promise<() => Promise<unknown>> {
  const kms = await requireServer('kms');
  const credentials = { accessKeyId: 'bak-bench-kms', secretAccessKey: 'bak-bench-kms-secret' };
  // A copy for the SDK: it marks the credentials object it is given ($source), which the config would then refuse.
  const client = new KMSClient({ region: kms.region, endpoint: kms.endpoint, credentials: { ...credentials } });
  const created = await client.send(new CreateKeyCommand({ Description: `bak bench/encryption.ts ${new Date().toISOString()}` }));
  const keyId = created.KeyMetadata!.KeyId!;
  kmsSlot = { keyId, region: kms.region, endpoint: kms.endpoint, ...credentials };
  return async () => {
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })).catch(() => undefined);
    client.destroy();
  };
}

async function main(): Promise<void> {
  await requireTool('openssl', ['version'], "the benchmark's floor runs it beside plain bak");
  const dropKmsKey = KMS ? await makeKmsKey() : undefined;
  try {
    await measureAll();
  } finally {
    await dropKmsKey?.();
  }
}

async function measureAll(): Promise<void> {
  console.error(`[bench] repositories under ${tmpRoot}`);
  const open = await openCost();
  if (doPostgres) await postgres();
  if (doS3) await s3();

  const openExtra = open.wall('encrypted') - open.wall('plain');
  const openCpuExtra = median(open.sides.encrypted.cpu) - median(open.sides.plain.cpu);
  console.log(
    `\nEncrypted (AES-256-GCM, HMAC-SHA-256 blob names, ${kdf}) vs plain repositories, ${ROUNDS} round(s)${ROUNDS > 1 ? ' (medians)' : ''}, ` +
      `taking turns (plain first in odd rounds); repositories in ${flags.dir}; ${cpus().length} cores`,
  );
  const header = ['measure', 'plain', 'encrypted', 'enc/plain', 'goal', ''];
  console.log(`\nOpening a repository (${OPENS} runs of each, medians):`);
  printTable([
    header,
    [open.label, fmt(open.wall('plain')), fmt(open.wall('encrypted')), fmt(open.wall('encrypted') / open.wall('plain'), 3), '', ''],
    ['  key open cost: encrypted - plain (s)', '', '', `+${fmt(openExtra)}`, '', ''],
    ['  CPU, user + sys (s)', fmt(median(open.sides.plain.cpu)), fmt(median(open.sides.encrypted.cpu)), `+${fmt(openCpuExtra)}`, '', ''],
    ['  peak RSS (MB)', (open.sides.plain.maxRss / MB).toFixed(0), (open.sides.encrypted.maxRss / MB).toFixed(0), fmt(open.sides.encrypted.maxRss / open.sides.plain.maxRss, 3), '', ''],
    [inits.label.replace('(not compared)', '(s)'), fmt(inits.wall('plain')), fmt(inits.wall('encrypted')), fmt(inits.wall('encrypted') / inits.wall('plain'), 3), '', ''],
  ]);
  for (const s of sections) {
    console.log(`\n${s.title}:`);
    const rows = [header, ...s.measures.flatMap((m) => measureRows(m, openExtra))];
    if (s.stored) {
      rows.push([
        'bytes in one repository (MiB) / files',
        `${(s.stored.plain / MiB).toFixed(1)} / ${s.stored.files.plain}`,
        `${(s.stored.encrypted / MiB).toFixed(1)} / ${s.stored.files.encrypted}`,
        fmt(s.stored.encrypted / s.stored.plain, 4),
        '',
        '',
      ]);
    }
    printTable(rows);
    for (const m of s.measures) {
      const rounds = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');
      console.log(`  per round, ${m.label}: plain ${rounds(m.sides.plain.seconds)}; encrypted ${rounds(m.sides.encrypted.seconds)}; floor ${rounds(m.floor)}`);
    }
    for (const n of s.notes) console.log(`  ${n}`);
  }
  if (failures.length > 0) {
    console.log(`\nFAILED runs (run again; not counted in the figures):`);
    for (const f of failures) console.log(`  ${f}`);
  }
  console.log(
    `\n"floor" is the plain run with openssl beside it doing what encryption adds (the slot's scrypt once, then AES-256-CTR and GMAC, ` +
      `the halves of AES-256-GCM, over every byte of the plain repository), last in each round: an encrypted bak cannot do the same for less. ` +
      `"beyond the key open" is the median difference in wall time less the key open cost above (every bak command pays that once). ` +
      `Peak RSS is GNU time %M: the largest of bak and its waited-for children, not their sum.`,
  );
}

try {
  await main();
} finally {
  if (flags.keep) console.error(`[bench] kept ${tmpRoot}`);
  else if (existsSync(tmpRoot)) await rm(tmpRoot, { recursive: true, force: true });
}
