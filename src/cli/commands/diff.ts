import type { Command } from 'commander';
import { diffSnapshots, type Change } from '../../operations/diff.ts';
import { formatBytes } from '../output.ts';
import { action } from '../program.ts';

const MARK: Record<Change['change'], string> = { added: '+', removed: '-', changed: '~' };

function sizes(c: Change): string {
  const size = (n: number | undefined) => (n === undefined ? '?' : formatBytes(n));
  const rows = (n: number | undefined) => (n === undefined ? '' : ` ${n} rows`);
  if (c.change === 'added') return `${size(c.sizeAfter)}${rows(c.rowsAfter)}`;
  if (c.change === 'removed') return `${size(c.sizeBefore)}${rows(c.rowsBefore)}`;
  return `${size(c.sizeBefore)}${rows(c.rowsBefore)} -> ${size(c.sizeAfter)}${rows(c.rowsAfter)}`;
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('what changed between two snapshots of one source: items, and keys of keyed indexes (S3 objects, Datomic segments …)')
    .argument('<snapshot-a>', 'the older snapshot (id or unique prefix)')
    .argument('<snapshot-b>', 'the newer snapshot')
    .action(
      action(async (ctx, idA: string, idB: string) => {
        const repo = await ctx.openRepository();
        const a = (await repo.resolveSnapshot(idA)).manifest;
        const b = (await repo.resolveSnapshot(idB)).manifest;
        const counts = { added: 0, removed: 0, changed: 0 };
        // Streamed out as found: a diff of millions of keys is never held whole (nor is the JSON document).
        if (ctx.out.json) ctx.out.write(`{"a":${JSON.stringify(a.id)},"b":${JSON.stringify(b.id)},"source":${JSON.stringify(a.source)},"changes":[`);
        let first = true;
        for await (const change of diffSnapshots(repo.blobs, a, b)) {
          counts[change.change]++;
          if (ctx.out.json) {
            ctx.out.write(`${first ? '\n' : ',\n'}${JSON.stringify(change)}`);
            first = false;
          } else {
            ctx.out.write(`${MARK[change.change]} ${change.where === 'items' ? '' : `${change.where}: `}${change.key}  ${sizes(change)}\n`);
          }
        }
        if (ctx.out.json) ctx.out.write(`\n],"counts":${JSON.stringify(counts)}}\n`);
        else ctx.out.write(`${counts.added} added, ${counts.removed} removed, ${counts.changed} changed (${a.id} -> ${b.id})\n`);
      }),
    );
}
