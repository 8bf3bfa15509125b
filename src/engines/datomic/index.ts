import type { Engine } from '../engine.ts';
import { datomicOptionsSchema, parseDatomicSource, type DatomicSource } from './source.ts';

const backup = () => import('./backup.ts');
const restore = () => import('./restore.ts');

/**
 * Datomic: bin/datomic backup-db into a staging folder kept between runs, then only the segments the parent snapshot
 * lacks stored in the repository (segments are immutable; the rest are carried by reference), with the owner and the
 * new root. Restores materialise the backup folder and run restore-db at the snapshot's t.
 */
export const datomicEngine: Engine = {
  name: 'datomic',
  optionsSchema: datomicOptionsSchema,
  parseSource: parseDatomicSource,
  backup: async (ctx) => (await backup()).backupDatomic({ ...ctx, source: ctx.source as DatomicSource }),
  // Everything is in the repository: the checker reads every segment's blobs; verify --level restore runs verify-backup.
  verify: async () => [],
  restore: async (ctx, manifest, target) => (await restore()).restoreDatomic(ctx, manifest, target),
  release: async () => {},
  doctor: async (source, ctx) => (await import('./doctor.ts')).doctorDatomic(source as DatomicSource, ctx),
  exportTo: async (ctx, manifest, dir) => (await restore()).exportDatomic(ctx, manifest, dir),
};
