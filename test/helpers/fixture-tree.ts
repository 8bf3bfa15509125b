import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A folder for the dir engine: a multi-chunk binary file, an empty file, unicode names, and many small files. */
export async function makeFixtureTree(options: { bigBytes?: number; smallFiles?: number } = {}): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'bak-tree-'));
  await writeFile(path.join(root, 'a.txt'), 'hello bak\n');
  await writeFile(path.join(root, 'empty.txt'), '');
  await writeFile(path.join(root, 'big.bin'), randomBytes(options.bigBytes ?? 6 * 1024 * 1024));
  await mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
  await writeFile(path.join(root, 'sub', 'ünï cødé ✓.txt'), 'unicode name\n');
  for (let i = 0; i < (options.smallFiles ?? 300); i++) {
    await writeFile(path.join(root, 'sub', 'deeper', `file-${String(i).padStart(4, '0')}.json`), JSON.stringify({ i, pad: 'x'.repeat(i % 50) }));
  }
  return root;
}

/** Every file under a folder with its content, for comparing a restore with its source. */
export async function readTree(root: string, rel = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await readTree(root, child)) out.set(k, v);
    else out.set(child, await readFile(path.join(root, child)));
  }
  return out;
}

/** Every file (with size and mtime) and folder under `root`: what a write anywhere would change. */
export async function treeListing(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const p = path.relative(root, path.join(e.parentPath, e.name));
    if (e.isDirectory()) out.push(`${p}/`);
    else {
      const st = await stat(path.join(e.parentPath, e.name));
      out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  }
  return out.sort();
}
