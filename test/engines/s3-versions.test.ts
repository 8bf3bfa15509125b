// The S3 engine in versions mode end to end, through the real `bak` CLI against a versioned MinIO bucket: a snapshot
// records key → versionId of the current versions and copies no data; after overwrites, deletes and additions,
// `restore --delete-extra` into the same prefix gives back exactly the snapshot's state (into every repository
// backend); verify checks the recorded versions; on a local repository, versioning off is a usage error, and gc with
// `deleteVersions` removes exactly the versions only forgotten snapshots referenced (and without it, none).
import { CopyObjectCommand, DeleteObjectCommand, PutBucketVersioningCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/repository/manifest.ts';
import { BACKENDS, makeLocation, minioClient, uniqueName, type TestLocation } from '../helpers/backends.ts';
import { runBak, writeConfig, type CliResult, show, json } from '../helpers/cli.ts';
import {
  awkwardObjects,
  awsEnv,
  bucketState,
  createBucket,
  deleteBucketCompletely,
  expectSameObjects,
  fillBucket,
  listKeys,
  listVersions,
  patternBytes,
  putFixtureObject,
  putLargeObject,
  s3Flags,
  startPrivateMinio,
  clientFor,
  type BucketState,
  type FixtureObject,
  type Minio,
  type VersionInfo,
  indexEntries,
  relative,
} from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

interface VersionEntry {
  key: string;
  versionId: string;
  size: number;
  etag: string;
  lastModified: string;
}

interface RestoreJson {
  snapshot: string;
  items: number;
  bytes: number;
  details: {
    copied: number;
    skipped: number;
    deleted: number;
    failed: Array<{ key: string; error: string }>;
    dryRun: boolean;
    planned?: { copy: string[]; delete: string[] };
  };
}

const versionKey = (v: { key: string; versionId: string }) => `${v.key} @ ${v.versionId}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(BACKENDS)('s3 engine, versions mode, versioned MinIO bucket into a %s repository', (backend) => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let config: string;
  const bucket = uniqueName('bak-s3ver');
  const other = uniqueName('bak-s3ver-dst');
  const PREFIX = 'live';
  const FOLDER = `${PREFIX}/`;
  /** A 300 MiB object rides along on one backend only (server-side copies, so the repository backend hardly matters). */
  const withLarge = backend === 'local';
  let before: BucketState;
  let current: VersionInfo[];
  let snap: Manifest;

  const bak = (args: string[]) => runBak(['--config', config, ...args], { env: { ...location.env, ...awsEnv(minio) } });
  const restore = (to: string, ...extra: string[]) => bak(['restore', snap.id, '--to', to, '--json', ...extra]);

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation(backend);
    config = await writeConfig({ repositories: { r: location.configEntry }, defaults: { repository: 'r' } });
    const init = await runBak(['--config', config, 'init'], { env: location.env });
    expect(init.code, show(init)).toBe(0);

    await createBucket(s3, bucket, { versioned: true });
    await createBucket(s3, other);
    await fillBucket(s3, bucket, PREFIX);
    // An older version under a key that is current too, and a key deleted before the snapshot (a delete marker).
    await putFixtureObject(s3, bucket, PREFIX, { key: 'plain.txt', body: Buffer.from('an older version, not the current one') });
    await putFixtureObject(s3, bucket, PREFIX, awkwardObjects().find((o) => o.key === 'plain.txt')!);
    await putFixtureObject(s3, bucket, PREFIX, { key: 'gone-before-snapshot', body: Buffer.from('deleted before the snapshot') });
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${FOLDER}gone-before-snapshot` }));
    await fillBucket(s3, bucket, '', [{ key: 'outside/keep', body: Buffer.from('outside the prefix') }]);
    if (withLarge) await putLargeObject(s3, bucket, `${FOLDER}big/300mib.bin`, 300 * 1024 * 1024);
    before = await bucketState(s3, bucket, PREFIX);
    current = (await listVersions(s3, bucket, FOLDER)).filter((v) => v.isLatest && !v.deleteMarker);
  }, 300_000);

  afterAll(async () => {
    for (const b of [bucket, other]) await deleteBucketCompletely(s3, b).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it('records key → versionId, size and ETag of every current version, copying no data; delete markers are absent', async () => {
    const r = await bak(['backup', `s3://${bucket}/${PREFIX}`, '--mode', 'versions', ...s3Flags(minio.endpoint), '--json']);
    expect(r.code, show(r)).toBe(0);
    snap = json<Manifest>(r);
    expect(snap.engine).toBe('s3');
    expect(snap.status).toBe('complete');
    expect(snap.externalData, 'versions mode references data outside the repository').toBe(true);
    const d = snap.engineDetails as any;
    expect(d.mode).toBe('versions');
    expect(d.bucket).toBe(bucket);
    expect(d.objects).toBe(before.size);
    expect(d.bytes).toBe([...before.values()].reduce((n, s) => n + s.size, 0));
    expect(d.downloaded.objects).toBe(0);
    expect(d.downloaded.bytes).toBe(0);

    const entries = await indexEntries<VersionEntry>(location, snap);
    const keys = entries.map((e) => e.key);
    expect(keys, 'sorted by key').toEqual([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(keys.map((k) => relative(FOLDER, k)).sort()).toEqual([...before.keys()].sort());
    const latest = new Map(current.map((v) => [relative(FOLDER, v.key), v]));
    for (const e of entries) {
      const key = relative(FOLDER, e.key);
      expect(e.versionId, key).toBe(latest.get(key)!.versionId);
      expect(e.size, key).toBe(before.get(key)!.size);
      expect(e.etag.replace(/"/g, ''), key).toBe(before.get(key)!.etag);
      expect(typeof e.lastModified, key).toBe('string');
    }

    const verify = await bak(['verify', snap.id]);
    expect(verify.code, show(verify)).toBe(0);
  });

  it('after overwrites, deletes and additions, restore --delete-extra into the same prefix gives back the snapshot state', async () => {
    const overwritten: FixtureObject[] = [
      { key: 'plain.txt', body: Buffer.from('overwritten after the snapshot'), contentType: 'text/x-other' },
      { key: 'meta/all-headers.txt.gz', body: Buffer.from('no longer gzip'), contentType: 'text/plain', cacheControl: 'no-store', metadata: { owner: 'someone-else' }, tags: { env: 'dev' } },
      { key: 'multipart/6mib.bin', body: patternBytes(1000, 'small now') },
      ...(withLarge ? [{ key: 'big/300mib.bin', body: Buffer.from('the 300 MiB object, overwritten by a small one') }] : []),
    ];
    // Not a key ending in "/": MinIO keeps no versions of those (they always have version id "null"; an overwrite
    // replaces it and a delete removes it for good), so no snapshot on MinIO can bring them back.
    const deleted = ['unicode/e\u0301', 'dots/.hidden', 'empty', 'specials/q?x=1&y#z'];
    const added = ['new/one', 'new/two/', 'unicode/ü-new'];
    for (const o of overwritten) await putFixtureObject(s3, bucket, PREFIX, o);
    for (const k of deleted) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${FOLDER}${k}` }));
    for (const k of added) await putFixtureObject(s3, bucket, PREFIX, { key: k, body: Buffer.from(`added ${k}`) });
    const outsideBefore = await bucketState(s3, bucket, 'outside');

    const dry = await restore(`s3://${bucket}/${PREFIX}`, '--delete-extra', '--dry-run');
    expect(dry.code, show(dry)).toBe(0);
    const plan = json<RestoreJson>(dry).details;
    expect(plan.dryRun).toBe(true);
    expect(plan.planned!.copy.map((k) => relative(FOLDER, k)).sort()).toEqual([...overwritten.map((o) => o.key), ...deleted].sort());
    expect(plan.planned!.delete.map((k) => relative(FOLDER, k)).sort()).toEqual([...added].sort());
    expect((await listKeys(s3, bucket, FOLDER)).map((o) => o.key)).toContain(`${FOLDER}new/one`);

    const r = await restore(`s3://${bucket}/${PREFIX}`, '--delete-extra');
    expect(r.code, show(r)).toBe(0);
    const report = json<RestoreJson>(r).details;
    expect(report.failed).toEqual([]);
    expect(report.copied).toBe(overwritten.length + deleted.length);
    expect(report.deleted).toBe(added.length);
    expect(report.skipped).toBe(before.size - overwritten.length - deleted.length);
    expectSameObjects(await bucketState(s3, bucket, PREFIX), before, 'bucket after restore --delete-extra');
    expectSameObjects(await bucketState(s3, bucket, 'outside'), outsideBefore, 'outside the prefix');
  }, 300_000);

  it('restores the recorded versions into another, unversioned bucket (server-side copy), headers, metadata and tags kept', async () => {
    const r = await restore(`s3://${other}/copy`);
    expect(r.code, show(r)).toBe(0);
    expect(json<RestoreJson>(r).details.copied).toBe(before.size);
    expectSameObjects(await bucketState(s3, other, 'copy'), before, 'other bucket');
  }, 300_000);

  it('a metadata-only change after the snapshot (new version, same size and ETag) is restored too', async () => {
    const key = `${FOLDER}meta/type-only.json`;
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: key,
        CopySource: `${bucket}/${encodeURIComponent(key)}`,
        MetadataDirective: 'REPLACE',
        ContentType: 'text/plain',
        Metadata: { changed: 'after the snapshot' },
      }),
    );
    const changed = await bucketState(s3, bucket, PREFIX);
    expect(changed.get('meta/type-only.json')!.etag, 'same ETag, so size + ETag cannot tell').toBe(before.get('meta/type-only.json')!.etag);
    const r = await restore(`s3://${bucket}/${PREFIX}`, '--delete-extra');
    expect(r.code, show(r)).toBe(0);
    expectSameObjects(await bucketState(s3, bucket, PREFIX), before, 'after restoring a metadata-only change');
  }, 300_000);

  it('verify fails (exit 3) once a recorded version is deleted, naming the key and the version', async () => {
    const victim = current.find((v) => v.key === `${FOLDER}plain.txt`)!;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: victim.key, VersionId: victim.versionId }));
    const r = await bak(['verify', snap.id]);
    expect(r.code, show(r)).toBe(3);
    expect(r.stdout + r.stderr).toContain('plain.txt');
    expect(r.stdout + r.stderr).toContain(victim.versionId);
    const j = await bak(['verify', snap.id, '--json']);
    expect(j.code, show(j)).toBe(3);
    expect(j.stdout).toContain(victim.versionId);
  });
});

