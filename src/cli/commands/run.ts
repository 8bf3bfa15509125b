import type { Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.ts';
import { runJobs, type RunReport } from '../../operations/run.ts';
import type { Repository } from '../../repository/repository.ts';
import { durationMs } from '../../repository/retention.ts';
import { formatBytes, formatTable, printJson } from '../output.ts';
import { action } from '../program.ts';

interface RunFlags {
  job?: string[];
  all?: boolean;
  prune: boolean;
  gracePeriod?: string;
  lockWait: string;
  metricsFile?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("the nightly command: each job backs up and applies its retention, one after another (a failure does not stop the others), then each repository is pruned once; a summary at the end")
    .option('--job <name>', 'a job from the config (repeatable; in the order given)', collect)
    .option('--all', 'every job in the config, in the order the config lists them')
    .option('--no-prune', 'apply retention (forget) but leave blob pruning for a later gc')
    .option('--grace-period <duration>', 'never prune blobs younger than this (default: config defaults.pruneGracePeriod, else 24h)')
    .option('--lock-wait <duration>', 'wait this long for a lock held by another bak (e.g. 10m)', '0h')
    .option('--metrics-file <path>', "update each job's series in this Prometheus text-format file (default: config defaults.metricsFile)")
    .action(
      action(async (ctx, flags: RunFlags) => {
        if (Boolean(flags.all) === Boolean(flags.job?.length)) throw new UsageError('choose --job NAME (repeatable) or --all');
        const config = ctx.config.config;
        const jobs = flags.all ? Object.keys(config.jobs) : flags.job!;
        if (jobs.length === 0) throw new UsageError(`no jobs in ${ctx.config.file ?? 'the config (no config file found)'}: nothing to run`);
        const unknown = jobs.filter((j) => !(j in config.jobs));
        if (unknown.length) throw new UsageError(`no job named ${unknown.map((j) => `"${j}"`).join(', ')} in ${ctx.config.file ?? 'the config (no config file found)'}`);

        // One store per repository, however many jobs use it.
        const opened = new Map<string, Promise<Repository>>();
        const openRepository = (job: string) => {
          const resolved = ctx.resolveRepository({ job });
          const key = resolved.settings.url;
          let repo = opened.get(key);
          if (!repo) {
            repo = ctx.openResolved(resolved);
            opened.set(key, repo);
          }
          return repo;
        };
        const report = await runJobs({
          jobs,
          config,
          configFile: ctx.config.file,
          openRepository,
          log: ctx.log,
          concurrency: ctx.concurrency,
          lockWaitMs: durationMs(flags.lockWait),
          signal: ctx.interruptSignal(),
          graceMs: durationMs(flags.gracePeriod ?? config.defaults.pruneGracePeriod ?? '24h'),
          prune: flags.prune,
          metricsFile: flags.metricsFile ?? config.defaults.metricsFile,
          progressFor: (job, n) => ctx.startProgress(`job ${job} (${n + 1} of ${jobs.length})`),
          onJobDone: (outcome) => ctx.endProgress(outcome.ok),
        });
        if (ctx.out.json) printJson(ctx.out, report);
        else ctx.out.write(render(report));
        const interrupted = ctx.interruptSignal();
        if (interrupted.aborted) throw interrupted.reason;
        return report.ok ? ExitCode.ok : ExitCode.failed;
      }),
    );
}

function render(report: RunReport): string {
  const rows = report.jobs.map((o) => [
    o.job,
    o.ok ? 'ok' : 'FAILED',
    `${o.durationSeconds.toFixed(1)} s`,
    o.snapshot ? formatBytes(o.bytes) : '-',
    o.snapshot ? formatBytes(o.newBytes) : '-',
    o.forgotten === null ? '-' : String(o.forgotten),
    o.ok ? (o.snapshot ?? '') : (o.error ?? ''),
  ]);
  let text = formatTable(['JOB', 'RESULT', 'DURATION', 'BYTES', 'NEW', 'FORGOTTEN', 'SNAPSHOT / ERROR'], rows);
  for (const p of report.prunes) {
    text += p.ok
      ? `pruned ${p.repository}: ${p.report!.blobsDeleted} of ${p.report!.blobsListed} blob(s), ${formatBytes(p.report!.bytesFreed)} freed\n`
      : `prune of ${p.repository} FAILED: ${p.error}\n`;
  }
  const failed = report.jobs.filter((o) => !o.ok).length;
  text += failed || report.prunes.some((p) => !p.ok)
    ? `${report.jobs.length - failed} of ${report.jobs.length} job(s) succeeded${failed ? `; FAILED: ${report.jobs.filter((o) => !o.ok).map((o) => o.job).join(', ')}` : ''}\n`
    : `all ${report.jobs.length} job(s) succeeded\n`;
  return text;
}
