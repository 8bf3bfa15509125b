import type { Command } from 'commander';
import { ExitCode } from '../../errors.ts';
import { runDoctor, type DoctorCheck, type DoctorReport } from '../../operations/doctor.ts';
import { printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the config and its secrets, the repository (reachable, initialised, its keys when encrypted, writable, not public, versioned, clock, stale locks) and, with --job/--all, job sources and staging space; read-only but for one test object; exit 1 if a check fails',
    )
    .option('--job <name>', "check this job: its secret references, its repository, its source and staging")
    .option('--all', 'check every job, every repository they use and the default repository')
    .action(
      action(async (ctx, flags: { job?: string; all?: boolean }) => {
        const report = await runDoctor({
          loadConfig: () => ctx.config,
          job: flags.job,
          all: flags.all,
          repo: ctx.globals.repo,
          keyFlags: { passwordFile: ctx.globals.passwordFile, passwordCommand: ctx.globals.passwordCommand },
        });
        if (ctx.out.json) printJson(ctx.out, report);
        else ctx.out.write(render(report));
        return report.summary.fail > 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );
}

const LABEL: Record<DoctorCheck['status'], string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL' };
/** Names past this length do not push every detail to the right; they overflow their column instead. */
const MAX_NAME = 48;

/** `ok    name  detail`, WARN and FAIL in capitals, then an indented `fix:` line under each warning and failure. */
export function render(report: DoctorReport): string {
  const width = Math.min(MAX_NAME, Math.max(0, ...report.checks.map((c) => c.name.length)));
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${LABEL[c.status].padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`.trimEnd());
    if (c.status !== 'ok' && c.fix) lines.push(`${' '.repeat(6)}fix: ${c.fix}`);
  }
  const { ok, warn, fail } = report.summary;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('', fail ? `${plural(fail, 'check')} failed, ${plural(warn, 'warning')}, ${ok} ok` : `no check failed: ${ok} ok, ${plural(warn, 'warning')}`);
  return `${lines.join('\n')}\n`;
}
