import type { EngineContext } from '../engines/engine.ts';
import { findEngine } from '../engines/registry.ts';
import { BakError, InterruptedError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { BLOBS_PREFIX, blobKey } from '../repository/blobs.ts';
import { readIndex } from '../repository/index-blobs.ts';
import type { Lock } from '../repository/locks.ts';
import type { Manifest } from '../repository/manifest.ts';
import { listPins } from '../repository/pins.ts';
import { type Repository } from '../repository/repository.ts';
import { applyPolicy, type PolicyDecision, type RetentionPolicy } from '../repository/retention.ts';
import { TaskPool } from '../util/concurrency.ts';
import { IdPrefixSet } from '../util/id-set.ts';
import type { ProgressSink } from '../util/progress.ts';

export const TRASH_PREFIX = 'trash/';

/** What gc forgets: the snapshots in scope, and each source's policy. */
export interface ForgetScope {
  /** Which snapshots are in scope (by job, source, or all). */
  select(manifest: Manifest): boolean;
  /** The policy for a source, given its newest snapshot; undefined means "no policy: never pruned". */
  policyFor(newest: Manifest): { policy: RetentionPolicy; origin: string } | undefined;
}

export interface GcRequest {
  /** Absent: forget nothing, prune only (`bak run`, once its jobs have forgotten), and read no manifest to plan it. */
  forget?: ForgetScope;
  dryRun: boolean;
  /** Blobs younger than this are never deleted, referenced or not. */
  graceMs: number;
  prune: boolean;
  lockWaitMs?: number;
  log: Logger;
  concurrency: number;
  now?: Date;
  /** The prune's progress: blobs looked at (all of them, listed as they stream) and deleted. */
  progress?: ProgressSink | undefined;
  /** Aborted by an interrupt: gc stops between steps (each is safe to stop after, see runGc) and releases its lock. */
  signal?: AbortSignal | undefined;
}

export interface GcGroupReport {
  sourceKey: string;
  source: string;
  engine: string;
  policy: RetentionPolicy | null;
  policyOrigin: string;
  decisions: PolicyDecision[];
}

export interface PruneReport {
  blobsListed: number;
  blobsReferenced: number;
  blobsDeleted: number;
  bytesFreed: number;
  blobsTooYoung: number;
}

export interface GcReport {
  dryRun: boolean;
  groups: GcGroupReport[];
  forgotten: string[];
  releasePending: string[];
  prune: PruneReport | null;
}

interface Summary {
  id: string;
  key: string;
  startedAt: string;
  status: Manifest['status'];
}

/**
 * gc = forget + prune, under the exclusive lock (a dry run takes no lock: it writes nothing at all).
 * Everything is planned before anything is deleted, so a listing or read error aborts a gc that has
 * changed nothing. Manifests go first (through trash/, so an interrupted release is finished by the
 * next gc), blobs last, so an interrupted gc leaves only unreferenced blobs behind.
 */
export async function runGc(repo: Repository, request: GcRequest): Promise<GcReport> {
  const now = request.now ?? new Date();
  const lock = request.dryRun ? undefined : await repo.lock('exclusive', { command: 'gc', waitMs: request.lockWaitMs ?? 0 });
  try {
    const groups = await planForget(repo, request, now);
    const forget = groups.flatMap((g) => g.decisions.filter((d) => !d.keep).map((d) => repo.manifestKey(g.sourceKey, d.id)));
    const report: GcReport = { dryRun: request.dryRun, groups, forgotten: [], releasePending: [], prune: null };
    if (request.dryRun) {
      report.forgotten = forget;
      if (request.prune) report.prune = await prune(repo, request, now, new Set(forget), undefined);
      return report;
    }
    const ctx: EngineContext = { repo, log: request.log, concurrency: request.concurrency };
    // Releases left pending by an earlier, interrupted gc come first.
    for await (const obj of repo.store.list(TRASH_PREFIX)) {
      if (!(await releaseFromTrash(repo, ctx, obj.key))) report.releasePending.push(obj.key);
    }
    for (const key of forget) {
      request.signal?.throwIfAborted();
      lock!.assertHeld();
      const trashKey = `${TRASH_PREFIX}${key.slice('snapshots/'.length)}`;
      await repo.store.put(trashKey, await repo.store.getBuffer(key));
      await repo.store.delete(key);
      report.forgotten.push(key);
      if (!(await releaseFromTrash(repo, ctx, trashKey))) report.releasePending.push(trashKey);
    }
    if (request.prune) report.prune = await prune(repo, request, now, new Set(), lock);
    return report;
  } catch (err) {
    if (request.signal?.aborted && request.signal.reason instanceof InterruptedError) {
      throw new InterruptedError(request.signal.reason.signal, 'gc stopped part-way: what it deleted is gone, the rest is left for the next gc (nothing referenced was touched)');
    }
    throw err;
  } finally {
    await lock?.release();
  }
}

async function planForget(repo: Repository, request: GcRequest, now: Date): Promise<GcGroupReport[]> {
  const scope = request.forget;
  if (!scope) return [];
  const bySource = new Map<string, { newest: Manifest; summaries: Summary[] }>();
  for await (const entry of repo.listSnapshots()) {
    if ('error' in entry) {
      throw new BakError(`${entry.error}; gc cannot know what it references, so nothing was deleted`, 1, {
        hint: 'inspect it with bak show, and move the broken manifest out of snapshots/ if it is beyond repair',
      });
    }
    const m = entry.manifest;
    if (!scope.select(m)) continue;
    const group = bySource.get(m.sourceKey) ?? { newest: m, summaries: [] };
    if (m.startedAt >= group.newest.startedAt) group.newest = m;
    group.summaries.push({ id: m.id, key: entry.key, startedAt: m.startedAt, status: m.status });
    bySource.set(m.sourceKey, group);
  }
  const pins = await listPins(repo.store);
  const reports: GcGroupReport[] = [];
  for (const [sourceKey, { newest, summaries }] of bySource) {
    const chosen = scope.policyFor(newest);
    const snapshots = summaries.map((s) => ({ ...s, pinned: pins.has(s.id) }));
    const decisions = chosen
      ? applyPolicy(snapshots, chosen.policy, now)
      : snapshots.map((s) => ({ id: s.id, startedAt: s.startedAt, keep: true, reasons: ['no retention policy: never pruned'] }));
    reports.push({
      sourceKey,
      source: newest.source,
      engine: newest.engine,
      policy: chosen?.policy ?? null,
      policyOrigin: chosen?.origin ?? 'none',
      decisions: decisions.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1)),
    });
  }
  return reports;
}

