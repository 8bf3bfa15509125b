import { findEngine } from '../engines/registry.ts';
import { MismatchError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Checker, type VerifyLevel, type VerifyReport } from '../repository/checker.ts';
import type { Manifest } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import { NO_PROGRESS, type ProgressSink } from '../util/progress.ts';

export interface VerifyRequest {
  /** One snapshot (id or unique prefix), or every snapshot in the repository. */
  snapshot: string | 'all';
  level: VerifyLevel | 'restore';
  /** With level restore: where the throwaway restore goes. */
  scratch?: string | undefined;
  log: Logger;
  concurrency: number;
  progress?: ProgressSink | undefined;
  /** Each snapshot's result as it is known, for output that keeps pace with a long --all. */
  onResult?(result: VerifyResult): void;
}

export type VerifyResult =
  | { snapshot: string; job: string | null; ok: boolean; report: VerifyReport }
  | { snapshot: string; job: null; ok: false; unreadable: string };

/**
 * Checks snapshots under a shared lock (gc cannot prune blobs out from under the check): the repository's
 * own check at the level asked, the engine's (external data still there …), and at level restore a restore
 * into scratch that proves itself and is dropped.
 */
export async function runVerify(repo: Repository, request: VerifyRequest): Promise<VerifyResult[]> {
  const lock = await repo.lock('shared', { command: `verify ${request.snapshot === 'all' ? '--all' : request.snapshot}` });
  const progress = request.progress ?? NO_PROGRESS;
  const results: VerifyResult[] = [];
  const done = (r: VerifyResult) => {
    results.push(r);
    request.onResult?.(r);
  };
  try {
    const checker = new Checker(repo, request.level === 'restore' ? 'data' : request.level, progress);
    if (request.snapshot !== 'all') {
      const { manifest } = await repo.resolveSnapshot(request.snapshot);
      progress.expect(manifest.totals.items, manifest.totals.bytes);
      progress.totalsKnown();
      done(await verifyOne(repo, checker, manifest, request, progress));
    } else {
      for await (const entry of repo.listSnapshots()) {
        if ('error' in entry) done({ snapshot: entry.id, job: null, ok: false, unreadable: entry.error });
        else {
          progress.expect(entry.manifest.totals.items, entry.manifest.totals.bytes);
          done(await verifyOne(repo, checker, entry.manifest, request, progress));
        }
      }
      progress.totalsKnown();
    }
    return results;
  } finally {
    await lock.release();
  }
}

async function verifyOne(repo: Repository, checker: Checker, manifest: Manifest, request: VerifyRequest, progress: ProgressSink): Promise<VerifyResult> {
  progress.activity(`verify ${manifest.id}`);
  const report = await checker.verify(manifest);
  const engine = findEngine(manifest.engine);
  const engineCtx = { repo, log: request.log, concurrency: request.concurrency };
  if (engine) {
    const extra = await engine.verify(engineCtx, manifest, request.level === 'restore' ? 'data' : request.level);
    if (extra.length) {
      report.ok = false;
      report.problems.push(...extra);
    }
    // Restore level: only a snapshot whose data is sound is worth restoring.
    if (request.level === 'restore' && report.ok) {
      progress.activity(`verify ${manifest.id}: restoring into scratch`);
      try {
        await engine.restore(engineCtx, manifest, { uri: request.scratch!, options: { scratch: true } });
      } catch (err) {
        if (!(err instanceof MismatchError)) throw err;
        report.ok = false;
        report.problems.push({ where: 'restore', problem: err.message });
      }
    }
  } else {
    request.log.warn(`engine ${manifest.engine} is not in this build: checked the repository data of ${manifest.id} only`);
  }
  return { snapshot: manifest.id, job: manifest.job, ok: report.ok, report };
}
