import { BakError, UsageError } from '../../errors.ts';
import type { VerifyProblem } from '../../repository/checker.ts';
import type { Manifest } from '../../repository/manifest.ts';
import type { BackupContext, BackupResult } from '../engine.ts';
import { describeSpannerError, grpcCode, Status, type SpannerClients } from './client.ts';
import { openClients } from './client.ts';
import { databasePath, instancePath, type ConnectionOptions, type DatabaseRef, type SpannerSource } from './source.ts';

/*
 * Native mode: a Spanner managed backup, made and kept by Spanner, recorded in the manifest as external data.
 * handy-spanner has no backup admin API, so this file is tested at the client boundary only (not verified against a
 * server): test/unit/spanner-native.test.ts drives it with a stand-in for the admin client.
 */

export interface NativeBackupDetails {
  mode: 'native';
  /** Where the backup was made (no secret: an endpoint and a key file's path), so gc and verify reach it again. */
  connection: ConnectionOptions;
  database: string;
  backup: string;
  versionTime: string;
  expireTime: string;
  sizeBytes: number;
}

type AdminClient = Pick<SpannerClients['admin'], 'createBackup' | 'getBackup' | 'deleteBackup' | 'restoreDatabase'>;

/** A backup id Spanner accepts ([a-z][a-z0-9_-]*[a-z0-9], at most 60 characters), from the snapshot id. */
export function nativeBackupId(snapshotId: string, database: string): string {
  return `${database}-${snapshotId}`.toLowerCase().replace(/[^a-z0-9_-]/g, '-').replace(/^[^a-z]+/, '').slice(-60).replace(/^[^a-z]+/, 'b').replace(/[-_]+$/, '');
}

function toTimestamp(date: Date): { seconds: number; nanos: number } {
  return { seconds: Math.floor(date.getTime() / 1000), nanos: (date.getTime() % 1000) * 1e6 };
}

function isoOf(ts: unknown): string | null {
  const t = ts as { seconds?: unknown; nanos?: unknown } | null | undefined;
  if (!t || t.seconds === undefined || t.seconds === null) return null;
  return new Date(Number(t.seconds) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6)).toISOString();
}

export async function backupNative(ctx: BackupContext & { source: SpannerSource }, clients: { admin: AdminClient; where: string }): Promise<BackupResult> {
  const ref = ctx.source.options.ref;
  const now = new Date();
  const versionTime = ctx.source.options.readTimestamp ? new Date(ctx.source.options.readTimestamp) : new Date(now.getTime() - (ctx.source.options.stalenessSeconds ?? 0) * 1000);
  const expireTime = new Date(now.getTime() + ctx.source.options.expireAfterSeconds * 1000);
  const backupId = nativeBackupId(ctx.writer.id, ref.database);
  ctx.log.info(`creating Spanner managed backup ${backupId} of ${databasePath(ref)} (version time ${versionTime.toISOString()}, expires ${expireTime.toISOString()})`);
  ctx.progress?.activity(`${ref.database}: managed backup ${backupId}`);
  ctx.progress?.expect(1, 0);
  ctx.progress?.totalsKnown();
  try {
    const [operation] = await clients.admin.createBackup({
      parent: instancePath(ref),
      backupId,
      backup: { database: databasePath(ref), versionTime: toTimestamp(versionTime), expireTime: toTimestamp(expireTime) },
    });
    const [backup] = (await operation.promise()) as unknown as [{ name?: string | null; sizeBytes?: unknown; versionTime?: unknown; expireTime?: unknown }];
    const details: NativeBackupDetails = {
      mode: 'native',
      connection: { endpoint: ctx.source.options.endpoint, keyFile: ctx.source.options.keyFile },
      database: databasePath(ref),
      backup: backup.name ?? `${instancePath(ref)}/backups/${backupId}`,
      versionTime: isoOf(backup.versionTime) ?? versionTime.toISOString(),
      expireTime: isoOf(backup.expireTime) ?? expireTime.toISOString(),
      sizeBytes: Number(backup.sizeBytes ?? 0),
    };
    ctx.progress?.advance(1, details.sizeBytes);
    return { engineDetails: { ...details }, externalData: true, totals: { items: 1, bytes: details.sizeBytes } };
  } catch (err) {
    throw describeSpannerError(err, `native backup of ${databasePath(ref)}`, ref, clients.where);
  }
}

export function nativeDetails(manifest: Manifest): NativeBackupDetails | undefined {
  const d = manifest.engineDetails as Partial<NativeBackupDetails>;
  if (d.mode !== 'native') return undefined;
  if (typeof d.backup !== 'string') throw new BakError(`snapshot ${manifest.id} is a native Spanner backup without the backup's name`);
  return d as NativeBackupDetails;
}

/** The managed backup must still exist and be READY. */
export async function verifyNative(admin: AdminClient, details: NativeBackupDetails): Promise<VerifyProblem[]> {
  try {
    const [backup] = await admin.getBackup({ name: details.backup });
    const state = String(backup.state ?? 'STATE_UNSPECIFIED');
    if (state !== 'READY' && state !== '2') return [{ where: `managed backup ${details.backup}`, problem: `is ${state}, not READY` }];
    return [];
  } catch (err) {
    if (grpcCode(err) === Status.NOT_FOUND) return [{ where: `managed backup ${details.backup}`, problem: 'no longer exists (deleted, or past its expire time)' }];
    throw err;
  }
}

/** gc forgot the snapshot: delete its managed backup (already gone is fine). */
export async function releaseNative(admin: AdminClient, details: NativeBackupDetails): Promise<void> {
  try {
    await admin.deleteBackup({ name: details.backup });
  } catch (err) {
    if (grpcCode(err) !== Status.NOT_FOUND) throw err;
  }
}

/** RestoreDatabase into a new database of the target's instance; Spanner refuses an existing one. */
export async function restoreNative(admin: AdminClient, details: NativeBackupDetails, target: DatabaseRef, where: string): Promise<{ database: string }> {
  try {
    const [operation] = await admin.restoreDatabase({ parent: instancePath(target), databaseId: target.database, backup: details.backup });
    await operation.promise();
    return { database: databasePath(target) };
  } catch (err) {
    if (grpcCode(err) === Status.ALREADY_EXISTS) throw new UsageError(`Spanner database ${databasePath(target)} already exists: a native restore makes a new database, give another name in --to`);
    throw describeSpannerError(err, `restore of managed backup ${details.backup}`, target, where);
  }
}

export async function verifyNativeSnapshot(manifest: Manifest): Promise<VerifyProblem[]> {
  const details = nativeDetails(manifest);
  if (!details) return [];
  const clients = openClients(details.connection ?? {});
  try {
    return await verifyNative(clients.admin, details);
  } finally {
    await clients.close();
  }
}

export async function releaseNativeSnapshot(manifest: Manifest): Promise<void> {
  const details = nativeDetails(manifest);
  if (!details) return;
  const clients = openClients(details.connection ?? {});
  try {
    await releaseNative(clients.admin, details);
  } finally {
    await clients.close();
  }
}
