import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';

const run = promisify(execFile);

describe('postgres test server', () => {
  let env: ServersEnv['postgres'];
  let client: pg.Client | undefined;

  beforeAll(async () => {
    env = await requireServer('postgres');
    client = new pg.Client({ host: env.host, port: env.port, user: env.user, password: env.password, database: 'postgres' });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
  });

  it('answers a query over a password login', async () => {
    const result = await client!.query<{ answer: number; version: number }>(
      "SELECT 40 + 2 AS answer, current_setting('server_version_num')::int AS version",
    );
    expect(result.rows).toEqual([{ answer: 42, version: expect.any(Number) }]);
    expect(result.rows[0]!.version).toBeGreaterThanOrEqual(150000);
  });

  it('has pg_dump of major version 15 or later', async () => {
    const local = path.join(env.bin, 'pg_dump');
    const { stdout } = await run(existsSync(local) ? local : 'pg_dump', ['--version']);
    const match = /pg_dump \(PostgreSQL\) (\d+)/.exec(stdout);
    expect(match, `unexpected pg_dump --version output: ${stdout}`).not.toBeNull();
    expect(Number(match![1])).toBeGreaterThanOrEqual(15);
  });
});
