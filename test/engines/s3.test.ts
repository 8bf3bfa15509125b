// The S3 engine in copy mode end to end, through the real `bak` CLI against MinIO: a round trip of a prefix full of
// awkward keys, headers, user metadata and tags into every repository backend (local, MinIO, fake-gcs-server),
// compared object by object after restoring into a fresh bucket; an incremental second snapshot; include/exclude on
// backup and restore; restore --dry-run and --delete-extra. A 300 MiB object (streamed, peak RSS checked) rides along
// on the local backend only. Then, on a local repository, every bad input the issue names, each leaving no snapshot.
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentChecksum } from '../../src/repository/blobs.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { BACKENDS, makeLocation, minioClient, uniqueName, type BackendName, type TestLocation } from '../helpers/backends.ts';
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
  mapLimit,
  MINIO_REJECTED_KEYS,
  patternBytes,
  putFixtureObject,
  putLargeObject,
  s3Flags,
  startGetCountingProxy,
  startPrivateMinio,
  clientFor,
  type BucketState,
  type FixtureObject,
  type Minio,
  indexEntries,
  relative,
} from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

const MiB = 1024 * 1024;
const LARGE_BYTES = 300 * MiB;
/** The one backend whose round trip carries the 300 MiB object (keeps the other two fast). */
const LARGE_ON: BackendName = 'local';

