import { Option, type Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.ts';
import { runGc, type GcReport } from '../../operations/gc.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { durationMs, hasKeepRule, type RetentionPolicy } from '../../repository/retention.ts';
import { formatBytes, formatTable, formatTime, printJson } from '../output.ts';
import { action, parsePositiveInt } from '../program.ts';
import type { CliContext } from '../context.ts';
import { sourceMatches } from '../../repository/source-key.ts';

interface GcOptions extends RetentionPolicy {
  job?: string;
  source?: string;
  all?: boolean;
  dryRun?: boolean;
  prune: boolean;
  gracePeriod?: string;
  lockWait: string;
}

const nonNegativeInt = (value: string) => (value === '0' ? 0 : parsePositiveInt(value));

export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('apply retention policies: forget snapshots no rule keeps, release their external data, prune unreferenced blobs')
    .option('--job <name>', "the snapshots of this job, with the job's retention policy")
    .option('--source <uri>', 'the snapshots of this source (URI, part of it, or source key)')
    .option('--all', 'every source; each with its job policy (sources without one are never pruned)')
    .option('--dry-run', 'print what would be forgotten and pruned; writes nothing at all')
    .option('--no-prune', 'forget snapshots but leave blob pruning for a later run')
    .option('--grace-period <duration>', 'never prune blobs younger than this (default: config defaults.pruneGracePeriod, else 24h)')
    .option('--lock-wait <duration>', 'wait this long for running backups to release the repository (e.g. 10m)', '0h')
    .addOption(new Option('--keep-last <n>', 'keep the newest n').argParser(parsePositiveInt))
    .addOption(new Option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours').argParser(parsePositiveInt))
    .addOption(new Option('--keep-daily <n>', '… of each of the last n days').argParser(parsePositiveInt))
    .addOption(new Option('--keep-weekly <n>', '… of each of the last n ISO weeks').argParser(parsePositiveInt))
    .addOption(new Option('--keep-monthly <n>', '… of each of the last n months').argParser(parsePositiveInt))
    .addOption(new Option('--keep-yearly <n>', '… of each of the last n years').argParser(parsePositiveInt))
    .option('--keep-within <duration>', 'keep everything within this duration of the newest snapshot (e.g. 30d, 1y6m)')
    .addOption(new Option('--max-age-days <n>', 'keep everything younger than n days').argParser(parsePositiveInt))
    .addOption(new Option('--min-keep <n>', 'always keep the newest n complete snapshots, whatever else the policy says').argParser(nonNegativeInt))
    .option('--time-zone <iana>', 'time zone for hourly … yearly buckets (default UTC)')
    .action(action((ctx, options: GcOptions) => gc(ctx, options)));
}

async function gc(ctx: CliContext, options: GcOptions): Promise<number> {
  const scopes = [options.job !== undefined, options.source !== undefined, Boolean(options.all)].filter(Boolean).length;
  if (scopes !== 1) throw new UsageError('choose exactly one of --job, --source or --all');
  const config = ctx.config.config;
  const flagPolicy = policyFromFlags(options);
  if (options.job !== undefined && !flagPolicy && !config.jobs[options.job]?.retention) {
    throw new UsageError(`job "${options.job}" has no retention policy in the config (and no --keep-* flag was given): nothing would be pruned`);
  }
  const graceMs = durationMs(options.gracePeriod ?? config.defaults.pruneGracePeriod ?? '24h');
  const select = (m: Manifest) =>
    options.all ? true : options.job !== undefined ? m.job === options.job : sourceMatches(m, options.source!);
  const policyFor = (newest: Manifest) => {
    if (flagPolicy) return { policy: flagPolicy, origin: 'flags' };
    const job = newest.job !== null ? config.jobs[newest.job] : undefined;
    return job?.retention ? { policy: job.retention, origin: `job ${newest.job}` } : undefined;
  };

  const repo = await ctx.openRepository(options.job !== undefined ? { job: options.job } : {});
  const report = await runGc(repo, {
    forget: { select, policyFor },
    dryRun: Boolean(options.dryRun),
    graceMs,
    prune: options.prune,
    lockWaitMs: durationMs(options.lockWait),
    log: ctx.log,
    concurrency: ctx.concurrency,
    progress: options.prune ? ctx.startProgress('gc') : undefined,
    signal: ctx.interruptSignal(),
  });
  ctx.endProgress(true);
  if (ctx.out.json) printJson(ctx.out, { repository: repo.description, ...report });
  else printReport(ctx, report);
  return report.releasePending.length > 0 ? ExitCode.failed : ExitCode.ok;
}

function policyFromFlags(o: GcOptions): RetentionPolicy | undefined {
  const policy: RetentionPolicy = {
    keepLast: o.keepLast,
    keepHourly: o.keepHourly,
    keepDaily: o.keepDaily,
    keepWeekly: o.keepWeekly,
    keepMonthly: o.keepMonthly,
    keepYearly: o.keepYearly,
    keepWithin: o.keepWithin,
    maxAgeDays: o.maxAgeDays,
    minKeep: o.minKeep,
    timeZone: o.timeZone,
  };
  if (hasKeepRule(policy)) return policy;
  if (o.minKeep !== undefined || o.timeZone !== undefined) throw new UsageError('--min-keep and --time-zone need a keep rule (--keep-last, --keep-daily, --keep-within …)');
  return undefined;
}

function printReport(ctx: CliContext, report: GcReport): void {
  const verb = report.dryRun ? 'would forget' : 'forgot';
  if (report.groups.length === 0) ctx.out.write('no snapshots selected\n');
  for (const g of report.groups) {
    ctx.out.write(`\n${g.engine} ${g.source} — policy: ${g.policy ? `${JSON.stringify(g.policy)} (${g.policyOrigin})` : 'none: never pruned'}\n`);
    ctx.out.write(
      formatTable(
        ['ID', 'TIME', 'DECISION', 'REASONS'],
        g.decisions.map((d) => [d.id, formatTime(d.startedAt), d.keep ? 'keep' : report.dryRun ? 'would forget' : 'forget', d.reasons.join(', ')]),
      ),
    );
  }
  ctx.out.write(`\n${verb} ${report.forgotten.length} snapshot(s)\n`);
  if (report.releasePending.length) ctx.out.write(`release pending for ${report.releasePending.length} snapshot(s): ${report.releasePending.join(', ')}\n`);
  const p = report.prune;
  if (p) {
    ctx.out.write(
      `${report.dryRun ? 'would prune' : 'pruned'} ${p.blobsDeleted} of ${p.blobsListed} blob(s), ${formatBytes(p.bytesFreed)} freed` +
        `${p.blobsTooYoung ? `; ${p.blobsTooYoung} unreferenced blob(s) kept, younger than the grace period` : ''}\n`,
    );
  }
}
