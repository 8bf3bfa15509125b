import { BakError } from '../../errors.ts';
import { mapOrdered } from '../../util/concurrency.ts';
import { describeBigQueryError, errorReason, type BigQueryClients } from './client.ts';
import { restCall, restPages } from './rest.ts';
import { selected, type BigQueryOptions, type BigQueryRef } from './source.ts';

export type TableResource = Record<string, unknown> & {
  type?: string;
  lastModifiedTime?: string;
  numRows?: string;
  numBytes?: string;
  schema?: { fields?: unknown[] };
  timePartitioning?: { type?: string; field?: string };
  rangePartitioning?: { field: string; range: { start: string; end: string; interval: string } };
  streamingBuffer?: { estimatedRows?: string };
};

export interface ListedTable {
  dataset: string;
  table: string;
  type: string;
}

const enc = encodeURIComponent;

/** The datasets a source covers, sorted: the one it names, or every dataset of the project the globs select. */
export async function listDatasets(clients: BigQueryClients, ref: BigQueryRef, options: Pick<BigQueryOptions, 'datasets' | 'excludeDatasets'>): Promise<string[]> {
  if (ref.dataset !== undefined) return [ref.dataset];
  const names: string[] = [];
  try {
    for await (const d of restPages<{ datasetReference: { datasetId: string } }>(clients, 'datasets.list', { uri: '/datasets', qs: { all: true } }, 'datasets')) {
      const name = d.datasetReference.datasetId;
      if (selected(name, options.datasets, options.excludeDatasets)) names.push(name);
    }
  } catch (err) {
    throw describeBigQueryError(err, `listing the datasets of project ${ref.project}`, clients.where);
  }
  return names.sort(byName);
}

export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export async function getDataset(clients: BigQueryClients, dataset: string, project = clients.project): Promise<Record<string, unknown>> {
  try {
    return await restCall(clients, 'datasets.get', { uri: `/datasets/${enc(dataset)}`, project });
  } catch (err) {
    if (errorReason(err) === 'notFound') throw new BakError(`dataset ${project}.${dataset} does not exist at ${clients.where}`, 1, { cause: err });
    throw describeBigQueryError(err, `reading dataset ${project}.${dataset}`, clients.where);
  }
}

/**
 * A dataset's tables the globs select, sorted by id. Only names are held (a few MB for 100,000 tables); the listing
 * is paged 1,000 at a time. Sorted, so a backup walks tables in the order the parent's index holds them.
 */
export async function listTables(clients: BigQueryClients, dataset: string, ref: BigQueryRef, options: Pick<BigQueryOptions, 'tables' | 'excludeTables'>): Promise<ListedTable[]> {
  if (ref.table !== undefined) return [{ dataset, table: ref.table, type: 'TABLE' }];
  const tables: ListedTable[] = [];
  try {
    for await (const t of restPages<{ tableReference: { tableId: string }; type?: string }>(clients, 'tables.list', { uri: `/datasets/${enc(dataset)}/tables` }, 'tables')) {
      const table = t.tableReference.tableId;
      if (selected(table, options.tables, options.excludeTables, `${dataset}.${table}`)) tables.push({ dataset, table, type: t.type ?? 'TABLE' });
    }
  } catch (err) {
    if (errorReason(err) === 'notFound') throw new BakError(`dataset ${clients.project}.${dataset} does not exist at ${clients.where}`, 1, { cause: err });
    throw describeBigQueryError(err, `listing the tables of ${clients.project}.${dataset}`, clients.where);
  }
  return tables.sort((a, b) => byName(a.table, b.table));
}

/** One table's tables.get. A table deleted since the listing is null, unless the source names it (`mustExist`). */
export async function getTable(clients: BigQueryClients, listed: ListedTable, mustExist = false): Promise<TableResource | null> {
  try {
    return await restCall<TableResource>(clients, 'tables.get', { uri: `/datasets/${enc(listed.dataset)}/tables/${enc(listed.table)}` });
  } catch (err) {
    if (errorReason(err) !== 'notFound') throw describeBigQueryError(err, `reading the metadata of ${clients.project}.${listed.dataset}.${listed.table}`, clients.where);
    if (mustExist) throw new BakError(`table ${clients.project}.${listed.dataset}.${listed.table} does not exist at ${clients.where}`, 1, { cause: err });
    return null;
  }
}

/** getTable for each listed table, `concurrency` at once, in listing order. */
export function tableMetadata(clients: BigQueryClients, tables: Iterable<ListedTable> | AsyncIterable<ListedTable>, concurrency: number, mustExist = false): AsyncGenerator<{ listed: ListedTable; resource: TableResource | null }> {
  return mapOrdered(tables, concurrency, async (listed) => ({ listed, resource: await getTable(clients, listed, mustExist) }));
}

/** A dataset's routines (UDFs, procedures, table functions) with their definitions; null where the server has no routines API. */
export async function listRoutines(clients: BigQueryClients, dataset: string): Promise<Array<Record<string, unknown>> | null> {
  const routines: Array<Record<string, unknown>> = [];
  try {
    for await (const r of restPages<{ routineReference: { routineId: string } }>(clients, 'routines.list', { uri: `/datasets/${enc(dataset)}/routines` }, 'routines')) {
      // routines.list leaves out the definition body and arguments: one get each (datasets hold few routines).
      routines.push(await restCall(clients, 'routines.get', { uri: `/datasets/${enc(dataset)}/routines/${enc(r.routineReference.routineId)}` }));
    }
  } catch (err) {
    // The emulator answers "unsupported bigquery.routines.list".
    if (/unsupported|not (supported|implemented)/i.test((err as Error).message)) return null;
    throw describeBigQueryError(err, `listing the routines of ${clients.project}.${dataset}`, clients.where);
  }
  return routines.sort((a, b) => byName(routineId(a), routineId(b)));
}

export function routineId(r: Record<string, unknown>): string {
  return ((r.routineReference as { routineId?: string } | undefined)?.routineId ?? '') as string;
}
