// Streaming benchmark: puts and gets an N MiB object through each ObjectStore backend in a child process
// (test/fixtures/stream-probe.ts) and prints time, throughput and the child's peak RSS.
// Usage: node bench/storage-stream.ts [MiB ...]   (default 200; needs: bash scripts/servers/start.sh minio gcs)
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StoreSettings } from '../src/storage/open.ts';
import { runProbe as probe } from '../test/helpers/probe.ts';
import { requireServer } from '../test/helpers/servers.ts';

const MiB = 1024 * 1024;

interface Backend {
  name: string;
  settings: StoreSettings;
  cleanup(): Promise<void>;
}


async function localBackend(): Promise<Backend> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bak-bench-'));
  return { name: 'local', settings: { url: pathToFileURL(dir).href }, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

async function minioBackend(bucket: string): Promise<Backend> {
  const env = await requireServer('minio');
  const credentials = { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey };
  const admin = new S3Client({ endpoint: env.endpoint, region: env.region, forcePathStyle: true, credentials });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    name: 'minio (s3)',
    settings: { url: `s3://${bucket}/bench/`, endpoint: env.endpoint, region: env.region, forcePathStyle: true, checksums: 'when-required', ...credentials },
    async cleanup() {
      await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
      admin.destroy();
    },
  };
}

async function gcsBackend(bucket: string): Promise<Backend> {
  const env = await requireServer('gcs');
  const storage = new Storage({ apiEndpoint: env.apiEndpoint, projectId: env.projectId });
  await storage.createBucket(bucket);
  return {
    name: 'fake-gcs-server (gcs)',
    settings: { url: `gs://${bucket}/bench/`, apiEndpoint: env.apiEndpoint, projectId: env.projectId },
    cleanup: async () => void (await storage.bucket(bucket).delete()),
  };
}


async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  if (sizes.length === 0) sizes.push(200);
  if (sizes.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error('usage: node bench/storage-stream.ts [MiB ...]');
  const bucket = `bak-bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const rows: string[][] = [['backend', 'MiB', 'put s', 'get s', 'put MiB/s', 'get MiB/s', 'peak RSS MiB', 'sha256']];
  for (const make of [localBackend, () => minioBackend(bucket), () => gcsBackend(bucket)]) {
    const backend = await make();
    try {
      for (const mib of sizes) {
        const r = await probe(backend.settings, Math.round(mib * MiB));
        const size = r.bytes / MiB;
        rows.push([
          backend.name,
          size.toFixed(0),
          r.putSeconds.toFixed(2),
          r.getSeconds.toFixed(2),
          (size / r.putSeconds).toFixed(1),
          (size / r.getSeconds).toFixed(1),
          (r.maxRssBytes / MiB).toFixed(0),
          r.sha256Match ? 'ok' : 'MISMATCH',
        ]);
      }
    } finally {
      await backend.cleanup();
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  if (rows.some((row) => row[7] === 'MISMATCH')) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
