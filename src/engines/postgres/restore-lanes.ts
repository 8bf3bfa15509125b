/**
 * Restoring more tables than --jobs, biggest first, without letting pg_restore stat the data files.
 *
 * Parallel pg_restore orders its work by each data file's size, which it takes with stat() before it starts; a
 * named pipe's size is 0. Showing it sparse files of the right size and swapping the pipes in once its output said
 * it had taken the sizes raced it: when that line reached bak late, a worker read a placeholder's zeros and the
 * restore failed. So bak schedules the data itself, the way pg_restore's sections are made to be split:
 * pre-data in one pg_restore, then the data in `jobs` lanes (each a serial pg_restore of its own --use-list,
 * biggest first, lanes balanced by bytes), then post-data in one parallel pg_restore. With no more data files
 * than jobs every table starts at once anyway, and one parallel pg_restore over pipes does it all.
 */
import type { Toc, TocEntry, TocSection } from './toc.ts';

/**
 * Each entry's section as pg_restore decides what --section selects: an entry of section "none" (a comment, an
 * ACL) goes with the section of the entry before it (ProcessArchiveRestoreOptions in pg_backup_archiver.c).
 */
export function effectiveSections(toc: Toc): Array<{ entry: TocEntry; section: Exclude<TocSection, 'none'> }> {
  let current: Exclude<TocSection, 'none'> = 'pre-data';
  return toc.entries.map((entry) => {
    if (entry.section !== 'none') current = entry.section;
    return { entry, section: current };
  });
}

/** The entries `pg_restore --section=data` restores, in TOC order. */
export function dataSection(toc: Toc): TocEntry[] {
  return effectiveSections(toc)
    .filter((e) => e.section === 'data')
    .map((e) => e.entry);
}

/**
 * Whether the data section needs bak's lanes: parallel, with more data files than jobs (see the header). Items
 * without a file (sequence values) take no time worth scheduling.
 */
export function needsLanes(data: readonly TocEntry[], jobs: number): boolean {
  return jobs > 1 && data.filter((e) => e.dataFile !== null).length > jobs;
}

/**
 * The data section's entries (`dataSection`) split into at most `jobs` lanes: biggest first, each to the lane with the fewest
 * bytes so far (longest-processing-time scheduling, which parallel pg_restore approximates too). `bytesOf` gives
 * an entry's data size; entries without a data file (sequence values) weigh nothing. Returns dump ids per lane.
 */
export function planLanes(data: readonly TocEntry[], jobs: number, bytesOf: (entry: TocEntry) => number): number[][] {
  const entries = data
    .map((entry) => ({ id: entry.dumpId, bytes: bytesOf(entry) }))
    .sort((a, b) => b.bytes - a.bytes || a.id - b.id);
  const lanes = Array.from({ length: Math.max(1, Math.min(jobs, entries.length)) }, () => ({ bytes: 0, ids: [] as number[] }));
  for (const { id, bytes } of entries) {
    const lightest = lanes.reduce((best, lane) => (lane.bytes < best.bytes ? lane : best));
    lightest.ids.push(id);
    lightest.bytes += bytes;
  }
  return lanes.map((lane) => lane.ids).filter((ids) => ids.length > 0);
}

/** A pg_restore --use-list file: one entry per line, in restore order (pg_restore reads the leading dump id). */
export function useListText(ids: readonly number[]): string {
  return ids.map((id) => `${id};\n`).join('');
}
