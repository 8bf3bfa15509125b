import { z } from 'zod';
import type { ProgressSink } from '../util/progress.ts';
import { isNotFound } from '../storage/object-store.ts';
import { mapLimit } from '../util/concurrency.ts';
import { newSha256, sha256Hex } from '../util/hash.ts';
import { BLOB_LIST_CHECKSUM, BlobCorruptError, blobRefSchema, contentChecksum, WHOLE_CHECKSUM, type BlobRef } from './blobs.ts';
import { readIndex } from './index-blobs.ts';
import type { Manifest } from './manifest.ts';
import type { Repository } from './repository.ts';

export type VerifyLevel = 'blobs' | 'data';

export interface VerifyProblem {
  /** What the problem is about: an item, an index entry or the snapshot itself. */
  where: string;
  blob?: string;
  problem: string;
}

export interface VerifyReport {
  snapshot: string;
  level: VerifyLevel;
  ok: boolean;
  blobsChecked: number;
  bytesChecked: number;
  problems: VerifyProblem[];
}

// Index entries that carry their own content (S3 objects, files) reference it this way.
const entryWithBlobs = z.object({ blobs: z.array(blobRefSchema), checksum: z.string().optional() }).loose();

/**
 * Trusts nothing it has not re-read. `blobs`: every referenced blob exists with its stored size.
 * `data`: every blob is read back, decompressed and hashed, and each item's whole checksum recomputed.
 * Results per blob are shared across snapshots of one run, so a blob many snapshots use is read once.
 */
export class Checker {
  private readonly repo: Repository;
  private readonly level: VerifyLevel;
  private readonly seen = new Map<string, Promise<string | undefined>>();
  private readonly seenContent = new Map<string, Promise<Array<Omit<VerifyProblem, 'where'>>>>();

  private readonly progress: ProgressSink | undefined;

  constructor(repo: Repository, level: VerifyLevel, progress?: ProgressSink) {
    this.repo = repo;
    this.level = level;
    this.progress = progress;
  }

  async verify(manifest: Manifest): Promise<VerifyReport> {
    const report: VerifyReport = { snapshot: manifest.id, level: this.level, ok: true, blobsChecked: 0, bytesChecked: 0, problems: [] };
    const add = (p: VerifyProblem) => {
      report.ok = false;
      report.problems.push(p);
    };

    for (const item of manifest.items) {
      await this.checkContent(`item ${item.name}`, item.blobs, item.checksum, item.bytes, report, add);
    }
    for (const index of manifest.indexes) {
      const indexOk = await this.checkBlobs(`index ${index.name}`, index.blobs, report, add);
      if (!indexOk) continue;
      let count = 0;
      try {
        for await (const entry of readIndex(this.repo.blobs, index)) {
          count++;
          const parsed = entryWithBlobs.safeParse(entry);
          if (!parsed.success) continue;
          const name = String((entry as Record<string, unknown>).key ?? (entry as Record<string, unknown>).name ?? `#${count}`);
          const size = parsed.data.blobs.reduce((s, b) => s + b.size, 0);
          await this.checkContent(`${index.name} entry ${name}`, parsed.data.blobs, parsed.data.checksum, size, report, add);
        }
        if (count !== index.count) add({ where: `index ${index.name}`, problem: `holds ${count} entries, manifest says ${index.count}` });
      } catch (err) {
        add({ where: `index ${index.name}`, problem: (err as Error).message });
      }
    }
    return report;
  }

