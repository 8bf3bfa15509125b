import type { EarlyStart, Engine, Source } from '../engines/engine.ts';
import type { Logger } from '../log.ts';
import type { ProgressSink } from '../util/progress.ts';
import type { Manifest } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import type { SnapshotWriter } from '../repository/snapshot-writer.ts';
import { sourceKeyOf } from '../repository/source-key.ts';
import { scrubSecrets } from '../util/redact.ts';

export interface BackupRequest {
  engine: Engine;
  source: Source;
  job?: string | null;
  tags?: string[];
  log: Logger;
  concurrency: number;
  signal?: AbortSignal;
  lockWaitMs?: number;
  progress?: ProgressSink | undefined;
  /** What the engine began while the repository opened (openForBackup); runBackup hands it over or cancels it. */
  early?: EarlyStart | undefined;
}

/**
 * Opens the backup's repository while the engine begins what needs no key (Engine.startBackup): the key derivation of
 * an encrypted repository (~0.3 s of scrypt on one thread-pool thread) and the engine's start (connecting, pg_dump's
 * catalog reads) overlap. Not when the backup may wait for a lock: a dump would fill local staging while it waits.
 */
export async function openForBackup(
  engine: Engine,
  source: Source,
  open: () => Promise<Repository>,
  options: { log: Logger; lockWaitMs: number; signal?: AbortSignal | undefined },
): Promise<{ repo: Repository; early: EarlyStart | undefined }> {
  const starting = options.lockWaitMs === 0 ? engine.startBackup?.(source, options.log) : undefined;
  try {
    const repo = await open();
    options.signal?.throwIfAborted();
    return { repo, early: await starting };
  } catch (err) {
    await starting?.then((early) => early.cancel()).catch(() => undefined);
    throw err;
  }
}

/**
 * One backup, start to finish: shared lock, the engine writes its data, the manifest is written last.
 * On any failure the snapshot is abandoned (nothing becomes visible) and the error goes up, secrets scrubbed.
 */
export async function runBackup(repo: Repository, request: BackupRequest): Promise<Manifest> {
  const { engine, source, log, early } = request;
  let parent: Manifest | undefined;
  let writer: SnapshotWriter;
  try {
    request.signal?.throwIfAborted();
    parent = await repo.latestSnapshot(sourceKeyOf(engine.name, source.uri), engine.resumesPartial ? ['complete', 'partial'] : 'complete');
    writer = await repo.beginSnapshot({
      engine: engine.name,
      source: source.uri,
      job: request.job ?? null,
      parent: parent?.id ?? null,
      tags: request.tags ?? [],
      lockWaitMs: request.lockWaitMs ?? 0,
    });
  } catch (err) {
    await early?.cancel().catch(() => undefined);
    throw err;
  }
  log.info(`snapshot ${writer.id} of ${source.uri}${parent ? ` (parent ${parent.id})` : ''}`);
  try {
    const result = await engine.backup({
      repo,
      log,
      concurrency: request.concurrency,
      source,
      writer,
      parent,
      early,
      progress: request.progress,
      ...(request.signal ? { signal: request.signal } : {}),
    });
    request.signal?.throwIfAborted(); // stopped after the engine finished: still nothing is committed
    return await writer.commit({
      engineDetails: result.engineDetails,
      externalData: result.externalData ?? false,
      ...(result.totals ? { totals: result.totals } : {}),
    });
  } catch (err) {
    await writer.abort().catch(() => undefined);
    // Interrupted: what the engine failed with (pg_dump killed, a socket closed) is the consequence, not the news.
    if (request.signal?.aborted) throw request.signal.reason;
    if (err instanceof Error) err.message = scrubSecrets(err.message, source.secrets);
    throw err;
  }
}
