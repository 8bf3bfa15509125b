import { mkdir } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { Repository } from '../../repository/repository.ts';
import { DEFAULT_REPOSITORY_SETTINGS } from '../../repository/marker.ts';
import { parseStoreUrl } from '../../storage/open.ts';
import { openToOthers, PRIVATE_DIR_MODE } from '../../util/private-files.ts';
import { action } from '../program.ts';
import { printJson } from '../output.ts';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a repository (default: --repo, the config default, else the built-in local folder)')
    .argument('[repo-url]', 'file:///path, a path, s3://bucket/prefix, gs://bucket/prefix, or a repository name from the config')
    .addOption(new Option('--compression <method>', 'blob compression').choices(['zstd', 'gzip', 'none']).default('zstd'))
    .action(
      action(async (ctx, repoUrl: string | undefined, options: { compression: 'zstd' | 'gzip' | 'none' }) => {
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
        const repo = await Repository.init(store, { ...DEFAULT_REPOSITORY_SETTINGS, compression: options.compression });
        if (ctx.out.json) printJson(ctx.out, { repository: repo.description, id: repo.marker.id, settings: repo.marker.settings });
        else ctx.out.write(`created bak repository ${repo.marker.id} at ${repo.description}\n`);
      }),
    );
}