/** A copy-mode index entry, as the contract describes it. */
interface CopyEntry {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  metadata: Record<string, string>;
  tags: Record<string, string> | Array<{ Key?: string; Value?: string; key?: string; value?: string }>;
  checksum: string;
  blobs: Array<{ id: string; size: number; stored: number }>;
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

/** Tags as a plain object, whichever shape the entry keeps them in. */
function tagObject(tags: CopyEntry['tags'] | undefined): Record<string, string> {
  if (!tags) return {};
  if (!Array.isArray(tags)) return tags;
  return Object.fromEntries(tags.map((t) => [t.Key ?? t.key ?? '', t.Value ?? t.value ?? '']));
}

/** Runs bak under GNU time to get its peak RSS (bytes). */
async function runBakMeasured(args: string[], env: Record<string, string>): Promise<CliResult & { maxRss: number }> {
  const result = await runBak(args, { env, rss: true });
  return { ...result, maxRss: result.maxRss ?? 0 };
}

/**
 * How much more a run with the 300 MiB object may peak than the same run without it. A streaming engine keeps a
 * window of chunks, parts and compression buffers in flight, and V8 lets dead Buffers pile up before a full GC:
 * measured +100 to +140 MiB here, and about the same for 100 MiB and 1 GiB objects (228 / 234 / 286 MiB peak).
 * Holding the object whole adds 300 MiB or more, which these bounds catch.
 */
const ALLOWED_GROWTH = 192 * MiB;
const RSS_CAP = 350 * MiB;

function expectStreamed(large: number, baseline: number, what: string): void {
  const label = `peak RSS of a ${what} with the 300 MiB object ${(large / MiB).toFixed(0)} MiB, without it ${(baseline / MiB).toFixed(0)} MiB`;
  console.log(`[s3 ${what}] ${label}`);
  expect(large, label).toBeLessThan(baseline + ALLOWED_GROWTH);
  expect(large, label).toBeLessThan(RSS_CAP);
}

/** The glob tree: keys relative to its prefix. */
const GLOB_OBJECTS: FixtureObject[] = ['a.txt', 'b.log', 'docs/c.txt', 'docs/deep/d.txt', 'docs/deep/e.log', 'img/f.png'].map((key) => ({
  key,
  body: Buffer.from(`content of ${key}\n`),
}));

describe.each(BACKENDS)('s3 engine, copy mode, MinIO bucket into a %s repository', (backend) => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let config: string;
  const source = uniqueName('bak-s3src');
  const targets: string[] = [];
  const PREFIX = 'data';
  const FOLDER = `${PREFIX}/`;
  const withLarge = backend === LARGE_ON;
  let before: BucketState;
  let first: Manifest;

  const env = () => ({ ...location.env, ...awsEnv(minio) });
  const bak = (args: string[]) => runBak(['--config', config, ...args], { env: env() });
  const backup = (uri: string, ...extra: string[]) => bak(['backup', uri, ...s3Flags(minio.endpoint), '--json', ...extra]);
  const restore = (id: string, to: string, ...extra: string[]) => bak(['restore', id, '--to', to, '--json', ...extra]);
  const newTarget = async () => {
    const bucket = uniqueName('bak-s3dst');
    await createBucket(s3, bucket);
    targets.push(bucket);
    return bucket;
  };

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation(backend);
    config = await writeConfig({ repositories: { r: location.configEntry }, defaults: { repository: 'r' } });
    const init = await runBak(['--config', config, 'init'], { env: location.env });
    expect(init.code, show(init)).toBe(0);

    await createBucket(s3, source);
    await fillBucket(s3, source, PREFIX);
    await fillBucket(s3, source, 'globs', GLOB_OBJECTS);
    // Neighbours of the prefix that a snapshot of s3://source/data must leave out.
    await fillBucket(s3, source, '', [
      { key: 'data-sibling/x', body: Buffer.from('sibling of the prefix folder') },
      { key: 'database.txt', body: Buffer.from('starts with the prefix string') },
      { key: 'other/y', body: Buffer.from('elsewhere') },
    ]);
    if (withLarge) await putLargeObject(s3, source, `${FOLDER}big/300mib.bin`, LARGE_BYTES);
    before = await bucketState(s3, source, PREFIX);
  }, 600_000);

  afterAll(async () => {
    for (const bucket of [source, ...targets]) await deleteBucketCompletely(s3, bucket).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it('MinIO refuses keys with // or a . / .. segment, so those cannot be covered on this server', async () => {
    for (const key of MINIO_REJECTED_KEYS) {
      await expect(s3.send(new PutObjectCommand({ Bucket: source, Key: `probe/${key}`, Body: Buffer.from('x') })), key).rejects.toThrow();
    }
  });

  it(
    'backs up every object of the prefix with key, size, ETag, headers, metadata, tags and checksum',
    async () => {
      const args = ['backup', `s3://${source}/${PREFIX}`, ...s3Flags(minio.endpoint), '--json'];
      const result: CliResult & { maxRss?: number } = withLarge ? await runBakMeasured(['--config', config, ...args], env()) : await bak(args);
      expect(result.code, show(result)).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(minio.secretAccessKey);
      first = json<Manifest>(result);
      expect(first.engine).toBe('s3');
      expect(first.status).toBe('complete');
      expect(first.source).toBe(`s3://${source}/${PREFIX}`);
      expect(first.indexes.map((i) => i.name)).toEqual(['objects']);
      expect(first.indexes[0]!.count).toBe(before.size);

      const entries = await indexEntries<CopyEntry>(location, first);
      const keys = entries.map((e) => e.key);
      expect(keys, 'entries sorted by key').toEqual([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      const rel = entries.map((e) => relative(FOLDER, e.key));
      expect(rel.sort()).toEqual([...before.keys()].sort());
      for (const entry of entries) {
        const key = relative(FOLDER, entry.key);
        const want = before.get(key)!;
        const label = `entry ${JSON.stringify(key)}`;
        expect(entry.size, label).toBe(want.size);
        expect(entry.etag.replace(/"/g, ''), label).toBe(want.etag);
        expect(typeof entry.lastModified, label).toBe('string');
        // One blob: the content's SHA-256; more: the SHA-256 of the blob names (the content is compared after restore).
        expect(entry.checksum, label).toBe(entry.blobs.length > 1 ? contentChecksum(entry.blobs) : `sha256:${want.sha256}`);
        expect(entry.contentType ?? undefined, label).toBe(want.contentType);
        expect(entry.contentEncoding ?? undefined, label).toBe(want.contentEncoding);
        expect(entry.cacheControl ?? undefined, label).toBe(want.cacheControl);
        expect(entry.contentDisposition ?? undefined, label).toBe(want.contentDisposition);
        expect(entry.contentLanguage ?? undefined, label).toBe(want.contentLanguage);
        expect(entry.metadata ?? {}, label).toEqual(want.metadata);
        expect(tagObject(entry.tags), label).toEqual(want.tags);
        expect(entry.blobs.reduce((n, b) => n + b.size, 0), `${label}: blob sizes add up to the object`).toBe(want.size);
      }

      const bytes = [...before.values()].reduce((n, s) => n + s.size, 0);
      const d = first.engineDetails as any;
      expect(d.mode).toBe('copy');
      expect(d.bucket).toBe(source);
      expect(String(d.prefix).replace(/\/$/, '')).toBe(PREFIX);
      expect(d.endpoint).toBe(minio.endpoint);
      expect(d.forcePathStyle).toBe(true);
      expect(d.objects).toBe(before.size);
      expect(d.bytes).toBe(bytes);
      expect(d.downloaded.objects).toBe(before.size);
      expect(d.downloaded.bytes).toBe(bytes);
      expect(d.downloaded.getRequests).toBeGreaterThanOrEqual(before.size);
      const verify = await bak(['verify', first.id, '--level', 'data']);
      expect(verify.code, show(verify)).toBe(0);

      if (withLarge) {
        // Streamed, not buffered: the same backup without the large object peaks about as high. Into a repository of
        // its own, so it does not become the parent of the next snapshot here.
        const side = await makeLocation('local');
        try {
          const sideArgs = ['--config', config, '--repo', side.settings.url];
          expect((await runBak([...sideArgs, 'init'])).code).toBe(0);
          const baseline = await runBakMeasured([...sideArgs, ...args, '--exclude', 'big/**'], env());
          expect(baseline.code, show(baseline)).toBe(0);
          expectStreamed(result.maxRss ?? 0, baseline.maxRss, 'backup');
        } finally {
          await side.cleanup();
        }
      }

    },
    600_000,
  );

  it(
    'restores into a fresh bucket: every object equal, headers, metadata and tags included',
    async () => {
      const target = await newTarget();
      const args = ['restore', first.id, '--to', `s3://${target}`, '--json'];
      const result: CliResult & { maxRss?: number } = withLarge ? await runBakMeasured(['--config', config, ...args], env()) : await bak(args);
      expect(result.code, show(result)).toBe(0);
      const report = json<RestoreJson>(result);
      expect(report.details.failed).toEqual([]);
      expect(report.details.copied).toBe(before.size);
      expect(report.details.skipped).toBe(0);
      expect(report.details.deleted).toBe(0);
      expect(report.details.dryRun).toBe(false);
      expectSameObjects(await bucketState(s3, target), before, 'restored bucket');
      if (withLarge) {
        const small = await newTarget();
        const baseline = await runBakMeasured(['--config', config, 'restore', first.id, '--to', `s3://${small}`, '--json', '--exclude', 'big/**'], env());
        expect(baseline.code, show(baseline)).toBe(0);
        expectStreamed(result.maxRss ?? 0, baseline.maxRss, 'restore');
      }

      // Again into the same bucket: what is there and identical is skipped (a multipart object may be re-copied when
      // bak chose other part sizes than the original writer, since its ETag then differs).
      const again = await restore(first.id, `s3://${target}`);
      expect(again.code, show(again)).toBe(0);
      const multipart = [...before.values()].filter((s) => s.etag.includes('-')).length;
      const r2 = json<RestoreJson>(again);
      expect(r2.details.copied).toBeLessThanOrEqual(multipart);
      expect(r2.details.skipped + r2.details.copied).toBe(before.size);
    },
    600_000,
  );

  it('a second snapshot downloads only new and changed objects, and restores the new state exactly', async () => {
    const changed: FixtureObject[] = [
      // Same size, other content: only the ETag tells.
      { key: 'plain.txt', body: Buffer.from('HELLO, BUCKET\n') },
      { key: 'nested/deep/a/b/c/d/e/f.bin', body: patternBytes(50 * 1024 + 3, 'nested-v2') },
      { key: 'new/added ü.txt', body: Buffer.from('added after the first snapshot'), contentType: 'text/plain', tags: { fresh: 'yes' } },
    ];
    expect(before.get('plain.txt')!.size).toBe(changed[0]!.body.length);
    for (const obj of changed) await putFixtureObject(s3, source, PREFIX, obj);
    await s3.send(new DeleteObjectCommand({ Bucket: source, Key: `${FOLDER}dots/.hidden` }));
    const now = await bucketState(s3, source, PREFIX);

    const result = await backup(`s3://${source}/${PREFIX}`);
    expect(result.code, show(result)).toBe(0);
    const second = json<Manifest>(result);
    expect(second.parent).toBe(first.id);
    const d = second.engineDetails as any;
    expect(d.objects).toBe(now.size);
    expect(d.downloaded.objects, 'objects downloaded again').toBe(changed.length);
    expect(d.downloaded.bytes).toBe(changed.reduce((n, o) => n + o.body.length, 0));
    // One GET per changed object, plus at most one more each (tagging) and a listing page or two.
    expect(d.downloaded.getRequests).toBeGreaterThanOrEqual(changed.length);
    expect(d.downloaded.getRequests).toBeLessThanOrEqual(changed.length * 2 + 4);

    const entries = await indexEntries<CopyEntry>(location, second);
    expect(entries.map((e) => relative(FOLDER, e.key)).sort()).toEqual([...now.keys()].sort());
    const firstEntries = new Map((await indexEntries<CopyEntry>(location, first)).map((e) => [relative(FOLDER, e.key), e]));
    for (const e of entries) {
      const key = relative(FOLDER, e.key);
      if (changed.some((c) => c.key === key)) continue;
      expect(e.checksum, `unchanged ${key}`).toBe(firstEntries.get(key)!.checksum);
      expect(e.blobs, `unchanged ${key}`).toEqual(firstEntries.get(key)!.blobs);
    }

    const target = await newTarget();
    const restored = await restore(second.id, `s3://${target}/again`);
    expect(restored.code, show(restored)).toBe(0);
    expect(json<RestoreJson>(restored).details.failed).toEqual([]);
    expectSameObjects(await bucketState(s3, target, 'again'), now, 'restore of the incremental snapshot');
  }, 600_000);

  it('--include/--exclude on backup select keys relative to the prefix; * stays within a segment, ** does not', async () => {
    const keysOf = async (r: CliResult) => {
      expect(r.code, show(r)).toBe(0);
      const m = json<Manifest>(r);
      return (await indexEntries<CopyEntry>(location, m)).map((e) => relative('globs/', e.key)).sort();
    };
    const uri = `s3://${source}/globs`;
    expect(await keysOf(await backup(uri, '--include', '*.txt'))).toEqual(['a.txt']);
    expect(await keysOf(await backup(uri, '--include', 'docs/*'))).toEqual(['docs/c.txt']);
    expect(await keysOf(await backup(uri, '--include', 'docs/**', '--exclude', 'docs/deep/*.log'))).toEqual(['docs/c.txt', 'docs/deep/d.txt']);
    expect(await keysOf(await backup(uri, '--exclude', '*.log'))).toEqual(['a.txt', 'docs/c.txt', 'docs/deep/d.txt', 'docs/deep/e.log', 'img/f.png']);
    expect(await keysOf(await backup(uri, '--include', '*.txt', '--include', 'img/**'))).toEqual(['a.txt', 'img/f.png']);
  });

  describe('restore of part of a snapshot, --dry-run and --delete-extra', () => {
    let globs: Manifest;
    let globsState: BucketState;

    beforeAll(async () => {
      const r = await backup(`s3://${source}/globs`);
      expect(r.code, show(r)).toBe(0);
      globs = json<Manifest>(r);
      globsState = await bucketState(s3, source, 'globs');
    });

    it('--include/--exclude on restore copy only the matching keys', async () => {
      const target = await newTarget();
      const r = await restore(globs.id, `s3://${target}`, '--include', 'docs/**', '--exclude', '**/*.log');
      expect(r.code, show(r)).toBe(0);
      expect(json<RestoreJson>(r).details.copied).toBe(2);
      expect((await listKeys(s3, target)).map((o) => o.key).sort()).toEqual(['docs/c.txt', 'docs/deep/d.txt']);

      const top = await newTarget();
      const r2 = await restore(globs.id, `s3://${top}/p`, '--include', '*');
      expect(r2.code, show(r2)).toBe(0);
      expect((await listKeys(s3, top)).map((o) => o.key).sort()).toEqual(['p/a.txt', 'p/b.log']);
    });

    it('--dry-run lists what would be copied and deleted and changes nothing; then restore and --delete-extra do it', async () => {
      const target = await newTarget();
      const folder = 'restored/';
      await fillBucket(s3, target, '', [
        { key: `${folder}a.txt`, body: Buffer.from('content of a.txt\n') }, // identical: skipped
        { key: `${folder}b.log`, body: Buffer.from('stale content\n') }, // differs: copied
        { key: `${folder}extra/file`, body: Buffer.from('not in the snapshot') },
        { key: `${folder}extra/é ü/ x/`, body: Buffer.alloc(0) },
        { key: 'outside/keep', body: Buffer.from('outside the target prefix') },
        { key: 'restored-sibling/keep', body: Buffer.from('shares the prefix string, not the folder') },
      ]);
      const untouched = await bucketState(s3, target);
      const toCopy = ['b.log', 'docs/c.txt', 'docs/deep/d.txt', 'docs/deep/e.log', 'img/f.png'];
      const extra = ['extra/file', 'extra/é ü/ x/'];

      const dry = await restore(globs.id, `s3://${target}/restored`, '--delete-extra', '--dry-run');
      expect(dry.code, show(dry)).toBe(0);
      const plan = json<RestoreJson>(dry);
      expect(plan.details.dryRun).toBe(true);
      expect(plan.details.planned, 'planned').toBeDefined();
      expect(plan.details.planned!.copy.map((k) => relative(folder, k)).sort()).toEqual(toCopy);
      expect(plan.details.planned!.delete.map((k) => relative(folder, k)).sort()).toEqual(extra);
      expectSameObjects(await bucketState(s3, target), untouched, 'after --dry-run');

      const plain = await restore(globs.id, `s3://${target}/restored`);
      expect(plain.code, show(plain)).toBe(0);
      const r1 = json<RestoreJson>(plain).details;
      expect([r1.copied, r1.skipped, r1.deleted, r1.failed]).toEqual([toCopy.length, 1, 0, []]);
      const kept = await listKeys(s3, target);
      for (const k of extra) expect(kept.map((o) => o.key), 'without --delete-extra extras stay').toContain(`${folder}${k}`);

      const exact = await restore(globs.id, `s3://${target}/restored`, '--delete-extra');
      expect(exact.code, show(exact)).toBe(0);
      const r2 = json<RestoreJson>(exact).details;
      expect([r2.copied, r2.skipped, r2.deleted, r2.failed]).toEqual([0, globsState.size, extra.length, []]);
      expectSameObjects(await bucketState(s3, target, 'restored'), globsState, 'target after --delete-extra');
      const outside = await listKeys(s3, target);
      expect(outside.map((o) => o.key).filter((k) => !k.startsWith(folder)).sort()).toEqual(['outside/keep', 'restored-sibling/keep']);
    });
  });

  it('an object with the same content but other headers, metadata or tags is not "identical": restore rewrites it', async () => {
    const r0 = await backup(`s3://${source}/globs`);
    expect(r0.code, show(r0)).toBe(0);
    const globs = json<Manifest>(r0);
    const want = await bucketState(s3, source, 'globs');
    const target = await newTarget();
    await fillBucket(s3, target, '', [
      { key: 'a.txt', body: Buffer.from('content of a.txt\n'), contentType: 'text/html', metadata: { stale: 'yes' }, tags: { stale: 'tag' } },
    ]);
    const got0 = await bucketState(s3, target);
    expect(got0.get('a.txt')!.etag, 'same content, same ETag').toBe(want.get('a.txt')!.etag);
    const r = await restore(globs.id, `s3://${target}`, '--include', 'a.txt');
    expect(r.code, show(r)).toBe(0);
    const got = await bucketState(s3, target);
    expect(got.get('a.txt'), 'a.txt after restore').toEqual(want.get('a.txt'));
  });

  it('lists the snapshots it made, all complete', async () => {
    const ls = await bak(['ls', '--json']);
    expect(ls.code, show(ls)).toBe(0);
    const snaps = json<{ snapshots: Array<{ id: string; engine: string; status: string }> }>(ls).snapshots;
    expect(snaps.length).toBeGreaterThanOrEqual(2);
    expect(snaps.every((s) => s.engine === 's3' && s.status === 'complete')).toBe(true);
  });
});

describe('s3 engine, bad input (local repository): failed backups leave no snapshot', () => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let config: string;
  const source = uniqueName('bak-s3bad');
  const SECRET_REF_ENV = { BAK_TEST_SRC_KEY: '', BAK_TEST_SRC_SECRET: '' };

  const snapshots = async () => {
    const ls = await runBak(['--config', config, 'ls', '--json'], { env: location.env });
    expect(ls.code, show(ls)).toBe(0);
    return json<{ snapshots: Array<{ id: string; status: string }> }>(ls).snapshots;
  };

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation('local');
    SECRET_REF_ENV.BAK_TEST_SRC_KEY = minio.accessKeyId;
    SECRET_REF_ENV.BAK_TEST_SRC_SECRET = minio.secretAccessKey;
    const job = (secret: string) => ({
      engine: 's3',
      source: `s3://${source}`,
      options: {
        endpoint: minio.endpoint,
        region: minio.region,
        forcePathStyle: true,
        checksums: 'when-required',
        accessKeyId: { env: 'BAK_TEST_SRC_KEY' },
        secretAccessKey: { env: secret },
      },
    });
    config = await writeConfig({
      repositories: { r: location.configEntry },
      defaults: { repository: 'r' },
      jobs: { good: job('BAK_TEST_SRC_SECRET'), denied: job('BAK_TEST_WRONG_SECRET') },
    });
    const init = await runBak(['--config', config, 'init'], { env: location.env });
    expect(init.code, show(init)).toBe(0);
    await createBucket(s3, source);
    await fillBucket(s3, source, '', awkwardObjects().slice(0, 5));
  });

  afterAll(async () => {
    await deleteBucketCompletely(s3, source).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it('a missing bucket: exit 1, the error names the bucket', async () => {
    const missing = uniqueName('bak-no-such-bucket');
    const r = await runBak(['--config', config, 'backup', `s3://${missing}/x`, ...s3Flags(minio.endpoint)], { env: awsEnv(minio) });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain(missing);
    expect(await snapshots()).toEqual([]);
  });

  it('a wrong secret (AWS chain): exit 1 "access denied", the secret never printed', async () => {
    const wrong = 'definitely-not-the-secret-4711';
    const r = await runBak(['--config', config, 'backup', `s3://${source}`, ...s3Flags(minio.endpoint)], { env: awsEnv(minio, wrong) });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr.toLowerCase()).toContain('access denied');
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(await snapshots()).toEqual([]);
  });

  it('no credentials anywhere: exit 1, saying none were found and where bak looked', async () => {
    const none = { ...awsEnv(minio), AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_EC2_METADATA_DISABLED: 'true' };
    const r = await runBak(['--config', config, 'backup', `s3://${source}`, ...s3Flags(minio.endpoint)], { env: none });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('no AWS credentials were found');
    expect(r.stderr).toContain('AWS_ACCESS_KEY_ID');
    expect(r.stderr).toContain('/nonexistent/aws-credentials');
    expect(r.stderr).not.toContain('CredentialsProviderError');
    expect(await snapshots()).toEqual([]);
  }, 60_000);

  it('a wrong secret in the job options wins over a good AWS chain: exit 1 "access denied"', async () => {
    const wrong = 'wrong-job-secret-0815';
    const r = await runBak(['--config', config, 'backup', '--job', 'denied'], {
      env: { ...SECRET_REF_ENV, BAK_TEST_WRONG_SECRET: wrong, ...awsEnv(minio) },
    });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr.toLowerCase()).toContain('access denied');
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(await snapshots()).toEqual([]);
  });

  it('restore into a missing bucket: exit 1 naming it', async () => {
    const good = await runBak(['--config', config, 'backup', '--job', 'good', '--json'], { env: { ...SECRET_REF_ENV } });
    expect(good.code, show(good)).toBe(0);
    const id = json<Manifest>(good).id;
    const missing = uniqueName('bak-no-such-target');
    const r = await runBak(['--config', config, 'restore', id, '--to', `s3://${missing}`], { env: awsEnv(minio) });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain(missing);
    // The job's snapshot is the only one.
    expect((await snapshots()).map((s) => s.id)).toEqual([id]);
  });

  it(
    'the endpoint goes down in the middle of a snapshot: exit 1, a clear error, no new snapshot, the repository still usable',
    async () => {
      const privateMinio = await startPrivateMinio(minio);
      const bucket = uniqueName('bak-s3down');
      const client = clientFor(minio, privateMinio.endpoint);
      let proxy: Awaited<ReturnType<typeof startGetCountingProxy>> | undefined;
      try {
        await createBucket(client, bucket);
        await mapLimit(
          Array.from({ length: 400 }, (_, i) => i),
          16,
          (i) => client.send(new PutObjectCommand({ Bucket: bucket, Key: `obj/${String(i).padStart(4, '0')}`, Body: patternBytes(8 * 1024 + i * 37, `o${i}`) })),
        );
        proxy = await startGetCountingProxy(privateMinio.port, bucket);
        const before = (await snapshots()).map((s) => s.id);
        const running = runBak(['--config', config, 'backup', `s3://${bucket}`, ...s3Flags(proxy.endpoint)], { env: awsEnv(minio) });
        await proxy.waitForGets(5);
        await privateMinio.kill();
        await proxy.close();
        const gotGets = proxy.gets();
        const r = await running;
        expect(gotGets, 'killed after the first GETs, well before the 400th').toBeLessThan(400);
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr, show(r)).toMatch(/unreachable|ECONNREFUSED|ECONNRESET|socket hang up|connection/i);
        expect(r.stderr.includes(new URL(proxy.endpoint).host) || r.stderr.includes(bucket), `the error names the endpoint or the bucket\n${show(r)}`).toBe(true);
        expect((await snapshots()).map((s) => s.id)).toEqual(before);

        // The failed backup left no lock behind: the next backup of a reachable bucket works.
        const next = await runBak(['--config', config, 'backup', '--job', 'good', '--json'], { env: { ...SECRET_REF_ENV } });
        expect(next.code, show(next)).toBe(0);
      } finally {
        await proxy?.close().catch(() => undefined);
        client.destroy();
        await privateMinio.cleanup();
      }
    },
    180_000,
  );
});
