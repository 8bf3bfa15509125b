// `bak diff` at scale, in ONE run: a MinIO bucket of --keys tiny objects backed up, 100 of them changed (50
// overwritten, 25 deleted, 25 added), backed up again; then `bak diff` of the two snapshots, checked to list exactly
// those 100, with its wall time and peak RSS; the same for a bucket of a tenth of the keys (goal: RSS flat in keys).
// Usage: node bench/diff.ts [--keys 100000]   (needs the MinIO test server); DIFF_NODE_OPTIONS (e.g.
// --max-old-space-size=40) is given to the diff runs alone, to tell live memory from a heap V8 let grow
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Change } from '../src/operations/diff.ts';
import { minioClient, uniqueName } from '../test/helpers/backends.ts';
import { BAK_BIN } from '../test/helpers/cli.ts';
import { runCommand } from '../test/helpers/run.ts';
import { awsEnv, createBucket, deleteBucketCompletely, mapLimit, s3Flags } from '../test/helpers/s3-fixture.ts';
import { requireServer } from '../test/helpers/servers.ts';

const { values: flags } = parseArgs({ options: { keys: { type: 'string', default: '100000' } } });
const KEYS = Number(flags.keys);
const minio = await requireServer('minio');
const s3 = minioClient(minio);
const work = await mkdtemp(path.join(tmpdir(), 'bak-bench-diff-'));
const key = (i: number) => `k/${String(i).padStart(7, '0')}`;
const rows: string[] = [];

async function bak(repo: string, args: string[]) {
  const r = await runCommand(BAK_BIN, ['--repo', repo, '-q', ...args], { rss: true, env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...awsEnv(minio), ...(args[0] === 'diff' && process.env.DIFF_NODE_OPTIONS ? { NODE_OPTIONS: process.env.DIFF_NODE_OPTIONS } : {}) } });
  if (r.code !== 0) throw new Error(`bak ${args.join(' ')} failed:\n${r.stderr.slice(-2000)}`);
  return r;
}

try {
  for (const keys of [Math.round(KEYS / 10), KEYS]) {
    const bucket = uniqueName('bak-bench-diff');
    await createBucket(s3, bucket);
    const put = (k: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: body }));
    console.error(`[bench] ${keys} objects into ${bucket} …`);
    await mapLimit(Array.from({ length: keys }, (_, i) => i), 64, (i) => put(key(i), `object ${i}`));
    const repo = path.join(work, `repo-${keys}`);
    await bak(repo, ['init']);
    const backup = async () => (JSON.parse((await bak(repo, ['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json'])).stdout) as { id: string }).id;
    const a = await backup();
    const picked = new Set<number>();
    while (picked.size < 75) picked.add(randomInt(0, keys));
    const [overwrite, remove] = [[...picked].slice(0, 50), [...picked].slice(50)];
    const expected = new Set<string>();
    await mapLimit(overwrite, 16, async (i) => (await put(key(i), `changed ${i}`), expected.add(`changed ${key(i)}`)));
    await mapLimit(remove, 16, async (i) => (await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(i) })), expected.add(`removed ${key(i)}`)));
    await mapLimit(Array.from({ length: 25 }, (_, i) => i), 16, async (i) => (await put(`n/${i}`, `new ${i}`), expected.add(`added n/${i}`)));
    const b = await backup();
    const diff = await bak(repo, ['diff', a, b, '--json']);
    const listed = (JSON.parse(diff.stdout) as { changes: Change[] }).changes.map((c) => `${c.change} ${c.key}`);
    const exact = listed.length === expected.size && listed.every((c) => expected.has(c));
    rows.push(`| ${keys.toLocaleString('en-US')} keys, 100 changed | ${listed.length} listed, ${exact ? 'exactly the 100' : 'NOT the expected ones'} | ${diff.seconds.toFixed(2)} s | ${Math.round((diff.maxRss ?? 0) / 1e6)} MB |`);
    await deleteBucketCompletely(s3, bucket);
  }
  console.log(['| bucket | bak diff | wall | peak RSS |', '|---|---|---|---|', ...rows].join('\n'));
} finally {
  s3.destroy();
  await rm(work, { recursive: true, force: true });
}
