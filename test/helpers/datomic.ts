import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';

/** The STAND-IN for bin/datomic (test/fixtures/datomic/bin/datomic-standin.mjs): Datomic Pro cannot be installed here. */
export const DATOMIC_STANDIN = path.resolve(import.meta.dirname, '../fixtures/datomic/bin/datomic');

// The stand-in is a Node script run by a shell wrapper: it finds this Node through $NODE.
process.env.NODE ??= process.execPath;

export function uniqueDbUri(prefix: string): string {
  return `datomic:dev://localhost:4334/${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface StandinDump {
  uuid: string;
  t: number;
  segments: number;
  digest: string;
}

/** Runs a stand-in command (the stand-in's own standin-create, standin-transact, standin-dump, or a real one). */
export async function standin(home: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(DATOMIC_STANDIN, args, { env: { ...process.env, DATOMIC_STANDIN_HOME: home, ...env } });
  return stdout.trim();
}

export async function dump(home: string, uri: string): Promise<StandinDump> {
  return JSON.parse(await standin(home, ['standin-dump', uri])) as StandinDump;
}
