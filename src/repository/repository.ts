import { randomBytes, randomUUID } from 'node:crypto';
import { BakError, ConfigError, ExitCode, UsageError } from '../errors.ts';
import { sourceMatches } from './source-key.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { isNotFound, StorageError } from '../storage/object-store.ts';
import { validateChunking } from '../util/chunker.ts';
import { redactUri } from '../util/redact.ts';
import { describeZodError } from '../util/validation.ts';
import { BAK_VERSION } from '../version.ts';
import { BlobStore } from './blobs.ts';
import { ENVELOPE_OVERHEAD } from './encryption/envelope.ts';
import { deleteSlot, readSlots, slotFields, writeSlot, type KeySlot } from './encryption/key-slots.ts';
import type { KeySource } from './encryption/key-source.ts';
import { keyCheck, newMasterKey, RepositoryKeys } from './encryption/keys.ts';
import { SealedObjectError, SealedStore } from './encryption/sealed-store.ts';
import { unlockMasterKey } from './encryption/unlock.ts';
import { acquireLock, type Lock, type LockKind, type LockOptions } from './locks.ts';
import { manifestSchema, type Manifest } from './manifest.ts';
import {
  DEFAULT_REPOSITORY_SETTINGS,
  ENCRYPTED_FORMAT_VERSION,
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
  /** The folder of the source's manifests: its source key, or in an encrypted repository a keyed name for it (`sourceFolder`). */
  folder: string;
}

export type ListedSnapshot = (ManifestKey & { manifest: Manifest }) | (ManifestKey & { error: string });

/** A manifest that cannot be read: corrupt (altered, truncated, malformed: exit 3, as a corrupt blob) or gone since it was listed. */
export class ManifestUnreadableError extends BakError {
  constructor(key: string, why: string, exitCode: ExitCode = ExitCode.mismatch) {
    super(`manifest ${key} is unreadable: ${why}`, exitCode);
  }
}

export interface OpenOptions {
  /** Uploads, downloads and checks in flight at once. */
  concurrency?: number;
  /** What may open an encrypted repository (tried in order); a plain repository needs none. */
  keys?: readonly KeySource[];
  /**
   * The config says this repository is encrypted: a plain marker is then refused rather than written into, since a
   * marker replaced by a plain one would otherwise turn the next backups into plaintext.
   */
  expectEncrypted?: boolean;
}

/** An open encrypted repository's keys, and the slot they came from. */
interface Unlocked {
  keys: RepositoryKeys;
  master: Buffer;
  slot: KeySlot;
  source: KeySource;
}

/** The snapshot repository on any ObjectStore: marker, blobs, manifests, locks. Knows nothing of engines. */
export class Repository {
  /** Where the repository's objects go: in an encrypted repository, a SealedStore that seals each one. */
  readonly store: ObjectStore;
  readonly marker: RepositoryMarker;
  readonly blobs: BlobStore;
  readonly concurrency: number;
  /** The bucket or folder itself: the marker and key slots, which are not sealed. */
  private readonly plainStore: ObjectStore;
  private readonly unlocked: Unlocked | undefined;

  private constructor(store: ObjectStore, marker: RepositoryMarker, options: OpenOptions, unlocked?: Unlocked) {
    this.plainStore = store;
    this.unlocked = unlocked;
    this.store = unlocked ? new SealedStore(store, unlocked.keys.data, marker.id) : store;
    this.marker = marker;
    this.concurrency = options.concurrency ?? 4;
    const naming = unlocked ? (id: string) => unlocked.keys.blobName(id) : undefined;
    this.blobs = new BlobStore(this.store, { ...marker.settings, concurrency: this.concurrency, naming, envelopeBytes: unlocked ? ENVELOPE_OVERHEAD : 0 });
  }

  get description(): string {
    return this.store.description;
  }

  get encrypted(): boolean {
    return this.marker.encryption !== undefined;
  }

  /** The key slot and source this session opened the repository with (encrypted repositories only). */
  get openedWith(): { slot: KeySlot; source: KeySource } | undefined {
    return this.unlocked && { slot: this.unlocked.slot, source: this.unlocked.source };
  }

