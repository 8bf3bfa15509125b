import * as net from 'node:net';
import * as tls from 'node:tls';
import { StorageError } from './object-store.ts';
import type { PushSource } from '../util/push-source.ts';

/**
 * A minimal HTTP/1.1 client for GETs over TCP or TLS with keep-alive, for the one request a copy-mode backup makes
 * per object, and for listing pages. Every other lean request (PUTs, answers this cannot frame) goes through
 * undici (s3-lean.ts).
 *
 * Why kept beside undici: a copy-mode backup of 10,000 objects of 1-8 KiB from MinIO (2 cores shared with the
 * server) cost 3.8-3.9 s of CPU and 4.6-4.7 s of wall time with its GETs through undici (its handler API, no
 * stream per answer: http-exchange.ts; undici's `request` cost 5.3 s), and 3.1-3.3 s / 3.8-3.9 s through this
 * client, whatever else equal (2026-12-02). undici allocates a Buffer per socket read, as node:http does (which
 * cost ~65 µs of CPU per small object, and made V8 run a full collection every few MB of a large download); here
 * each connection reads into one buffer of its own (net's `onread`), and the body is pushed from it to the
 * consumer, who copies what it keeps.
 *
 * It understands only what S3 GETs answer: a status line, headers, and a body framed by Content-Length. An
 * answer it cannot frame (chunked, no length) resolves `unframed`, and the caller asks undici instead.
 */
export interface PlainResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", " (as node:http does for most). */
  headers: Record<string, string>;
  /** The body (Content-Length bytes); read it or destroy it, or the connection is never reused. */
  body: PushSource;
  length: number;
}

export type PlainAnswer = PlainResponse | 'unframed';

const READ_BUFFER = 64 * 1024;
const MAX_HEAD = 64 * 1024;

