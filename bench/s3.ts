// S3 engine benchmark on MinIO (a private one started for the run, by default), in ONE run:
//   1. a bucket of 10,000 small objects (1–8 KiB) plus 3 large ones (64 MiB): full `bak backup` (copy mode, local
//      repository) wall time vs `rclone copy` (Debian package) of the same bucket to a local folder (goal <= 1.0)
//   1b. the floor of that backup: `rclone copy` with what bak does beyond it (zstd -1 of the compressible objects,
//      sha256 of every byte) done beside it by zstd and openssl, on the same cores (needs zstd and openssl)
//   2. a second `bak backup` after overwriting 1 % of the small objects: wall time (goal <= 10 % of the full one) and
//      the GET requests it made (engineDetails.downloaded.getRequests); for scale, rclone's own incremental (the same
//      copy again into its folder) and a bare `rclone lsf -R` listing, the floor of any incremental
//   3. peak RSS (GNU time %M) of a backup of 10,000 and of 100,000 tiny objects (goal < 200 MB, flat as keys grow),
//      and the RSS through the 100,000-key run (sampled from /proc), which tells growth with keys from a warm-up
// and prints a table of the figures against the issue's goals. Cleans up its buckets and folders (unless --keep).
//
// Usage: node bench/s3.ts [--small N] [--json N] [--large N] [--large-mib N] [--keys N] [--concurrency N] [--rounds N] [--dir D] [--tls] [--shared] [--keep]
//   --small        small objects in the main bucket (default 10000), random bytes (rclone and bak only copy them)
//   --json         objects of JSON log lines (16-64 KiB, compress ~4:1) beside them (default 0): what bak compresses and
//                  rclone only copies
//   --large        large objects (default 3), of --large-mib MiB each (default 64)
//   --keys         keys of the tiny-object bucket for the memory figure (default 100000; 10 % of them are backed up
//                  alone for the smaller figure)
//   --concurrency  bak --concurrency and rclone --transfers/--checkers (default 8)
//   --rounds       repeat the full rclone/bak pair, taking turns to go first, and report medians (default 3)
//   --dir          where the copies and repositories go (default the system temp folder). /dev/shm takes the disk
//                  out of the comparison: on this ext4, creating files within minutes of deleting thousands costs
//                  seconds of kernel time (recently_deleted), to whichever tool runs then
//   By default everything runs against a private MinIO started for the run on a fresh data folder: the long-running
//   test server, after many buckets were filled and deleted, served rclone 20-25 % slower (3.74 -> 4.7 s for the
//   full copy) and bak less so, which made the ratio look ~15 % better than on a fresh server (2026-12-04).
//   --tls          the private MinIO serves https with a self-signed certificate made for the run
//                  (bak trusts it through NODE_EXTRA_CA_CERTS, rclone through --ca-cert)
//   --shared       run against the test servers' MinIO instead (http only), e.g. with --keep to reuse the buckets
//   --keep         keep buckets, repository and folders (printed) instead of deleting them (a private MinIO and its
//                  buckets go at the end all the same)
// Needs the MinIO test server (bash scripts/servers/start.sh minio: its binary and credentials start the private one)
// and rclone (apt-get install -y rclone).
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Manifest } from '../src/repository/manifest.ts';
import { minioClient, uniqueName } from '../test/helpers/backends.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, mapLimit, s3Flags, startPrivateMinio } from '../test/helpers/s3-fixture.ts';
import { runCommand, type RunResult } from '../test/helpers/run.ts';
import { requireServer } from '../test/helpers/servers.ts';
import { requireDecodeTools, requireTool } from './decode-floor.ts';
import { fillBucket, PUT_CONCURRENCY, smallBody, smallKey } from './s3-bucket.ts';

