/**
 * How engines and operations say how far they are; the CLI draws it (src/cli/progress.ts) or nothing does.
 * Calls are cheap counters: call them per chunk or per object without worrying about rate.
 */
export interface ProgressSink {
  /** What is being worked on now ("app: public.orders", "s3://bucket/logs/"), shown beside the counts. */
  activity(label: string): void;
  /** Work discovered: the operation's total grows by this much (call as a listing or a plan finds it). */
  expect(items: number, bytes: number): void;
  /** Nothing more will be discovered: the totals are final, so a percentage and an ETA can be shown. */
  totalsKnown(): void;
  /** Work done. */
  advance(items: number, bytes: number): void;
}

/** For callers with nobody watching (tests, --json, cron): every call does nothing. */
export const NO_PROGRESS: ProgressSink = {
  activity: () => undefined,
  expect: () => undefined,
  totalsKnown: () => undefined,
  advance: () => undefined,
};

/**
 * Pieces passed through as they are, their sizes told to `progress` as each goes by: how an engine reports bytes
 * as they are stored rather than when a whole table or file is done. Without a progress sink, the pieces themselves.
 */
export function countedPieces<T>(pieces: AsyncIterable<T>, progress: ProgressSink | undefined, sizeOf: (piece: T) => number): AsyncIterable<T> {
  if (!progress) return pieces;
  return (async function* () {
    for await (const piece of pieces) {
      progress.advance(0, sizeOf(piece));
      yield piece;
    }
  })();
}

export const bufferLength = (piece: { length: number }): number => piece.length;
