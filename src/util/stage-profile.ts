/**
 * Where a run's time goes, by stage and by thread, for `bak --profile` (or BAK_PROFILE=1, which worker threads
 * inherit). Off, a timed stage costs one branch.
 *
 * Two kinds of stage:
 * - `cpu` (timeSync): synchronous work on the calling thread, timed by the wall clock while it runs (see timeSync);
 * - `wait` (timeAsync): time until an asynchronous step settles (zlib on libuv's pool, a storage call, a buffer
 *   from another thread), summed over every call in flight, so waits can add up to more than the run.
 * Per-thread CPU comes from the kernel (process.threadCpuUsage), so what no stage names is still counted:
 * "other threads" is the process's CPU less that of the threads that report (libuv's pool: zlib, file I/O, scrypt;
 * V8's GC helpers), and children (pg_dump, pg_restore, …) come from /proc/self/stat once they have been waited for.
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

export type StageKind = 'cpu' | 'wait';

export interface StageTotal {
  kind: StageKind;
  seconds: number;
  calls: number;
  bytes: number;
}

/** What one thread measured: its own CPU and its stages. */
export interface ThreadReport {
  thread: string;
  cpuSeconds: number;
  stages: Record<string, StageTotal>;
}

let enabled = process.env.BAK_PROFILE === '1';
const stages = new Map<string, StageTotal>();
const otherThreads: ThreadReport[] = [];
const gc = { seconds: 0, count: 0, major: 0 };
let startedAt = performance.now();

/** Turns profiling on for this process and the worker threads it starts from now on. */
export function startProfiling(): void {
  enabled = true;
  process.env.BAK_PROFILE = '1';
  startedAt = performance.now();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.seconds += entry.duration / 1000;
      gc.count++;
      if ((entry as { detail?: { kind?: number } }).detail?.kind === 4) gc.major++; // NODE_PERFORMANCE_GC_MAJOR
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

export function profiling(): boolean {
  return enabled;
}

function add(stage: string, kind: StageKind, ms: number, bytes: number): void {
  let total = stages.get(stage);
  if (!total) stages.set(stage, (total = { kind, seconds: 0, calls: 0, bytes: 0 }));
  total.seconds += ms / 1000;
  total.calls++;
  total.bytes += bytes;
}

/**
 * Runs `fn`, counting its time as work of this thread in `stage` (with `bytes` processed). Timed by the wall clock:
 * the thread's CPU clock (getrusage(RUSAGE_THREAD), process.threadCpuUsage) only moves when the kernel updates the
 * thread's runtime, at a tick or a switch, so a step shorter than a tick on a thread that often sleeps mostly reads
 * 0. Measured in an encrypted PostgreSQL backup: sealing 283 MiB read 0.01 s by that clock, 0.14 s by the wall, and
 * takes ~0.10 s in a bare loop; SHA-256 of 621 MiB on the ingest worker 0.20 / 0.67 / 0.32 s. The wall clock does
 * count the time a thread waits for a core (on 2 busy cores, up to about twice the work), so a thread's `cpu`
 * stages can add up to more than its CPU, which the kernel measures exactly over the whole run.
 */
export function timeSync<T>(stage: string, bytes: number, fn: () => T): T {
  if (!enabled) return fn();
  const from = performance.now();
  try {
    return fn();
  } finally {
    add(stage, 'cpu', performance.now() - from, bytes);
  }
}

/**
 * Awaits `fn()`, counting the time until it settles as a wait in `stage`. Not itself async: off, it adds no promise.
 * `bytes` may be read from the result (a read knows its size only once done); a failure counts none.
 */
export function timeAsync<T>(stage: string, bytes: number | ((result: T) => number), fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const from = performance.now();
  return fn().then(
    (result) => {
      add(stage, 'wait', performance.now() - from, typeof bytes === 'number' ? bytes : bytes(result));
      return result;
    },
    (err: unknown) => {
      add(stage, 'wait', performance.now() - from, 0);
      throw err;
    },
  );
}

/** This thread's figures, to send to the main thread from a worker. */
export function threadReport(thread: string): ThreadReport {
  const { user, system } = process.threadCpuUsage();
  return { thread, cpuSeconds: (user + system) / 1e6, stages: Object.fromEntries(stages) };
}

/** A worker thread's report, received on the main thread. */
export function addThreadReport(report: ThreadReport): void {
  otherThreads.push(report);
}

/** CPU seconds of the children this process has waited for (Linux; null elsewhere). */
function childrenCpuSeconds(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces, hence the last ")"): cutime and cstime are 16 and 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // USER_HZ, 100 on Linux
  } catch {
    return null;
  }
}

export interface ProfileReport {
  wallSeconds: number;
  processCpuSeconds: number;
  childrenCpuSeconds: number | null;
  threads: ThreadReport[];
  otherThreadsCpuSeconds: number;
  gc: { seconds: number; count: number; major: number };
}

/** Everything measured so far, the main thread first. */
export function profileReport(): ProfileReport {
  const { user, system } = process.cpuUsage();
  const main = threadReport('main');
  const threads = [main, ...otherThreads];
  const processCpuSeconds = (user + system) / 1e6;
  const reported = threads.reduce((sum, t) => sum + t.cpuSeconds, 0);
  return {
    wallSeconds: (performance.now() - startedAt) / 1000,
    processCpuSeconds,
    childrenCpuSeconds: childrenCpuSeconds(),
    threads,
    otherThreadsCpuSeconds: Math.max(0, processCpuSeconds - reported),
    gc: { ...gc },
  };
}

const MIB = 1024 * 1024;

/** The report as the table `bak --profile` prints on stderr. */
export function formatProfile(report: ProfileReport): string {
  const s = (n: number) => n.toFixed(2).padStart(8);
  const lines = [`profile: ${report.wallSeconds.toFixed(2)} s from start-up to the end`, '  CPU seconds'];
  const row = (indent: number, label: string, seconds: number, note = '') => lines.push(`${' '.repeat(indent)}${label.padEnd(34 - indent)} ${s(seconds)}${note}`);
  row(4, 'bak, all threads', report.processCpuSeconds);
  for (const t of report.threads) row(6, t.thread, t.cpuSeconds);
  row(6, 'other threads', report.otherThreadsCpuSeconds, "   (libuv's pool: zlib, file I/O, scrypt; V8's GC helpers)");
  if (report.childrenCpuSeconds !== null) row(4, 'children (pg_dump, …)', report.childrenCpuSeconds);
  lines.push(`  GC pauses on the main thread: ${report.gc.seconds.toFixed(2)} s in ${report.gc.count} (${report.gc.major} full)`);
  const rows = report.threads.flatMap((t) => Object.entries(t.stages).map(([stage, total]) => ({ thread: t.thread, stage, ...total })));
  if (rows.length > 0) {
    lines.push(`  ${'stage'.padEnd(34)} ${'thread'.padEnd(16)} kind ${'seconds'.padStart(8)} ${'calls'.padStart(9)} ${'MiB'.padStart(9)}`);
    rows.sort((a, b) => a.thread.localeCompare(b.thread) || b.seconds - a.seconds);
    for (const r of rows) {
      lines.push(`  ${r.stage.padEnd(34)} ${r.thread.padEnd(16)} ${r.kind.padEnd(4)} ${s(r.seconds)} ${String(r.calls).padStart(9)} ${(r.bytes / MIB).toFixed(1).padStart(9)}`);
    }
    lines.push('  (cpu: work on that thread, by the wall clock, so it includes any wait for a core; wait: until an asynchronous');
    lines.push('  step settled, summed over the steps in flight)');
  }
  return lines.join('\n');
}
