import { Option, type Command } from 'commander';
import { getEngine } from '../../engines/registry.ts';
import { ExitCode } from '../../errors.ts';
import { formatTable, printJson } from '../output.ts';
import { action, parsePositiveInt } from '../program.ts';

interface RestoreFlags {
  to: string;
  database?: string[];
  as?: string;
  clean?: boolean;
  force?: boolean;
  jobs?: number;
  dryRun?: boolean;
  globals?: boolean;
  verify: boolean;
  checkOnly?: boolean;
  owner: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('restore a snapshot into a target, then prove it: every table checked against the snapshot (exit 3 on a mismatch)')
    .argument('<snapshot-id>', 'snapshot id or unique prefix')
    .requiredOption('--to <uri>', 'where to restore, e.g. postgres://postgres@db2:5432')
    .option('--database <name>', 'postgres: only this database of the snapshot (repeatable)', collect)
    .option('--as <name>', 'postgres: restore the (single) database under this name')
    .option('--clean', 'postgres: drop and recreate the objects the snapshot holds in a non-empty target')
    .option('--force', 'postgres: restore into a non-empty target as it is')
    .addOption(new Option('--jobs <n>', 'postgres: parallel pg_restore workers (default 2)').argParser(parsePositiveInt))
    .option('--dry-run', 'print what would be restored where; change nothing')
    .option('--globals', 'postgres: also restore roles and tablespaces (errors for existing roles are reported, not fatal)')
    .option('--no-verify', 'skip the integrity check after the restore')
    .option('--check-only', 'only run the integrity check against an existing target')
    .option('--no-owner', 'postgres: do not restore object ownership')
    .action(
      action(async (ctx, id: string, flags: RestoreFlags) => {
        const repo = await ctx.openRepository();
        const { manifest } = await repo.resolveSnapshot(id);
        if (manifest.status !== 'complete') ctx.log.warn(`snapshot ${manifest.id} is ${manifest.status}: ${manifest.failures.map((f) => f.item).join(', ')} failed at backup`);
        const engine = getEngine(manifest.engine);
        const options: Record<string, unknown> = { verify: flags.verify, noOwner: !flags.owner };
        for (const [key, value] of Object.entries({ databases: flags.database, as: flags.as, clean: flags.clean, force: flags.force, jobs: flags.jobs, dryRun: flags.dryRun, globals: flags.globals, checkOnly: flags.checkOnly })) {
          if (value !== undefined) options[key] = value;
        }
        // A shared lock: gc cannot prune the blobs being read.
        const lock = flags.dryRun ? undefined : await repo.lock('shared', { command: `restore ${manifest.id}` });
        try {
          const report = await engine.restore({ repo, log: ctx.log, concurrency: ctx.concurrency }, manifest, { uri: flags.to, options });
          if (ctx.out.json) printJson(ctx.out, { snapshot: manifest.id, ...report });
          else printRestore(ctx.out.write, report.details);
          return ExitCode.ok;
        } finally {
          await lock?.release();
        }
      }),
    );
}

function printRestore(write: (s: string) => void, details: Record<string, unknown>): void {
  const plans = (details.plans ?? []) as Array<{ source: string; target: string; action: string; tablesChecked?: number; rowsChecked?: number }>;
  write(
    formatTable(
      ['SOURCE', 'TARGET', 'ACTION', 'CHECKED'],
      plans.map((p) => [p.source, p.target, details.dryRun ? `would ${p.action}` : p.action, p.tablesChecked === undefined ? '-' : `${p.tablesChecked} tables, ${p.rowsChecked} rows: ok`]),
    ),
  );
}
