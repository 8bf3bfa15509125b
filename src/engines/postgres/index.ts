import type { Engine } from '../engine.ts';
import { backupPostgres } from './backup.ts';
import { connect, listDatabases } from './connection.ts';
import { restorePostgres } from './restore.ts';
import { parsePostgresSource, postgresOptionsSchema, type PostgresSource } from './source.ts';

/** PostgreSQL: pg_dump directory-format dumps per database plus globals, restores proven by per-table digests. */
export const postgresEngine: Engine = {
  name: 'postgres',
  optionsSchema: postgresOptionsSchema,
  parseSource: parsePostgresSource,
  backup: (ctx) => backupPostgres({ ...ctx, source: ctx.source as PostgresSource }),
  // Everything a PostgreSQL snapshot holds is in the repository: the repository checker covers blobs and data;
  // `bak verify --level restore` proves the dump restores.
  verify: async () => [],
  restore: restorePostgres,
  // Nothing is kept outside the repository.
  release: async () => {},
  async listSources(uri, options) {
    const source = parsePostgresSource(uri, options);
    const client = await connect(source.options.connection, source.options.connection.database ?? 'postgres');
    try {
      return (await listDatabases(client)).map((d) => ({ name: d.name, sizeBytes: d.sizeBytes, details: { encoding: d.encoding, collate: d.collate } }));
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};
