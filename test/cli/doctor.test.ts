// `bak doctor` through the real CLI: a healthy setup (a local repository with a PostgreSQL job, a versioned MinIO
// repository with an S3 job) passes with exit 0 and writes nothing but its test object (the local folder walked and
// the MinIO bucket's every version listed, before and after); each broken setup fails with its line and exit 1: a
// wrong secret key, a missing bucket, a public-read bucket policy, pg_dump missing, a wrong PostgreSQL password, a
// missing source bucket, a clock skewed past 10 minutes (2 minutes only warns, exit 0), stale locks (then `bak unlock`
// clears them), an unset secret reference, an invalid config; a staging folder smaller than the last snapshot and a
// folder others can read warn. fake-gcs-server's missing protection fields warn "could not be determined". Spanner
// (handy-spanner), BigQuery (bigquery-emulator) and Datomic (the stand-in bin/datomic) sources too. Last, the S3 and GCS
// inspections at the client boundary, with the answers AWS and GCS give that MinIO and fake-gcs-server do not (not
// verified against a server).
import { spawn } from 'node:child_process';
import { treeListing } from '../helpers/fixture-tree.ts';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GetBucketAclCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck, DoctorReport } from '../../src/operations/doctor.ts';
import { parsePostgresSource } from '../../src/engines/postgres/source.ts';
import { PassphraseSource } from '../../src/repository/encryption/passphrase.ts';
import { lockInfoSchema } from '../../src/repository/locks.ts';
import { Repository } from '../../src/repository/repository.ts';
import { sourceKeyOf } from '../../src/repository/source-key.ts';
import { inspectGcsBucket, type InspectableBucket } from '../../src/storage/gcs-inspect.ts';
import type { ObjectStore, StoreFinding } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { inspectS3Bucket, judgeBucketPolicy } from '../../src/storage/s3-inspect.ts';
import { newSnapshotId } from '../../src/util/ids.ts';
import { makeLocation, minioClient, uniqueName, type TestLocation } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig, type CliResult } from '../helpers/cli.ts';
import { DATOMIC_STANDIN } from '../helpers/datomic.ts';
import { pgUri, requirePostgres, type PgServer } from '../helpers/postgres.ts';
import { awsEnv, createBucket, deleteBucketCompletely, listVersions, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';
import { requireSpanner, TestDatabase, uniqueDatabaseId } from '../helpers/spanner.ts';

const byName = (r: DoctorReport) => new Map(r.checks.map((c) => [c.name, c]));
const check = (r: CliResult, name: string): DoctorCheck => {
  const found = json<DoctorReport>(r).checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check "${name}":\n${show(r)}`);
  return found;
};


describe('bak doctor', () => {
  let minio: Minio;
  let pg: PgServer;
  let s3: S3Client;
  let local: TestLocation;
  let remote: TestLocation;
  let localRoot: string;
  let remoteBucket: string;
  let configFile: string;
  let env: Record<string, string>;
  const sourceBucket = uniqueName('bak-doctor-src');
  const cleanups: Array<() => Promise<unknown>> = [];
  const bak = (args: string[], extra: Record<string, string> = {}, config = configFile) => runBak(['--config', config, ...args], { env: { ...env, ...extra } });

  beforeAll(async () => {
    [minio, pg] = await Promise.all([requireServer('minio'), requirePostgres()]);
    s3 = minioClient(minio);
    [local, remote] = await Promise.all([makeLocation('local'), makeLocation('minio')]);
    // The repository bucket is versioned: its cleanup must delete every version too.
    cleanups.push(local.cleanup, remote.cleanup, () => deleteBucketCompletely(s3, remoteBucket), () => deleteBucketCompletely(s3, sourceBucket));
    localRoot = fileURLToPath(local.settings.url);
    await chmod(localRoot, 0o700);
    remoteBucket = /^s3:\/\/([^/]+)/.exec(remote.settings.url)![1]!;
    await s3.send(new PutBucketVersioningCommand({ Bucket: remoteBucket, VersioningConfiguration: { Status: 'Enabled' } }));
    await createBucket(s3, sourceBucket);
    await s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: 'a.txt', Body: 'hello' }));
    configFile = await writeConfig({
      defaults: { repository: 'local' },
      repositories: { local: local.configEntry, minio: remote.configEntry },
      jobs: {
        pg: { engine: 'postgres', source: pgUri(pg, 'postgres'), repository: 'local', options: { password: { env: 'BAK_TEST_PG_PASSWORD' }, databases: ['postgres'] } },
        s3: {
          engine: 's3',
          source: `s3://${sourceBucket}`,
          repository: 'minio',
          options: {
            endpoint: minio.endpoint,
            forcePathStyle: true,
            checksums: 'when-required',
            accessKeyId: { env: 'BAK_TEST_S3_ACCESS_KEY' },
            secretAccessKey: { env: 'BAK_TEST_S3_SECRET_KEY' },
          },
        },
      },
    });
    // The job's password comes from its reference only; no AWS credentials but the config's, no ~/.aws.
    env = { ...local.env, ...remote.env, ...awsEnv(minio), AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', BAK_TEST_PG_PASSWORD: pg.password, PGPASSWORD: '', PGPASSFILE: '/nonexistent/.pgpass', BAK_PG_BIN: pg.bin };
    for (const r of await Promise.all([bak(['init', 'local']), bak(['init', 'minio'])])) expect(r.code, show(r)).toBe(0);
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    s3?.destroy();
  });

  it('passes a healthy setup with exit 0, and writes nothing but its test object', async () => {
    const [filesBefore, versionsBefore] = await Promise.all([treeListing(localRoot), listVersions(s3, remoteBucket)]);
    const r = await bak(['doctor', '--all', '--json']);
    expect(r.code, show(r)).toBe(0);
    const report = json<DoctorReport>(r);
    const checks = byName(report);
    const expected = [
      'config',
      'secrets',
      ...['reachable', 'format', 'writable', 'permissions', 'clock', 'locks'].map((a) => `repo local: ${a}`),
      ...['reachable', 'format', 'writable', 'public access', 'versioning', 'object lock', 'clock', 'locks'].map((a) => `repo minio: ${a}`),
      ...['connect', 'databases', 'pg_dump', 'staging'].map((a) => `job pg: ${a}`),
      'job s3: bucket',
    ];
    expect([...checks.keys()]).toEqual(expected);
    for (const c of report.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('ok');
    expect(report.summary).toEqual({ ok: expected.length, warn: 0, fail: 0 });
    expect(checks.get('secrets')!.detail).toBe('5 secret references resolve');
    expect(checks.get('repo minio: versioning')!.detail).toBe('versioning on');
    expect(checks.get('repo minio: public access')!.detail).toMatch(/^not public: no bucket policy/);
    expect(checks.get('repo minio: clock')!.detail).toMatch(/within about a second of the server \(Date header of http:\/\/127\.0\.0\.1:\d+\)/);
    expect(checks.get('repo local: clock')!.detail).toBe('local repository, no server clock');
    expect(checks.get('job pg: pg_dump')!.detail).toMatch(/^pg_dump 15\.\d+, pg_restore, pg_dumpall and psql in .* \(server 15;/);
    expect(checks.get('job pg: databases')!.detail).toBe('1 to dump: postgres');
    expect(checks.get('job pg: staging')!.detail).toMatch(/free in .*; no complete snapshot yet to compare with$/);
    expect(checks.get('job s3: bucket')!.detail).toMatch(/reachable, listing works \(holds objects\)$/);
    // No secret value anywhere in what doctor printed.
    for (const secret of [minio.secretAccessKey, pg.password]) expect(r.stdout + r.stderr).not.toContain(secret);

    // The local folder is as it was (the test object's folder doctor/ removed too) …
    expect(await treeListing(localRoot)).toEqual(filesBefore);
    // … and in the versioned bucket the one new thing is the test object, as a noncurrent version under its delete marker.
    const localKey = /created, read back and deleted (doctor\/[0-9a-f]{16})/.exec(checks.get('repo local: writable')!.detail)?.[1];
    const remoteKey = /created, read back and deleted (doctor\/[0-9a-f]{16})/.exec(checks.get('repo minio: writable')!.detail)?.[1];
    expect(localKey).toBeDefined();
    expect(remoteKey).toBeDefined();
    const seen = new Set(versionsBefore.map((v) => `${v.key} ${v.versionId}`));
    const added = (await listVersions(s3, remoteBucket)).filter((v) => !seen.has(`${v.key} ${v.versionId}`));
    expect(added.map((v) => ({ key: v.key, deleteMarker: v.deleteMarker, isLatest: v.isLatest })).sort((a, b) => Number(a.deleteMarker) - Number(b.deleteMarker))).toEqual([
      { key: `repo/${remoteKey}`, deleteMarker: false, isLatest: false },
      { key: `repo/${remoteKey}`, deleteMarker: true, isLatest: true },
    ]);
  });

  it('prints one aligned line per check, then the summary; --json holds the same checks', async () => {
    const [text, asJson] = await Promise.all([bak(['doctor', '--job', 'pg']), bak(['doctor', '--job', 'pg', '--json'])]);
    expect(text.code, show(text)).toBe(0);
    const checks = json<DoctorReport>(asJson).checks;
    // --job: only that job's repository and source.
    expect(checks.map((c) => c.name)).toEqual([
      'config',
      'secrets',
      ...['reachable', 'format', 'writable', 'permissions', 'clock', 'locks'].map((a) => `repo local: ${a}`),
      ...['connect', 'databases', 'pg_dump', 'staging'].map((a) => `job pg: ${a}`),
    ]);
    const width = Math.max(...checks.map((c) => c.name.length));
    const lines = text.stdout.trimEnd().split('\n');
    const random = (s: string) => s.replace(/doctor\/[0-9a-f]{16}/, 'doctor/KEY').replace(/[\d.]+ [KMGT]?i?B free/, 'N free');
    expect(lines.slice(0, checks.length).map(random)).toEqual(checks.map((c) => random(`ok    ${c.name.padEnd(width)}  ${c.detail}`)));
    expect(lines.slice(checks.length)).toEqual(['', `no check failed: ${checks.length} ok, 0 warnings`]);
  });

  it('fails a wrong secret key, a missing bucket and a public-read bucket policy (exit 1)', async () => {
    const pub = await makeLocation('minio');
    cleanups.push(pub.cleanup);
    const pubBucket = /^s3:\/\/([^/]+)/.exec(pub.settings.url)![1]!;
    const missing = uniqueName('bak-doctor-missing');
    const broken = await writeConfig({
      repositories: {
        minio: remote.configEntry,
        gone: { ...remote.configEntry, url: `s3://${missing}/repo` },
        pub: pub.configEntry,
      },
    });
    const init = await bak(['init', 'pub'], {}, broken);
    expect(init.code, show(init)).toBe(0);
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: ['*'] }, Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${pubBucket}/*`] }] };
    await s3.send(new PutBucketPolicyCommand({ Bucket: pubBucket, Policy: JSON.stringify(policy) }));

    const [wrongKey, gone, publicRead] = await Promise.all([
      bak(['--repo', 'minio', 'doctor'], { BAK_TEST_S3_SECRET_KEY: 'not-the-secret-key' }, broken),
      bak(['--repo', 'gone', 'doctor'], {}, broken),
      bak(['--repo', 'pub', 'doctor'], {}, broken),
    ]);
    expect(wrongKey.code, show(wrongKey)).toBe(1);
    expect(wrongKey.stdout).toMatch(/^FAIL  repo minio: reachable  access denied: cannot check access to s3:\/\/.* \(endpoint http:\/\/127\.0\.0\.1:\d+\): HTTP 403\n {6}fix: check the access key, secret and bucket policy$/m);
    expect(wrongKey.stdout + wrongKey.stderr).not.toContain('not-the-secret-key');
    // Nothing past an unreachable repository is tried.
    expect(wrongKey.stdout).not.toMatch(/repo minio: (format|writable)/);

    expect(gone.code, show(gone)).toBe(1);
    expect(gone.stdout).toContain(`FAIL  repo gone: reachable  cannot check access to s3://${missing}/repo/: bucket '${missing}' does not exist`);
    expect(gone.stdout).toContain(`fix: create the bucket (bak never creates one) or correct the repository URL, then: bak init s3://${missing}/repo`);

    expect(publicRead.code, show(publicRead)).toBe(1);
    expect(publicRead.stdout).toMatch(
      new RegExp(`^FAIL  repo pub: public access +bucket ${pubBucket} is public: its policy lets anyone read \\(statement 1: Principal "\\*" may s3:GetObject\\)\\n {6}fix: remove the grant to everyone`, 'm'),
    );
    expect(publicRead.stdout).toMatch(/^WARN  repo pub: versioning +versioning off: a deleted or overwritten object cannot be recovered$/m);
    expect(publicRead.stdout).toMatch(/^ok    repo pub: writable /m);
  });

  it('fails a job whose pg_dump is missing, a wrong password, a missing source bucket; an unset secret reference names its config path (exit 1)', async () => {
    const emptyBin = await mkdtemp(path.join(tmpdir(), 'bak-doctor-nobin-'));
    cleanups.push(() => rm(emptyBin, { recursive: true, force: true }));
    const unset = `BAK_TEST_DOCTOR_UNSET_${randomBytes(3).toString('hex').toUpperCase()}`;
    const broken = await writeConfig({
      defaults: { repository: 'local' },
      repositories: { local: local.configEntry, nokey: { ...remote.configEntry, secretAccessKey: { env: unset } } },
      jobs: {
        nopg: { engine: 'postgres', source: pgUri(pg, 'postgres'), options: { password: { env: 'BAK_TEST_PG_PASSWORD' }, pgBin: emptyBin, databases: ['postgres'] } },
        nosecret: {
          engine: 'postgres',
          source: pgUri(pg, 'postgres'),
          options: { password: { env: unset } },
          hooks: { ping: { env: unset }, webhook: 'https://hooks.example.invalid/plain-hook-token' },
        },
        badpw: { engine: 'postgres', source: pgUri(pg, 'postgres'), options: { password: { env: 'BAK_TEST_WRONG_PG_PASSWORD' } } },
        s3gone: { engine: 's3', source: `s3://${uniqueName('bak-doctor-nosrc')}`, options: { endpoint: minio.endpoint, forcePathStyle: true, accessKeyId: { env: 'BAK_TEST_S3_ACCESS_KEY' }, secretAccessKey: { env: 'BAK_TEST_S3_SECRET_KEY' } } },
      },
    });
    const wrongPassword = { BAK_TEST_WRONG_PG_PASSWORD: 'not-the-pg-password' };
    const [nopg, all, nosecret, badpw, s3gone] = await Promise.all([
      bak(['doctor', '--job', 'nopg'], {}, broken),
      bak(['doctor'], wrongPassword, broken),
      bak(['doctor', '--job', 'nosecret'], {}, broken),
      bak(['doctor', '--job', 'badpw', '--json'], wrongPassword, broken),
      bak(['doctor', '--job', 's3gone', '--json'], {}, broken),
    ]);
    expect(badpw.code, show(badpw)).toBe(1);
    expect(check(badpw, 'job badpw: connect')).toMatchObject({ status: 'fail', detail: `PostgreSQL at ${pg.host}:${pg.port} refused user "${pg.user}": authentication failed (wrong password, or no pg_hba.conf entry)` });
    expect(badpw.stdout + badpw.stderr).not.toContain('not-the-pg-password');
    expect(s3gone.code, show(s3gone)).toBe(1);
    expect(check(s3gone, 'job s3gone: bucket')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^cannot check access to s3:\/\/bak-doctor-nosrc-\S+\/: bucket 'bak-doctor-nosrc-\S+' does not exist/) });

    expect(nopg.code, show(nopg)).toBe(1);
    expect(nopg.stdout).toMatch(new RegExp(`^FAIL  job nopg: pg_dump +pg_dump not found in ${emptyBin}\\n {6}fix: install postgresql-client-15 .*set the job option pgBin`, 'm'));
    expect(nopg.stdout).toMatch(/^ok    job nopg: connect /m);
    // --job: only the secrets that job reads; the other job's and repository's unset reference are not its business.
    expect(nopg.stdout).toMatch(/^ok    secrets +1 secret reference resolve$/m);

    expect(all.code, show(all)).toBe(1);
    expect(all.stdout).toMatch(new RegExp(`^FAIL  secret jobs\\.nosecret\\.options\\.password +environment variable ${unset} is not set$`, 'm'));
    expect(all.stdout).toMatch(new RegExp(`^FAIL  secret repositories\\.nokey\\.secretAccessKey +environment variable ${unset} is not set$`, 'm'));
    expect(all.stdout).toContain(`fix: set ${unset} in the environment bak runs in`);

    expect(nosecret.code, show(nosecret)).toBe(1);
    expect(nosecret.stdout).toMatch(/^FAIL  secret jobs\.nosecret\.options\.password +environment variable BAK_TEST_DOCTOR_UNSET_\w+ is not set$/m);
    expect(nosecret.stdout).toMatch(/^FAIL  job nosecret: source +not checked: jobs\.nosecret\.options\.password: environment variable/m);
    // A hook URL is a credential too, but the backup runs without it: warnings, never its value.
    expect(nosecret.stdout).toMatch(/^WARN  secret jobs\.nosecret\.hooks\.ping +environment variable BAK_TEST_DOCTOR_UNSET_\w+ is not set: bak run will skip that hook$/m);
    expect(nosecret.stdout).toMatch(/^WARN  secret jobs\.nosecret\.hooks\.webhook +written into the config file as plain text$/m);
    expect(nosecret.stdout + nosecret.stderr + all.stdout + all.stderr).not.toContain('plain-hook-token');
  });

  it('warns at 2 minutes of clock skew (exit 0) and fails past 10 minutes (exit 1)', async () => {
    const [ahead, behind] = await Promise.all([
      bak(['--repo', 'minio', 'doctor'], { BAK_DOCTOR_CLOCK_OFFSET_MS: '120000' }),
      bak(['--repo', 'minio', 'doctor', '--json'], { BAK_DOCTOR_CLOCK_OFFSET_MS: String(-11 * 60_000) }),
    ]);
    expect(ahead.code, show(ahead)).toBe(0);
    expect(ahead.stdout).toMatch(/^WARN  repo minio: clock +local clock (1 min 59|2 min 0|2 min 1) s ahead of the server \(Date header of http:\/\/127\.0\.0\.1:\d+\): more than 60 s\n {6}fix: synchronise the clock/m);
    expect(behind.code, show(behind)).toBe(1);
    const c = check(behind, 'repo minio: clock');
    expect(c.status).toBe('fail');
    expect(c.detail).toMatch(/^local clock (10 min 59|11 min 0|11 min 1) s behind the server .*: past 10 minutes, lock expiry and gc grace periods are misjudged$/);
  });

  it('fails stale locks (expired, or of a dead process here), naming bak unlock; after it, doctor passes', async () => {
    const store = await openStore(local.settings);
    try {
      const deadPid = await new Promise<number>((resolve) => {
        const child = spawn('true');
        child.on('exit', () => resolve(child.pid!));
      });
      const old = Date.now() - 2 * 86_400_000;
      const expired = lockInfoSchema.parse({
        id: `expired-${randomBytes(3).toString('hex')}`, kind: 'shared', host: 'another-host', pid: 4242, command: 'backup --job nightly',
        createdAt: new Date(old).toISOString(), expiresAt: new Date(old + 600_000).toISOString(),
      });
      const orphan = lockInfoSchema.parse({
        id: `orphan-${randomBytes(3).toString('hex')}`, kind: 'exclusive', host: hostname(), pid: deadPid, command: 'gc',
        createdAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString(),
      });
      for (const l of [expired, orphan]) await store.put(`locks/${l.id}.json`, Buffer.from(JSON.stringify(l)));
      const garbled = `garbled-${randomBytes(3).toString('hex')}`;
      await store.put(`locks/${garbled}.json`, Buffer.from(JSON.stringify({ id: garbled, kind: 'shared' })));

      const r = await bak(['doctor']);
      expect(r.code, show(r)).toBe(1);
      const unlock = `bak --config ${configFile} unlock --repo local`;
      expect(r.stdout).toMatch(new RegExp(`^FAIL  repo local: lock ${expired.id} +stale shared lock of another-host pid 4242 \\("backup --job nightly"\\), taken .*: expired ${expired.expiresAt}$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^FAIL  repo local: lock ${orphan.id} +stale exclusive lock of ${hostname()} pid ${deadPid} \\("gc"\\), taken .*: its process is gone$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^FAIL  repo local: lock locks/${garbled}\\.json +unreadable lock file: its JSON is not a bak lock \\(fields missing or of the wrong type\\)$`, 'm'));
      expect(r.stdout).toContain(`fix: if no bak process uses this repository any more: ${unlock}`);

      const unlocked = await bak(['unlock', '--repo', 'local']);
      expect(unlocked.code, show(unlocked)).toBe(0);
      const after = await bak(['doctor']);
      expect(after.code, show(after)).toBe(0);
      expect(after.stdout).toMatch(/^ok    repo local: locks +no locks$/m);
    } finally {
      await store.close?.();
    }
  });

  it('warns when staging has less room than the last snapshot, and when others can read the folder (exit 0)', async () => {
    const store: ObjectStore = await openStore(local.settings);
    const source = parsePostgresSource(pgUri(pg, 'postgres'), {});
    const huge = 2 ** 50;
    const id = newSnapshotId();
    const now = new Date().toISOString();
    let key: string;
    try {
      const repo = await Repository.open(store);
      key = await repo.writeManifest({
        formatVersion: 1, id, engine: 'postgres', source: source.uri, sourceKey: sourceKeyOf('postgres', source.uri), job: 'pg', host: hostname(),
        bakVersion: 'test', startedAt: now, finishedAt: now, status: 'complete', parent: null, tags: [], items: [], indexes: [], failures: [],
        engineDetails: {}, externalData: false, totals: { items: 0, bytes: huge, storedBytes: 0, newBytes: 0 },
      });
      await chmod(localRoot, 0o755);
      const r = await bak(['doctor', '--job', 'pg']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^WARN  job pg: staging +only [\\d.]+ [KMGT]iB free in ${tmpdir()}, less than the 1024 TiB of the last complete snapshot ${id}\\n {6}fix: point TMPDIR`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^WARN  repo local: permissions +group or others can read ${localRoot} \\(mode 755\\)\\n {6}fix: chmod 700 ${localRoot}$`, 'm'));
      await store.delete(key);
    } finally {
      await chmod(localRoot, 0o700);
      await store.close?.();
    }
  });

  it("an encrypted repository: its keys line is ok with the passphrase (BAK_PASSWORD or --password-file) and fails without it (exit 1); its sealed locks are read", async () => {
    const enc = await makeLocation('local');
    cleanups.push(enc.cleanup);
    const encRoot = fileURLToPath(enc.settings.url);
    await chmod(encRoot, 0o700);
    const config = await writeConfig({ repositories: { enc: enc.configEntry } });
    const unset = `BAK_TEST_DOCTOR_UNSET_${randomBytes(3).toString('hex').toUpperCase()}`;
    const byReference = await writeConfig({ repositories: { enc: { ...enc.configEntry, encryption: { password: { env: unset } } } } });
    const passphrase = `doctor passphrase ${randomBytes(6).toString('hex')}`;
    const cheap = { BAK_TEST_SCRYPT_LOG_N: '10', BAK_PASSWORD: '', BAK_PASSWORD_FILE: '', BAK_PASSWORD_COMMAND: '' };
    const init = await bak(['init', 'enc', '--json'], { ...cheap, BAK_PASSWORD: passphrase }, config);
    expect(init.code, show(init)).toBe(0);
    const slotId = json<{ keySlots: Array<{ id: string }> }>(init).keySlots[0]!.id;
    const passwordFile = path.join(path.dirname(encRoot), 'passphrase');
    await writeFile(passwordFile, `${passphrase}\n`, { mode: 0o600 });

    // A live lock, sealed as every object of an encrypted repository but its marker and key slots.
    const store = await openStore(enc.settings);
    const repo = await Repository.open(store, { keys: [new PassphraseSource('test', async () => passphrase, cheap)] });
    const lock = await repo.lock('shared', { command: 'backup --job enc' });
    try {
      const before = await treeListing(encRoot);
      const [byEnv, byFile, without, wrong, unsetRef] = await Promise.all([
        bak(['--repo', 'enc', 'doctor', '--json'], { ...cheap, BAK_PASSWORD: passphrase }, config),
        bak(['--repo', 'enc', '--password-file', passwordFile, 'doctor', '--json'], cheap, config),
        bak(['--repo', 'enc', 'doctor'], cheap, config),
        bak(['--repo', 'enc', 'doctor', '--json'], { ...cheap, BAK_PASSWORD: 'not the passphrase' }, config),
        bak(['--repo', 'enc', 'doctor', '--json'], cheap, byReference),
      ]);
      expect(byEnv.code, show(byEnv)).toBe(0);
      const report = json<DoctorReport>(byEnv);
      expect(report.checks.map((c) => c.name)).toEqual(['config', 'secrets', ...['reachable', 'format', 'keys', 'writable', 'permissions', 'clock', 'locks'].map((a) => `repo enc: ${a}`)]);
      for (const c of report.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('ok');
      expect(check(byEnv, 'repo enc: format').detail).toMatch(/^bak repository format 3, id /);
      expect(check(byEnv, 'repo enc: keys').detail).toBe(`encrypted (aes-256-gcm); opened with passphrase from BAK_PASSWORD, slot ${slotId}; 1 key slot (passphrase)`);
      expect(check(byEnv, 'repo enc: writable').detail).toMatch(/^created, read back and deleted doctor\/[0-9a-f]{16}/);
      expect(check(byEnv, 'repo enc: locks').detail).toMatch(new RegExp(`^no stale locks; 1 live: shared lock of ${hostname()} pid ${process.pid} \\("backup --job enc"\\)`));

      expect(byFile.code, show(byFile)).toBe(0);
      expect(check(byFile, 'repo enc: keys')).toMatchObject({ status: 'ok', detail: `encrypted (aes-256-gcm); opened with passphrase from --password-file ${passwordFile}, slot ${slotId}; 1 key slot (passphrase)` });

      expect(without.code, show(without)).toBe(1);
      expect(without.stdout).toMatch(/^ok {4}repo enc: format +bak repository format 3, /m);
      expect(without.stdout).toMatch(
        new RegExp(`^FAIL  repo enc: keys +the repository at ${enc.settings.url}/? is encrypted and no key opened it: 1 passphrase slot: no key given \\(a passphrase in BAK_PASSWORD, .*\\)\\n {6}fix: give bak a key that opens one of its slots`, 'm'),
      );
      expect(without.stdout).toMatch(/^WARN  repo enc: locks +not checked: the repository did not open, and its locks are sealed$/m);
      expect(without.stdout).toContain('1 check failed');

      expect(wrong.code, show(wrong)).toBe(1);
      expect(check(wrong, 'repo enc: keys')).toMatchObject({ status: 'fail', detail: expect.stringContaining(`passphrase from BAK_PASSWORD, slot ${slotId}: wrong passphrase`) });
      // The config's passphrase reference is a secret like any other: its line names the variable, and the keys line too.
      expect(unsetRef.code, show(unsetRef)).toBe(1);
      expect(check(unsetRef, 'secret repositories.enc.encryption.password')).toMatchObject({ status: 'fail', detail: `environment variable ${unset} is not set` });
      expect(check(unsetRef, 'repo enc: keys')).toMatchObject({ status: 'fail', detail: expect.stringContaining(`passphrase from repositories.enc.encryption.password, slot ${slotId}: repositories.enc.encryption.password: environment variable ${unset} is not set`) });
      for (const r of [byEnv, byFile, without, wrong, unsetRef]) expect(r.stdout + r.stderr).not.toContain(passphrase);
      // Nothing left behind but what was there (the test objects deleted again, their folder too).
      expect(await treeListing(encRoot)).toEqual(before);
    } finally {
      await lock.release();
      await store.close?.();
    }
  });

  it('fails an invalid config (exit 1); --job with --all, or an unknown job, is bad usage (exit 2)', async () => {
    const bad = path.join(await mkdtemp(path.join(tmpdir(), 'bak-doctor-cfg-')), 'bak.config.json');
    cleanups.push(() => rm(path.dirname(bad), { recursive: true, force: true }));
    await writeFile(bad, JSON.stringify({ jobs: { x: { engine: 'nope', source: 'x://y' } } }));
    const [invalid, both, unknown] = await Promise.all([bak(['doctor'], {}, bad), bak(['doctor', '--job', 'pg', '--all']), bak(['doctor', '--job', 'nope'])]);
    expect(invalid.code, show(invalid)).toBe(1);
    expect(invalid.stdout).toMatch(/^FAIL  config  config file .* is invalid:/m);
    expect(both.code, show(both)).toBe(2);
    expect(both.stderr).toContain('give --job NAME or --all, not both');
    expect(unknown.code, show(unknown)).toBe(2);
    expect(unknown.stderr).toContain('no job named "nope"');
  });

  it('on fake-gcs-server: what the server does not report warns "could not be determined", never ok; nothing else written', async () => {
    const gcs = await makeLocation('gcs');
    cleanups.push(gcs.cleanup);
    const config = await writeConfig({ repositories: { gcs: gcs.configEntry } });
    const init = await bak(['init', 'gcs'], {}, config);
    expect(init.code, show(init)).toBe(0);
    const storage = new Storage({ apiEndpoint: gcs.settings.apiEndpoint!, projectId: gcs.settings.projectId!, useAuthWithCustomEndpoint: false });
    const bucket = storage.bucket(/^gs:\/\/([^/]+)/.exec(gcs.settings.url)![1]!);
    const objects = async () => (await bucket.getFiles({ versions: true }))[0].map((f) => `${f.name} ${String(f.metadata.generation)} ${String(f.metadata.updated)}`).sort();
    const before = await objects();
    const r = await bak(['--repo', 'gcs', 'doctor', '--json'], {}, config);
    expect(r.code, show(r)).toBe(0);
    const checks = byName(json<DoctorReport>(r));
    const status = (n: string) => [checks.get(`repo gcs: ${n}`)?.status, checks.get(`repo gcs: ${n}`)?.detail];
    expect(status('writable')).toEqual(['ok', expect.stringMatching(/^created, read back and deleted doctor\/[0-9a-f]{16}/)]);
    expect(status('public access')).toEqual(['warn', 'could not be determined: the server reports no iamConfiguration.publicAccessPrevention, and the IAM policy could not be read (HTTP 404: Not Found)']);
    expect(status('uniform access')).toEqual(['warn', 'could not be determined: the server reports no iamConfiguration.uniformBucketLevelAccess']);
    expect(status('versioning')).toEqual(['warn', 'versioning off: a deleted or overwritten object cannot be recovered']);
    expect(status('retention')).toEqual(['warn', 'could not be determined: the server reports no retention fields']);
    expect(status('clock')).toEqual(['ok', expect.stringMatching(/^within about a second of the server \(Date header of http:\/\/127\.0\.0\.1:\d+\)$/)]);
    expect(await objects()).toEqual(before);
  });

  it('checks Spanner, BigQuery and Datomic sources: reachable, missing, bin/datomic executable or not', async () => {
    const [spannerEnv, bigquery] = await Promise.all([requireSpanner(), requireServer('bigquery')]);
    const db = await new TestDatabase(spannerEnv, uniqueDatabaseId('doctor')).create(['CREATE TABLE t (id INT64 NOT NULL) PRIMARY KEY (id)']);
    cleanups.push(() => db.drop());
    const staging = await mkdtemp(path.join(tmpdir(), 'bak-doctor-datomic-'));
    const notExecutable = path.join(staging, 'datomic-not-executable');
    await writeFile(notExecutable, '#!/bin/sh\n');
    cleanups.push(() => rm(staging, { recursive: true, force: true }));
    const endpoint = `http://${spannerEnv.host}`;
    const config = await writeConfig({
      defaults: { repository: 'minio' },
      repositories: { minio: remote.configEntry },
      jobs: {
        sp: { engine: 'spanner', source: db.uri, options: { endpoint } },
        spgone: { engine: 'spanner', source: `spanner://projects/${spannerEnv.projectId}/instances/${spannerEnv.instanceId}/databases/nope-${randomBytes(2).toString('hex')}`, options: { endpoint } },
        bq: { engine: 'bigquery', source: `bigquery://${bigquery.projectId}`, options: { endpoint: bigquery.endpoint } },
        bqgone: { engine: 'bigquery', source: `bigquery://${bigquery.projectId}/nope_doctor`, options: { endpoint: bigquery.endpoint } },
        dt: { engine: 'datomic', source: 'datomic:dev://localhost:4334/doctor', options: { datomicBin: DATOMIC_STANDIN, staging: path.join(staging, 'dt') } },
        dtbad: { engine: 'datomic', source: 'datomic:dev://localhost:4334/doctor', options: { datomicBin: notExecutable } },
      },
    });
    const r = await bak(['doctor', '--all', '--json'], {}, config);
    expect(r.code, show(r)).toBe(1);
    const checks = byName(json<DoctorReport>(r));
    const status = (n: string) => [checks.get(n)?.status, checks.get(n)?.detail];
    expect(status('job sp: database')).toEqual(['ok', expect.stringMatching(new RegExp(`^${db.name} at ${spannerEnv.host}: `))]);
    expect(status('job spgone: database')).toEqual(['fail', expect.stringMatching(/does not exist at /)]);
    expect(status('job bq: project')).toEqual(['ok', `${bigquery.projectId} at ${bigquery.endpoint}: datasets can be listed`]);
    expect(status('job bqgone: dataset')).toEqual(['fail', `dataset ${bigquery.projectId}.nope_doctor does not exist at ${bigquery.endpoint}`]);
    expect(status('job dt: bin/datomic')).toEqual(['ok', `${DATOMIC_STANDIN} is executable (the database is reached by backup-db only: not checked)`]);
    expect(status('job dt: staging')).toEqual(['ok', expect.stringMatching(new RegExp(`free in ${staging}/dt \\(on ${staging}'s file system\\); no complete snapshot yet`))]);
    expect(status('job dtbad: bin/datomic')).toEqual(['fail', `${notExecutable} is not executable by this user`]);
    expect(json<DoctorReport>(r).summary.fail).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The client boundary: what AWS S3 and GCS answer that MinIO and fake-gcs-server do not (not verified against a server).

const verdicts = (findings: StoreFinding[]) => Object.fromEntries(findings.map((f) => [f.aspect, [f.verdict, f.detail]]));

function s3Stub(answers: Record<string, unknown>): Parameters<typeof inspectS3Bucket>[0] {
  return {
    send: (async (command: object) => {
      const answer = answers[command.constructor.name];
      if (answer instanceof Error) throw answer;
      if (answer === undefined) throw Object.assign(new Error('not stubbed'), { name: 'NotImplemented', $metadata: { httpStatusCode: 501 } });
      return answer;
    }) as never,
  };
}
const s3Error = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('bak doctor at the client boundary', () => {
  it('judges bucket policies: Principal "*" reading objects or listing is public, with a Condition a warning', () => {
    const doc = (statement: object) => JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
    expect(judgeBucketPolicy(doc({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' })).public).toHaveLength(1);
    expect(judgeBucketPolicy(doc({ Effect: 'Allow', Principal: { AWS: '*' }, Action: 's3:*', Resource: '*' })).public).toHaveLength(1);
    expect(judgeBucketPolicy(doc({ Sid: 'list', Effect: 'Allow', Principal: { AWS: ['*'] }, Action: ['s3:Get*', 's3:PutObject'], Resource: '*' })).public).toEqual(['statement "list": Principal "*" may s3:Get*']);
    expect(judgeBucketPolicy(doc({ Effect: 'Allow', Principal: '*', Action: 's3:ListBucket', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }))).toEqual({
      public: [],
      conditional: ['statement 1: Principal "*" may s3:ListBucket if IpAddress'],
    });
    for (const harmless of [
      { Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: '*' },
      { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 's3:GetObject', Resource: '*' },
      { Effect: 'Allow', Principal: '*', Action: 's3:PutObject', Resource: '*' },
    ]) {
      expect(judgeBucketPolicy(doc(harmless))).toEqual({ public: [], conditional: [] });
    }
  });

  it('S3 as AWS answers: the public access block, a policy it neutralises, object lock, a public ACL', async () => {
    const locked = await inspectS3Bucket(
      s3Stub({
        [GetPublicAccessBlockCommand.name]: { PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true } },
        [GetBucketPolicyStatusCommand.name]: { PolicyStatus: { IsPublic: true } },
        [GetBucketPolicyCommand.name]: { Policy: JSON.stringify({ Statement: { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' } }) },
        [GetBucketAclCommand.name]: { Grants: [{ Grantee: { ID: 'owner' }, Permission: 'FULL_CONTROL' }] },
        [GetBucketVersioningCommand.name]: { Status: 'Enabled', MFADelete: 'Enabled' },
        [GetObjectLockConfigurationCommand.name]: { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } } },
      }),
      'b',
      'https://s3.example',
    );
    expect(verdicts(locked.findings)).toEqual({
      'public access': ['ok', 'not public: the bucket policy would let anyone read; the public access block restricts public policies (RestrictPublicBuckets)'],
      'public access block': ['ok', 'on (all four settings)'],
      versioning: ['ok', 'versioning on, MFA delete on'],
      'object lock': ['ok', 'object lock on: GOVERNANCE retention of 30 day(s) by default (gc deletes only versions past it)'],
    });

    const open = await inspectS3Bucket(
      s3Stub({
        [GetPublicAccessBlockCommand.name]: s3Error('NoSuchPublicAccessBlockConfiguration', 404),
        [GetBucketPolicyStatusCommand.name]: s3Error('NoSuchBucketPolicy', 404),
        [GetBucketPolicyCommand.name]: s3Error('NoSuchBucketPolicy', 404),
        [GetBucketAclCommand.name]: { Grants: [{ Grantee: { URI: 'http://acs.amazonaws.com/groups/global/AllUsers' }, Permission: 'READ' }] },
        [GetBucketVersioningCommand.name]: { Status: 'Suspended' },
        [GetObjectLockConfigurationCommand.name]: s3Error('AccessDenied', 403),
      }),
      'b',
      'https://s3.example',
    );
    expect(verdicts(open.findings)).toEqual({
      'public access': ['fail', 'bucket b is public: its ACL grants AllUsers READ'],
      'public access block': ['warn', 'none configured: a policy or ACL change could make the bucket public'],
      versioning: ['warn', 'versioning suspended: an object deleted or overwritten from now on cannot be recovered'],
      'object lock': ['unknown', 'could not be determined (AccessDenied (HTTP 403))'],
    });
  });

  it('GCS as Google answers: public access prevention, IAM allUsers, soft delete, retention; the clock from the Date header', async () => {
    const stub = (meta: object, bindings: object[] | Error): InspectableBucket => ({
      getMetadata: (async () => [meta, { headers: { date: 'Wed, 02 Dec 2026 05:23:01 GMT' } }]) as never,
      iam: { getPolicy: (async () => { if (bindings instanceof Error) throw bindings; return [{ bindings }]; }) as never },
    });
    const guarded = await inspectGcsBucket(
      stub({ iamConfiguration: { publicAccessPrevention: 'enforced', uniformBucketLevelAccess: { enabled: true } }, softDeletePolicy: { retentionDurationSeconds: '604800' } }, []),
      'g',
      'https://storage.googleapis.com',
    );
    expect(verdicts(guarded.findings)).toEqual({
      'public access': ['ok', 'not public: public access prevention enforced'],
      'uniform access': ['ok', 'on: access is by IAM only, no object ACLs'],
      versioning: ['warn', 'versioning off: a deleted or overwritten object cannot be recovered (soft delete keeps deleted objects 7 day(s); an overwrite is still lost)'],
      retention: ['ok', 'no retention policy (optional); soft delete keeps deleted objects 7 day(s)'],
    });
    expect(guarded.serverClock?.serverDate.toISOString()).toBe('2026-12-02T05:23:01.000Z');

    const exposed = await inspectGcsBucket(
      stub(
        { iamConfiguration: { publicAccessPrevention: 'inherited', uniformBucketLevelAccess: { enabled: false } }, versioning: { enabled: true }, retentionPolicy: { retentionPeriod: '2592000', isLocked: true } },
        [{ role: 'roles/storage.objectViewer', members: ['allUsers', 'user:a@example.com'] }],
      ),
      'g',
      'https://storage.googleapis.com',
    );
    expect(verdicts(exposed.findings)).toEqual({
      'public access': ['fail', 'bucket g is public: its IAM policy grants allUsers roles/storage.objectViewer'],
      'uniform access': ['warn', 'off: an object ACL can make a single object public'],
      versioning: ['ok', 'versioning on'],
      retention: ['ok', 'retention policy: objects kept 30 day(s), locked (gc cannot delete younger blobs)'],
    });
  });
});
