import { Option, type Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.ts';
import { updateMetricsFile } from '../../operations/metrics.ts';
import { runVerify, type VerifyResult } from '../../operations/verify.ts';
import type { VerifyLevel } from '../../repository/checker.ts';
import { formatBytes, printJson } from '../output.ts';
import { action } from '../program.ts';
import type { CliContext } from '../context.ts';

interface VerifyOptions {
  all?: boolean;
  level: VerifyLevel | 'restore';
  scratch?: string;
  metricsFile?: string;
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
    .option('--metrics-file <path>', "record each verified job's last verify time and result in this Prometheus text-format file (default: config defaults.metricsFile)")
    .action(
      action(async (ctx, id: string | undefined, options: VerifyOptions) => {
        if (!id && !options.all) throw new UsageError('name a snapshot id or pass --all');
        if (id && options.all) throw new UsageError('give either a snapshot id or --all, not both');
        if ((options.level === 'restore') !== Boolean(options.scratch)) throw new UsageError('--level restore needs --scratch <uri>, and --scratch needs --level restore');
        const repo = await ctx.openRepository();
        const startedAt = new Date();
        const results = await runVerify(repo, {
          snapshot: id ?? 'all',
          level: options.level,
          scratch: options.scratch,
          log: ctx.log,
          concurrency: ctx.concurrency,
          // --level blobs is a listing of sizes: quick, and nothing worth a progress line.
          progress: options.level === 'blobs' ? undefined : ctx.startProgress(`verify ${id ?? '--all'}`),
          onResult: (r) => {
            if (!ctx.out.json) printResult(ctx, r);
          },
        });
        const failed = results.filter((r) => !r.ok).length;
        ctx.endProgress(failed === 0);
        const metricsFile = options.metricsFile ?? ctx.config.config.defaults.metricsFile;
        if (metricsFile !== undefined) await recordVerifyMetrics(ctx, metricsFile, results, startedAt);
        if (ctx.out.json) {
          const snapshots = results.map((r) => ('unreadable' in r ? { snapshot: r.snapshot, ok: false, unreadable: r.unreadable } : r.report));
          printJson(ctx.out, { repository: repo.description, level: options.level, ok: failed === 0, failed, snapshots });
        } else ctx.out.write(`${results.length - failed} of ${results.length} snapshot(s) verified at level ${options.level}${failed ? `; ${failed} FAILED` : ''}\n`);
        return failed ? ExitCode.mismatch : ExitCode.ok;
      }),
    );
}

function printResult(ctx: CliContext, r: VerifyResult): void {
  if ('unreadable' in r) {
    ctx.out.write(`FAILED ${r.snapshot}: ${r.unreadable}\n`);
    return;
  }
  const summary = `${r.report.blobsChecked} blobs, ${formatBytes(r.report.bytesChecked)}`;
  if (r.ok) ctx.out.write(`ok     ${r.snapshot} (${summary})\n`);
  else {
    ctx.out.write(`FAILED ${r.snapshot} (${summary})\n`);
    for (const p of r.report.problems) ctx.out.write(`  ${p.where}${p.blob ? `: blob ${p.blob}` : ''}: ${p.problem}\n`);
  }
}

/** Per job: verified now, sound only if every snapshot of it that was checked is. */
async function recordVerifyMetrics(ctx: CliContext, file: string, results: VerifyResult[], at: Date): Promise<void> {
  const byJob = new Map<string, boolean>();
  for (const r of results) if (r.job !== null) byJob.set(r.job, (byJob.get(r.job) ?? true) && r.ok);
  await updateMetricsFile(file, new Map([...byJob].map(([job, ok]) => [job, { verify: { at, ok } }])), ctx.log);
}
