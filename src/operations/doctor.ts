/**
 * `bak doctor`: what a backup needs, checked before cron finds out at 3 a.m. The config and its secret references,
 * each repository in scope (reachable, a bak repository of a known format, writable, not public, versioned, its
 * server's clock, no stale lock), and each job's source (reachable with its credentials, its tools present, room where
 * it stages). Read-only, but for one small test object per repository under `doctor/`, created and deleted again.
 * Returns the checks; never prints.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rmdir, statfs } from 'node:fs/promises';
import * as path from 'node:path';
import { formatBytes } from '../util/format-bytes.ts';
import { keySourcesFor, type KeyFlags } from '../config/key-sources.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveRepository, type ResolvedRepository } from '../config/resolve.ts';
import type { Config, SecretRef } from '../config/schema.ts';
import { isSecretReference, resolveSecret } from '../config/secrets.ts';
import { BakError, errorMessage, UsageError } from '../errors.ts';
import type { KeySource } from '../repository/encryption/key-source.ts';
import { NoUsableKeyError } from '../repository/encryption/unlock.ts';
import { isStale, listLocks } from '../repository/locks.ts';
import { MARKER_KEY, markerSchema, type RepositoryMarker } from '../repository/marker.ts';
import { Repository } from '../repository/repository.ts';
import { sourceKeyOf } from '../repository/source-key.ts';
import { LocalStore } from '../storage/local.ts';
import { StorageError, type ObjectStore, type StoreInspection } from '../storage/object-store.ts';
import { openStore } from '../storage/open.ts';
import { scrubSecrets } from '../util/redact.ts';
import { prepareSource } from './job-source.ts';

export type DoctorStatus = 'ok' | 'warn' | 'fail';

/** One line of `bak doctor`: what was checked, how it stands, and for warn and fail what to do. */
export interface DoctorCheck {
  name: string;
  status: DoctorStatus;
  detail: string;
  fix?: string;
}

/** What an engine's `doctor` gets besides its source. */
export interface EngineDoctorContext {
  /** The source's folder under snapshots/ (engines that name things after it, like Datomic's default staging). */
  sourceKey: string;
  /**
   * Free space where the engine stages (`dir`, or its nearest existing parent) against the last complete snapshot's
   * size: warn, with `fix`, when less. `kept`: the folder holds the previous run's staging (a run adds only new data).
   */
  stagingRoom(dir: string, fix: string, options?: { kept?: boolean }): Promise<DoctorCheck>;
}

export interface DoctorRequest {
  /** The config as the CLI loads it (it throws for a file that does not parse: that is check 1). */
  loadConfig: () => LoadedConfig;
  /** Check this job: its secrets, its repository, its source. */
  job?: string | undefined;
  /** Check every job and every repository they use, plus the default repository. */
  all?: boolean | undefined;
  /** `--repo`: it wins over the jobs' and the default repository, as it does for backup. */
  repo?: string | undefined;
  /** `--password-file` / `--password-command`: where an encrypted repository's passphrase is read, as for every command. */
  keyFlags?: Pick<KeyFlags, 'passwordFile' | 'passwordCommand'> | undefined;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  summary: Record<DoctorStatus, number>;
}

/** Skew of the local clock against a storage server's Date header: warn past a minute; fail past the lock TTL. */
export const CLOCK_WARN_MS = 60_000;
/**
 * 10 minutes is the repository lock's default TTL (locks.ts): with more skew, a live lock another host refreshes can
 * look expired here (or a crashed one live), and gc's grace periods are off by as much. AWS refuses signatures past 15.
 */
export const CLOCK_FAIL_MS = 10 * 60_000;
/** Test hook: milliseconds added to the local clock reading of the clock check (to fake a skew). */
export const CLOCK_OFFSET_ENV = 'BAK_DOCTOR_CLOCK_OFFSET_MS';

/** The test object's folder: the one place doctor writes. */
export const DOCTOR_PREFIX = 'doctor/';

