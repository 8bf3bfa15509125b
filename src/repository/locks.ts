import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { BakError, ExitCode } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export const LOCKS_PREFIX = 'locks/';

export type LockKind = 'shared' | 'exclusive';

export const lockInfoSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['shared', 'exclusive']),
    host: z.string(),
    pid: z.number().int(),
    command: z.string(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
  })
  .strict();
export type LockInfo = z.infer<typeof lockInfoSchema>;

export interface LockOptions {
  /** How long a lock counts without a refresh; a crashed holder's lock goes stale after this. */
  ttlMs?: number;
  command?: string;
  now?: () => Date;
  /** Keep trying this long while another process holds a conflicting lock (default: fail at once). */
  waitMs?: number;
}

const DEFAULT_TTL_MS = 10 * 60 * 1000;

export class LockConflictError extends BakError {
  constructor(message: string) {
    super(message, ExitCode.failed, { hint: "if the process holding it is gone, wait for the lock to expire or run 'bak unlock'" });
  }
}

/** A held lock: refreshed in the background until released; `assertHeld` fails if a refresh was lost. */
export class Lock {
  readonly info: LockInfo;
  private readonly store: ObjectStore;
  private readonly ttlMs: number;
  private readonly timer: NodeJS.Timeout;
  private lost: Error | undefined;
  private released = false;

  constructor(store: ObjectStore, info: LockInfo, ttlMs: number) {
    this.store = store;
    this.info = info;
    this.ttlMs = ttlMs;
    this.timer = setInterval(() => void this.refresh(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.released) return;
    const expiresAt = new Date(Date.now() + this.ttlMs).toISOString();
    try {
      Object.assign(this.info, { expiresAt });
      await this.store.put(lockKey(this.info.id), Buffer.from(JSON.stringify(this.info)));
    } catch (err) {
      this.lost ??= new BakError(`lost the repository lock ${this.info.id}: refresh failed (${(err as Error).message})`);
    }
  }

  assertHeld(): void {
    if (this.lost) throw this.lost;
    if (Date.parse(this.info.expiresAt) < Date.now()) throw new BakError(`the repository lock ${this.info.id} expired before the work finished`);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.store.delete(lockKey(this.info.id));
  }
}

function lockKey(id: string): string {
  return `${LOCKS_PREFIX}${id}.json`;
}

/** Expired, or held by a process of this host that no longer exists (a crash here need not wait for expiry). */
export function isStale(lock: LockInfo, now: Date = new Date()): boolean {
  if (Date.parse(lock.expiresAt) < now.getTime()) return true;
  return lock.host === hostname() && lock.pid !== process.pid && !processAlive(lock.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type ListedLock = { key: string; info: LockInfo } | { key: string; error: string };

export async function* listLocks(store: ObjectStore): AsyncGenerator<ListedLock> {
  for await (const obj of store.list(LOCKS_PREFIX)) {
    if (!obj.key.endsWith('.json')) continue;
    try {
      const parsed = lockInfoSchema.safeParse(JSON.parse((await store.getBuffer(obj.key)).toString('utf8')));
      yield parsed.success ? { key: obj.key, info: parsed.data } : { key: obj.key, error: 'its JSON is not a bak lock (fields missing or of the wrong type)' };
    } catch (err) {
      // A lock released between listing and reading is simply gone.
      if ((err as { kind?: string }).kind === 'not-found') continue;
      yield { key: obj.key, error: (err as Error).message };
    }
  }
}

/**
 * Takes a shared (backup, verify) or exclusive (gc) lock: write ours first, then look at the others,
 * and back off if any live one conflicts. Two writers racing both see each other, so both back off: safe.
 */
export async function acquireLock(store: ObjectStore, kind: LockKind, options: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    try {
      return await tryAcquireLock(store, kind, options);
    } catch (err) {
      if (!(err instanceof LockConflictError) || Date.now() >= deadline) throw err;
      await sleep(Math.min(2000, Math.max(100, deadline - Date.now())) * (0.5 + Math.random() / 2));
    }
  }
}

async function tryAcquireLock(store: ObjectStore, kind: LockKind, options: LockOptions): Promise<Lock> {
  const now = options.now?.() ?? new Date();
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  const info: LockInfo = {
    id: `${now.getTime().toString(36)}-${randomBytes(4).toString('hex')}`,
    kind,
    host: hostname(),
    pid: process.pid,
    command: options.command ?? process.argv.slice(2).join(' ').slice(0, 200),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
  await store.put(lockKey(info.id), Buffer.from(JSON.stringify(info)), { ifAbsent: true });
  const lock = new Lock(store, info, ttlMs);
  try {
    for await (const other of listLocks(store)) {
      if (!('info' in other) || other.info.id === info.id || isStale(other.info, now)) continue;
      if (kind === 'exclusive' || other.info.kind === 'exclusive') {
        throw new LockConflictError(
          `repository is locked (${other.info.kind}) by ${other.info.host} pid ${other.info.pid} ` +
            `running "${other.info.command}" since ${other.info.createdAt}`,
        );
      }
    }
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
  return lock;
}
