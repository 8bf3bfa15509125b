import { randomBytes } from 'node:crypto';
import { BigQuery, type Dataset } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireServer } from '../helpers/servers.ts';

describe('bigquery-emulator test server', () => {
  const datasetId = `bak_smoke_${randomBytes(4).toString('hex')}`;
  let bigquery: BigQuery | undefined;
  let dataset: Dataset | undefined;

  beforeAll(async () => {
    const env = await requireServer('bigquery');
    bigquery = new BigQuery({
      projectId: env.projectId,
      // The emulator's REST root; the client appends /bigquery/v2 itself. Given explicitly, never through BIGQUERY_EMULATOR_HOST.
      apiEndpoint: env.endpoint,
      // No credentials exist for an emulator: without this the client looks for default credentials, which includes probing
      // the GCE metadata server off-host.
      authClient: new PassThroughClient(),
    });
  });

  afterAll(async () => {
    try {
      await dataset?.delete({ force: true });
    } catch {
      // best effort: the emulator keeps data in memory only
    }
  });

  it('creates a table, streams rows in and reads them back by listing and by query', async () => {
    const client = bigquery!;
    [dataset] = await client.createDataset(datasetId);
    const [table] = await dataset.createTable('events', {
      schema: {
        fields: [
          { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
          { name: 'name', type: 'STRING', mode: 'NULLABLE' },
          { name: 'score', type: 'FLOAT', mode: 'NULLABLE' },
          { name: 'active', type: 'BOOLEAN', mode: 'NULLABLE' },
        ],
      },
    });
    const [metadata] = await table.getMetadata();
    expect((metadata.schema.fields as Array<{ name: string }>).map((f) => f.name)).toEqual(['id', 'name', 'score', 'active']);

    const rows = [
      { id: 1, name: 'alpha', score: 1.5, active: true },
      { id: 2, name: 'beta', score: -2.25, active: false },
      { id: 3, name: null, score: null, active: null },
    ];
    await table.insert(rows);

    const [listed] = await table.getRows();
    expect([...listed].sort((a, b) => a.id - b.id)).toEqual(rows);

    // A STRING parameter: the emulator rejects the client's numeric parameter values (it wants them as JSON strings).
    const [queried] = await client.query({
      query: `SELECT id, name FROM \`${client.projectId}.${datasetId}.events\` WHERE name != @skip ORDER BY id`,
      params: { skip: 'gamma' },
    });
    expect(queried).toEqual([
      { id: 1, name: 'alpha' },
      { id: 2, name: 'beta' },
    ]);
  });
});
