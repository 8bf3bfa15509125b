// The plain HTTP/1.1 GET client's framing, keep-alive, back-pressure and failure paths, against a scripted
// loopback TCP server (the S3 engine's tests run it against MinIO).
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PlainHttpClient, parseHead, type PlainResponse } from '../../src/storage/plain-http.ts';
import { StorageError } from '../../src/storage/object-store.ts';
import { readAll } from '../../src/util/push-source.ts';

type Reply = (socket: net.Socket, request: string) => void;

/** A server that answers each request (read up to its blank line) with `reply`, counting connections. */
async function serve(reply: Reply): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const request = pending.slice(0, end);
        pending = pending.slice(end + 4);
        reply(socket, request);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const ok = (body: Buffer, extra = '') => Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nETag: "e"\r\n${extra}\r\n`, 'latin1'), body]);

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setUp(reply: Reply, options: { maxSockets?: number; answerTimeoutMs?: number } = {}) {
  const server = await serve(reply);
  const client = new PlainHttpClient({ host: '127.0.0.1', port: server.port, maxSockets: options.maxSockets ?? 4, answerTimeoutMs: options.answerTimeoutMs ?? 5000 });
  cleanup.push(() => server.close(), () => client.close());
  return { server, client };
}

/** A GET whose answer must be framed (Content-Length). */
async function framedGet(client: PlainHttpClient, path: string): Promise<PlainResponse> {
  const answer = await client.get(path, { host: 'h' });
  if (answer === 'unframed') throw new Error('unframed');
  return answer;
}

async function getBody(client: PlainHttpClient, path: string): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const answer = await framedGet(client, path);
  return { status: answer.status, headers: answer.headers, body: await readAll(answer.body, answer.length) };
}

describe('plain HTTP GET client', () => {
  it('reads bodies whole (in the head packet, split over many reads, empty) and reuses one connection', async () => {
    const bodies = new Map([
      ['/small', Buffer.from('hello')],
      ['/big', randomBytes(3 * 1024 * 1024 + 17)],
      ['/empty', Buffer.alloc(0)],
    ]);
    const { server, client } = await setUp((socket, request) => {
      const path = request.split(' ')[1]!;
      const reply = ok(bodies.get(path)!, 'X-Amz-Meta-Colour: blue\r\nX-Amz-Meta-Colour: green\r\n');
      // Dribble the big one in small writes so the client sees many reads.
      if (path === '/big') for (let i = 0; i < reply.length; i += 100_000) socket.write(reply.subarray(i, i + 100_000));
      else socket.write(reply);
    });
    for (const path of ['/small', '/big', '/empty', '/small', '/big']) {
      const got = await getBody(client, path);
      expect(got.status).toBe(200);
      expect(got.body.equals(bodies.get(path)!), path).toBe(true);
      expect(got.headers['x-amz-meta-colour']).toBe('blue, green');
      expect(got.headers.etag).toBe('"e"');
    }
    expect(server.connections()).toBe(1);
  });

  it('pauses the socket while the consumer says so, and loses no byte when resumed', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const { client } = await setUp((socket) => socket.write(ok(body)));
    const answer = await framedGet(client, '/x');
    const pieces: Buffer[] = [];
    let pauses = 0;
    await answer.body.pipe((piece) => {
      pieces.push(Buffer.from(piece)); // the piece's memory is reused: copy
      if (pieces.length % 3 === 0) {
        pauses++;
        setTimeout(() => answer.body.resume(), 2);
        return false;
      }
      return true;
    });
    expect(pauses).toBeGreaterThan(0);
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
  });

  it('keeps to maxSockets connections however many requests wait', async () => {
    const { server, client } = await setUp((socket) => setTimeout(() => socket.write(ok(Buffer.from('x'))), 5), { maxSockets: 2 });
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => getBody(client, `/${i}`)));
    expect(all.every((a) => a.body.toString() === 'x')).toBe(true);
    expect(server.connections()).toBe(2);
  }, 10_000);

  it('hands back non-200 answers with their status, and says "unframed" for a chunked one', async () => {
    const { client } = await setUp((socket, request) => {
      if (request.includes('/missing')) socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno such k');
      else socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    });
    const missing = await client.get('/missing', { host: 'h' });
    expect(missing !== 'unframed' && missing.status).toBe(404);
    if (missing !== 'unframed') missing.body.destroy();
    expect(await client.get('/chunked', { host: 'h' })).toBe('unframed');
  });

  it('a connection cut in the middle of a body rejects the read as a network failure (retryable)', async () => {
    const { client } = await setUp((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n');
      socket.write(randomBytes(1000), () => socket.destroy());
    });
    const answer = await framedGet(client, '/x');
    const err = await readAll(answer.body, answer.length).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).kind).toBe('unreachable');
    // The client opens a fresh connection for the next request.
  });

  it('no answer in time, or a malformed one, rejects the request', async () => {
    const { client } = await setUp((socket, request) => {
      if (request.includes('/garbage')) socket.write('SMTP ready\r\n\r\n');
      // '/silent': never answers
    }, { answerTimeoutMs: 200 });
    await expect(client.get('/silent', { host: 'h' })).rejects.toThrow(/no answer in 200 ms/);
    await expect(client.get('/garbage', { host: 'h' })).rejects.toThrow(/malformed answer/);
  });

  it('a server that closes after answering ("Connection: close") costs a new connection, not a failure', async () => {
    const { server, client } = await setUp((socket) => socket.end(ok(Buffer.from('bye'), 'Connection: close\r\n')));
    for (let i = 0; i < 3; i++) expect((await getBody(client, '/x')).body.toString()).toBe('bye');
    expect(server.connections()).toBe(3);
  });

  it('a consumer that throws fails its read with that error; close() ends connections still busy with a body', async () => {
    const { client } = await setUp((socket) => socket.write(ok(randomBytes(500_000))));
    const first = await framedGet(client, '/x');
    await expect(
      first.body.pipe(() => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    const second = await framedGet(client, '/y');
    const reading = second.body.pipe(() => false); // paused after the first piece, never resumed
    client.close();
    await expect(reading).rejects.toThrow(/client closed/);
  });

  it('parses a head: status, lower-case names, repeated headers joined; rejects what is not HTTP/1.x', () => {
    expect(parseHead('HTTP/1.1 206 Partial\r\nContent-Length: 4\r\nA: 1\r\na: 2')).toEqual({ status: 206, headers: { 'content-length': '4', a: '1, 2' } });
    expect(parseHead('HTTP/1.0 200')).toEqual({ status: 200, headers: {} });
    expect(parseHead('HTTP/2 200\r\n')).toBeUndefined();
    expect(parseHead('HTTP/1.1 200 OK\r\nno colon here')).toBeUndefined();
  });
});
