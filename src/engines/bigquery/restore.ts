import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BakError, MismatchError, UsageError } from '../../errors.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { TaskPool } from '../../util/concurrency.ts';
import { globMatch } from '../../util/glob.ts';
import { withRetry } from '../../util/retry.ts';
import { describeZodError } from '../../util/validation.ts';
import type { EngineContext, RestoreReport, RestoreTarget } from '../engine.ts';
import { tableRestoreFields } from '../restore-options.ts';
import { isDefinitionOnly } from './backup.ts';
import { byName, routineId } from './catalog.ts';
import { describeBigQueryError, errorReason, isRetryable, openClients, type BigQueryClients } from './client.ts';
import { bigqueryDetails, datasetEntries, tableEntries, type DatasetEntry, type TableEntry, type Unit } from './entries.ts';
import { jobId, parseTableName, runJob, type TableRef } from './jobs.ts';
import { restCall, restPages } from './rest.ts';
import { batched, repositoryRows, TableCheck, tableRows } from './rows.ts';
import { partitionIdOf } from './partitions.ts';
import type { TableResource } from './catalog.ts';
import { bigqueryConnectionFields, parseBigQueryUri } from './source.ts';
import type { Field } from './values.ts';
import { writeRows } from './write.ts';

export const bigqueryRestoreOptionsSchema = z
  .object({
    ...bigqueryConnectionFields,
    /** Only these tables (globs over the table id, or `dataset.table` when the glob has a dot). */
    tables: z.array(z.string().min(1)).optional(),
    /** Only these partitions (ids: 20260101, __NULL__ …) of the chosen partitioned tables. */
    partitions: z.array(z.string().min(1)).optional(),
    // force: replace tables that exist in the target (default: refuse before writing anything); scratch: throwaway
    // datasets in the target project.
    ...tableRestoreFields,
    /** Rows per Storage Write API append (each append stays under its 10 MB request limit). */
    rowsPerAppend: z.number().int().positive().max(100_000).default(2_000),
    /** Rewrite `project.dataset.` references in view and routine bodies to the target's, when restoring elsewhere. */
    rewriteReferences: z.boolean().default(true),
    /** How the integrity check reads restored tables: as the backup read them (default), or as named. */
    reader: z.enum(['storage', 'tabledata']).optional(),
  })
  .strict();
export type BigQueryRestoreOptions = z.infer<typeof bigqueryRestoreOptionsSchema>;

interface DatasetTarget {
  source: string;
  project: string;
  dataset: string;
}

export interface TablePlan {
  source: string;
  target: string;
  action: 'create' | 'replace' | 'check-only';
  kind: string;
  rows: number;
  tablesChecked?: number;
  rowsChecked?: number;
}

interface Mismatch {
  /** The table, or TABLE$PARTITION for the first partition of a partitioned table that differs. */
  table: string;
  expectedRows: number;
  actualRows: number;
  digestMatches: boolean;
  /** Rows read back in all, when `table` names one partition. */
  checkedRows?: number;
}

const enc = encodeURIComponent;

/**
 * Restores a BigQuery snapshot: datasets (created with their recorded settings if missing), routines, tables with
 * their schema, partitioning, clustering and labels, their rows (Storage Write API from the repository's files in
 * extract mode; copy or clone jobs from the backup tables otherwise), then views; then the integrity check.
 */
