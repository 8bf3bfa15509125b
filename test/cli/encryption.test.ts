// An encrypted repository as an operator uses it, through the bak executable: a PostgreSQL table and an S3 object
// holding known markers are backed up under umask 022, and then the repository is searched for anything readable
// (markers, table, key, database and bucket names, in plain or zstd/gzip-decompressed form), for key material in any
// output, for modes others could read; restores are compared with the test's own reads; wrong keys, and tampered,
// swapped and truncated objects, are refused with the documented exit codes.
import { createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassphraseSource } from '../../src/repository/encryption/passphrase.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { BAK_BIN, json, show, type CliResult } from '../helpers/cli.ts';
import { dropDatabase, pgEnv, pgUri, requirePostgres, uniqueDbName, withClient, type PgServer } from '../helpers/postgres.ts';
import { runCommand } from '../helpers/run.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

const PASSPHRASE = `correct horse ${randomBytes(6).toString('hex')}`;
const PG_MARKER = `PGMARK${randomBytes(8).toString('hex')}`;
const S3_MARKER = `S3MARK${randomBytes(8).toString('hex')}`;
const TABLE = `zq_ledger_${randomBytes(4).toString('hex')}`;
const KEY_NAME = `zq-private-folder-${randomBytes(4).toString('hex')}/report.txt`;

/** Every file under root, with its bytes. */
async function files(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.set(path.relative(root, path.join(entry.parentPath, entry.name)), await readFile(path.join(entry.parentPath, entry.name)));
  }
  return out;
}

/** The bytes themselves, and what zstd or gzip makes of them from any place a frame could start. */
function readableForms(data: Buffer): Buffer[] {
  const forms = [data];
  for (const [magic, inflate] of [
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), zstdDecompressSync],
    [Buffer.from([0x1f, 0x8b]), gunzipSync],
  ] as const) {
    for (let at = data.indexOf(magic); at >= 0; at = data.indexOf(magic, at + 1)) {
      try {
        forms.push(inflate(data.subarray(at)));
      } catch {
        // not a frame
      }
    }
  }
  return forms;
}

function flipBit(data: Buffer, at = Math.floor(data.length / 2)): Buffer {
  const copy = Buffer.from(data);
  copy[at]! ^= 0x01;
  return copy;
}

