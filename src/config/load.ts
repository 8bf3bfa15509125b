import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors.ts';
import { describeZodError } from '../util/validation.ts';
import { configSchema, type Config } from './schema.ts';

export const DEFAULT_CONFIG_FILE = 'bak.config.json';

export interface LoadedConfig {
  /** Absolute path of the file read, or undefined when bak runs without one. */
  file: string | undefined;
  config: Config;
}

/** `--config`, else `BAK_CONFIG`, else `bak.config.json` in the working directory if present, else an empty config. */
export function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  const named = explicit ?? env.BAK_CONFIG;
  if (named !== undefined && named !== '') {
    const file = path.resolve(cwd, named);
    if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
    return file;
  }
  const fallback = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(fallback) ? fallback : undefined;
}

export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const file = findConfigFile(explicit, env, cwd);
  if (!file) return { file: undefined, config: configSchema.parse({}) };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  return { file, config: parseConfig(text, file) };
}

export function parseConfig(text: string, label: string): Config {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${label} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`config file ${label} is invalid:\n${describeZodError(parsed.error, json)}`);
  return parsed.data;
}
