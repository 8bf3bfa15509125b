import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const BAK_BIN = path.resolve(import.meta.dirname, '../../bin/bak');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `bak` executable in a child process, as an operator or cron would. */
export function runBak(args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(BAK_BIN, args, {
      cwd: options.cwd ?? tmpdir(),
      // A private data home, so the built-in default repository of a test never touches the user's.
      env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Writes a config file with the given repositories/jobs into a fresh folder and returns its path. */
export async function writeConfig(config: unknown): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bak-config-'));
  const file = path.join(dir, 'bak.config.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}