  private async checkContent(
    where: string,
    blobs: readonly BlobRef[],
    checksum: string | undefined,
    bytes: number,
    report: VerifyReport,
    add: (p: VerifyProblem) => void,
  ): Promise<void> {
    const total = blobs.reduce((s, b) => s + b.size, 0);
    if (total !== bytes) add({ where, problem: `blobs add up to ${total} bytes, expected ${bytes}` });
    if (this.level === 'blobs' || !(checksum?.startsWith(WHOLE_CHECKSUM) || checksum?.startsWith(BLOB_LIST_CHECKSUM))) {
      await this.checkBlobs(where, blobs, report, add);
      this.progress?.advance(1, bytes);
      return;
    }
    // Data level: read the blobs in order (a window of them in flight), checking each against its
    // name and the whole against the item's checksum. An unchanged item shared by many snapshots is read once.
    const contentKey = `${checksum}:${sha256Hex(blobs.map((b) => b.id).join(','))}`;
    let result = this.seenContent.get(contentKey);
    if (!result) {
      result = this.readContent(blobs, checksum, report);
      this.seenContent.set(contentKey, result);
    }
    for (const problem of await result) add({ where, ...problem });
    // Logical bytes, as the snapshot's totals count them: content shared with a snapshot checked before counts as checked.
    this.progress?.advance(1, bytes);
  }

  private async readContent(blobs: readonly BlobRef[], checksum: string, report: VerifyReport): Promise<Array<Omit<VerifyProblem, 'where'>>> {
    const problems: Array<Omit<VerifyProblem, 'where'>> = [];
    // Each blob is checked against its name as it is read; an older snapshot's whole-content checksum
    // also needs the bytes hashed end to end, a blob-list one only the names.
    const hash = checksum.startsWith(BLOB_LIST_CHECKSUM) || blobs.length <= 1 ? null : newSha256();
    const window: Array<Promise<Buffer | string>> = [];
    const fetch = (ref: BlobRef) => {
      report.blobsChecked++;
      report.bytesChecked += ref.stored;
      return this.repo.blobs.get(ref).catch((err: unknown) => describeBlobError(err));
    };
    for (let i = 0; i < Math.min(this.repo.concurrency, blobs.length); i++) window.push(fetch(blobs[i]!));
    for (let i = 0; i < blobs.length; i++) {
      let data: Buffer | string;
      try {
        data = await window.shift()!;
      } catch (err) {
        for (const pending of window) pending.catch(() => undefined);
        throw err;
      }
      const ahead = i + this.repo.concurrency;
      if (ahead < blobs.length) window.push(fetch(blobs[ahead]!));
      if (typeof data === 'string') problems.push({ blob: blobs[i]!.id, problem: data });
      else hash?.update(data);
    }
    const actual = hash ? `${WHOLE_CHECKSUM}${hash.digest('hex')}` : contentChecksum(blobs);
    if (problems.length === 0 && actual !== checksum) problems.push({ problem: `content checksum is ${actual}, manifest says ${checksum}` });
    return problems;
  }

  /** Checks each blob once per run; returns whether all were sound. */
  private async checkBlobs(where: string, blobs: readonly BlobRef[], report: VerifyReport, add: (p: VerifyProblem) => void): Promise<boolean> {
    const results = await mapLimit(blobs, this.repo.concurrency, async (ref) => {
      const cacheKey = `${ref.id}:${ref.size}:${ref.stored}`;
      let result = this.seen.get(cacheKey);
      if (!result) {
        result = this.checkBlob(ref);
        this.seen.set(cacheKey, result);
        report.blobsChecked++;
        report.bytesChecked += ref.stored;
      }
      return { ref, problem: await result };
    });
    let ok = true;
    for (const { ref, problem } of results) {
      if (problem) {
        ok = false;
        add({ where, blob: ref.id, problem });
      }
    }
    return ok;
  }

  private async checkBlob(ref: BlobRef): Promise<string | undefined> {
    try {
      if (this.level === 'blobs') {
        const found = await this.repo.blobs.exists(ref);
        return found.ok ? undefined : found.problem;
      }
      await this.repo.blobs.get(ref);
      return undefined;
    } catch (err) {
      return describeBlobError(err);
    }
  }
}

/** A missing or corrupt blob is a finding; anything else (network, permissions) aborts the check. */
function describeBlobError(err: unknown): string {
  if (isNotFound(err)) return 'missing';
  if (err instanceof BlobCorruptError) return err.message.replace(/^blob \S+ is corrupt: /, 'corrupt: ');
  throw err;
}
