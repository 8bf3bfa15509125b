import type { Readable } from 'node:stream';
import avro from 'avsc';
import type { BlobRef, BlobStore } from '../../repository/blobs.ts';
import { BIGINT_LONG, physicalSchema } from '../../util/avro-container.ts';
import { MIX64_ROWSUM, newRowSum, type RowSum } from '../../util/row-sum.ts';
import type { BigQueryClients } from './client.ts';
import type { TableEntry } from './entries.ts';
import { openReadSession, streamAsAvroFile, syncMarkerOf, type TablePath } from './read.ts';
import { tabledataRows } from './tabledata.ts';
import { canonicalRow, restRowToAvro, rowBytes, type Field } from './values.ts';

export const ROW_DIGEST = MIX64_ROWSUM;

/** Decodes an Avro container file's rows, longs as BigInt (the file's own schema: the server's or bak's). */
async function* avroRows(bytes: Readable | AsyncIterable<Buffer>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new avro.streams.BlockDecoder({
    parseHook: (schema: avro.Schema) => {
      // The emulator names records "project.dataset", which may not be a valid Avro namespace; names are not needed here.
      delete (schema as { namespace?: string }).namespace;
      return avro.Type.forSchema(physicalSchema(schema) as avro.Schema, { registry: { long: BIGINT_LONG }, wrapUnions: false } as never);
    },
  } as never);
  const feeding = (async () => {
    try {
      for await (const chunk of bytes) if (!decoder.write(chunk)) await new Promise((r) => decoder.once('drain', r));
      decoder.end();
    } catch (err) {
      decoder.destroy(err as Error);
    }
  })();
  try {
    for await (const row of decoder as AsyncIterable<Record<string, unknown>>) yield row;
  } finally {
    await feeding;
  }
}

/** A table entry's rows from the repository, canonical, unit by unit and file by file. */
export async function* repositoryRows(blobs: BlobStore, entry: TableEntry, fields: Field[], units = entry.units): AsyncGenerator<Record<string, unknown>> {
  for (const unit of units) {
    for (const file of unit.files ?? []) {
      const refs: BlobRef[] = entry.blobs!.slice(file.blobStart, file.blobStart + file.blobCount);
      for await (const row of avroRows(blobs.readStream(refs))) yield canonicalRow(fields, row);
    }
  }
}

/** A table's rows as BigQuery serves them now, canonical, through the reader the snapshot used. */
export async function* tableRows(clients: BigQueryClients, table: TablePath, fields: Field[], reader: 'storage' | 'tabledata'): AsyncGenerator<Record<string, unknown>> {
  if (reader === 'tabledata') {
    for await (const page of tabledataRows(clients, table)) for (const row of page) yield canonicalRow(fields, restRowToAvro(fields, row));
    return;
  }
  const plan = await openReadSession(clients, table, { maxStreams: 1 });
  for (const stream of plan.streams.length > 0 ? plan.streams : [null]) {
    for await (const row of avroRows(streamAsAvroFile(clients, plan, stream, syncMarkerOf('check'), { rows: 0 }))) yield canonicalRow(fields, row);
  }
}

/** Row count and order-independent digest of canonical rows. */
export class RowDigest {
  rows = 0;
  #sum: RowSum = newRowSum(ROW_DIGEST);

  reset(): void {
    this.rows = 0;
    this.#sum = newRowSum(ROW_DIGEST);
  }

  add(row: Record<string, unknown>): void {
    const bytes = rowBytes(row);
    this.#sum.addRow(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length);
    this.rows++;
  }

  hex(): string {
    return this.#sum.hex();
  }
}

/** Groups rows into batches of at most `rows` rows and about `bytes` bytes, for the write API. */
export async function* batched<T>(rows: AsyncIterable<T>, maxRows: number, onRow?: (row: T) => void): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const row of rows) {
    onRow?.(row);
    batch.push(row);
    if (batch.length >= maxRows) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Row counts and digests of a table per partition (partitions.ts partitionIdOf; '' for the whole table). */
export class TableCheck {
  readonly #byPartition = new Map<string, RowDigest>();
  readonly #partitionOf: (row: Record<string, unknown>) => string;

  constructor(partitionOf: (row: Record<string, unknown>) => string) {
    this.#partitionOf = partitionOf;
  }

  add(row: Record<string, unknown>): void {
    const key = this.#partitionOf(row);
    let digest = this.#byPartition.get(key);
    if (!digest) this.#byPartition.set(key, (digest = new RowDigest()));
    digest.add(row);
  }

  reset(): void {
    this.#byPartition.clear();
  }

  get rows(): number {
    let n = 0;
    for (const d of this.#byPartition.values()) n += d.rows;
    return n;
  }

  /** The partitions whose rows differ from `expected`'s: counts, and digests where the counts agree. */
  differences(expected: TableCheck): Array<{ partition: string; expectedRows: number; actualRows: number; digestMatches: boolean }> {
    const keys = new Set([...this.#byPartition.keys(), ...expected.#byPartition.keys()]);
    const out = [];
    for (const partition of [...keys].sort()) {
      const want = expected.#byPartition.get(partition);
      const got = this.#byPartition.get(partition);
      const expectedRows = want?.rows ?? 0;
      const actualRows = got?.rows ?? 0;
      const digestMatches = (want?.hex() ?? '') === (got?.hex() ?? '');
      if (expectedRows !== actualRows || !digestMatches) out.push({ partition, expectedRows, actualRows, digestMatches });
    }
    return out;
  }
}