const { values: flags } = parseArgs({
  options: {
    small: { type: 'string', default: '10000' },
    json: { type: 'string', default: '0' },
    large: { type: 'string', default: '3' },
    'large-mib': { type: 'string', default: '64' },
    keys: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    tls: { type: 'boolean', default: false },
    shared: { type: 'boolean', default: false },
    dir: { type: 'string', default: tmpdir() },
  },
});
const SMALL = Number(flags.small);
const JSON_LOGS = Number(flags.json);
const LARGE = Number(flags.large);
const LARGE_MIB = Number(flags['large-mib']);
const KEYS = Number(flags.keys);
const CONCURRENCY = Number(flags.concurrency);
const ROUNDS = Number(flags.rounds);
if (![SMALL, LARGE_MIB, KEYS, CONCURRENCY, ROUNDS].every((n) => Number.isInteger(n) && n > 0) || !Number.isInteger(LARGE) || LARGE < 0 || !Number.isInteger(JSON_LOGS) || JSON_LOGS < 0 || (flags.shared && flags.tls)) {
  throw new Error('usage: node bench/s3.ts [--small N] [--json N] [--large N] [--large-mib N] [--keys N] [--concurrency N] [--rounds N] [--dir D] [--tls | --shared] [--keep]');
}
const SMALL_KEYS = Math.max(1, Math.round(KEYS / 10));

const MB = 1_000_000;
const MiB = 1024 * 1024;

type Run = RunResult & { maxRss: number };

const tmpRoot = await mkdtemp(path.join(flags.dir, 'bak-bench-s3-'));

/** Runs a command under /usr/bin/time (peak RSS), timing it. Throws on a non-zero exit. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}, sampler?: RssSampler): Promise<Run> {
  const out = await runCommand(cmd, args, { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...env }, rss: true, onSpawn: (pid) => sampler?.start(pid) });
  sampler?.stop();
  if (out.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${out.code} after ${out.seconds.toFixed(1)} s\n${out.stderr.slice(-4000)}`);
  return { ...out, maxRss: out.maxRss ?? 0 };
}

/**
 * RSS of a run over time (every 250 ms), to tell memory that grows with keys from a warm-up: the command is the
 * child of /usr/bin/time, found through /proc.
 */
