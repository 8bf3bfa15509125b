import type { BigQueryClients } from './client.ts';
import type { ListedTable } from './catalog.ts';
import { jobId, runJob, tableName, type TableRef } from './jobs.ts';
import { restCall } from './rest.ts';
import { datasetRef, type BigQueryOptions } from './source.ts';

const DAY_MS = 86_400_000;

/**
 * The backup table of one unit: named by source table, partition and the snapshot that took it, so every snapshot's
 * copies stand apart and `release` can drop exactly those no remaining snapshot references. Table ids take letters,
 * digits and _ (and more, but those travel everywhere), up to 1,024 characters.
 */
export function backupTableOf(o: Pick<BigQueryOptions, 'backupDataset'> & { ref: { project: string } }, snapshotId: string, listed: ListedTable, partition: string | null): TableRef {
  const target = datasetRef(o.backupDataset!, o.ref.project);
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');
  const tableId = `${clean(listed.dataset)}__${clean(listed.table)}${partition ? `__p${clean(partition)}` : ''}__${clean(snapshotId)}`.slice(0, 1024);
  return { projectId: target.project, datasetId: target.dataset, tableId };
}

function sourceRef(project: string, listed: ListedTable, partition: string | null): TableRef {
  return { projectId: project, datasetId: listed.dataset, tableId: partition ? `${listed.table}$${partition}` : listed.table };
}

/**
 * Copy mode: a copy job of the table (or one partition, by its decorator) into the backup dataset, then the copy's
 * expiration cleared (a backup dataset's default expiration must not delete a backup). Not verified against a
 * server: the emulator has no copy jobs.
 */
export async function copyUnit(clients: BigQueryClients, o: BigQueryOptions & { ref: { project: string } }, snapshotId: string, listed: ListedTable, want: { partition: string | null }): Promise<{ rows: number; bytes: number; readAt: string; backupTable: string }> {
  const destination = backupTableOf(o, snapshotId, listed, want.partition);
  const job = await runJob(
    clients,
    { copy: { sourceTables: [sourceRef(o.ref.project, listed, want.partition)], destinationTable: destination, writeDisposition: 'WRITE_TRUNCATE', createDisposition: 'CREATE_IF_NEEDED' } },
    jobId('copy', snapshotId, listed.dataset, listed.table, want.partition ?? ''),
    { location: o.location },
  );
  const copied = await restCall(clients, 'tables.patch', { uri: `/datasets/${destination.datasetId}/tables/${encodeURIComponent(destination.tableId)}`, project: destination.projectId, method: 'PATCH', json: { expirationTime: null } });
  const statistics = job.statistics as { startTime?: string } | undefined;
  return {
    rows: Number(copied.numRows ?? 0),
    bytes: Number(copied.numBytes ?? 0),
    readAt: statistics?.startTime ? new Date(Number(statistics.startTime)).toISOString() : new Date().toISOString(),
    backupTable: tableName(destination),
  };
}

/** How long a table snapshot lives: expireAfterDays, else the job's retention horizon (retentionHorizonDays), else no expiration. */
export function snapshotExpiration(o: Pick<BigQueryOptions, 'expireAfterDays' | 'retentionDays'>, now = Date.now()): string | undefined {
  const days = o.expireAfterDays ?? o.retentionDays;
  return days === undefined ? undefined : new Date(now + days * DAY_MS).toISOString();
}

/**
 * Snapshot mode: a BigQuery table snapshot (a copy job of operation SNAPSHOT: storage only for what later changes in
 * the source), expiring per the retention policy. Not verified against a server: the emulator has no snapshots.
 */
export async function snapshotUnit(clients: BigQueryClients, o: BigQueryOptions & { ref: { project: string } }, snapshotId: string, listed: ListedTable): Promise<{ rows: number; bytes: number; readAt: string; backupTable: string }> {
  const destination = backupTableOf(o, snapshotId, listed, null);
  const expiration = snapshotExpiration(o);
  await runJob(
    clients,
    {
      copy: {
        sourceTables: [sourceRef(o.ref.project, listed, null)],
        destinationTable: destination,
        operationType: 'SNAPSHOT',
        writeDisposition: 'WRITE_EMPTY',
        ...(expiration ? { destinationExpirationTime: expiration } : {}),
      },
    },
    jobId('snapshot', snapshotId, listed.dataset, listed.table),
    { location: o.location },
  );
  const snap = await restCall(clients, 'tables.get', { uri: `/datasets/${destination.datasetId}/tables/${encodeURIComponent(destination.tableId)}`, project: destination.projectId });
  const snapshotTime = (snap.snapshotDefinition as { snapshotTime?: string } | undefined)?.snapshotTime;
  return { rows: Number(snap.numRows ?? 0), bytes: Number(snap.numBytes ?? 0), readAt: snapshotTime ? new Date(snapshotTime).toISOString() : new Date().toISOString(), backupTable: tableName(destination) };
}
