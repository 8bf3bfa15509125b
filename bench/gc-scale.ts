// gc planning at scale: a synthetic local repository of 10,000 snapshots (100 sources x 100) referencing
// 1,000,000 blobs, then `gc --dry-run` planning (forget + full prune mark/sweep) in a fresh process,
// reporting wall time and peak RSS. Usage: node bench/gc-scale.ts [snapshots] [blobsPerSnapshot] [dir]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { runGc } from '../src/operations/gc.ts';
import { Repository } from '../src/repository/repository.ts';
import { sourceKeyOf } from '../src/repository/source-key.ts';
import { LocalStore } from '../src/storage/local.ts';
import { newSnapshotId } from '../src/util/ids.ts';

const [, , mode = 'run', a = '10000', b = '100', dirArg] = process.argv;

if (mode === 'measure') {
  const repo = await Repository.open(new LocalStore(a));
  const started = performance.now();
  const report = await runGc(repo, {
    forget: { select: () => true, policyFor: () => ({ policy: { keepLast: 50 }, origin: 'bench' }) },
    dryRun: true,
    graceMs: 0,
    prune: true,
    log: pino({ level: 'silent' }),
    concurrency: 8,
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, forgotten: report.forgotten.length, prune: report.prune }));
} else {
  const snapshots = Number(a);
  const perSnapshot = Number(b);
  const dir = dirArg ?? path.join(tmpdir(), 'bak-gc-scale');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const createStart = performance.now();
  await Repository.init(new LocalStore(dir));
  const sources = 100;
  let blob = 0;
  for (let s = 0; s < snapshots; s++) {
    const source = `dir:///source-${s % sources}`;
    const sourceKey = sourceKeyOf('fixture-dir', source);
    const at = new Date(Date.UTC(2026, 0, 1) + Math.floor(s / sources) * 86_400_000 + (s % sources) * 1000);
    const id = newSnapshotId(at);
    const blobs = [];
    for (let i = 0; i < perSnapshot; i++, blob++) {
      const content = `blob ${blob}`;
      const idHex = createHash('sha256').update(content).digest('hex');
      const file = path.join(dir, 'blobs', idHex.slice(0, 2), idHex);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
      blobs.push({ id: idHex, size: content.length, stored: content.length });
    }
    const manifest = {
      formatVersion: 1, id, engine: 'fixture-dir', source, sourceKey, job: null, host: 'bench', bakVersion: '0', startedAt: at.toISOString(),
      finishedAt: at.toISOString(), status: 'complete', parent: null, tags: [],
      items: [{ name: 'data', kind: 'file', bytes: blobs.reduce((n, x) => n + x.size, 0), checksum: `sha256:${'0'.repeat(64)}`, blobs }],
      indexes: [], failures: [], engineDetails: {}, externalData: false,
      totals: { items: 1, bytes: 0, storedBytes: 0, newBytes: 0 },
    };
    mkdirSync(path.join(dir, 'snapshots', sourceKey), { recursive: true });
    writeFileSync(path.join(dir, 'snapshots', sourceKey, `${id}.json`), JSON.stringify(manifest));
  }
  console.log(`created ${snapshots} snapshots, ${blob} blobs in ${((performance.now() - createStart) / 1000).toFixed(0)} s at ${dir}`);
  const run = spawnSync(process.execPath, [import.meta.filename, 'measure', dir], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(run.stderr);
  const result = JSON.parse(run.stdout);
  console.log(`gc --dry-run planning over ${snapshots} snapshots / ${blob} blobs: ${result.seconds.toFixed(1)} s, peak RSS ${result.maxRssMiB.toFixed(0)} MiB`);
  console.log(`  would forget ${result.forgotten}, would prune ${result.prune.blobsDeleted} of ${result.prune.blobsListed} blobs`);
  if (!dirArg) rmSync(dir, { recursive: true, force: true });
}
