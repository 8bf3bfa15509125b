// native.ts (Spanner managed backups) and client.ts describeSpannerError at the client boundary: native mode is tested here with a stand-in admin client because no server here has the backup admin API.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/errors.ts';
import type { BackupContext } from '../../src/engines/engine.ts';
import { describeSpannerError, type SpannerClients } from '../../src/engines/spanner/client.ts';
import { backupNative, nativeBackupId, releaseNative, restoreNative, verifyNative, type NativeBackupDetails } from '../../src/engines/spanner/native.ts';
import { parseSpannerSource, type SpannerSource } from '../../src/engines/spanner/source.ts';
import { newSnapshotId, SNAPSHOT_ID } from '../../src/util/ids.ts';

type Admin = SpannerClients['admin'];
const SNAPSHOT = '2026-12-01T21-08-32Z-d62b8a';
const URI = 'spanner://projects/my-project/instances/prod-1/databases/orders_db';
const NOW = new Date('2026-12-01T21:08:32.250Z');

const grpcError = (code: number, message: string) => Object.assign(new Error(`${code} STAND_IN: ${message}`), { code });

function contextFor(options: Record<string, unknown>) {
  const source = parseSpannerSource(URI, { mode: 'native', ...options });
  return { writer: { id: SNAPSHOT }, source, log: pino({ level: 'silent' }), parent: undefined } as unknown as BackupContext & { source: SpannerSource };
}

/** A stand-in admin client; `backup` is what the create operation's promise resolves to. */
function admin(over: Partial<Record<'createBackup' | 'getBackup' | 'deleteBackup' | 'restoreDatabase', (req: never) => unknown>> = {}, backup: object = {}) {
  const calls: Array<[string, Record<string, unknown>]> = [];
  const record = (name: string, fallback: (req: Record<string, unknown>) => unknown) => async (req: Record<string, unknown>) => {
    calls.push([name, req]);
    const f = (over as Record<string, ((r: Record<string, unknown>) => unknown) | undefined>)[name] ?? fallback;
    return f(req);
  };
  const client = {
    createBackup: record('createBackup', () => [{ promise: async () => [backup] }]),
    getBackup: record('getBackup', () => [{ state: 'READY' }]),
    deleteBackup: record('deleteBackup', () => [{}]),
    restoreDatabase: record('restoreDatabase', () => [{ promise: async () => [{}] }]),
  } as unknown as Admin;
  return { client, calls };
}

const DETAILS: NativeBackupDetails = {
  mode: 'native',
  connection: {},
  database: 'projects/my-project/instances/prod-1/databases/orders_db',
  backup: 'projects/my-project/instances/prod-1/backups/orders_db-2026-12-01t21-08-32z-d62b8a',
  versionTime: '2026-12-01T21:08:32.250Z',
  expireTime: '2026-12-31T21:08:32.250Z',
  sizeBytes: 0,
};

