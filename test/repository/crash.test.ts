import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { rm } from 'node:fs/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/operations/backup.ts';
import { listLocks } from '../../src/repository/locks.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { dirEngine, dirUri } from '../fixtures/dir-engine.ts';
import { BACKENDS, makeLocation, type TestLocation } from '../helpers/backends.ts';
import { runBak, writeConfig } from '../helpers/cli.ts';
import { makeFixtureTree } from '../helpers/fixture-tree.ts';

const CHILD = path.resolve(import.meta.dirname, '../fixtures/endless-snapshot.ts');

/** Starts the endless snapshot and SIGKILLs it once it has written `blobs` new blobs. */
function killMidSnapshot(settings: unknown, blobs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      const counts = [...d.toString().matchAll(/blobs (\d+)/g)].map((m) => Number(m[1]));
      if (counts.some((n) => n >= blobs)) child.kill('SIGKILL');
    });
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child ended on its own (code ${code}): ${stderr}`))));
    setTimeout(() => child.kill('SIGKILL'), 60_000).unref();
  });
}

describe.each(BACKENDS)('a backup killed mid-snapshot on %s', (backend) => {
  let location: TestLocation;
  let store: ObjectStore;
  let repo: Repository;
  let tree: string;
  let configFile: string;

  beforeAll(async () => {
    location = await makeLocation(backend);
    store = await openStore(location.settings);
    repo = await Repository.init(store);
    tree = await makeFixtureTree({ bigBytes: 1024 * 1024, smallFiles: 20 });
    configFile = await writeConfig({ repositories: { test: location.configEntry } });
  });

  afterAll(async () => {
    await store?.close?.();
    await location?.cleanup();
    if (tree) await rm(tree, { recursive: true, force: true });
  });

  it('leaves no visible snapshot and a repository that verifies clean', async () => {
    const good = await runBackup(repo, { engine: dirEngine, source: dirEngine.parseSource(dirUri(tree), {}), log: pino({ level: 'silent' }), concurrency: 4 });
    await killMidSnapshot(location.settings, 3);

    const cli = (args: string[]) => runBak(['--config', configFile, '--repo', 'test', ...args], { env: location.env });
    const ls = await cli(['snapshots', '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { snapshots: Array<{ id: string }>; unreadable: number };
    expect(listed.snapshots.map((s) => s.id)).toEqual([good.id]);
    expect(listed.unreadable, ls.stdout).toBe(0);

    const verify = await cli(['verify', '--all', '--level', 'data']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('1 of 1 snapshot(s) verified');

    // The dead process's shared lock stays until it expires; it must not block another backup or verify.
    const locks = [];
    for await (const lock of listLocks(store)) locks.push(lock);
    expect(locks).toHaveLength(1);
    const again = await runBackup(repo, { engine: dirEngine, source: dirEngine.parseSource(dirUri(tree), {}), log: pino({ level: 'silent' }), concurrency: 4 });
    expect(again.parent).toBe(good.id);
  });
});