const ok = (name: string, detail: string): DoctorCheck => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix?: string): DoctorCheck => ({ name, status: 'warn', detail, ...(fix ? { fix } : {}) });
const fail = (name: string, detail: string, fix?: string): DoctorCheck => ({ name, status: 'fail', detail, ...(fix ? { fix } : {}) });

export async function runDoctor(request: DoctorRequest): Promise<DoctorReport> {
  if (request.job !== undefined && request.all) throw new UsageError('give --job NAME or --all, not both');
  const checks: DoctorCheck[] = [];
  let loaded: LoadedConfig;
  try {
    loaded = request.loadConfig();
  } catch (err) {
    if (!(err instanceof BakError)) throw err;
    checks.push(fail('config', err.message, 'correct the config file (bak config check shows every problem); the other checks need it'));
    return report(checks);
  }
  const { config, file } = loaded;
  if (request.job !== undefined && !config.jobs[request.job]) {
    throw new UsageError(`no job named "${request.job}" in ${file ?? 'the config (no config file found)'}`);
  }
  const nRepos = Object.keys(config.repositories).length;
  const nJobs = Object.keys(config.jobs).length;
  checks.push(
    ok(
      'config',
      file
        ? `${file}: ${nRepos} repositor${nRepos === 1 ? 'y' : 'ies'}, ${nJobs} job${nJobs === 1 ? '' : 's'}`
        : 'no config file (no --config, no $BAK_CONFIG, no ./bak.config.json): built-in defaults',
    ),
  );

  // Scope: the repositories a backup of the jobs in scope would use (--repo and BAK_REPOSITORY win, as they do there).
  const jobs = request.job !== undefined ? [request.job] : request.all ? Object.keys(config.jobs) : [];
  const targets = new Map<string, RepoTarget>();
  const jobRepo = new Map<string, string>();
  if (request.job === undefined) addTarget(targets, repoTarget(config, request.repo, undefined));
  for (const job of jobs) jobRepo.set(job, addTarget(targets, repoTarget(config, request.repo, job)));

  // With a job, only the repository its backup uses (when it is a named one) has its secrets read.
  const repoNames = request.job !== undefined ? [...targets.values()].flatMap((t) => (t.name !== undefined ? [t.name] : [])) : undefined;
  checks.push(...secretChecks(config, request.job, repoNames));

  const stores: ObjectStore[] = [];
  try {
    const repoResults = await Promise.all([...targets.values()].map((t) => checkRepository(t, stores, file, request.keyFlags ?? {})));
    const opened = new Map([...targets.keys()].map((key, i) => [key, repoResults[i]!.repo] as const));
    for (const r of repoResults) checks.push(...r.checks);

    if (request.all && jobs.length === 0) checks.push(ok('jobs', 'no jobs in the config'));
    const jobResults = await Promise.all(jobs.map((job) => checkJob(job, config, file, opened.get(jobRepo.get(job)!))));
    for (const r of jobResults) checks.push(...r);
  } finally {
    await Promise.all(stores.map((s) => s.close?.().catch(() => undefined)));
  }
  return report(checks);
}

function report(checks: DoctorCheck[]): DoctorReport {
  const summary: Record<DoctorStatus, number> = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) summary[c.status]++;
  return { checks, summary };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Secret references

interface SecretSite {
  where: string;
  ref: Exclude<SecretRef, string>;
  /** A hook's URL: without it the backup still runs (the hook is skipped with a warning), so it only warns. */
  optional?: boolean;
}

const REPOSITORY_SECRETS = ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const;
/** Option keys that hold a secret when given as a plain string (a plain string is not a reference, so it cannot fail). */
const SECRET_KEY = /password|secret|token/i;

/**
 * Every `{"env"}` / `{"file"}` reference that does not resolve, one line each naming its config path (never a value);
 * a warning for a secret written into the file as plain text. With a job: only what that job's backup reads.
 */
