import { randomUUID } from 'node:crypto';
import { BakError, ConfigError, UsageError } from '../errors.ts';
import { sourceMatches } from './source-key.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { isNotFound, StorageError } from '../storage/object-store.ts';
import { validateChunking } from '../util/chunker.ts';
import { redactUri } from '../util/redact.ts';
import { describeZodError } from '../util/validation.ts';
import { BAK_VERSION } from '../version.ts';
import { BlobStore } from './blobs.ts';
import { acquireLock, type Lock, type LockKind, type LockOptions } from './locks.ts';
import { manifestSchema, type Manifest } from './manifest.ts';
import {
  DEFAULT_REPOSITORY_SETTINGS,
  MARKER_KEY,
  markerHeaderSchema,
  markerSchema,
  READABLE_FORMAT_VERSIONS,
  REPOSITORY_FORMAT_VERSION,
  type RepositoryMarker,
  type RepositorySettings,
} from './marker.ts';
import { SnapshotWriter, type BeginSnapshotOptions } from './snapshot-writer.ts';

export const SNAPSHOTS_PREFIX = 'snapshots/';

export interface ManifestKey {
  key: string;
  id: string;
  sourceKey: string;
}

export type ListedSnapshot = (ManifestKey & { manifest: Manifest }) | (ManifestKey & { error: string });

export class ManifestUnreadableError extends BakError {
  constructor(key: string, why: string) {
    super(`manifest ${key} is unreadable: ${why}`);
  }
}

export interface OpenOptions {
  /** Uploads, downloads and checks in flight at once. */
  concurrency?: number;
}

/** The snapshot repository on any ObjectStore: marker, blobs, manifests, locks. Knows nothing of engines. */
export class Repository {
  readonly store: ObjectStore;
  readonly marker: RepositoryMarker;
  readonly blobs: BlobStore;
  readonly concurrency: number;

  private constructor(store: ObjectStore, marker: RepositoryMarker, options: OpenOptions) {
    this.store = store;
    this.marker = marker;
    this.concurrency = options.concurrency ?? 4;
    this.blobs = new BlobStore(store, { ...marker.settings, concurrency: this.concurrency });
  }

  get description(): string {
    return this.store.description;
  }

  static async init(store: ObjectStore, settings: RepositorySettings = DEFAULT_REPOSITORY_SETTINGS): Promise<Repository> {
    validateChunking(settings.chunking);
    await store.checkAccess();
    const marker: RepositoryMarker = {
      format: 'bak-repository',
      version: REPOSITORY_FORMAT_VERSION,
      id: randomUUID(),
      createdAt: new Date().toISOString(),
      createdBy: `bak ${BAK_VERSION}`,
      settings,
    };
    const { created } = await store.put(MARKER_KEY, Buffer.from(`${JSON.stringify(marker, null, 2)}\n`), { ifAbsent: true });
    if (!created) throw new UsageError(`a bak repository already exists at ${store.description}`);
    return new Repository(store, marker, {});
  }

