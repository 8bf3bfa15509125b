import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import type { PushSource } from '../util/push-source.ts';

// undici's index loads all of undici (347 modules: fetch, WebSocket, caches, mocks, proxies), 0.15 s of CPU at every
// start of bak on this machine; its Pool alone is 52 modules and 0.07 s. The version is pinned (package.json), so the
// path is fixed; every lean request goes through it, so a move in an upgrade fails every S3 and GCS test at once.
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPool;

/** An answer's head, with its body still to be read: pipe it or destroy it, or its connection is never reused. */
export interface Exchanged {
  status: number;
  headers: IncomingHttpHeaders;
  body: PushSource;
}

/** No answer head within this: the caller's library tries instead (and fails as it is configured to). */
const ANSWER_TIMEOUT_MS = 10_000;
/** A body that sends nothing for this long is dead; a slow one that keeps sending is never cut. */
const BODY_IDLE_MS = 120_000;

/** Connections a repository store's lean client keeps per origin: above what any caller has in flight. */
export const LEAN_CONNECTIONS = 64;

/** The keep-alive pool of one origin for the lean requests of s3-lean.ts and gcs-lean.ts. */
export function leanPool(origin: string, connections: number): UndiciPool {
  return new Pool(origin, { connections, headersTimeout: ANSWER_TIMEOUT_MS, bodyTimeout: BODY_IDLE_MS, connectTimeout: ANSWER_TIMEOUT_MS });
}

/**
 * One request through an undici dispatcher, its answer's body pushed straight from undici's handler callbacks: no
 * stream per request. Measured on a copy-mode backup of 10,000 objects of 1-8 KiB from MinIO, all GETs through
 * undici: 5.3 s of CPU with its `request` (a BodyReadable per answer), 3.8-3.9 s with this (plain-http.ts: 3.1-3.3 s).
 * Pause and resume are the back-pressure; the body is paused from its head until `pipe` is called.
 */
export function exchange(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions): Promise<Exchanged> {
  return new Promise<Exchanged>((resolveHead, rejectHead) => {
    let controller: Dispatcher.DispatchController | undefined;
    let sink: ((piece: Uint8Array) => boolean) | undefined;
    let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
    // Pieces that came while nobody was piping (should the pause come too late for them): copied, delivered first.
    const early: Buffer[] = [];
    let outcome: { error?: Error } | undefined;
    let headed = false;
    /** Delivers waiting pieces; false if the sink asked for a pause. Settles the pipe once all is delivered and ended. */
    const drain = (): boolean => {
      while (early.length > 0 && sink) if (!sink(early.shift()!)) return false;
      if (outcome && settle) {
        if (outcome.error) settle.reject(outcome.error);
        else settle.resolve();
      }
      return true;
    };
    const go = () => {
      try {
        if (drain() && !outcome) controller?.resume();
      } catch (err) {
        controller?.abort(err as Error);
      }
    };
    const body: PushSource = {
      pipe(to) {
        return new Promise<void>((resolve, reject) => {
          settle = { resolve, reject };
          sink = to;
          go();
        });
      },
      resume: go,
      destroy: (err) => {
        if (!outcome) controller?.abort(err ?? new Error('the answer was not read'));
      },
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(c, status, headers) {
        headed = true;
        c.pause();
        resolveHead({ status, headers, body });
      },
      onResponseData(c, chunk) {
        if (!sink || early.length > 0) {
          early.push(Buffer.from(chunk)); // the piece's memory is undici's: copy what waits
          c.pause();
          return;
        }
        try {
          if (!sink(chunk)) c.pause();
        } catch (err) {
          c.abort(err as Error);
        }
      },
      onResponseEnd() {
        outcome = {};
        if (early.length === 0) drain();
      },
      onResponseError(_c, err) {
        if (!headed) return rejectHead(err);
        outcome = { error: err };
        early.length = 0;
        drain();
      },
    };
    try {
      dispatcher.dispatch(options, handler);
    } catch (err) {
      rejectHead(err as Error);
    }
  });
}
