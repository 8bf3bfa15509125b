// A local repository and bak's local output are for their owner only, whatever the umask: bak runs under umask 000
// (the worst case) and every folder it made is 0700, every file 0600; `bak init` on a folder others can read says
// so; `bak export` writes owner-only unless --keep-umask.
import { mkdir, mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { BAK_BIN, show } from '../helpers/cli.ts';
import { runCommand } from '../helpers/run.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

/** Every folder and file under root (root included) with its permission bits. */
async function modes(root: string): Promise<Array<{ path: string; dir: boolean; mode: number }>> {
  const out = [{ path: root, dir: true, mode: (await stat(root)).mode & 0o777 }];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    out.push({ path: full, dir: entry.isDirectory(), mode: (await stat(full)).mode & 0o777 });
  }
  return out;
}

describe('local files for their owner only', () => {
  let minio: Minio;
  let s3: S3Client;
  let work: string;
  const bucket = uniqueName('bak-perms');
  const bak = (umask: string, args: string[]) =>
    runCommand('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, BAK_BIN, ...args], { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...awsEnv(minio) } });

  beforeAll(async () => {
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    work = await mkdtemp(path.join(tmpdir(), 'bak-perms-'));
    await createBucket(s3, bucket);
    for (let i = 0; i < 4; i++) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `d${i}/obj-${i}`, Body: Buffer.alloc(30_000 + i, `x${i}`) }));
  });

  afterAll(async () => {
    if (s3) await deleteBucketCompletely(s3, bucket).catch(() => undefined);
    s3?.destroy();
  });

  it('under umask 000 the repository is 0700 folders and 0600 files, export too; --keep-umask keeps the umask', async () => {
    const repo = path.join(work, 'repo');
    const init = await bak('000', ['init', repo]);
    expect(init.code, show(init)).toBe(0);
    expect(init.stderr).not.toMatch(/readable by other accounts/);
    const backup = await bak('000', ['--repo', repo, 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
    expect(backup.code, show(backup)).toBe(0);
    const id = JSON.parse(backup.stdout).id as string;

    const stored = await modes(repo);
    expect(stored.filter((e) => !e.dir).length).toBeGreaterThan(3);
    for (const e of stored) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '700' : '600'}`);

    // An S3 snapshot's objects live in its index, which export does not lay out as files: refused, not an empty folder.
    const refused = await bak('000', ['--repo', repo, 'export', id, '--to-dir', path.join(work, 'export-s3')]);
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('bak restore');

    // Export of a snapshot of items (written here through the repository's own writer).
    const store = await openStore({ url: pathToFileURL(repo).href });
    const writer = await (await Repository.open(store)).beginSnapshot({ engine: 'fixture-dir', source: 'dir:///srv/perms' });
    for (let i = 0; i < 4; i++) await writer.addItem({ name: `sub${i % 2}/file-${i}`, kind: 'file' }, [Buffer.alloc(20_000 + i, `f${i}`)]);
    const itemsId = (await writer.commit()).id;
    await store.close?.();
    const exported = path.join(work, 'export');
    const ex = await bak('000', ['--repo', repo, 'export', itemsId, '--to-dir', exported]);
    expect(ex.code, show(ex)).toBe(0);
    const files = await modes(exported);
    expect(files.filter((e) => !e.dir).length).toBe(4);
    for (const e of files) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '700' : '600'}`);

    const shared = path.join(work, 'export-shared');
    const ex2 = await bak('022', ['--repo', repo, 'export', itemsId, '--to-dir', shared, '--keep-umask']);
    expect(ex2.code, show(ex2)).toBe(0);
    for (const e of await modes(shared)) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '755' : '644'}`);
  }, 60_000);

  it('bak init on an existing folder others can read warns and names the fix', async () => {
    const open = path.join(work, 'open-repo');
    await mkdir(open, { mode: 0o755 });
    const init = await bak('022', ['init', open]);
    expect(init.code, show(init)).toBe(0);
    expect(init.stderr).toMatch(/readable by other accounts on this machine \(mode 755\): run chmod 700/);
  });
});
