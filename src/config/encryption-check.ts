/**
 * `bak config check`'s look at a repository's `encryption` section: for each key source it gives, whether it can be
 * used from this machine as the config and environment stand, without running a command or calling a KMS. Never a
 * secret value: references are named, passwords and credentials only said to resolve.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import type { EncryptionConfig, SecretRef } from './schema.ts';
import { resolveSecret } from './secrets.ts';

/** yes: it will work as far as can be told here; no: it cannot; unknown: it depends on what is not checked (a profile, an instance role). */
export type Usability = 'yes' | 'no' | 'unknown';

export interface KeySourceCheck {
  /** The config field (password, passwordCommand, awsKms, gcpKms), or `environment` for BAK_PASSWORD… */
  source: 'password' | 'passwordCommand' | 'awsKms' | 'gcpKms' | 'environment' | 'none';
  usable: Usability;
  detail: string;
  /** A config error (it fails on any machine), not already a secret-reference problem: config check reports it (exit 2). */
  problem?: string;
  /** It cannot work on this machine as things stand (a program not on PATH): said as a note, since another machine may have it. */
  note?: string;
}

const worst = (...all: Usability[]): Usability => (all.includes('no') ? 'no' : all.includes('unknown') ? 'unknown' : 'yes');

/** Builtins of a POSIX shell a password command may start with (there is no program to find for them). */
const SHELL_BUILTINS = new Set(['echo', 'printf', 'read', 'test', '[', ':', 'true', 'false', 'eval', 'exec', 'export', 'set', 'cd', '.', 'command', 'type']);

/** The program a shell command line runs first: its first word, past leading VAR=value assignments, quotes removed. */
export function commandProgram(command: string): string | undefined {
  let rest = command.trim();
  for (;;) {
    const m = /^(?:'([^']*)'|"([^"]*)"|([^\s'"]+))/.exec(rest);
    if (!m) return undefined;
    const word = m[1] ?? m[2] ?? m[3]!;
    rest = rest.slice(m[0].length).trimStart();
    if (m[3] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(word) && rest !== '') continue;
    return word;
  }
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where a shell with this PATH finds the program, if anywhere; a builtin is found as such. */
export function findProgram(program: string, env: NodeJS.ProcessEnv): { found: boolean; detail: string } {
  if (program.includes('/')) {
    return isExecutableFile(program) ? { found: true, detail: `program ${program} is executable` } : { found: false, detail: `program ${program} is not an executable file` };
  }
  for (const dir of (env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, program);
    if (isExecutableFile(candidate)) return { found: true, detail: `program ${program} found at ${candidate}` };
  }
  if (SHELL_BUILTINS.has(program)) return { found: true, detail: `${program} is a shell builtin` };
  return { found: false, detail: `program "${program}" not found on PATH` };
}

function commandCheck(command: string, what: string, env: NodeJS.ProcessEnv): { usable: Usability; detail: string; problem?: string; note?: string } {
  const program = commandProgram(command);
  if (program === undefined) return { usable: 'no', detail: 'the command is empty', problem: `${what}: the command is empty` };
  const { found, detail } = findProgram(program, env);
  return found ? { usable: 'yes', detail } : { usable: 'no', detail, note: `${what}: ${detail}: the passphrase cannot be read on this machine` };
}

