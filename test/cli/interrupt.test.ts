// An operator's Ctrl-C, or a SIGTERM sent to bak alone (timeout(1), a cancelled CI job), during a backup, a restore
// or a gc: bak stops what the engine runs, removes its staging, releases its lock (a backup abandons its snapshot) and
// exits 130 / 143, rather than dying on the spot with pg_dump running on, staging and lock left behind. PostgreSQL:
// pg_dump is kept running by a table lock the test holds, so the signal always arrives mid-dump; the restore is of a
// table big enough to be signalled as pg_restore starts. S3 and gc: thousands of objects handled one at a time.
// The signal goes to bak's pid alone (process.kill), not to its process group as a terminal's Ctrl-C would.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/util/concurrency.ts';
import { makeLocation, minioClient, uniqueName } from '../helpers/backends.ts';
import { runBak, show, writeConfig, type CliResult } from '../helpers/cli.ts';
import { eventually } from '../helpers/poll.ts';
import { createDatabase, dropDatabase, pgDumpSessions, pgEnv, pgUri, query, requirePostgres, uniqueDbName, withTableLocked, type PgServer } from '../helpers/postgres.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

/** bak with `args`, sent `signal` once `ready` holds (given bak's stderr so far); its result. */
async function signalled(args: string[], env: Record<string, string>, signal: 'SIGINT' | 'SIGTERM', ready: (stderr: string) => boolean | Promise<boolean>): Promise<CliResult> {
  let pid: number | undefined;
  let stderr = '';
  const running = runBak(args, { env, onSpawn: (p) => (pid = p), onStderr: (text) => (stderr = text) });
  expect(await eventually(async () => pid !== undefined && (await ready(stderr)), 20_000, 5), `never ready to signal:\n${stderr}`).toBe(true);
  process.kill(pid!, signal);
  return running;
}

/** A new bucket of `count` small objects. */
async function filledBucket(s3: S3Client, prefix: string, count: number): Promise<string> {
  const bucket = uniqueName(prefix);
  await createBucket(s3, bucket);
  await mapLimit(Array.from({ length: count }, (_, i) => i), 32, (i) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `k/${i}`, Body: `object ${i}` })));
  return bucket;
}

