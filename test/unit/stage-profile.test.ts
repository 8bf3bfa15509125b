import { describe, expect, it } from 'vitest';
import { formatProfile, profileReport, profiling, startProfiling, timeAsync, timeSync } from '../../src/util/stage-profile.ts';

describe('stage profile', () => {
  it('counts nothing until started, then sums each stage by calls, bytes and time', async () => {
    expect(profiling()).toBe(false);
    timeSync('before start', 10, () => undefined);
    startProfiling();
    // Spins until this thread has used `ms` of CPU (the stage's wall time is at least that).
    const spin = (ms: number) => {
      const from = process.threadCpuUsage();
      for (;;) {
        const used = process.threadCpuUsage(from);
        if ((used.user + used.system) / 1000 >= ms) return;
      }
    };
    expect(timeSync('spin', 100, () => (spin(20), 'result'))).toBe('result');
    timeSync('spin', 50, () => spin(20));
    await timeAsync('sleep', 7, () => new Promise((resolve) => setTimeout(resolve, 30)));
    await expect(timeAsync('fails', 1, () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    // Bytes known only from the result (a read): taken from it, and the result passed on as it is.
    expect(await timeAsync('read', (got: Buffer) => got.length, async () => Buffer.alloc(12))).toHaveLength(12);
    await timeAsync('read', (got: Buffer) => got.length, async () => Buffer.alloc(30));

    const report = profileReport();
    const stages = report.threads[0]!.stages;
    expect(report.threads[0]!.thread).toBe('main');
    expect(stages['before start']).toBeUndefined();
    expect(stages.spin).toMatchObject({ kind: 'cpu', calls: 2, bytes: 150 });
    expect(stages.spin!.seconds).toBeGreaterThanOrEqual(0.039);
    expect(stages.sleep).toMatchObject({ kind: 'wait', calls: 1, bytes: 7 });
    expect(stages.sleep!.seconds).toBeGreaterThanOrEqual(0.025);
    expect(stages.fails).toMatchObject({ calls: 1, bytes: 0 });
    expect(stages.read).toMatchObject({ kind: 'wait', calls: 2, bytes: 42 });
    // The main thread spun for 40 ms at least: its CPU shows it, and the process's holds it.
    expect(report.threads[0]!.cpuSeconds).toBeGreaterThanOrEqual(0.035);
    expect(report.processCpuSeconds).toBeGreaterThanOrEqual(report.threads[0]!.cpuSeconds - 0.005);

    const text = formatProfile(report);
    expect(text).toMatch(/^  spin +main +cpu +\d+\.\d\d/m);
    expect(text).toMatch(/^  sleep +main +wait /m);
    expect(text).toContain('other threads');
  });

  it('counts short steps on a thread that sleeps between them (the thread CPU clock read ~10 % of them)', async () => {
    startProfiling();
    const busyFor = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    // 150 steps of 0.6 ms, each after a sleep, as sealing a blob between I/O waits: 90 ms of work.
    for (let i = 0; i < 150; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      timeSync('short step', 1, () => busyFor(0.6));
    }
    const step = profileReport().threads[0]!.stages['short step']!;
    expect(step.calls).toBe(150);
    expect(step.seconds).toBeGreaterThanOrEqual(0.089);
  });
});
