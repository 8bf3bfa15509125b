import type { Logger } from 'pino';
import type { z } from 'zod';
import type { DoctorCheck, EngineDoctorContext } from '../operations/doctor.ts';
import type { ProgressSink } from '../util/progress.ts';
import type { VerifyLevel, VerifyProblem } from '../repository/checker.ts';
import type { Manifest, ManifestItem } from '../repository/manifest.ts';
import type { Repository } from '../repository/repository.ts';
import type { SnapshotWriter } from '../repository/snapshot-writer.ts';

/** A parsed, validated source. `uri` is redacted; `secrets` are the values to scrub from any message. */
export interface Source {
  engine: string;
  uri: string;
  options: Record<string, unknown>;
  secrets: string[];
}

export interface EngineContext {
  repo: Repository;
  log: Logger;
  concurrency: number;
  signal?: AbortSignal;
  /** How far the engine is (items and bytes of the source, what it is on now); absent when nobody watches. */
  progress?: ProgressSink | undefined;
}

export interface BackupContext extends EngineContext {
  source: Source;
  writer: SnapshotWriter;
  /** The source's newest complete snapshot, for engines that back up incrementally. */
  parent: Manifest | undefined;
  /** What `startBackup` began for this backup, to take over: the engine then finishes it or cancels it. */
  early?: EarlyStart | undefined;
}

/**
 * The part of a backup that needs neither the repository nor its key (connecting, finding tools, starting a dump
 * into local staging), begun while the repository opens: an encrypted repository's key takes ~0.3 s to derive.
 */
export interface EarlyStart {
  /** The repository did not open, or the backup never began (a lock refused): stop what was started, remove what it left. */
  cancel(): Promise<void>;
}

export interface BackupResult {
  engineDetails: Record<string, unknown>;
  /** Set when the snapshot references data outside the repository (S3 versions, BigQuery copies …). */
  externalData?: boolean;
  /** For engines whose content lives in index entries rather than items: how many things, how many bytes. */
  totals?: { items: number; bytes: number };
}

export interface RestoreTarget {
  uri: string;
  options: Record<string, unknown>;
}

export interface RestoreReport {
  items: number;
  bytes: number;
  details: Record<string, unknown>;
}

/**
 * The seam every engine implements (DESIGN.md). An engine owns its client library, writes its data
 * through `ctx.writer`, and releases in `release` whatever it keeps outside the repository.
 */
export interface Engine {
  readonly name: string;
  readonly optionsSchema: z.ZodType<Record<string, unknown>>;
  /**
   * The next backup may build on a partial snapshot (it carries what that one finished and redoes what it deferred),
   * so a source too big for one run's quotas still completes over several runs. Default: complete parents only.
   */
  readonly resumesPartial?: boolean;
  parseSource(uri: string, options: unknown): Source;
  /**
   * Begins the backup's key-free work while the repository opens (see EarlyStart); given to `backup` as `ctx.early`.
   * Never rejects: what fails is reported by `backup`. Writes nothing to the repository.
   */
  startBackup?(source: Source, log: Logger): Promise<EarlyStart>;
  backup(ctx: BackupContext): Promise<BackupResult>;
  /** Checks beyond the repository's own (which every snapshot gets): e.g. that external versions still exist. */
  verify(ctx: EngineContext, manifest: Manifest, level: VerifyLevel): Promise<VerifyProblem[]>;
  restore(ctx: EngineContext, manifest: Manifest, target: RestoreTarget): Promise<RestoreReport>;
  release(ctx: EngineContext, manifest: Manifest): Promise<void>;
  /** How `bak show` names an item for an operator (a table rather than a dump's file id); else its name. */
  itemLabel?(item: ManifestItem): string;
  /** `bak export` in the engine's own interchange layout (else each item is written as a file of its name). */
  exportTo?(ctx: EngineContext, manifest: Manifest, directory: string): Promise<{ files: number; bytes: number }>;
  /** What a source URI holds that a backup could cover (databases, tables …), with sizes; for `bak sources`. */
  listSources?(uri: string, options: unknown): Promise<Array<{ name: string; sizeBytes: number; details?: Record<string, unknown> }>>;
  /** `bak doctor`: the source reachable with its credentials, the tools it needs present; room where it stages. Read-only. */
  doctor?(source: Source, ctx: EngineDoctorContext): Promise<DoctorCheck[]>;
}
