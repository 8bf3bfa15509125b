import { listDatasets, listTables, tableMetadata } from './catalog.ts';
import { openClients } from './client.ts';
import type { BigQuerySource } from './source.ts';

/**
 * `bak sources bigquery://…`: a dataset's tables (kind, rows, bytes), or a project's datasets with their tables'
 * bytes summed. One tables.get per table, `metadataConcurrency` at once.
 */
export async function listBigQuerySources(source: BigQuerySource): Promise<Array<{ name: string; sizeBytes: number; details: Record<string, unknown> }>> {
  const o = source.options;
  const clients = openClients(o.ref.project, o);
  try {
    const out: Array<{ name: string; sizeBytes: number; details: Record<string, unknown> }> = [];
    for (const dataset of await listDatasets(clients, o.ref, o)) {
      const tables = await listTables(clients, dataset, o.ref, o);
      let bytes = 0;
      let rows = 0;
      for await (const { listed, resource } of tableMetadata(clients, tables, o.metadataConcurrency, o.ref.table !== undefined)) {
        if (!resource) continue;
        const size = Number(resource.numBytes ?? 0);
        bytes += size;
        rows += Number(resource.numRows ?? 0);
        if (o.ref.dataset !== undefined) {
          out.push({ name: `${dataset}.${listed.table}`, sizeBytes: size, details: { kind: resource.type ?? 'TABLE', rows: Number(resource.numRows ?? 0), partitioned: Boolean(resource.timePartitioning || resource.rangePartitioning) } });
        }
      }
      if (o.ref.dataset === undefined) out.push({ name: dataset, sizeBytes: bytes, details: { tables: tables.length, rows } });
    }
    return out;
  } finally {
    await clients.close();
  }
}