  static async open(store: ObjectStore, options: OpenOptions = {}): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await store.getBuffer(MARKER_KEY);
    } catch (err) {
      if (isNotFound(err)) {
        throw new UsageError(`no bak repository at ${store.description}`, { hint: `create one with: bak init ${store.description.split(' ')[0]}` });
      }
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ConfigError(`${store.description}/${MARKER_KEY} is not valid JSON`);
    }
    const header = markerHeaderSchema.safeParse(json);
    if (!header.success) throw new ConfigError(`${store.description}/${MARKER_KEY} is not a bak repository marker:\n${describeZodError(header.error, json)}`);
    if (!READABLE_FORMAT_VERSIONS.includes(header.data.version)) {
      throw new ConfigError(
        `repository format version ${header.data.version} at ${store.description} is not supported by bak ${BAK_VERSION} (it reads versions ${READABLE_FORMAT_VERSIONS.join(' and ')})`,
        { hint: header.data.version > REPOSITORY_FORMAT_VERSION ? 'upgrade bak' : undefined },
      );
    }
    const marker = markerSchema.safeParse(json);
    if (!marker.success) throw new ConfigError(`${store.description}/${MARKER_KEY} is malformed:\n${describeZodError(marker.error, json)}`);
    return new Repository(store, marker.data, options);
  }

  lock(kind: LockKind, options?: LockOptions): Promise<Lock> {
    return acquireLock(this.store, kind, options);
  }

  /** Starts a snapshot under a shared lock; nothing is visible until `commit` writes the manifest. */
  async beginSnapshot(options: BeginSnapshotOptions): Promise<SnapshotWriter> {
    const lock = await this.lock('shared', { command: `backup ${redactUri(options.source)}`, waitMs: options.lockWaitMs ?? 0 });
    return new SnapshotWriter(this, lock, options);
  }

  async writeManifest(manifest: Manifest): Promise<string> {
    const checked = manifestSchema.parse(manifest);
    const key = manifestKey(checked.sourceKey, checked.id);
    const { created } = await this.store.put(key, Buffer.from(`${JSON.stringify(checked)}\n`), { ifAbsent: true });
    if (!created) throw new BakError(`snapshot ${checked.id} already exists`);
    return key;
  }

  /** Manifest keys, streamed in key order (per source, then by time); of one source only, given its key. */
  async *listManifestKeys(sourceKey?: string): AsyncGenerator<ManifestKey> {
    for await (const obj of this.store.list(sourceKey === undefined ? SNAPSHOTS_PREFIX : `${SNAPSHOTS_PREFIX}${sourceKey}/`)) {
      const parsed = parseManifestKey(obj.key);
      if (parsed) yield parsed;
    }
  }

  async readManifest(key: string): Promise<Manifest> {
    let raw: Buffer;
    try {
      raw = await this.store.getBuffer(key);
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'not-found') throw new ManifestUnreadableError(key, 'it no longer exists');
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ManifestUnreadableError(key, `not valid JSON (${raw.length} bytes; truncated or corrupt?)`);
    }
    const parsed = manifestSchema.safeParse(json);
    if (!parsed.success) throw new ManifestUnreadableError(key, describeZodError(parsed.error, json).replace(/\n/g, '; '));
    return parsed.data;
  }

  /** Every snapshot (of one source, given its key) with its manifest, or the reason its manifest cannot be read; one bad manifest hides no other. */
  async *listSnapshots(sourceKey?: string): AsyncGenerator<ListedSnapshot> {
    for await (const entry of this.listManifestKeys(sourceKey)) {
      try {
        yield { ...entry, manifest: await this.readManifest(entry.key) };
      } catch (err) {
        if (!(err instanceof ManifestUnreadableError)) throw err;
        yield { ...entry, error: err.message };
      }
    }
  }

  /** The newest readable snapshot of one source with the given status, if any. */
  async latestSnapshot(sourceKey: string, status: Manifest['status'] | ReadonlyArray<Manifest['status']>): Promise<Manifest | undefined> {
    const statuses: ReadonlyArray<Manifest['status']> = typeof status === 'string' ? [status] : status;
    // Keys of one source are few and sort by time to the second; read manifests newest first until one fits, and the
    // rest of its second (ids of one second sort by their random part): the latest start wins.
    const keys: ManifestKey[] = [];
    for await (const entry of this.listManifestKeys(sourceKey)) keys.push(entry);
    let best: Manifest | undefined;
    for (const { key, id } of keys.reverse()) {
      if (best && id.slice(0, SECOND_PREFIX) !== best.id.slice(0, SECOND_PREFIX)) break;
      try {
        const manifest = await this.readManifest(key);
        if (statuses.includes(manifest.status) && (!best || manifest.startedAt > best.startedAt)) best = manifest;
      } catch (err) {
        if (!(err instanceof ManifestUnreadableError)) throw err;
      }
    }
    return best;
  }

  /**
   * The snapshot a restore "as of" a time wants: the newest complete or partial snapshot of one source (named as
   * `sourceMatches` takes it) that started at or before `at`. Two sources matching the name is ambiguous.
   */
  async snapshotAsOf(source: string, at: Date): Promise<Manifest> {
    let best: Manifest | undefined;
    const keys = new Set<string>();
    for await (const entry of this.listSnapshots()) {
      if ('error' in entry || !sourceMatches(entry.manifest, source)) continue;
      const m = entry.manifest;
      keys.add(m.sourceKey);
      if (m.status === 'failed' || Date.parse(m.startedAt) > at.getTime()) continue;
      if (!best || m.startedAt > best.startedAt) best = m;
    }
    if (keys.size > 1) throw new UsageError(`"${source}" names ${keys.size} sources (${[...keys].sort().join(', ')}): give the whole source URI or its source key`);
    if (keys.size === 0) throw new UsageError(`no snapshot of a source matching "${source}" in ${this.description}`);
    if (!best) throw new UsageError(`no snapshot of "${source}" was taken at or before ${at.toISOString()}`);
    return best;
  }

  /** Finds a snapshot by full id or unique prefix. */
  async resolveSnapshot(idOrPrefix: string): Promise<{ key: string; manifest: Manifest }> {
    if (idOrPrefix.trim() === '') throw new UsageError('empty snapshot id');
    const matches: ManifestKey[] = [];
    for await (const entry of this.listManifestKeys()) {
      if (entry.id.startsWith(idOrPrefix)) matches.push(entry);
      if (matches.length > 10) break;
    }
    if (matches.length === 0) throw new UsageError(`no snapshot matches "${idOrPrefix}" in ${this.description}`);
    const exact = matches.find((m) => m.id === idOrPrefix);
    if (!exact && matches.length > 1) {
      throw new UsageError(`snapshot id "${idOrPrefix}" is ambiguous: it matches ${matches.map((m) => m.id).join(', ')}${matches.length > 10 ? ', …' : ''}`);
    }
    const match = exact ?? matches[0]!;
    return { key: match.key, manifest: await this.readManifest(match.key) };
  }
}

/** A snapshot id's time part, `YYYY-MM-DDTHH-MM-SSZ`: ids of one second share it. */
const SECOND_PREFIX = 20;

export function manifestKey(sourceKey: string, id: string): string {
  return `${SNAPSHOTS_PREFIX}${sourceKey}/${id}.json`;
}

function parseManifestKey(key: string): ManifestKey | undefined {
  const match = /^snapshots\/([^/]+)\/([^/]+)\.json$/.exec(key);
  return match ? { key, sourceKey: match[1]!, id: match[2]! } : undefined;
}
