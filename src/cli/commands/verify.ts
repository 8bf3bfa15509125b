import { Option, type Command } from 'commander';
import { findEngine } from '../../engines/registry.ts';
import { ExitCode, MismatchError, UsageError } from '../../errors.ts';
import { Checker, type VerifyLevel, type VerifyReport } from '../../repository/checker.ts';
import type { Manifest } from '../../repository/manifest.ts';
import type { Repository } from '../../repository/repository.ts';
import { formatBytes, printJson } from '../output.ts';
import { action } from '../program.ts';
import type { CliContext } from '../context.ts';

interface VerifyOptions {
  all?: boolean;
  level: VerifyLevel | 'restore';
  scratch?: string;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check that snapshots are whole: exit 0 if sound, 3 if anything is missing or corrupt')
    .argument('[snapshot-id]', 'snapshot id or unique prefix (or --all)')
    .option('--all', 'verify every snapshot in the repository')
    .addOption(
      new Option('--level <level>', 'blobs: every referenced blob exists with the right size; data: every blob re-read and hashed; restore: data, then a restore into --scratch that is checked and dropped')
        .choices(['blobs', 'data', 'restore'])
        .default('blobs'),
    )
    .option('--scratch <uri>', 'with --level restore: a server to restore into under throwaway names (e.g. postgres://postgres@scratch:5432)')
    .action(
      action(async (ctx, id: string | undefined, options: VerifyOptions) => {
        if (!id && !options.all) throw new UsageError('name a snapshot id or pass --all');
        if (id && options.all) throw new UsageError('give either a snapshot id or --all, not both');
        if ((options.level === 'restore') !== Boolean(options.scratch)) throw new UsageError('--level restore needs --scratch <uri>, and --scratch needs --level restore');
        const repo = await ctx.openRepository();
        // A shared lock: gc (exclusive) cannot prune blobs out from under the check.
        const lock = await repo.lock('shared', { command: `verify ${id ?? '--all'}` });
        try {
          const checker = new Checker(repo, options.level === 'restore' ? 'data' : options.level);
          const reports: Array<VerifyReport | { snapshot: string; ok: false; unreadable: string }> = [];
          if (id) {
            reports.push(await verifyOne(ctx, repo, checker, (await repo.resolveSnapshot(id)).manifest, options));
          } else {
            for await (const entry of repo.listSnapshots()) {
              if ('error' in entry) {
                reports.push({ snapshot: entry.id, ok: false, unreadable: entry.error });
                if (!ctx.out.json) ctx.out.write(`FAILED ${entry.id}: ${entry.error}\n`);
              } else reports.push(await verifyOne(ctx, repo, checker, entry.manifest, options));
            }
          }
          const failed = reports.filter((r) => !r.ok).length;
          if (ctx.out.json) printJson(ctx.out, { repository: repo.description, level: options.level, ok: failed === 0, failed, snapshots: reports });
          else ctx.out.write(`${reports.length - failed} of ${reports.length} snapshot(s) verified at level ${options.level}${failed ? `; ${failed} FAILED` : ''}\n`);
          return failed ? ExitCode.mismatch : ExitCode.ok;
        } finally {
          await lock.release();
        }
      }),
    );
}

async function verifyOne(ctx: CliContext, repo: Repository, checker: Checker, manifest: Manifest, options: VerifyOptions): Promise<VerifyReport> {
  const report = await checker.verify(manifest);
  const engine = findEngine(manifest.engine);
  const engineCtx = { repo, log: ctx.log, concurrency: ctx.concurrency };
  if (engine) {
    const extra = await engine.verify(engineCtx, manifest, options.level === 'restore' ? 'data' : options.level);
    if (extra.length) {
      report.ok = false;
      report.problems.push(...extra);
    }
    // Restore level: only a snapshot whose data is sound is worth restoring.
    if (options.level === 'restore' && report.ok) {
      try {
        await engine.restore(engineCtx, manifest, { uri: options.scratch!, options: { scratch: true } });
      } catch (err) {
        if (!(err instanceof MismatchError)) throw err;
        report.ok = false;
        report.problems.push({ where: 'restore', problem: err.message });
      }
    }
  } else {
    ctx.log.warn(`engine ${manifest.engine} is not in this build: checked the repository data of ${manifest.id} only`);
  }
  if (!ctx.out.json) {
    const summary = `${report.blobsChecked} blobs, ${formatBytes(report.bytesChecked)}`;
    if (report.ok) ctx.out.write(`ok     ${manifest.id} (${summary})\n`);
    else {
      ctx.out.write(`FAILED ${manifest.id} (${summary})\n`);
      for (const p of report.problems) ctx.out.write(`  ${p.where}${p.blob ? `: blob ${p.blob}` : ''}: ${p.problem}\n`);
    }
  }
  return report;
}
