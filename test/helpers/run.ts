import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Peak RSS in bytes (GNU time %M: the largest of the process and the children it waited for), when asked for. */
  maxRss?: number;
  /** Peak RSS in bytes of the Node process alone, without its children (VmHWM), with `ownRss`. */
  ownMaxRss?: number;
  /** CPU seconds (user + system) of the process and the children it waited for, with `rss`. */
  cpuSeconds?: number;
  /** CPU seconds the whole machine was busy during the run (/proc/stat), with `rss`: includes servers' work. */
  machineCpuSeconds?: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** Run under /usr/bin/time to measure peak RSS and CPU time. */
  rss?: boolean;
  /** For a Node command (bak): also measure its own peak RSS, without its children's (test/helpers/peak-rss.cjs). */
  ownRss?: boolean;
  /** Called with the child's pid once it is spawned (with `rss`, the pid of /usr/bin/time, whose child is the command). */
  onSpawn?: (pid: number) => void;
  /** Called with each piece of the child's stderr as it arrives (to act when a log line appears). */
  onStderr?: (text: string) => void;
}

/** Runs a command to completion, collecting its output and wall time: the one child-process runner of tests and benchmarks. */
export async function runCommand(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const rssFile = options.rss ? path.join(tmpdir(), `bak-rss-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`) : undefined;
  const [file, argv] = rssFile ? ['/usr/bin/time', ['-f', '%M %U %S', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const ownRssFile = options.ownRss ? `${rssFile ?? path.join(tmpdir(), `bak-rss-${process.pid}-${Date.now()}`)}.own` : undefined;
  const baseEnv = options.env ?? process.env;
  const env = ownRssFile
    ? { ...baseEnv, BAK_PEAK_RSS_FILE: ownRssFile, NODE_OPTIONS: `${baseEnv.NODE_OPTIONS ?? ''} --require ${PEAK_RSS_HOOK}`.trim() }
    : baseEnv;
  const busyBefore = rssFile ? await machineBusySeconds() : 0;
  const started = performance.now();
  const result = await new Promise<Omit<RunResult, 'seconds'>>((resolve, reject) => {
    const child = spawn(file, argv, { cwd: options.cwd ?? tmpdir(), env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr);
    });
    child.on('error', reject);
    // A child that exits without reading its input (or never starts) closes the pipe: its exit code and stderr,
    // or the spawn error above, say what happened, not an unhandled EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    child.stdin.end(options.input ?? '');
  });
  const out: RunResult = { ...result, seconds: (performance.now() - started) / 1000 };
  if (rssFile) {
    out.machineCpuSeconds = (await machineBusySeconds()) - busyBefore;
    const [kb, user, system] = ((await readFile(rssFile, 'utf8').catch(() => '')).trim().split('\n').pop() ?? '').split(' ').map(Number);
    if (Number.isFinite(kb) && kb! > 0) out.maxRss = kb! * 1024;
    if (Number.isFinite(user) && Number.isFinite(system)) out.cpuSeconds = user! + system!;
    await rm(rssFile, { force: true });
  }
  if (ownRssFile) {
    const bytes = Number(await readFile(ownRssFile, 'utf8').catch(() => ''));
    if (bytes > 0) out.ownMaxRss = bytes;
    await rm(ownRssFile, { force: true });
  }
  return out;
}

const PEAK_RSS_HOOK = path.join(import.meta.dirname, 'peak-rss.cjs');

/** Seconds of CPU time all cores have spent busy since boot (/proc/stat: everything but idle and iowait). */
async function machineBusySeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100; // USER_HZ is 100 on Linux
}
