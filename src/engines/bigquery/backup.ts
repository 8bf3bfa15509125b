import type { BlobRef } from '../../repository/blobs.ts';
import { contentChecksum } from '../../repository/blobs.ts';
import { Limiter, mapOrdered } from '../../util/concurrency.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { getDataset, getTable, listDatasets, listRoutines, listTables, type ListedTable, type TableResource } from './catalog.ts';
import { describeBigQueryError, errorReason, isQuotaError, openClients, type BigQueryClients } from './client.ts';
import { bigqueryDetails, parentEntries, tableEntries, type BigQueryDetails, type TableEntry, type Unit, type UnitFile } from './entries.ts';
import { copyUnit, snapshotUnit } from './copy.ts';
import { datasetPartitions, partitionCursor, partitionFilter, type PartitionInfo } from './partitions.ts';
import { openReadSession, streamAsAvroFile, syncMarkerOf } from './read.ts';
import { tabledataAsAvroFile } from './tabledata.ts';
import { bufferLength, countedPieces } from '../../util/progress.ts';
import type { Field } from './values.ts';
import { datasetRef, type BigQuerySource } from './source.ts';

/** Fields of tables.get and datasets.get that say nothing about the table itself and change on every read. */
const VOLATILE = ['etag', 'selfLink'];

export function trimResource(resource: Record<string, unknown>): Record<string, unknown> {
  const out = { ...resource };
  for (const key of VOLATILE) delete out[key];
  return out;
}

export function kindOf(resource: TableResource): string {
  return resource.type ?? 'TABLE';
}

/** Kinds whose content is their definition: restored by creating them, nothing read or copied. */
export function isDefinitionOnly(kind: string): boolean {
  return kind === 'VIEW' || kind === 'MATERIALIZED_VIEW' || kind === 'EXTERNAL';
}

export function tableChangeKey(resource: TableResource): string {
  return `${resource.lastModifiedTime ?? ''}/${resource.numRows ?? ''}/${resource.numBytes ?? ''}`;
}

interface Wanted {
  partition: string | null;
  modified: string;
  rows: number;
  bytes: number;
}

/**
 * The units a table is backed up as, each with the change key it is compared by. With INFORMATION_SCHEMA.PARTITIONS,
 * one per partition (an unpartitioned table has one, partition null), keyed by when its data last changed, so a
 * description change touches none. Without it (the emulator), the whole table, keyed by lastModifiedTime, rows and
 * bytes. Snapshot mode snapshots whole tables: one unit keyed by the newest partition change.
 */
export function wantedUnits(resource: TableResource, partitions: PartitionInfo[] | null, mode: string): { changeBy: 'partitions' | 'table'; units: Wanted[] } {
  if (partitions === null || partitions.length === 0) {
    return { changeBy: 'table', units: [{ partition: null, modified: tableChangeKey(resource), rows: Number(resource.numRows ?? 0), bytes: Number(resource.numBytes ?? 0) }] };
  }
  if (mode === 'snapshot') {
    const newest = partitions.reduce((m, p) => (BigInt(p.modified || '0') > BigInt(m || '0') ? p.modified : m), '0');
    return { changeBy: 'partitions', units: [{ partition: null, modified: `${newest}/${partitions.length}`, rows: partitions.reduce((s, p) => s + p.rows, 0), bytes: partitions.reduce((s, p) => s + p.bytes, 0) }] };
  }
  const partitioned = Boolean(resource.timePartitioning || resource.rangePartitioning);
  return {
    changeBy: 'partitions',
    units: partitions.map((p) => ({ partition: partitioned ? p.partition : null, modified: p.modified, rows: p.rows, bytes: p.bytes })),
  };
}

/**
 * Which of the wanted units the parent already holds unchanged (carried by reference) and which must be taken again.
 * Nothing is carried across a schema change, a unit the parent left stale (deferred), or, in copy and snapshot modes,
 * from a parent that saw rows in the streaming buffer (its jobs did not copy them).
 */
export function planUnits(wanted: { changeBy: string; units: Wanted[] }, resource: TableResource, parent: TableEntry | undefined, mode: string): Array<{ want: Wanted; carried?: Unit }> {
  const usable =
    parent !== undefined &&
    parent.changeBy === wanted.changeBy &&
    JSON.stringify(parent.resource.schema ?? null) === JSON.stringify(resource.schema ?? null) &&
    (mode === 'extract' || parent.streamingRows === 0);
  return wanted.units.map((want) => {
    const carried = usable ? parent.units.find((u) => u.partition === want.partition && u.modified === want.modified && !u.stale) : undefined;
    return carried ? { want, carried } : { want };
  });
}

