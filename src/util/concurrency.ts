/**
 * A counting semaphore: the one way bak bounds how many uploads, downloads or checks run at once.
 * `run` waits for a slot, so a producer that awaits it is throttled to the pace of the consumers.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  readonly limit: number;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`concurrency must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => resolve()));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

/**
 * Runs tasks with at most `limit` in flight, started as the producer yields them, and keeps the
 * first error: once a task fails no new task starts, and `drain` rethrows it.
 */
export class TaskPool {
  private readonly limiter: Limiter;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(limit: number) {
    this.limiter = new Limiter(limit);
  }

  /** Resolves once the task has a slot (not when it finishes): awaiting it applies back-pressure. */
  async submit(task: () => Promise<void>): Promise<void> {
    this.throwIfFailed();
    while (this.inFlight.size >= this.limiter.limit) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const p: Promise<void> = this.limiter
      .run(task)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** Maps items with bounded concurrency, keeping input order in the result. For small, known lists only. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limiter = new Limiter(limit);
  return Promise.all(items.map((item, i) => limiter.run(() => fn(item, i))));
}

/**
 * Maps a stream of items with at most `limit` calls in flight, yielding results in input order: a listing of any
 * length is fetched in parallel while at most `limit` results wait in memory. The first error stops it.
 */
export async function* mapOrdered<T, R>(items: AsyncIterable<T> | Iterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window: Array<Promise<R>> = [];
  try {
    for await (const item of items) {
      const p = fn(item);
      p.catch(() => undefined);
      window.push(p);
      if (window.length >= limit) yield await window.shift()!;
    }
    while (window.length > 0) yield await window.shift()!;
  } finally {
    // Settle what is still running before returning, so no call outlives its caller unobserved.
    await Promise.allSettled(window);
  }
}
