import { homedir } from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../../errors.ts';
import { redactUri } from '../../util/redact.ts';
import { describeZodError } from '../../util/validation.ts';
import type { Source } from '../engine.ts';

/** How to run Datomic's CLI: shared by source and restore-target options. */
export const datomicToolFields = {
  /** The path of bin/datomic; unset: $DATOMIC_HOME/bin/datomic. */
  datomicBin: z.string().min(1).optional(),
  /** JVM options passed before the command (-Xmx4g, -Ddatomic.s3BackupConcurrency=50 …). */
  jvmOptions: z.array(z.string().regex(/^-/, 'a JVM option starts with -')).default([]),
};

export const datomicOptionsSchema = z
  .object({
    ...datomicToolFields,
    /** -Ddatomic.backupPaceMsec: a pause between segment writes, so the storage database is not overloaded. */
    paceMsec: z.number().int().nonnegative().optional(),
    /** The local folder backup-db writes into, kept between runs so backup-db stays incremental. */
    staging: z.string().min(1).optional(),
    /** Start a new staging folder: segments no later snapshot lists become collectable once older snapshots go. */
    fresh: z.boolean().default(false),
    /** Re-base on a cadence: start a new staging folder when the current one is older than this many days. */
    freshEveryDays: z.number().positive().optional(),
    /** Segments stored at once. */
    jobs: z.number().int().positive().max(256).default(16),
  })
  .strict();
export type DatomicOptions = z.infer<typeof datomicOptionsSchema>;

export interface DatomicSource extends Source {
  /** The URI as given (with its password), for the tool only; `uri` is redacted. */
  options: DatomicOptions & { databaseUri: string };
}

const DATOMIC_URI = /^datomic:(sql|ddb|ddb-local|dev|free|cass|mem):\/\/\S+$/;

export function parseDatomicUri(uri: string): string {
  if (!DATOMIC_URI.test(uri)) throw new UsageError(`invalid Datomic URI ${JSON.stringify(redactUri(uri))}: use datomic:PROTOCOL://… (sql, ddb, dev, cass, free), e.g. datomic:dev://localhost:4334/app`);
  return uri;
}

/** The secrets a Datomic URI may carry: a SQL storage's password, or a user:password@ part. */
function secretsOf(uri: string): string[] {
  const found: string[] = [];
  for (const m of uri.matchAll(/[?&](?:password|pass|secret)=([^&#]+)/gi)) found.push(decodeURIComponent(m[1]!));
  const userInfo = /\/\/[^/@:?#]*:([^@/?#]+)@/.exec(uri);
  if (userInfo) found.push(userInfo[1]!);
  return found;
}

export function parseDatomicSource(uri: string, rawOptions: unknown): DatomicSource {
  const parsed = datomicOptionsSchema.safeParse(rawOptions ?? {});
  if (!parsed.success) throw new UsageError(`datomic options: ${describeZodError(parsed.error, rawOptions).replace(/\n/g, '; ')}`);
  parseDatomicUri(uri);
  return { engine: 'datomic', uri: redactUri(uri), options: { ...parsed.data, databaseUri: uri }, secrets: secretsOf(uri) };
}

/** Where bin/datomic is: the option, else $DATOMIC_HOME/bin/datomic. */
export function datomicBinOf(o: { datomicBin?: string | undefined }): string {
  if (o.datomicBin) return o.datomicBin;
  if (process.env.DATOMIC_HOME) return path.join(process.env.DATOMIC_HOME, 'bin', 'datomic');
  throw new UsageError('no bin/datomic: set the datomicBin option (--datomic-bin) or DATOMIC_HOME to a Datomic Pro distribution');
}

/** The default staging folder of a source: under $XDG_CACHE_HOME/bak/datomic, one per source key. */
export function defaultStaging(sourceKey: string): string {
  const cache = process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache');
  return path.join(cache, 'bak', 'datomic', sourceKey);
}
