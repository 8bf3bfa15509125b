// The deployment examples in examples/: the systemd units pass `systemd-analyze verify` (with ExecStart pointed at
// this checkout's bin/bak, since verify checks the command is executable), and whatever the machine has, they parse
// as INI with the keys the README promises; the crontab is one job line with flock, a log, and a shell-valid command.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAK_BIN } from '../helpers/cli.ts';

const EXAMPLES = path.resolve(import.meta.dirname, '../../examples');
const SERVICE = path.join(EXAMPLES, 'systemd', 'bak.service');
const TIMER = path.join(EXAMPLES, 'systemd', 'bak.timer');
const CRONTAB = path.join(EXAMPLES, 'cron', 'bak.crontab');
const RUN = 'bak run --all --metrics-file /var/lib/node_exporter/textfile/bak.prom';

function systemdAnalyze(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const analyze = systemdAnalyze();

type Ini = Map<string, Map<string, string[]>>;

/** A systemd unit file as sections of keys with every value given (a key may repeat); throws on a line that is neither. */
function parseUnit(text: string, file: string): Ini {
  const ini: Ini = new Map();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      if (ini.has(header[1]!)) throw new Error(`${file}:${i + 1}: section [${header[1]}] twice`);
      ini.set(header[1]!, (section = new Map()));
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv) throw new Error(`${file}:${i + 1}: not a section, a key=value line or a comment: ${raw}`);
    if (!section) throw new Error(`${file}:${i + 1}: key before any section`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  });
  return ini;
}

/** A command run to its end (spawnSync: these exit at once, before a piped stdin could be written). */
function run(cmd: string, args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const value = (ini: Ini, section: string, key: string) => ini.get(section)?.get(key)?.at(-1);

describe('examples/systemd', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bak-units-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('bak.service parses as INI: oneshot bak run --all with metrics, an EnvironmentFile, the hardening and idle priority', async () => {
    const unit = parseUnit(await readFile(SERVICE, 'utf8'), 'bak.service');
    expect([...unit.keys()]).toEqual(['Unit', 'Service']);
    expect(value(unit, 'Service', 'Type')).toBe('oneshot');
    expect(value(unit, 'Service', 'ExecStart')).toBe(`/usr/local/bin/${RUN}`);
    expect(value(unit, 'Service', 'EnvironmentFile')).toMatch(/^\//);
    expect(value(unit, 'Service', 'NoNewPrivileges')).toBe('yes');
    expect(value(unit, 'Service', 'ProtectSystem')).toBe('strict');
    expect(value(unit, 'Service', 'PrivateTmp')).toBe('yes');
    expect(value(unit, 'Service', 'IOSchedulingClass')).toBe('idle');
    expect(Number(value(unit, 'Service', 'Nice'))).toBeGreaterThan(0);
    const writable = value(unit, 'Service', 'ReadWritePaths')!.split(/\s+/);
    expect(writable).toContain('/var/lib/node_exporter/textfile');
    expect(writable).toContain(`/var/cache/${value(unit, 'Service', 'CacheDirectory')}`);
    // The cache bak writes (Datomic staging, Node's compile cache) is under XDG_CACHE_HOME: it must be the writable one.
    expect(unit.get('Service')!.get('Environment')).toContain('XDG_CACHE_HOME=/var/cache');
    // Node's JIT needs writable executable memory: this one option would kill every run.
    expect(unit.get('Service')!.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('bak.timer parses as INI: nightly, Persistent, a randomized delay, starting bak.service', async () => {
    const timer = parseUnit(await readFile(TIMER, 'utf8'), 'bak.timer');
    expect(value(timer, 'Timer', 'OnCalendar')).toMatch(/^\*-\*-\* \d\d:\d\d(:\d\d)?$/);
    expect(value(timer, 'Timer', 'Persistent')).toBe('true');
    expect(value(timer, 'Timer', 'RandomizedDelaySec')).toMatch(/^\d+(min|h|s)?$/);
    expect(value(timer, 'Timer', 'Unit')).toBe('bak.service');
    expect(value(timer, 'Install', 'WantedBy')).toBe('timers.target');
  });

  // Never a silent pass: without systemd-analyze this shows as skipped, with the reason in its name.
  it.skipIf(!analyze)(
    analyze
      ? 'systemd-analyze verify accepts bak.service and bak.timer, with no warning about either'
      : 'systemd-analyze verify (SKIPPED: systemd-analyze is absent on this machine; apt-get install systemd to run it)',
    async () => {
      const service = (await readFile(SERVICE, 'utf8')).replace(/^ExecStart=\/usr\/local\/bin\/bak /m, `ExecStart=${BAK_BIN} `);
      expect(service).toContain(`ExecStart=${BAK_BIN} run --all`);
      await writeFile(path.join(dir, 'bak.service'), service);
      await copyFile(TIMER, path.join(dir, 'bak.timer'));
      const r = run(analyze!, ['verify', '--man=no', path.join(dir, 'bak.service'), path.join(dir, 'bak.timer')], dir);
      expect(r.code, r.stderr).toBe(0);
      // verify exits 0 on unknown keys and bad values ("Unknown key …, ignoring"): any line about our units fails.
      const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /bak\.(service|timer)/.test(l));
      expect(ours).toEqual([]);

      // The check has teeth: a misspelt key and a relative command are reported.
      await writeFile(path.join(dir, 'bak.service'), service.replace('PrivateTmp=yes', 'PrivateTemp=yes').replace(`ExecStart=${BAK_BIN}`, 'ExecStart=no-such-bak'));
      const bad = run(analyze!, ['verify', '--man=no', path.join(dir, 'bak.service'), path.join(dir, 'bak.timer')], dir);
      expect(bad.stderr).toContain("Unknown key 'PrivateTemp'");
      expect(bad.stderr).toContain('no-such-bak');
      expect(bad.code).not.toBe(0);
    },
  );
});

describe('examples/cron', () => {
  it('bak.crontab: one job line, nightly, bak run --all under flock -n, output appended to a log', async () => {
    const lines = (await readFile(CRONTAB, 'utf8')).split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
    const env = lines.filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l));
    const jobs = lines.filter((l) => !env.includes(l));
    expect(jobs).toHaveLength(1);
    const fields = jobs[0]!.trim().split(/\s+/);
    const [minute, hour, dom, month, dow] = fields;
    expect(Number(minute)).toBeGreaterThanOrEqual(0);
    expect(Number(minute)).toBeLessThan(60);
    expect(Number(hour)).toBeLessThan(24);
    expect([dom, month, dow]).toEqual(['*', '*', '*']);
    const command = fields.slice(5).join(' ');
    // cron turns an unescaped % into a newline.
    expect(command).not.toContain('%');
    expect(command).toMatch(/^flock -n \/\S+ /);
    expect(command).toContain(`/usr/local/bin/${RUN}`);
    expect(command).toMatch(/>>\s*\/\S+\.log 2>&1$/);
    // cron runs it with /bin/sh: it must parse as a shell command.
    const syntax = run('sh', ['-n', '-c', command]);
    expect(syntax.code, syntax.stderr).toBe(0);
    expect(env.find((l) => l.startsWith('PATH='))).toContain('/usr/local/bin');
  });
});