describe('encrypted repository, end to end', () => {
  let pg: PgServer;
  let minio: Minio;
  let s3: S3Client;
  let work: string;
  let repoDir: string;
  const database = uniqueDbName('bakenc');
  const bucket = uniqueName('bak-enc');
  const restoredBucket = uniqueName('bak-enc-restored');
  const restoredDb = uniqueDbName('bakenc_restored');
  const outputs: CliResult[] = [];
  let pgSnapshot: Manifest;
  let s3Snapshot: Manifest;

  const bak = async (args: string[], env: Record<string, string | undefined> = {}, umask = '022') => {
    const r = await runCommand('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, BAK_BIN, '--repo', repoDir, ...args], {
      env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', BAK_TEST_SCRYPT_LOG_N: '10', BAK_PASSWORD: PASSPHRASE, ...pgEnv(pg), ...awsEnv(minio), ...env } as Record<string, string>,
    });
    outputs.push(r);
    return r;
  };
  /** The repository as a test reads it, with the passphrase. */
  const openRepo = async (dir = repoDir) => Repository.open(await openStore({ url: pathToFileURL(dir).href }), { keys: [new PassphraseSource('test', async () => PASSPHRASE)] });

  beforeAll(async () => {
    [pg, minio] = await Promise.all([requirePostgres(), requireServer('minio')]);
    s3 = minioClient(minio);
    work = await mkdtemp(path.join(tmpdir(), 'bak-enc-'));
    repoDir = path.join(work, 'repo');
    await withClient(pg, 'postgres', (c) => c.query(`CREATE DATABASE ${database}`));
    await withClient(pg, database, async (c) => {
      await c.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text NOT NULL)`);
      await c.query(`INSERT INTO ${TABLE} SELECT g, '${PG_MARKER} row ' || g FROM generate_series(1, 3000) g`);
    });
    await createBucket(s3, bucket);
    await createBucket(s3, restoredBucket);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: KEY_NAME, Body: `${S3_MARKER} quarterly figures\n`.repeat(2000) }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'noise.bin', Body: randomBytes(50_000) }));

    const init = await bak(['init']);
    expect(init.code, show(init)).toBe(0);
    expect(init.stdout).toMatch(/created encrypted bak repository/);
    const pgBackup = await bak(['-v', 'backup', pgUri(pg, database), '--json']);
    expect(pgBackup.code, show(pgBackup)).toBe(0);
    pgSnapshot = json<Manifest>(pgBackup);
    const s3Backup = await bak(['-v', 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
    expect(s3Backup.code, show(s3Backup)).toBe(0);
    s3Snapshot = json<Manifest>(s3Backup);
  }, 120_000);

  afterAll(async () => {
    if (pg) await Promise.all([dropDatabase(pg, database), dropDatabase(pg, restoredDb)]).catch(() => undefined);
    if (s3) for (const b of [bucket, restoredBucket]) await deleteBucketCompletely(s3, b).catch(() => undefined);
    s3?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('restores both sources equal to what the test reads from them, and verifies clean at data level', async () => {
    const restorePg = await bak(['restore', pgSnapshot.id, '--to', pgUri(pg), '--database', database, '--as', restoredDb]);
    expect(restorePg.code, show(restorePg)).toBe(0);
    const rows = (db: string) => withClient(pg, db, async (c) => (await c.query(`SELECT id, note FROM ${TABLE} ORDER BY id`)).rows);
    expect(await rows(restoredDb)).toEqual(await rows(database));

    const restoreS3 = await bak(['restore', s3Snapshot.id, '--to', `s3://${restoredBucket}`]);
    expect(restoreS3.code, show(restoreS3)).toBe(0);
    for (const key of [KEY_NAME, 'noise.bin']) {
      const read = async (b: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: b, Key: key }))).Body!.transformToByteArray());
      expect((await read(restoredBucket)).equals(await read(bucket)), key).toBe(true);
    }

    const verify = await bak(['verify', '--all', '--level', 'data', '--json']);
    expect(verify.code, show(verify)).toBe(0);
  }, 120_000);

  it('holds nothing readable: no marker, table, key, database or bucket name in any object, plain or decompressed, nor in object names', async () => {
    const stored = await files(repoDir);
    expect(stored.size).toBeGreaterThan(5);
    const needles = [PG_MARKER, S3_MARKER, TABLE, KEY_NAME, 'zq-private-folder', database, bucket, PASSPHRASE];
    for (const [name, data] of stored) {
      for (const needle of needles) expect(name.includes(needle), `${name} names ${needle}`).toBe(false);
      if (name === 'bak-repository.json') continue; // the public header: format, id, settings, how it is sealed
      for (const form of readableForms(data)) {
        const text = form.toString('latin1');
        for (const needle of needles) expect(text.includes(needle), `${name} holds ${needle}`).toBe(false);
      }
    }

    // The same search finds all of it in a plain repository of the same sources: it can fail.
    const plainDir = path.join(work, 'plain');
    for (const args of [['init', plainDir], ['--repo', plainDir, 'backup', pgUri(pg, database)], ['--repo', plainDir, 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint)]]) {
      const r = await runCommand(BAK_BIN, args, { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', BAK_PASSWORD: '', ...pgEnv(pg), ...awsEnv(minio) } as Record<string, string> });
      expect(r.code, show(r)).toBe(0);
    }
    const found = new Set<string>();
    for (const [name, data] of await files(plainDir)) {
      for (const needle of needles) if (name.includes(needle)) found.add(needle);
      for (const form of readableForms(data)) for (const needle of needles) if (form.toString('latin1').includes(needle)) found.add(needle);
    }
    expect([...found].sort()).toEqual([PG_MARKER, S3_MARKER, TABLE, KEY_NAME, 'zq-private-folder', database, bucket].sort());
  }, 60_000);

  it('leaves nothing in the repository readable by group or others under umask 022', async () => {
    const entries = [repoDir, ...(await readdir(repoDir, { recursive: true, withFileTypes: true })).map((e) => path.join(e.parentPath, e.name))];
    for (const entry of entries) {
      const st = await stat(entry);
      expect(`${entry} ${(st.mode & 0o777).toString(8)}`).toBe(`${entry} ${st.isDirectory() ? '700' : '600'}`);
    }
  });

  it('never shows the passphrase or the master key in logs, errors, manifests or --json output', async () => {
    const repo = await openRepo();
    const slot = (await repo.keySlots()).slots[0]!;
    if (slot.kind !== 'passphrase') throw new Error('expected a passphrase slot');
    // The master key, unwrapped here by hand (not through bak) to search for it.
    const kek = scryptSync(PASSPHRASE, Buffer.from(slot.kdf.salt, 'base64'), 32, { N: 2 ** slot.kdf.logN, r: slot.kdf.r, p: slot.kdf.p });
    const wrapped = Buffer.from(slot.wrapped, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(slot.nonce, 'base64'));
    decipher.setAAD(Buffer.from(`bak-key-slot:${repo.marker.id}:${slot.id}`));
    decipher.setAuthTag(wrapped.subarray(-16));
    const master = Buffer.concat([decipher.update(wrapped.subarray(0, -16)), decipher.final()]);
    expect(master.length).toBe(32);

    // More output to search: failures, listings and the key commands, with -v.
    await bak(['-v', 'snapshots', '--json']);
    await bak(['-v', 'key', 'list', '--json']);
    await bak(['-v', 'snapshots'], { BAK_PASSWORD: `${PASSPHRASE}x` });
    await bak(['-v', 'show', pgSnapshot.id, '--json']);
    const forms = [PASSPHRASE, master.toString('hex'), master.toString('base64'), master.toString('latin1')];
    for (const r of outputs) for (const form of forms) expect(`${r.stdout}\n${r.stderr}`.includes(form)).toBe(false);
    for (const [name, data] of await files(repoDir)) {
      for (const form of [...forms.map((f) => Buffer.from(f, 'latin1')), master]) expect(data.includes(form), name).toBe(false);
    }
  }, 60_000);

  it('refuses a wrong or missing passphrase with exit 2, naming what it tried, and writes nothing', async () => {
    const before = [...(await files(repoDir)).keys()].sort();
    const wrong = await bak(['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint)], { BAK_PASSWORD: 'not the passphrase' });
    expect(wrong.code, show(wrong)).toBe(2);
    expect(wrong.stderr).toMatch(/is encrypted and no key opened it/);
    expect(wrong.stderr).toMatch(/passphrase from BAK_PASSWORD, slot [0-9a-f]{16}: wrong passphrase/);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    const missing = await bak(['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint)], { BAK_PASSWORD: '' });
    expect(missing.code, show(missing)).toBe(2);
    expect(missing.stderr).toMatch(/1 passphrase slot: no key given \(a passphrase in BAK_PASSWORD/);
    const file = path.join(work, 'wrong-pass');
    await writeFile(file, 'nope\n', { mode: 0o600 });
    const viaFile = await bak(['--password-file', file, 'snapshots']);
    expect(viaFile.code, show(viaFile)).toBe(2);
    expect(viaFile.stderr).toMatch(/passphrase from --password-file .*wrong passphrase/);
    expect([...(await files(repoDir)).keys()].sort()).toEqual(before);
  });

  it('reads the passphrase from a password command (flag, environment, config); a failing command is named, its output never shown', async () => {
    const secretFile = path.join(work, 'pass.txt');
    await writeFile(secretFile, `${PASSPHRASE}\nsecond line ignored\n`, { mode: 0o600 });
    const viaEnv = await bak(['snapshots'], { BAK_PASSWORD: '', BAK_PASSWORD_COMMAND: `cat ${secretFile}` });
    expect(viaEnv.code, show(viaEnv)).toBe(0);
    const viaFlag = await bak(['--password-command', `cat ${secretFile}`, 'snapshots'], { BAK_PASSWORD: '' });
    expect(viaFlag.code, show(viaFlag)).toBe(0);
    const config = path.join(work, 'bak.config.json');
    await writeFile(config, JSON.stringify({ repositories: { vault: { url: repoDir, encryption: { passwordCommand: `cat ${secretFile}` } } } }));
    const viaConfig = await runCommand(BAK_BIN, ['--config', config, '--repo', 'vault', 'snapshots', '--json'], { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', BAK_PASSWORD: '' } as Record<string, string> });
    expect(viaConfig.code, show(viaConfig)).toBe(0);
    expect(json<{ snapshots: unknown[] }>(viaConfig).snapshots).toHaveLength(2);

    const failing = await bak(['snapshots'], { BAK_PASSWORD: '', BAK_PASSWORD_COMMAND: `cat ${secretFile}; exit 7` });
    expect(failing.code, show(failing)).toBe(2);
    expect(failing.stderr).toMatch(/BAK_PASSWORD_COMMAND "cat .*; exit 7" failed \(exit code 7\)/);
    expect(failing.stderr).not.toContain(PASSPHRASE);
  });

  it('detects a flipped bit in a data blob, a manifest and an index blob, a swapped and a truncated blob: exit 3, naming the object', async () => {
    const repo = await openRepo();
    const dataBlob = pgSnapshot.items.find((i) => i.blobs.length > 0)!.blobs[0]!;
    const otherBlob = s3Snapshot.items.concat(pgSnapshot.items).flatMap((i) => i.blobs).find((b) => b.id !== dataBlob.id)!;
    const indexBlob = s3Snapshot.indexes[0]!.blobs[0]!;
    const manifestKey = repo.manifestKey(s3Snapshot.sourceKey, s3Snapshot.id);
    const cases: Array<{ name: string; damage: (dir: string) => Promise<void>; snapshot: string; expect: RegExp }> = [
      {
        name: 'flipped bit in a data blob',
        damage: async (dir) => writeFile(path.join(dir, repo.blobs.keyOf(dataBlob.id)), flipBit(await readFile(path.join(dir, repo.blobs.keyOf(dataBlob.id))))),
        snapshot: pgSnapshot.id,
        expect: new RegExp(`blob ${dataBlob.id}:? (is )?corrupt: authentication failed`),
      },
      {
        name: 'flipped bit in a manifest',
        damage: async (dir) => writeFile(path.join(dir, manifestKey), flipBit(await readFile(path.join(dir, manifestKey)))),
        snapshot: s3Snapshot.id,
        expect: new RegExp(`manifest ${manifestKey.replace(/[.]/g, '\\.')} is unreadable: authentication failed`),
      },
      {
        name: 'flipped bit in an index blob',
        damage: async (dir) => writeFile(path.join(dir, repo.blobs.keyOf(indexBlob.id)), flipBit(await readFile(path.join(dir, repo.blobs.keyOf(indexBlob.id))))),
        snapshot: s3Snapshot.id,
        expect: new RegExp(`blob ${indexBlob.id}:? (is )?corrupt: authentication failed`),
      },
      {
        name: 'a blob swapped for another',
        damage: async (dir) => writeFile(path.join(dir, repo.blobs.keyOf(dataBlob.id)), await readFile(path.join(dir, repo.blobs.keyOf(otherBlob.id)))),
        snapshot: pgSnapshot.id,
        expect: new RegExp(`blob ${dataBlob.id}:? (is )?corrupt: authentication failed`),
      },
      {
        name: 'a truncated blob',
        damage: async (dir) => truncate(path.join(dir, repo.blobs.keyOf(dataBlob.id)), 20),
        snapshot: pgSnapshot.id,
        expect: new RegExp(`blob ${dataBlob.id}:? (is )?corrupt: 20 bytes, shorter than any sealed object`),
      },
    ];
    for (const c of cases) {
      const copy = path.join(work, `tampered-${cases.indexOf(c)}`);
      await cp(repoDir, copy, { recursive: true });
      await c.damage(copy);
      const r = await runCommand(BAK_BIN, ['--repo', copy, 'verify', c.snapshot, '--level', 'data'], {
        env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', BAK_PASSWORD: PASSPHRASE, ...pgEnv(pg), ...awsEnv(minio) } as Record<string, string>,
      });
      expect(r.code, `${c.name}\n${show(r)}`).toBe(3);
      expect(`${r.stdout}\n${r.stderr}`, c.name).toMatch(c.expect);
      await rm(copy, { recursive: true, force: true });
    }
  }, 120_000);

  it('adds, changes and removes keys without rewriting data; never the last slot; a removed slot no longer opens', async () => {
    const copy = path.join(work, 'keys');
    await cp(repoDir, copy, { recursive: true });
    const data = async () => {
      const out: string[] = [];
      for (const entry of await readdir(copy, { recursive: true, withFileTypes: true })) {
        const full = path.join(entry.parentPath, entry.name);
        if (entry.isFile() && !full.includes(`${path.sep}keys${path.sep}`)) out.push(`${path.relative(copy, full)} ${(await stat(full)).mtimeMs}`);
      }
      return out.sort();
    };
    const before = await data();
    const run = (args: string[], env: Record<string, string>) =>
      runCommand(BAK_BIN, ['--repo', copy, ...args], { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', BAK_TEST_SCRYPT_LOG_N: '10', BAK_PASSWORD: PASSPHRASE, ...env } as Record<string, string> });
    const slots = async (env: Record<string, string> = {}) => json<{ slots: Array<{ id: string; openedThisRun: boolean }> }>(await run(['key', 'list', '--json'], env)).slots;

    const [first] = await slots();
    const added = await run(['key', 'add', 'passphrase', '--json'], { BAK_NEW_PASSWORD: 'second passphrase' });
    expect(added.code, show(added)).toBe(0);
    const second = json<{ added: { id: string } }>(added).added.id;
    expect((await slots({ BAK_PASSWORD: 'second passphrase' })).find((s) => s.openedThisRun)!.id).toBe(second);

    const removeOwn = await run(['key', 'remove', first!.id], {});
    expect(removeOwn.code, show(removeOwn)).toBe(2);
    expect(removeOwn.stderr).toMatch(/is the key this command opened the repository with/);
    const removed = await run(['key', 'remove', first!.id], { BAK_PASSWORD: 'second passphrase' });
    expect(removed.code, show(removed)).toBe(0);
    const gone = await run(['snapshots'], {});
    expect(gone.code, show(gone)).toBe(2);
    expect(gone.stderr).toMatch(/wrong passphrase/);

    const last = await run(['key', 'remove', second], { BAK_PASSWORD: 'second passphrase' });
    expect(last.code, show(last)).toBe(2);
    expect(last.stderr).toMatch(/last key/);

    const passwd = await run(['key', 'passwd'], { BAK_PASSWORD: 'second passphrase', BAK_NEW_PASSWORD: 'third passphrase' });
    expect(passwd.code, show(passwd)).toBe(0);
    expect((await run(['snapshots'], { BAK_PASSWORD: 'second passphrase' })).code).toBe(2);
    const third = await run(['verify', '--all', '--level', 'data'], { BAK_PASSWORD: 'third passphrase' });
    expect(third.code, show(third)).toBe(0);
    expect(await data()).toEqual(before.filter((l) => !l.startsWith('locks')));
  }, 120_000);
});
