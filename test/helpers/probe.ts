import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { StoreSettings } from '../../src/storage/open.ts';

/** What test/fixtures/stream-probe.ts reports for one streamed put + get. */
export interface ProbeResult {
  bytes: number;
  sha256Match: boolean;
  maxRssBytes: number;
  seconds: number;
  putSeconds: number;
  getSeconds: number;
}

const PROBE = path.resolve(import.meta.dirname, '../fixtures/stream-probe.ts');

/** Runs the probe in a child process so its peak RSS is this transfer's alone. */
export async function runProbe(settings: StoreSettings, bytes: number): Promise<ProbeResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [PROBE, JSON.stringify(settings), String(bytes)], {
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ProbeResult;
}