class RssSampler {
  private readonly samples: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  start(timePid: number): void {
    this.timer = setInterval(() => {
      void this.sample(timePid);
    }, 250);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(timePid: number): Promise<void> {
    try {
      const child = (await readFile(`/proc/${timePid}/task/${timePid}/children`, 'utf8')).trim().split(/\s+/)[0];
      if (!child) return;
      const kb = /VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child}/status`, 'utf8'))?.[1];
      if (kb) this.samples.push(Number(kb) * 1024);
    } catch {
      // the process has just ended
    }
  }

  /** The highest RSS seen up to 1/4, 1/2, 3/4 of the run and overall. */
  quarters(): number[] {
    const n = this.samples.length;
    return [0.25, 0.5, 0.75, 1].map((q) => Math.max(0, ...this.samples.slice(0, Math.max(1, Math.ceil(n * q)))));
  }
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

/**
 * Before each timed run: write back the page cache (the fill, the run before), so no run pays for another's
 * dirty pages. The first rclone run after the fill took 6 s instead of 2.7 s without it.
 */
async function settle(): Promise<void> {
  await run('sync', []);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  // Checked before the bucket is filled (a minute's work), so a machine without rclone learns it at once.
  await requireTool('rclone', ['version'], 'the benchmark compares bak with it');
  await requireDecodeTools();
  const shared = await requireServer('minio');
  const server = flags.shared ? undefined : await startPrivateMinio(shared, { tls: flags.tls });
  const tls = flags.tls ? server : undefined;
  const minio = server ? { ...shared, endpoint: server.endpoint } : shared;
  const s3 = minioClient(minio, tls ? { ca: await readFile(tls.caFile!, 'utf8') } : {});
  const env = { ...awsEnv(minio), ...(tls ? { NODE_EXTRA_CA_CERTS: tls.caFile! } : {}) };
  const caCert = tls ? ['--ca-cert', tls.caFile!] : [];
  const bucketName = uniqueName('bak-bench-s3');
  const tiny = uniqueName('bak-bench-s3keys');
  const buckets: string[] = [];
  const bak = (repo: string, args: string[], sampler?: RssSampler) => run(BAK_BIN, ['--repo', repo, '--quiet', '--concurrency', String(CONCURRENCY), ...args], env, sampler);
  const backup = (repo: string, uri: string, sampler?: RssSampler) => bak(repo, ['backup', uri, ...s3Flags(minio.endpoint), '--json'], sampler);
  const details = (r: Run) => (JSON.parse(r.stdout) as Manifest).engineDetails as {
    objects: number;
    bytes: number;
    downloaded: { objects: number; bytes: number; getRequests: number };
  };

  try {
    // --- the main bucket ---
    console.error(`[bench] bucket ${bucketName}: ${SMALL} small objects (1–8 KiB)${JSON_LOGS ? ` + ${JSON_LOGS} JSON logs (16–64 KiB)` : ''} + ${LARGE} × ${LARGE_MIB} MiB …`);
    let started = performance.now();
    buckets.push(bucketName);
    const totalBytes = await fillBucket(s3, bucketName, { small: SMALL, json: JSON_LOGS, large: LARGE, largeMib: LARGE_MIB });
    console.error(`[bench] filled in ${((performance.now() - started) / 1000).toFixed(1)} s (about ${totalBytes.toFixed(0)} MiB)`);

    // --- 1. full backup vs rclone copy ---
    const rcloneEnv = {
      // A CA bundle meant for HTTPS proxies makes rclone's AWS SDK refuse its own HTTP transport; MinIO is plain HTTP.
      AWS_CA_BUNDLE: '',
      RCLONE_CONFIG: path.join(tmpRoot, 'rclone.conf'),
      RCLONE_CONFIG_BAKBENCH_TYPE: 's3',
      RCLONE_CONFIG_BAKBENCH_PROVIDER: 'Minio',
      RCLONE_CONFIG_BAKBENCH_ENV_AUTH: 'false',
      RCLONE_CONFIG_BAKBENCH_ACCESS_KEY_ID: minio.accessKeyId,
      RCLONE_CONFIG_BAKBENCH_SECRET_ACCESS_KEY: minio.secretAccessKey,
      RCLONE_CONFIG_BAKBENCH_ENDPOINT: minio.endpoint,
      RCLONE_CONFIG_BAKBENCH_REGION: minio.region,
    };
    const rcloneVersion = (await run('rclone', ['version'], rcloneEnv)).stdout.split('\n')[0];
    const times = { rclone: [] as number[], bak: [] as number[], floor: [] as number[] };
    const rss = { rclone: 0, bakFull: 0 };
    const cpuTimes = { rclone: [] as number[], bak: [] as number[] };
    let repo = '';
    let full: Run | undefined;
    let copied = { files: 0, bytes: 0 };
    let lastDest = '';
    const rcloneCopy = (dest: string) => run('rclone', ['copy', `bakbench:${bucketName}`, dest, '--transfers', String(CONCURRENCY), '--checkers', String(CONCURRENCY), ...caCert], rcloneEnv);
    const runRclone = async (round: number) => {
      const dest = path.join(tmpRoot, `rclone-${round}`);
      console.error(`[bench] round ${round}/${ROUNDS}: rclone copy --transfers ${CONCURRENCY} --checkers ${CONCURRENCY} …`);
      await settle();
      const rc = await rcloneCopy(dest);
      lastDest = dest;
      times.rclone.push(rc.seconds);
      cpuTimes.rclone.push(rc.cpuSeconds ?? 0);
      rss.rclone = Math.max(rss.rclone, rc.maxRss);
      copied = await dirStats(dest);
      if (copied.files !== SMALL + JSON_LOGS + LARGE) throw new Error(`rclone copied ${copied.files} files, expected ${SMALL + JSON_LOGS + LARGE}`);
    };
    // The floor of a backup that hashes every byte and compresses what compresses: rclone copy into a fresh folder
    // while zstd -1 compresses the JSON logs (logs/, what bak compresses here) and openssl hashes every object, both
    // reading a previous round's copy (in the page cache) and throwing the result away.
    const runFloor = async (round: number) => {
      const source = lastDest;
      const extra = `find '${source}/logs' -type f -print0 | xargs -0 -r cat | zstd -1 -q -c > /dev/null & find '${source}' -type f -print0 | xargs -0 cat | openssl sha256 > /dev/null; wait`;
      console.error(`[bench] round ${round}/${ROUNDS}: rclone copy beside zstd -1 and openssl sha256 (the floor) …`);
      await settle();
      const started = performance.now();
      await Promise.all([rcloneCopy(path.join(tmpRoot, `floor-${round}`)), run('sh', ['-c', extra])]);
      times.floor.push((performance.now() - started) / 1000);
    };
    const runBak = async (round: number) => {
      repo = path.join(tmpRoot, `repo-${round}`);
      await bak(repo, ['init']);
      console.error(`[bench] round ${round}/${ROUNDS}: bak backup (copy mode, --concurrency ${CONCURRENCY}) …`);
      await settle();
      full = await backup(repo, `s3://${bucketName}`);
      times.bak.push(full.seconds);
      cpuTimes.bak.push(full.cpuSeconds ?? 0);
      rss.bakFull = Math.max(rss.bakFull, full.maxRss);
      const d = details(full);
      if (d.objects !== SMALL + JSON_LOGS + LARGE) throw new Error(`bak recorded ${d.objects} objects, expected ${SMALL + JSON_LOGS + LARGE}`);
    };
    // Copies and repositories stay until the end: creating files on ext4 within minutes of deleting thousands costs
    // seconds of kernel time (recently_deleted), which a delete here would charge to whichever run came next. For
    // what remains (the fill, a previous bench's clean-up), the two take turns going first, and medians are reported.
    for (let round = 1; round <= ROUNDS; round++) {
      if (round % 2 === 1) {
        await runRclone(round);
        await runBak(round);
        await runFloor(round);
      } else {
        await runFloor(round);
        await runBak(round);
        await runRclone(round);
      }
    }
    const fullDetails = details(full!);
    const repoBytes = (await dirStats(repo)).bytes;

    // --- 2. second snapshot after changing 1 % ---
    const changedCount = Math.max(1, Math.round(SMALL / 100));
    const changed = new Set<number>();
    while (changed.size < changedCount) changed.add(randomInt(0, SMALL));
    console.error(`[bench] overwriting ${changedCount} small objects, then a second bak backup …`);
    await mapLimit([...changed], PUT_CONCURRENCY, (i) =>
      s3.send(new PutObjectCommand({ Bucket: bucketName, Key: smallKey(i), Body: smallBody() })),
    );
    await settle();
    const second = await backup(repo, `s3://${bucketName}`);
    // For scale: rclone's own incremental (the same copy again, into the folder it filled) and a bare listing of
    // the bucket, the floor of any incremental here (a snapshot must list every key to find what changed).
    console.error('[bench] rclone copy again (incremental) and rclone lsf (listing only) …');
    await settle();
    const rcloneAgain = await rcloneCopy(lastDest);
    const rcloneList = await run('rclone', ['lsf', '-R', `bakbench:${bucketName}`, ...caCert], rcloneEnv);
    const secondManifest = JSON.parse(second.stdout) as Manifest;
    const secondDetails = details(second);
    const firstId = (JSON.parse(full!.stdout) as Manifest).id;
    if (secondManifest.parent !== firstId) console.error(`[bench] warning: second snapshot's parent is ${secondManifest.parent}, not ${firstId}`);

    // --- 3. memory as keys grow ---
    console.error(`[bench] bucket ${tiny}: ${KEYS} tiny objects (${SMALL_KEYS} under a/, the rest under b/) …`);
    started = performance.now();
    await createBucket(s3, tiny);
    buckets.push(tiny);
    await mapLimit(
      Array.from({ length: KEYS }, (_, i) => i),
      PUT_CONCURRENCY * 2,
      (i) =>
        s3.send(
          new PutObjectCommand({
            Bucket: tiny,
            Key: `${i < SMALL_KEYS ? 'a' : 'b'}/${String(i).padStart(6, '0')}`,
            Body: randomBytes(randomInt(16, 257)),
          }),
        ),
    );
    console.error(`[bench] filled in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const keyRuns: Array<{ keys: number; run: Run }> = [];
    let rssCurve: number[] = [];
    for (const [keys, uri] of [
      [SMALL_KEYS, `s3://${tiny}/a`],
      [KEYS, `s3://${tiny}`],
    ] as const) {
      const keyRepo = path.join(tmpRoot, `repo-keys-${keys}`);
      await bak(keyRepo, ['init']);
      console.error(`[bench] bak backup of ${keys} tiny objects …`);
      const sampler = new RssSampler();
      const r = await backup(keyRepo, uri, sampler);
      rssCurve = sampler.quarters();
      if (details(r).objects !== keys) throw new Error(`bak recorded ${details(r).objects} objects, expected ${keys}`);
      keyRuns.push({ keys, run: r });
      if (!flags.keep) await rm(keyRepo, { recursive: true, force: true });
    }

