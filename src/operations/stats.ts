import { UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { BLOBS_PREFIX } from '../repository/blobs.ts';
import type { Manifest, SnapshotStatus } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import { sourceMatches } from '../repository/source-key.ts';

export interface StatsRequest {
  /** Only sources this names (URI, a part of it, or source key), as `bak snapshots --source` takes it. */
  source?: string;
  /** The end of the growth windows (default: now). */
  now?: Date;
  log?: Logger;
}

export interface Growth {
  /** Snapshots started within the window. */
  snapshots: number;
  /** What they added to the repository: the sum of their `totals.newBytes`. */
  bytes: number;
}

export interface SourceStats {
  sourceKey: string;
  /** Null only when every manifest of the source is unreadable. */
  engine: string | null;
  source: string | null;
  snapshots: Record<SnapshotStatus, number> & { total: number; unreadable: number };
  oldest: string | null;
  newest: string | null;
  /** Sum of `totals.bytes`: what restoring every snapshot would produce. */
  logicalBytes: number;
  /** Sum of `totals.newBytes`: what these snapshots added to the repository (compressed, after dedup). */
  storedBytes: number;
  /** logicalBytes - storedBytes: what dedup and compression saved (negative when they cost more than they saved). */
  savedBytes: number;
  /** savedBytes / logicalBytes, null when there is nothing logical. */
  savedRatio: number | null;
  growth: { last7Days: Growth; last30Days: Growth };
}

export interface StatsReport {
  repository: string;
  /** The end of the growth windows. */
  at: string;
  /** The --source filter, if any: it narrows `sources`, never `totals`. */
  filter: string | null;
  sources: SourceStats[];
  /** The whole repository, whatever the filter. */
  totals: {
    sources: number;
    snapshots: number;
    unreadable: number;
    logicalBytes: number;
    storedBytes: number;
    /** Every object under blobs/, from one streamed listing (referenced or not: telling them apart is gc's job). */
    blobs: { objects: number; bytes: number };
  };
}

const DAY_MS = 86_400_000;

function emptySource(sourceKey: string): SourceStats {
  return {
    sourceKey,
    engine: null,
    source: null,
    snapshots: { total: 0, complete: 0, partial: 0, failed: 0, unreadable: 0 },
    oldest: null,
    newest: null,
    logicalBytes: 0,
    storedBytes: 0,
    savedBytes: 0,
    savedRatio: null,
    growth: { last7Days: { snapshots: 0, bytes: 0 }, last30Days: { snapshots: 0, bytes: 0 } },
  };
}

/**
 * Sizes and growth per source and for the whole repository, read-only: every manifest once (streamed through
 * `listSnapshots`, one aggregate per source kept, never a manifest) and one streamed listing of blobs/, run side by
 * side. Index blobs are never read, so the figures are the manifests' totals, not a walk of every referenced blob.
 */
export async function repositoryStats(repo: Repository, request: StatsRequest = {}): Promise<StatsReport> {
  const now = request.now ?? new Date();
  const cut7 = now.getTime() - 7 * DAY_MS;
  const cut30 = now.getTime() - 30 * DAY_MS;
  const bySource = new Map<string, SourceStats>();
  // Unreadable manifests are known by their folder only: the source key, or in an encrypted repository a name hiding it.
  const unreadableByKey = new Map<string, number>();
  const sourceKeyOfFolder = new Map<string, string>();
  const totals: StatsReport['totals'] = { sources: 0, snapshots: 0, unreadable: 0, logicalBytes: 0, storedBytes: 0, blobs: { objects: 0, bytes: 0 } };

  const readManifests = async () => {
    const keys = new Set<string>();
    for await (const entry of repo.listSnapshots()) {
      keys.add(entry.folder);
      if ('error' in entry) {
        totals.unreadable++;
        unreadableByKey.set(entry.folder, (unreadableByKey.get(entry.folder) ?? 0) + 1);
        request.log?.warn(entry.error);
        continue;
      }
      const m = entry.manifest;
      sourceKeyOfFolder.set(entry.folder, m.sourceKey);
      totals.snapshots++;
      totals.logicalBytes += m.totals.bytes;
      totals.storedBytes += m.totals.newBytes;
      if (request.source !== undefined && !sourceMatches(m, request.source)) continue;
      let s = bySource.get(m.sourceKey);
      if (!s) bySource.set(m.sourceKey, (s = emptySource(m.sourceKey)));
      add(s, m, cut7, cut30);
    }
    totals.sources = keys.size;
  };

  const listBlobs = async () => {
    for await (const obj of repo.store.list(BLOBS_PREFIX)) {
      totals.blobs.objects++;
      totals.blobs.bytes += obj.size;
    }
  };

  await Promise.all([readManifests(), listBlobs()]);

  // Unreadable manifests count with their source; a source with nothing readable is named by its key alone.
  for (const [folder, count] of unreadableByKey) {
    const key = sourceKeyOfFolder.get(folder) ?? folder;
    let s = bySource.get(key);
    if (!s) {
      if (request.source !== undefined && !sourceMatches({ source: key, sourceKey: key }, request.source)) continue;
      bySource.set(key, (s = emptySource(key)));
    }
    s.snapshots.unreadable += count;
    s.snapshots.total += count;
  }

  if (request.source !== undefined && bySource.size === 0) {
    throw new UsageError(`no snapshot of a source matching "${request.source}" in ${repo.description}`, {
      hint: 'bak snapshots lists every snapshot with its source; --source takes the source URI, a part of it, or its source key',
    });
  }

  const sources = [...bySource.values()].sort((a, b) => (a.source ?? a.sourceKey).localeCompare(b.source ?? b.sourceKey) || a.sourceKey.localeCompare(b.sourceKey));
  for (const s of sources) {
    s.savedBytes = s.logicalBytes - s.storedBytes;
    s.savedRatio = s.logicalBytes > 0 ? s.savedBytes / s.logicalBytes : null;
  }
  return { repository: repo.description, at: now.toISOString(), filter: request.source ?? null, sources, totals };
}

function add(s: SourceStats, m: Manifest, cut7: number, cut30: number): void {
  // The newest manifest names the source (a redaction rule may have changed; the key has not).
  const started = Date.parse(m.startedAt);
  if (s.newest === null || started >= Date.parse(s.newest)) {
    s.source = m.source;
    s.engine = m.engine;
    s.newest = m.startedAt;
  }
  if (s.oldest === null || started < Date.parse(s.oldest)) s.oldest = m.startedAt;
  s.snapshots.total++;
  s.snapshots[m.status]++;
  s.logicalBytes += m.totals.bytes;
  s.storedBytes += m.totals.newBytes;
  if (started >= cut30) {
    s.growth.last30Days.snapshots++;
    s.growth.last30Days.bytes += m.totals.newBytes;
  }
  if (started >= cut7) {
    s.growth.last7Days.snapshots++;
    s.growth.last7Days.bytes += m.totals.newBytes;
  }
}
