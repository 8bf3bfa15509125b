import type { RestoreReport, RestoreTarget } from '../engines/engine.ts';
import { InterruptedError } from '../errors.ts';
import { getEngine } from '../engines/registry.ts';
import type { Logger } from '../log.ts';
import type { Manifest } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import { NO_PROGRESS, type ProgressSink } from '../util/progress.ts';

export interface RestoreRequest {
  target: RestoreTarget;
  /** Plans and prints only: no lock, nothing written. */
  dryRun: boolean;
  log: Logger;
  concurrency: number;
  progress?: ProgressSink | undefined;
  /** Aborted by an interrupt: the engine stops what it runs (pg_restore, uploads) and the restore fails with exit 130/143. */
  signal?: AbortSignal | undefined;
}

/** The snapshot a restore means: an id (or unique prefix), or a source's newest one at or before a time. */
export async function snapshotToRestore(repo: Repository, which: { id: string } | { source: string; asOf: Date }, log: Logger): Promise<Manifest> {
  const manifest = 'id' in which ? (await repo.resolveSnapshot(which.id)).manifest : await repo.snapshotAsOf(which.source, which.asOf);
  if (!('id' in which)) log.info(`restoring snapshot ${manifest.id} (taken ${manifest.startedAt}), the newest of ${manifest.source} as of ${which.asOf.toISOString()}`);
  if (manifest.status !== 'complete') log.warn(`snapshot ${manifest.id} is ${manifest.status}: ${manifest.failures.map((f) => f.item).join(', ')} failed at backup`);
  return manifest;
}

/**
 * One restore: a shared lock (gc cannot prune the blobs being read), the engine's restore and its proof.
 * Progress: the snapshot's totals are the goal, the bytes read back from the repository the way there.
 */
export async function runRestore(repo: Repository, manifest: Manifest, request: RestoreRequest): Promise<RestoreReport> {
  const engine = getEngine(manifest.engine);
  const progress = request.progress ?? NO_PROGRESS;
  const lock = request.dryRun ? undefined : await repo.lock('shared', { command: `restore ${manifest.id}` });
  progress.activity(`restore ${manifest.id}`);
  progress.expect(manifest.totals.items, manifest.totals.bytes);
  progress.totalsKnown();
  const stopObserving = repo.blobs.observeReads((bytes) => progress.advance(0, bytes));
  const signal = request.signal;
  try {
    return await engine.restore({ repo, log: request.log, concurrency: request.concurrency, progress, ...(signal ? { signal } : {}) }, manifest, request.target);
  } catch (err) {
    // Interrupted: the engine's own failure (pg_restore killed) is the consequence. What it wrote stays where it is.
    if (signal?.aborted && signal.reason instanceof InterruptedError) {
      throw new InterruptedError(signal.reason.signal, 'the restore stopped part-way: the target holds what was restored so far', 'restore again into a fresh target, or with --clean (PostgreSQL) to replace what is there');
    }
    throw err;
  } finally {
    stopObserving();
    await lock?.release();
  }
}
