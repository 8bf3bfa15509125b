import { mkdir, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { Command } from 'commander';
import { findEngine } from '../../engines/registry.ts';
import { BakError, UsageError } from '../../errors.ts';
import { writeBlobsToFile } from '../../repository/materialize.ts';
import { formatBytes, printJson } from '../output.ts';
import { action } from '../program.ts';
import { PRIVATE_DIR_MODE } from '../../util/private-files.ts';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("write a snapshot as plain files (postgres: pg_dump directory dumps that pg_restore reads; spanner: the Dataflow Avro export layout)")
    .argument('<snapshot-id>', 'snapshot id or unique prefix')
    .requiredOption('--to-dir <dir>', 'folder to write into (created if missing; must be empty)')
    .option('--keep-umask', 'create folders and files with the umask\'s usual permissions instead of for their owner only')
    .action(
      action(async (ctx, id: string, flags: { toDir: string; keepUmask?: boolean }) => {
        const repo = await ctx.openRepository();
        const { manifest } = await repo.resolveSnapshot(id);
        const engine = findEngine(manifest.engine);
        // Content that lives only in index entries (S3 objects) has no file layout here yet: say so rather than export nothing.
        if (!engine?.exportTo && manifest.items.length === 0 && manifest.indexes.length > 0) {
          throw new UsageError(`snapshot ${manifest.id} (${manifest.engine}) keeps its content in index entries, which bak export does not write out yet`, {
            hint: manifest.engine === 's3' ? `restore it into a bucket instead: bak restore ${manifest.id} --to s3://BUCKET` : 'restore it with bak restore',
          });
        }
        const root = path.resolve(flags.toDir);
        await mkdir(root, { recursive: true, mode: flags.keepUmask ? 0o777 : PRIVATE_DIR_MODE });
        if ((await readdir(root)).length > 0) throw new UsageError(`${root} is not empty: export writes only into an empty folder`);
        const lock = await repo.lock('shared', { command: `export ${manifest.id}` });
        let bytes = 0;
        let files = manifest.items.length;
        const progress = ctx.startProgress(`export ${manifest.id}`);
        progress.expect(manifest.totals.items, manifest.totals.bytes);
        progress.totalsKnown();
        const stopObserving = repo.blobs.observeReads((read) => progress.advance(0, read));
        try {
          if (engine?.exportTo) ({ files, bytes } = await engine.exportTo({ repo, log: ctx.log, concurrency: ctx.concurrency, progress }, manifest, root));
          else for (const item of manifest.items) {
            const file = path.resolve(root, item.name);
            // Item names come from a manifest: never let one climb out of the target folder.
            if (!file.startsWith(`${root}${path.sep}`)) throw new BakError(`snapshot ${manifest.id}: item name ${JSON.stringify(item.name)} would leave ${root}`);
            await mkdir(path.dirname(file), { recursive: true, mode: flags.keepUmask ? 0o777 : PRIVATE_DIR_MODE });
            await writeBlobsToFile(repo.blobs, item.blobs, file, { concurrency: repo.concurrency, exclusive: true, ...(flags.keepUmask ? { mode: 0o666 } : {}) });
            bytes += item.bytes;
            progress.advance(1, 0);
          }
        } finally {
          stopObserving();
          await lock.release();
        }
        ctx.endProgress(true);
        if (ctx.out.json) printJson(ctx.out, { snapshot: manifest.id, directory: root, files, bytes });
        else ctx.out.write(`exported ${files} files (${formatBytes(bytes)}) of ${manifest.id} to ${root}\n`);
      }),
    );
}