export async function restoreBigQuery(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport> {
  const parsed = bigqueryRestoreOptionsSchema.safeParse(target.options);
  if (!parsed.success) throw new UsageError(`bigquery restore options: ${describeZodError(parsed.error, target.options).replace(/\n/g, '; ')}`);
  const details = bigqueryDetails(manifest);
  // Where the snapshot was taken is where it is restored unless the target says otherwise.
  const options = { ...parsed.data, ...Object.fromEntries(Object.entries(details.connection ?? {}).filter(([k]) => (parsed.data as Record<string, unknown>)[k] === undefined)) } as BigQueryRestoreOptions;
  const ref = parseBigQueryUri(target.uri);
  if (ref.table !== undefined) throw new UsageError(`restore into bigquery://PROJECT or bigquery://PROJECT/DATASET, not a table (${target.uri}); choose tables with --table`);
  const clients = openClients(ref.project, options);
  const scratchPrefix = options.scratch ? `bak_verify_${randomBytes(4).toString('hex')}_` : '';
  const wanted = (e: TableEntry) => !options.tables || options.tables.some((g) => globMatch(g, g.includes('.') ? e.key : e.table));

  try {
    // Datasets: few, held. Table entries are streamed three times (the datasets they use, the plan, the restore), never
    // held whole; a plan per table is kept for the report.
    const datasets = new Map<string, DatasetEntry>();
    for await (const d of datasetEntries(ctx.repo.blobs, manifest)) datasets.set(d.key, d);
    const used = new Set<string>();
    let selected = 0;
    for await (const e of tableEntries(ctx.repo.blobs, manifest)) {
      if (!wanted(e)) continue;
      used.add(e.dataset);
      selected++;
    }
    if (selected === 0) throw new UsageError(`nothing to restore: no table of snapshot ${manifest.id} matches ${options.tables ? options.tables.join(', ') : 'the selection'}`);
    if (ref.dataset !== undefined && used.size > 1) {
      throw new UsageError(`the selection spans ${used.size} datasets (${[...used].sort(byName).join(', ')}): restore into bigquery://${ref.project} (same dataset names), or choose one dataset's tables with --table 'DATASET.*'`);
    }
    const targets = new Map<string, DatasetTarget>();
    for (const d of used) targets.set(d, { source: d, project: ref.project, dataset: `${scratchPrefix}${ref.dataset ?? d}` });

    const existing = await existingTables(clients, [...targets.values()]);
    // Plans by source key, in entry order: one per table (the report lists them), looked up as the entries stream by again.
    const plans = new Map<string, TablePlan>();
    const clash: string[] = [];
    for await (const e of tableEntries(ctx.repo.blobs, manifest)) {
      if (!wanted(e)) continue;
      const t = targets.get(e.dataset)!;
      const there = existing.get(t.dataset)?.has(e.table) ?? false;
      if (options.checkOnly && !there) throw new UsageError(`${t.project}.${t.dataset}.${e.table} does not exist at ${clients.where}: nothing to check`);
      if (there && !options.force && !options.checkOnly) clash.push(`${t.dataset}.${e.table}`);
      plans.set(e.key, { source: e.key, target: `${t.project}.${t.dataset}.${e.table}`, action: options.checkOnly ? 'check-only' : there ? 'replace' : 'create', kind: e.kind, rows: unitsOf(e, options.partitions).reduce((s, u) => s + u.rows, 0) });
    }
    if (clash.length > 0) {
      throw new UsageError(`${clash.length} table(s) exist in the target: ${clash.slice(0, 5).join(', ')}${clash.length > 5 ? ' …' : ''}; nothing was written. Restore into another dataset, or pass --force to replace them`);
    }
    if (options.dryRun) return { items: plans.size, bytes: 0, details: { dryRun: true, plans: [...plans.values()] } };

    // Routines and views come after the tables: a table function or a view may read a restored table.
    const definitions: Definition[] = [];
    if (!options.checkOnly) {
      for (const t of targets.values()) {
        const entry = datasets.get(t.source);
        if (await ensureDataset(ctx, clients, t, entry, options)) for (const r of entry?.routines ?? []) definitions.push(routineCreator(clients, t, r, options));
      }
    }
    const mismatches: Mismatch[] = [];
    const checked = new Map<string, { rows: number }>();
    const pool = new TaskPool(options.jobs);
    const reader = options.reader ?? (details.reader as 'storage' | 'tabledata' | undefined) ?? 'storage';
    let views = 0;
    for await (const e of tableEntries(ctx.repo.blobs, manifest)) {
      if (!wanted(e)) continue;
      const t = targets.get(e.dataset)!;
      const plan = plans.get(e.key)!;
      if (isDefinitionOnly(e.kind)) {
        if (!options.checkOnly) definitions.push(viewCreator(clients, e, t, options));
        views++;
        continue;
      }
      await pool.submit(async () => {
        ctx.progress?.activity(plan.target);
        const result = await restoreTable(ctx, clients, manifest, e, t, plan, options, details.mode, reader);
        ctx.progress?.advance(1, 0);
        if (result) {
          const rows = result.checkedRows ?? result.actualRows;
          checked.set(e.key, { rows });
          plan.tablesChecked = 1;
          plan.rowsChecked = rows;
          if (result.actualRows !== result.expectedRows || !result.digestMatches) mismatches.push(result);
        }
      });
    }
    await pool.drain();
    if (definitions.length > 0) {
      ctx.progress?.activity(`creating ${definitions.length} routine(s), view(s) and definition(s)`);
      await createDefinitions(ctx, definitions);
    }
    ctx.progress?.advance(views, 0);

    const report: RestoreReport = {
      items: plans.size,
      bytes: 0,
      details: { plans: [...plans.values()], tablesChecked: checked.size, rowsChecked: [...checked.values()].reduce((s, c) => s + c.rows, 0), mismatches, calls: Object.fromEntries(clients.calls) },
    };
    if (options.scratch) for (const t of targets.values()) await dropDataset(clients, t);
    if (mismatches.length > 0) {
      const err = new MismatchError(`restore check failed for ${mismatches.length} table(s): ${mismatches.map(describeMismatch).join('; ')}`);
      (err as { report?: unknown }).report = report;
      throw err;
    }
    return report;
  } finally {
    await clients.close();
  }
}

export function describeMismatch(m: Mismatch): string {
  return m.actualRows !== m.expectedRows ? `${m.table}: ${m.actualRows} rows, the snapshot has ${m.expectedRows}` : `${m.table}: same ${m.actualRows} rows, but values differ`;
}

/** The units a restore takes of an entry: all, or the chosen partitions. */
function unitsOf(entry: TableEntry, partitions: string[] | undefined): Unit[] {
  if (!partitions) return entry.units;
  return entry.units.filter((u) => u.partition === null || partitions.includes(u.partition));
}

async function existingTables(clients: BigQueryClients, targets: DatasetTarget[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const t of targets) {
    const names = new Set<string>();
    try {
      for await (const x of restPages<{ tableReference: { tableId: string } }>(clients, 'tables.list', { uri: `/datasets/${enc(t.dataset)}/tables`, project: t.project }, 'tables')) names.add(x.tableReference.tableId);
    } catch (err) {
      if (errorReason(err) !== 'notFound') throw describeBigQueryError(err, `listing the tables of ${t.project}.${t.dataset}`, clients.where);
    }
    out.set(t.dataset, names);
  }
  return out;
}

/** Dataset settings a new dataset takes from the snapshot. Access entries are left to the target's own defaults. */
const DATASET_FIELDS = ['description', 'friendlyName', 'labels', 'location', 'defaultTableExpirationMs', 'defaultPartitionExpirationMs', 'defaultCollation', 'isCaseInsensitive', 'maxTimeTravelHours', 'storageBillingModel'];

/** Creates the target dataset unless it exists; true when it was created (its routines are then restored too). */
async function ensureDataset(ctx: EngineContext, clients: BigQueryClients, t: DatasetTarget, entry: DatasetEntry | undefined, options: BigQueryRestoreOptions): Promise<boolean> {
  try {
    await restCall(clients, 'datasets.get', { uri: `/datasets/${enc(t.dataset)}`, project: t.project });
    return false;
  } catch (err) {
    if (errorReason(err) !== 'notFound') throw describeBigQueryError(err, `reading dataset ${t.project}.${t.dataset}`, clients.where);
  }
  const resource: Record<string, unknown> = { datasetReference: { projectId: t.project, datasetId: t.dataset } };
  for (const f of DATASET_FIELDS) if (entry?.resource[f] !== undefined) resource[f] = entry.resource[f];
  // A backup's default expiration would delete restored tables; a scratch dataset expires its tables in a day.
  if (options.scratch) resource.defaultTableExpirationMs = String(86_400_000);
  if ((entry?.resource.access as unknown[] | undefined)?.length) ctx.log.info(`dataset ${t.dataset}: ${(entry!.resource.access as unknown[]).length} access entries are recorded in the snapshot and not applied (the target keeps its own)`);
  ctx.log.info(`creating dataset ${t.project}.${t.dataset}`);
  try {
    await restCall(clients, 'datasets.insert', { uri: '/datasets', method: 'POST', project: t.project, json: resource });
  } catch (err) {
    throw describeBigQueryError(err, `creating dataset ${t.project}.${t.dataset}`, clients.where);
  }
  return true;
}

function routineCreator(clients: BigQueryClients, t: DatasetTarget, routine: Record<string, unknown>, options: BigQueryRestoreOptions): Definition {
  const body: Record<string, unknown> = { ...routine, routineReference: { projectId: t.project, datasetId: t.dataset, routineId: routineId(routine) } };
  if (options.rewriteReferences && typeof body.definitionBody === 'string') body.definitionBody = rewrite(body.definitionBody, t, clients.project);
  for (const k of ['etag', 'creationTime', 'lastModifiedTime']) delete body[k];
  return {
    name: `routine ${t.dataset}.${routineId(routine)}`,
    create: async () => {
      await restCall(clients, 'routines.insert', { uri: `/datasets/${enc(t.dataset)}/routines`, method: 'POST', project: t.project, json: body }).catch((err: unknown) => {
        throw describeBigQueryError(err, `creating routine ${t.dataset}.${routineId(routine)}`, clients.where);
      });
    },
  };
}

async function dropDataset(clients: BigQueryClients, t: DatasetTarget): Promise<void> {
  await restCall(clients, 'datasets.delete', { uri: `/datasets/${enc(t.dataset)}`, method: 'DELETE', project: t.project, qs: { deleteContents: true } }).catch(() => undefined);
}

/** Table settings a restored table takes from the snapshot (tables.insert fields). */
const TABLE_FIELDS = ['schema', 'description', 'friendlyName', 'labels', 'timePartitioning', 'rangePartitioning', 'clustering', 'requirePartitionFilter', 'encryptionConfiguration', 'defaultCollation', 'view', 'materializedView', 'externalDataConfiguration', 'maxStaleness'];

export function tableInsertResource(entry: TableEntry, target: TableRef, now = Date.now()): Record<string, unknown> {
  const resource: Record<string, unknown> = { tableReference: target };
  for (const f of TABLE_FIELDS) if (entry.resource[f] !== undefined) resource[f] = entry.resource[f];
  // An expiration already past would delete the restored table at once; one still ahead is kept.
  const expiration = Number(entry.resource.expirationTime ?? 0);
  if (expiration > now) resource.expirationTime = String(expiration);
  return resource;
}

function rewrite(text: string, t: DatasetTarget, sourceProject: string): string {
  if (t.source === t.dataset && t.project === sourceProject) return text;
  return text.split(`\`${sourceProject}.${t.source}.`).join(`\`${t.project}.${t.dataset}.`).split(`\`${sourceProject}\`.\`${t.source}\`.`).join(`\`${t.project}\`.\`${t.dataset}\`.`);
}

async function dropTable(clients: BigQueryClients, target: TableRef): Promise<void> {
  await restCall(clients, 'tables.delete', { uri: `/datasets/${enc(target.datasetId)}/tables/${enc(target.tableId)}`, method: 'DELETE', project: target.projectId }).catch((err: unknown) => {
    if (errorReason(err) !== 'notFound') throw describeBigQueryError(err, `replacing ${target.projectId}.${target.datasetId}.${target.tableId}`, clients.where);
  });
}

async function createTable(clients: BigQueryClients, entry: TableEntry, target: TableRef, replace: boolean, body?: Record<string, unknown>): Promise<void> {
  const name = `${target.projectId}.${target.datasetId}.${target.tableId}`;
  if (replace) await dropTable(clients, target);
  try {
    await restCall(clients, 'tables.insert', { uri: `/datasets/${enc(target.datasetId)}/tables`, method: 'POST', project: target.projectId, json: body ?? tableInsertResource(entry, target) });
  } catch (err) {
    if (errorReason(err) === 'duplicate') throw new UsageError(`${name} was created by someone else while the restore ran; nothing was written into it`);
    throw describeBigQueryError(err, `creating ${name}`, clients.where);
  }
}

async function restoreTable(
  ctx: EngineContext,
  clients: BigQueryClients,
  manifest: Manifest,
  entry: TableEntry,
  t: DatasetTarget,
  plan: TablePlan,
  options: BigQueryRestoreOptions,
  mode: string,
  reader: 'storage' | 'tabledata',
): Promise<Mismatch | null> {
  if (entry.deferred) ctx.log.warn(`${entry.key} was deferred when snapshot ${manifest.id} was taken: its rows are the ones an earlier snapshot read`);
  const target: TableRef = { projectId: t.project, datasetId: t.dataset, tableId: entry.table };
  const fields = (entry.resource.schema as { fields?: Field[] } | undefined)?.fields ?? [];
  const units = unitsOf(entry, options.partitions);
  const expected = units.reduce((s, u) => s + u.rows, 0);
  const path = { project: t.project, dataset: t.dataset, table: entry.table };
  if (mode === 'extract') {
    const partitionOf = (row: Record<string, unknown>) => partitionIdOf(entry.resource as TableResource, row);
    const digest = new TableCheck(partitionOf);
    if (plan.action !== 'check-only') {
      // A PENDING stream commits all or nothing, so a table whose write failed on a transient error is written again
      // from the start into a fresh table (the emulator's SQLite also answers concurrent commits "database is locked").
      await withRetry(
        async (attempt) => {
          digest.reset();
          await createTable(clients, entry, target, plan.action === 'replace' || attempt > 1);
          await writeRows(clients, path, fields, batched(repositoryRows(ctx.repo.blobs, entry, fields, units), options.rowsPerAppend, (row) => digest.add(row)));
        },
        { attempts: 3, baseDelayMs: 1000, retryable: isRetryable, onRetry: (err) => ctx.log.warn(`${plan.target}: ${(err as Error).message}; writing it again`) },
      );
    } else {
      for await (const row of repositoryRows(ctx.repo.blobs, entry, fields, units)) digest.add(row);
    }
    if (!options.verify) return null;
    const actual = new TableCheck(partitionOf);
    for await (const row of tableRows(clients, path, fields, reader)) actual.add(row);
    ctx.log.debug({ table: plan.target, rows: actual.rows }, 'checked');
    const differences = actual.differences(digest);
    if (differences.length === 0) return { table: plan.target, expectedRows: digest.rows, actualRows: actual.rows, digestMatches: true };
    // The first partition that differs names the mismatch (a partitioned table is checked partition by partition).
    const first = differences[0]!;
    return { table: first.partition ? `${plan.target}$${first.partition}` : plan.target, expectedRows: first.expectedRows, actualRows: first.actualRows, digestMatches: first.digestMatches, checkedRows: actual.rows };
  }
  // copy and snapshot modes: BigQuery does the copying (not verified against a server: the emulator has no copy jobs).
  if (plan.action !== 'check-only') {
    if (mode === 'snapshot') {
      const unit = units[0];
      if (!unit?.backupTable) throw new BakError(`${entry.key}: snapshot ${manifest.id} holds no table snapshot for it`);
      if (plan.action === 'replace') await dropTable(clients, target);
      await runJob(clients, { copy: { sourceTables: [parseTableName(unit.backupTable)], destinationTable: target, operationType: 'CLONE', writeDisposition: 'WRITE_EMPTY' } }, jobId('clone', manifest.id, plan.target, randomBytes(4).toString('hex')), { location: options.location, project: t.project });
      ctx.progress?.advance(0, unit.bytes);
    } else {
      await createTable(clients, entry, target, plan.action === 'replace');
      for (const unit of units) {
        if (!unit.backupTable) throw new BakError(`${entry.key}: snapshot ${manifest.id} holds no backup table for ${unit.partition ?? 'it'}`);
        const destination = { ...target, tableId: unit.partition ? `${target.tableId}$${unit.partition}` : target.tableId };
        await runJob(clients, { copy: { sourceTables: [parseTableName(unit.backupTable)], destinationTable: destination, writeDisposition: 'WRITE_TRUNCATE', createDisposition: 'CREATE_NEVER' } }, jobId('restore', manifest.id, plan.target, unit.partition ?? '', randomBytes(4).toString('hex')), { location: options.location, project: t.project });
        // Copied by BigQuery: nothing was read from the repository.
        ctx.progress?.advance(0, unit.bytes);
      }
    }
  }
  if (!options.verify) return null;
  const got = await restCall(clients, 'tables.get', { uri: `/datasets/${enc(target.datasetId)}/tables/${enc(target.tableId)}`, project: target.projectId });
  const actualRows = Number(got.numRows ?? 0);
  return { table: plan.target, expectedRows: expected, actualRows, digestMatches: true };
}

interface Definition {
  name: string;
  create(): Promise<void>;
}

/** A view, materialized view or external table, created from its recorded definition. */
function viewCreator(clients: BigQueryClients, entry: TableEntry, t: DatasetTarget, options: BigQueryRestoreOptions): Definition {
  const target: TableRef = { projectId: t.project, datasetId: t.dataset, tableId: entry.table };
  const body = tableInsertResource(entry, target);
  for (const key of ['view', 'materializedView'] as const) {
    const def = body[key] as { query?: string } | undefined;
    if (def?.query && options.rewriteReferences) body[key] = { ...def, query: rewrite(def.query, t, clients.project) };
  }
  return { name: entry.key, create: () => createTable(clients, entry, target, options.force, body) };
}

/** Routines, views, materialized views and external tables, in passes: one that reads another waits for it. */
async function createDefinitions(ctx: EngineContext, definitions: Definition[]): Promise<void> {
  let pending = definitions;
  for (let pass = 1; pending.length > 0; pass++) {
    const failed: Array<{ definition: Definition; error: unknown }> = [];
    for (const definition of pending) {
      try {
        await definition.create();
      } catch (error) {
        failed.push({ definition, error });
      }
    }
    if (failed.length === pending.length) {
      throw new BakError(`could not create ${failed.length} routine(s), view(s) or definition(s): ${failed.map((f) => `${f.definition.name}: ${(f.error as Error).message}`).join('; ')}`);
    }
    if (failed.length > 0) ctx.log.debug(`pass ${pass}: ${failed.length} definitions wait for others`);
    pending = failed.map((f) => f.definition);
  }
}
