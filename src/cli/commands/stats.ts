import type { Command } from 'commander';
import { repositoryStats, type Growth, type SourceStats, type StatsReport } from '../../operations/stats.ts';
import { formatBytes, formatTable, printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('sizes per source (logical, stored, saved by dedup and compression, growth over 7 and 30 days) and for the whole repository; read-only')
    .option('--source <uri>', 'only this source (URI, part of it, or source key); the repository totals still cover everything')
    .action(
      action(async (ctx, flags: { source?: string }) => {
        const repo = await ctx.openRepository();
        const report = await repositoryStats(repo, { ...(flags.source !== undefined ? { source: flags.source } : {}), log: ctx.log });
        if (ctx.out.json) printJson(ctx.out, report);
        else ctx.out.write(render(report));
      }),
    );
}

function render(r: StatsReport): string {
  const parts: string[] = [];
  if (r.sources.length === 0) parts.push(`no snapshots in ${r.repository}\n`);
  else {
    parts.push(
      formatTable(
        ['ENGINE', 'SNAPSHOTS', 'LOGICAL', 'STORED', 'SAVED', 'LAST 7 DAYS', 'LAST 30 DAYS', 'SOURCE'],
        r.sources.map((s) => [
          s.engine ?? '-',
          snapshotCount(s),
          formatBytes(s.logicalBytes),
          formatBytes(s.storedBytes),
          saved(s.savedBytes, s.savedRatio),
          growth(s.growth.last7Days),
          growth(s.growth.last30Days),
          s.source ?? `${s.sourceKey} (no readable manifest)`,
        ]),
      ),
    );
  }
  const t = r.totals;
  const ratio = t.logicalBytes > 0 ? (t.logicalBytes - t.storedBytes) / t.logicalBytes : null;
  parts.push(
    '\n',
    [
      `repository  ${r.repository}`,
      `sources     ${t.sources}`,
      `snapshots   ${t.snapshots}${t.unreadable ? ` (+${t.unreadable} unreadable)` : ''}`,
      `logical     ${formatBytes(t.logicalBytes)}`,
      `stored      ${formatBytes(t.storedBytes)} (what the snapshots added), saved ${saved(t.logicalBytes - t.storedBytes, ratio)}`,
      `blobs       ${formatBytes(t.blobs.bytes)} in ${t.blobs.objects} object(s) under blobs/`,
    ].join('\n'),
    '\n',
  );
  return parts.join('');
}

function snapshotCount(s: SourceStats): string {
  const c = s.snapshots;
  const notComplete = (['partial', 'failed', 'unreadable'] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  return notComplete.length === 0 ? String(c.total) : `${c.total} (${notComplete.join(', ')})`;
}

function signedBytes(bytes: number): string {
  return bytes < 0 ? `-${formatBytes(-bytes)}` : formatBytes(bytes);
}

function saved(bytes: number, ratio: number | null): string {
  return ratio === null ? signedBytes(bytes) : `${signedBytes(bytes)} (${(ratio * 100).toFixed(1)}%)`;
}

function growth(g: Growth): string {
  return g.snapshots === 0 ? '-' : `+${formatBytes(g.bytes)} (${g.snapshots})`;
}
