import type { Command } from 'commander';
import { UsageError } from '../../errors.ts';
import { isStale, listLocks } from '../../repository/locks.ts';
import { formatTable, formatTime, printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerUnlock(program: Command): void {
  program
    .command('unlock')
    .description('remove stale locks (expired, or unreadable) left by crashed processes')
    .option('--all', 'also remove locks that are still live (only when you know their holders are gone)')
    .option('--yes', 'confirm --all')
    .action(
      action(async (ctx, options: { all?: boolean; yes?: boolean }) => {
        if (options.all && !options.yes) throw new UsageError('--all removes live locks too: add --yes if every bak process using this repository is stopped');
        const repo = await ctx.openRepository();
        const removed: Array<Record<string, string>> = [];
        const kept: Array<Record<string, string>> = [];
        for await (const lock of listLocks(repo.store)) {
          const row =
            'info' in lock
              ? { id: lock.info.id, kind: lock.info.kind, holder: `${lock.info.host} pid ${lock.info.pid}`, command: lock.info.command, expiresAt: lock.info.expiresAt }
              : { id: lock.key, kind: '?', holder: '?', command: lock.error, expiresAt: '' };
          if (options.all || !('info' in lock) || isStale(lock.info)) {
            await repo.store.delete(lock.key);
            removed.push(row);
          } else kept.push(row);
        }
        if (ctx.out.json) {
          printJson(ctx.out, { repository: repo.description, removed, kept });
          return;
        }
        const table = (rows: Array<Record<string, string>>) =>
          formatTable(['LOCK', 'KIND', 'HOLDER', 'EXPIRES', 'COMMAND'], rows.map((r) => [r.id!, r.kind!, r.holder!, r.expiresAt ? formatTime(r.expiresAt) : '-', r.command!]));
        ctx.out.write(removed.length ? `removed ${removed.length} lock(s):\n${table(removed)}` : 'no stale locks\n');
        if (kept.length) ctx.out.write(`kept ${kept.length} live lock(s):\n${table(kept)}`);
      }),
    );
}
