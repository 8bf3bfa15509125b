// The Datomic engine end to end through the real `bak` CLI, driving a STAND-IN of bin/datomic
// (test/fixtures/datomic/bin/datomic-standin.mjs): Datomic Pro's transactor and CLI ship only in its distribution,
// which cannot be fetched here. The stand-in writes the real backup layout (owner, roots/<t>, values/xx/<id>) for
// small in-file databases and fails with the real keywords and exit codes. Incremental backups, restores of an older
// and of the newest t compared with the test's own reads of the source, verify, export, and the failures.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDatomic } from '../../src/engines/datomic/cli.ts';
import { BakError } from '../../src/errors.ts';
import { readIndex } from '../../src/repository/index-blobs.ts';
import type { Manifest } from '../../src/repository/manifest.ts';
import { Repository } from '../../src/repository/repository.ts';
import { openStore } from '../../src/storage/open.ts';
import { json, runBak, show, writeConfig } from '../helpers/cli.ts';
import { DATOMIC_STANDIN, dump, standin, uniqueDbUri, type StandinDump } from '../helpers/datomic.ts';

describe('datomic engine against a stand-in of bin/datomic', () => {
  let work: string;
  let home: string;
  let repo: string;
  let staging: string;
  const source = uniqueDbUri('app');
  const seen: StandinDump[] = [];
  const snapshots: Manifest[] = [];
  const env = () => ({ DATOMIC_STANDIN_HOME: home, NODE: process.execPath });
  const bak = (args: string[], extra: Record<string, string> = {}) => runBak(['--repo', repo, ...args], { env: { ...env(), ...extra } });
  const backup = (extra: string[] = [], envExtra: Record<string, string> = {}) => bak(['backup', source, '--datomic-bin', DATOMIC_STANDIN, '--staging', staging, '--pace', '5', '--json', ...extra], envExtra);

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'bak-datomic-'));
    home = path.join(work, 'databases');
    repo = path.join(work, 'repo');
    staging = path.join(work, 'staging');
    expect((await runBak(['init', repo])).code).toBe(0);
    await standin(home, ['standin-create', source, '40']);
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('backs up incrementally: only the segments the parent lacks are stored, even from a fresh staging folder', async () => {
    seen.push(await dump(home, source));
    const first = await backup();
    expect(first.code, show(first)).toBe(0);
    const m1 = json<Manifest>(first);
    expect(m1.engineDetails).toMatchObject({ t: 1000, segments: 40, newSegments: 40, owner: seen[0]!.uuid });
    expect(m1.items.map((i) => i.name)).toEqual(['owner', 'roots/1000']);
    snapshots.push(m1);

    await standin(home, ['standin-transact', source, '3']);
    seen.push(await dump(home, source));
    const second = await backup();
    expect(second.code, show(second)).toBe(0);
    const m2 = json<Manifest>(second);
    expect(m2.parent).toBe(m1.id);
    expect(m2.engineDetails).toMatchObject({ t: 2000, segments: 43, newSegments: 3 });
    expect(m2.engineDetails.tool).toBe('Copied 3 segments, skipped 40 segments.');
    snapshots.push(m2);

    // A new machine: empty staging, backup-db writes every segment again; bak stores only the new ones.
    await standin(home, ['standin-transact', source, '2']);
    seen.push(await dump(home, source));
    const third = await backup(['--fresh']);
    expect(third.code, show(third)).toBe(0);
    const m3 = json<Manifest>(third);
    expect(m3.engineDetails).toMatchObject({ t: 3000, segments: 45, newSegments: 2 });
    expect(m3.engineDetails.tool).toBe('Copied 45 segments, skipped 0 segments.');
    expect(m3.totals.newBytes).toBeLessThan(m2.totals.newBytes * 2 + 2000);
    snapshots.push(m3);
  });

  it('re-bases on a cadence: a staging folder older than freshEveryDays is started anew', async () => {
    const config = await writeConfig({
      repositories: { main: { url: repo } },
      jobs: { ledger: { engine: 'datomic', source, repository: 'main', options: { datomicBin: DATOMIC_STANDIN, staging: path.join(work, 'staging-cadence'), freshEveryDays: 1 / 86_400 } } },
    });
    const run = () => runBak(['--config', config, 'backup', '--job', 'ledger', '--json'], { env: env() });
    const first = await run();
    expect(first.code, show(first)).toBe(0);
    const since = json<Manifest>(first).engineDetails.stagingSince as string;
    await new Promise((r) => setTimeout(r, 1200));
    const second = await run();
    expect(second.code, show(second)).toBe(0);
    const m = json<Manifest>(second);
    expect(second.stderr).toMatch(/the staging folder is older than .* days: starting a new staging folder/);
    expect(m.engineDetails.tool).toBe('Copied 45 segments, skipped 0 segments.');
    expect(m.engineDetails.newSegments).toBe(0);
    expect(Date.parse(m.engineDetails.stagingSince as string)).toBeGreaterThan(Date.parse(since));
  });

  it('restores an older t and the newest, equal to the source as it was', async () => {
    const old = uniqueDbUri('old');
    const r1 = await bak(['restore', snapshots[0]!.id, '--to', old, '--json']);
    expect(r1.code, show(r1)).toBe(0);
    expect(await dump(home, old)).toEqual(seen[0]);
    const cache = path.join(work, 'cache');
    const latest = uniqueDbUri('latest');
    const r3 = await bak(['restore', snapshots[2]!.id, '--to', latest, '--cache', cache, '--json']);
    expect(r3.code, show(r3)).toBe(0);
    expect(await dump(home, latest)).toEqual(seen[2]);
    expect(json(r3).details.downloaded).toBe(45);
    // Into the same cache again: nothing to download.
    const again = uniqueDbUri('again');
    const r4 = await bak(['restore', snapshots[1]!.id, '--to', again, '--cache', cache, '--json']);
    expect(r4.code, show(r4)).toBe(0);
    expect(json(r4).details.downloaded).toBe(0);
    expect(await dump(home, again)).toEqual(seen[1]);
    const dry = await bak(['restore', snapshots[1]!.id, '--to', uniqueDbUri('dry'), '--dry-run', '--json']);
    expect(dry.code, show(dry)).toBe(0);
    expect(json(dry).details).toMatchObject({ dryRun: true, plans: [{ t: 2000, segments: 43, action: 'restore-db' }] });
  });

  it('exports the backup folder bin/datomic restores without bak', async () => {
    const dir = path.join(work, 'export');
    const r = await bak(['export', snapshots[1]!.id, '--to-dir', dir]);
    expect(r.code, show(r)).toBe(0);
    expect((await readFile(path.join(dir, 'owner'), 'utf8')).trim()).toBe(seen[0]!.uuid);
    expect(await readdir(path.join(dir, 'roots'))).toEqual(['2000']);
    const target = uniqueDbUri('fromexport');
    expect(await standin(home, ['restore-db', `file:${dir}`, target, '2000'])).toMatch(/:succeeded/);
    expect(await dump(home, target)).toEqual(seen[1]);
  });

  it('verifies at data level and by verify-backup, and names a corrupted segment (exit 3)', async () => {
    const latest = snapshots[2]!;
    expect((await bak(['verify', latest.id, '--level', 'data'])).code).toBe(0);
    const scratch = await bak(['verify', latest.id, '--level', 'restore', '--scratch', 'datomic:dev://localhost:4334/unused', '--json']);
    expect(scratch.code, show(scratch)).toBe(0);
    // Corrupt the blob of one segment the newest snapshot holds, found through its index.
    const store = await openStore({ url: repo });
    const repository = await Repository.open(store);
    let segmentBlob = '';
    for await (const entry of readIndex(repository.blobs, latest.indexes.find((i) => i.name === 'segments')!)) {
      segmentBlob = (entry as { blobs: Array<{ id: string }> }).blobs[0]!.id;
      break;
    }
    const victim = path.join(repo, 'blobs', segmentBlob.slice(0, 2), segmentBlob);
    const original = await readFile(victim);
    await writeFile(victim, Buffer.concat([original.subarray(0, 1), Buffer.from('corrupt'), original.subarray(8)]));
    const broken = await bak(['verify', latest.id, '--level', 'data']);
    expect(broken.code, show(broken)).toBe(3);
    expect(broken.stdout + broken.stderr).toMatch(/segments entry values\/[0-9a-f]{2}\/[0-9a-f-]{36}/);
    await writeFile(victim, original);
    expect((await bak(['verify', latest.id, '--level', 'data'])).code).toBe(0);
  });

  it('turns the CLI\'s failures into clear errors and leaves no snapshot', async () => {
    const before = json(await bak(['snapshots', '--json']));
    // Another database into the same staging folder: backup-db refuses the claim.
    const other = uniqueDbUri('other');
    await standin(home, ['standin-create', other, '3']);
    const claimed = await bak(['backup', other, '--datomic-bin', DATOMIC_STANDIN, '--staging', staging]);
    expect(claimed.code, show(claimed)).toBe(1);
    expect(claimed.stderr).toMatch(/backup-db exited with code 255:[\s\S]*:backup\/claim-failed/);
    // No bin/datomic there.
    const missing = await bak(['backup', source, '--datomic-bin', path.join(work, 'nope', 'datomic'), '--staging', staging]);
    expect(missing.code, show(missing)).toBe(2);
    expect(missing.stderr).toMatch(/bin\/datomic not found or not executable at .*nope\/datomic/);
    // The JVM dies half-way through copying.
    await standin(home, ['standin-transact', source, '5']);
    const died = await backup([], { DATOMIC_STANDIN_DIE_AFTER: '2' });
    expect(died.code, show(died)).toBe(1);
    expect(died.stderr).toMatch(/backup-db was killed by SIGKILL \(the JVM died\)/);
    // A SQL storage's password never shows.
    const sql = await bak(['backup', 'datomic:sql://app?jdbc:postgresql://db:5432/datomic?user=datomic&password=hunter2secret', '--datomic-bin', DATOMIC_STANDIN, '--staging', path.join(work, 'sql-staging')]);
    expect(sql.code).toBe(1);
    expect(sql.stderr).not.toContain('hunter2secret');
    expect(json(await bak(['snapshots', '--json']))).toEqual(before);
    // The next backup after the death goes on: segments stored before it are reused, not uploaded again.
    const next = await backup();
    expect(next.code, show(next)).toBe(0);
    expect(json<Manifest>(next).engineDetails).toMatchObject({ t: 4000, segments: 50, newSegments: 5 });
  });

  it('a backup folder with no root (:restore/no-roots, which bak never writes) is a clear error, exit 1', async () => {
    // bak always stores the root of t with a snapshot, so this comes from the tool itself, run as bak runs it.
    const empty = await mkdtemp(path.join(work, 'no-roots-'));
    process.env.DATOMIC_STANDIN_HOME = home;
    const err = await runDatomic(DATOMIC_STANDIN, [], 'restore-db', [`file:${empty}`, uniqueDbUri('nowhere'), '1000'], { secrets: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BakError);
    expect((err as BakError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(/bin\/datomic restore-db exited with code 255:[\s\S]*:restore\/no-roots/);
  });

  it('restore-db failures map to exit 1 with the tool\'s words', async () => {
    const taken = uniqueDbUri('taken');
    await standin(home, ['standin-create', taken, '1']);
    const r = await bak(['restore', snapshots[0]!.id, '--to', taken]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/restore-db exited with code 255:[\s\S]*:restore\/wrong-database/);
    const bad = await bak(['restore', snapshots[0]!.id, '--to', 'datomic:nonsense']);
    expect(bad.code, show(bad)).toBe(2);
  });
});
