// S3 over https: a private MinIO serving a self-signed certificate this test makes (openssl). bak trusts it through
// NODE_EXTRA_CA_CERTS, for the SDK and the lean path alike; without it, a clear certificate error and nothing written.
// The lean path's own requests (PUT, GET, list) are shown answered over TLS by a probe in its own process.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';
import { runCommand } from '../helpers/run.ts';
import {
  awsEnv,
  awkwardObjects,
  bucketState,
  createBucket,
  expectSameObjects,
  fillBucket,
  s3Flags,
  startPrivateMinio,
  type Minio,
  type PrivateMinio,
} from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

let minio: Minio;
let tls: PrivateMinio;
let client: S3Client;
const source = uniqueName('bak-tls-src');
const target = uniqueName('bak-tls-dst');
const repoBucket = uniqueName('bak-tls-repo');

beforeAll(async () => {
  minio = await requireServer('minio');
  tls = await startPrivateMinio(minio, { tls: true });
  client = minioClient({ ...minio, endpoint: tls.endpoint }, { ca: await readFile(tls.caFile!, 'utf8') });
  for (const b of [source, target, repoBucket]) await createBucket(client, b);
  await fillBucket(client, source, '', awkwardObjects());
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await tls?.cleanup();
});

describe('S3 over https (MinIO with a self-signed certificate)', () => {
  const repo = () => ({ url: `s3://${repoBucket}/bak/`, endpoint: tls.endpoint, forcePathStyle: true, checksums: 'when-required' });

  it('with the certificate trusted through NODE_EXTRA_CA_CERTS: backup into an https repository, restore, verify', async () => {
    const config = await writeConfig({ repositories: { r: repo() }, defaults: { repository: 'r' } });
    const env = { ...awsEnv(minio), NODE_EXTRA_CA_CERTS: tls.caFile! };
    const bak = (args: string[]) => runBak(['--config', config, ...args], { env });
    const init = await bak(['init']);
    expect(init.code, show(init)).toBe(0);
    const backup = await bak(['backup', `s3://${source}`, ...s3Flags(tls.endpoint), '--json']);
    expect(backup.code, show(backup)).toBe(0);
    const manifest = json(backup);
    const restore = await bak(['restore', manifest.id, '--to', `s3://${target}`, '--json']);
    expect(restore.code, show(restore)).toBe(0);
    expectSameObjects(await bucketState(client, target), await bucketState(client, source), 'restored over https');
    const verify = await bak(['verify', manifest.id, '--level', 'data']);
    expect(verify.code, show(verify)).toBe(0);
  }, 120_000);

  it('without it: a clear certificate error naming the fix, exit 1, and no repository written', async () => {
    const bucket = uniqueName('bak-tls-untrusted');
    await createBucket(client, bucket);
    const config = await writeConfig({ repositories: { r: { ...repo(), url: `s3://${bucket}/bak/` } }, defaults: { repository: 'r' } });
    const init = await runBak(['--config', config, 'init'], { env: awsEnv(minio) });
    expect(init.code, show(init)).toBe(1);
    console.log(`[s3 tls] without the CA: ${init.stderr.trim()}`);
    expect(init.stderr).toMatch(/certificate/i);
    expect(init.stderr).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(init.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.KeyCount ?? 0).toBe(0);
  }, 60_000);

  it('the lean path itself answers over TLS: PUT, GET and a listing come back from the server, not from the SDK fallback', async () => {
    const probe = path.resolve(import.meta.dirname, '../fixtures/lean-probe.ts');
    const r = await runCommand(process.execPath, [probe, tls.endpoint, repoBucket], { env: { ...process.env, ...awsEnv(minio), NODE_EXTRA_CA_CERTS: tls.caFile! } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ put: { created: true }, putAgain: { created: false }, get: 'lean over https', listed: ['probe/lean.txt'] });
  }, 30_000);
});
