// The source bucket of the S3 benchmarks (bench/s3.ts, bench/encryption.ts), filled on the MinIO test server:
// `small` random objects of 1–8 KiB under small/, `json` objects of JSON log lines (16–64 KiB, compressing ~4:1)
// under logs/, and `large` random objects of `largeMib` MiB under large/.
import { randomBytes, randomInt } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBucket, mapLimit, putLargeObject } from '../test/helpers/s3-fixture.ts';

export const PUT_CONCURRENCY = 32;
const MiB = 1024 * 1024;

export interface BucketSizes {
  small: number;
  json: number;
  large: number;
  largeMib: number;
}

/** Log lines as services write them: a time, a level, a route, ids, a duration; repetitive enough to compress ~4:1. */
export function jsonLog(bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  const levels = ['info', 'info', 'info', 'warn', 'error'];
  const routes = ['/api/orders', '/api/orders/:id', '/api/users/:id', '/healthz', '/api/cart', '/api/search'];
  for (let t = Date.UTC(2026, 10, 1) + randomInt(0, 86_400_000); size < bytes; t += randomInt(1, 2000)) {
    const line = JSON.stringify({
      time: new Date(t).toISOString(),
      level: levels[randomInt(0, levels.length)],
      msg: 'request done',
      route: routes[randomInt(0, routes.length)],
      status: [200, 200, 200, 201, 404, 500][randomInt(0, 6)],
      ms: randomInt(1, 900),
      request: randomBytes(8).toString('hex'),
      user: randomInt(1, 50_000),
    });
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

export const smallKey = (i: number) => `small/${String(i).padStart(5, '0')}.bin`;

/** A random small object's content (1–8 KiB). */
export const smallBody = () => randomBytes(randomInt(1024, 8 * 1024 + 1));

/** Creates `bucket` and fills it; returns the approximate size of its content in MiB. */
export async function fillBucket(s3: S3Client, bucket: string, sizes: BucketSizes): Promise<number> {
  await createBucket(s3, bucket);
  await mapLimit(
    Array.from({ length: sizes.small }, (_, i) => i),
    PUT_CONCURRENCY,
    (i) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: smallKey(i), Body: smallBody() })),
  );
  await mapLimit(
    Array.from({ length: sizes.json }, (_, i) => i),
    PUT_CONCURRENCY,
    (i) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `logs/${String(i).padStart(5, '0')}.jsonl`, Body: jsonLog(randomInt(16 * 1024, 64 * 1024 + 1)), ContentType: 'application/x-ndjson' })),
  );
  for (let i = 0; i < sizes.large; i++) await putLargeObject(s3, bucket, `large/${i}.bin`, sizes.largeMib * MiB);
  return (sizes.small * 4.5 * 1024 + sizes.json * 40 * 1024 + sizes.large * sizes.largeMib * MiB) / MiB;
}
