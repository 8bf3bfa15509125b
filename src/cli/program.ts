import { Command, CommanderError, Option } from 'commander';
import { BakError, ExitCode } from '../errors.ts';
import { BAK_VERSION } from '../version.ts';
import { CliContext } from './context.ts';
import { registerBackup } from './commands/backup.ts';
import { registerConfigCommands } from './commands/config.ts';
import { registerDiff } from './commands/diff.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerExport } from './commands/export.ts';
import { registerGc } from './commands/gc.ts';
import { registerInit } from './commands/init.ts';
import { registerKey } from './commands/key.ts';
import { registerPin } from './commands/pin.ts';
import { registerRestore } from './commands/restore.ts';
import { registerRun } from './commands/run.ts';
import { registerShow } from './commands/show.ts';
import { registerSnapshots } from './commands/snapshots.ts';
import { registerSources } from './commands/sources.ts';
import { registerStats } from './commands/stats.ts';
import { registerUnlock } from './commands/unlock.ts';
import { registerVerify } from './commands/verify.ts';

/** Set by an action; read by main once commander returns. */
export const outcome: { exitCode: number } = { exitCode: ExitCode.ok };

type ActionFn<A extends unknown[]> = (ctx: CliContext, ...args: A) => Promise<number | void>;

/** Wraps a command's action: builds its context, records its exit code, always closes what it opened. */
export function action<A extends unknown[]>(fn: ActionFn<A>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const ctx = new CliContext(command);
    try {
      outcome.exitCode = (await fn(ctx, ...(args.slice(0, -1) as A))) ?? ExitCode.ok;
    } finally {
      await ctx.close();
    }
  };
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new BakError(`expected a positive whole number, got "${value}"`, ExitCode.usage);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('bak')
    .description('Back up, verify, restore and garbage-collect Spanner, BigQuery, PostgreSQL, Datomic and S3 into one snapshot repository.')
    .version(BAK_VERSION, '-V, --version', 'print the bak version')
    .option('-c, --config <file>', 'config file (default: $BAK_CONFIG, else ./bak.config.json if present)')
    .option('-r, --repo <url|name>', 'repository URL (file://, s3://, gs://, or a path) or a name from the config')
    .option('--json', 'print results as JSON on stdout (logs stay on stderr)')
    .option('-v, --verbose', 'log debug details')
    .option('-q, --quiet', 'log only warnings and errors')
    .option('--progress', 'draw a progress line on stderr even when it is not a terminal, or with --json or --quiet')
    .option('--no-progress', 'no progress line, even on a terminal')
    .option('--profile', 'at the end, print on stderr where the time went: CPU by thread, and time by stage (compress, SHA-256, store, …)')
    .option('--password-file <file>', "an encrypted repository's passphrase: the file's first line (default: $BAK_PASSWORD, $BAK_PASSWORD_FILE, $BAK_PASSWORD_COMMAND, then the config)")
    .option('--password-command <command>', "an encrypted repository's passphrase: the first line the command prints (run by /bin/sh)")
    .addOption(new Option('--concurrency <n>', 'parallel transfers and checks (default: config, else 4)').argParser(parsePositiveInt))
    .showSuggestionAfterError(true)
    .exitOverride();

  registerInit(program);
  registerKey(program);
  registerBackup(program);
  registerRestore(program);
  registerSnapshots(program);
  registerStats(program);
  registerShow(program);
  registerDiff(program);
  registerVerify(program);
  registerExport(program);
  registerSources(program);
  registerGc(program);
  registerRun(program);
  registerPin(program);
  registerConfigCommands(program);
  registerUnlock(program);
  registerDoctor(program);

  // A usage error prints one line plus the usage of the command at fault, then exits 2.
  const configure = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({
      outputError: (text, write) => {
        write(text);
        write(`Usage: ${commandPath(cmd)} ${cmd.usage()}\nRun '${commandPath(cmd)} --help' for details.\n`);
      },
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Maps anything thrown to a message on stderr and an exit code. */
export function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code)) return ExitCode.ok;
    return ExitCode.usage;
  }
  if (err instanceof BakError) {
    process.stderr.write(`bak: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (verbose && err.cause) process.stderr.write(`cause: ${String((err.cause as Error)?.stack ?? err.cause)}\n`);
    return err.exitCode;
  }
  process.stderr.write(`bak: error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return ExitCode.failed;
}