function secretChecks(config: Config, job: string | undefined, repositoryNames: string[] | undefined): DoctorCheck[] {
  const sites: SecretSite[] = [];
  const plain: string[] = [];
  for (const name of repositoryNames ?? Object.keys(config.repositories)) {
    const repo = config.repositories[name];
    if (!repo) continue;
    for (const field of REPOSITORY_SECRETS) {
      const ref = repo[field];
      const where = `repositories.${name}.${field}`;
      if (typeof ref === 'string') {
        if (field !== 'accessKeyId') plain.push(where);
      } else if (ref !== undefined) sites.push({ where, ref });
    }
    // An encrypted repository's passphrase, and its AWS KMS credentials (the same three fields as the bucket's).
    const encryption = repo.encryption;
    const encryptionSecrets: Array<[string, SecretRef | undefined, boolean]> = [
      ['password', encryption?.password, true],
      ...REPOSITORY_SECRETS.map((field): [string, SecretRef | undefined, boolean] => [`awsKms.${field}`, encryption?.awsKms?.[field], field !== 'accessKeyId']),
    ];
    for (const [field, ref, secretWhenPlain] of encryptionSecrets) {
      const where = `repositories.${name}.encryption.${field}`;
      if (typeof ref === 'string') {
        if (secretWhenPlain) plain.push(where);
      } else if (ref !== undefined) sites.push({ where, ref });
    }
  }
  for (const name of job !== undefined ? [job] : Object.keys(config.jobs)) {
    walkOptions(config.jobs[name]?.options ?? {}, `jobs.${name}.options`, sites, plain);
    // A ping or webhook URL is a credential too: whoever has it can report the job as healthy.
    for (const hook of ['ping', 'webhook'] as const) {
      const ref = config.jobs[name]?.hooks?.[hook];
      const where = `jobs.${name}.hooks.${hook}`;
      if (typeof ref === 'string') plain.push(where);
      else if (ref !== undefined) sites.push({ where, ref, optional: true });
    }
  }
  const checks: DoctorCheck[] = [];
  for (const site of sites) {
    try {
      resolveSecret(site.ref, site.where);
    } catch (err) {
      const message = errorMessage(err).replace(`${site.where}: `, '');
      const fix =
        'env' in site.ref
          ? `set ${site.ref.env} in the environment bak runs in (the cron job, the systemd unit, the CI secrets), or change the reference`
          : `make ${site.ref.file} readable by this user, or change the reference`;
      if (site.optional) checks.push(warn(`secret ${site.where}`, `${message}: bak run will skip that hook`, fix));
      else checks.push(fail(`secret ${site.where}`, message, fix));
    }
  }
  for (const where of plain) {
    checks.push(warn(`secret ${where}`, 'written into the config file as plain text', 'use {"env": "NAME"} or {"file": "/path"} instead, and keep the secret out of the file'));
  }
  if (checks.length === 0) checks.push(ok('secrets', sites.length ? `${sites.length} secret reference${sites.length === 1 ? '' : 's'} resolve` : 'no secret references'));
  return checks;
}

