import type { Engine } from '../engine.ts';
import { parsePostgresSource, postgresOptionsSchema, type PostgresSource } from './source.ts';

// The pg driver and the dump/restore code load only when a PostgreSQL source is really used.
const backup = () => import('./backup.ts');
const restore = () => import('./restore.ts');
const connection = () => import('./connection.ts');

/** PostgreSQL: pg_dump directory-format dumps per database plus globals, restores proven by per-table digests. */
export const postgresEngine: Engine = {
  name: 'postgres',
  optionsSchema: postgresOptionsSchema,
  parseSource: parsePostgresSource,
  // Connecting, finding pg_dump and starting the first database's dump need no repository key.
  startBackup: async (source, log) => new (await backup()).PostgresBackupStart(source as PostgresSource, log),
  backup: async (ctx) => (await backup()).backupPostgres({ ...ctx, source: ctx.source as PostgresSource }),
  // Everything a PostgreSQL snapshot holds is in the repository: the repository checker covers blobs and data;
  // `bak verify --level restore` proves the dump restores.
  verify: async () => [],
  restore: async (ctx, manifest, target) => (await restore()).restorePostgres(ctx, manifest, target),
  // Nothing is kept outside the repository.
  release: async () => {},
  doctor: async (source, ctx) => (await import('./doctor.ts')).doctorPostgres(source as PostgresSource, ctx),
  // A table's data file (bak_demo/3341.dat) as the table it holds: bak_demo: public.orders. The file id stays in --json.
  itemLabel(item) {
    const d = item.details as { database?: unknown; schema?: unknown; table?: unknown } | undefined;
    if (typeof d?.table !== 'string' || d.table === '') return item.name;
    return `${String(d.database ?? '')}: ${d.schema ? `${String(d.schema)}.` : ''}${d.table}`;
  },
  async listSources(uri, options) {
    const source = parsePostgresSource(uri, options);
    const { connect, listDatabases } = await connection();
    const client = await connect(source.options.connection, source.options.connection.database ?? 'postgres');
    try {
      return (await listDatabases(client)).map((d) => ({ name: d.name, sizeBytes: d.sizeBytes, details: { encoding: d.encoding, collate: d.collate } }));
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};
