import { grpcCode, Status, type SpannerClients } from './client.ts';

/**
 * PartitionRead: a table cut into key ranges that separate streams can read in the same read-only transaction, so
 * one large table uses several connections (and Spanner servers). Servers without it (handy-spanner: UNIMPLEMENTED)
 * read each table on a single stream; the first refusal turns it off for the rest of the backup.
 * Not verified against a server: no emulator here has PartitionRead; tested at the client boundary.
 */
export class Partitioner {
  #supported = true;
  readonly #clients: SpannerClients;
  readonly #session: string;
  readonly #transactionId: Uint8Array;
  readonly #maxPartitions: number;

  constructor(clients: SpannerClients, session: string, transactionId: Uint8Array, maxPartitions: number) {
    this.#clients = clients;
    this.#session = session;
    this.#transactionId = transactionId;
    this.#maxPartitions = maxPartitions;
  }

  get supported(): boolean {
    return this.#supported;
  }

  /** The table's partition tokens, or undefined where the server has no partitioned reads (read it whole). */
  async partitions(table: string, columns: string[]): Promise<Uint8Array[] | undefined> {
    if (!this.#supported || this.#maxPartitions < 2) return undefined;
    try {
      // No retries: a table whose partitioning fails for a moment is read on one stream instead.
      const [response] = await this.#clients.data.partitionRead(
        { session: this.#session, transaction: { id: this.#transactionId }, table, columns, keySet: { all: true }, partitionOptions: { maxPartitions: this.#maxPartitions } },
        { timeout: 60_000, maxRetries: 0 },
      );
      const tokens = (response.partitions ?? []).map((p) => p.partitionToken as Uint8Array).filter((t) => t && t.length > 0);
      return tokens.length > 1 ? tokens : undefined;
    } catch (err) {
      const code = grpcCode(err);
      if (code === Status.UNIMPLEMENTED) this.#supported = false;
      // Access and existence errors are the read's errors too; anything else (not implemented, not for this table,
      // a moment's unavailability): read the table on one stream, which says so itself if the server is gone.
      if (code === Status.PERMISSION_DENIED || code === Status.UNAUTHENTICATED || code === Status.NOT_FOUND) throw err;
      return undefined;
    }
  }
}
