import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobKey } from '../../src/repository/blobs.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import { LocalStore } from '../../src/storage/local.ts';
import { runBak, writeConfig } from '../helpers/cli.ts';
import { commitSynthetic, fingerprint } from '../helpers/synthetic.ts';

describe('bak gc on a local repository', () => {
  let dir: string;
  let repo: Repository;
  let config: string;
  const snaps: Manifest[] = [];
  const cli = (...args: string[]) => runBak(['--config', config, ...args]);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-gc-'));
    await mkdir(path.join(dir, 'repo'));
    repo = await Repository.init(new LocalStore(path.join(dir, 'repo')));
    // Six nightly snapshots, 2026-11-01 … 2026-11-06, and one of another source with no job.
    for (let day = 1; day <= 6; day++) snaps.push(await commitSynthetic(repo, { at: new Date(`2026-11-0${day}T02:00:00Z`) }));
    await commitSynthetic(repo, { at: new Date('2026-11-01T03:00:00Z'), source: 'dir:///adhoc', job: null });
    config = await writeConfig({
      repositories: { r: { url: pathToFileURL(path.join(dir, 'repo')).href } },
      defaults: { repository: 'r' },
      jobs: { nightly: { engine: 's3', source: 's3://unused', retention: { keepLast: 2, minKeep: 1 } } },
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('needs exactly one scope, and a policy for --job', async () => {
    expect((await cli('gc')).code).toBe(2);
    expect((await cli('gc', '--all', '--job', 'nightly')).code).toBe(2);
    const noPolicy = await cli('gc', '--job', 'other');
    expect(noPolicy.code).toBe(2);
    expect(noPolicy.stderr).toContain('no retention policy');
    const floorOnly = await cli('gc', '--all', '--min-keep', '3');
    expect(floorOnly.code).toBe(2);
  });

  it('--dry-run shows the plan and writes nothing at all', async () => {
    const before = await fingerprint(repo);
    const result = await cli('gc', '--all', '--dry-run', '--grace-period', '0h');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('would forget 4 snapshot(s)');
    expect(result.stdout).toContain('none: never pruned');
    expect(result.stdout).toMatch(/would prune \d+ of \d+ blob\(s\)/);
    expect(await fingerprint(repo)).toEqual(before);
  });

  it('keeps unreferenced blobs younger than the grace period (24h by default)', async () => {
    const result = await cli('gc', '--job', 'nightly', '--dry-run', '--json');
    const report = JSON.parse(result.stdout);
    expect(report.prune.blobsDeleted).toBe(0);
    expect(report.prune.blobsTooYoung).toBeGreaterThan(0);
  });

  it('forgets what no rule keeps, keeps pins, prunes only unreferenced blobs, and leaves a repository that verifies', async () => {
    const pinned = snaps[0]!;
    const pin = await cli('pin', pinned.id.slice(0, 22), '--note', 'audit');
    expect(pin.code, pin.stderr).toBe(0);
    const result = await cli('gc', '--job', 'nightly', '--grace-period', '0h', '--json');
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const decisions = report.groups.find((g: { source: string }) => g.source === 'dir:///synthetic').decisions as Array<{ id: string; keep: boolean; reasons: string[] }>;
    expect(decisions.filter((d) => d.keep).map((d) => d.id).sort()).toEqual([pinned.id, snaps[4]!.id, snaps[5]!.id].sort());
    expect(decisions.find((d) => d.id === pinned.id)!.reasons).toEqual(['pinned']);
    expect(report.forgotten).toHaveLength(3);
    expect(report.prune.blobsDeleted).toBeGreaterThan(0);

    const forgottenOwn = snaps[1]!.items.find((i) => i.name === 'own.bin')!.blobs[0]!;
    const keptShared = snaps[5]!.items.find((i) => i.name === 'shared.txt')!.blobs[0]!;
    const store = repo.store;
    expect(await store.head(blobKey(forgottenOwn.id))).toBeUndefined();
    expect(await store.head(blobKey(keptShared.id))).toBeDefined();

    const verify = await cli('verify', '--all', '--level', 'data');
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toContain('4 of 4 snapshot(s) verified');

    const again = JSON.parse((await cli('gc', '--job', 'nightly', '--grace-period', '0h', '--json')).stdout);
    expect(again.forgotten).toEqual([]);
    expect(again.prune.blobsDeleted).toBe(0);

    expect((await cli('unpin', pinned.id)).stdout).toContain(`unpinned ${pinned.id}`);
    const afterUnpin = JSON.parse((await cli('gc', '--job', 'nightly', '--grace-period', '0h', '--json')).stdout);
    expect(afterUnpin.forgotten).toHaveLength(1);
  });

  it('an unreadable manifest stops gc before anything is deleted', async () => {
    const extra = await commitSynthetic(repo, { at: new Date('2026-11-07T02:00:00Z') });
    await commitSynthetic(repo, { at: new Date('2026-11-08T02:00:00Z') });
    const key = `snapshots/${extra.sourceKey}/${extra.id}.json`;
    await repo.store.put(key, Buffer.from('{"truncated'));
    const before = await fingerprint(repo);
    const result = await cli('gc', '--job', 'nightly', '--grace-period', '0h');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unreadable');
    expect(result.stderr).toContain('nothing was deleted');
    expect(await fingerprint(repo)).toEqual(before);
    await repo.store.delete(key);
  });
});
