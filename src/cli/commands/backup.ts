import { Option, type Command } from 'commander';
import { ExitCode, UsageError } from '../../errors.ts';
import { openForBackup, runBackup } from '../../operations/backup.ts';
import { prepareSource } from '../../operations/job-source.ts';
import { runJob } from '../../operations/run.ts';
import type { Manifest } from '../../repository/manifest.ts';
import { durationMs } from '../../repository/retention.ts';
import { formatBytes, printJson } from '../output.ts';
import { action, parsePositiveInt } from '../program.ts';

interface BackupFlags {
  job?: string;
  engine?: string;
  database?: string[];
  excludeDatabase?: string[];
  jobs?: number;
  allowPartial?: boolean;
  tag?: string[];
  lockWait: string;
  mode?: string;
  include?: string[];
  exclude?: string[];
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  checksums?: string;
  table?: string[];
  excludeTable?: string[];
  readTimestamp?: string;
  staleness?: number;
  keyFile?: string;
  fromExport?: string;
  dataset?: string[];
  excludeDataset?: string[];
  storageEndpoint?: string;
  reader?: string;
  backupDataset?: string;
  location?: string;
  staging?: string;
  fresh?: boolean;
  datomicBin?: string;
  pace?: number;
  metricsFile?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('back up a source into the repository: a snapshot appears only when all of it is stored')
    .argument('[source-uri]', 'what to back up, e.g. postgres://bak@db:5432 (or --job)')
    .option('--job <name>', 'a job from the config: source, engine options, repository and tags')
    .option('--engine <name>', 'the engine, when the URI scheme does not say')
    .option('--database <glob>', 'postgres: only databases matching (repeatable)', collect)
    .option('--exclude-database <glob>', 'postgres: skip databases matching (repeatable)', collect)
    .addOption(new Option('--jobs <n>', 'postgres: parallel pg_dump workers per database (default 2); spanner, bigquery: tables read at once (default 4); datomic: segments stored at once (default 16)').argParser(parsePositiveInt))
    .addOption(
      new Option(
        '--mode <mode>',
        "s3: copy (object contents) or versions (current versions of a versioned bucket); spanner: export (rows into the repository), native (a Spanner managed backup) or dataflow (Google's export template on Dataflow); bigquery: extract (rows into the repository), copy (copy jobs into --backup-dataset) or snapshot (table snapshots in --backup-dataset)",
      ).choices(['copy', 'versions', 'export', 'native', 'dataflow', 'extract', 'snapshot']),
    )
    .option('--table <glob>', 'spanner: only tables matching (repeatable); an interleaved child needs its parent; bigquery: over the table id, or DATASET.TABLE when the glob has a dot', collect)
    .option('--exclude-table <glob>', 'spanner, bigquery: skip tables matching (repeatable)', collect)
    .option('--dataset <glob>', 'bigquery: only datasets matching, when the source names a project (repeatable)', collect)
    .option('--exclude-dataset <glob>', 'bigquery: skip datasets matching (repeatable)', collect)
    .option('--storage-endpoint <host:port>', 'bigquery: the Storage API (gRPC); http://host:port is plain gRPC (an emulator)')
    .addOption(new Option('--reader <api>', 'bigquery extract mode: storage (Storage Read API, default) or tabledata (tabledata.list: no read charges, slower)').choices(['storage', 'tabledata']))
    .option('--backup-dataset <name>', 'bigquery copy and snapshot modes: DATASET or PROJECT.DATASET the copies or snapshots go into')
    .option('--location <location>', 'bigquery: where jobs run (US, EU, a region)')
    .option('--staging <dir>', 'datomic: the local folder backup-db writes into, kept between runs (default ~/.cache/bak/datomic/<source key>)')
    .option('--fresh', 'datomic: start a new staging folder, so segments no newer snapshot lists become collectable')
    .option('--datomic-bin <path>', 'datomic: the path of bin/datomic (default $DATOMIC_HOME/bin/datomic)')
    .addOption(new Option('--pace <ms>', 'datomic: -Ddatomic.backupPaceMsec, a pause between segment writes that spares the storage').argParser(parsePositiveInt))
    .option('--read-timestamp <rfc3339>', 'spanner: read the database as of this time (within its version retention)')
    .addOption(new Option('--staleness <seconds>', 'spanner: read the database as it was this many seconds ago').argParser(parsePositiveInt))
    .option('--key-file <path>', 'spanner, bigquery: a service-account key file (default: Application Default Credentials)')
    .option('--from-export <dir>', "spanner: adopt a folder (or gs://…) of Google's Dataflow Avro export as the snapshot, checked by its MD5s")
    .option('--include <glob>', 's3: only keys matching, relative to the prefix (repeatable; * within a segment, ** across)', collect)
    .option('--exclude <glob>', 's3: skip keys matching (repeatable)', collect)
    .option('--endpoint <url>', 's3: S3-compatible endpoint (MinIO, Ceph, R2 …); spanner: http://host:port of an emulator, or another API endpoint; bigquery: the REST root (http://host:port of an emulator)')
    .option('--region <region>', 's3: region (default us-east-1)')
    .option('--path-style', 's3: path-style addressing')
    .addOption(new Option('--checksums <mode>', 's3: request/response checksums').choices(['when-supported', 'when-required']))
    .option('--allow-partial', 'keep a snapshot of what succeeded when some part fails (status partial, exit 1)')
    .option('--tag <tag>', 'a tag to record on the snapshot (repeatable)', collect)
    .option('--lock-wait <duration>', 'wait up to this long for a running gc (e.g. 10m)', '0h')
    .option('--metrics-file <path>', "with --job: update the job's series in this Prometheus text-format file (default: config defaults.metricsFile)")
    .action(
      action(async (ctx, uri: string | undefined, flags: BackupFlags) => {
        if (Boolean(uri) === Boolean(flags.job)) throw new UsageError('give a source URI or --job, not both and not neither');
        if (flags.job !== undefined && flags.engine !== undefined) throw new UsageError('--engine is for a source URI: a job names its engine in the config');
        const engineFlags = {
          databases: flags.database,
          excludeDatabases: flags.excludeDatabase,
          jobs: flags.jobs,
          allowPartial: flags.allowPartial ? true : undefined,
          mode: flags.mode,
          include: flags.include,
          exclude: flags.exclude,
          endpoint: flags.endpoint,
          region: flags.region,
          forcePathStyle: flags.pathStyle,
          checksums: flags.checksums,
          tables: flags.table,
          excludeTables: flags.excludeTable,
          readTimestamp: flags.readTimestamp,
          stalenessSeconds: flags.staleness,
          keyFile: flags.keyFile,
          fromExport: flags.fromExport,
          datasets: flags.dataset,
          excludeDatasets: flags.excludeDataset,
          storageEndpoint: flags.storageEndpoint,
          reader: flags.reader,
          backupDataset: flags.backupDataset,
          location: flags.location,
          staging: flags.staging,
          fresh: flags.fresh,
          datomicBin: flags.datomicBin,
          paceMsec: flags.pace,
        };
        const started = Date.now();
        const tags = flags.tag ?? [];
        const metricsFile = flags.metricsFile ?? ctx.config.config.defaults.metricsFile;
        let manifest: Manifest;
        if (flags.job !== undefined) {
          // A job's backup pings its hooks and updates the metrics file, as `bak run` does (without the retention).
          const progress = ctx.startProgress(`backup job ${flags.job}`);
          const result = await runJob({
            job: flags.job,
            config: ctx.config.config,
            configFile: ctx.config.file,
            openRepository: (job) => ctx.openRepository({ job }),
            log: ctx.log,
            concurrency: ctx.concurrency,
            lockWaitMs: durationMs(flags.lockWait),
            signal: ctx.interruptSignal(),
            graceMs: 0,
            retention: false,
            overrides: engineFlags,
            extraTags: tags,
            metricsFile,
            progress,
          });
          if (!result.manifest) throw result.error;
          manifest = result.manifest;
        } else {
          if (flags.metricsFile !== undefined) throw new UsageError('--metrics-file needs --job: metrics are kept per job');
          const { engine, source } = prepareSource(ctx.config.config, { uri, engine: flags.engine, overrides: engineFlags }, ctx.config.file);
          const lockWaitMs = durationMs(flags.lockWait);
          const signal = ctx.interruptSignal();
          const { repo, early } = await openForBackup(engine, source, () => ctx.openRepository(), { log: ctx.log, lockWaitMs, signal });
          const progress = ctx.startProgress(`backup ${source.uri}`);
          manifest = await runBackup(repo, { engine, source, tags, log: ctx.log, concurrency: ctx.concurrency, lockWaitMs, progress, early, signal });
        }
        ctx.endProgress(manifest.status === 'complete');
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        if (ctx.out.json) printJson(ctx.out, manifest);
        else {
          const t = manifest.totals;
          ctx.out.write(
            `snapshot ${manifest.id} ${manifest.status}: ${t.items} items, ${formatBytes(t.bytes)}${t.rows !== undefined ? `, ${t.rows} rows` : ''} ` +
              `(${formatBytes(t.newBytes)} new after dedup and compression) in ${seconds} s\n`,
          );
          for (const f of manifest.failures) ctx.out.write(`  FAILED ${f.item}: ${f.error}\n`);
        }
        return manifest.status === 'complete' ? ExitCode.ok : ExitCode.failed;
      }),
    );
}
