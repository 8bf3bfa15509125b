// `bak stats` through the real CLI, on a local-folder and a MinIO repository: per-source and repository figures
// checked against what the test itself wrote (the objects' sizes, the bytes under blobs/ measured with its own
// listing after every backup), growth windows against snapshots made 40 and 20 days ago (the repository's writer
// takes the start time, which the manifest records), unreadable manifests counted not hidden, --source narrowing
// the sources only, a --source that matches nothing (exit 2), and the --json shape.
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/cli/output.ts';
import type { SourceStats, StatsReport } from '../../src/operations/stats.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { makeLocation, minioClient, uniqueName, type BackendName, type TestLocation } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

const DAY = 86_400_000;

/** `size` bytes of random hex digits: compresses about 2:1, and no two objects share a chunk by chance. */
const text = (size: number) => Buffer.from(randomBytes(Math.ceil(size / 2)).toString('hex').slice(0, size));

describe.each<BackendName>(['local', 'minio'])('bak stats, repository on %s', (backend) => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let store: ObjectStore;
  let configFile: string;
  const bucket = uniqueName('bak-stats');
  const bak = (args: string[]) => runBak(['--config', configFile, '--repo', 'test', ...args], { env: { ...location.env, ...awsEnv(minio) } });

  // The source bucket: 12 objects of text, and 2 identical ones, so dedup has something within one snapshot too.
  const objects = new Map<string, Buffer>(Array.from({ length: 12 }, (_, i) => [`k/${String(i).padStart(2, '0')}`, text(3_000 + i * 1_500)]));
  const twin = text(20_000);
  objects.set('dup/a', twin);
  objects.set('dup/b', twin);
  const changed = text(9_000);
  const sizeBefore = [...objects.values()].reduce((s, b) => s + b.length, 0);
  const sizeAfter = sizeBefore - objects.get('k/03')!.length + changed.length;
  // The two aged snapshots' content: random, so it neither compresses nor dedups.
  const aged = [
    { daysAgo: 40, content: randomBytes(50_000) },
    { daysAgo: 20, content: randomBytes(30_000) },
  ];
  const agedSource = `dir:///srv/aged-${randomBytes(4).toString('hex')}`;

  /** Bytes and objects under the repository's blobs/, by the test's own listing (the file system, or the S3 API). */
  async function blobs(): Promise<{ bytes: number; objects: number }> {
    let bytes = 0;
    let count = 0;
    if (backend === 'local') {
      const root = path.join(fileURLToPath(location.settings.url), 'blobs');
      for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
        if (!entry.isFile()) continue;
        bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
        count++;
      }
    } else {
      const [, b, prefix] = /^s3:\/\/([^/]+)\/(.*)$/.exec(location.settings.url)!;
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: b, Prefix: `${prefix}/blobs/`, ContinuationToken: token }));
        for (const o of page.Contents ?? []) {
          bytes += o.Size ?? 0;
          count++;
        }
        token = page.NextContinuationToken;
      } while (token);
    }
    return { bytes, objects: count };
  }

  const backupBucket = async () => {
    const r = await bak(['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
    expect(r.code, show(r)).toBe(0);
  };

  // Blob bytes after each step: [after aged 1, after aged 2, after backup 1, after backup 2].
  const after: number[] = [];
  let blobObjects = 0;
  let agedKey: string;

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation(backend);
    configFile = await writeConfig({ repositories: { test: location.configEntry } });
    const init = await bak(['init']);
    expect(init.code, show(init)).toBe(0);
    store = await openStore(location.settings);
    const repo = await Repository.open(store);
    expect((await blobs()).bytes).toBe(0);

    for (const a of aged) {
      const writer = await repo.beginSnapshot({ engine: 'fixture-dir', source: agedSource, now: new Date(Date.now() - a.daysAgo * DAY) });
      await writer.addItem({ name: 'old.bin', kind: 'file' }, [a.content]);
      agedKey = (await writer.commit()).sourceKey;
      after.push((await blobs()).bytes);
    }

    await createBucket(s3, bucket);
    for (const [key, body] of objects) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    await backupBucket();
    after.push((await blobs()).bytes);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k/03', Body: changed }));
    await backupBucket();
    const last = await blobs();
    after.push(last.bytes);
    blobObjects = last.objects;
  }, 120_000);

  afterAll(async () => {
    await store?.close?.();
    await location?.cleanup();
    if (s3) await deleteBucketCompletely(s3, bucket).catch(() => undefined);
    s3?.destroy();
  });

  const s3Row = (r: StatsReport) => r.sources.find((s) => s.source === `s3://${bucket}`)!;
  const agedRow = (r: StatsReport) => r.sources.find((s) => s.sourceKey === agedKey)!;

  it('per source: snapshots, logical, stored, saved and growth as the test made them; totals match its own blob listing', async () => {
    const before = Date.now();
    const r = await bak(['stats', '--json']);
    expect(r.code, show(r)).toBe(0);
    const report = json<StatsReport>(r);
    expect(Date.parse(report.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(report.filter).toBeNull();
    expect(report.sources).toHaveLength(2);

    const [a1, a2, b1, b2] = after as [number, number, number, number];
    const firstNew = b1 - a2;
    const secondNew = b2 - b1;
    // The second backup of a bucket with one object changed adds far less than the first.
    expect(secondNew).toBeGreaterThan(0);
    expect(secondNew).toBeLessThan(firstNew / 2);

    const bucketStats = s3Row(report);
    expect(bucketStats).toMatchObject({
      engine: 's3',
      snapshots: { total: 2, complete: 2, partial: 0, failed: 0, unreadable: 0 },
      logicalBytes: sizeBefore + sizeAfter,
      storedBytes: b2 - a2,
      savedBytes: sizeBefore + sizeAfter - (b2 - a2),
      growth: { last7Days: { snapshots: 2, bytes: b2 - a2 }, last30Days: { snapshots: 2, bytes: b2 - a2 } },
    });
    // Text compresses, and the second snapshot dedups against the first: most of the logical bytes were never stored.
    expect(bucketStats.savedRatio).toBeCloseTo((sizeBefore + sizeAfter - (b2 - a2)) / (sizeBefore + sizeAfter), 10);
    expect(bucketStats.savedRatio!).toBeGreaterThan(0.5);

    const agedLogical = aged[0]!.content.length + aged[1]!.content.length;
    const agedStats = agedRow(report);
    expect(agedStats).toMatchObject({
      engine: 'fixture-dir',
      source: agedSource,
      snapshots: { total: 2, complete: 2 },
      logicalBytes: agedLogical,
      storedBytes: a2,
      // Only the 20-day-old snapshot is within 30 days; neither is within 7.
      growth: { last7Days: { snapshots: 0, bytes: 0 }, last30Days: { snapshots: 1, bytes: a2 - a1 } },
    });
    // Random bytes do not shrink: the stored copy is a little larger (blob tag, index), so "saved" is negative.
    expect(agedStats.savedBytes).toBeLessThanOrEqual(0);
    expect(Date.parse(agedStats.oldest!)).toBeLessThan(Date.now() - 39 * DAY);
    expect(Date.parse(agedStats.newest!)).toBeLessThan(Date.now() - 19 * DAY);

    expect(report.totals).toEqual({
      sources: 2,
      snapshots: 4,
      unreadable: 0,
      logicalBytes: sizeBefore + sizeAfter + agedLogical,
      storedBytes: b2,
      blobs: { objects: blobObjects, bytes: b2 },
    });
  });

  it('prints a table per source and the repository totals for people', async () => {
    const r = await bak(['stats']);
    expect(r.code, show(r)).toBe(0);
    const [, a2, , b2] = after as [number, number, number, number];
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^ENGINE\s+SNAPSHOTS\s+LOGICAL\s+STORED\s+SAVED\s+LAST 7 DAYS\s+LAST 30 DAYS\s+SOURCE$/);
    const bucketLine = lines.find((l) => l.endsWith(`s3://${bucket}`))!;
    expect(bucketLine.split(/\s{2,}/)).toEqual([
      's3',
      '2',
      formatBytes(sizeBefore + sizeAfter),
      formatBytes(b2 - a2),
      expect.stringMatching(/^\S+ \S+ \(\d+\.\d%\)$/),
      `+${formatBytes(b2 - a2)} (2)`,
      `+${formatBytes(b2 - a2)} (2)`,
      `s3://${bucket}`,
    ]);
    const agedLine = lines.find((l) => l.endsWith(agedSource))!;
    expect(agedLine.split(/\s{2,}/).slice(5, 7)).toEqual(['-', `+${formatBytes(after[1]! - after[0]!)} (1)`]);
    expect(r.stdout).toContain(`repository  ${location.backend === 'local' ? location.settings.url : 's3://'}`);
    expect(r.stdout).toMatch(/^sources {5}2$/m);
    expect(r.stdout).toMatch(/^snapshots {3}4$/m);
    expect(r.stdout).toContain(`blobs       ${formatBytes(b2)} in ${blobObjects} object(s) under blobs/`);
  });

  it('--source narrows the sources (by URI, part of it, or source key), never the repository totals', async () => {
    for (const filter of [`s3://${bucket}`, bucket.slice(-10), s3Row(json<StatsReport>(await bak(['stats', '--json']))).sourceKey]) {
      const report = json<StatsReport>(await bak(['stats', '--source', filter, '--json']));
      expect(report.filter).toBe(filter);
      expect(report.sources.map((s) => s.source)).toEqual([`s3://${bucket}`]);
      expect(report.totals.snapshots).toBe(4);
    }
    const byKey = json<StatsReport>(await bak(['stats', '--source', agedKey, '--json']));
    expect(byKey.sources.map((s) => s.sourceKey)).toEqual([agedKey]);
  });

  it('a --source that matches nothing: a clear message, exit 2, nothing on stdout', async () => {
    const r = await bak(['stats', '--source', 'no-such-source-anywhere']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('no snapshot of a source matching "no-such-source-anywhere"');
    expect(r.stdout).toBe('');
    const j = await bak(['stats', '--source', 'no-such-source-anywhere', '--json']);
    expect(j.code).toBe(2);
    expect(j.stdout).toBe('');
  });

  it('--json shape: exactly these fields, numbers where figures are', async () => {
    const report = json<StatsReport>(await bak(['stats', '--json']));
    expect(Object.keys(report).sort()).toEqual(['at', 'filter', 'repository', 'sources', 'totals']);
    expect(Object.keys(report.totals).sort()).toEqual(['blobs', 'logicalBytes', 'snapshots', 'sources', 'storedBytes', 'unreadable']);
    const keys: Array<keyof SourceStats> = ['engine', 'growth', 'logicalBytes', 'newest', 'oldest', 'savedBytes', 'savedRatio', 'snapshots', 'source', 'sourceKey', 'storedBytes'];
    for (const s of report.sources) {
      expect(Object.keys(s).sort()).toEqual(keys);
      expect(Object.keys(s.snapshots).sort()).toEqual(['complete', 'failed', 'partial', 'total', 'unreadable']);
      expect(Object.keys(s.growth).sort()).toEqual(['last30Days', 'last7Days']);
      for (const n of [s.logicalBytes, s.storedBytes, s.savedBytes, s.growth.last7Days.bytes, s.growth.last30Days.snapshots]) expect(Number.isInteger(n)).toBe(true);
      expect(typeof s.savedRatio).toBe('number');
    }
  });

  // Last: it adds an unreadable manifest to the repository.
  it('counts an unreadable manifest with its source and warns; the readable ones are still summed', async () => {
    const bucketKey = s3Row(json<StatsReport>(await bak(['stats', '--json']))).sourceKey;
    await store.put(`snapshots/${bucketKey}/2026-01-01T00-00-00Z-abcdef.json`, Buffer.from('{"formatVersion": 1, "trunc'));
    const r = await bak(['stats', '--json']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('2026-01-01T00-00-00Z-abcdef');
    const report = json<StatsReport>(r);
    expect(s3Row(report).snapshots).toEqual({ total: 3, complete: 2, partial: 0, failed: 0, unreadable: 1 });
    expect(s3Row(report).logicalBytes).toBe(sizeBefore + sizeAfter);
    expect(report.totals).toMatchObject({ snapshots: 4, unreadable: 1 });
    const human = await bak(['stats']);
    expect(human.stdout).toMatch(/^s3\s+3 \(1 unreadable\)\s/m);
    expect(human.stdout).toMatch(/^snapshots {3}4 \(\+1 unreadable\)$/m);
  });
});
