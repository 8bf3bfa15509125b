import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import { AwsKmsSource } from '../repository/encryption/aws-kms.ts';
import { GcpKmsSource } from '../repository/encryption/gcp-kms.ts';
import type { KeySource } from '../repository/encryption/key-source.ts';
import { PassphraseSource } from '../repository/encryption/passphrase.ts';
import type { ResolvedRepository } from './resolve.ts';
import type { EncryptionConfig } from './schema.ts';
import { resolveSecret } from './secrets.ts';

/** Key sources given on the command line: never a passphrase itself, only where to read one, and KMS keys to wrap with. */
export interface KeyFlags {
  passwordFile?: string | undefined;
  passwordCommand?: string | undefined;
  awsKmsKey?: string | undefined;
  gcpKmsKey?: string | undefined;
}

const COMMAND_TIMEOUT_MS = 60_000;

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0]!;
}

async function fromFile(file: string, what: string): Promise<string> {
  try {
    return firstLine(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Runs a password command through the shell; its first line of output is the passphrase, its failure names the command, never the output. */
export function fromCommand(command: string, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const how = e.killed ? `did not finish within ${COMMAND_TIMEOUT_MS / 1000} s` : `failed (${typeof e.code === 'number' ? `exit code ${e.code}` : (e.code ?? 'error')})`;
        reject(new ConfigError(`${what} ${JSON.stringify(command)} ${how}`));
        return;
      }
      resolve(firstLine(stdout));
    });
  });
}

/** The one passphrase to use, from the first place that gives one; undefined when none does. */
export function passphraseSource(flags: KeyFlags, config: EncryptionConfig | undefined, where: string, env: NodeJS.ProcessEnv = process.env): PassphraseSource | undefined {
  const make = (label: string, read: () => Promise<string>) => new PassphraseSource(label, read, env);
  if (flags.passwordFile !== undefined) return make(`passphrase from --password-file ${flags.passwordFile}`, () => fromFile(flags.passwordFile!, '--password-file'));
  if (flags.passwordCommand !== undefined) return make('passphrase from --password-command', () => fromCommand(flags.passwordCommand!, '--password-command'));
  if (env.BAK_PASSWORD) return make('passphrase from BAK_PASSWORD', async () => env.BAK_PASSWORD!);
  if (env.BAK_PASSWORD_FILE) return make(`passphrase from BAK_PASSWORD_FILE (${env.BAK_PASSWORD_FILE})`, () => fromFile(env.BAK_PASSWORD_FILE!, 'BAK_PASSWORD_FILE'));
  if (env.BAK_PASSWORD_COMMAND) return make('passphrase from BAK_PASSWORD_COMMAND', () => fromCommand(env.BAK_PASSWORD_COMMAND!, 'BAK_PASSWORD_COMMAND'));
  if (config?.password !== undefined) return make(`passphrase from ${where}.password`, async () => resolveSecret(config.password, `${where}.password`, env)!);
  if (config?.passwordCommand !== undefined) return make(`passphrase from ${where}.passwordCommand`, () => fromCommand(config.passwordCommand!, `${where}.passwordCommand`));
  return undefined;
}

/** A new passphrase for `bak key add` / `passwd`: --new-password-file, --new-password-command, or BAK_NEW_PASSWORD. */
export function newPassphraseSource(flags: { newPasswordFile?: string | undefined; newPasswordCommand?: string | undefined }, env: NodeJS.ProcessEnv = process.env): PassphraseSource | undefined {
  if (flags.newPasswordFile !== undefined) return new PassphraseSource(`new passphrase from --new-password-file ${flags.newPasswordFile}`, () => fromFile(flags.newPasswordFile!, '--new-password-file'), env);
  if (flags.newPasswordCommand !== undefined) return new PassphraseSource('new passphrase from --new-password-command', () => fromCommand(flags.newPasswordCommand!, '--new-password-command'), env);
  if (env.BAK_NEW_PASSWORD) return new PassphraseSource('new passphrase from BAK_NEW_PASSWORD', async () => env.BAK_NEW_PASSWORD!, env);
  return undefined;
}

export function awsKmsSource(config: EncryptionConfig['awsKms'], keyFlag: string | undefined, where: string, env: NodeJS.ProcessEnv = process.env): AwsKmsSource | undefined {
  if (config === undefined && keyFlag === undefined) return undefined;
  const accessKeyId = resolveSecret(config?.accessKeyId, `${where}.awsKms.accessKeyId`, env);
  const secretAccessKey = resolveSecret(config?.secretAccessKey, `${where}.awsKms.secretAccessKey`, env);
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw new ConfigError(`${where}.awsKms: give accessKeyId and secretAccessKey together, or neither (the SDK's own chain)`);
  return new AwsKmsSource({
    keyId: keyFlag ?? config?.keyId,
    region: config?.region,
    endpoint: config?.endpoint,
    credentials: accessKeyId !== undefined ? { accessKeyId, secretAccessKey: secretAccessKey!, sessionToken: resolveSecret(config?.sessionToken, `${where}.awsKms.sessionToken`, env) } : undefined,
  });
}

/** `repository`: the bucket's own GCS credentials and project, used when gcpKms names none. */
export function gcpKmsSource(config: EncryptionConfig['gcpKms'], keyFlag: string | undefined, repository: { keyFilename?: string | undefined; projectId?: string | undefined } = {}): GcpKmsSource | undefined {
  if (config === undefined && keyFlag === undefined) return undefined;
  return new GcpKmsSource({ keyName: keyFlag ?? config?.keyName, apiEndpoint: config?.apiEndpoint, keyFilename: config?.keyFilename ?? repository.keyFilename, projectId: config?.projectId ?? repository.projectId });
}

/** Every key source for a repository, passphrase first (no network), then the KMS keys the config or flags name. */
export function keySourcesFor(resolved: Pick<ResolvedRepository, 'name' | 'encryption'> & { settings?: ResolvedRepository['settings'] }, flags: KeyFlags, env: NodeJS.ProcessEnv = process.env): KeySource[] {
  const where = resolved.name !== undefined ? `repositories.${resolved.name}.encryption` : 'encryption';
  const config = resolved.encryption;
  const gcs = { keyFilename: resolved.settings?.keyFilename, projectId: resolved.settings?.projectId };
  return [passphraseSource(flags, config, where, env), awsKmsSource(config?.awsKms, flags.awsKmsKey, where, env), gcpKmsSource(config?.gcpKms, flags.gcpKmsKey, gcs)].filter(
    (s): s is NonNullable<typeof s> => s !== undefined,
  );
}
