import type { Command } from 'commander';
import type { Manifest } from '../../repository/manifest.ts';
import { sourceMatches } from '../../repository/source-key.ts';
import { formatBytes, formatTable, formatTime, printJson } from '../output.ts';
import { action } from '../program.ts';

interface SnapshotFilters {
  source?: string;
  engine?: string;
  job?: string;
}

function matches(m: Manifest, f: SnapshotFilters): boolean {
  if (f.engine && m.engine !== f.engine) return false;
  if (f.job && m.job !== f.job) return false;
  if (f.source && !sourceMatches(m, f.source)) return false;
  return true;
}

export function registerSnapshots(program: Command): void {
  program
    .command('snapshots')
    .alias('ls')
    .description('list snapshots, oldest first; unreadable manifests are listed as such, never hidden')
    .option('--source <uri>', 'only snapshots of this source (URI, part of it, or source key)')
    .option('--engine <name>', 'only snapshots of this engine')
    .option('--job <name>', 'only snapshots made by this job')
    .action(
      action(async (ctx, filters: SnapshotFilters) => {
        const repo = await ctx.openRepository();
        const rows: Array<Record<string, unknown>> = [];
        let unreadable = 0;
        for await (const entry of repo.listSnapshots()) {
          if ('error' in entry) {
            unreadable++;
            rows.push({ id: entry.id, sourceKey: entry.folder, status: 'unreadable', error: entry.error });
            ctx.log.warn(entry.error);
            continue;
          }
          const m = entry.manifest;
          if (!matches(m, filters)) continue;
          rows.push({
            id: m.id,
            startedAt: m.startedAt,
            engine: m.engine,
            job: m.job,
            source: m.source,
            sourceKey: m.sourceKey,
            status: m.status,
            items: m.totals.items,
            bytes: m.totals.bytes,
            storedBytes: m.totals.storedBytes,
            tags: m.tags,
          });
        }
        // Oldest first: ids sort to the second, so within one second the start time orders them (an unreadable
        // manifest has none and sorts by its id).
        const when = (r: Record<string, unknown>) => (typeof r.startedAt === 'string' ? r.startedAt : `${String(r.id).slice(0, 19).replace(/T(\d\d)-(\d\d)-(\d\d)/, 'T$1:$2:$3')}.000Z`);
        rows.sort((a, b) => when(a).localeCompare(when(b)) || String(a.id).localeCompare(String(b.id)));
        if (ctx.out.json) {
          printJson(ctx.out, { repository: repo.description, snapshots: rows, unreadable });
          return;
        }
        if (rows.length === 0) {
          ctx.out.write(`no snapshots in ${repo.description}\n`);
          return;
        }
        ctx.out.write(
          formatTable(
            ['ID', 'TIME', 'ENGINE', 'JOB', 'STATUS', 'ITEMS', 'SIZE', 'SOURCE'],
            rows.map((r) =>
              r.status === 'unreadable'
                ? [String(r.id), '-', '-', '-', 'UNREADABLE', '-', '-', String(r.error)]
                : [
                    String(r.id),
                    formatTime(String(r.startedAt)),
                    String(r.engine),
                    String(r.job ?? '-'),
                    String(r.status),
                    String(r.items),
                    formatBytes(Number(r.bytes)),
                    String(r.source),
                  ],
            ),
          ),
        );
        ctx.out.write(`${rows.length} snapshot(s)${unreadable ? `, ${unreadable} unreadable` : ''}\n`);
      }),
    );
}
