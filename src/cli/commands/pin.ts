import type { Command } from 'commander';
import { pinSnapshot, unpinSnapshot } from '../../repository/pins.ts';
import { printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerPin(program: Command): void {
  program
    .command('pin')
    .description('protect a snapshot from gc, whatever the retention policy says')
    .argument('<snapshot-id>', 'snapshot id or unique prefix')
    .option('--note <text>', 'why it is pinned', '')
    .action(
      action(async (ctx, id: string, options: { note: string }) => {
        const repo = await ctx.openRepository();
        const { manifest } = await repo.resolveSnapshot(id);
        const created = await pinSnapshot(repo.store, manifest.id, options.note);
        if (ctx.out.json) printJson(ctx.out, { id: manifest.id, pinned: true, alreadyPinned: !created });
        else ctx.out.write(created ? `pinned ${manifest.id}\n` : `${manifest.id} was already pinned\n`);
      }),
    );
  program
    .command('unpin')
    .description('let gc apply the retention policy to a pinned snapshot again')
    .argument('<snapshot-id>', 'snapshot id or unique prefix')
    .action(
      action(async (ctx, id: string) => {
        const repo = await ctx.openRepository();
        const { manifest } = await repo.resolveSnapshot(id);
        const existed = await unpinSnapshot(repo.store, manifest.id);
        if (ctx.out.json) printJson(ctx.out, { id: manifest.id, pinned: false, wasPinned: existed });
        else ctx.out.write(existed ? `unpinned ${manifest.id}\n` : `${manifest.id} was not pinned\n`);
      }),
    );
}
