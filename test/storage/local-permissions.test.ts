// A local repository and bak's local output are for their owner only, whatever the umask: bak runs under umask 000
// (the worst case) and every folder it made is 0700, every file 0600; `bak init` on a folder others can read says
// so; `bak export` writes owner-only unless --keep-umask.
import { mkdir, mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
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
import { DATOMIC_STANDIN, standin, uniqueDbUri } from '../helpers/datomic.ts';
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

    // An S3 snapshot exports each object as a file at its key, owner-only too, with the bytes the test wrote.
    const s3Export = path.join(work, 'export-s3');
    const ex3 = await bak('000', ['--repo', repo, 'export', id, '--to-dir', s3Export]);
    expect(ex3.code, show(ex3)).toBe(0);
    const s3Files = await modes(s3Export);
    for (const e of s3Files) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '700' : '600'}`);
    for (let i = 0; i < 4; i++) expect((await readFile(path.join(s3Export, `d${i}`, `obj-${i}`))).equals(Buffer.alloc(30_000 + i, `x${i}`))).toBe(true);
    expect(s3Files.filter((e) => !e.dir)).toHaveLength(4);

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

  it('bak export of an S3 snapshot: a directory marker becomes its folder; keys that cannot be files are named, the rest written, exit 1', async () => {
    // MinIO refuses keys that cannot be paths (a//b, x/../y) and a key beside a "folder" of the same name, so the
    // snapshot with such keys (which AWS S3 allows) is written here with the repository's own writer.
    const repo = path.join(work, 'repo-odd');
    expect((await bak('022', ['init', repo])).code).toBe(0);
    const store = await openStore({ url: pathToFileURL(repo).href });
    const repository = await Repository.open(store);
    const writer = await repository.beginSnapshot({ engine: 's3', source: 's3://odd' });
    const index = writer.openIndex('objects');
    const objects: Array<[string, string]> = [['a', 'a file'], ['a/b', 'under a'], ['logs/', ''], ['x/../y', 'climbs'], ['z//ok', 'empty segment'], ['z/ok.txt', 'fine']];
    for (const [key, body] of objects.sort(([a], [b]) => (a < b ? -1 : 1))) {
      const written = await repository.blobs.writeBuffer(Buffer.from(body));
      await index.add({ key, size: written.size, etag: 'e', lastModified: new Date().toISOString(), metadata: {}, tags: {}, checksum: written.checksum, blobs: written.blobs });
    }
    await writer.closeIndex(index);
    const details = { mode: 'copy', bucket: 'odd', prefix: '', endpoint: null, region: null, forcePathStyle: false, checksums: null, deleteVersions: false };
    const { id: oddId } = await writer.commit({ engineDetails: details, totals: { items: objects.length, bytes: 0 } });
    await store.close?.();

    const out = path.join(work, 'export-odd');
    const ex = await bak('022', ['--repo', repo, 'export', oddId, '--to-dir', out]);
    expect(ex.code, show(ex)).toBe(1);
    expect(ex.stderr).toMatch(/exported 2 objects to .*, but 3 could not be files/);
    expect(ex.stderr).toMatch(/  (a|a\/b): collides with another key/);
    expect(ex.stderr).toContain('x/../y: not a file name');
    expect(ex.stderr).toContain('z//ok: not a file name');
    expect(ex.stderr).toContain('bak restore');
    expect((await stat(path.join(out, 'logs'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(out, 'z', 'ok.txt'), 'utf8')).toBe('fine');
    expect(await readdir(path.dirname(out))).not.toContain('y');
  }, 60_000);

  it("under umask 022 Datomic's staging folder holds only 0700 folders and 0600 files: its tool runs under umask 077", async () => {
    const repo = path.join(work, 'repo-datomic');
    const home = path.join(work, 'datomic-home');
    const staging = path.join(work, 'datomic-staging');
    const source = uniqueDbUri('perms');
    await standin(home, ['standin-create', source, '12']);
    expect((await bak('022', ['init', repo])).code).toBe(0);
    const r = await runCommand('sh', ['-c', 'umask 022; exec "$0" "$@"', BAK_BIN, '--repo', repo, 'backup', source, '--datomic-bin', DATOMIC_STANDIN, '--staging', staging], {
      env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', DATOMIC_STANDIN_HOME: home, NODE: process.execPath },
    });
    expect(r.code, show(r)).toBe(0);
    const staged = await modes(staging);
    expect(staged.filter((e) => !e.dir).length).toBeGreaterThan(5);
    for (const e of staged) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '700' : '600'}`);
    for (const e of await modes(repo)) expect(`${e.path} ${e.mode.toString(8)}`).toBe(`${e.path} ${e.dir ? '700' : '600'}`);
  }, 60_000);

  it('bak init on an existing folder others can read warns and names the fix', async () => {
    const open = path.join(work, 'open-repo');
    await mkdir(open, { mode: 0o755 });
    const init = await bak('022', ['init', open]);
    expect(init.code, show(init)).toBe(0);
    expect(init.stderr).toMatch(/readable by other accounts on this machine \(mode 755\): run chmod 700/);
  });
});