/** Calls the engine's release for a forgotten snapshot, then drops its manifest from trash/. */
async function releaseFromTrash(repo: Repository, ctx: EngineContext, trashKey: string): Promise<boolean> {
  const manifest = await repo.readManifest(trashKey);
  const engine = findEngine(manifest.engine);
  if (!engine && !manifest.externalData) {
    await repo.store.delete(trashKey);
    return true;
  }
  if (!engine) {
    ctx.log.warn(`snapshot ${manifest.id}: the ${manifest.engine} engine is not in this build; its release stays pending in ${trashKey}`);
    return false;
  }
  if (manifest.externalData) await engine.release(ctx, manifest);
  await repo.store.delete(trashKey);
  return true;
}

/**
 * Marks every blob a remaining manifest references (items, index blobs, and blobs their entries
 * reference), then deletes unmarked blobs older than the grace period. `forgetting` are manifests
 * a dry run pretends are gone.
 */
async function prune(repo: Repository, request: GcRequest, now: Date, forgetting: Set<string>, lock: Lock | undefined): Promise<PruneReport> {
  const progress = request.progress;
  progress?.activity('prune: marking the blobs snapshots reference');
  const referenced = new IdPrefixSet();
  // Exact ids here (few): skipping an index on a prefix match could leave its entries' blobs unmarked.
  const indexesRead = new Set<string>();
  for await (const entry of repo.listSnapshots()) {
    request.signal?.throwIfAborted();
    if ('error' in entry) throw new BakError(`${entry.error}; prune stopped before deleting anything`);
    if (forgetting.has(entry.key)) continue;
    const m = entry.manifest;
    // Marked by stored name (in an encrypted repository a keyed hash of the id), as the listing below gives them.
    const mark = (id: string) => referenced.add(repo.blobs.storedName(id));
    for (const item of m.items) for (const b of item.blobs) mark(b.id);
    for (const index of m.indexes) {
      // An index whose chunks were all read before has its entries' blobs marked already.
      if (index.blobs.every((b) => indexesRead.has(b.id))) continue;
      for await (const e of readIndex(repo.blobs, index)) {
        const blobs = (e as { blobs?: Array<{ id: string }> }).blobs;
        if (Array.isArray(blobs)) for (const b of blobs) mark(b.id);
      }
      for (const b of index.blobs) {
        mark(b.id);
        indexesRead.add(b.id);
      }
    }
  }
  const report: PruneReport = { blobsListed: 0, blobsReferenced: 0, blobsDeleted: 0, bytesFreed: 0, blobsTooYoung: 0 };
  const cutoff = now.getTime() - request.graceMs;
  const pool = new TaskPool(request.concurrency);
  progress?.activity(request.dryRun ? 'prune (dry run): listing blobs' : 'prune: listing blobs, deleting unreferenced ones');
  try {
    for await (const obj of repo.store.list(BLOBS_PREFIX)) {
      request.signal?.throwIfAborted();
      const name = obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (obj.key !== blobKey(name)) continue;
    report.blobsListed++;
    progress?.expect(1, obj.size);
    progress?.advance(1, obj.size);
    if (referenced.has(name)) {
      report.blobsReferenced++;
      continue;
    }
    if (obj.modified.getTime() > cutoff) {
      report.blobsTooYoung++;
      continue;
    }
      report.blobsDeleted++;
      report.bytesFreed += obj.size;
      if (request.dryRun) continue;
      lock?.assertHeld();
      await pool.submit(() => repo.store.delete(obj.key));
    }
  } catch (err) {
    // Stopped (an interrupt, a failed listing): the deletes in flight finish before the lock goes, or a backup let
    // in meanwhile could reuse a blob that a late delete then removes.
    await pool.drain().catch(() => undefined);
    throw err;
  }
  await pool.drain();
  return report;
}