describe('bak stopped by a signal', () => {
  let server: PgServer;
  let work: string;
  let repoDir: string;
  let staging: string;
  const db = uniqueDbName('bakintr');

  beforeAll(async () => {
    server = await requirePostgres();
    work = await mkdtemp(path.join(tmpdir(), 'bak-interrupt-'));
    repoDir = path.join(work, 'repo');
    staging = path.join(work, 'staging');
    const init = await runBak(['init', repoDir]);
    expect(init.code, show(init)).toBe(0);
    await createDatabase(server, db);
    await query(server, db, `CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g`);
  });

  afterAll(async () => {
    if (server) await dropDatabase(server, db).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const pgDumpsOnDb = () => pgDumpSessions(server, db);
  /** An empty staging folder, given to bak as its TMPDIR. */
  const freshStaging = async () => {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    return { TMPDIR: staging };
  };
  /** Nothing held over in the local repository: no lock, and (for a backup) no snapshot. */
  const expectNoLock = async () => expect(await readdir(path.join(repoDir, 'locks')).catch(() => [])).toEqual([]);
  const expectNoSnapshot = async () => expect(JSON.parse((await runBak(['--repo', repoDir, 'snapshots', '--json'])).stdout).snapshots).toEqual([]);

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal}: exit ${code}, pg_dump stopped, no staging, no lock, no snapshot`, async () => {
      const env = { ...pgEnv(server), ...(await freshStaging()) };
      const r = await withTableLocked(server, db, 't', () => signalled(['--repo', repoDir, 'backup', pgUri(server, db)], env, signal, async () => (await pgDumpsOnDb()) > 0));
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toContain(`${signal}: stopping and cleaning up`);
      expect(r.stderr).toContain(`interrupted by ${signal}`);
      expect(await eventually(async () => (await pgDumpsOnDb()) === 0, 5000)).toBe(true);
      expect(await readdir(staging)).toEqual([]);
      await expectNoLock();
      await expectNoSnapshot();
    }, 30_000);
  }

  it('SIGINT during an S3 backup: exit 130, no lock, no snapshot', async () => {
    const minio: Minio = await requireServer('minio');
    const s3 = minioClient(minio);
    const bucket = await filledBucket(s3, 'bak-intr', 3000);
    try {
      const args = ['--repo', repoDir, '--concurrency', '1', 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint)];
      const r = await signalled(args, awsEnv(minio), 'SIGINT', (stderr) => stderr.includes(`of s3://${bucket}`));
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain('interrupted by SIGINT');
      // It stopped at once, not after copying the bucket: far fewer than 3,000 blobs were written.
      const blobs = (await readdir(path.join(repoDir, 'blobs'), { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());
      expect(blobs.length).toBeLessThan(1500);
      await expectNoLock();
      await expectNoSnapshot();
    } finally {
      await deleteBucketCompletely(s3, bucket).catch(() => undefined);
      s3.destroy();
    }
  }, 60_000);

  it('SIGINT during bak run: the running job stops and cleans up, the next job never starts, exit 130', async () => {
    const second = `${db}_second`;
    await createDatabase(server, second);
    try {
      const config = await writeConfig({
        repositories: { r: { url: pathToFileURL(repoDir).href } },
        defaults: { repository: 'r' },
        jobs: { a: { engine: 'postgres', source: pgUri(server, db) }, b: { engine: 'postgres', source: pgUri(server, second) } },
      });
      const env = { ...pgEnv(server), ...(await freshStaging()) };
      const run = await withTableLocked(server, db, 't', () => signalled(['--config', config, 'run', '--job', 'a', '--job', 'b'], env, 'SIGINT', async () => (await pgDumpsOnDb()) > 0));
      expect(run.code, run.stderr).toBe(130);
      expect(run.stderr).toContain('job a FAILED');
      expect(run.stderr).not.toContain('job b');
      expect(await readdir(staging)).toEqual([]);
      await expectNoLock();
      await expectNoSnapshot();
    } finally {
      await dropDatabase(server, second).catch(() => undefined);
    }
  }, 60_000);

  it('SIGINT during a PostgreSQL restore: pg_restore stopped, no staging, no lock, exit 130 saying the target is partly restored', async () => {
    const big = `${db}_big`;
    const target = `${db}_restored`;
    await createDatabase(server, big);
    try {
      // Enough rows that pg_restore is still at work a few milliseconds after it starts.
      await query(server, big, `CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, repeat('x', 40) || g FROM generate_series(1, 200000) g`);
      const backup = await runBak(['--repo', repoDir, 'backup', pgUri(server, big), '--json'], { env: pgEnv(server) });
      expect(backup.code, show(backup)).toBe(0);
      const id = JSON.parse(backup.stdout).id as string;
      const env = { ...pgEnv(server), ...(await freshStaging()) };
      const r = await signalled(['--repo', repoDir, 'restore', id, '--to', pgUri(server), '--as', target], env, 'SIGINT', (stderr) => stderr.includes(`into ${target}`));
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain('interrupted by SIGINT: the restore stopped part-way');
      const sessions = async () => Number((await query(server, 'postgres', `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1`, [target]))[0]!.n);
      expect(await eventually(async () => (await sessions()) === 0, 5000)).toBe(true);
      expect(await readdir(staging)).toEqual([]);
      await expectNoLock();
    } finally {
      await dropDatabase(server, target).catch(() => undefined);
      await dropDatabase(server, big).catch(() => undefined);
    }
  }, 60_000);

  it('SIGINT during an S3 restore: no upload after it, no lock, exit 130', async () => {
    const minio: Minio = await requireServer('minio');
    const s3 = minioClient(minio);
    const source = await filledBucket(s3, 'bak-intr-src', 3000);
    const target = uniqueName('bak-intr-dst');
    try {
      await createBucket(s3, target);
      const backup = await runBak(['--repo', repoDir, 'backup', `s3://${source}`, ...s3Flags(minio.endpoint), '--json'], { env: awsEnv(minio) });
      expect(backup.code, show(backup)).toBe(0);
      const id = JSON.parse(backup.stdout).id as string;
      const restored = async () => (await s3.send(new ListObjectsV2Command({ Bucket: target, MaxKeys: 1000 }))).KeyCount ?? 0;
      const args = ['--repo', repoDir, '--concurrency', '1', 'restore', id, '--to', `s3://${target}`, '--endpoint', minio.endpoint, '--path-style'];
      const r = await signalled(args, awsEnv(minio), 'SIGINT', async () => (await restored()) > 0);
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain('interrupted by SIGINT: the restore stopped part-way');
      // It stopped at once, not after uploading the bucket.
      expect(await restored()).toBeLessThan(1000);
      await expectNoLock();
    } finally {
      for (const b of [source, target]) await deleteBucketCompletely(s3, b).catch(() => undefined);
      s3.destroy();
    }
  }, 90_000);

  it('SIGINT during a gc prune: the deletes in flight finish, the lock goes, exit 130; the next gc finishes the prune', async () => {
    const minio: Minio = await requireServer('minio');
    const s3 = minioClient(minio);
    const source = await filledBucket(s3, 'bak-intr-gc', 2000);
    const location = await makeLocation('minio');
    const [bucket, prefix] = location.settings.url.slice('s3://'.length).split('/') as [string, string];
    const config = await writeConfig({ repositories: { r: location.configEntry }, defaults: { repository: 'r' } });
    const env = { ...location.env, ...awsEnv(minio) };
    const count = async (under: string) => {
      let n = 0;
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/${under}`, ContinuationToken: token }));
        n += page.KeyCount ?? 0;
        token = page.NextContinuationToken;
      } while (token);
      return n;
    };
    try {
      expect((await runBak(['--config', config, 'init'], { env })).code).toBe(0);
      const backup = await runBak(['--config', config, 'backup', `s3://${source}`, ...s3Flags(minio.endpoint)], { env });
      expect(backup.code, show(backup)).toBe(0);
      // The snapshot goes as if forgotten: every blob it wrote is unreferenced now.
      const manifests = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/snapshots/` }));
      for (const m of manifests.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: m.Key! }));
      const before = await count('blobs/');
      expect(before).toBeGreaterThan(2000);

      const gc = ['--config', config, '--concurrency', '1', 'gc', '--all', '--grace-period', '0h'];
      const r = await signalled(gc, env, 'SIGINT', async () => (await count('blobs/')) < before);
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain('interrupted by SIGINT: gc stopped part-way');
      expect(await count('blobs/')).toBeGreaterThan(0);
      expect(await count('locks/')).toBe(0);

      const again = await runBak(['--config', config, 'gc', '--all', '--grace-period', '0h'], { env });
      expect(again.code, show(again)).toBe(0);
      expect(await count('blobs/')).toBe(0);
    } finally {
      await deleteBucketCompletely(s3, source).catch(() => undefined);
      await location.cleanup();
      s3.destroy();
    }
  }, 120_000);
});
