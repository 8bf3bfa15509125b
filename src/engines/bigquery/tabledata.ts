import { once } from 'node:events';
import avro from 'avsc';
import { AvroRowFileWriter, BIGINT_LONG, physicalSchema } from '../../util/avro-container.ts';
import type { BigQueryClients } from './client.ts';
import { restCall } from './rest.ts';
import type { TablePath } from './read.ts';
import { avroSchemaOf, restRowToAvro, type Field } from './values.ts';

interface DataPage {
  rows?: Array<{ f: Array<{ v: unknown }> }>;
  pageToken?: string;
  totalRows?: string;
}

/**
 * A table's rows through tabledata.list, page by page (`pageRows` at a time, one page in memory): free of read
 * charges but slower than the Storage Read API, and not at one snapshot time (a table written meanwhile may be read
 * half before, half after). The reader for servers whose Storage Read API cannot encode every type (the emulator's
 * fails on NULLs, DATETIME, TIME and GEOGRAPHY).
 */
export async function* tabledataRows(clients: BigQueryClients, table: TablePath, pageRows = 10_000): AsyncGenerator<Array<{ f: Array<{ v: unknown }> }>> {
  let pageToken: string | undefined;
  do {
    const page = await restCall<DataPage>(clients, 'tabledata.list', {
      uri: `/datasets/${encodeURIComponent(table.dataset)}/tables/${encodeURIComponent(table.table)}/data`,
      project: table.project,
      qs: { maxResults: pageRows, pageToken, 'formatOptions.useInt64Timestamp': true },
    });
    if (page.rows && page.rows.length > 0) yield page.rows;
    pageToken = page.pageToken || undefined;
  } while (pageToken);
}

/** tabledata.list as an Avro container file of BigQuery's Avro mapping (values.ts), encoded as pages arrive. */
export async function* tabledataAsAvroFile(clients: BigQueryClients, table: TablePath, fields: Field[], syncMarker: Buffer, counted: { rows: number }, pageRows?: number): AsyncGenerator<Buffer> {
  const schema = avroSchemaOf(fields);
  const type = avro.Type.forSchema(physicalSchema(schema) as avro.Schema, { registry: { long: BIGINT_LONG } });
  const file = new AvroRowFileWriter(schema, type, syncMarker);
  const encoder = file.encoder;
  const producing = (async () => {
    try {
      for await (const rows of tabledataRows(clients, table, pageRows)) {
        for (const row of rows) {
          counted.rows++;
          if (!encoder.write(restRowToAvro(fields, row))) await once(encoder, 'drain');
        }
      }
      encoder.end();
    } catch (err) {
      encoder.destroy(err as Error);
    }
  })();
  try {
    yield* file.bytes();
  } finally {
    await producing;
  }
}
