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
import { describeSlot, slotSummary } from './key.ts';

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
    .option('--aws-kms-key <key-id>', 'encrypt, with the master key wrapped by this AWS KMS key (an id, ARN or alias/…); with a passphrase too if one is given')
    .option('--gcp-kms-key <name>', 'encrypt, with the master key wrapped by this Google Cloud KMS key (projects/…/cryptoKeys/…; not verified against a server)')
    .action(
      action(async (ctx, repoUrl: string | undefined, options: { compression: { method: Compression; level?: number }; awsKmsKey?: string; gcpKmsKey?: string }) => {
        const resolved = ctx.resolveRepository({ url: repoUrl });
        // Every key source given (passphrase, KMS keys) gets a slot; none: a plain repository, said out loud.
        const sources = ctx.keySources(resolved, { awsKmsKey: options.awsKmsKey, gcpKmsKey: options.gcpKmsKey });
        for (const s of sources.filter((k) => !k.canWrap)) ctx.log.warn(`${s.label}: no key named to wrap with (give --${s.kind}-key), so no ${s.kind} slot is made`);
        const keys = sources.filter((k) => k.canWrap);
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
        const settings = { ...DEFAULT_REPOSITORY_SETTINGS, compression: method, ...(compressionLevel !== undefined ? { compressionLevel } : {}) };
        const repo = await Repository.init(store, settings, keys);
        const { slots } = await repo.keySlots();
        if (!repo.encrypted) {
          ctx.log.warn('created a plain repository: its data is not encrypted, and anyone who can read the folder or bucket can read every snapshot (give BAK_PASSWORD, --password-file or a KMS key to bak init for an encrypted one)');
        }
        if (ctx.out.json) {
          printJson(ctx.out, { repository: repo.description, id: repo.marker.id, settings: repo.marker.settings, encrypted: repo.encrypted, keySlots: slots.map(describeSlot) });
        } else {
          ctx.out.write(`created ${repo.encrypted ? 'encrypted' : 'plain'} bak repository ${repo.marker.id} at ${repo.description}\n`);
          for (const slot of slots) ctx.out.write(`  key slot ${slot.id}: ${slotSummary(slot)}\n`);
        }
      }),
    );
}
