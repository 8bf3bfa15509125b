import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { BakError, UsageError } from '../../errors.ts';
import { withPrivateUmask } from '../../util/private-files.ts';
import { scrubSecrets } from '../../util/redact.ts';

const KEEP = 16 * 1024;

export interface DatomicRun {
  /** The tool's stdout and stderr, their last 16 KiB, secrets scrubbed. */
  output: string;
}

/**
 * Runs one bin/datomic command. Its stdout lines go to `onLine` as they come (progress: "Copied N segments …");
 * an exit other than 0 (the CLI exits 255 on errors, printing a keyword such as :backup/claim-failed), a signal (a
 * JVM that died) or a missing bin/datomic becomes a BakError naming the command and what the tool said.
 */
export async function runDatomic(bin: string, jvmOptions: string[], command: string, args: string[], options: { secrets: string[]; onLine?: (line: string) => void; signal?: AbortSignal; okCodes?: number[] }): Promise<DatomicRun & { code: number }> {
  try {
    await access(bin, constants.X_OK);
  } catch {
    throw new UsageError(`bin/datomic not found or not executable at ${bin}: set datomicBin (--datomic-bin) or DATOMIC_HOME`);
  }
  return new Promise((resolve, reject) => {
    const child = withPrivateUmask(() => spawn(bin, [...jvmOptions, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(options.signal ? { signal: options.signal } : {}) }));
    let output = '';
    let partial = '';
    const keep = (text: string) => (output = (output + text).slice(-KEEP));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      keep(d);
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLine?.(line);
    });
    child.stderr.setEncoding('utf8').on('data', keep);
    child.on('error', (err) => reject(new BakError(`cannot run ${bin} ${command}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (partial) options.onLine?.(partial);
      const said = scrubSecrets(output.trim(), options.secrets);
      if (code !== null && (code === 0 || options.okCodes?.includes(code))) return resolve({ output: said, code });
      const how = signal ? `was killed by ${signal} (the JVM died)` : `exited with code ${code}`;
      reject(new BakError(`bin/datomic ${command} ${how}${said ? `:\n${said.split('\n').slice(-15).join('\n')}` : ''}`, 1));
    });
  });
}

/** JVM options for a run: the configured ones, plus the backup pace as -Ddatomic.backupPaceMsec. */
export function jvmOptionsOf(o: { jvmOptions: string[]; paceMsec?: number | undefined }): string[] {
  return [...o.jvmOptions, ...(o.paceMsec !== undefined ? [`-Ddatomic.backupPaceMsec=${o.paceMsec}`] : [])];
}
