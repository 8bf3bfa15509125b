import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BakError } from '../errors.ts';
import { withPrivateUmask } from './private-files.ts';

const STDERR_KEEP = 16 * 1024;

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Values to scrub from the error message (passwords a tool might echo). */
  secrets?: string[];
  signal?: AbortSignal;
  /** Told of each stderr line as it comes; a line it returns true for is progress, left out of a failure's message. */
  onStderrLine?: (line: string) => boolean;
}

/** Keeps the last few KiB of a stream: enough to explain a failure, never a whole log in memory. */
function tail(stream: Readable, onLine?: (line: string) => boolean): () => string {
  let kept = '';
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    if (!onLine) {
      kept = (kept + d).slice(-STDERR_KEEP);
      return;
    }
    const lines = (partial + d).split('\n');
    partial = lines.pop()!.slice(-STDERR_KEEP); // a line that never ends is kept to its tail as well
    for (const line of lines) if (!onLine(line)) kept = `${kept}${line}\n`.slice(-STDERR_KEEP);
  });
  return () => (kept + partial).trim();
}

function failure(command: string, code: number | null, signal: NodeJS.Signals | null, stderr: string, secrets: string[]): BakError {
  let text = stderr;
  for (const s of secrets) if (s.length >= 4) text = text.split(s).join('***');
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return new BakError(`${path.basename(command)} ${how}${text ? `:\n${text}` : ''}`);
}

/** Runs a tool to completion; its stdout is ignored, its stderr tail explains a failure. */
export function runTool(command: string, args: string[], options: RunOptions = {}): Promise<{ stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = withPrivateUmask(() => spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'], signal: options.signal }));
    const stderr = tail(child.stderr, options.onStderrLine);
    child.on('error', (err) => reject(new BakError(`cannot run ${command}: ${err.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve({ stderr: stderr() }) : reject(failure(command, code, signal, stderr(), options.secrets ?? []))));
  });
}

/**
 * Starts a tool whose stdout the caller streams (e.g. into the repository). `done` settles when the
 * process exits: a non-zero exit rejects it, so a truncated stream is never mistaken for a whole one.
 */
export function streamTool(command: string, args: string[], options: RunOptions = {}): { stdout: Readable; stdin: Writable; done: Promise<void> } {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = withPrivateUmask(() =>
    spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
    }),
  );
  const stderr = tail(child.stderr);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new BakError(`cannot run ${command}: ${err.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(failure(command, code, signal, stderr(), options.secrets ?? []))));
  });
  done.catch(() => undefined);
  return { stdout: child.stdout, stdin: child.stdin, done };
}
