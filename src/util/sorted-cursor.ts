/**
 * Looks items up in a sorted stream while the caller walks its own list in the same order: a merge join holding
 * one item (plus whatever the stream buffers), never the whole stream. Lookups must come in ascending order; they
 * are serialized, so callers may issue them without awaiting the one before.
 */
export class SortedCursor<T, K> {
  readonly #source: AsyncIterator<T> | undefined;
  readonly #compare: (item: T, key: K) => number;
  #peeked: T | undefined;
  #done: boolean;
  #chain: Promise<unknown> = Promise.resolve();

  /** `compare(item, key)`: negative when the item sorts before the key, 0 when it matches. */
  constructor(source: AsyncIterable<T> | undefined, compare: (item: T, key: K) => number) {
    this.#source = source?.[Symbol.asyncIterator]();
    this.#done = source === undefined;
    this.#compare = compare;
  }

  /** Every item matching `key`; items before it are skipped for good. */
  take(key: K): Promise<T[]> {
    const next = this.#chain.then(() => this.#take(key));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #take(key: K): Promise<T[]> {
    const found: T[] = [];
    for (;;) {
      if (this.#peeked === undefined) {
        if (this.#done) return found;
        const r = await this.#source!.next();
        if (r.done) {
          this.#done = true;
          return found;
        }
        this.#peeked = r.value;
      }
      const order = this.#compare(this.#peeked, key);
      if (order > 0) return found;
      if (order === 0) found.push(this.#peeked);
      this.#peeked = undefined;
    }
  }
}
