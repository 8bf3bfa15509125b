import { hostname } from 'node:os';
import type { ByteSource } from '../util/chunker.ts';
import { newSnapshotId } from '../util/ids.ts';
import { redactUri } from '../util/redact.ts';
import { BAK_VERSION } from '../version.ts';
import type { BlobStats, HashedChunk, StreamedContent } from './blobs.ts';
import { IndexWriter, type IndexRef } from './index-blobs.ts';
import type { Lock } from './locks.ts';
import type { Manifest, ManifestItem, SnapshotStatus } from './manifest.ts';
import type { Repository } from './repository.ts';
import { sourceKeyOf } from './source-key.ts';

export interface BeginSnapshotOptions {
  engine: string;
  /** The source URI; redacted again here so no caller can leak a password into a manifest. */
  source: string;
  job?: string | null;
  parent?: string | null;
  tags?: string[];
  now?: Date;
  /** Wait this long for a gc holding the repository (default: fail at once). */
  lockWaitMs?: number;
}

export interface ItemInfo {
  name: string;
  kind: string;
  rows?: number;
  details?: Record<string, unknown>;
}

/**
 * Collects what one backup writes. Blobs land as they come; the manifest that makes the snapshot
 * visible is written by `commit`, last, so a crash at any earlier point leaves nothing to see.
 */
export class SnapshotWriter {
  readonly id: string;
  readonly engine: string;
  readonly source: string;
  readonly sourceKey: string;
  private readonly repo: Repository;
  private readonly lock: Lock;
  private readonly options: BeginSnapshotOptions;
  private readonly startedAt: Date;
  private readonly statsAtStart: BlobStats;
  private readonly items: ManifestItem[] = [];
  private readonly indexes: IndexRef[] = [];
  private readonly failures: Array<{ item: string; error: string }> = [];
  private done = false;

  constructor(repo: Repository, lock: Lock, options: BeginSnapshotOptions) {
    this.repo = repo;
    this.lock = lock;
    this.options = options;
    this.startedAt = options.now ?? new Date();
    this.id = newSnapshotId(this.startedAt);
    this.engine = options.engine;
    this.source = redactUri(options.source);
    this.sourceKey = sourceKeyOf(options.engine, this.source);
    this.statsAtStart = { ...repo.blobs.stats };
  }

  /**
   * Streams one item's content into blobs and records it. `info` is read once the content is consumed,
   * so an engine may fill in what it learns from the data itself (row counts, digests) while streaming.
   */
  addItem(info: ItemInfo, content: ByteSource): Promise<ManifestItem> {
    this.assertOpen();
    return this.record(info, this.repo.blobs.writeStream(content));
  }

  /** `addItem` for content the engine has cut into chunks and hashed itself (BlobStore.writeChunks). */
  addChunkedItem(info: ItemInfo, chunks: AsyncIterable<HashedChunk>): Promise<ManifestItem> {
    this.assertOpen();
    return this.record(info, this.repo.blobs.writeChunks(chunks));
  }

  private async record(info: ItemInfo, writing: Promise<StreamedContent>): Promise<ManifestItem> {
    const written = await writing;
    const item: ManifestItem = { ...info, bytes: written.size, checksum: written.checksum, blobs: written.blobs };
    this.items.push(item);
    return item;
  }

  /** Records an item whose blobs already exist (e.g. carried over unchanged from the parent snapshot). */
  addExistingItem(item: ManifestItem): void {
    this.assertOpen();
    this.items.push(item);
  }

  openIndex(name: string): IndexWriter {
    this.assertOpen();
    return new IndexWriter(this.repo.blobs, name, this.repo.concurrency);
  }

  async closeIndex(writer: IndexWriter): Promise<IndexRef> {
    const ref = await writer.finish();
    this.indexes.push(ref);
    return ref;
  }

  recordFailure(item: string, error: string): void {
    this.failures.push({ item, error });
  }

  /** Writes the manifest (the moment the snapshot becomes visible) and releases the lock. */
  async commit(
    options: { status?: SnapshotStatus; engineDetails?: Record<string, unknown>; externalData?: boolean; totals?: { items: number; bytes: number } } = {},
  ): Promise<Manifest> {
    this.assertOpen();
    this.lock.assertHeld();
    const stats = this.repo.blobs.stats;
    const storedBytes =
      this.items.reduce((sum, item) => sum + item.blobs.reduce((s, b) => s + b.stored, 0), 0) +
      this.indexes.reduce((sum, index) => sum + index.blobs.reduce((s, b) => s + b.stored, 0), 0);
    const rows = this.items.some((i) => i.rows !== undefined) ? this.items.reduce((sum, i) => sum + (i.rows ?? 0), 0) : undefined;
    const manifest: Manifest = {
      formatVersion: 1,
      id: this.id,
      engine: this.engine,
      source: this.source,
      sourceKey: this.sourceKey,
      job: this.options.job ?? null,
      host: hostname(),
      bakVersion: BAK_VERSION,
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      status: options.status ?? (this.failures.length > 0 ? 'partial' : 'complete'),
      parent: this.options.parent ?? null,
      tags: this.options.tags ?? [],
      items: this.items,
      indexes: this.indexes,
      failures: this.failures,
      engineDetails: options.engineDetails ?? {},
      externalData: options.externalData ?? false,
      totals: {
        items: this.items.length + (options.totals?.items ?? 0),
        bytes: this.items.reduce((sum, i) => sum + i.bytes, 0) + (options.totals?.bytes ?? 0),
        storedBytes,
        newBytes: stats.bytesWritten - this.statsAtStart.bytesWritten,
        ...(rows === undefined ? {} : { rows }),
      },
    };
    await this.repo.writeManifest(manifest);
    this.done = true;
    await this.lock.release();
    return manifest;
  }

  /** Gives up: releases the lock; blobs already written stay unreferenced until gc prunes them. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.lock.release();
  }

  private assertOpen(): void {
    if (this.done) throw new Error(`snapshot ${this.id} is already committed or aborted`);
  }
}
