import type { Command } from 'commander';
import { resolveSecretsDeep } from '../../config/secrets.ts';
import { engineNameForUri, getEngine } from '../../engines/registry.ts';
import { UsageError } from '../../errors.ts';
import { formatBytes, formatTable, printJson } from '../output.ts';
import { action } from '../program.ts';

export function registerSources(program: Command): void {
  program
    .command('sources')
    .description('list what a source holds that a backup could cover (postgres: databases with sizes; bigquery: datasets or tables)')
    .argument('[source-uri]', 'e.g. postgres://bak@db:5432 (or --job)')
    .option('--job <name>', "the job's source and options")
    .option('--engine <name>', 'the engine, when the URI scheme does not say')
    .action(
      action(async (ctx, uri: string | undefined, flags: { job?: string; engine?: string }) => {
        if (Boolean(uri) === Boolean(flags.job)) throw new UsageError('give a source URI or --job');
        const job = flags.job !== undefined ? ctx.config.config.jobs[flags.job] : undefined;
        if (flags.job !== undefined && !job) throw new UsageError(`no job named "${flags.job}" in the config`);
        const sourceUri = job?.source ?? uri!;
        const engine = getEngine(flags.engine ?? job?.engine ?? engineNameForUri(sourceUri));
        if (!engine.listSources) throw new UsageError(`the ${engine.name} engine cannot list its sources`);
        const options = resolveSecretsDeep(job?.options ?? {}, `jobs.${flags.job}.options`).value;
        const rows = await engine.listSources(sourceUri, options);
        if (ctx.out.json) printJson(ctx.out, { engine: engine.name, sources: rows });
        else ctx.out.write(formatTable(['NAME', 'SIZE'], rows.map((r) => [r.name, formatBytes(r.sizeBytes)])));
      }),
    );
}
