import { homedir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.ts';
import type { StoreSettings } from '../storage/open.ts';
import { isRepositoryUrl, type Config, type EncryptionConfig, type RepositoryConfig } from './schema.ts';
import { resolveSecret } from './secrets.ts';

export interface ResolvedRepository {
  /** The config name, or undefined for a URL given directly. */
  name: string | undefined;
  settings: StoreSettings;
  /** The repository's key sources from the config (repositories.<name>.encryption), if any. */
  encryption?: EncryptionConfig | undefined;
  /** How it was chosen, for the "using repository …" line. */
  origin: 'flag' | 'env' | 'job' | 'config default' | 'built-in default';
}

/** The embedded default: a local folder, so a first backup needs no cloud account. */
export function defaultRepositoryPath(env: NodeJS.ProcessEnv = process.env): string {
  const dataHome = env.XDG_DATA_HOME && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : path.join(homedir(), '.local', 'share');
  return path.join(dataHome, 'bak', 'repository');
}

/** `--repo`, else `BAK_REPOSITORY`, else the job's repository, else `defaults.repository`, else the built-in local folder. */
export function resolveRepository(
  config: Config,
  options: { flag?: string | undefined; job?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): ResolvedRepository {
  const jobRepo = options.job !== undefined ? config.jobs[options.job]?.repository : undefined;
  const candidates: Array<[ResolvedRepository['origin'], string | undefined]> = [
    ['flag', options.flag],
    ['env', env.BAK_REPOSITORY || undefined],
    ['job', jobRepo],
    ['config default', config.defaults.repository],
  ];
  for (const [origin, ref] of candidates) {
    if (ref === undefined) continue;
    const named = config.repositories[ref];
    if (named) return { name: ref, settings: toStoreSettings(named, `repositories.${ref}`, env), encryption: named.encryption, origin };
    if (isRepositoryUrl(ref)) return { name: undefined, settings: { url: normalizeLocal(ref) }, origin };
    throw new UsageError(`"${ref}" is neither a repository URL (file://, s3://, gs://, or a path) nor a repository named in the config`);
  }
  return { name: undefined, settings: { url: pathToFileURL(defaultRepositoryPath(env)).href }, origin: 'built-in default' };
}

function normalizeLocal(ref: string): string {
  return ref.startsWith('/') || ref.startsWith('.') ? pathToFileURL(path.resolve(ref)).href : ref;
}

export function toStoreSettings(repo: RepositoryConfig, where: string, env: NodeJS.ProcessEnv = process.env): StoreSettings {
  return {
    url: normalizeLocal(repo.url),
    endpoint: repo.endpoint,
    region: repo.region,
    forcePathStyle: repo.forcePathStyle,
    checksums: repo.checksums,
    accessKeyId: resolveSecret(repo.accessKeyId, `${where}.accessKeyId`, env),
    secretAccessKey: resolveSecret(repo.secretAccessKey, `${where}.secretAccessKey`, env),
    sessionToken: resolveSecret(repo.sessionToken, `${where}.sessionToken`, env),
    apiEndpoint: repo.apiEndpoint,
    projectId: repo.projectId,
    keyFilename: repo.keyFilename,
    uploadConcurrency: repo.uploadConcurrency,
  };
}
