import { MIX64_ROWSUM, newRowSum, type RowSum } from '../../util/row-sum.ts';
import { cellCodec, DigestWriter, type CellCodec } from './cells.ts';
import type { ColumnSchema } from './schema.ts';
import type { RawCell } from './types.ts';

/** The digest of a table's rows recorded at backup and recomputed from the restored database. */
// mix64-rowsum (the PostgreSQL engine's): a 64-bit hash per row, summed; SHA-256 per row was ~4 % of a backup's CPU.
export const SPANNER_DIGEST_ALGORITHM = `spanner-cells-v1/${MIX64_ROWSUM}`;

/**
 * Row count and order-independent digest of a table: each row's typed cells in canonical bytes (cells.ts), hashed,
 * the hashes summed. Generated columns count too, so a restore proves Spanner computed them back the same.
 */
export class TableDigest {
  rows = 0;
  readonly #codecs: CellCodec[];
  readonly #sum: RowSum = newRowSum(MIX64_ROWSUM);
  readonly #out = new DigestWriter();

  /** Over these columns, in this order (a table's columns; an adopted export's lack the generated ones). */
  constructor(columns: readonly ColumnSchema[]) {
    this.#codecs = columns.map((c) => cellCodec(c.type, c.nullable));
  }

  /** Adds one row (cells in the constructor's column order); returns the length of its canonical bytes. */
  add(row: readonly RawCell[]): number {
    const out = this.#out;
    out.reset();
    const codecs = this.#codecs;
    for (let i = 0; i < codecs.length; i++) codecs[i]!.digest(out, row[i]!);
    this.#sum.addRow(out.buf, out.view, 0, out.length);
    this.rows++;
    return out.length;
  }

  hex(): string {
    return this.#sum.hex();
  }
}