function describeRef(ref: SecretRef): string {
  if (typeof ref === 'string') return 'written into the config file';
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/** A passphrase reference as PassphraseSource will read it: set, readable, not empty. */
function passwordCheck(ref: SecretRef, where: string, env: NodeJS.ProcessEnv): { usable: Usability; detail: string } {
  let value: string | undefined;
  try {
    value = resolveSecret(ref, where, env);
  } catch (err) {
    return { usable: 'no', detail: (err as Error).message.replace(`${where}: `, '') };
  }
  if (value === '' || value === undefined) return { usable: 'no', detail: `${describeRef(ref)} gives an empty passphrase` };
  if (typeof ref === 'string') return { usable: 'yes', detail: 'a passphrase written into the config file (better {"env": …} or {"file": …})' };
  return { usable: 'yes', detail: 'env' in ref ? `environment variable ${ref.env} is set` : `file ${ref.file} is readable` };
}

/** BAK_PASSWORD, BAK_PASSWORD_FILE, BAK_PASSWORD_COMMAND: the first one set wins over the config's passphrase. */
function environmentPassphrase(env: NodeJS.ProcessEnv): KeySourceCheck | undefined {
  const wins = 'it comes before the config\'s password and passwordCommand';
  if (env.BAK_PASSWORD) return { source: 'environment', usable: 'yes', detail: `BAK_PASSWORD is set: ${wins}` };
  if (env.BAK_PASSWORD_FILE) {
    const file = env.BAK_PASSWORD_FILE;
    const readable = (() => {
      try {
        accessSync(file, constants.R_OK);
        return statSync(file).isFile();
      } catch {
        return false;
      }
    })();
    return readable
      ? { source: 'environment', usable: 'yes', detail: `BAK_PASSWORD_FILE ${file} is readable: ${wins}` }
      : { source: 'environment', usable: 'no', detail: `BAK_PASSWORD_FILE ${file} cannot be read` };
  }
  if (env.BAK_PASSWORD_COMMAND) {
    const c = commandCheck(env.BAK_PASSWORD_COMMAND, 'BAK_PASSWORD_COMMAND', env);
    return { source: 'environment', usable: c.usable, detail: `BAK_PASSWORD_COMMAND: ${c.detail}${c.usable === 'yes' ? `: ${wins}` : ''}` };
  }
  return undefined;
}

function awsFiles(env: NodeJS.ProcessEnv): string[] {
  const credentials = env.AWS_SHARED_CREDENTIALS_FILE || path.join(homedir(), '.aws', 'credentials');
  const config = env.AWS_CONFIG_FILE || path.join(homedir(), '.aws', 'config');
  return [credentials, config].filter((f) => existsSync(f));
}

function awsCredentials(kms: NonNullable<EncryptionConfig['awsKms']>, where: string, env: NodeJS.ProcessEnv): { usable: Usability; detail: string; problem?: string } {
  if (kms.accessKeyId !== undefined || kms.secretAccessKey !== undefined) {
    if (kms.accessKeyId === undefined || kms.secretAccessKey === undefined) {
      const problem = `${where}.awsKms: give accessKeyId and secretAccessKey together, or neither (the SDK's own chain)`;
      return { usable: 'no', detail: 'credentials: only one of accessKeyId and secretAccessKey is given', problem };
    }
    for (const field of ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const) {
      try {
        resolveSecret(kms[field], `${where}.awsKms.${field}`, env);
      } catch (err) {
        // A reference that does not resolve is already a problem of its own.
        return { usable: 'no', detail: `credentials: ${(err as Error).message}` };
      }
    }
    return { usable: 'yes', detail: 'credentials from the config' };
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { usable: 'yes', detail: 'credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY' };
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) return { usable: 'yes', detail: `credentials from a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, role ${env.AWS_ROLE_ARN})` };
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI) return { usable: 'yes', detail: 'credentials from the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*)' };
  const files = awsFiles(env);
  if (files.length > 0) return { usable: 'unknown', detail: `credentials: perhaps AWS profile ${env.AWS_PROFILE || 'default'} in ${files.join(' or ')} (not checked)` };
  if (env.AWS_EC2_METADATA_DISABLED === 'true') {
    return { usable: 'no', detail: 'no credentials: none in the config (accessKeyId, secretAccessKey), the environment or the AWS files, and instance metadata is disabled' };
  }
  return { usable: 'unknown', detail: 'credentials: none in the config, the environment or the AWS files; only an EC2 instance role could give some (not checked)' };
}

