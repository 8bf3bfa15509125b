import { mkdir } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { Repository } from '../../repository/repository.ts';
import { DEFAULT_REPOSITORY_SETTINGS } from '../../repository/marker.ts';
import { parseStoreUrl } from '../../storage/open.ts';
import { openToOthers, PRIVATE_DIR_MODE } from '../../util/private-files.ts';
import { UsageError } from '../../errors.ts';
import { COMPRESSION_LEVELS, parseCompression, type Compression } from '../../util/compress.ts';
import { action } from '../program.ts';
import { printJson } from '../output.ts';

function parseCompressionFlag(value: string): { method: Compression; level?: number } {
  try {
    return parseCompression(value);
  } catch (err) {
    throw new UsageError(`--compression: ${(err as Error).message}`);
  }
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a repository (default: --repo, the config default, else the built-in local folder)')
    .argument('[repo-url]', 'file:///path, a path, s3://bucket/prefix, gs://bucket/prefix, or a repository name from the config')
    .addOption(
      new Option('--compression <method[:level]>', `blob compression: zstd (levels 1-19, default ${COMPRESSION_LEVELS.zstd.default}), gzip (1-9, default ${COMPRESSION_LEVELS.gzip.default}) or none; e.g. zstd:1`)
        .argParser(parseCompressionFlag)
        .default({ method: DEFAULT_REPOSITORY_SETTINGS.compression }, DEFAULT_REPOSITORY_SETTINGS.compression),
    )
    .action(
      action(async (ctx, repoUrl: string | undefined, options: { compression: { method: Compression; level?: number } }) => {
        const resolved = ctx.resolveRepository({ url: repoUrl });
        const parsed = parseStoreUrl(resolved.settings.url);
        // A local repository's folder is created on init; buckets must exist already (bak never creates cloud buckets).
        if (parsed.scheme === 'file') {
          const open = await openToOthers(parsed.root);
          if (open !== undefined) {
            ctx.log.warn(`${parsed.root} is readable by other accounts on this machine (mode ${open.toString(8).padStart(3, '0')}): run chmod 700 ${parsed.root}; bak creates what it writes there for its owner only`);
          }
          await mkdir(parsed.root, { recursive: true, mode: PRIVATE_DIR_MODE });
        }
        const store = await ctx.openStore(resolved);
        const { method, level } = options.compression;
        // The level is recorded even when it is the default, so a later default never changes what this repository does.
        const compressionLevel = level ?? (method === 'none' ? undefined : COMPRESSION_LEVELS[method].default);
        const repo = await Repository.init(store, { ...DEFAULT_REPOSITORY_SETTINGS, compression: method, ...(compressionLevel !== undefined ? { compressionLevel } : {}) });
        if (ctx.out.json) printJson(ctx.out, { repository: repo.description, id: repo.marker.id, settings: repo.marker.settings });
        else ctx.out.write(`created bak repository ${repo.marker.id} at ${repo.description}\n`);
      }),
    );
}
