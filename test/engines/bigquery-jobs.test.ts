// What the emulator cannot show, at the client boundary: copy and snapshot modes (the emulator has no copy jobs and
// no table snapshots), partition-level change detection (it has no INFORMATION_SCHEMA.PARTITIONS), a quota running out
// mid-run and permission denied. A stand-in in front of the emulator answers those requests and records them; every
// other request (datasets, tables, the listing) reaches the emulator. Marked "not verified against a server" in
// README and USAGE.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/repository/manifest.ts';
import { apiError, BigQueryStandIn, dropDataset, requireBigQuery, rest, testClient, uniqueDatasetId, type BigQueryEnv, type Exchange } from '../helpers/bigquery.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';

interface Partition {
  table: string;
  partition: string | null;
  rows: number;
  modified: number;
}

describe('bigquery copy and snapshot modes, at the client boundary', () => {
  let env: BigQueryEnv & { storageEndpoint: string };
  let standIn: BigQueryStandIn;
  let work: string;
  let repo: string;
  const src = uniqueDatasetId('bak_jobs_src');
  const backups = uniqueDatasetId('bak_jobs_backup');
  const restored = uniqueDatasetId('bak_jobs_restored');
  const partitions: Partition[] = [
    { table: 'events', partition: '20260101', rows: 2, modified: 1_000 },
    { table: 'events', partition: '20260102', rows: 1, modified: 1_000 },
    { table: 'events', partition: '20260103', rows: 1, modified: 1_000 },
    { table: 'plain', partition: null, rows: 3, modified: 1_000 },
  ];
  /** Backup tables the stand-in "copied", with their rows; and rows copied into restored tables. */
  const copies = new Map<string, number>();
  const restoredRows = new Map<string, number>();
  let failCopyAfter = Infinity;
  let latestId = '';
  let copyJobs = 0;

  const bak = (args: string[]) => runBak(['--repo', repo, ...args]);
  const prefix = () => `/bigquery/v2/projects/${env.projectId}`;
  const copyRequests = (): Array<Record<string, any>> => standIn.calls('POST', /\/jobs(\?|$)/).map((e) => e.body.configuration.copy).filter(Boolean);
  const rowsOf = (table: string, partition: string | null) =>
    partitions.filter((p) => p.table === table && (partition === null || p.partition === partition)).reduce((s, p) => s + p.rows, 0);

  const routine = () => ({
    routineReference: { projectId: env.projectId, datasetId: src, routineId: 'recent' },
    routineType: 'TABLE_VALUED_FUNCTION',
    language: 'SQL',
    arguments: [{ name: 'since', dataType: { typeKind: 'DATE' } }],
    definitionBody: `SELECT * FROM \`${env.projectId}.${src}.events\` WHERE day >= since`,
    etag: 'e1',
    creationTime: '1',
    lastModifiedTime: '2',
  });
  const answer = (e: Exchange) => {
    const base = prefix();
    // The emulator answers "unsupported bigquery.routines.list"; this source dataset has one routine.
    if (e.method === 'GET' && new RegExp(`^${base}/datasets/${src}/routines(\\?|$)`).test(e.path)) return { status: 200, body: { routines: [{ routineReference: routine().routineReference }] } };
    if (e.method === 'GET' && e.path.startsWith(`${base}/datasets/${src}/routines/recent`)) return { status: 200, body: routine() };
    // Routines created by restores: recorded here (the clone test's tables exist only in the stand-in's word).
    if (e.method === 'POST' && new RegExp(`^${base}/datasets/${restored}(_clone)?/routines(\\?|$)`).test(e.path)) return { status: 200, body: e.body };
    if (e.method === 'POST' && e.path.startsWith(`${base}/queries`) && /INFORMATION_SCHEMA\.PARTITIONS/.test(e.body?.query ?? '')) {
      const rows = [...partitions]
        .sort((a, b) => (a.table + (a.partition ?? '')).localeCompare(b.table + (b.partition ?? '')))
        .map((p) => ({ f: [{ v: p.table }, { v: p.partition }, { v: String(p.rows) }, { v: String(p.rows * 100) }, { v: String(p.modified) }] }));
      return { status: 200, body: { jobComplete: true, jobReference: { projectId: env.projectId, jobId: 'partitions' }, rows } };
    }
    if (e.method === 'POST' && e.path.startsWith(`${base}/jobs`) && e.body?.configuration?.copy) {
      const copy = e.body.configuration.copy;
      if (++copyJobs > failCopyAfter) return apiError(403, 'quotaExceeded', 'Quota exceeded: Your project exceeded quota for copies per project.');
      const source = copy.sourceTables[0];
      const dest = copy.destinationTable;
      if (dest.datasetId === backups) {
        const [table, partition] = source.tableId.split('$');
        copies.set(dest.tableId, rowsOf(table, partition ?? null));
      } else {
        const base = dest.tableId.split('$')[0];
        const fromBackup = copies.get(source.tableId) ?? 0;
        restoredRows.set(base, (copy.writeDisposition === 'WRITE_TRUNCATE' && !dest.tableId.includes('$') ? 0 : (restoredRows.get(base) ?? 0)) + fromBackup);
      }
      return { status: 200, body: { jobReference: e.body.jobReference, status: { state: 'DONE' }, statistics: { startTime: String(Date.now()) } } };
    }
    const backupTable = new RegExp(`^${base}/datasets/${backups}/tables/([^/?]+)`).exec(e.path);
    if (backupTable && copies.has(decodeURIComponent(backupTable[1]!))) {
      const id = decodeURIComponent(backupTable[1]!);
      if (e.method === 'DELETE') {
        copies.delete(id);
        return { status: 204, body: {} };
      }
      return { status: 200, body: { tableReference: { projectId: env.projectId, datasetId: backups, tableId: id }, numRows: String(copies.get(id)), numBytes: '100', snapshotDefinition: { snapshotTime: new Date().toISOString() } } };
    }
    const restoredTable = new RegExp(`^${base}/datasets/${restored}/tables/([^/?]+)(?:\\?|$)`).exec(e.path);
    if (restoredTable && e.method === 'GET' && restoredRows.has(restoredTable[1]!)) {
      return { status: 200, body: { tableReference: { projectId: env.projectId, datasetId: restored, tableId: restoredTable[1] }, numRows: String(restoredRows.get(restoredTable[1]!)) } };
    }
    return undefined;
  };

  beforeAll(async () => {
    env = await requireBigQuery();
    standIn = new BigQueryStandIn(env.endpoint);
    standIn.handlers.push(answer);
    await standIn.start();
    work = await mkdtemp(path.join(tmpdir(), 'bak-bigquery-jobs-'));
    repo = path.join(work, 'repo');
    expect((await runBak(['init', repo])).code).toBe(0);
    const client = testClient(env);
    const [dataset] = await client.createDataset(src);
    await dataset.createTable('events', { schema: { fields: [{ name: 'day', type: 'DATE' }, { name: 'n', type: 'INTEGER' }] }, timePartitioning: { type: 'DAY', field: 'day' }, description: 'before' } as never);
    await dataset.createTable('plain', { schema: { fields: [{ name: 'k', type: 'INTEGER' }] } });
    await client.createDataset(backups);
  });

  afterAll(async () => {
    await standIn?.stop();
    if (env) for (const d of [src, backups, restored]) await dropDataset(env, d);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const backup = (extra: string[] = []) => bak(['backup', `bigquery://${env.projectId}/${src}`, '--endpoint', standIn.endpoint, '--storage-endpoint', env.storageEndpoint, '--mode', 'copy', '--backup-dataset', backups, '--json', ...extra]);

  it('copies each partition with a copy job, clears the copies\' expiration, and copies again only what changed', async () => {
    const first = await backup();
    expect(first.code, show(first)).toBe(0);
    const m1 = json<Manifest>(first);
    expect(m1).toMatchObject({ status: 'complete', externalData: true });
    expect(m1.engineDetails).toMatchObject({ mode: 'copy', unitsTaken: 4, unitsCarried: 0 });
    const copies1 = copyRequests();
    expect(copies1.map((c) => c.sourceTables[0].tableId).sort()).toEqual(['events$20260101', 'events$20260102', 'events$20260103', 'plain']);
    for (const c of copies1) {
      expect(c).toMatchObject({ writeDisposition: 'WRITE_TRUNCATE', createDisposition: 'CREATE_IF_NEEDED', destinationTable: { projectId: env.projectId, datasetId: backups } });
      expect(c.sourceTables[0]).toMatchObject({ projectId: env.projectId, datasetId: src });
    }
    expect(copies1.find((c) => c.sourceTables[0].tableId === 'events$20260102')!.destinationTable.tableId).toBe(`${src}__events__p20260102__${m1.id.replace(/-/g, '_')}`);
    const patches = standIn.calls('PATCH', new RegExp(`/datasets/${backups}/tables/`));
    expect(patches).toHaveLength(4);
    for (const p of patches) expect(p.body).toEqual({ expirationTime: null });
    // Job ids are deterministic: a retried insert finds its job instead of starting a second copy.
    const ids = standIn.calls('POST', /\/jobs(\?|$)/).map((e) => e.body.jobReference.jobId);
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) expect(id).toMatch(/^bak_copy_[0-9a-f]{32}$/);

    // A description changes (real BigQuery moves the table's lastModifiedTime; no partition's data changes): nothing is copied.
    await rest(env, 'PATCH', `/datasets/${src}/tables/events`, { description: 'after' });
    const before = copyRequests().length;
    const second = await backup();
    expect(second.code, show(second)).toBe(0);
    expect(json<Manifest>(second).engineDetails).toMatchObject({ unitsTaken: 0, unitsCarried: 4 });
    expect(copyRequests().length).toBe(before);

    // One partition's data changes: that partition alone is copied.
    partitions[1]!.modified = 2_000;
    partitions[1]!.rows = 5;
    const third = await backup();
    expect(third.code, show(third)).toBe(0);
    expect(json<Manifest>(third).engineDetails).toMatchObject({ unitsTaken: 1, unitsCarried: 3 });
    expect(copyRequests().slice(before).map((c) => c.sourceTables[0].tableId)).toEqual(['events$20260102']);
  });

  it('keeps what finished when a quota runs out, lists what was deferred, and the next backup takes only that', async () => {
    partitions[0]!.modified = 3_000;
    partitions[2]!.modified = 3_000;
    partitions[3]!.modified = 3_000;
    const before = copyRequests().length;
    failCopyAfter = copyJobs + 1;
    // One table at a time: one copy goes through, the next meets the quota.
    const cut = await backup(['--jobs', '1']);
    failCopyAfter = Infinity;
    expect(cut.code, show(cut)).toBe(1);
    const partial = json<Manifest>(cut);
    expect(partial.status).toBe('partial');
    // Tables start in the order their metadata arrives, so which of events$20260101 and plain went first varies; the
    // first copy went through, the second met the quota, and nothing was started after it.
    const cutCopies = copyRequests().slice(before).map((c) => c.sourceTables[0].tableId);
    expect(cutCopies).toHaveLength(2);
    const done = cutCopies[0]!;
    expect(['events$20260101', 'plain']).toContain(done);
    expect(partial.engineDetails).toMatchObject({ unitsTaken: 1, deferred: partial.failures.length });
    expect(partial.failures.map((f) => f.item)).toContain(`${src}.events`);
    for (const f of partial.failures) expect(f.error).toMatch(/deferred to the next backup: quotaExceeded/);
    expect(cut.stdout + cut.stderr).toMatch(/table\(s\) deferred/);

    const next = await backup();
    expect(next.code, show(next)).toBe(0);
    const resumed = json<Manifest>(next);
    expect(resumed.parent).toBe(partial.id);
    expect(resumed.engineDetails).toMatchObject({ unitsTaken: 2, unitsCarried: 2 });
    // What the partial snapshot finished is carried; only what it deferred is copied.
    expect(copyRequests().slice(before + 2).map((c) => c.sourceTables[0].tableId).sort()).toEqual(['events$20260101', 'events$20260103', 'plain'].filter((t) => t !== done));
    latestId = resumed.id;

    const verify = await bak(['verify', resumed.id]);
    expect(verify.code, show(verify)).toBe(0);
  });

  it('restores by copy jobs from the backup tables, checks row counts, and gc drops only the copies no snapshot needs', async () => {
    const latest = latestId;
    expect(json<{ snapshots: Array<{ id: string }> }>(await bak(['snapshots', '--json'])).snapshots.at(-1)!.id).toBe(latest);
    const restore = await bak(['restore', latest, '--to', `bigquery://${env.projectId}/${restored}`, '--endpoint', standIn.endpoint, '--jobs', '1', '--json']);
    expect(restore.code, show(restore)).toBe(0);
    const into = copyRequests().filter((c) => c.destinationTable.datasetId === restored);
    expect(into.map((c) => c.destinationTable.tableId).sort()).toEqual(['events$20260101', 'events$20260102', 'events$20260103', 'plain']);
    for (const c of into) expect(c).toMatchObject({ writeDisposition: 'WRITE_TRUNCATE', createDisposition: 'CREATE_NEVER', sourceTables: [{ datasetId: backups }] });
    expect(json(restore).details).toMatchObject({ tablesChecked: 2, rowsChecked: 11 });
    // The routine is created in the new dataset, its reference to the source dataset rewritten to the target's.
    const routines = standIn.calls('POST', new RegExp(`/datasets/${restored}/routines`));
    expect(routines).toHaveLength(1);
    expect(routines[0]!.body).toEqual({
      ...routine(),
      routineReference: { projectId: env.projectId, datasetId: restored, routineId: 'recent' },
      definitionBody: `SELECT * FROM \`${env.projectId}.${restored}.events\` WHERE day >= since`,
      etag: undefined,
      creationTime: undefined,
      lastModifiedTime: undefined,
    });
    const created = await rest(env, 'GET', `/datasets/${restored}/tables/events`);
    expect(created).toMatchObject({ timePartitioning: { type: 'DAY', field: 'day' }, description: 'after' });

    // One partition of one table, into a dataset of its own.
    const one = `${restored}_one`;
    const part = await bak(['restore', latest, '--to', `bigquery://${env.projectId}/${one}`, '--endpoint', standIn.endpoint, '--table', 'events', '--partition', '20260102', '--no-verify', '--json']);
    expect(part.code, show(part)).toBe(0);
    expect(copyRequests().filter((c) => c.destinationTable.datasetId === one).map((c) => c.destinationTable.tableId)).toEqual(['events$20260102']);
    await dropDataset(env, one);

    // Forget every snapshot but the newest: the copies only older snapshots referenced are dropped, the rest stay.
    const before = new Set(copies.keys());
    const gc = await bak(['gc', '--source', `bigquery://${env.projectId}/${src}`, '--keep-last', '1']);
    expect(gc.code, show(gc)).toBe(0);
    const dropped = [...before].filter((t) => !copies.has(t));
    // Eight copies were made (4 + 1 + 1 + 2); the newest snapshot references four of them, from three snapshots.
    expect(before.size).toBe(8);
    expect(dropped.length).toBe(4);
    expect(copies.size).toBe(4);
    const verify = await bak(['verify', latest]);
    expect(verify.code, show(verify)).toBe(0);
    // A copy gone behind bak's back fails verify.
    copies.delete([...copies.keys()][0]!);
    const broken = await bak(['verify', latest]);
    expect(broken.code, show(broken)).not.toBe(0);
    expect(broken.stdout + broken.stderr).toMatch(/is gone/);
  });

  it('snapshot mode makes table snapshots expiring after the retention policy, and restores by cloning them', async () => {
    const config = await writeConfig({
      repositories: { main: { url: repo } },
      jobs: { snaps: { engine: 'bigquery', source: `bigquery://${env.projectId}/${src}`, repository: 'main', options: { mode: 'snapshot', backupDataset: backups, endpoint: standIn.endpoint, storageEndpoint: env.storageEndpoint }, retention: { keepDaily: 7 } } },
    });
    const before = copyRequests().length;
    const started = Date.now();
    const run = await runBak(['--config', config, 'backup', '--job', 'snaps', '--json']);
    expect(run.code, show(run)).toBe(0);
    const m = json<Manifest>(run);
    expect(m.engineDetails).toMatchObject({ mode: 'snapshot', unitsTaken: 2 });
    const snaps = copyRequests().slice(before);
    expect(snaps.map((c) => c.sourceTables[0].tableId).sort()).toEqual(['events', 'plain']);
    for (const c of snaps) {
      expect(c).toMatchObject({ operationType: 'SNAPSHOT', writeDisposition: 'WRITE_EMPTY', destinationTable: { datasetId: backups } });
      const expires = Date.parse(c.destinationExpirationTime);
      expect(expires - started).toBeGreaterThan(7.9 * 86_400_000);
      expect(expires - started).toBeLessThan(8.1 * 86_400_000);
    }
    const target = `${restored}_clone`;
    const restore = await bak(['restore', m.id, '--to', `bigquery://${env.projectId}/${target}`, '--endpoint', standIn.endpoint, '--no-verify', '--json']);
    expect(restore.code, show(restore)).toBe(0);
    const clones = copyRequests().filter((c) => c.destinationTable.datasetId === target);
    expect(clones.map((c) => c.destinationTable.tableId).sort()).toEqual(['events', 'plain']);
    for (const c of clones) expect(c).toMatchObject({ operationType: 'CLONE', sourceTables: [{ datasetId: backups }] });
    await dropDataset(env, target);
  });

  it('fails with nothing visible when the server dies mid-run', async () => {
    const dying = new BigQueryStandIn(env.endpoint);
    let gets = 0;
    dying.handlers.push((e) => (e.method === 'GET' && /\/tables\/[^/?]+(\?|$)/.test(e.path) && ++gets === 2 ? 'die' : undefined));
    await dying.start();
    const before = json(await bak(['snapshots', '--json']));
    const started = Date.now();
    const r = await bak(['backup', `bigquery://${env.projectId}/${src}`, '--endpoint', dying.endpoint, '--storage-endpoint', env.storageEndpoint, '--reader', 'tabledata']);
    await dying.stop();
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/unreachable or went away|socket hang up|ECONNRE/);
    // A refused connection is not retried: the operator hears at once.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(json(await bak(['snapshots', '--json']))).toEqual(before);
  });

  it('says so when permission is denied, and writes no snapshot', async () => {
    const deny = (e: Exchange) => (e.method === 'GET' && e.path.includes(`/datasets/${src}/tables`) ? apiError(403, 'accessDenied', `Access Denied: Dataset ${env.projectId}:${src}: Permission bigquery.tables.list denied`) : undefined);
    standIn.handlers.unshift(deny);
    const before = json(await bak(['snapshots', '--json']));
    const denied = await backup();
    standIn.handlers.shift();
    expect(denied.code, show(denied)).toBe(1);
    expect(denied.stderr).toMatch(/permission denied .*bigquery\.tables\.list denied/i);
    expect(denied.stderr).toMatch(/roles\/bigquery\.dataViewer/);
    expect(json(await bak(['snapshots', '--json']))).toEqual(before);
  });
});
