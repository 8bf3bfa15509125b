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

/** A `{"env": …}` or `{"file": …}` reference (a plain string is a value, not a reference). */
export function isSecretReference(value: unknown): value is Exclude<SecretRef, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof (value as Record<string, unknown>)[keys[0]] === 'string';
}

/** Every reference inside `value` (engine options, repositories …), with its config path. */
export function* secretReferences(value: unknown, where: string): Generator<{ where: string; ref: Exclude<SecretRef, string> }> {
  if (isSecretReference(value)) {
    yield { where, ref: value };
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  for (const [k, v] of entries) yield* secretReferences(v, `${where}.${k}`);
}

/**
 * Replaces every `{"env": …}` / `{"file": …}` reference inside engine options with its value, and
 * returns the values found so they can be scrubbed from any message.
 */
export function resolveSecretsDeep(value: unknown, where: string, env: NodeJS.ProcessEnv = process.env): { value: unknown; secrets: string[] } {
  const secrets: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`));
    if (isSecretReference(v)) {
      const secret = resolveSecret(v, path, env)!;
      secrets.push(secret);
      return secret;
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, `${path}.${k}`)]));
  };
  return { value: walk(value, where), secrets };
}