function walkOptions(value: unknown, where: string, sites: SecretSite[], plain: string[]): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) return value.forEach((v, i) => walkOptions(v, `${where}.${i}`, sites, plain));
  if (isSecretReference(value)) {
    sites.push({ where, ref: value });
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string' && SECRET_KEY.test(k)) plain.push(`${where}.${k}`);
    else walkOptions(v, `${where}.${k}`, sites, plain);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2-4, 7. Repositories

interface RepoTarget {
  /** The config name, if the repository has one. */
  name: string | undefined;
  /** The name, else the URL: how lines and `bak unlock --repo` name it. */
  label: string;
  origin: ResolvedRepository['origin'];
  resolve: () => ResolvedRepository;
}

/** The repository a backup of `job` (or a command without one) would use, named without reading its secrets yet. */
function repoTarget(config: Config, flag: string | undefined, job: string | undefined): RepoTarget {
  const withoutSecrets: Config = {
    ...config,
    repositories: Object.fromEntries(
      Object.entries(config.repositories).map(([n, r]) => [n, { ...r, accessKeyId: undefined, secretAccessKey: undefined, sessionToken: undefined }]),
    ),
  };
  const shallow = resolveRepository(withoutSecrets, { flag, job });
  return { name: shallow.name, label: shallow.name ?? shallow.settings.url, origin: shallow.origin, resolve: () => resolveRepository(config, { flag, job }) };
}

function addTarget(targets: Map<string, RepoTarget>, target: RepoTarget): string {
  if (!targets.has(target.label)) targets.set(target.label, target);
  return target.label;
}

const ORIGIN: Record<ResolvedRepository['origin'], string> = {
  flag: '--repo',
  env: 'BAK_REPOSITORY',
  job: "the job's repository",
  'config default': 'defaults.repository',
  'built-in default': 'the built-in default',
};

function storageFix(err: unknown, url: string): string | undefined {
  if (err instanceof BakError && err.hint) return err.hint;
  if (!(err instanceof StorageError)) return undefined;
  switch (err.kind) {
    case 'bucket-missing':
      return url.startsWith('file:') ? `create the repository with: bak init ${url}` : `create the bucket (bak never creates one) or correct the repository URL, then: bak init ${url}`;
    case 'access-denied':
      return 'check the credentials and that they may read, write and list the bucket or folder';
    case 'unreachable':
      return 'check the endpoint URL and that the server is running';
    default:
      return undefined;
  }
}

async function checkRepository(
  target: RepoTarget,
  stores: ObjectStore[],
  configFile: string | undefined,
  keyFlags: Pick<KeyFlags, 'passwordFile' | 'passwordCommand'>,
): Promise<{ checks: DoctorCheck[]; repo?: Repository }> {
  const name = (aspect: string) => `repo ${target.label}: ${aspect}`;
  const checks: DoctorCheck[] = [];
  let resolved: ResolvedRepository;
  let store: ObjectStore;
  try {
    resolved = target.resolve();
    // Doctor reports; it need not try as hard as a backup (a dead endpoint fails in one connect timeout, not three).
    store = await openStore({ ...resolved.settings, maxAttempts: resolved.settings.maxAttempts ?? 2 });
  } catch (err) {
    checks.push(fail(name('reachable'), `not checked: ${errorMessage(err)}`, err instanceof BakError ? err.hint ?? 'resolve the secret references above' : undefined));
    return { checks };
  }
  stores.push(store);
  const url = resolved.settings.url;

  try {
    await store.checkAccess();
    checks.push(ok(name('reachable'), `${store.description}, chosen by ${ORIGIN[resolved.origin]}`));
  } catch (err) {
    checks.push(fail(name('reachable'), errorMessage(err), storageFix(err, url)));
    return { checks };
  }

  // The key sources every command would use (flags, BAK_PASSWORD…, the config's encryption section); one that cannot
  // even be built (half a pair of KMS credentials, an unset reference) is said in the keys line.
  let keys: KeySource[] = [];
  let keysProblem: string | undefined;
  try {
    keys = keySourcesFor(resolved, keyFlags);
  } catch (err) {
    keysProblem = errorMessage(err);
  }
  const formatOk = (m: RepositoryMarker) => ok(name('format'), `bak repository format ${m.version}, id ${m.id}, created ${m.createdAt} by ${m.createdBy}`);
  let repo: Repository | undefined;
  /** The repository is a bak repository, opened or not (an encrypted one no key opened). */
  let isRepository = false;
  try {
    repo = await Repository.open(store, { keys, expectEncrypted: resolved.encryption !== undefined });
    isRepository = true;
    checks.push(formatOk(repo.marker));
    if (repo.encrypted) checks.push(await keysCheck(repo, name('keys')));
  } catch (err) {
    const marker = err instanceof NoUsableKeyError ? await readMarker(store) : undefined;
    if (marker) {
      isRepository = true;
      checks.push(formatOk(marker));
      const detail = oneLine(err as NoUsableKeyError);
      checks.push(fail(name('keys'), keysProblem ? `${keysProblem}; ${detail}` : detail, KEYS_FIX));
    } else {
      checks.push(fail(name('format'), errorMessage(err), storageFix(err, url) ?? `point the repository at a bak repository, or create one with: bak init ${url}`));
    }
  }

  // Through the repository's own store when it opened (an encrypted one's test object is sealed, and read back through the key).
  if (isRepository) checks.push(await writeTest(store, name('writable'), repo?.store));

  let inspection: StoreInspection | undefined;
  if (store.inspect) {
    try {
      inspection = await store.inspect();
      for (const f of inspection.findings) {
        const status: DoctorStatus = f.verdict === 'unknown' ? 'warn' : f.verdict;
        checks.push({ name: name(f.aspect), status, detail: f.detail, ...(f.fix && status !== 'ok' ? { fix: f.fix } : {}) });
      }
    } catch (err) {
      checks.push(warn(name('protection'), `could not be determined: ${errorMessage(err)}`));
    }
  } else checks.push(warn(name('protection'), 'could not be determined: this storage backend cannot describe its protection'));

  checks.push(clockCheck(name('clock'), store, inspection));

  if (repo) {
    const unlock = `bak${configFile && target.name ? ` --config ${configFile}` : ''} unlock --repo ${target.label}`;
    // An encrypted repository's locks are sealed: read through its store.
    checks.push(...(await lockChecks(repo.store, name, unlock)));
  } else if (isRepository) {
    checks.push(warn(name('locks'), 'not checked: the repository did not open, and its locks are sealed', 'give a key that opens it (see the keys line)'));
  }
  return { checks, ...(repo ? { repo } : {}) };
}

const KEYS_FIX =
  'give bak a key that opens one of its slots where it runs: a passphrase (BAK_PASSWORD, BAK_PASSWORD_FILE or BAK_PASSWORD_COMMAND, ' +
  '--password-file or --password-command, or the repository\'s encryption.password / passwordCommand), or the KMS settings a slot needs ' +
  '(encryption.awsKms / gcpKms); bak config check says which key sources this machine can use';

/** NoUsableKeyError's list of what was tried, on one line (a doctor line is one line). */
function oneLine(err: Error): string {
  return err.message.replace(/:\n {2}- /, ': ').replace(/\n {2}- /g, '; ');
}

/** The marker of a repository that did not open for want of a key (its format is still worth a line). */
async function readMarker(store: ObjectStore): Promise<RepositoryMarker | undefined> {
  try {
    const parsed = markerSchema.safeParse(JSON.parse((await store.getBuffer(MARKER_KEY)).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** An encrypted repository that opened: how it is sealed, which key opened it, and its slots (an unreadable one warns). */
async function keysCheck(repo: Repository, name: string): Promise<DoctorCheck> {
  const opened = repo.openedWith!;
  let slots;
  try {
    slots = await repo.keySlots();
  } catch (err) {
    return warn(name, `opened with ${opened.source.label}, slot ${opened.slot.id}; the key slots cannot be listed: ${errorMessage(err)}`, 'check that these credentials may list and read keys/');
  }
  const counts = new Map<string, number>();
  for (const s of slots.slots) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
  const kinds = [...counts].map(([kind, n]) => (n > 1 ? `${n} ${kind}` : kind)).join(', ');
  const n = slots.slots.length;
  const detail = `encrypted (${repo.marker.encryption!.cipher}); opened with ${opened.source.label}, slot ${opened.slot.id}; ${n} key slot${n === 1 ? '' : 's'} (${kinds})`;
  if (slots.unreadable.length > 0) {
    const list = slots.unreadable.map((u) => `${u.key}: ${u.problem}`).join('; ');
    return warn(name, `${detail}; ${slots.unreadable.length} unreadable: ${list}`, 'restore the unreadable slot from a copy, or remove it once another key is known to work (bak key list, bak key remove)');
  }
  return ok(name, detail);
}

/**
 * Creates, reads back and deletes one small object under doctor/: the only write doctor makes. `through`: the
 * repository's own store (an encrypted repository's seals the object) in place of the bare one.
 */
async function writeTest(bare: ObjectStore, name: string, through: ObjectStore = bare): Promise<DoctorCheck> {
  const store = through;
  const key = `${DOCTOR_PREFIX}${randomBytes(8).toString('hex')}`;
  const body = Buffer.from(`bak doctor write test, ${new Date().toISOString()}\n`);
  // A local folder keeps the folders a put makes: remove the ones this test made (a first put also makes .tmp/).
  const root = bare instanceof LocalStore ? bare.root : undefined;
  const tmpExisted = root === undefined || existsSync(path.join(root, '.tmp'));
  let written = false;
  try {
    const { created } = await store.put(key, body, { ifAbsent: true });
    if (!created) return fail(name, `the test object ${key} already existed (left by another doctor run?)`, `delete ${key} from the repository`);
    written = true;
    const back = await store.getBuffer(key);
    if (!back.equals(body)) return fail(name, `the test object ${key} read back differently (${back.length} bytes, ${body.length} written)`, 'check the storage server or gateway in between');
    await store.delete(key);
    written = false;
    if (await store.head(key)) return fail(name, `the test object ${key} is still there after its delete`, `check that these credentials may delete objects, then delete ${key}`);
    return ok(name, `created, read back and deleted ${key} (${body.length} bytes)`);
  } catch (err) {
    return fail(name, `cannot write: ${errorMessage(err)}`, storageFix(err, store.description) ?? 'give these credentials create, read and delete access to objects');
  } finally {
    if (written) await store.delete(key).catch(() => undefined);
    if (root !== undefined) {
      await rmdir(path.join(root, DOCTOR_PREFIX)).catch(() => undefined);
      if (!tmpExisted) await rmdir(path.join(root, '.tmp')).catch(() => undefined);
    }
  }
}

function clockCheck(name: string, store: ObjectStore, inspection: StoreInspection | undefined): DoctorCheck {
  if (store instanceof LocalStore) return ok(name, 'local repository, no server clock');
  const clock = inspection?.serverClock;
  if (!clock) return warn(name, 'could not be determined: no answer of the server carried a Date header');
  const offset = Number(process.env[CLOCK_OFFSET_ENV] ?? 0);
  // A Date header has whole seconds: the server's time lies in [date, date + 1 s), so compare with its middle.
  const skew = clock.localMs + (Number.isFinite(offset) ? offset : 0) - (clock.serverDate.getTime() + 500);
  const size = Math.abs(skew);
  const how = `local clock ${formatSkew(size)} ${skew >= 0 ? 'ahead of' : 'behind'} the server (${clock.via})`;
  const fix = 'synchronise the clock (systemd-timesyncd, chrony or ntpd), here or on the server';
  if (size > CLOCK_FAIL_MS) return fail(name, `${how}: past ${CLOCK_FAIL_MS / 60_000} minutes, lock expiry and gc grace periods are misjudged`, fix);
  if (size > CLOCK_WARN_MS) return warn(name, `${how}: more than ${CLOCK_WARN_MS / 1000} s`, fix);
  return ok(name, size < 1500 ? `within about a second of the server (${clock.via})` : how);
}

function formatSkew(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** A stale lock (expired, or of a process of this host that is gone: locks.ts's own rule) fails, naming bak unlock. */
async function lockChecks(store: ObjectStore, name: (aspect: string) => string, unlock: string): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const live: string[] = [];
  try {
    for await (const lock of listLocks(store)) {
      if (!('info' in lock)) {
        checks.push(fail(name(`lock ${lock.key}`), `unreadable lock file: ${lock.error}`, unlock));
        continue;
      }
      const l = lock.info;
      const holder = `${l.kind} lock of ${l.host} pid ${l.pid} ("${l.command}"), taken ${l.createdAt}`;
      if (isStale(l)) {
        const why = Date.parse(l.expiresAt) < Date.now() ? `expired ${l.expiresAt}` : 'its process is gone';
        checks.push(fail(name(`lock ${l.id}`), `stale ${holder}: ${why}`, `if no bak process uses this repository any more: ${unlock}`));
      } else live.push(holder);
    }
  } catch (err) {
    return [fail(name('locks'), `cannot list the locks: ${errorMessage(err)}`, 'check that these credentials may list and read locks/')];
  }
  if (checks.length === 0) checks.push(ok(name('locks'), live.length ? `no stale locks; ${live.length} live: ${live.join('; ')}` : 'no locks'));
  return checks;
}

// ---------------------------------------------------------------------------------------------------------------
// 5-6. Job sources and staging

async function checkJob(job: string, config: Config, configFile: string | undefined, repo: Repository | undefined): Promise<DoctorCheck[]> {
  const name = (aspect: string) => `job ${job}: ${aspect}`;
  let prepared: ReturnType<typeof prepareSource>;
  try {
    prepared = prepareSource(config, { job }, configFile);
  } catch (err) {
    return [fail(name('source'), `not checked: ${errorMessage(err)}`, err instanceof BakError ? err.hint ?? 'correct the job (or resolve its secret references above)' : undefined)];
  }
  const { engine, source } = prepared;
  const scrub = (text: string) => scrubSecrets(text, source.secrets);
  if (!engine.doctor) return [warn(name('source'), `not checked: the ${engine.name} engine has no doctor checks`)];
  const sourceKey = sourceKeyOf(engine.name, source.uri);
  const ctx: EngineDoctorContext = { sourceKey, stagingRoom: (dir, fix, options) => stagingRoom(dir, fix, options ?? {}, repo, sourceKey) };
  try {
    const found = await engine.doctor(source, ctx);
    return found.map((c) => ({ ...c, name: name(c.name), detail: scrub(c.detail), ...(c.fix ? { fix: scrub(c.fix) } : {}) }));
  } catch (err) {
    return [fail(name('source'), scrub(errorMessage(err)), err instanceof BakError && err.hint ? scrub(err.hint) : undefined)];
  }
}

async function stagingRoom(dir: string, fix: string, options: { kept?: boolean }, repo: Repository | undefined, sourceKey: string): Promise<DoctorCheck> {
  const name = 'staging';
  const resolved = path.resolve(dir);
  let existing = resolved;
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  let free: number;
  try {
    const st = await statfs(existing);
    free = st.bavail * st.bsize;
  } catch (err) {
    return warn(name, `could not be determined: cannot read the free space of ${existing} (${errorMessage(err)})`, fix);
  }
  const where = `${formatBytes(free)} free in ${dir}${existing !== resolved ? ` (on ${existing}'s file system)` : ''}`;
  if (!repo) return warn(name, `${where}; the last snapshot's size is unknown (its repository did not open)`);
  let last;
  try {
    last = await repo.latestSnapshot(sourceKey, 'complete');
  } catch (err) {
    return warn(name, `${where}; the last snapshot's size is unknown (${errorMessage(err)})`);
  }
  if (!last) return ok(name, `${where}; no complete snapshot yet to compare with`);
  const needed = last.totals.bytes;
  if (options.kept) return ok(name, `${where}; it keeps the previous run's output (the last complete snapshot ${last.id} held ${formatBytes(needed)}), so a run needs room for new data only`);
  if (free < needed) return warn(name, `only ${where}, less than the ${formatBytes(needed)} of the last complete snapshot ${last.id}`, fix);
  return ok(name, `${where}; the last complete snapshot ${last.id} held ${formatBytes(needed)}`);
}
