import { adapt, managedwriter } from '@google-cloud/bigquery-storage';
import { BakError } from '../../errors.ts';
import { describeBigQueryError, type BigQueryClients } from './client.ts';
import { tablePath, type TablePath } from './read.ts';
import type { Field } from './values.ts';

/** Appends in flight per table: each is acknowledged in order, so this bounds the rows held unacknowledged. */
const APPENDS_IN_FLIGHT = 4;

/**
 * Writes batches of canonical rows (values.ts) into a table through the Storage Write API on a PENDING stream: nothing
 * is visible until every row is appended and the stream committed, so a restore that fails half-way leaves the table
 * empty rather than half-filled. The managed writer's JSON writer encodes rows as protobuf from the table's schema.
 */
export async function writeRows(clients: BigQueryClients, table: TablePath, fields: Field[], batches: AsyncIterable<Array<Record<string, unknown>>>): Promise<number> {
  const where = `${table.project}.${table.dataset}.${table.table}`;
  const parent = tablePath(table);
  const protoDescriptor = adapt.convertStorageSchemaToProto2Descriptor(adapt.convertBigQuerySchemaToStorageTableSchema({ fields } as never), 'root');
  let streamId: string;
  let connection: Awaited<ReturnType<typeof clients.writer.createStreamConnection>>;
  try {
    clients.count('storage.createWriteStream');
    streamId = await clients.writer.createWriteStream({ streamType: managedwriter.PendingStream, destinationTable: parent });
    connection = await clients.writer.createStreamConnection({ streamId });
  } catch (err) {
    throw describeBigQueryError(err, `opening a write stream on ${where}`, clients.where);
  }
  const writer = new managedwriter.JSONWriter({ connection, protoDescriptor });
  const inFlight: Array<Promise<unknown>> = [];
  let offset = 0;
  const settle = async (pending: Promise<unknown>) => {
    const result = (await pending) as { error?: { message?: string } | null; rowErrors?: Array<{ index?: unknown; message?: string }> };
    if (result.error) throw new BakError(`writing rows into ${where}: ${result.error.message}`);
    if (result.rowErrors && result.rowErrors.length > 0) throw new BakError(`writing rows into ${where}: row ${String(result.rowErrors[0]!.index)}: ${result.rowErrors[0]!.message}`);
  };
  try {
    for await (const batch of batches) {
      if (batch.length === 0) continue;
      clients.count('storage.appendRows');
      const pending = writer.appendRows(batch as never, offset).getResult();
      pending.catch(() => undefined);
      inFlight.push(pending);
      offset += batch.length;
      if (inFlight.length >= APPENDS_IN_FLIGHT) await settle(inFlight.shift()!);
    }
    while (inFlight.length > 0) await settle(inFlight.shift()!);
    const finalized = await connection.finalize();
    const committed = await clients.writer.batchCommitWriteStream({ parent, writeStreams: [streamId] });
    const errors = committed.streamErrors ?? [];
    if (errors.length > 0) throw new BakError(`committing the rows of ${where}: ${errors.map((e) => e.errorMessage).join('; ')}`);
    const count = Number(finalized?.rowCount ?? offset);
    if (count !== offset) throw new BakError(`writing rows into ${where}: the stream took ${count} rows, bak sent ${offset}`);
    return offset;
  } catch (err) {
    throw describeBigQueryError(err, `writing rows into ${where}`, clients.where);
  } finally {
    writer.close();
  }
}
