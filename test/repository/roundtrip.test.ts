import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobKey } from '../../src/repository/blobs.ts';
import { Repository } from '../../src/repository/repository.ts';
import { runBackup } from '../../src/operations/backup.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { openStore } from '../../src/storage/open.ts';
import { dirEngine, dirUri } from '../fixtures/dir-engine.ts';
import { BACKENDS, makeLocation, type TestLocation } from '../helpers/backends.ts';
import { runBak, writeConfig } from '../helpers/cli.ts';
import { makeFixtureTree, readTree } from '../helpers/fixture-tree.ts';

const log = pino({ level: 'silent' });

describe.each(BACKENDS)('backup-shaped round trip through the repository on %s', (backend) => {
  let location: TestLocation;
  let store: ObjectStore;
  let repo: Repository;
  let tree: string;
  let configFile: string;
  const cli = (args: string[]) => runBak(['--config', configFile, '--repo', 'test', ...args], { env: location.env });

  beforeAll(async () => {
    location = await makeLocation(backend);
    store = await openStore(location.settings);
    repo = await Repository.init(store);
    tree = await makeFixtureTree();
    configFile = await writeConfig({ repositories: { test: location.configEntry } });
  });

  afterAll(async () => {
    await store?.close?.();
    await location?.cleanup();
    if (tree) await rm(tree, { recursive: true, force: true });
  });

  const backup = () =>
    runBackup(repo, { engine: dirEngine, source: dirEngine.parseSource(dirUri(tree), {}), job: 'fixture', log, concurrency: 4 });

  it('writes blobs, an index and a manifest that restore the tree exactly', async () => {
    const manifest = await backup();
    expect(manifest.status).toBe('complete');
    expect(manifest.items.map((i) => i.name).sort()).toEqual(['a.txt', 'big.bin', 'empty.txt']);
    expect(manifest.items.find((i) => i.name === 'big.bin')!.blobs.length).toBeGreaterThan(1);
    expect(manifest.indexes).toHaveLength(1);
    expect(manifest.indexes[0]!.count).toBe(301);

    const target = await mkdtemp(path.join(tmpdir(), 'bak-restore-'));
    try {
      const report = await dirEngine.restore({ repo, log, concurrency: 4 }, manifest, { uri: dirUri(target), options: {} });
      expect(report.items).toBe(304);
      const [want, got] = await Promise.all([readTree(tree), readTree(target)]);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [name, content] of want) expect(got.get(name)!.equals(content), name).toBe(true);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });

  it('uploads nothing new for a second backup of unchanged data, and records its parent', async () => {
    const first = await repo.latestSnapshot((await backupKey()).folder, 'complete');
    const second = await backup();
    expect(second.parent).toBe(first!.id);
    expect(second.totals.newBytes).toBe(0);
    expect(second.items.map((i) => i.checksum)).toEqual(first!.items.map((i) => i.checksum));
  });

  async function backupKey() {
    const entries = [];
    for await (const e of repo.listManifestKeys()) entries.push(e);
    return entries[0]!;
  }

  it('lists, shows and verifies snapshots through the CLI', async () => {
    const ls = await cli(['snapshots', '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const listed = JSON.parse(ls.stdout) as { snapshots: Array<{ id: string; engine: string; status: string; job: string }> };
    expect(listed.snapshots).toHaveLength(2);
    expect(listed.snapshots.every((s) => s.engine === 'fixture-dir' && s.status === 'complete' && s.job === 'fixture')).toBe(true);

    const human = await cli(['ls', '--job', 'fixture']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(listed.snapshots[0]!.id);
    expect(human.stdout).toContain('2 snapshot(s)');

    const id = listed.snapshots[0]!.id;
    const show = await cli(['show', id.slice(0, 26)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`snapshot   ${id}`);
    expect(show.stdout).toContain('big.bin');
    const showJson = await cli(['show', id, '--json']);
    expect(JSON.parse(showJson.stdout).id).toBe(id);

    const verify = await cli(['verify', '--all', '--level', 'data']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('2 of 2 snapshot(s) verified at level data');
  });

  it('finds a corrupted blob at level data (exit 3, blob named) and a deleted one at every level', async () => {
    const { manifest } = await repo.resolveSnapshot((await backupKey()).id);
    const big = manifest.items.find((i) => i.name === 'big.bin')!;
    const victim = big.blobs[1]!;
    const original = await store.getBuffer(blobKey(victim.id));
    const flipped = Buffer.from(original);
    const middle = flipped.length >> 1;
    flipped[middle] = flipped[middle]! ^ 0xff;
    await store.put(blobKey(victim.id), flipped);
    try {
      const data = await cli(['verify', manifest.id, '--level', 'data']);
      expect(data.code, data.stdout + data.stderr).toBe(3);
      expect(data.stdout).toContain(victim.id);
      expect(data.stdout).toContain('item big.bin');
      const json = await cli(['verify', manifest.id, '--level', 'data', '--json']);
      expect(json.code).toBe(3);
      expect(JSON.stringify(JSON.parse(json.stdout).snapshots[0].problems)).toContain(victim.id);
    } finally {
      await store.put(blobKey(victim.id), original);
    }

    const indexBlob = manifest.indexes[0]!.blobs[0]!;
    const saved = await store.getBuffer(blobKey(indexBlob.id));
    await store.delete(blobKey(indexBlob.id));
    try {
      for (const level of ['blobs', 'data']) {
        const result = await cli(['verify', '--all', '--level', level]);
        expect(result.code, `${level}: ${result.stdout}${result.stderr}`).toBe(3);
        expect(result.stdout).toContain(indexBlob.id);
        expect(result.stdout).toContain('missing');
      }
    } finally {
      await store.put(blobKey(indexBlob.id), saved);
    }
    expect((await cli(['verify', '--all', '--level', 'data'])).code).toBe(0);
  });

  it('reports a truncated manifest as unreadable without hiding the others', async () => {
    const third = await backup();
    const key = `snapshots/${third.sourceKey}/${third.id}.json`;
    const full = await store.getBuffer(key);
    await store.put(key, full.subarray(0, full.length >> 1));

    const ls = await cli(['snapshots']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`${third.id}\\s+.*UNREADABLE`));
    expect(ls.stdout).toContain('3 snapshot(s), 1 unreadable');
    const json = JSON.parse((await cli(['snapshots', '--json'])).stdout) as { snapshots: Array<{ id: string; status: string }>; unreadable: number };
    expect(json.unreadable).toBe(1);
    expect(json.snapshots.filter((s) => s.status === 'complete')).toHaveLength(2);

    const verify = await cli(['verify', '--all']);
    expect(verify.code).toBe(3);
    expect(verify.stdout).toContain(`FAILED ${third.id}`);
    const show = await cli(['show', third.id]);
    expect(show.code).toBe(3); // a corrupt manifest is a mismatch, as a corrupt blob
    expect(show.stderr).toContain('unreadable');
    await store.delete(key);
  });
});