describe('s3 engine, versions mode: versioning off, verify and gc with deleteVersions (local repository)', () => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let config: string;
  const unversioned = uniqueName('bak-s3nover');
  const suspended = uniqueName('bak-s3susp');
  const withDelete = uniqueName('bak-s3gc');
  const withoutDelete = uniqueName('bak-s3nogc');
  const env = () => ({ ...location.env, BAK_TEST_SRC_KEY: minio.accessKeyId, BAK_TEST_SRC_SECRET: minio.secretAccessKey });
  const bak = (args: string[]) => runBak(['--config', config, ...args], { env: { ...env(), ...awsEnv(minio) } });
  const put = async (b: string, key: string, body: string) =>
    (await s3.send(new PutObjectCommand({ Bucket: b, Key: key, Body: Buffer.from(body) }))).VersionId!;
  const del = async (b: string, key: string) => (await s3.send(new DeleteObjectCommand({ Bucket: b, Key: key }))).VersionId!;
  const snapshotsOf = async (job: string) => {
    const ls = await bak(['ls', '--job', job, '--json']);
    expect(ls.code, show(ls)).toBe(0);
    return json<{ snapshots: Array<{ id: string }> }>(ls).snapshots.map((s) => s.id);
  };
  /** A backup of a job, at least a second after the previous one, so snapshot ids and times order strictly. */
  const backupJob = async (job: string) => {
    await sleep(1100);
    const r = await bak(['backup', '--job', job, '--json']);
    expect(r.code, show(r)).toBe(0);
    return json<Manifest>(r);
  };

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation('local');
    const job = (b: string, deleteVersions: boolean | undefined) => ({
      engine: 's3',
      source: `s3://${b}`,
      options: {
        endpoint: minio.endpoint,
        region: minio.region,
        forcePathStyle: true,
        checksums: 'when-required',
        accessKeyId: { env: 'BAK_TEST_SRC_KEY' },
        secretAccessKey: { env: 'BAK_TEST_SRC_SECRET' },
        mode: 'versions',
        ...(deleteVersions === undefined ? {} : { deleteVersions }),
      },
    });
    config = await writeConfig({
      repositories: { r: location.configEntry },
      defaults: { repository: 'r' },
      jobs: { prune: job(withDelete, true), keep: job(withoutDelete, undefined) },
    });
    const init = await runBak(['--config', config, 'init'], { env: location.env });
    expect(init.code, show(init)).toBe(0);
    await createBucket(s3, unversioned);
    await createBucket(s3, suspended, { versioned: true });
    await s3.send(new PutBucketVersioningCommand({ Bucket: suspended, VersioningConfiguration: { Status: 'Suspended' } }));
    await createBucket(s3, withDelete, { versioned: true });
    await createBucket(s3, withoutDelete, { versioned: true });
    for (const b of [unversioned, suspended]) await put(b, 'k', 'data');
  });

  afterAll(async () => {
    for (const b of [unversioned, suspended, withDelete, withoutDelete]) await deleteBucketCompletely(s3, b).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it('versions mode on a bucket without versioning: exit 2, says versioning is off, no snapshot', async () => {
    const r = await bak(['backup', `s3://${unversioned}`, '--mode', 'versions', ...s3Flags(minio.endpoint)]);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toMatch(/versioning/i);
    expect(r.stderr).toMatch(/\boff\b|not enabled|disabled|never been enabled/i);
    expect(r.stderr).toContain(unversioned);
    const ls = await bak(['ls', '--json']);
    expect(json(ls).snapshots).toEqual([]);
  });

  it('versions mode on a bucket whose versioning is suspended: exit 2 as well (overwrites would destroy recorded versions)', async () => {
    const r = await bak(['backup', `s3://${suspended}`, '--mode', 'versions', ...s3Flags(minio.endpoint)]);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toMatch(/versioning/i);
    expect(r.stderr).toContain(suspended);
  });

  it('restores a versions-mode snapshot into a bucket on another endpoint (streamed, not server-side), headers, metadata and tags kept', async () => {
    const src = uniqueName('bak-s3xsrc');
    await createBucket(s3, src, { versioned: true });
    const privateMinio = await startPrivateMinio(minio);
    const remote = clientFor(minio, privateMinio.endpoint);
    try {
      await fillBucket(s3, src, 'p');
      const want = await bucketState(s3, src, 'p');
      const b = await bak(['backup', `s3://${src}/p`, '--mode', 'versions', ...s3Flags(minio.endpoint), '--json']);
      expect(b.code, show(b)).toBe(0);
      const id = json<Manifest>(b).id;
      const target = uniqueName('bak-s3xdst');
      await createBucket(remote, target);
      const r = await bak(['restore', id, '--to', `s3://${target}/q`, '--endpoint', privateMinio.endpoint, '--path-style', '--json']);
      expect(r.code, show(r)).toBe(0);
      expect(json<RestoreJson>(r).details.copied).toBe(want.size);
      expectSameObjects(await bucketState(remote, target, 'q'), want, 'bucket on the other endpoint');
    } finally {
      remote.destroy();
      await privateMinio.cleanup();
      await deleteBucketCompletely(s3, src).catch(() => undefined);
    }
  }, 180_000);

  it('gc with deleteVersions deletes exactly the versions only forgotten snapshots referenced, never a current one', async () => {
    const b = withDelete;
    const v: Record<string, string> = {};
    v.k1v1 = await put(b, 'k1', 'k1 v1');
    v.k2v1 = await put(b, 'k2', 'k2 v1');
    v.k3v1 = await put(b, 'k3', 'k3 v1');
    v.k5v1 = await put(b, 'k5', 'k5 v1, never changes');
    v.k6v1 = await put(b, 'k6', 'k6 v1, current again at gc time');
    const s1 = await backupJob('prune');

    v.k1v2a = await put(b, 'k1', 'k1 v2a, in no snapshot');
    v.k1v2 = await put(b, 'k1', 'k1 v2');
    v.m3 = await del(b, 'k3');
    v.m6 = await del(b, 'k6');
    const s2 = await backupJob('prune');

    v.k1v3 = await put(b, 'k1', 'k1 v3');
    v.k2v2 = await put(b, 'k2', 'k2 v2');
    const s3snap = await backupJob('prune');

    v.k1v4 = await put(b, 'k1', 'k1 v4, current, in no snapshot');
    v.k4v1 = await put(b, 'k4', 'k4 v1, in no snapshot');
    // Removing k6's delete marker makes k6 v1 (referenced only by s1) the current version again.
    await s3.send(new DeleteObjectCommand({ Bucket: b, Key: 'k6', VersionId: v.m6 }));

    // What each snapshot recorded.
    const recorded = async (m: Manifest) => (await indexEntries<VersionEntry>(location, m)).map((e) => `${e.key}=${e.versionId}`).sort();
    expect(await recorded(s1)).toEqual([`k1=${v.k1v1}`, `k2=${v.k2v1}`, `k3=${v.k3v1}`, `k5=${v.k5v1}`, `k6=${v.k6v1}`].sort());
    expect(await recorded(s2)).toEqual([`k1=${v.k1v2}`, `k2=${v.k2v1}`, `k5=${v.k5v1}`].sort());
    expect(await recorded(s3snap)).toEqual([`k1=${v.k1v3}`, `k2=${v.k2v2}`, `k5=${v.k5v1}`].sort());
    expect(await snapshotsOf('prune')).toEqual([s1.id, s2.id, s3snap.id]);

    const versionsBefore = (await listVersions(s3, b)).map(versionKey).sort();
    const dry = await bak(['gc', '--job', 'prune', '--keep-last', '1', '--grace-period', '0h', '--dry-run']);
    expect(dry.code, show(dry)).toBe(0);
    expect((await listVersions(s3, b)).map(versionKey).sort(), 'gc --dry-run deletes no version').toEqual(versionsBefore);
    expect(await snapshotsOf('prune')).toEqual([s1.id, s2.id, s3snap.id]);

    const gc = await bak(['gc', '--job', 'prune', '--keep-last', '1', '--grace-period', '0h']);
    expect(gc.code, show(gc)).toBe(0);
    expect(await snapshotsOf('prune')).toEqual([s3snap.id]);

    const expectedGone = [
      { key: 'k1', versionId: v.k1v1 },
      { key: 'k1', versionId: v.k1v2 },
      { key: 'k2', versionId: v.k2v1 },
      { key: 'k3', versionId: v.k3v1 },
    ].map(versionKey);
    const versionsAfter = (await listVersions(s3, b)).map(versionKey).sort();
    expect(versionsAfter).toEqual(versionsBefore.filter((k) => !expectedGone.includes(k)));
    // Spelled out: the current k6 v1, the never-recorded k1 v2a and k1 v4, k5 v1 (still referenced), k4 and the
    // delete marker of k3 all stay.
    for (const keep of [
      { key: 'k6', versionId: v.k6v1 },
      { key: 'k1', versionId: v.k1v2a },
      { key: 'k1', versionId: v.k1v4 },
      { key: 'k5', versionId: v.k5v1 },
      { key: 'k4', versionId: v.k4v1 },
      { key: 'k3', versionId: v.m3 },
    ]) {
      expect(versionsAfter).toContain(versionKey(keep));
    }

    const verify = await bak(['verify', s3snap.id]);
    expect(verify.code, show(verify)).toBe(0);
  });

  it('gc without deleteVersions forgets snapshots but deletes no version', async () => {
    const b = withoutDelete;
    await put(b, 'a', 'a v1');
    await put(b, 'b', 'b v1');
    const s1 = await backupJob('keep');
    await put(b, 'a', 'a v2');
    await del(b, 'b');
    const s2 = await backupJob('keep');
    expect(await snapshotsOf('keep')).toEqual([s1.id, s2.id]);
    const versionsBefore = (await listVersions(s3, b)).map(versionKey).sort();
    expect(versionsBefore).toHaveLength(4);
    const otherJob = await snapshotsOf('prune');

    const gc = await bak(['gc', '--job', 'keep', '--keep-last', '1', '--grace-period', '0h']);
    expect(gc.code, show(gc)).toBe(0);
    expect(await snapshotsOf('keep')).toEqual([s2.id]);
    expect((await listVersions(s3, b)).map(versionKey).sort()).toEqual(versionsBefore);
    // The other job's snapshots are untouched.
    expect(await snapshotsOf('prune')).toEqual(otherJob);
  });
});
