// `bak run` through the real CLI: three S3 jobs into one local repository, the middle one failing (its bucket
// does not exist). The other two back up and apply their retention, the summary names the failure, exit 1; the
// metrics file is parsed with a Prometheus text-format parser and holds what the test itself knows (the bytes it
// wrote, the snapshots its retention keeps); a loopback HTTP server records the healthchecks-style pings and the
// webhook; a hook that cannot be reached fails nothing and its URL (a secret) is never printed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLocation, minioClient, uniqueName, type TestLocation } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

interface Hit {
  path: string;
  body: string;
}

describe('bak run: three jobs, the middle one failing', () => {
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let configFile: string;
  let metricsFile: string;
  let server: Server;
  const hits: Hit[] = [];
  const buckets = { first: uniqueName('bak-run-a'), last: uniqueName('bak-run-c') };
  const missing = uniqueName('bak-run-missing');
  const sizes = { first: 0, last: 0 };
  const secretToken = 'tok-5e3c1d0a9b';
  const deadHookSecret = 'dead-hook-77f0';
  const bak = (args: string[]) => runBak(['--config', configFile, ...args], { env: { ...location.env, ...awsEnv(minio), PING_FIRST: pingUrl('first') } });
  let base = '';
  let deadPort = 0;
  const pingUrl = (job: string) => `${base}/ping/${secretToken}/${job}`;

  const metrics = async () => {
    const families = parsePrometheusTextFormat(await readFile(metricsFile, 'utf8'));
    const value = (name: string, job: string) => {
      const sample = families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.job === job);
      return sample === undefined ? undefined : Number(sample.value);
    };
    return { families, value };
  };

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation('local');
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hits.push({ path: req.url ?? '', body });
        res.end('OK');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A port nothing listens on: opened and closed again.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    metricsFile = path.join(await mkdtemp(path.join(tmpdir(), 'bak-metrics-')), 'bak.prom');

    for (const job of ['first', 'last'] as const) {
      await createBucket(s3, buckets[job]);
      for (let i = 0; i < 5; i++) {
        const body = Buffer.alloc(2_000 + i * 700, `${job}-${i}`);
        sizes[job] += body.length;
        await s3.send(new PutObjectCommand({ Bucket: buckets[job], Key: `obj-${i}`, Body: body }));
      }
    }
    const s3Options = { endpoint: minio.endpoint, forcePathStyle: true, checksums: 'when-required' };
    configFile = await writeConfig({
      repositories: { test: location.configEntry },
      defaults: { repository: 'test' },
      jobs: {
        first: { engine: 's3', source: `s3://${buckets.first}`, options: s3Options, retention: { keepLast: 1 }, hooks: { ping: { env: 'PING_FIRST' } } },
        middle: { engine: 's3', source: `s3://${missing}`, options: s3Options, retention: { keepLast: 1 }, hooks: { ping: pingUrl('middle'), webhook: `${base}/hook/${secretToken}` } },
        // Its ping goes to a port nothing listens on: a warning, not a failure.
        last: { engine: 's3', source: `s3://${buckets.last}`, options: s3Options, retention: { keepLast: 1 }, hooks: { ping: `http://127.0.0.1:${deadPort}/${deadHookSecret}`, timeoutSeconds: 2 } },
      },
    });
    const init = await bak(['init']);
    expect(init.code, show(init)).toBe(0);
  }, 60_000);

  afterAll(async () => {
    server?.close();
    await location?.cleanup();
    for (const b of Object.values(buckets)) if (s3) await deleteBucketCompletely(s3, b).catch(() => undefined);
    s3?.destroy();
  });

  it('backs up and applies retention for the two good jobs, names the failure, exits 1; metrics and pings follow', async () => {
    const r1 = await bak(['run', '--all', '--metrics-file', metricsFile]);
    expect(r1.code, show(r1)).toBe(1);
    const lines = r1.stdout.split('\n');
    expect(lines.find((l) => l.startsWith('first '))).toMatch(/^first\s+ok\s/);
    expect(lines.find((l) => l.startsWith('middle '))).toMatch(new RegExp(`^middle\\s+FAILED\\s.*${missing}`));
    expect(lines.find((l) => l.startsWith('last '))).toMatch(/^last\s+ok\s/);
    expect(r1.stdout).toContain('2 of 3 job(s) succeeded; FAILED: middle');
    expect(r1.stderr).toMatch(/job last: the ping hook \(start\) failed: ECONNREFUSED/);
    for (const secret of [secretToken, deadHookSecret]) {
      expect(r1.stdout + r1.stderr, `the hook URL secret ${secret} was printed`).not.toContain(secret);
    }

    // Pings in the healthchecks convention: start, then success or /fail, the summary as the body.
    const pings = (job: string) => hits.filter((h) => h.path.startsWith(`/ping/${secretToken}/${job}`));
    expect(pings('first').map((h) => h.path)).toEqual([`/ping/${secretToken}/first/start`, `/ping/${secretToken}/first`]);
    expect(pings('first')[1]!.body).toMatch(/job first ok/);
    expect(pings('middle').map((h) => h.path)).toEqual([`/ping/${secretToken}/middle/start`, `/ping/${secretToken}/middle/fail`]);
    expect(pings('middle')[1]!.body).toContain(missing);
    const hooks = hits.filter((h) => h.path === `/hook/${secretToken}`).map((h) => JSON.parse(h.body));
    expect(hooks.map((h) => [h.event, h.job, h.ok])).toEqual([
      ['start', 'middle', true],
      ['failure', 'middle', false],
    ]);
    expect(hooks[1].outcome.error).toContain(missing);

    let m = await metrics();
    expect(m.value('bak_last_attempt_success', 'first')).toBe(1);
    expect(m.value('bak_last_attempt_success', 'middle')).toBe(0);
    expect(m.value('bak_last_attempt_success', 'last')).toBe(1);
    expect(m.value('bak_last_success_timestamp_seconds', 'middle')).toBeUndefined();
    const firstSuccess = m.value('bak_last_success_timestamp_seconds', 'first')!;
    expect(Math.abs(firstSuccess - Date.now() / 1000)).toBeLessThan(120);
    expect(m.value('bak_last_bytes_read', 'first')).toBe(sizes.first);
    expect(m.value('bak_last_bytes_read', 'last')).toBe(sizes.last);
    expect(m.value('bak_snapshots', 'first')).toBe(1);
    expect(m.value('bak_last_snapshots_forgotten', 'first')).toBe(0);
    expect(m.value('bak_last_duration_seconds', 'middle')).toBeGreaterThan(0);
    expect(m.families.find((f) => f.name === 'bak_last_attempt_success')?.type).toBe('GAUGE');
    // Written beside itself and renamed: no temporary file is left in the collector's folder.
    expect(await readdir(path.dirname(metricsFile))).toEqual(['bak.prom']);

    // Second night, one object changed: retention (keepLast 1) forgets the first snapshot of each good job.
    await s3.send(new PutObjectCommand({ Bucket: buckets.first, Key: 'obj-0', Body: Buffer.alloc(2_000, 'changed') }));
    const r2 = await bak(['--json', 'run', '--job', 'first', '--job', 'last', '--metrics-file', metricsFile]);
    expect(r2.code, show(r2)).toBe(0);
    const report = json(r2);
    expect(report.ok).toBe(true);
    expect(report.jobs.map((j: { job: string; forgotten: number }) => [j.job, j.forgotten])).toEqual([
      ['first', 1],
      ['last', 1],
    ]);
    expect(report.prunes).toHaveLength(1);
    expect(report.prunes[0].ok).toBe(true);

    m = await metrics();
    expect(m.value('bak_snapshots', 'first')).toBe(1);
    expect(m.value('bak_last_snapshots_forgotten', 'last')).toBe(1);
    expect(m.value('bak_last_success_timestamp_seconds', 'first')).toBeGreaterThan(firstSuccess);
    // The job that did not run this time keeps its series from the night before.
    expect(m.value('bak_last_attempt_success', 'middle')).toBe(0);

    const snaps = json(await bak(['--json', 'snapshots']));
    expect(snaps.snapshots.map((s: { job: string }) => s.job).sort()).toEqual(['first', 'last']);
  }, 120_000);

  it('bak config check shows the hook URLs redacted', async () => {
    const r = await bak(['config', 'check']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(secretToken);
    expect(r.stdout).toContain('PING_FIRST');
  });

  it('refuses an unknown job before running any, and --job with --all', async () => {
    const r = await bak(['run', '--job', 'first', '--job', 'nope']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('no job named "nope"');
    const both = await bak(['run', '--all', '--job', 'first']);
    expect(both.code, show(both)).toBe(2);
  });
});
