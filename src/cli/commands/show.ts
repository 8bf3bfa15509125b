import type { Command } from 'commander';
import { findEngine } from '../../engines/registry.ts';
import { formatBytes, formatTable, formatTime, printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerShow(program: Command): void {
  program
    .command('show')
    .description('print a snapshot manifest (human form, or the manifest itself with --json)')
    .argument('<snapshot-id>', 'snapshot id or a unique prefix of one')
    .action(
      action(async (ctx, id: string) => {
        const repo = await ctx.openRepository();
        const { key, manifest: m } = await repo.resolveSnapshot(id);
        if (ctx.out.json) {
          printJson(ctx.out, m);
          return;
        }
        const engine = findEngine(m.engine);
        const lines = [
          `snapshot   ${m.id}`,
          `status     ${m.status}`,
          `engine     ${m.engine}`,
          `source     ${m.source}`,
          `job        ${m.job ?? '-'}`,
          `started    ${formatTime(m.startedAt)}`,
          `finished   ${formatTime(m.finishedAt)}`,
          `host       ${m.host} (bak ${m.bakVersion})`,
          `parent     ${m.parent ?? '-'}`,
          `tags       ${m.tags.length ? m.tags.join(', ') : '-'}`,
          `totals     ${m.totals.items} items, ${formatBytes(m.totals.bytes)} (${formatBytes(m.totals.storedBytes)} stored, ${formatBytes(m.totals.newBytes)} new)${m.totals.rows !== undefined ? `, ${m.totals.rows} rows` : ''}`,
          `manifest   ${key}`,
        ];
        ctx.out.write(`${lines.join('\n')}\n`);
        if (m.items.length) {
          ctx.out.write('\n');
          ctx.out.write(
            formatTable(
              ['ITEM', 'KIND', 'SIZE', 'ROWS', 'BLOBS', 'CHECKSUM'],
              m.items.map((i) => [engine?.itemLabel?.(i) ?? i.name, i.kind, formatBytes(i.bytes), i.rows === undefined ? '-' : String(i.rows), String(i.blobs.length), i.checksum.slice(0, 19)]),
            ),
          );
        }
        if (m.indexes.length) {
          ctx.out.write('\n');
          ctx.out.write(formatTable(['INDEX', 'ENTRIES', 'SIZE', 'BLOBS'], m.indexes.map((x) => [x.name, String(x.count), formatBytes(x.bytes), String(x.blobs.length)])));
        }
        if (m.failures.length) {
          ctx.out.write('\nfailures:\n');
          for (const f of m.failures) ctx.out.write(`  ${f.item}: ${f.error}\n`);
        }
        if (Object.keys(m.engineDetails).length) ctx.out.write(`\nengine details:\n${JSON.stringify(m.engineDetails, null, 2)}\n`);
      }),
    );
}