function awsRegion(kms: NonNullable<EncryptionConfig['awsKms']>, where: string, env: NodeJS.ProcessEnv): { usable: Usability; detail: string } {
  if (kms.region) return { usable: 'yes', detail: `region ${kms.region}` };
  if (env.AWS_REGION) return { usable: 'yes', detail: `region ${env.AWS_REGION} (AWS_REGION)` };
  // The AWS SDK for JavaScript reads AWS_REGION and the profile's region, not AWS_DEFAULT_REGION (the CLI's and boto3's).
  const fallback = env.AWS_DEFAULT_REGION ? ` (AWS_DEFAULT_REGION is set, but the AWS SDK for JavaScript does not read it)` : '';
  if (awsFiles(env).length > 0) return { usable: 'unknown', detail: `region: not in the config or AWS_REGION${fallback}; perhaps in the AWS profile (not checked)` };
  return { usable: 'no', detail: `no region: give ${where}.awsKms.region or set AWS_REGION${fallback} (a slot made with a region opens with it)` };
}

function gcpCredentials(kms: NonNullable<EncryptionConfig['gcpKms']>, env: NodeJS.ProcessEnv): { usable: Usability; detail: string } {
  const file = kms.keyFilename ?? (env.GOOGLE_APPLICATION_CREDENTIALS || undefined);
  if (file !== undefined) {
    const from = kms.keyFilename !== undefined ? 'keyFilename' : 'GOOGLE_APPLICATION_CREDENTIALS';
    try {
      accessSync(file, constants.R_OK);
      return { usable: 'yes', detail: `credentials from ${file} (${from}) (not checked against the server)` };
    } catch (err) {
      return { usable: 'no', detail: `credentials: cannot read ${file} (${from}: ${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  return { usable: 'unknown', detail: 'credentials: Application Default Credentials (gcloud, or the metadata server; not checked)' };
}

/** One line per key source of a repository's encryption section (and the environment's passphrase, which comes first). */
export function checkKeySources(encryption: EncryptionConfig, where: string, env: NodeJS.ProcessEnv = process.env): KeySourceCheck[] {
  const checks: KeySourceCheck[] = [];
  const fromEnv = environmentPassphrase(env);
  if (fromEnv) checks.push(fromEnv);
  if (encryption.password !== undefined) checks.push({ source: 'password', ...passwordCheck(encryption.password, `${where}.password`, env) });
  if (encryption.passwordCommand !== undefined) {
    const c = commandCheck(encryption.passwordCommand, `${where}.passwordCommand`, env);
    // Behind a password it is never run: no note then.
    const shadowed = encryption.password !== undefined;
    checks.push({
      source: 'passwordCommand',
      usable: c.usable,
      detail: `${c.detail}${shadowed ? ' (never run: password comes first)' : ''}`,
      ...(c.problem ? { problem: c.problem } : {}),
      ...(c.note && !shadowed ? { note: c.note } : {}),
    });
  }
  if (encryption.awsKms !== undefined) {
    const kms = encryption.awsKms;
    const region = awsRegion(kms, where, env);
    const credentials = awsCredentials(kms, where, env);
    const key = kms.keyId ? `key ${kms.keyId} for new slots` : 'no keyId: opens the slots that name their key, wraps no new one (init --aws-kms-key, key add --key-id)';
    const endpoint = kms.endpoint ? `; endpoint ${kms.endpoint}` : '';
    checks.push({
      source: 'awsKms',
      usable: worst(region.usable, credentials.usable),
      detail: `${region.detail}; ${credentials.detail}; ${key}${endpoint} (KMS not called)`,
      ...(credentials.problem ? { problem: credentials.problem } : {}),
    });
  }
  if (encryption.gcpKms !== undefined) {
    const kms = encryption.gcpKms;
    const credentials = gcpCredentials(kms, env);
    const key = kms.keyName ? `key ${kms.keyName} for new slots` : 'no keyName: opens the slots that name their key, wraps no new one (init --gcp-kms-key, key add --key-name)';
    checks.push({ source: 'gcpKms', usable: credentials.usable, detail: `${key}; ${credentials.detail}` });
  }
  if (checks.length === 0) {
    checks.push({ source: 'none', usable: 'unknown', detail: 'no key source in the config or the environment: each command needs --password-file or --password-command' });
  }
  return checks;
}