describe('backupNative', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW);
  });
  afterEach(() => vi.useRealTimers());

  it('asks Spanner for a managed backup and records it as external data', async () => {
    const { client, calls } = admin({}, {
      name: 'projects/my-project/instances/prod-1/backups/orders_db-2026-12-01t21-08-32z-d62b8a',
      sizeBytes: '123456789',
      versionTime: { seconds: '1796159312', nanos: 250_000_000 },
      expireTime: { seconds: String(1796159312 + 7 * 86_400), nanos: 250_000_000 },
    });
    const result = await backupNative(contextFor({ expireAfterSeconds: 7 * 86_400 }), { admin: client, where: 'spanner.googleapis.com' });
    expect(calls.map((c) => c[0])).toEqual(['createBackup']);
    const nowSeconds = Math.floor(NOW.getTime() / 1000);
    expect(calls[0]![1]).toEqual({
      parent: 'projects/my-project/instances/prod-1',
      backupId: 'orders_db-2026-12-01t21-08-32z-d62b8a',
      backup: {
        database: 'projects/my-project/instances/prod-1/databases/orders_db',
        versionTime: { seconds: nowSeconds, nanos: 250_000_000 },
        expireTime: { seconds: nowSeconds + 7 * 86_400, nanos: 250_000_000 },
      },
    });
    expect(result).toEqual({
      externalData: true,
      totals: { items: 1, bytes: 123456789 },
      engineDetails: {
        mode: 'native',
        connection: { endpoint: undefined, keyFile: undefined },
        database: 'projects/my-project/instances/prod-1/databases/orders_db',
        backup: 'projects/my-project/instances/prod-1/backups/orders_db-2026-12-01t21-08-32z-d62b8a',
        versionTime: new Date(1796159312 * 1000 + 250).toISOString(),
        expireTime: new Date((1796159312 + 7 * 86_400) * 1000 + 250).toISOString(),
        sizeBytes: 123456789,
      },
    });
  });

  it('takes the version time from readTimestamp or stalenessSeconds; without an answer records what it asked for', async () => {
    const { client, calls } = admin();
    const at = await backupNative(contextFor({ readTimestamp: '2026-12-01T20:00:00.5Z', endpoint: 'https://spanner.example:443' }), { admin: client, where: 'x' });
    expect((calls[0]![1].backup as { versionTime: unknown }).versionTime).toEqual({ seconds: Date.parse('2026-12-01T20:00:00Z') / 1000, nanos: 500_000_000 });
    expect(at.engineDetails).toMatchObject({
      backup: 'projects/my-project/instances/prod-1/backups/orders_db-2026-12-01t21-08-32z-d62b8a',
      versionTime: '2026-12-01T20:00:00.500Z',
      expireTime: new Date(NOW.getTime() + 30 * 86_400_000).toISOString(),
      connection: { endpoint: 'https://spanner.example:443' },
      sizeBytes: 0,
    });
    const stale = await backupNative(contextFor({ stalenessSeconds: 60 }), { admin: client, where: 'x' });
    expect(stale.engineDetails.versionTime).toBe(new Date(NOW.getTime() - 60_000).toISOString());
  });

  it('an error from Spanner is described (PERMISSION_DENIED names the roles)', async () => {
    const { client } = admin({ createBackup: () => Promise.reject(grpcError(7, 'Caller is missing IAM permission spanner.backups.create')) });
    const err = await backupNative(contextFor({}), { admin: client, where: 'spanner.googleapis.com' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 1, message: expect.stringMatching(/native backup of .*orders_db: permission denied/) });
    expect((err as { hint: string }).hint).toMatch(/roles\/spanner\.backupAdmin/);
  });
});

describe('nativeBackupId', () => {
  const ID = /^[a-z][a-z0-9_-]*[a-z0-9]$/;
  it('is the database and snapshot id, lowercased', () => {
    expect(nativeBackupId(SNAPSHOT, 'orders_db')).toBe('orders_db-2026-12-01t21-08-32z-d62b8a');
  });

  it('is always an id Spanner accepts, at most 60 characters', () => {
    const databases = ['ab', 'a1', 'x-y', 'db_', 'a'.repeat(30), `z${'9'.repeat(29)}`, `q${'_'.repeat(28)}1`, `m${'-'.repeat(28)}0`];
    const snapshots = [SNAPSHOT, '0000-01-01T00-00-00Z-000000', '9999-12-31T23-59-59Z-ffffff', ...Array.from({ length: 50 }, (_, i) => newSnapshotId(new Date(i * 86_400_000 * 7919)))];
    for (const s of snapshots) expect(s).toMatch(SNAPSHOT_ID);
    const ids = new Set<string>();
    for (const db of databases) {
      for (const s of snapshots) {
        const id = nativeBackupId(s, db);
        expect(id, `${db} ${s}`).toMatch(ID);
        expect(id.length, id).toBeLessThanOrEqual(60);
        ids.add(id);
      }
    }
    expect(ids.size).toBe(databases.length * snapshots.length);
  });
});

