import type { VerifyLevel, VerifyProblem } from '../../repository/checker.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { BakError } from '../../errors.ts';
import type { EngineContext } from '../engine.ts';
import { errorReason, openClients, type BigQueryClients } from './client.ts';
import { bigqueryDetails, tableEntries } from './entries.ts';
import { parseTableName } from './jobs.ts';
import { restCall } from './rest.ts';
import { repositoryRows } from './rows.ts';
import type { ConnectionOptions } from './source.ts';
import type { Field } from './values.ts';

/** The connection settings a snapshot recorded (no secrets: a key file's path at most), for verify and release. */
function clientsFor(manifest: Manifest): BigQueryClients {
  const details = bigqueryDetails(manifest);
  return openClients(details.project, (details.connection ?? {}) as ConnectionOptions);
}

/**
 * Beyond the repository's own checks: in copy and snapshot modes, that every backup table still exists with the rows
 * recorded; in extract mode at level data, that every file decodes to the rows recorded.
 */
export async function verifyBigQuery(ctx: EngineContext, manifest: Manifest, level: VerifyLevel): Promise<VerifyProblem[]> {
  const details = bigqueryDetails(manifest);
  const problems: VerifyProblem[] = [];
  if (details.mode === 'extract') {
    if (level !== 'data') return problems;
    for await (const entry of tableEntries(ctx.repo.blobs, manifest)) {
      const fields = ((entry.resource.schema as { fields?: Field[] } | undefined)?.fields ?? []) as Field[];
      for (const unit of entry.units) {
        let rows = 0;
        try {
          for await (const _ of repositoryRows(ctx.repo.blobs, entry, fields, [unit])) rows++;
        } catch (err) {
          problems.push({ where: `table ${entry.key}${unit.partition ? `$${unit.partition}` : ''}`, problem: `files do not decode: ${(err as Error).message}` });
          continue;
        }
        if (rows !== unit.rows) problems.push({ where: `table ${entry.key}${unit.partition ? `$${unit.partition}` : ''}`, problem: `files hold ${rows} rows, the snapshot recorded ${unit.rows}` });
      }
    }
    return problems;
  }
  const clients = clientsFor(manifest);
  try {
    for await (const entry of tableEntries(ctx.repo.blobs, manifest)) {
      for (const unit of entry.units) {
        if (!unit.backupTable) continue;
        const t = parseTableName(unit.backupTable);
        try {
          const got = await restCall(clients, 'tables.get', { uri: `/datasets/${encodeURIComponent(t.datasetId)}/tables/${encodeURIComponent(t.tableId)}`, project: t.projectId });
          if (Number(got.numRows ?? 0) !== unit.rows) problems.push({ where: `table ${entry.key}`, problem: `backup table ${unit.backupTable} has ${String(got.numRows)} rows, the snapshot recorded ${unit.rows}` });
        } catch (err) {
          problems.push({ where: `table ${entry.key}`, problem: errorReason(err) === 'notFound' ? `backup table ${unit.backupTable} is gone` : `backup table ${unit.backupTable}: ${(err as Error).message}` });
        }
      }
    }
  } finally {
    await clients.close();
  }
  return problems;
}

/**
 * gc forgot the snapshot: drop its backup tables (copies or table snapshots) that no remaining snapshot of the source
 * references (a later snapshot carries unchanged ones by reference). Already gone is fine.
 */
export async function releaseBigQuery(ctx: EngineContext, manifest: Manifest): Promise<void> {
  if (bigqueryDetails(manifest).mode === 'extract') return;
  const stillUsed = new Set<string>();
  for await (const listed of ctx.repo.listSnapshots(manifest.sourceKey)) {
    if ('error' in listed) throw new BakError(`${listed.error}: cannot tell which backup tables it references, so none of ${manifest.id}'s were dropped`);
    const other = listed.manifest;
    if (other.id === manifest.id) continue;
    for await (const entry of tableEntries(ctx.repo.blobs, other)) for (const unit of entry.units) if (unit.backupTable) stillUsed.add(unit.backupTable);
  }
  const clients = clientsFor(manifest);
  try {
    for await (const entry of tableEntries(ctx.repo.blobs, manifest)) {
      for (const unit of entry.units) {
        if (!unit.backupTable || stillUsed.has(unit.backupTable)) continue;
        const t = parseTableName(unit.backupTable);
        try {
          await restCall(clients, 'tables.delete', { uri: `/datasets/${encodeURIComponent(t.datasetId)}/tables/${encodeURIComponent(t.tableId)}`, method: 'DELETE', project: t.projectId });
          ctx.log.info(`dropped backup table ${unit.backupTable}`);
        } catch (err) {
          if (errorReason(err) !== 'notFound') throw err;
        }
        stillUsed.add(unit.backupTable);
      }
    }
  } finally {
    await clients.close();
  }
}
