import type { Engine, Source } from '../engines/engine.ts';
import type { Logger } from '../log.ts';
import type { ProgressSink } from '../util/progress.ts';
import type { Manifest } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
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
}

/**
 * One backup, start to finish: shared lock, the engine writes its data, the manifest is written last.
 * On any failure the snapshot is abandoned (nothing becomes visible) and the error goes up, secrets scrubbed.
 */
export async function runBackup(repo: Repository, request: BackupRequest): Promise<Manifest> {
  const { engine, source, log } = request;
  const parent = await repo.latestSnapshot(sourceKeyOf(engine.name, source.uri), engine.resumesPartial ? ['complete', 'partial'] : 'complete');
  const writer = await repo.beginSnapshot({
    engine: engine.name,
    source: source.uri,
    job: request.job ?? null,
    parent: parent?.id ?? null,
    tags: request.tags ?? [],
    lockWaitMs: request.lockWaitMs ?? 0,
  });
  log.info(`snapshot ${writer.id} of ${source.uri}${parent ? ` (parent ${parent.id})` : ''}`);
  try {
    const result = await engine.backup({
      repo,
      log,
      concurrency: request.concurrency,
      source,
      writer,
      parent,
      progress: request.progress,
      ...(request.signal ? { signal: request.signal } : {}),
    });
    return await writer.commit({
      engineDetails: result.engineDetails,
      externalData: result.externalData ?? false,
      ...(result.totals ? { totals: result.totals } : {}),
    });
  } catch (err) {
    await writer.abort().catch(() => undefined);
    if (err instanceof Error) err.message = scrubSecrets(err.message, source.secrets);
    throw err;
  }
}
