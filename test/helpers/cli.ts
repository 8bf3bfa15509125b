import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runCommand } from './run.ts';

export const BAK_BIN = path.resolve(import.meta.dirname, '../../bin/bak');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `bak` executable in a child process, as an operator or cron would. */
export function runBak(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; input?: string; rss?: boolean; onStderr?: (text: string) => void; onSpawn?: (pid: number) => void } = {},
): Promise<CliResult & { maxRss?: number }> {
  // BAK_CONFIG/BAK_REPOSITORY cleared: a test names its config and repository, never the user's.
  return runCommand(BAK_BIN, args, { ...options, env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...options.env } });
}

/** Writes a config file with the given repositories/jobs into a fresh folder and returns its path. */
export async function writeConfig(config: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bak-config-'));
  const file = path.join(dir, 'bak.config.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

/** A CLI result as text for an assertion message: exit code, stdout, the end of stderr. */
export const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 6000)}\n--- stderr\n${r.stderr.slice(-6000)}`;

/** The `--json` output of a CLI run, or an error showing what was printed instead. */
export function json<T = any>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON:\n${show(r)}`);
  }
}
