// Dataflow mode at the client boundary (Dataflow exists nowhere here): the real `bak` CLI against a stand-in of the
// two Dataflow REST calls it makes (templates:launch, jobs.get). The stand-in "runs" the job by writing an export in
// Google's layout into the output folder, which bak must then adopt, checked by MD5; a failed job leaves no snapshot.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvroFileWriter, tableAvro } from '../../src/engines/spanner/avro.ts';
import type { TableSchema } from '../../src/engines/spanner/schema.ts';
import { parseColumnType } from '../../src/engines/spanner/types.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';

const TABLE: TableSchema = {
  name: 'Accounts',
  parent: null,
  onDeleteCascade: false,
  columns: [
    { name: 'Id', type: parseColumnType('INT64', 'c'), nullable: false, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false },
    { name: 'Owner', type: parseColumnType('STRING(MAX)', 'c'), nullable: true, generationExpression: null, stored: false, defaultExpression: null, allowCommitTimestamp: false },
  ],
  primaryKey: [{ column: 'Id', desc: false }],
  indexes: [],
  foreignKeys: [],
  checks: [],
};

/** An export of TABLE as the template writes it: spanner-export.json, the table's manifest, one data file. */
async function writeExport(dir: string, rows: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = new AvroFileWriter(tableAvro(TABLE));
  const parts: Buffer[] = [];
  const collected = (async () => {
    for await (const b of file.bytes()) parts.push(b);
  })();
  for (let i = 0; i < rows; i++) file.encoder.write({ Id: BigInt(i), Owner: i % 2 ? `o${i}` : null });
  file.encoder.end();
  await collected;
  const content = Buffer.concat(parts);
  await writeFile(path.join(dir, 'Accounts.avro-00000-of-00001'), content);
  await writeFile(path.join(dir, 'Accounts-manifest.json'), JSON.stringify({ files: [{ name: 'Accounts.avro-00000-of-00001', md5: createHash('md5').update(content).digest('base64') }] }));
  await writeFile(path.join(dir, 'spanner-export.json'), JSON.stringify({ tables: [{ name: 'Accounts', manifestFile: 'Accounts-manifest.json' }] }));
}

describe('spanner dataflow mode (against a stand-in of the Dataflow REST API)', () => {
  let work: string;
  let server: Server;
  let api: string;
  const calls: Array<{ method: string; url: string; body: any }> = [];
  let outcome: 'JOB_STATE_DONE' | 'JOB_STATE_FAILED' = 'JOB_STATE_DONE';
  let polls = 0;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'bak-dataflow-'));
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', async () => {
        const call = { method: req.method!, url: req.url!, body: body ? JSON.parse(body) : undefined };
        calls.push(call);
        if (req.method === 'POST' && req.url!.startsWith('/v1b3/projects/acme/locations/europe-west1/templates:launch?')) {
          const id = `job-${calls.length}`;
          const p = call.body.parameters;
          if (outcome === 'JOB_STATE_DONE') await writeExport(path.join(p.outputDir, `${p.instanceId}-${p.databaseId}-${id}`), 25);
          polls = 0;
          res.end(JSON.stringify({ job: { id, name: call.body.jobName } }));
        } else if (req.method === 'GET' && /^\/v1b3\/projects\/acme\/locations\/europe-west1\/jobs\/job-\d+$/.test(req.url!)) {
          polls++;
          res.end(JSON.stringify({ currentState: polls < 2 ? 'JOB_STATE_RUNNING' : outcome }));
        } else {
          res.statusCode = 404;
          res.end('{"error":{"message":"no such call"}}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    server?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const config = (outputDir: string) =>
    writeConfig({
      repositories: { local: { url: `file://${path.join(work, 'repo')}` } },
      defaults: { repository: 'local' },
      jobs: {
        df: {
          engine: 'spanner',
          source: 'spanner://projects/acme/instances/prod/databases/ledger',
          options: { mode: 'dataflow', readTimestamp: '2026-12-01T03:00:00Z', dataflow: { outputDir, region: 'europe-west1', apiEndpoint: api, pollSeconds: 0.05 } },
        },
      },
    });

  it('launches the template with the database and output folder, waits for the job, and adopts what it wrote', async () => {
    const file = await config(path.join(work, 'out'));
    expect((await runBak(['--config', file, 'init'])).code).toBe(0);
    const backup = await runBak(['--config', file, '--json', 'backup', '--job', 'df']);
    expect(backup.code, show(backup)).toBe(0);
    const manifest = json<Manifest>(backup);
    const launch = calls.find((c) => c.method === 'POST')!;
    expect(launch.url).toContain(`gcsPath=${encodeURIComponent('gs://dataflow-templates-europe-west1/latest/Cloud_Spanner_to_GCS_Avro')}`);
    expect(launch.body.parameters).toEqual({ instanceId: 'prod', databaseId: 'ledger', outputDir: path.join(work, 'out'), spannerProjectId: 'acme', snapshotTime: '2026-12-01T03:00:00Z' });
    expect(launch.body.jobName).toMatch(/^bak-ledger-2026/);
    expect(calls.filter((c) => c.method === 'GET').length).toBeGreaterThanOrEqual(2);
    expect(manifest.engineDetails).toMatchObject({ readTimestamp: '2026-12-01T03:00:00Z', dataflowJob: { id: 'job-1', region: 'europe-west1' }, tables: [{ name: 'Accounts', rows: 25 }] });
    expect(manifest.totals.rows).toBe(25);
  });

  it('a failed job fails the backup (exit 1) and leaves no snapshot', async () => {
    outcome = 'JOB_STATE_FAILED';
    const file = await config(path.join(work, 'out2'));
    const before = json<{ snapshots: Manifest[] }>(await runBak(['--config', file, '--json', 'snapshots'])).snapshots.length;
    const backup = await runBak(['--config', file, 'backup', '--job', 'df']);
    expect(backup.code, show(backup)).toBe(1);
    expect(backup.stderr).toMatch(/Dataflow job job-\d+ ended JOB_STATE_FAILED/);
    expect(json<{ snapshots: Manifest[] }>(await runBak(['--config', file, '--json', 'snapshots'])).snapshots.length).toBe(before);
  });

  it('refuses dataflow mode without an output folder (exit 2)', async () => {
    const backup = await runBak(['--repo', path.join(work, 'repo'), 'backup', 'spanner://projects/acme/instances/prod/databases/ledger', '--mode', 'dataflow']);
    expect(backup.code, show(backup)).toBe(2);
    expect(backup.stderr).toMatch(/dataflow mode needs dataflow.outputDir|mode dataflow needs dataflow.outputDir/);
  });
});
