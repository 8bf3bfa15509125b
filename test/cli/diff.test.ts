// `bak diff` of two S3 snapshots (MinIO bucket, local repository): exactly the keys added, removed and changed,
// checked against what the test itself did to the bucket; the same snapshot twice differs in nothing; snapshots
// of two sources are refused (exit 2).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Change } from '../../src/operations/diff.ts';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { json, runBak, show } from '../helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, mapLimit, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

let minio: Minio;
let s3: S3Client;
let repo: string;
const bucket = uniqueName('bak-diff');
const other = uniqueName('bak-diff-other');
const key = (i: number) => `k/${String(i).padStart(3, '0')}`;
const put = (b: string, k: string, body: string) => s3.send(new PutObjectCommand({ Bucket: b, Key: k, Body: body }));
const bak = (args: string[]) => runBak(['--repo', repo, ...args], { env: awsEnv(minio) });
const backup = async (b: string) => {
  const r = await bak(['backup', `s3://${b}`, ...s3Flags(minio.endpoint), '--json']);
  expect(r.code, show(r)).toBe(0);
  return json<{ id: string }>(r).id;
};

beforeAll(async () => {
  minio = await requireServer('minio');
  s3 = minioClient(minio);
  repo = path.join(await mkdtemp(path.join(tmpdir(), 'bak-diff-')), 'repo');
  expect((await bak(['init'])).code).toBe(0);
  for (const b of [bucket, other]) await createBucket(s3, b);
  await mapLimit(Array.from({ length: 300 }, (_, i) => i), 16, (i) => put(bucket, key(i), `object ${i}`));
  await put(other, 'x', 'another source');
}, 60_000);

afterAll(async () => {
  for (const b of [bucket, other]) await deleteBucketCompletely(s3, b).catch(() => undefined);
  s3?.destroy();
});

describe('bak diff', () => {
  it('lists exactly the keys added, removed and changed between two snapshots of a bucket', async () => {
    const a = await backup(bucket);
    await put(bucket, key(10), 'changed ten, and longer');
    await put(bucket, key(20), 'changed 20');
    await put(bucket, key(30), 'changed 30');
    await put(bucket, 'n/1', 'new one');
    await put(bucket, 'n/2', 'new two');
    for (const k of [key(100), key(200)]) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
    const b = await backup(bucket);

    const r = await bak(['diff', a, b, '--json']);
    expect(r.code, show(r)).toBe(0);
    const out = json<{ a: string; b: string; changes: Change[]; counts: Record<string, number> }>(r);
    expect(out.a).toBe(a);
    const seen = out.changes.filter((c) => c.where === 'objects').map((c) => `${c.change} ${c.key}`);
    expect(seen).toEqual(['changed k/010', 'changed k/020', 'changed k/030', 'removed k/100', 'removed k/200', 'added n/1', 'added n/2']);
    expect(out.changes.find((c) => c.key === key(10))).toMatchObject({ sizeBefore: 'object 10'.length, sizeAfter: 'changed ten, and longer'.length });
    expect(out.counts).toEqual({ added: 2, removed: 2, changed: 3 });

    const human = await bak(['diff', a, b]);
    expect(human.code, show(human)).toBe(0);
    expect(human.stdout).toContain('+ objects: n/1  7 B');
    expect(human.stdout).toContain('- objects: k/100');
    expect(human.stdout).toContain('~ objects: k/010  9 B -> 23 B');
    expect(human.stdout).toContain('2 added, 2 removed, 3 changed');

    const same = json<{ changes: Change[] }>(await bak(['diff', b, b, '--json']));
    expect(same.changes).toEqual([]);

    const c = await backup(other);
    const refused = await bak(['diff', a, c]);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('different sources');
  }, 120_000);
});
