import { once } from 'node:events';
import type { ManifestItem } from '../../repository/manifest.ts';
import type { SnapshotWriter } from '../../repository/snapshot-writer.ts';
import { bufferLength, countedPieces, type ProgressSink } from '../../util/progress.ts';
import { AvroFileWriter, tableAvro } from './avro.ts';
import type { TableSchema } from './schema.ts';
import { TableDigest } from './table-digest.ts';
import type { RawCell } from './types.ts';

export const AVRO_KIND = 'spanner-avro';
export const DDL_KIND = 'spanner-ddl';
export const DDL_ITEM = 'schema.ddl';

/** The schema as DDL text, a snapshot item of its own (for people and other tools; restore uses the schema model). */
export async function addDdlItem(writer: SnapshotWriter, statements: readonly string[], source: string): Promise<ManifestItem> {
  return await writer.addItem({ name: DDL_ITEM, kind: DDL_KIND, details: { source } }, [Buffer.from(`${statements.join(';\n\n')};\n`)]);
}

/** A table's Avro file `index` (of partition `part`, for a table read in partitions). */
export function avroItemName(table: string, index: number, part?: number): string {
  return `tables/${table}/${table}.avro-${part === undefined ? '' : `p${String(part).padStart(4, '0')}-`}${String(index).padStart(5, '0')}`;
}

/**
 * One table's rows on their way into a snapshot: digested, encoded into Avro files of about `fileBytes` each, every
 * file a repository item stored as it is written. Rows come as raw cells in `table.columns` order.
 */
export class TableFileWriter {
  readonly #writer: SnapshotWriter;
  readonly #table: TableSchema;
  readonly #avro: ReturnType<typeof tableAvro>;
  readonly #digest: TableDigest;
  readonly #digestAt: number[];
  readonly #names: string[];
  readonly #fileBytes: number;
  readonly files: string[] = [];
  #file: AvroFileWriter;
  #stored: Promise<unknown> | undefined;
  #bytes = 0;
  #cells: RawCell[] = [];

  /** `digestColumns`: the columns the digest covers (default all; an adopted export has no generated values). */
  readonly #part: number | undefined;
  /** Told of the file bytes as they are stored. */
  readonly #progress: ProgressSink | undefined;

  constructor(writer: SnapshotWriter, table: TableSchema, fileBytes: number, digestColumns?: readonly string[], part?: number, progress?: ProgressSink) {
    this.#part = part;
    this.#progress = progress;
    this.#writer = writer;
    this.#table = table;
    this.#avro = tableAvro(table);
    this.#names = table.columns.map((c) => c.name);
    const covered = digestColumns ? table.columns.filter((c) => digestColumns.includes(c.name)) : table.columns;
    this.#digest = new TableDigest(covered);
    this.#digestAt = covered.map((c) => table.columns.indexOf(c));
    this.#fileBytes = fileBytes;
    this.#file = this.#open();
  }

  get rows(): number {
    return this.#digest.rows;
  }

  #open(): AvroFileWriter {
    const file = new AvroFileWriter(this.#avro);
    const info = { name: avroItemName(this.#table.name, this.files.length, this.#part), kind: AVRO_KIND, rows: 0, details: { table: this.#table.name } };
    this.files.push(info.name);
    const rowsAtStart = this.#digest.rows;
    this.#stored = this.#writer.addItem(info, countedPieces(file.bytes(), this.#progress, bufferLength)).then((item) => {
      item.rows = this.#digest.rows - rowsAtStart;
    });
    this.#stored.catch(() => undefined);
    return file;
  }

  async add(row: readonly RawCell[]): Promise<void> {
    const all = this.#digestAt.length === row.length;
    if (!all) {
      const cells = this.#cells;
      for (let i = 0; i < this.#digestAt.length; i++) cells[i] = row[this.#digestAt[i]!]!;
      cells.length = this.#digestAt.length;
    }
    this.#bytes += this.#digest.add(all ? row : this.#cells);
    const codecs = this.#avro.codecs;
    const record: Record<string, unknown> = {};
    for (let i = 0; i < codecs.length; i++) record[this.#names[i]!] = codecs[i] ? codecs[i]!.toAvro(row[i]!) : null;
    if (!this.#file.encoder.write(record)) await once(this.#file.encoder, 'drain');
    if (this.#bytes >= this.#fileBytes) {
      await this.#close();
      this.#bytes = 0;
      this.#file = this.#open();
    }
  }

  async #close(): Promise<void> {
    this.#file.encoder.end();
    await this.#stored;
  }

  async finish(): Promise<{ rows: number; digest: string; files: string[] }> {
    await this.#close();
    return { rows: this.#digest.rows, digest: this.#digest.hex(), files: this.files };
  }

  async abandon(): Promise<void> {
    this.#file.encoder.destroy();
    await this.#stored?.catch(() => undefined);
  }
}
