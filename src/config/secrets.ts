import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { SecretRef } from './schema.ts';

/** Reads a secret where the config points; the error names the config path, never the value. */
export function resolveSecret(ref: SecretRef | undefined, where: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (ref === undefined) return undefined;
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') throw new ConfigError(`${where}: environment variable ${ref.env} is not set`);
    return value;
  }
  try {
    return readFileSync(ref.file, 'utf8').split(/\r?\n/)[0]!;
  } catch (err) {
    throw new ConfigError(`${where}: cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
