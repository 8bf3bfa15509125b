// Datomic engine benchmark, in ONE run, with the STAND-IN of bin/datomic (test/fixtures/datomic: Datomic Pro cannot
// be installed here), into MinIO and into fake-gcs-server:
//   1. first backup of a database of --segments segments (tens of KB each, like real ones): `rclone copy` of the
//      backup folder into the bucket against `bak backup` (backup-db into its own staging folder, then every segment
//      stored); goal bak <= 1.0 × rclone
//   2. after 1 % new segments: `rclone sync` of the folder (after backup-db added them) against `bak backup`; goal
//      <= 0.2 × rclone, with the store calls bak made (engineDetails of a counted run are in the calls test)
//   3. peak RSS of the first backup at --segments and a tenth of them (goal < 200 MB, flat): bak's own process
//      (VmHWM, test/helpers/peak-rss.cjs), apart from the backup-db it runs (GNU time's %M is the larger of the two,
//      and the stand-in, unlike bak, holds its whole database in memory: 236 MB at 100,000 segments against bak's 181)
// Usage: node bench/datomic.ts [--segments 100000] [--kib 20] [--backends minio,gcs] [--jobs 16] [--keep]
// Needs the MinIO and fake-gcs-server test servers and rclone (apt-get install -y rclone). The plain side is what users
// do today: backup-db into a folder, then rclone of the folder; bak's backup runs backup-db itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Manifest } from '../src/repository/manifest.ts';
import { makeLocation, type BackendName } from '../test/helpers/backends.ts';
import { BAK_BIN, writeConfig } from '../test/helpers/cli.ts';
import { DATOMIC_STANDIN, standin, uniqueDbUri } from '../test/helpers/datomic.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { serversEnv } from '../test/helpers/servers.ts';