    // --- report ---
    const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');
    const tRclone = median(times.rclone);
    const tBak = median(times.bak);
    const cpu = { rclone: median(cpuTimes.rclone), bak: median(cpuTimes.bak) };
    const ratio = tBak / tRclone;
    const incr = second.seconds / tBak;
    const [k10, k100] = keyRuns as [{ keys: number; run: Run }, { keys: number; run: Run }];
    const growth = k100.run.maxRss / k10.run.maxRss;
    const rows: string[][] = [
      ['measure', 'rclone copy', 'bak', 'ratio', 'goal', ''],
      [`full backup, ${SMALL} small${JSON_LOGS ? ` + ${JSON_LOGS} JSON logs` : ''} + ${LARGE} × ${LARGE_MIB} MiB (s)`, tRclone.toFixed(1), tBak.toFixed(1), ratio.toFixed(3), 'bak/rclone <= 1.0', mark(ratio <= 1.0)],
      ['  vs its floor: rclone copy beside zstd -1 of the JSON logs and sha256 of every byte (s)', median(times.floor).toFixed(1), tBak.toFixed(1), (tBak / median(times.floor)).toFixed(3), '(floor)', ''],
      ['  throughput (MiB/s)', (copied.bytes / MiB / tRclone).toFixed(1), (fullDetails.bytes / MiB / tBak).toFixed(1), '', '', ''],
      ['  objects/s', ((SMALL + JSON_LOGS + LARGE) / tRclone).toFixed(0), ((SMALL + JSON_LOGS + LARGE) / tBak).toFixed(0), '', '', ''],
      ['  bytes on disk (MiB): the copy vs the repository', (copied.bytes / MiB).toFixed(0), (repoBytes / MiB).toFixed(0), (repoBytes / copied.bytes).toFixed(3), '', ''],
      ['  GET requests', '', String(fullDetails.downloaded.getRequests), '', '', ''],
      ['  CPU s (process, user + system)', cpu.rclone.toFixed(2), cpu.bak.toFixed(2), (cpu.bak / cpu.rclone).toFixed(3), '', ''],
      ['  peak RSS (MB)', (rss.rclone / MB).toFixed(0), (rss.bakFull / MB).toFixed(0), '', '', ''],
      [`second backup after changing ${changedCount} objects (s)`, '', second.seconds.toFixed(2), `${(incr * 100).toFixed(1)} %`, '<= 10 % of full', mark(incr <= 0.1)],
      ['  vs rclone copy again into its folder (s)', rcloneAgain.seconds.toFixed(2), second.seconds.toFixed(2), (second.seconds / rcloneAgain.seconds).toFixed(3), '', ''],
      ['  vs rclone lsf -R, listing only (s)', rcloneList.seconds.toFixed(2), second.seconds.toFixed(2), (second.seconds / rcloneList.seconds).toFixed(3), '<= 1.10', mark(second.seconds <= 1.1 * rcloneList.seconds)],
      ['  GET requests', '', String(secondDetails.downloaded.getRequests), '', `~${changedCount}`, ''],
      ['  objects / bytes downloaded', '', `${secondDetails.downloaded.objects} / ${(secondDetails.downloaded.bytes / 1024).toFixed(0)} KiB`, '', '', ''],
      ['  peak RSS (MB)', '', (second.maxRss / MB).toFixed(0), '', '', ''],
      [`peak RSS, ${k10.keys} tiny objects (MB)`, '', (k10.run.maxRss / MB).toFixed(0), '', '< 200', mark(k10.run.maxRss < 200 * MB)],
      [`peak RSS, ${k100.keys} tiny objects (MB)`, '', (k100.run.maxRss / MB).toFixed(0), `×${growth.toFixed(2)}`, '< 200, flat (×<=1.25)', mark(k100.run.maxRss < 200 * MB && growth <= 1.25)],
      [`  wall time ${k10.keys} / ${k100.keys} keys (s)`, '', `${k10.run.seconds.toFixed(1)} / ${k100.run.seconds.toFixed(1)}`, '', '', ''],
      [
        `  RSS through the ${k100.keys}-key run, peak by 1/4, 1/2, 3/4, end (MB)`,
        '',
        rssCurve.map((b) => (b / MB).toFixed(0)).join(' / '),
        `×${(rssCurve[3]! / rssCurve[1]!).toFixed(2)}`,
        'second half ×<=1.10',
        mark(rssCurve[3]! <= 1.1 * rssCurve[1]!),
      ],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    console.log(`\nS3 engine benchmark on ${server ? 'a private MinIO started for the run' : "the test servers' MinIO"} (${minio.endpoint}${tls ? ', https with a self-signed certificate' : ''}), --concurrency ${CONCURRENCY}, ${ROUNDS} round(s)${ROUNDS > 1 ? ' (medians)' : ''}; ${rcloneVersion}`);
    for (const [i, r] of rows.entries()) {
      console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
    console.log(
      `\nfull snapshot: ${fullDetails.objects} objects, ${(fullDetails.bytes / MiB).toFixed(1)} MiB; rclone wrote ${copied.files} files, ` +
        `${(copied.bytes / MiB).toFixed(1)} MiB. Peak RSS is GNU time %M of the whole process.`,
    );
  } finally {
    if (flags.keep) {
      console.error(server ? `[bench] kept ${tmpRoot} (the private MinIO and its buckets go)` : `[bench] kept buckets ${buckets.join(', ')} and ${tmpRoot}`);
    } else if (!server) {
      // A private MinIO's buckets go with its data folder (cleanup below): deleting 100,000 keys first is wasted time.
      for (const b of buckets) {
        console.error(`[bench] deleting bucket ${b} …`);
        await deleteBucketCompletely(s3, b).catch((err: unknown) => console.error(`[bench] could not delete ${b}: ${String(err)}`));
      }
    }
    s3.destroy();
    await server?.cleanup();
  }
}

try {
  await main();
} finally {
  if (!flags.keep) await rm(tmpRoot, { recursive: true, force: true });
}