describe('verifyNative, releaseNative, restoreNative', () => {
  it('verify: READY is fine, CREATING is a problem, a deleted backup no longer exists', async () => {
    expect(await verifyNative(admin().client, DETAILS)).toEqual([]);
    expect(await verifyNative(admin({ getBackup: () => [{ state: 2 }] }).client, DETAILS)).toEqual([]);
    const creating = await verifyNative(admin({ getBackup: () => [{ state: 'CREATING' }] }).client, DETAILS);
    expect(creating).toEqual([{ where: `managed backup ${DETAILS.backup}`, problem: 'is CREATING, not READY' }]);
    const gone = await verifyNative(admin({ getBackup: () => Promise.reject(grpcError(5, 'Backup not found')) }).client, DETAILS);
    expect(gone).toHaveLength(1);
    expect(gone[0]!.problem).toMatch(/no longer exists/);
    await expect(verifyNative(admin({ getBackup: () => Promise.reject(grpcError(7, 'denied')) }).client, DETAILS)).rejects.toMatchObject({ code: 7 });
  });

  it('release deletes the backup, tolerates NOT_FOUND, rethrows PERMISSION_DENIED', async () => {
    const { client, calls } = admin();
    await releaseNative(client, DETAILS);
    expect(calls).toEqual([['deleteBackup', { name: DETAILS.backup }]]);
    await expect(releaseNative(admin({ deleteBackup: () => Promise.reject(grpcError(5, 'Backup not found')) }).client, DETAILS)).resolves.toBeUndefined();
    await expect(releaseNative(admin({ deleteBackup: () => Promise.reject(grpcError(7, 'denied')) }).client, DETAILS)).rejects.toMatchObject({ code: 7 });
  });

  it('restore makes a new database; one that exists already is a usage error', async () => {
    const target = { project: 'my-project', instance: 'staging', database: 'orders_copy' };
    const { client, calls } = admin();
    expect(await restoreNative(client, DETAILS, target, 'x')).toEqual({ database: 'projects/my-project/instances/staging/databases/orders_copy' });
    expect(calls).toEqual([['restoreDatabase', { parent: 'projects/my-project/instances/staging', databaseId: 'orders_copy', backup: DETAILS.backup }]]);
    const exists = admin({ restoreDatabase: () => Promise.reject(grpcError(6, 'Database already exists')) }).client;
    const err = await restoreNative(exists, DETAILS, target, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ exitCode: 2, message: expect.stringContaining('projects/my-project/instances/staging/databases/orders_copy already exists') });
    const other = await restoreNative(admin({ restoreDatabase: () => Promise.reject(grpcError(9, 'quota')) }).client, DETAILS, target, 'x').catch((e: unknown) => e);
    expect(other).not.toBeInstanceOf(UsageError);
    expect(other).toMatchObject({ exitCode: 1 });
  });
});

describe('describeSpannerError', () => {
  const ref = { project: 'p', instance: 'i', database: 'd' };
  const describe_ = (code: number, message: string) => describeSpannerError(Object.assign(new Error(message), { code }), 'backup', ref, 'spanner.googleapis.com:443');

  it('PERMISSION_DENIED says so and hints at the roles', () => {
    const err = describe_(7, '7 PERMISSION_DENIED: Caller is missing IAM permission spanner.sessions.create');
    expect(err.message).toBe('backup: permission denied on projects/p/instances/i/databases/d at spanner.googleapis.com:443: Caller is missing IAM permission spanner.sessions.create');
    expect(err.hint).toMatch(/roles\/spanner\.databaseReader/);
    expect(err.hint).toMatch(/roles\/spanner\.databaseAdmin/);
  });

  it('NOT_FOUND tells a missing instance from a missing database', () => {
    expect(describe_(5, '5 NOT_FOUND: Instance not found: projects/p/instances/i').message).toMatch(/^backup: Spanner instance projects\/p\/instances\/i does not exist at spanner.googleapis.com:443/);
    expect(describe_(5, '5 NOT_FOUND: Database not found: projects/p/instances/i/databases/d').message).toMatch(/^backup: Spanner database projects\/p\/instances\/i\/databases\/d does not exist/);
  });

  it('UNAVAILABLE is unreachable; others keep the detail', () => {
    expect(describe_(14, '14 UNAVAILABLE: No connection established').message).toBe('backup: Spanner at spanner.googleapis.com:443 is unreachable or went away: No connection established');
    expect(describe_(16, '16 UNAUTHENTICATED: bad token').hint).toMatch(/gcloud auth application-default login/);
    expect(describe_(9, '9 FAILED_PRECONDITION: nope').message).toBe('backup (projects/p/instances/i/databases/d): nope');
  });
});
