// The BigQuery engine end to end, through the real `bak` CLI against goccy/bigquery-emulator: a dataset with every
// column type (nested and repeated records, NUMERIC, BIGNUMERIC, BYTES, TIMESTAMP, DATE, DATETIME, TIME, GEOGRAPHY,
// JSON, NULLs everywhere), an empty table, a partitioned and clustered table and a view, backed up in extract mode,
// restored into another dataset and compared row by row with the test's own tabledata.list reads; the Storage Read API
// path on the types the emulator's Read API can encode; change detection; and the bad inputs.
// The emulator's Read API fails on any NULL and on DATETIME, TIME and GEOGRAPHY values, so the every-type dataset is
// read with --reader tabledata; its lastModifiedTime never changes, so changes show in numRows (see DESIGN.md).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Dataset } from '@google-cloud/bigquery';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/repository/manifest.ts';
import { allRows, dropDataset, requireBigQuery, rest, testClient, uniqueDatasetId, type BigQueryEnv } from '../helpers/bigquery.ts';
import { json, runBak, show } from '../helpers/cli.ts';
import { EVENT_FIELDS, EVENT_ROWS, POLICY_TAG, READ_API_FIELDS, readApiRow, TYPE_FIELDS, TYPE_ROWS } from '../fixtures/bigquery-tables.ts';

