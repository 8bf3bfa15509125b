import type { Readable } from 'node:stream';

/**
 * Content delivered to a callback as it arrives, in pieces whose memory the source reuses (a socket reading
 * into one buffer): the consumer copies what it keeps, so a long download allocates nothing per read.
 */
export interface PushSource {
  /**
   * Delivers the content in order to `sink`; a piece is valid only during the call. `sink` returns false to
   * pause until `resume()`. Settles once the content has ended, or rejects if it cannot be read to its end.
   * Called at most once.
   */
  pipe(sink: (piece: Uint8Array) => boolean): Promise<void>;
  resume(): void;
  /** Stops reading (a pending `pipe` rejects) and frees the connection behind it. */
  destroy(err?: Error): void;
}

/** A Readable as a PushSource (its pieces are fresh buffers, so the reuse rule holds trivially). */
export function pushSourceOf(readable: Readable): PushSource {
  return {
    pipe(sink) {
      return new Promise<void>((resolve, reject) => {
        readable.on('data', (piece: Buffer) => {
          if (!sink(piece)) readable.pause();
        });
        readable.once('end', () => resolve());
        readable.once('error', reject);
        readable.once('close', () => {
          if (!readable.readableEnded) reject(new Error('the content stream closed before its end'));
        });
      });
    },
    resume: () => readable.resume(),
    destroy: (err) => readable.destroy(err),
  };
}

/** The same source, its failure turned into the error callers expect (a cut connection into a retryable one). */
export function mappingErrors(source: PushSource, mapError: (err: Error) => Error): PushSource {
  return {
    pipe: (sink) => source.pipe(sink).catch((err: unknown) => Promise.reject(mapError(err instanceof Error ? err : new Error(String(err))))),
    resume: () => source.resume(),
    destroy: (err) => source.destroy(err),
  };
}

/** Reads a (small) answer's body to its end, unkept, so its connection can serve the next request. */
export function discard(source: PushSource): void {
  source.pipe(() => true).catch(() => undefined);
}

/** Reads a whole PushSource into one buffer, sized by the length announced (it grows if more arrives). */
export async function readAll(source: PushSource, expectedLength: number): Promise<Buffer> {
  let out = Buffer.allocUnsafe(expectedLength);
  let length = 0;
  await source.pipe((piece) => {
    if (length + piece.length > out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, length + piece.length));
      out.copy(bigger, 0, 0, length);
      out = bigger;
    }
    out.set(piece, length);
    length += piece.length;
    return true;
  });
  return out.subarray(0, length);
}