interface RunState {
  ctx: BackupContext;
  source: BigQuerySource;
  clients: BigQueryClients;
  snapshotId: string;
  /** Tables reading (extract) or running jobs at once. */
  tables: Limiter;
  /** Storage Read API streams open at once, across tables. */
  streams: Limiter;
  quotaErrors: number;
  stopped: string | null;
  details: BigQueryDetails;
}

export async function backupBigQuery(ctx: BackupContext & { source: BigQuerySource }): Promise<BackupResult> {
  const { source, writer, log } = ctx;
  const o = source.options;
  const clients = openClients(o.ref.project, o);
  const connection = Object.fromEntries(Object.entries({ endpoint: o.endpoint, storageEndpoint: o.storageEndpoint, keyFile: o.keyFile, location: o.location }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const details: BigQueryDetails = { mode: o.mode, project: o.ref.project, datasets: 0, tables: 0, unitsTaken: 0, unitsCarried: 0, deferred: 0, streamingRows: 0, calls: {}, connection, ...(o.mode === 'extract' ? { reader: o.reader } : {}) };
  const state: RunState = { ctx, source, clients, snapshotId: writer.id, tables: new Limiter(o.jobs), streams: new Limiter(o.jobs), quotaErrors: 0, stopped: null, details };
  let parent = ctx.parent;
  if (parent && bigqueryDetails(parent).mode !== o.mode) {
    log.info(`parent ${parent.id} was taken in ${bigqueryDetails(parent).mode} mode: every table is taken anew in ${o.mode} mode`);
    parent = undefined;
  }
  const fromParent = parentEntries(parent ? tableEntries(ctx.repo.blobs, parent) : undefined);
  try {
    if (o.mode !== 'extract') await checkBackupDataset(state);
    const datasets = await listDatasets(clients, o.ref, o);
    const datasetIndex = writer.openIndex('datasets');
    const tableIndex = writer.openIndex('tables');
    let totalBytes = 0;
    if (datasets.length === 0) ctx.progress?.totalsKnown();
    for (const [n, dataset] of datasets.entries()) {
      ctx.progress?.activity(`${o.ref.project}.${dataset}`);
      const resource = await getDataset(clients, dataset);
      const routines = await listRoutines(clients, dataset);
      if (routines === null && details.datasets === 0) log.warn(`${clients.where} has no routines API: routines (UDFs, procedures) are not recorded`);
      await datasetIndex.add({ key: dataset, resource: trimResource(resource), routines: routines ?? [] });
      details.datasets++;
      const listed = await listTables(clients, dataset, o.ref, o);
      // Tables are found dataset by dataset; their sizes in the repository are known only as they are read.
      ctx.progress?.expect(listed.length, 0);
      if (n === datasets.length - 1) ctx.progress?.totalsKnown();
      const partitions = await datasetPartitions(clients, dataset);
      if (partitions === null && details.datasets === 1) log.info(`${clients.where} has no INFORMATION_SCHEMA.PARTITIONS: changes are told by each table's lastModifiedTime, rows and bytes`);
      const byPartition = partitions ? partitionCursor(partitions) : null;
      const metadata = new Limiter(o.metadataConcurrency);
      // Entries leave in listing order (the next backup's merge with this index needs it); up to `window` tables are in
      // flight, so one big table holds back at most that many finished entries.
      const window = Math.max(64, o.metadataConcurrency * 2);
      const entries = mapOrdered(listed, window, (table) => {
        const parentEntry = fromParent.take(table).then((found) => found[0]);
        const tablePartitions = byPartition ? byPartition.take(table.table) : Promise.resolve(null);
        return backupTable(state, table, metadata, parentEntry, tablePartitions);
      });
      for await (const entry of entries) {
        ctx.progress?.advance(1, 0);
        if (!entry) continue;
        details.tables++;
        details.streamingRows += entry.streamingRows;
        totalBytes += entry.units.reduce((s, u) => s + u.bytes, 0);
        await tableIndex.add(entry);
        ctx.log.debug({ table: entry.key, units: entry.units.length }, 'table recorded');
      }
    }
    await writer.closeIndex(datasetIndex);
    await writer.closeIndex(tableIndex);
    log.info(`${details.tables} tables in ${details.datasets} datasets: ${details.unitsTaken} ${o.mode === 'extract' ? 'read' : o.mode === 'copy' ? 'copied' : 'snapshotted'}, ${details.unitsCarried} unchanged and carried${details.deferred ? `, ${details.deferred} tables deferred` : ''}`);
    if (details.streamingRows > 0) log.warn(`${details.streamingRows} rows were in streaming buffers${o.mode === 'extract' ? ' (read, as the Storage Read API sees them)' : `: ${o.mode} jobs do not copy them, so the next backup takes those tables again`}`);
    if (state.stopped) log.warn(`stopped at a quota (${state.stopped}): ${details.deferred} table(s) deferred to the next backup`);
    details.calls = Object.fromEntries([...clients.calls].sort());
    return { engineDetails: details, externalData: o.mode !== 'extract', totals: { items: details.tables, bytes: totalBytes } };
  } finally {
    await clients.close();
  }
}

async function checkBackupDataset(state: RunState): Promise<void> {
  const o = state.source.options;
  const target = datasetRef(o.backupDataset!, o.ref.project);
  await getDataset(state.clients, target.dataset, target.project);
}

async function backupTable(
  state: RunState,
  listed: ListedTable,
  metadata: Limiter,
  parentEntry: Promise<TableEntry | undefined>,
  partitionsOf: Promise<PartitionInfo[] | null>,
): Promise<TableEntry | null> {
  const { clients, source } = state;
  const o = source.options;
  const key = `${listed.dataset}.${listed.table}`;
  const resource = await metadata.run(() => getTable(clients, listed, o.ref.table !== undefined));
  if (!resource) {
    state.ctx.log.info(`${key} was deleted while the backup ran: left out`);
    return null;
  }
  const parent = await parentEntry;
  const partitions = await partitionsOf;
  const kind = kindOf(resource);
  const base = {
    key,
    dataset: listed.dataset,
    table: listed.table,
    kind,
    resource: trimResource(resource),
    change: tableChangeKey(resource),
    streamingRows: Number(resource.streamingBuffer?.estimatedRows ?? 0),
  };
  if (isDefinitionOnly(kind)) return { ...base, changeBy: 'definition', units: [] };

  const wanted = wantedUnits(resource, partitions, o.mode);
  const plan = planUnits(wanted, resource, parent, o.mode);
  const units: Unit[] = [];
  const blobs: BlobRef[] = [];
  const keep = (unit: Unit, unitBlobs: BlobRef[][]) => {
    if (unit.files) {
      unit.files.forEach((f, i) => {
        f.blobStart = blobs.length;
        blobs.push(...unitBlobs[i]!);
      });
    }
    units.push(unit);
  };
  const toTake = plan.filter((p) => !p.carried);
  let deferredReason: string | null = null;
  const taken = new Map<Wanted, { unit: Unit; blobs: BlobRef[][] }>();
  if (toTake.length > 0) {
    await state.tables.run(async () => {
      for (const { want } of toTake) {
        if (state.stopped) {
          deferredReason = state.stopped;
          return;
        }
        try {
          taken.set(want, await takeUnit(state, listed, resource, want));
          state.details.unitsTaken++;
        } catch (err) {
          if (!isQuotaError(err)) throw describeBigQueryError(err, `backing up ${o.ref.project}.${key}`, clients.where);
          state.quotaErrors++;
          deferredReason = `${errorReason(err)}: ${(err as Error).message.slice(0, 200)}`;
          if (state.quotaErrors > o.quotaErrorsBeforeStop) state.stopped = deferredReason;
          return;
        }
      }
    });
  }
  if (deferredReason !== null) {
    state.details.deferred++;
    state.ctx.writer.recordFailure(key, `deferred to the next backup: ${deferredReason}`);
  }
  const parentBlobs = (u: Unit) => (u.files ?? []).map((f) => parent!.blobs!.slice(f.blobStart, f.blobStart + f.blobCount));
  // Progress: extract mode counted the bytes it read as they were stored; the rest is done (carried, copied by a job).
  const progress = state.ctx.progress;
  for (const p of plan) {
    const t = taken.get(p.want);
    if (p.carried) {
      state.details.unitsCarried++;
      keep(structuredClone(p.carried), parentBlobs(p.carried));
      progress?.advance(0, p.carried.bytes);
    } else if (t) {
      keep(t.unit, t.blobs);
      if (o.mode !== 'extract') progress?.advance(0, t.unit.bytes);
    } else {
      // Deferred: what the parent had of this unit stays restorable from this snapshot, marked stale; the next backup
      // (built on this one) takes it again.
      const old = parent?.units.find((u) => u.partition === p.want.partition);
      if (old) keep({ ...structuredClone(old), stale: true }, parentBlobs(old));
      if (old) progress?.advance(0, old.bytes);
    }
  }
  const entry: TableEntry = { ...base, changeBy: wanted.changeBy, units, ...(deferredReason !== null ? { deferred: true } : {}) };
  if (o.mode === 'extract') {
    entry.blobs = blobs;
    entry.checksum = contentChecksum(blobs);
  }
  return entry;
}

async function takeUnit(state: RunState, listed: ListedTable, resource: TableResource, want: Wanted): Promise<{ unit: Unit; blobs: BlobRef[][] }> {
  const o = state.source.options;
  const base = { partition: want.partition, modified: want.modified, snapshot: state.snapshotId };
  state.ctx.progress?.activity(`${listed.dataset}.${listed.table}${want.partition ? `$${want.partition}` : ''}: ${o.mode === 'extract' ? 'reading' : `${o.mode} job`}`);
  if (o.mode === 'copy') return { unit: { ...base, ...(await copyUnit(state.clients, o, state.snapshotId, listed, want)) }, blobs: [] };
  if (o.mode === 'snapshot') return { unit: { ...base, ...(await snapshotUnit(state.clients, o, state.snapshotId, listed)) }, blobs: [] };
  return readUnit(state, listed, resource, want);
}

/** Extract mode: one read session on the unit, each of its streams an Avro file in the repository, read in parallel. */
async function readUnit(state: RunState, listed: ListedTable, resource: TableResource, want: Wanted): Promise<{ unit: Unit; blobs: BlobRef[][] }> {
  const { clients, ctx } = state;
  const o = state.source.options;
  const key = `${listed.dataset}.${listed.table}${want.partition ? `$${want.partition}` : ''}`;
  const syncMarker = syncMarkerOf(key);
  if (o.reader === 'tabledata') {
    const counted = { rows: 0 };
    const readAt = new Date().toISOString();
    const table = { project: o.ref.project, dataset: listed.dataset, table: want.partition ? `${listed.table}$${want.partition}` : listed.table };
    const content = await state.streams.run(() => ctx.repo.blobs.writeStream(countedPieces(tabledataAsAvroFile(clients, table, (resource.schema?.fields ?? []) as Field[], syncMarker, counted), ctx.progress, bufferLength)));
    const file: UnitFile = { rows: counted.rows, bytes: content.size, checksum: content.checksum, blobStart: 0, blobCount: content.blobs.length };
    return { unit: { partition: want.partition, rows: counted.rows, bytes: content.size, modified: want.modified, snapshot: state.snapshotId, readAt, files: [file] }, blobs: [content.blobs] };
  }
  const plan = await openReadSession(
    clients,
    { project: o.ref.project, dataset: listed.dataset, table: listed.table },
    { maxStreams: Math.min(o.streamsPerTable, o.jobs), ...(want.partition ? { rowRestriction: partitionFilter(resource, want.partition) } : {}) },
  );
  const readAt = plan.readAt ?? new Date().toISOString();
  const streams = plan.streams.length > 0 ? plan.streams : [null];
  const results = await Promise.all(
    streams.map((stream) =>
      state.streams.run(async () => {
        const counted = { rows: 0 };
        const content = await ctx.repo.blobs.writeStream(countedPieces(streamAsAvroFile(clients, plan, stream, syncMarker, counted, ctx.signal), ctx.progress, bufferLength));
        return { counted, content };
      }),
    ),
  );
  const files: UnitFile[] = results.map((r) => ({ rows: r.counted.rows, bytes: r.content.size, checksum: r.content.checksum, blobStart: 0, blobCount: r.content.blobs.length }));
  const rows = files.reduce((s, f) => s + f.rows, 0);
  ctx.log.debug({ table: key, rows, streams: streams.length }, 'read');
  return {
    unit: { partition: want.partition, rows, bytes: files.reduce((s, f) => s + f.bytes, 0), modified: want.modified, snapshot: state.snapshotId, readAt, files },
    blobs: results.map((r) => r.content.blobs),
  };
}