const { values: flags } = parseArgs({
  options: {
    segments: { type: 'string', default: '100000' },
    kib: { type: 'string', default: '20' },
    backends: { type: 'string', default: 'minio,gcs' },
    jobs: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SEGMENTS = Number(flags.segments);
const work = await mkdtemp(path.join(tmpdir(), 'bak-bench-datomic-'));
const home = path.join(work, 'databases');
const standinEnv = { DATOMIC_STANDIN_HOME: home, DATOMIC_STANDIN_SEGMENT_BYTES: String(Number(flags.kib) * 1024), NODE: process.execPath };
process.env.DATOMIC_STANDIN_SEGMENT_BYTES = standinEnv.DATOMIC_STANDIN_SEGMENT_BYTES;
const jobs = flags.jobs ? ['--jobs', flags.jobs] : [];
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function timed(cmd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const r = await runCommand(cmd, args, { rss: true, ownRss: cmd === BAK_BIN, env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...env } });
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return r;
}

function rcloneEnv(backend: BackendName): Record<string, string> {
  const env = serversEnv();
  if (backend === 'minio') {
    return {
      AWS_CA_BUNDLE: '',
      RCLONE_CONFIG: path.join(work, 'rclone.conf'),
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Minio',
      RCLONE_CONFIG_BENCH_ENV_AUTH: 'false',
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: env.minio.accessKeyId,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: env.minio.secretAccessKey,
      RCLONE_CONFIG_BENCH_ENDPOINT: env.minio.endpoint,
      RCLONE_CONFIG_BENCH_REGION: env.minio.region,
    };
  }
  return {
    RCLONE_CONFIG: path.join(work, 'rclone.conf'),
    RCLONE_CONFIG_BENCH_TYPE: 'google cloud storage',
    RCLONE_CONFIG_BENCH_ANONYMOUS: 'true',
    RCLONE_CONFIG_BENCH_ENDPOINT: `${env.gcs.apiEndpoint}/storage/v1/`,
    RCLONE_CONFIG_BENCH_PROJECT_NUMBER: env.gcs.projectId,
  };
}

const mb = (bytes: number | undefined) => `${Math.round((bytes ?? 0) / 1e6)} MB`;
const peak = (r: RunResult) => `bak ${mb(r.ownMaxRss)} (backup-db, the stand-in: ${mb(r.maxRss)})`;
const rows: string[] = [];
try {
  for (const backend of flags.backends.split(',') as BackendName[]) {
    for (const size of [Math.round(SEGMENTS / 10), SEGMENTS]) {
      const db = uniqueDbUri('bench');
      await standin(home, ['standin-create', db, String(size)], standinEnv);
      const plainStaging = path.join(work, `${backend}-${size}-plain`);
      const bakStaging = path.join(work, `${backend}-${size}-bak`);
      // Today's way is backup-db into a folder, then a copy of the folder: the plain side is both, timed apart.
      const backupDb = await timed(DATOMIC_STANDIN, ['backup-db', db, `file:${plainStaging}`], standinEnv);
      console.error(`[bench] ${backend}: backup-db of ${fmt(size)} segments into a folder in ${backupDb.seconds.toFixed(1)} s`);
      const location = await makeLocation(backend, 'repo');
      const plainLocation = await makeLocation(backend, 'plain');
      const config = await writeConfig({ repositories: { bench: location.configEntry } });
      const bakEnv = { ...location.env, ...standinEnv };
      const bak = (args: string[]) => timed(BAK_BIN, ['-q', '--config', config, '--repo', 'bench', ...args], bakEnv);
      await bak(['init']);
      const remote = `bench:${plainLocation.settings.url.replace(/^[a-z0-9]+:\/\//, '')}`;
      const rc = rcloneEnv(backend);
      const rcloneFirst = await timed('rclone', ['copy', plainStaging, remote, '--transfers', '16', '--checkers', '16'], rc);
      const bakFirst = await bak(['--json', 'backup', db, '--datomic-bin', DATOMIC_STANDIN, '--staging', bakStaging, ...jobs]);
      const m1 = JSON.parse(bakFirst.stdout) as Manifest;
      if (size !== SEGMENTS) {
        rows.push(`| ${backend}: peak RSS of the first backup, ${fmt(size)} segments | | ${peak(bakFirst)} | | < 200 MB, flat |`);
      } else {
        const plainFirst = backupDb.seconds + rcloneFirst.seconds;
        rows.push(`| ${backend}: first backup, ${fmt(size)} segments of ~${flags.kib} KiB | backup-db ${backupDb.seconds.toFixed(1)} s + rclone copy ${rcloneFirst.seconds.toFixed(1)} s | ${bakFirst.seconds.toFixed(1)} s (backup-db included; ${m1.engineDetails.newSegments} stored) | ${(bakFirst.seconds / plainFirst).toFixed(2)} (bak − backup-db vs rclone: ${((bakFirst.seconds - backupDb.seconds) / rcloneFirst.seconds).toFixed(2)}) | <= 1.0 |`);
        rows.push(`| ${backend}: peak RSS of the first backup, ${fmt(size)} segments | rclone ${mb(rcloneFirst.maxRss)} | ${peak(bakFirst)} | | < 200 MB, flat |`);
        await standin(home, ['standin-transact', db, String(Math.round(size / 100))], standinEnv);
        const backupDb2 = await timed(DATOMIC_STANDIN, ['backup-db', db, `file:${plainStaging}`], standinEnv);
        const rcloneSync = await timed('rclone', ['sync', plainStaging, remote, '--transfers', '16', '--checkers', '16'], rc);
        const bakSecond = await bak(['--json', 'backup', db, '--datomic-bin', DATOMIC_STANDIN, '--staging', bakStaging, ...jobs]);
        const m2 = JSON.parse(bakSecond.stdout) as Manifest;
        rows.push(`| ${backend}: after 1 % new segments | backup-db ${backupDb2.seconds.toFixed(1)} s + rclone sync ${rcloneSync.seconds.toFixed(1)} s | ${bakSecond.seconds.toFixed(1)} s (backup-db included; ${m2.engineDetails.newSegments} stored) | ${(bakSecond.seconds / (backupDb2.seconds + rcloneSync.seconds)).toFixed(2)} (vs rclone sync alone: ${(bakSecond.seconds / rcloneSync.seconds).toFixed(2)}) | <= 0.2 |`);
      }
      await location.cleanup();
      await plainLocation.cleanup();
      await rm(plainStaging, { recursive: true, force: true });
      await rm(bakStaging, { recursive: true, force: true });
    }
  }
  console.log(['| measure | plain | bak | ratio (bak / plain) | goal |', '|---|---|---|---|---|', ...rows].join('\n'));
} finally {
  if (!flags.keep) await rm(work, { recursive: true, force: true });
}
