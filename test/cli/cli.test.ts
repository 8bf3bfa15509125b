import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { minioStoreSettings } from '../helpers/backends.ts';
import { runBak, writeConfig } from '../helpers/cli.ts';
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