export class PlainHttpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #maxSockets: number;
  readonly #answerTimeoutMs: number;
  readonly #tls: boolean;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #waiting: Array<(conn: Connection) => void> = [];
  #open = 0;
  #closed = false;

  /** `tls`: https, the certificate checked against Node's CAs (NODE_EXTRA_CA_CERTS included) and the host name. */
  constructor(options: { host: string; port: number; maxSockets: number; answerTimeoutMs: number; tls?: boolean }) {
    this.#tls = options.tls ?? false;
    this.#host = options.host;
    this.#port = options.port;
    this.#maxSockets = options.maxSockets;
    this.#answerTimeoutMs = options.answerTimeoutMs;
  }

  /** Sends a GET (`path` already encoded, `headers` complete but for the framing ones) and resolves with the answer's head. */
  async get(path: string, headers: Record<string, string>): Promise<PlainAnswer> {
    const conn = await this.#take();
    try {
      return await conn.get(path, headers, this.#answerTimeoutMs);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Ends every connection, idle or not (a backup that failed may leave bodies unread). */
  close(): void {
    this.#closed = true;
    this.#idle.length = 0;
    this.#waiting.length = 0;
    for (const conn of this.#all) conn.destroy(new Error('client closed'));
  }

  #take(): Promise<Connection> {
    for (;;) {
      const idle = this.#idle.pop();
      if (!idle) break;
      if (idle.usable) return Promise.resolve(idle);
    }
    if (this.#open < this.#maxSockets) return Promise.resolve(this.#fresh());
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #fresh(): Connection {
    this.#open++;
    const conn: Connection = new Connection(this.#host, this.#port, this.#tls, {
      reusable: () => this.#give(conn),
      gone: () => {
        this.#open--;
        this.#all.delete(conn);
        const waiter = this.#waiting.shift();
        if (waiter && !this.#closed) waiter(this.#fresh());
      },
    });
    this.#all.add(conn);
    return conn;
  }

  #give(conn: Connection): void {
    if (this.#closed) return conn.destroy();
    const waiter = this.#waiting.shift();
    if (waiter) waiter(conn);
    else this.#idle.push(conn);
  }
}

interface Owner {
  /** The answer was read to its end and the connection may carry another request. */
  reusable(): void;
  /** The socket closed (error, server close, destroy): it no longer counts against the limit. */
  gone(): void;
}

type State = 'idle' | 'head' | 'body';

/** One keep-alive TCP connection: one request at a time, read into one buffer. */
class Connection {
  readonly #socket: net.Socket;
  readonly #owner: Owner;
  #state: State = 'idle';
  #gone = false;
  // The answer being read.
  #head = '';
  #answer: { resolve(a: PlainAnswer): void; reject(err: Error): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #remaining = 0;
  #keepAlive = true;
  // Body bytes that came with the head, before the consumer attached; and the consumer.
  #early: Buffer | undefined;
  #sink: ((piece: Uint8Array) => boolean) | undefined;
  #body: { resolve(): void; reject(err: Error): void } | undefined;
  #failure: Error | undefined;

  constructor(host: string, port: number, secure: boolean, owner: Owner) {
    this.#owner = owner;
    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n: number, buf: Buffer) => this.#onRead(buf, n) };
    // A TLS socket reads into the one buffer too: tls.connect takes net's onread (documented; missing from
    // @types/node). Requests written before the handshake ends wait for it.
    const tlsOptions = { host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}), onread } as tls.ConnectionOptions;
    this.#socket = secure ? tls.connect(tlsOptions).setNoDelay(true) : net.connect({ host, port, noDelay: true, onread });
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('end', () => this.#fail(new Error('the server closed the connection')));
    this.#socket.on('close', () => {
      this.#fail(new Error('the connection closed'));
      if (!this.#gone) {
        this.#gone = true;
        this.#owner.gone();
      }
    });
  }

  /** Idle and open: worth sending a request on. */
  get usable(): boolean {
    return !this.#gone && this.#failure === undefined && this.#state === 'idle' && !this.#socket.destroyed;
  }

  get(path: string, headers: Record<string, string>, timeoutMs: number): Promise<PlainAnswer> {
    let request = `GET ${path} HTTP/1.1\r\n`;
    for (const name in headers) request += `${name}: ${headers[name]}\r\n`;
    request += '\r\n';
    this.#state = 'head';
    this.#head = '';
    this.#keepAlive = true;
    return new Promise<PlainAnswer>((resolve, reject) => {
      this.#answer = { resolve, reject };
      // No answer in time: fail the request (the caller falls back). A slow body is never cut.
      this.#timer = setTimeout(() => this.#fail(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      this.#socket.write(request, 'latin1');
      this.#socket.resume(); // reading stops at the end of each answer
    });
  }

  destroy(err?: Error): void {
    this.#fail(err ?? new Error('request abandoned'));
  }

  #onRead(buf: Buffer, n: number): boolean {
    if (this.#state === 'head') return this.#readHead(buf, n);
    if (this.#state === 'body') return this.#deliver(buf.subarray(0, n));
    // Bytes outside any answer: the connection is out of step; never reuse it.
    this.#fail(new Error('unexpected data from the server'));
    return false;
  }

  #readHead(buf: Buffer, n: number): boolean {
    const before = this.#head.length;
    this.#head += buf.toString('latin1', 0, n);
    const end = this.#head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (end < 0) {
      if (this.#head.length > MAX_HEAD) this.#fail(new Error('answer headers too long'));
      return true;
    }
    clearTimeout(this.#timer);
    const parsed = parseHead(this.#head.slice(0, end));
    if (!parsed) {
      this.#fail(new Error('malformed answer'));
      return false;
    }
    const answer = this.#answer!;
    this.#answer = undefined;
    const { status, headers } = parsed;
    const length = headers['content-length'];
    if (headers['transfer-encoding'] !== undefined || length === undefined || !/^\d+$/.test(length)) {
      answer.resolve('unframed');
      this.#fail(new Error('unframed answer'));
      return false;
    }
    this.#keepAlive = !/\bclose\b/i.test(headers.connection ?? '');
    this.#remaining = Number(length);
    this.#state = 'body';
    // The bytes after the head in this read are the body's first: kept until the consumer attaches.
    const bodyStart = n - (this.#head.length - end - 4);
    this.#head = '';
    const early = Math.min(n - bodyStart, this.#remaining);
    if (early > 0) this.#early = Buffer.from(buf.subarray(bodyStart, bodyStart + early));
    this.#remaining -= early;
    answer.resolve({ status, headers, length: Number(length), body: this.#bodySource() });
    if (this.#remaining === 0 && !this.#early) this.#finishBody();
    // Paused until the consumer attaches (never after a resume in this call: returning false stops reading).
    return (this.#state as State) === 'idle';
  }

  #bodySource(): PushSource {
    return {
      pipe: (sink) =>
        new Promise<void>((resolve, reject) => {
          if (this.#failure) return reject(brokenRead(this.#failure));
          if (this.#state !== 'body') return resolve();
          this.#sink = sink;
          this.#body = { resolve, reject };
          const early = this.#early;
          this.#early = undefined;
          const goOn = early ? this.#feed(early) : true;
          if (this.#failure) return;
          if (this.#remaining === 0) this.#finishBody();
          else if (goOn) this.#socket.resume();
        }),
      resume: () => {
        if (this.#state === 'body' && this.#remaining > 0) this.#socket.resume();
      },
      destroy: (err) => this.#fail(err ?? new Error('body abandoned')),
    };
  }

  #deliver(piece: Buffer): boolean {
    if (piece.length > this.#remaining) {
      this.#fail(new Error('the server sent more than its Content-Length'));
      return false;
    }
    this.#remaining -= piece.length;
    const goOn = this.#feed(piece);
    if (this.#failure) return false;
    if (this.#remaining === 0) {
      this.#finishBody();
      return true;
    }
    return goOn;
  }

  /** Hands a piece to the consumer; a consumer that throws fails the body with its error (not the process). */
  #feed(piece: Buffer): boolean {
    try {
      return this.#sink!(piece);
    } catch (err) {
      const body = this.#body;
      this.#body = undefined;
      this.#fail(err as Error);
      body?.reject(err as Error);
      return false;
    }
  }

  #finishBody(): void {
    const body = this.#body;
    this.#sink = undefined;
    this.#body = undefined;
    this.#state = 'idle';
    if (!this.#keepAlive) this.#socket.destroy();
    else this.#owner.reusable();
    body?.resolve();
  }

  #fail(err: Error): void {
    clearTimeout(this.#timer);
    if (this.#failure === undefined) this.#failure = err;
    const answer = this.#answer;
    const body = this.#body;
    this.#answer = undefined;
    this.#body = undefined;
    this.#sink = undefined;
    this.#early = undefined;
    if (!this.#socket.destroyed) this.#socket.destroy();
    answer?.reject(err);
    // A body read to its end has already settled; one cut short rejects, as a network failure (retried).
    body?.reject(brokenRead(err));
  }
}

/** A body cut short, as a network failure (so the object is retried). */
function brokenRead(err: Error): StorageError {
  return err instanceof StorageError ? err : new StorageError('unreachable', `the connection broke while reading an object: ${err.message}`, { cause: err });
}

/** Status and headers of an answer's head (up to the blank line), or undefined if it is not HTTP/1.x. */
export function parseHead(head: string): { status: number; headers: Record<string, string> } | undefined {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!statusLine) return undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(statusLine[1]), headers };
}
