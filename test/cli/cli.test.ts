import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { minioStoreSettings } from '../helpers/backends.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';
import { requireServer } from '../helpers/servers.ts';

let home: string;
const env = () => ({ XDG_DATA_HOME: home });

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'bak-home-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('usage', () => {
  it('prints the version and help with exit 0', async () => {
    const version = await runBak(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await runBak(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['init', 'snapshots|ls', 'show', 'verify', 'config', 'unlock']) expect(help.stdout).toContain(command);
  });

  it('exits 2 with help when run without a command', async () => {
    const result = await runBak([]);
    expect(result.code).toBe(2);
    expect(result.stdout + result.stderr).toContain('Usage: bak');
  });

  it.each([
    [['bogus'], "unknown command 'bogus'", 'Usage: bak [options] [command]'],
    [['snapshots', '--bogus'], "unknown option '--bogus'", 'Usage: bak snapshots [options]'],
    [['show'], "missing required argument 'snapshot-id'", 'Usage: bak show [options] <snapshot-id>'],
    [['verify', 'x', '--level', 'deep'], "'deep' is invalid", 'Usage: bak verify'],
    [['config', 'chek'], "unknown command 'chek'", 'Usage: bak config'],
    [['--concurrency', '0', 'ls'], 'positive whole number', ''],
  ])('%j is a usage error: one line, the usage, exit 2', async (args, message, usage) => {
    const result = await runBak(args, { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain(usage);
    expect(result.stdout).toBe('');
  });

  it('verify needs an id or --all, not both', async () => {
    expect((await runBak(['verify'], { env: env() })).code).toBe(2);
    expect((await runBak(['verify', 'abc', '--all'], { env: env() })).code).toBe(2);
  });
});

describe('the built-in default repository', () => {
  it('is a local folder that init creates and says so', async () => {
    const init = await runBak(['init'], { env: env() });
    expect(init.code, init.stderr).toBe(0);
    const where = path.join(home, 'bak', 'repository');
    expect(init.stdout).toContain(pathToFileURL(where).href);
    expect(init.stderr).toContain('built-in default');
    const marker = JSON.parse(await readFile(path.join(where, 'bak-repository.json'), 'utf8'));
    expect(marker).toMatchObject({ format: 'bak-repository', version: 2 });

    const ls = await runBak(['ls'], { env: env() });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('no snapshots');

    const again = await runBak(['init'], { env: env() });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('--quiet silences the "using repository" line; --json keeps stdout machine-readable', async () => {
    const quiet = await runBak(['ls', '-q'], { env: env() });
    expect(quiet.stderr).toBe('');
    const json = await runBak(['ls', '--json'], { env: env() });
    expect(JSON.parse(json.stdout)).toMatchObject({ snapshots: [], unreadable: 0 });
  });
});

describe('bad repositories', () => {
  it('a folder that is not a repository: exit 2 and how to create one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-empty-'));
    const result = await runBak(['--repo', dir, 'ls']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no bak repository at ${pathToFileURL(dir).href}`);
    expect(result.stderr).toContain('bak init');
    await rm(dir, { recursive: true });
  });

  it('a repository of a newer format: exit 2, names the version', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-future-'));
    await writeFile(path.join(dir, 'bak-repository.json'), JSON.stringify({ format: 'bak-repository', version: 99 }));
    const result = await runBak(['--repo', dir, 'ls']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('repository format version 99');
    expect(result.stderr).toContain('upgrade bak');
    await rm(dir, { recursive: true });
  });

  it('an unsupported URL scheme: exit 2', async () => {
    const result = await runBak(['--repo', 'ftp://example/x', 'ls']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unsupported repository URL');
  });

  it('an S3 endpoint nobody listens on: exit 1, says unreachable, no secret in the message', async () => {
    const config = await writeConfig({
      repositories: {
        down: { url: 's3://bucket/x', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, accessKeyId: 'AKIDEXAMPLE', secretAccessKey: { env: 'DOWN_SECRET' } },
      },
    });
    const result = await runBak(['--config', config, '--repo', 'down', 'ls'], { env: { DOWN_SECRET: 'very-secret-value' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unreachable/);
    expect(result.stderr).not.toContain('very-secret-value');
  });

  it('a missing MinIO bucket: exit 1, names the bucket', async () => {
    const minio = await requireServer('minio');
    const config = await writeConfig({
      repositories: {
        gone: minioStoreSettings(minio, 's3://no-such-bucket-bak/x'),
      },
    });
    const init = await runBak(['--config', config, 'init', 'gone']);
    expect(init.code).toBe(1);
    expect(init.stderr).toContain('no-such-bucket-bak');
    expect(init.stderr).toMatch(/does not exist|missing|no such bucket/i);
  });
});

describe('config check', () => {
  const example = path.resolve(import.meta.dirname, '../../config.example.json');
  const exampleEnv = {
    MINIO_ACCESS_KEY: 'minio-access',
    MINIO_SECRET_KEY: 'minio-secret-value',
    PGPASSWORD: 'pg-secret-value',
    HC_PING_NIGHTLY_PG: 'https://hc-ping.com/secret-check-uuid',
    BAK_WEBHOOK_URL: 'https://hooks.example.com/secret-hook-path',
    BAK_AWS_PASSPHRASE: 'aws-passphrase-value',
  };

  it('accepts config.example.json and prints every job with secrets redacted', async () => {
    const result = await runBak(['--config', example, 'config', 'check'], { env: exampleEnv });
    expect(result.code, result.stderr).toBe(0);
    for (const job of ['nightly-pg', 'orders-spanner', 'orders-spanner-native', 'orders-spanner-dataflow', 'analytics-bq', 'ledger-datomic', 'assets-s3']) expect(result.stdout).toContain(`job ${job}`);
    expect(result.stdout).toContain('config ok');
    for (const secret of Object.values(exampleEnv)) expect(result.stdout + result.stderr).not.toContain(secret);
    const json = JSON.parse((await runBak(['--config', example, 'config', 'check', '--json'], { env: exampleEnv })).stdout);
    expect(json.ok).toBe(true);
    expect(json.jobs).toHaveLength(9);
  });

  it('reports secret references whose environment variables are not set (exit 2)', async () => {
    const result = await runBak(['--config', example, 'config', 'check'], { env: { MINIO_ACCESS_KEY: '', MINIO_SECRET_KEY: '', PGPASSWORD: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('repositories.minio.secretAccessKey: environment variable MINIO_SECRET_KEY is not set');
    expect(result.stderr).toContain('jobs.nightly-pg.options.password: environment variable PGPASSWORD is not set');
  });

  it('names the JSON path and the value at fault', async () => {
    const config = await writeConfig({ jobs: { pg: { engine: 'postgress', source: 'postgres://h', retention: { keepDaily: -1 } } } });
    const result = await runBak(['--config', config, 'config', 'check']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('jobs.pg.engine');
    expect(result.stderr).toContain('"postgress"');
    expect(result.stderr).toContain('jobs.pg.retention.keepDaily');
  });

  it("checks a job's engine options with the engine's own schema", async () => {
    const config = await writeConfig({ jobs: { pg: { engine: 'postgres', source: 'postgres://db', options: { jobs: 0, excludeDatabase: ['x'] } } } });
    const result = await runBak(['--config', config, 'config', 'check']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('jobs.pg.options');
    expect(result.stderr).toContain('jobs: Too small');
    expect(result.stderr).toContain('excludeDatabase');
  });

  it('rejects malformed JSON, unknown keys and unknown repository names', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-bad-config-'));
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{"jobs": {');
    const malformed = await runBak(['--config', broken, 'config', 'check']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('is not valid JSON');

    const unknownKey = await writeConfig({ repositoriez: {} });
    const r1 = await runBak(['--config', unknownKey, 'config', 'check']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('repositoriez');

    const unknownRepo = await writeConfig({ jobs: { a: { engine: 's3', source: 's3://b', repository: 'nowhere' } } });
    const r2 = await runBak(['--config', unknownRepo, 'config', 'check']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('jobs.a.repository: no repository named "nowhere"');

    const missing = await runBak(['--config', path.join(dir, 'nope.json'), 'ls']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
    await rm(dir, { recursive: true });
  });

  it('never prints a password embedded in a source URI', async () => {
    const config = await writeConfig({ jobs: { pg: { engine: 'postgres', source: 'postgres://admin:hunter2hunter2@db:5432/app?sslpassword=s3cr3t' } } });
    const result = await runBak(['--config', config, 'config', 'check', '--json']);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('hunter2hunter2');
    expect(result.stdout).not.toContain('s3cr3t');
    expect(JSON.parse(result.stdout).jobs[0].source).toBe('postgres://admin:***@db:5432/app?sslpassword=***');
  });

  /** No AWS, Google or bak key material from the machine running the tests: each test gives what it means to. */
  const bareKeyEnv = {
    AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_PROFILE: '',
    AWS_CONFIG_FILE: '/nonexistent/aws-config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials', AWS_EC2_METADATA_DISABLED: 'true',
    AWS_WEB_IDENTITY_TOKEN_FILE: '', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '', AWS_CONTAINER_CREDENTIALS_FULL_URI: '', GOOGLE_APPLICATION_CREDENTIALS: '',
    BAK_PASSWORD: '', BAK_PASSWORD_FILE: '', BAK_PASSWORD_COMMAND: '',
  };

  it("shows each repository's encryption section redacted: a plain password and credentials ***, references as they are", async () => {
    const plainPassword = `plain-passphrase-${Date.now()}`;
    const plainSecret = `plain-kms-secret-${Date.now()}`;
    const plainKeyId = `AKIAPLAIN${Date.now()}`;
    const envPassword = `env-passphrase-${Date.now()}`;
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-enc-config-'));
    const passwordFile = path.join(dir, 'passphrase');
    const filePassword = `file-passphrase-${Date.now()}`;
    await writeFile(passwordFile, `${filePassword}\n`);
    const config = await writeConfig({
      repositories: {
        plain: { url: '/srv/bak/plain', encryption: { password: plainPassword, awsKms: { keyId: 'alias/bak', region: 'eu-west-1', accessKeyId: plainKeyId, secretAccessKey: plainSecret } } },
        byenv: { url: '/srv/bak/env', encryption: { password: { env: 'BAK_TEST_ENC_PASSWORD' } } },
        byfile: { url: '/srv/bak/file', encryption: { password: { file: passwordFile } } },
      },
    });
    const env = { ...bareKeyEnv, BAK_TEST_ENC_PASSWORD: envPassword };
    const [text, asJson] = await Promise.all([runBak(['--config', config, 'config', 'check'], { env }), runBak(['--config', config, 'config', 'check', '--json'], { env })]);
    expect(text.code, show(text)).toBe(0);
    expect(asJson.code, show(asJson)).toBe(0);
    for (const secret of [plainPassword, plainSecret, plainKeyId, envPassword, filePassword]) expect(text.stdout + text.stderr + asJson.stdout + asJson.stderr).not.toContain(secret);

    const repos = json(asJson).repositories;
    expect(repos.plain.encryption).toEqual({ password: '***', awsKms: { keyId: 'alias/bak', region: 'eu-west-1', accessKeyId: '***', secretAccessKey: '***' } });
    expect(repos.byenv.encryption).toEqual({ password: { env: 'BAK_TEST_ENC_PASSWORD' } });
    expect(repos.byfile.encryption).toEqual({ password: { file: passwordFile } });
    expect(text.stdout).toContain('repository plain: /srv/bak/plain\n  encryption  {"password":"***","awsKms":{"keyId":"alias/bak","region":"eu-west-1","accessKeyId":"***","secretAccessKey":"***"}}\n');
    expect(text.stdout).toContain('repository byenv: /srv/bak/env\n  encryption  {"password":{"env":"BAK_TEST_ENC_PASSWORD"}}\n');
    expect(text.stdout).toContain(`repository byfile: /srv/bak/file\n  encryption  {"password":{"file":"${passwordFile}"}}\n`);
    await rm(dir, { recursive: true });
  });

  it('says per key source whether this machine can use it: references, password command, AWS region and credentials, Cloud KMS key', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bak-enc-usable-'));
    const passwordFile = path.join(dir, 'passphrase');
    await writeFile(passwordFile, 'a passphrase\n');
    const unset = `BAK_TEST_UNSET_${Date.now()}`;
    const gcpKey = 'projects/p/locations/europe-west1/keyRings/bak/cryptoKeys/repo';
    const config = await writeConfig({
      repositories: {
        envset: { url: '/srv/a', encryption: { password: { env: 'BAK_TEST_ENC_PASSWORD' } } },
        envunset: { url: '/srv/b', encryption: { password: { env: unset } } },
        file: { url: '/srv/c', encryption: { password: { file: passwordFile } } },
        nofile: { url: '/srv/d', encryption: { password: { file: path.join(dir, 'missing') } } },
        command: { url: '/srv/e', encryption: { passwordCommand: `cat ${passwordFile}` } },
        nocommand: { url: '/srv/f', encryption: { passwordCommand: 'bak-no-such-program --get repo' } },
        kms: { url: '/srv/g', encryption: { awsKms: { keyId: 'alias/bak', region: 'eu-west-1', accessKeyId: { env: 'BAK_TEST_KMS_AK' }, secretAccessKey: { env: 'BAK_TEST_KMS_SK' } } } },
        kmsbare: { url: '/srv/h', encryption: { awsKms: {} } },
        kmshalf: { url: '/srv/l', encryption: { awsKms: { region: 'eu-west-1', accessKeyId: { env: 'BAK_TEST_KMS_AK' } } } },
        kmsenv: { url: '/srv/i', encryption: { awsKms: { keyId: 'alias/bak' } } },
        gcp: { url: '/srv/j', encryption: { gcpKms: { keyName: gcpKey, keyFilename: passwordFile } } },
        gcpnokey: { url: '/srv/k', encryption: { gcpKms: {} } },
      },
    });
    const env = { ...bareKeyEnv, BAK_TEST_ENC_PASSWORD: 'set', BAK_TEST_KMS_AK: 'AKIATEST', BAK_TEST_KMS_SK: 'kms-secret-value', AWS_DEFAULT_REGION: 'us-west-2' };
    const [text, asJson] = await Promise.all([runBak(['--config', config, 'config', 'check'], { env }), runBak(['--config', config, 'config', 'check', '--json'], { env })]);
    // The unset reference and the missing file fail here as they would in cron, and half a pair of credentials anywhere: exit 2.
    expect(text.code, show(text)).toBe(2);
    expect(text.stderr).toContain(`problem: repositories.envunset.encryption.password: environment variable ${unset} is not set`);
    expect(text.stderr).toContain(`problem: repositories.nofile.encryption.password: cannot read secret file ${path.join(dir, 'missing')} (ENOENT)`);
    expect(text.stderr).toContain("problem: repositories.kmshalf.encryption.awsKms: give accessKeyId and secretAccessKey together, or neither (the SDK's own chain)");
    expect(text.stdout).toContain('config has 3 problem(s)');
    // A program missing here may be on the backup host: a note.
    expect(text.stdout).toContain('note: repositories.nocommand.encryption.passwordCommand: program "bak-no-such-program" not found on PATH: the passphrase cannot be read on this machine\n');
    expect(text.stdout + text.stderr + asJson.stdout).not.toContain('kms-secret-value');
    expect(text.stdout + text.stderr + asJson.stdout).not.toContain('a passphrase');

    const line = (repo: string) => new RegExp(`^repository ${repo}: .*\\n  encryption  .*\\n((?:  key .*\\n)+)`, 'm').exec(text.stdout)?.[1] ?? `(no key lines for ${repo})`;
    expect(line('envset')).toBe('  key password  usable: environment variable BAK_TEST_ENC_PASSWORD is set\n');
    expect(line('envunset')).toBe(`  key password  NOT usable: environment variable ${unset} is not set\n`);
    expect(line('file')).toBe(`  key password  usable: file ${passwordFile} is readable\n`);
    expect(line('nofile')).toBe(`  key password  NOT usable: cannot read secret file ${path.join(dir, 'missing')} (ENOENT)\n`);
    expect(line('command')).toMatch(/^ {2}key passwordCommand {2}usable: program cat found at \/\S+\/cat\n$/);
    expect(line('nocommand')).toBe('  key passwordCommand  NOT usable: program "bak-no-such-program" not found on PATH\n');
    expect(line('kms')).toBe('  key awsKms  usable: region eu-west-1; credentials from the config; key alias/bak for new slots (KMS not called)\n');
    expect(line('kmsbare')).toMatch(/^ {2}key awsKms {2}NOT usable: no region: give repositories\.kmsbare\.encryption\.awsKms\.region or set AWS_REGION \(AWS_DEFAULT_REGION is set, but the AWS SDK for JavaScript does not read it\).*; no credentials: .*; no keyId: /);
    expect(line('gcp')).toBe(`  key gcpKms  usable: key ${gcpKey} for new slots; credentials from ${passwordFile} (keyFilename) (not checked against the server)\n`);
    expect(line('gcpnokey')).toMatch(/^ {2}key gcpKms {2}maybe usable: no keyName: opens the slots that name their key, wraps no new one .*; credentials: Application Default Credentials/);

    const sources = json(asJson).keySources;
    expect(Object.keys(sources).sort()).toEqual(['command', 'envset', 'envunset', 'file', 'gcp', 'gcpnokey', 'kms', 'kmsbare', 'kmsenv', 'kmshalf', 'nocommand', 'nofile']);
    expect(sources.envunset).toEqual([{ source: 'password', usable: 'no', detail: `environment variable ${unset} is not set` }]);
    expect(sources.kmsbare[0]).toMatchObject({ source: 'awsKms', usable: 'no' });

    // The environment's region and credentials count; the environment's passphrase is named first, as it is used first.
    const withAws = await runBak(['--config', config, 'config', 'check', '--json'], { env: { ...env, AWS_REGION: 'eu-central-1', AWS_ACCESS_KEY_ID: 'AKIAENV', AWS_SECRET_ACCESS_KEY: 'env-secret-value', BAK_PASSWORD: 'from-env' } });
    const kmsenv = json(withAws).keySources.kmsenv;
    expect(kmsenv).toEqual([
      { source: 'environment', usable: 'yes', detail: "BAK_PASSWORD is set: it comes before the config's password and passwordCommand" },
      { source: 'awsKms', usable: 'yes', detail: 'region eu-central-1 (AWS_REGION); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; key alias/bak for new slots (KMS not called)' },
    ]);
    expect(withAws.stdout).not.toContain('env-secret-value');
    expect(withAws.stdout).not.toContain('from-env');
    await rm(dir, { recursive: true });
  });

  it('finds bak.config.json in the working directory, and BAK_CONFIG', async () => {
    const config = await writeConfig({ jobs: { only: { engine: 's3', source: 's3://b' } } });
    const byCwd = await runBak(['config', 'check', '--json'], { cwd: path.dirname(config) });
    expect(JSON.parse(byCwd.stdout).file).toBe(config);
    const byEnv = await runBak(['config', 'check', '--json'], { env: { BAK_CONFIG: config } });
    expect(JSON.parse(byEnv.stdout).jobs[0].name).toBe('only');
  });
});

describe('unlock', () => {
  it('removes stale locks, keeps live ones unless --all --yes', async () => {
    const repo = path.join(home, 'unlock-repo');
    await mkdir(repo, { recursive: true });
    expect((await runBak(['init', repo])).code).toBe(0);
    const lock = (id: string, expiresAt: string) =>
      writeFile(
        path.join(repo, 'locks', `${id}.json`),
        JSON.stringify({ id, kind: 'shared', host: 'h', pid: 1, command: 'backup x', createdAt: '2026-01-01T00:00:00.000Z', expiresAt }),
      );
    await mkdir(path.join(repo, 'locks'), { recursive: true });
    await lock('stale', '2026-01-01T00:10:00.000Z');
    await lock('live', new Date(Date.now() + 3_600_000).toISOString());

    const first = await runBak(['--repo', repo, 'unlock']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('removed 1 lock(s)');
    expect(first.stdout).toContain('kept 1 live lock(s)');

    expect((await runBak(['--repo', repo, 'unlock', '--all'])).code).toBe(2);
    const all = await runBak(['--repo', repo, 'unlock', '--all', '--yes', '--json']);
    expect(JSON.parse(all.stdout).removed).toHaveLength(1);
  });
});
