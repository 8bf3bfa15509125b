// AWS KMS key slots against the real local-kms emulator, through the bak executable: a repository whose only key is a
// KMS key backs up, verifies and exports; a passphrase and a KMS key each open it alone; a disabled key is refused
// with exit 2, the slot and KMS's own error named, nothing written; a key that does not exist leaves nothing behind
// at init; a KMS slot added to a passphrase repository replaces the passphrase, and the last slot cannot be removed.
// local-kms keeps its keys between runs: every run makes its own key and a unique alias for it.
import { randomBytes } from 'node:crypto';
import { treeListing } from '../helpers/fixture-tree.ts';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DisableKeyCommand, EnableKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minioClient, uniqueName } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig, type CliResult } from '../helpers/cli.ts';
import { awsEnv, createBucket, deleteBucketCompletely, s3Flags, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';

type Kms = ServersEnv['kms'];

const PASSPHRASE = `kms test ${randomBytes(6).toString('hex')}`;
const OBJECTS: Array<[string, Buffer]> = [
  ['notes/a.txt', Buffer.from('through KMS\n'.repeat(500))],
  ['noise.bin', randomBytes(40_000)],
];


const noStackTrace = (r: CliResult) => expect(r.stderr, show(r)).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

interface Slot {
  id: string;
  kind: string;
  keyId?: string;
  keyArn?: string;
  openedThisRun: boolean;
}

describe('AWS KMS key slots (local-kms)', () => {
  let kms: Kms;
  let minio: Minio;
  let s3: S3Client;
  let client: KMSClient;
  let work: string;
  let keyId: string;
  let keyArn: string;
  let alias: string;
  const bucket = uniqueName('bak-kms-src');
  const cleanups: Array<() => Promise<unknown>> = [];

  /** repositories.<name> at work/<folder> with KMS settings: the run's key to wrap with, another key id, or (null) none. */
  const kmsEntry = (folder: string, kmsKey: string | null = alias) => ({
    url: path.join(work, folder),
    encryption: {
      awsKms: {
        ...(kmsKey === null ? {} : { keyId: kmsKey }),
        region: kms.region,
        endpoint: kms.endpoint,
        // local-kms takes any credentials; these are the config's, never the environment's (that holds MinIO's).
        accessKeyId: 'bak-test-kms',
        secretAccessKey: 'bak-test-kms-secret',
      },
    },
  });
  /** The same folder without encryption settings: only a passphrase (BAK_PASSWORD) can open it there. */
  const plainEntry = (folder: string) => ({ url: path.join(work, folder) });

  const bak = (config: string, args: string[], env: Record<string, string> = {}) =>
    runBak(['--config', config, ...args], { env: { ...awsEnv(minio), BAK_TEST_SCRYPT_LOG_N: '10', BAK_PASSWORD: '', BAK_PASSWORD_FILE: '', BAK_PASSWORD_COMMAND: '', ...env } });

  const slotsOf = async (config: string, repo: string, env: Record<string, string> = {}): Promise<Slot[]> => {
    const r = await bak(config, ['--repo', repo, 'key', 'list', '--json'], env);
    expect(r.code, show(r)).toBe(0);
    return json<{ slots: Slot[] }>(r).slots;
  };

  beforeAll(async () => {
    [kms, minio] = await Promise.all([requireServer('kms'), requireServer('minio')]);
    client = new KMSClient({ region: kms.region, endpoint: kms.endpoint, credentials: { accessKeyId: 'bak-test-kms', secretAccessKey: 'bak-test-kms-secret' } });
    const created = await client.send(new CreateKeyCommand({ Description: `bak kms.test.ts ${new Date().toISOString()}` }));
    keyId = created.KeyMetadata!.KeyId!;
    keyArn = created.KeyMetadata!.Arn!;
    alias = `alias/bak-test-${Date.now()}-${randomBytes(4).toString('hex')}`;
    await client.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    cleanups.push(() => client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })));

    s3 = minioClient(minio);
    await createBucket(s3, bucket);
    cleanups.push(() => deleteBucketCompletely(s3, bucket));
    for (const [key, body] of OBJECTS) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    work = await mkdtemp(path.join(tmpdir(), 'bak-kms-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    s3?.destroy();
    client?.destroy();
  });

  it('a repository with only a KMS key: init makes one aws-kms slot; backup, verify and export work through KMS', async () => {
    const config = await writeConfig({ repositories: { kmsonly: kmsEntry('kmsonly') } });
    const init = await bak(config, ['init', 'kmsonly', '--json']);
    expect(init.code, show(init)).toBe(0);
    const created = json<{ encrypted: boolean; keySlots: Slot[] }>(init);
    expect(created.encrypted).toBe(true);
    expect(created.keySlots.map((s) => s.kind)).toEqual(['aws-kms']);
    expect(init.stderr).not.toMatch(/created a plain repository/);
    const marker = JSON.parse(await readFile(path.join(work, 'kmsonly', 'bak-repository.json'), 'utf8'));
    expect(marker.encryption?.cipher).toBe('aes-256-gcm');

    const backup = await bak(config, ['--repo', 'kmsonly', 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
    expect(backup.code, show(backup)).toBe(0);
    const id = json<{ id: string }>(backup).id;

    const verify = await bak(config, ['--repo', 'kmsonly', 'verify', id, '--level', 'data']);
    expect(verify.code, show(verify)).toBe(0);
    const out = path.join(work, 'kmsonly-export');
    const exported = await bak(config, ['--repo', 'kmsonly', 'export', id, '--to-dir', out]);
    expect(exported.code, show(exported)).toBe(0);
    for (const [key, body] of OBJECTS) expect((await readFile(path.join(out, key))).equals(body), key).toBe(true);

    const slots = await slotsOf(config, 'kmsonly');
    expect(slots).toHaveLength(1);
    expect(slots[0]).toMatchObject({ kind: 'aws-kms', keyId: alias, keyArn, openedThisRun: true });

    // Without the KMS settings, nothing opens it, and the message says which key is missing.
    const bare = await bak(config, ['--repo', path.join(work, 'kmsonly'), 'snapshots']);
    expect(bare.code, show(bare)).toBe(2);
    expect(bare.stderr).toMatch(/1 aws-kms slot: no key given \(encryption\.awsKms/);
  });

  it('a passphrase and a KMS key give two slots, and either opens the repository alone', async () => {
    // "dual" has the KMS settings; "dualpw" is the same folder with none (only the passphrase can open it there).
    const config = await writeConfig({ repositories: { dual: kmsEntry('dual'), dualpw: plainEntry('dual') } });
    const init = await bak(config, ['init', 'dual', '--json'], { BAK_PASSWORD: PASSPHRASE });
    expect(init.code, show(init)).toBe(0);
    expect(json<{ keySlots: Slot[] }>(init).keySlots.map((s) => s.kind).sort()).toEqual(['aws-kms', 'passphrase']);

    const byPassphrase = await slotsOf(config, 'dualpw', { BAK_PASSWORD: PASSPHRASE });
    expect(byPassphrase.find((s) => s.openedThisRun)?.kind).toBe('passphrase');
    const byKms = await slotsOf(config, 'dual');
    expect(byKms).toHaveLength(2);
    expect(byKms.find((s) => s.openedThisRun)).toMatchObject({ kind: 'aws-kms', keyArn });
    // A wrong passphrase falls through to the KMS key.
    const wrongPassphrase = await slotsOf(config, 'dual', { BAK_PASSWORD: 'not the passphrase' });
    expect(wrongPassphrase.find((s) => s.openedThisRun)?.kind).toBe('aws-kms');

    const backup = await bak(config, ['--repo', 'dualpw', 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json'], { BAK_PASSWORD: PASSPHRASE });
    expect(backup.code, show(backup)).toBe(0);
    const verify = await bak(config, ['--repo', 'dual', 'verify', json<{ id: string }>(backup).id, '--level', 'data']);
    expect(verify.code, show(verify)).toBe(0);
  });

  it('a disabled KMS key: every command exits 2 naming the slot and the refusal, no stack trace, nothing written', async () => {
    const config = await writeConfig({ repositories: { refused: kmsEntry('refused') } });
    const init = await bak(config, ['init', 'refused']);
    expect(init.code, show(init)).toBe(0);
    const backup = await bak(config, ['--repo', 'refused', 'backup', `s3://${bucket}`, ...s3Flags(minio.endpoint), '--json']);
    expect(backup.code, show(backup)).toBe(0);
    const id = json<{ id: string }>(backup).id;
    const [slot] = await slotsOf(config, 'refused');
    const root = path.join(work, 'refused');
    const before = await treeListing(root);

    await client.send(new DisableKeyCommand({ KeyId: keyId }));
    try {
      const commands = [
        ['snapshots'],
        ['backup', `s3://${bucket}`, ...s3Flags(minio.endpoint)],
        ['verify', id],
        ['key', 'list'],
        ['gc', '--source', `s3://${bucket}`, '--keep-last', '1'],
      ];
      for (const args of commands) {
        const r = await bak(config, ['--repo', 'refused', ...args]);
        expect(r.code, `bak ${args.join(' ')}\n${show(r)}`).toBe(2);
        expect(r.stderr).toContain('is encrypted and no key opened it');
        expect(r.stderr).toContain(`AWS KMS key ${alias}, slot ${slot!.id}`);
        expect(r.stderr).toMatch(/AWS KMS refused to decrypt with .*\(DisabledException/);
        noStackTrace(r);
      }
      expect(await treeListing(root)).toEqual(before);
    } finally {
      await client.send(new EnableKeyCommand({ KeyId: keyId }));
    }
    // Enabled again, it opens as before.
    const after = await bak(config, ['--repo', 'refused', 'verify', id]);
    expect(after.code, show(after)).toBe(0);
  });

  it('init with a KMS key that does not exist exits 2 and leaves nothing behind', async () => {
    const missing = `alias/does-not-exist-${Date.now()}-${randomBytes(4).toString('hex')}`;
    const config = await writeConfig({ repositories: { nokey: kmsEntry('nokey', missing) } });
    const init = await bak(config, ['init', 'nokey'], { BAK_PASSWORD: PASSPHRASE });
    expect(init.code, show(init)).toBe(2);
    expect(init.stderr).toContain(`cannot wrap the repository key with the AWS KMS key ${missing}`);
    expect(init.stderr).toMatch(/NotFoundException/);
    noStackTrace(init);
    const root = path.join(work, 'nokey');
    const left = await readdir(root).catch(() => [] as string[]);
    expect(left).not.toContain('bak-repository.json');
    expect(left).not.toContain('keys');
    expect(await treeListing(root).catch(() => [])).toEqual([]);
  });

  it('key add aws-kms onto a passphrase repository; opened by KMS the passphrase slot is removed; the last slot is not', async () => {
    // "addpw" (no encryption settings) makes the passphrase repository; "addkms" is the same folder with KMS settings but no key id.
    const config = await writeConfig({ repositories: { addpw: plainEntry('add'), addkms: kmsEntry('add', null) } });
    const init = await bak(config, ['init', 'addpw', '--json'], { BAK_PASSWORD: PASSPHRASE });
    expect(init.code, show(init)).toBe(0);
    const [passphraseSlot] = json<{ keySlots: Slot[] }>(init).keySlots;
    expect(passphraseSlot!.kind).toBe('passphrase');

    // Without a key id there is nothing to wrap with.
    const noKey = await bak(config, ['--repo', 'addkms', 'key', 'add', 'aws-kms'], { BAK_PASSWORD: PASSPHRASE });
    expect(noKey.code, show(noKey)).toBe(2);
    expect(noKey.stderr).toContain('--key-id');

    const add = await bak(config, ['--repo', 'addkms', 'key', 'add', 'aws-kms', '--key-id', alias, '--json'], { BAK_PASSWORD: PASSPHRASE });
    expect(add.code, show(add)).toBe(0);
    const added = json<{ added: Slot }>(add).added;
    expect(added).toMatchObject({ kind: 'aws-kms', keyId: alias, keyArn });

    // Opened by KMS alone (no passphrase anywhere), the passphrase slot goes.
    const remove = await bak(config, ['--repo', 'addkms', 'key', 'remove', passphraseSlot!.id]);
    expect(remove.code, show(remove)).toBe(0);
    const left = await slotsOf(config, 'addkms');
    expect(left.map((s) => [s.id, s.kind, s.openedThisRun])).toEqual([[added.id, 'aws-kms', true]]);

    // The KMS slot is the last one: refused.
    const last = await bak(config, ['--repo', 'addkms', 'key', 'remove', added.id]);
    expect(last.code, show(last)).toBe(2);
    expect(last.stderr).toContain(`slot ${added.id} is the repository's last key`);
    noStackTrace(last);
    expect(await slotsOf(config, 'addkms')).toHaveLength(1);

    // The passphrase no longer opens it.
    const byPassphrase = await bak(config, ['--repo', 'addpw', 'snapshots'], { BAK_PASSWORD: PASSPHRASE });
    expect(byPassphrase.code, show(byPassphrase)).toBe(2);
    expect(byPassphrase.stderr).toContain('the repository has no passphrase slot');
  });
});
