import { Option, type Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.ts';
import { runRestore, snapshotToRestore } from '../../operations/restore.ts';
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
  deleteExtra?: boolean;
  include?: string[];
  exclude?: string[];
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  table?: string[];
  keyFile?: string;
  partition?: string[];
  storageEndpoint?: string;
  location?: string;
  source?: string;
  asOf?: string;
  cache?: string;
  datomicBin?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('restore a snapshot into a target, then prove it: every table checked against the snapshot (exit 3 on a mismatch)')
    .argument('[snapshot-id]', 'snapshot id or unique prefix (or --source with --as-of)')
    .option('--source <uri>', 'with --as-of: the source (URI, part of it, or source key) whose snapshot to restore')
    .option('--as-of <time>', 'with --source: its newest complete or partial snapshot taken at or before this time (RFC 3339, or a date: the end of that day, UTC)')
    .requiredOption('--to <uri>', 'where to restore, e.g. postgres://postgres@db2:5432 or spanner://projects/P/instances/I/databases/NEW')
    .option('--database <name>', 'postgres: only this database of the snapshot (repeatable)', collect)
    .option('--as <name>', 'postgres: restore the (single) database under this name')
    .option('--clean', 'postgres: the target database exists and is not empty: drop it and restore it anew')
    .option('--force', 'postgres, spanner: restore into a non-empty target as it is; bigquery: replace tables that exist in the target')
    .addOption(new Option('--jobs <n>', 'postgres: parallel pg_restore workers (default 2); spanner, bigquery: tables loaded at once (default 4); datomic: segments downloaded at once (default 16)').argParser(parsePositiveInt))
    .option('--table <glob>', 'spanner: only tables matching (repeatable); an interleaved child needs its parent; bigquery: over the table id, or DATASET.TABLE when the glob has a dot', collect)
    .option('--partition <id>', 'bigquery: only this partition (20260101, __NULL__ …) of the chosen partitioned tables (repeatable)', collect)
    .option('--key-file <path>', 'spanner, bigquery: a service-account key file (default: Application Default Credentials)')
    .option('--storage-endpoint <host:port>', 'bigquery: the Storage API (gRPC); http://host:port is plain gRPC (an emulator)')
    .option('--location <location>', 'bigquery: where jobs run (US, EU, a region)')
    .option('--cache <dir>', 'datomic: materialise the backup folder here and keep it (a later restore downloads only what it lacks)')
    .option('--datomic-bin <path>', 'datomic: the path of bin/datomic (default $DATOMIC_HOME/bin/datomic)')
    .option('--dry-run', 'print what would be restored where; change nothing')
    .option('--globals', 'postgres: also restore roles and tablespaces (errors for existing roles are reported, not fatal)')
    .option('--no-verify', 'skip the integrity check after the restore')
    .option('--check-only', 'only run the integrity check against an existing target')
    .option('--no-owner', 'postgres: do not restore object ownership')
    .option('--delete-extra', 's3: delete target keys the snapshot does not have, so the target matches it exactly')
    .option('--include <glob>', 's3: restore only keys matching (repeatable)', collect)
    .option('--exclude <glob>', 's3: skip keys matching (repeatable)', collect)
    .option('--endpoint <url>', "s3: the target's endpoint (default: the snapshot's); spanner: http://host:port of an emulator, or another API endpoint; bigquery: the REST root (http://host:port of an emulator)")
    .option('--region <region>', "s3: the target's region (default: the snapshot's)")
    .option('--path-style', 's3: path-style addressing for the target')
    .action(
      action(async (ctx, id: string | undefined, flags: RestoreFlags) => {
        if ((id === undefined) === (flags.asOf === undefined) || (flags.asOf === undefined) !== (flags.source === undefined)) {
          throw new UsageError('give a snapshot id, or --source and --as-of (not both)');
        }
        const repo = await ctx.openRepository();
        const manifest = await snapshotToRestore(repo, id !== undefined ? { id } : { source: flags.source!, asOf: parseAsOf(flags.asOf!) }, ctx.log);
        // Generic flags pass through as engine options; each engine validates the ones it takes and rejects the rest.
        const options: Record<string, unknown> = {};
        if (!flags.verify) options.verify = false;
        if (!flags.owner) options.noOwner = true;
        const given = {
          databases: flags.database,
          as: flags.as,
          clean: flags.clean,
          force: flags.force,
          jobs: flags.jobs,
          dryRun: flags.dryRun,
          globals: flags.globals,
          checkOnly: flags.checkOnly,
          deleteExtra: flags.deleteExtra,
          include: flags.include,
          exclude: flags.exclude,
          endpoint: flags.endpoint,
          region: flags.region,
          forcePathStyle: flags.pathStyle,
          tables: flags.table,
          keyFile: flags.keyFile,
          partitions: flags.partition,
          storageEndpoint: flags.storageEndpoint,
          location: flags.location,
          cache: flags.cache,
          datomicBin: flags.datomicBin,
        };
        for (const [key, value] of Object.entries(given)) if (value !== undefined) options[key] = value;
        let report;
        try {
          report = await runRestore(repo, manifest, {
            target: { uri: flags.to, options },
            dryRun: Boolean(flags.dryRun),
            log: ctx.log,
            concurrency: ctx.concurrency,
            progress: flags.dryRun ? undefined : ctx.startProgress(`restore ${manifest.id}`),
            signal: ctx.interruptSignal(),
          });
        } catch (err) {
          // A failed or mismatching restore still reports what it did, for programs reading --json.
          const partial = (err as { report?: unknown }).report;
          if (ctx.out.json && partial) printJson(ctx.out, { snapshot: manifest.id, error: (err as Error).message, ...(partial as object) });
          throw err;
        }
        ctx.endProgress(true);
        if (ctx.out.json) printJson(ctx.out, { snapshot: manifest.id, ...report });
        else if (manifest.engine === 's3') printS3Restore(ctx.out.write, report.details);
        else printRestore(ctx.out.write, report.details);
        return ExitCode.ok;
      }),
    );
}

function printS3Restore(write: (s: string) => void, d: Record<string, unknown>): void {
  const planned = d.planned as { copy: string[]; delete: string[]; copyCount: number; deleteCount: number } | undefined;
  if (d.dryRun && planned) {
    for (const key of planned.copy) write(`would copy   ${key}\n`);
    for (const key of planned.delete) write(`would delete ${key}\n`);
    write(`would copy ${planned.copyCount}, skip ${d.skipped} identical, delete ${planned.deleteCount}\n`);
    return;
  }
  write(`copied ${d.copied}, skipped ${d.skipped} identical, deleted ${d.deleted}, failed ${d.failedCount}\n`);
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

/** RFC 3339, or a bare date meaning the end of that day (UTC): "as of 2026-11-30" includes that night's backups. */
export function parseAsOf(text: string): Date {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const at = new Date(day ? `${text}T23:59:59.999Z` : text);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--as-of ${JSON.stringify(text)} is not a time: use RFC 3339 (2026-11-30T02:00:00Z) or a date (2026-11-30)`);
  return at;
}
