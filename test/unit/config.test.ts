import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { resolveRepository, toStoreSettings } from '../../src/config/resolve.ts';
import { ENGINE_NAMES } from '../../src/engines/names.ts';
import { findEngine } from '../../src/engines/registry.ts';

const examplePath = path.resolve(import.meta.dirname, '../../config.example.json');

describe('config.example.json', () => {
  const config = parseConfig(readFileSync(examplePath, 'utf8'), examplePath);

  it('validates, and shows every engine and every backend', () => {
    expect(new Set(Object.values(config.jobs).map((j) => j.engine))).toEqual(new Set(ENGINE_NAMES));
    const schemes = new Set(Object.values(config.repositories).map((r) => r.url.split(':')[0]));
    expect(schemes).toEqual(new Set(['file', 's3', 'gs']));
  });

  it("gives every job options its engine accepts (engines of this build)", () => {
    for (const [name, job] of Object.entries(config.jobs)) {
      const engine = findEngine(job.engine);
      // Secret references ({"env": …}, {"file": …}) stand for strings; the engine sees them resolved.
      const resolved = JSON.parse(JSON.stringify(job.options), (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) && ('env' in v || 'file' in v) && Object.keys(v).length === 1 ? 'secret' : v));
      if (engine) expect(() => engine.parseSource(job.source, resolved), `job ${name}`).not.toThrow();
    }
  });

  it('keeps no secret in the file: every credential is an env or file reference', () => {
    const text = readFileSync(examplePath, 'utf8');
    for (const repo of Object.values(config.repositories)) {
      for (const field of [repo.accessKeyId, repo.secretAccessKey, repo.sessionToken]) expect(typeof field === 'string').toBe(false);
    }
    expect(text).not.toMatch(/"password"\s*:\s*"/);
  });

  it('resolves secrets from the environment', () => {
    const settings = toStoreSettings(config.repositories.minio!, 'repositories.minio', { MINIO_ACCESS_KEY: 'a', MINIO_SECRET_KEY: 'b' });
    expect(settings).toMatchObject({ accessKeyId: 'a', secretAccessKey: 'b', checksums: 'when-required', forcePathStyle: true });
    expect(() => toStoreSettings(config.repositories.minio!, 'repositories.minio', {})).toThrow('repositories.minio.accessKeyId: environment variable MINIO_ACCESS_KEY is not set');
  });
});

describe('repository resolution', () => {
  const config = parseConfig(JSON.stringify({ defaults: { repository: 'b' }, repositories: { a: { url: 'file:///a' }, b: { url: 'file:///b' } }, jobs: { j: { engine: 's3', source: 's3://x', repository: 'a' } } }), 'inline');

  it('prefers flag, then BAK_REPOSITORY, then the job, then the default, then the built-in folder', () => {
    expect(resolveRepository(config, { flag: 'file:///flag', job: 'j' }, {}).settings.url).toBe('file:///flag');
    expect(resolveRepository(config, { job: 'j' }, { BAK_REPOSITORY: 'b' }).origin).toBe('env');
    expect(resolveRepository(config, { job: 'j' }, {}).settings.url).toBe('file:///a');
    expect(resolveRepository(config, {}, {}).settings.url).toBe('file:///b');
    const bare = parseConfig('{}', 'inline');
    const builtIn = resolveRepository(bare, {}, { XDG_DATA_HOME: '/data' });
    expect(builtIn).toMatchObject({ origin: 'built-in default', settings: { url: 'file:///data/bak/repository' } });
  });

  it('rejects a name that is neither configured nor a URL', () => {
    expect(() => resolveRepository(config, { flag: 'nope' }, {})).toThrow(/neither a repository URL/);
  });
});
