import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGc, type GcRequest } from '../../src/operations/gc.ts';
import { Checker } from '../../src/repository/checker.ts';
import { LockConflictError } from '../../src/repository/locks.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { makeLocation, type BackendName, type TestLocation } from '../helpers/backends.ts';
import { BAK_BIN, runBak, writeConfig } from '../helpers/cli.ts';
import { commitSynthetic, fingerprint } from '../helpers/synthetic.ts';

const log = pino({ level: 'silent' });
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

async function verifyAll(repo: Repository): Promise<{ checked: number; problems: string[] }> {
  const checker = new Checker(repo, 'data');
  const problems: string[] = [];
  let checked = 0;
  for await (const entry of repo.listSnapshots()) {
    if ('error' in entry) {
      problems.push(entry.error);
      continue;
    }
    checked++;
    const report = await checker.verify(entry.manifest);
    problems.push(...report.problems.map((p) => `${entry.id}: ${p.where} ${p.blob ?? ''} ${p.problem}`));
  }
  return { checked, problems };
}

const gcRequest: GcRequest = { forget: { select: () => true, policyFor: () => ({ policy: { keepLast: 2 }, origin: 'test' }) }, dryRun: false, graceMs: 0, prune: true, log, concurrency: 4 };

describe.each<BackendName>(['minio', 'gcs'])('gc safety on %s', (backend) => {
  let location: TestLocation;
  let store: ObjectStore;
  let repo: Repository;
  let configFile: string;

  beforeAll(async () => {
    location = await makeLocation(backend);
    store = await openStore(location.settings);
    repo = await Repository.init(store);
    configFile = await writeConfig({ repositories: { test: location.configEntry }, defaults: { repository: 'test' } });
  });
  afterAll(async () => {
    await store?.close?.();
    await location?.cleanup();
  });

  it('a backup racing gc never ends with a snapshot that fails verify --level data', async () => {
    let committed = 0;
    let lockConflicts = 0;
    let day = 1;
    for (let round = 0; round < 8; round++) {
      const at = new Date(Date.UTC(2026, 10, day++, 2));
      const backup = (async () => {
        await sleep(random(0, 60));
        const m = await commitSynthetic(repo, { at, unique: random(1000, 300_000) });
        committed++;
        return m;
      })();
      const gc = (async () => {
        await sleep(random(0, 60));
        return runGc(repo, gcRequest);
      })();
      const results = await Promise.allSettled([backup, gc]);
      for (const r of results) {
        if (r.status === 'rejected') {
          // The only acceptable failure: one side found the other holding the repository.
          expect(r.reason, String(r.reason)).toBeInstanceOf(LockConflictError);
          lockConflicts++;
        }
      }
      const { problems } = await verifyAll(repo);
      expect(problems, `round ${round}`).toEqual([]);
    }
    expect(committed).toBeGreaterThan(0);
    console.log(`[gc race ${backend}] 8 rounds: ${committed} backups committed, ${lockConflicts} lock conflicts, every snapshot verified`);
  });

  it('gc killed at random points leaves verifiable snapshots, and a second gc finishes the job', async () => {
    for (let round = 0; round < 4; round++) {
      const snaps: Manifest[] = [];
      for (let i = 0; i < 8; i++) snaps.push(await commitSynthetic(repo, { at: new Date(Date.UTC(2026, 11, 1 + round * 8 + i, 2)), unique: random(1000, 200_000), entries: 25 }));
      // Kill at a random point of the work itself: while forgetting manifests, or while pruning blobs.
      const count = async (prefix: string) => {
        let n = 0;
        for await (const _ of store.list(prefix)) n++;
        return n;
      };
      const snapshotsBefore = await count('snapshots/');
      const blobsBefore = await count('blobs/');
      const phase = Math.random() < 0.5 ? 'forget' : 'prune';
      const snapshotTarget = random(3, snapshotsBefore);
      const blobTarget = blobsBefore - random(1, 60);
      const child = spawn(BAK_BIN, ['--config', configFile, 'gc', '--all', '--keep-last', '2', '--grace-period', '0h'], {
        env: { ...process.env, ...location.env },
        stdio: 'ignore',
      });
      let closed = false;
      const exited = new Promise<string>((resolve) => child.on('close', (code, signal) => ((closed = true), resolve(signal ?? `exit ${code}`))));
      while (!closed) {
        const hit = phase === 'forget' ? (await count('snapshots/')) <= snapshotTarget : (await count('blobs/')) <= blobTarget;
        if (hit) child.kill('SIGKILL');
        await sleep(5);
      }
      const exit = await exited;
      const killAfter = `${phase} phase`;
      const afterKill = await verifyAll(repo);
      expect(afterKill.problems, `round ${round}, killed in the ${killAfter} (${exit})`).toEqual([]);

      const second = await runBak(['--config', configFile, 'gc', '--all', '--keep-last', '2', '--grace-period', '0h', '--json'], { env: location.env });
      expect(second.code, second.stderr).toBe(0);
      const report = JSON.parse(second.stdout);
      expect(report.releasePending).toEqual([]);

      // Finished: exactly the two newest snapshots remain, nothing is left in trash/, and a further gc has nothing to do.
      const { checked, problems } = await verifyAll(repo);
      expect(problems).toEqual([]);
      expect(checked).toBe(2);
      const trash = [];
      for await (const o of store.list('trash/')) trash.push(o.key);
      expect(trash).toEqual([]);
      const third = JSON.parse((await runBak(['--config', configFile, 'gc', '--all', '--keep-last', '2', '--grace-period', '0h', '--json'], { env: location.env })).stdout);
      expect(third.forgotten).toEqual([]);
      expect(third.prune.blobsDeleted).toBe(0);
      console.log(`[gc kill ${backend}] round ${round}: killed in the ${killAfter} (${exit}); second gc forgot ${report.forgotten.length}, pruned ${report.prune.blobsDeleted}`);
    }
  });

  it('--dry-run leaves the listing of every object byte-for-byte unchanged', async () => {
    for (let i = 0; i < 4; i++) await commitSynthetic(repo, { at: new Date(Date.UTC(2027, 0, 1 + i, 2)) });
    const before = await fingerprint(repo);
    const result = await runBak(['--config', configFile, 'gc', '--all', '--keep-last', '1', '--grace-period', '0h', '--dry-run', '--json'], { env: location.env });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.forgotten.length).toBeGreaterThan(0);
    expect(report.prune.blobsDeleted).toBeGreaterThan(0);
    expect(await fingerprint(repo)).toEqual(before);
  });
});
