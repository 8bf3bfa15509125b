// The progress line under a real terminal: bak runs inside `script`, which gives it a pseudo-terminal for stderr
// while its stdout goes to a file; everything drawn on the terminal is read back and the progress states in it
// are parsed. A PostgreSQL backup and an S3 backup each show a line that advances and ends at 100 %; piped, the
// same commands draw no progress, and their stdout is byte-identical to a run with --no-progress.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import xterm from '@xterm/headless';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLocation, minioClient, uniqueName, type TestLocation } from '../helpers/backends.ts';
import { BAK_BIN, runBak, show, writeConfig } from '../helpers/cli.ts';
import { createDatabase, dropDatabase, pgEnv, pgUri, query, requirePostgres, uniqueDbName, type PgServer } from '../helpers/postgres.ts';
import { runCommand } from '../helpers/run.ts';
import { awsEnv, createBucket, deleteBucketCompletely, type Minio } from '../helpers/s3-fixture.ts';
import { requireServer } from '../helpers/servers.ts';

const { Terminal } = xterm;

interface State {
  text: string;
  items: number;
  bytes: number;
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** The progress states drawn on a terminal: the text between carriage returns, newlines and escape sequences. */
function progressStates(terminal: string): State[] {
  const states: State[] = [];
  for (const segment of terminal.split(/\r|\n|\x1b\[[0-9;?]*[A-Za-z]/)) {
    const m = /(?:^|\s)(\d+)(?:\/\d+)? items\s+([\d.]+) (B|KiB|MiB|GiB)(?:\/[\d.]+ \w+)?\s+[\d.]+ \w+\/s/.exec(segment);
    if (!m) continue;
    const state = { text: segment.trim(), items: Number(m[1]), bytes: Number(m[2]) * UNITS[m[3]!]! };
    if (states.at(-1)?.text !== state.text) states.push(state);
  }
  return states;
}

/** What a terminal shows once all of it is drawn: the bytes replayed through a headless xterm, line by line. */
async function screen(terminal: string): Promise<string[]> {
  const term = new Terminal({ cols: 200, rows: 60, scrollback: 1000, allowProposedApi: true });
  await new Promise<void>((resolve) => term.write(terminal, resolve));
  const lines: string[] = [];
  const buffer = term.buffer.active;
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
  term.dispose();
  return lines.filter((l) => l !== '');
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('progress on a terminal', () => {
  let pg: PgServer;
  let minio: Minio;
  let s3: S3Client;
  let location: TestLocation;
  let configFile: string;
  let work: string;
  const database = uniqueDbName('bakt_progress');
  const bucket = uniqueName('bak-progress');
  const restoreBucket = uniqueName('bak-progress-to');
  const OBJECTS = 800;
  let env: Record<string, string>;

  /** bak with stderr on a pseudo-terminal (and stdout into a file): what the terminal showed, and stdout. */
  async function onTerminal(args: string[]): Promise<{ code: number | null; terminal: string; stdout: string }> {
    const out = path.join(work, `stdout-${Math.random().toString(36).slice(2)}`);
    const command = `${[BAK_BIN, '--config', configFile, ...args].map(quote).join(' ')} >${quote(out)}`;
    const r = await runCommand('script', ['-qefc', command, '/dev/null'], { env: { ...process.env, BAK_CONFIG: '', BAK_REPOSITORY: '', ...env } });
    return { code: r.code, terminal: r.stdout, stdout: await readFile(out, 'utf8') };
  }
  const piped = (args: string[]) => runBak(['--config', configFile, ...args], { env });

  beforeAll(async () => {
    pg = await requirePostgres();
    minio = await requireServer('minio');
    s3 = minioClient(minio);
    location = await makeLocation('local');
    work = await mkdtemp(path.join(tmpdir(), 'bak-progress-'));
    env = { ...location.env, ...awsEnv(minio), ...pgEnv(pg) };
    await createDatabase(pg, database);
    // About 200 MB of COPY text in two tables: a backup long enough for several redraws at 4 a second. 90 MB took
    // ~0.5 s on a fast machine once pg_dump started during the repository open: two redraws, and a flaky test.
    await query(pg, database, "CREATE TABLE wide AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, repeat(md5(g::text), 8) AS b FROM generate_series(1, 600000) g");
    await query(pg, database, 'CREATE TABLE narrow AS SELECT g AS id FROM generate_series(1, 200000) g');
    await createBucket(s3, bucket);
    await createBucket(s3, restoreBucket);
    const puts: Array<Promise<unknown>> = [];
    for (let i = 0; i < OBJECTS; i++) {
      puts.push(s3.send(new PutObjectCommand({ Bucket: bucket, Key: `o/${String(i).padStart(5, '0')}`, Body: Buffer.alloc(3_000, `object ${i} `) })));
      if (puts.length >= 32) await Promise.all(puts.splice(0));
    }
    await Promise.all(puts);
    const s3Options = { endpoint: minio.endpoint, forcePathStyle: true, checksums: 'when-required' };
    configFile = await writeConfig({
      repositories: { test: location.configEntry },
      defaults: { repository: 'test' },
      jobs: {
        pg: { engine: 'postgres', source: pgUri(pg, database) },
        // One object at a time: a backup of 800 objects slow enough to watch.
        bucket: { engine: 's3', source: `s3://${bucket}`, options: { ...s3Options, concurrency: 1 } },
      },
    });
    const init = await piped(['init']);
    expect(init.code, show(init)).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (pg) await dropDatabase(pg, database).catch(() => undefined);
    for (const b of [bucket, restoreBucket]) if (s3) await deleteBucketCompletely(s3, b).catch(() => undefined);
    s3?.destroy();
    await location?.cleanup();
  });

  it.each(['pg', 'bucket'])('a backup of job %s shows a line that advances and ends at 100 percent', async (job) => {
    const r = await onTerminal(['backup', '--job', job]);
    expect(r.code, r.terminal).toBe(0);
    expect(r.stdout).toMatch(/^snapshot \S+ complete: /);
    const states = progressStates(r.terminal);
    expect(states.length, r.terminal).toBeGreaterThanOrEqual(3);
    const last = states.at(-1)!;
    expect(last.text, r.terminal).toMatch(/ 100 % /);
    expect(last.text).toMatch(/done in/);
    // It advanced: a state part-way, and never backwards.
    expect(states.some((s) => s.bytes > 0 && s.bytes < last.bytes), r.terminal).toBe(true);
    for (let i = 1; i < states.length; i++) expect(states[i]!.bytes).toBeGreaterThanOrEqual(states[i - 1]!.bytes);
    if (job === 'bucket') expect(last.items).toBe(OBJECTS);
    // Log lines share the terminal, each on its own line, none cut by a redraw.
    expect(r.terminal).toMatch(/INFO: snapshot \S+ of /);
  }, 60_000);

  it('a PostgreSQL restore shows pg_restore and then the check moving on: the check is part of the goal, not time spent at 100 %', async () => {
    const backup = await piped(['backup', '--job', 'pg']);
    expect(backup.code, show(backup)).toBe(0);
    const id = /^snapshot (\S+) complete/.exec(backup.stdout)![1]!;
    const target = uniqueDbName('bakt_progress_to');
    try {
      const r = await onTerminal(['restore', id, '--to', pgUri(pg, 'postgres'), '--as', target]);
      expect(r.code, r.terminal).toBe(0);
      const states = progressStates(r.terminal);
      const restoring = states.filter((s) => s.text.startsWith(`${target}: pg_restore`));
      const checking = states.filter((s) => s.text.startsWith(`${target}: checking the restored rows`));
      expect(restoring.length, r.terminal).toBeGreaterThan(0);
      expect(checking.length, r.terminal).toBeGreaterThan(0);
      // The check starts short of the end and its own bytes take the line on; nothing goes backwards.
      expect(checking[0]!.text, r.terminal).not.toMatch(/ 100 % /);
      expect(checking.at(-1)!.bytes, r.terminal).toBeGreaterThan(checking[0]!.bytes);
      for (let i = 1; i < states.length; i++) expect(states[i]!.bytes, r.terminal).toBeGreaterThanOrEqual(states[i - 1]!.bytes);
      // Items count as each dump file is written out or fed to pg_restore, before the end says all are done.
      expect(checking[0]!.items, r.terminal).toBeGreaterThan(0);
      const last = states.at(-1)!;
      expect(last.text, r.terminal).toMatch(/ 100 % .*done in/);
      expect(r.stdout).toMatch(/2 tables, 800000 rows: ok/);

      // The check alone (--check-only) reads no blob: the line starts at the check's share and goes on from there.
      const check = await onTerminal(['restore', id, '--to', pgUri(pg, target), '--check-only']);
      expect(check.code, check.terminal).toBe(0);
      const checkStates = progressStates(check.terminal).filter((s) => s.text.includes('checking the restored rows'));
      expect(checkStates.length, check.terminal).toBeGreaterThan(0);
      for (const s of checkStates) expect(Number(/ (\d+) % /.exec(s.text)?.[1]), check.terminal).toBeGreaterThanOrEqual(49);
      expect(checkStates.at(-1)!.text, check.terminal).toMatch(/ 100 % /);
    } finally {
      await dropDatabase(pg, target).catch(() => undefined);
    }
  }, 90_000);

  it('bak run: each job gets its line, left at 100 %, and no log line is drawn over (as the terminal shows it)', async () => {
    const r = await onTerminal(['run', '--job', 'pg', '--job', 'bucket']);
    expect(r.code, r.terminal).toBe(0);
    const lines = await screen(r.terminal);
    const shown = lines.join('\n');
    for (const job of ['pg', 'bucket']) {
      expect(shown, shown).toMatch(new RegExp(`INFO: job ${job} ok in `));
      expect(lines.filter((l) => l.startsWith(`job ${job} (`) || (job === 'pg' && l.includes(`${database}: pg_dump`)) || (job === 'bucket' && l.startsWith(`s3://${bucket}/`))).some((l) => / 100 % /.test(l)), shown).toBe(true);
    }
    expect(lines.filter((l) => l.includes('INFO: using repository')), shown).toHaveLength(2);
    expect(r.stdout).toMatch(/all 2 job\(s\) succeeded/);
  }, 60_000);

  it('piped, nothing is drawn and stdout is byte-identical to --no-progress; on a terminal stdout is the same again', async () => {
    const backup = await piped(['backup', '--job', 'bucket']);
    expect(backup.code, show(backup)).toBe(0);
    expect(progressStates(backup.stderr)).toEqual([]);
    const id = /^snapshot (\S+) complete/.exec(backup.stdout)![1]!;

    const verify = await piped(['verify', id, '--level', 'data']);
    const quiet = await piped(['verify', id, '--level', 'data', '--no-progress']);
    expect(verify.code, show(verify)).toBe(0);
    expect(progressStates(verify.stderr)).toEqual([]);
    expect(verify.stdout).toBe(quiet.stdout);
    const drawn = await onTerminal(['verify', id, '--level', 'data']);
    expect(drawn.code, drawn.terminal).toBe(0);
    expect(progressStates(drawn.terminal).at(-1)?.text, drawn.terminal).toMatch(/ 100 % /);
    expect(drawn.stdout).toBe(verify.stdout);

    // A restore the same way (the second finds every object there already: skipped, and the line still ends at 100 %).
    const to = ['restore', id, '--to', `s3://${restoreBucket}`, '--endpoint', minio.endpoint, '--path-style'];
    const restored = await piped(to);
    expect(restored.code, show(restored)).toBe(0);
    expect(progressStates(restored.stderr)).toEqual([]);
    const again = await onTerminal(to);
    expect(again.code, again.terminal).toBe(0);
    expect(progressStates(again.terminal).at(-1)?.text, again.terminal).toMatch(/ 100 % /);
    const quietAgain = await piped([...to, '--no-progress']);
    expect(again.stdout).toBe(quietAgain.stdout);
    expect(again.stdout).toContain(`skipped ${OBJECTS} identical`);

    // --no-progress on a terminal draws nothing.
    const none = await onTerminal(['verify', id, '--level', 'data', '--no-progress']);
    expect(progressStates(none.terminal)).toEqual([]);
    expect(none.stdout).toBe(verify.stdout);
  }, 90_000);
});
