// What a bak restore does beyond pg_restore, done by plain tools: decompress the repository's blobs and hash what comes
// out (zstd -dc / gzip -dc | openssl sha256). Run beside pg_restore on the same cores, it is the floor of a restore
// from compressed, verified blobs: bak cannot be faster than pg_restore plus that work.
import { open, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { runCommand } from '../test/helpers/run.ts';

const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP = Buffer.from([0x1f, 0x8b]);

/** Fails at once, saying how to install it, unless `tool` answers `versionArgs` (before a bench spends minutes filling). */
export async function requireTool(tool: string, versionArgs: string[], purpose: string): Promise<void> {
  const r = await runCommand(tool, versionArgs).catch(() => undefined);
  if (!r || r.code !== 0) throw new Error(`${tool} is not installed: apt-get install -y ${tool} (${purpose})`);
}

/** zstd and openssl, which the floors of bench/postgres.ts and bench/s3.ts run beside the plain tool. */
export async function requireDecodeTools(): Promise<void> {
  await requireTool('zstd', ['--version'], "the benchmark's floor runs it beside the plain tool");
  await requireTool('openssl', ['version'], "the benchmark's floor runs it beside the plain tool");
}

/**
 * A shell command that decodes every blob file under `repoDir`/blobs (zstd, gzip or stored as-is after a one-byte
 * tag, as src/util/compress.ts writes them) and hashes the output; the file lists go into `listDir`.
 * Only for a plain (unencrypted) local repository.
 */
export async function decodeBlobsCommand(repoDir: string, listDir: string): Promise<string> {
  const lists = { zstd: [] as string[], gzip: [] as string[], raw: [] as string[] };
  const head = Buffer.alloc(4);
  for (const entry of await readdir(path.join(repoDir, 'blobs'), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const fd = await open(file);
    try {
      await fd.read(head, 0, 4, 0);
    } finally {
      await fd.close();
    }
    lists[head.equals(ZSTD) ? 'zstd' : head.subarray(0, 2).equals(GZIP) ? 'gzip' : 'raw'].push(file);
  }
  const listFile = async (name: keyof typeof lists) => {
    const file = path.join(listDir, `blobs-${name}.list`);
    await writeFile(file, lists[name].map((f) => `${f}\0`).join(''));
    return file;
  };
  const [z, g, r] = [await listFile('zstd'), await listFile('gzip'), await listFile('raw')];
  return `{ xargs -0 -r cat < '${z}' | zstd -dcq; xargs -0 -r cat < '${g}' | gzip -dc; xargs -0 -r tail -q -c +2 < '${r}'; } | openssl sha256 > /dev/null`;
}