describe('bigquery engine against bigquery-emulator', () => {
  let env: BigQueryEnv & { storageEndpoint: string };
  let work: string;
  let repo: string;
  let conn: string[];
  const made: string[] = [];
  const bak = (args: string[]) => runBak(['--repo', repo, ...args]);
  const newDataset = async (prefix: string): Promise<{ id: string; dataset: Dataset }> => {
    const id = uniqueDatasetId(prefix);
    made.push(id);
    const [dataset] = await testClient(env).createDataset(id, { labels: { team: 'data' }, defaultTableExpirationMs: String(30 * 86_400_000) } as never);
    return { id, dataset };
  };

  beforeAll(async () => {
    env = await requireBigQuery();
    conn = ['--endpoint', env.endpoint, '--storage-endpoint', env.storageEndpoint];
    work = await mkdtemp(path.join(tmpdir(), 'bak-bigquery-'));
    repo = path.join(work, 'repo');
    expect((await runBak(['init', repo])).code).toBe(0);
  });

  afterAll(async () => {
    if (env) for (const d of made) await dropDataset(env, d);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('restores a dataset of every type, an empty table, a partitioned table and a view into another dataset, every row equal', async () => {
    const { id, dataset } = await newDataset('bak_all');
    const expiration = String(Date.now() + 90 * 86_400_000);
    const [types] = await dataset.createTable('types', { schema: { fields: TYPE_FIELDS }, labels: { tier: 'gold' }, description: 'all the types', expirationTime: expiration } as never);
    await types.insert(TYPE_ROWS);
    await dataset.createTable('empty', { schema: { fields: [{ name: 'k', type: 'STRING' }] } });
    const [events] = await dataset.createTable('events', { schema: { fields: EVENT_FIELDS }, timePartitioning: { type: 'DAY', field: 'day' }, clustering: { fields: ['kind'] } } as never);
    await events.insert(EVENT_ROWS);
    await dataset.createTable('ids', { view: { query: `SELECT id, s FROM \`${env.projectId}.${id}.types\``, useLegacySql: false } } as never);

    const backup = await bak(['backup', `bigquery://${env.projectId}/${id}`, ...conn, '--reader', 'tabledata', '--json']);
    expect(backup.code, show(backup)).toBe(0);
    const manifest = json<Manifest>(backup);
    expect(manifest.status).toBe('complete');
    expect(manifest.totals.items).toBe(4);
    expect(manifest.engineDetails).toMatchObject({ mode: 'extract', reader: 'tabledata', datasets: 1, tables: 4, unitsTaken: 3, unitsCarried: 0 });

    const targetId = `${id}_restored`;
    made.push(targetId);
    const dry = await bak(['restore', manifest.id, '--to', `bigquery://${env.projectId}/${targetId}`, '--dry-run', '--json']);
    expect(dry.code, show(dry)).toBe(0);
    expect(json(dry).details.plans.map((p: { source: string; action: string }) => `${p.source} ${p.action}`).sort()).toEqual([`${id}.empty create`, `${id}.events create`, `${id}.ids create`, `${id}.types create`]);
    await expect(rest(env, 'GET', `/datasets/${targetId}`)).rejects.toThrow(/404/);
    // One table at a time: the emulator's SQLite answers concurrent writes with "database is locked".
    const restore = await bak(['restore', manifest.id, '--to', `bigquery://${env.projectId}/${targetId}`, '--jobs', '1', '--json']);
    expect(restore.code, show(restore)).toBe(0);
    const report = json(restore);
    expect(report.details.tablesChecked).toBe(3);
    expect(report.details.rowsChecked).toBe(TYPE_ROWS.length + EVENT_ROWS.length);

    for (const table of ['types', 'empty', 'events']) {
      expect(await allRows(env, targetId, table), table).toEqual(await allRows(env, id, table));
    }
    expect((await allRows(env, targetId, 'types')).length).toBe(TYPE_ROWS.length);
    const [src, dst] = await Promise.all([rest(env, 'GET', `/datasets/${id}/tables/types`), rest(env, 'GET', `/datasets/${targetId}/tables/types`)]);
    expect(dst.schema).toEqual(src.schema);
    expect(dst.schema.fields[2].policyTags.names).toEqual([POLICY_TAG]);
    expect(dst.schema.fields[13].fields[0].description).toBe('nested');
    expect(dst).toMatchObject({ labels: { tier: 'gold' }, description: 'all the types', expirationTime: expiration });
    const dstEvents = await rest(env, 'GET', `/datasets/${targetId}/tables/events`);
    expect(dstEvents).toMatchObject({ timePartitioning: { type: 'DAY', field: 'day' }, clustering: { fields: ['kind'] } });
    const view = await rest(env, 'GET', `/datasets/${targetId}/tables/ids`);
    expect(view.type).toBe('VIEW');
    // The view reads the restored table, not the source's.
    expect(view.view.query).toBe(`SELECT id, s FROM \`${env.projectId}.${targetId}.types\``);
    const ds = await rest(env, 'GET', `/datasets/${targetId}`);
    expect(ds.labels).toEqual({ team: 'data' });

    // A target that exists is refused before anything is written; --force replaces it.
    // (The emulator's insertAll and Read API find a table by name in any dataset, so the target is told apart by its
    // creation time, not by rows written into it.)
    const created = (await rest(env, 'GET', `/datasets/${targetId}/tables/events`)).creationTime;
    await new Promise((r) => setTimeout(r, 1100)); // the emulator's times are in seconds
    const again = await bak(['restore', manifest.id, '--to', `bigquery://${env.projectId}/${targetId}`]);
    expect(again.code, show(again)).toBe(2);
    expect(again.stderr).toMatch(/4 table\(s\) exist in the target: .*nothing was written.*--force/);
    expect((await rest(env, 'GET', `/datasets/${targetId}/tables/events`)).creationTime).toBe(created);
    const forced = await bak(['restore', manifest.id, '--to', `bigquery://${env.projectId}/${targetId}`, '--force', '--table', 'events', '--jobs', '1']);
    expect(forced.code, show(forced)).toBe(0);
    expect((await rest(env, 'GET', `/datasets/${targetId}/tables/events`)).creationTime).not.toBe(created);
    expect(await allRows(env, targetId, 'events')).toEqual(await allRows(env, id, 'events'));

    const verify = await bak(['verify', manifest.id, '--level', 'data']);
    expect(verify.code, show(verify)).toBe(0);
    // A real restore into throwaway datasets, checked, then dropped.
    const datasetsBefore = (await rest(env, 'GET', '/datasets')).datasets.length;
    const scratch = await bak(['verify', manifest.id, '--level', 'restore', '--scratch', `bigquery://${env.projectId}`, '--json']);
    expect(scratch.code, show(scratch)).toBe(0);
    expect(json(scratch).ok).toBe(true);
    expect(scratch.stderr).toMatch(/creating dataset baktest\.bak_verify_[0-9a-f]{8}_/);
    expect((await rest(env, 'GET', '/datasets')).datasets.length).toBe(datasetsBefore);
  });

  it('reads through the Storage Read API, and a second backup reads only the table that changed', async () => {
    const { id, dataset } = await newDataset('bak_read');
    const [typed] = await dataset.createTable('typed', { schema: { fields: READ_API_FIELDS } });
    await typed.insert(Array.from({ length: 300 }, (_, i) => readApiRow(i)));
    const [other] = await dataset.createTable('other', { schema: { fields: [{ name: 'k', type: 'INTEGER', mode: 'REQUIRED' }] } });
    await other.insert([{ k: 1 }, { k: 2 }]);
    await dataset.createTable('still', { schema: { fields: [{ name: 'k', type: 'INTEGER', mode: 'REQUIRED' }] } });

    const first = await bak(['backup', `bigquery://${env.projectId}/${id}`, ...conn, '--json']);
    expect(first.code, show(first)).toBe(0);
    const m1 = json<Manifest>(first);
    expect(m1.engineDetails).toMatchObject({ reader: 'storage', unitsTaken: 3 });
    expect(m1.totals.rows ?? m1.engineDetails.tables).toBeDefined();

    await other.insert([{ k: 3 }]);
    const second = await bak(['backup', `bigquery://${env.projectId}/${id}`, ...conn, '--json']);
    expect(second.code, show(second)).toBe(0);
    const m2 = json<Manifest>(second);
    expect(m2.parent).toBe(m1.id);
    expect(m2.engineDetails).toMatchObject({ unitsTaken: 1, unitsCarried: 2 });
    expect((m2.engineDetails.calls as Record<string, number>)['storage.readRows']).toBe(1);

    // The emulator's Storage Read API finds a table by its name in any dataset, so while the source exists a check of a
    // restored table of the same name would read the source's rows: the source goes first (a restore after a loss).
    const expected = Object.fromEntries(await Promise.all(['typed', 'other', 'still'].map(async (t) => [t, await allRows(env, id, t)] as const)));
    expect(expected.other).toHaveLength(3);
    expect(expected.typed).toHaveLength(300);
    await dropDataset(env, id);
    const targetId = `${id}_r`;
    made.push(targetId);
    const restore = await bak(['restore', m2.id, '--to', `bigquery://${env.projectId}/${targetId}`, '--jobs', '1', '--json']);
    expect(restore.code, show(restore)).toBe(0);
    expect(json(restore).details).toMatchObject({ tablesChecked: 3, rowsChecked: 303 });
    for (const table of ['typed', 'other', 'still']) expect(await allRows(env, targetId, table), table).toEqual(expected[table]);

    // Chosen tables of the first snapshot, into a dataset of their own.
    await dropDataset(env, targetId);
    const older = `${id}_older`;
    made.push(older);
    // Chosen by date: the newest snapshot taken at or before the first one finished is the first one.
    const chosen = await bak(['restore', '--source', `bigquery://${env.projectId}/${id}`, '--as-of', m1.finishedAt, '--to', `bigquery://${env.projectId}/${older}`, '--table', 'oth*', '--jobs', '1', '--json']);
    expect(chosen.code, show(chosen)).toBe(0);
    expect(json(chosen).snapshot).toBe(m1.id);
    expect(await allRows(env, older, 'other')).toEqual(expected.other!.slice(0, 2));
    const tooEarly = await bak(['restore', '--source', `bigquery://${env.projectId}/${id}`, '--as-of', '2020-01-01', '--to', `bigquery://${env.projectId}/${older}`]);
    expect(tooEarly.code, show(tooEarly)).toBe(2);
    expect(tooEarly.stderr).toMatch(/no snapshot of .* was taken at or before 2020-01-01T23:59:59.999Z/);
    await expect(rest(env, 'GET', `/datasets/${older}/tables/typed`)).rejects.toThrow(/404/);
  });

  it('fails clearly, and writes no snapshot, for a missing dataset, a missing project and bad options', async () => {
    const before = await bak(['snapshots', '--json']);
    const missing = await bak(['backup', `bigquery://${env.projectId}/no_such_dataset`, ...conn]);
    expect(missing.code, show(missing)).toBe(1);
    expect(missing.stderr).toMatch(/dataset baktest\.no_such_dataset does not exist/);
    const project = await bak(['backup', 'bigquery://nosuchproject', ...conn]);
    expect(project.code, show(project)).toBe(1);
    expect(project.stderr).toMatch(/not found.*nosuchproject|nosuchproject.*not found/i);
    const copy = await bak(['backup', `bigquery://${env.projectId}`, ...conn, '--mode', 'copy']);
    expect(copy.code, show(copy)).toBe(2);
    expect(copy.stderr).toMatch(/copy mode needs backupDataset/);
    const uri = await bak(['backup', 'bigquery://Bad_Project!', ...conn]);
    expect(uri.code).toBe(2);
    const after = await bak(['snapshots', '--json']);
    expect(json(after)).toEqual(json(before));
  });
});