  /**
   * Creates the repository; with key sources, an encrypted one: a new master key wrapped by each source into a slot
   * of its own. Every wrap happens before anything is written (a KMS that refuses leaves nothing behind), the slots
   * before the marker (a repository is never visible without its keys).
   */
  static async init(store: ObjectStore, settings: RepositorySettings = DEFAULT_REPOSITORY_SETTINGS, keys: readonly KeySource[] = []): Promise<Repository> {
    validateChunking(settings.chunking);
    await store.checkAccess();
    if (await store.head(MARKER_KEY)) throw new UsageError(`a bak repository already exists at ${store.description}`);
    const id = randomUUID();
    const master = keys.length > 0 ? newMasterKey() : undefined;
    const marker: RepositoryMarker = {
      format: 'bak-repository',
      version: master ? ENCRYPTED_FORMAT_VERSION : REPOSITORY_FORMAT_VERSION,
      id,
      createdAt: new Date().toISOString(),
      createdBy: `bak ${BAK_VERSION}`,
      settings,
      ...(master ? { encryption: { cipher: 'aes-256-gcm', blobNames: 'hmac-sha256', keyCheck: keyCheck(master, id) } as const } : {}),
    };
    const slots: KeySlot[] = [];
    for (const source of keys) slots.push(await wrapInSlot(source, master!, id));
    for (const [i, slot] of slots.entries()) {
      try {
        await writeSlot(store, slot);
      } catch (err) {
        await Promise.allSettled(slots.slice(0, i).map((s) => deleteSlot(store, s.id)));
        throw err;
      }
    }
    const { created } = await store.put(MARKER_KEY, Buffer.from(`${JSON.stringify(marker, null, 2)}\n`), { ifAbsent: true });
    if (!created) {
      await Promise.allSettled(slots.map((s) => deleteSlot(store, s.id)));
      throw new UsageError(`a bak repository already exists at ${store.description}`);
    }
    const unlocked = master ? { keys: new RepositoryKeys(master, id), master, slot: slots[0]!, source: keys[0]! } : undefined;
    return new Repository(store, marker, {}, unlocked);
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
    const encryption = marker.data.encryption;
    if (!encryption) {
      if (options.expectEncrypted) {
        throw new ConfigError(`the repository at ${store.description} is not encrypted, but its config gives encryption keys: bak will not write plaintext into it`, {
          hint: `if the repository was created plain, remove "encryption" from its config; if it was created encrypted, its ${MARKER_KEY} has been replaced`,
        });
      }
      return new Repository(store, marker.data, options);
    }
    const { master, slot, source } = await unlockMasterKey(store, marker.data.id, encryption, options.keys ?? []);
    return new Repository(store, marker.data, options, { keys: new RepositoryKeys(master, marker.data.id), master, slot, source });
  }

  /** The key slots (encrypted repositories), and any that cannot be read. */
  keySlots(): Promise<{ slots: KeySlot[]; unreadable: Array<{ key: string; problem: string }> }> {
    return readSlots(this.plainStore);
  }

  /** Wraps the master key with one more source, in a new slot; no data is rewritten. */
  async addKeySlot(source: KeySource): Promise<KeySlot> {
    const unlocked = this.requireUnlocked();
    const slot = await wrapInSlot(source, unlocked.master, this.marker.id);
    await writeSlot(this.plainStore, slot);
    return slot;
  }

  /**
   * Removes a slot; never the last readable one, nor the one this session opened with (open with another key to remove
   * it) unless this session added the slot that replaces it (`bak key passwd`).
   */
  async removeKeySlot(id: string, options: { replacedBy?: string } = {}): Promise<void> {
    const unlocked = this.requireUnlocked();
    const { slots } = await this.keySlots();
    if (!slots.some((s) => s.id === id)) throw new UsageError(`no key slot ${id} in ${this.description}`);
    if (slots.length === 1) throw new UsageError(`slot ${id} is the repository's last key: removing it would lose every snapshot`, { hint: 'add another key first (bak key add)' });
    if (unlocked.slot.id === id && !(options.replacedBy && slots.some((s) => s.id === options.replacedBy))) throw new UsageError(`slot ${id} is the key this command opened the repository with`, { hint: 'open the repository with another key to remove this one (or use bak key passwd to change a passphrase)' });
    await deleteSlot(this.plainStore, id);
  }

  private requireUnlocked(): Unlocked {
    if (!this.unlocked) throw new UsageError(`the repository at ${this.description} is not encrypted: it has no keys`, { hint: 'an encrypted repository is made by bak init with a key source; data cannot be encrypted in place' });
    return this.unlocked;
  }

  /** The folder a source's manifests sit in: its source key, or in an encrypted repository a name that hides it. */
  sourceFolder(sourceKey: string): string {
    return this.unlocked ? this.unlocked.keys.sourceFolder(sourceKey) : sourceKey;
  }

  manifestKey(sourceKey: string, id: string): string {
    return `${SNAPSHOTS_PREFIX}${this.sourceFolder(sourceKey)}/${id}.json`;
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
    const key = this.manifestKey(checked.sourceKey, checked.id);
    const { created } = await this.store.put(key, Buffer.from(`${JSON.stringify(checked)}\n`), { ifAbsent: true });
    if (!created) throw new BakError(`snapshot ${checked.id} already exists`);
    return key;
  }

  /** Manifest keys, streamed in key order (per source, then by time); of one source only, given its key. */
  async *listManifestKeys(sourceKey?: string): AsyncGenerator<ManifestKey> {
    for await (const obj of this.store.list(sourceKey === undefined ? SNAPSHOTS_PREFIX : `${SNAPSHOTS_PREFIX}${this.sourceFolder(sourceKey)}/`)) {
      const parsed = parseManifestKey(obj.key);
      if (parsed) yield parsed;
    }
  }

  async readManifest(key: string): Promise<Manifest> {
    let raw: Buffer;
    try {
      raw = await this.store.getBuffer(key);
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'not-found') throw new ManifestUnreadableError(key, 'it no longer exists', ExitCode.failed);
      if (err instanceof SealedObjectError) throw new ManifestUnreadableError(key, err.problem);
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

function parseManifestKey(key: string): ManifestKey | undefined {
  const match = /^snapshots\/([^/]+)\/([^/]+)\.json$/.exec(key);
  return match ? { key, folder: match[1]!, id: match[2]! } : undefined;
}

async function wrapInSlot(source: KeySource, master: Buffer, repositoryId: string): Promise<KeySlot> {
  const id = randomBytes(8).toString('hex');
  let secret;
  try {
    secret = await source.wrap(master, repositoryId, id);
  } catch (err) {
    throw new UsageError(`cannot wrap the repository key with the ${source.label}: ${(err as Error).message}`);
  }
  return slotFields(id, secret);
}
