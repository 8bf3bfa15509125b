// The lean S3 client (storage/s3-lean.ts: undici + the SDK's signer) against a scripted loopback HTTP server, for
// what MinIO will not do on demand: chunked answers, redirects, cut connections, back-pressure, credentials that
// expire. The S3 engine and the S3 repository tests run the same code against MinIO.
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { openObject } from '../../src/engines/s3/objects.ts';
import { StorageError } from '../../src/storage/object-store.ts';
import { S3Store } from '../../src/storage/s3.ts';
import { LeanS3 } from '../../src/storage/s3-lean.ts';
import { readAll } from '../../src/util/push-source.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}
type Reply = (req: Seen, res: http.ServerResponse, n: number) => void;

async function serve(reply: Reply): Promise<{ endpoint: string; seen: Seen[]; connections: () => number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(parts) };
      seen.push(s);
      reply(s, res, seen.length);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()) && server.closeAllConnections()),
  };
}

const creds = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setUp(reply: Reply, credentials: S3ClientConfig['credentials'] = creds) {
  const server = await serve(reply);
  const client = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials, maxAttempts: 1 });
  const lean = new LeanS3(client, { endpoint: server.endpoint, forcePathStyle: true, connections: 2 });
  cleanup.push(() => server.close(), () => client.destroy(), () => lean.close());
  return { server, client, lean };
}

const text = (s: string) => Buffer.from(s);

describe('lean S3 client', () => {
  it('reads whole bodies (small, large, empty, chunked), signs each request, and keeps connections alive', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const { server, lean } = await setUp((req, res) => {
      if (req.url.endsWith('/chunked')) {
        res.writeHead(200, { 'x-amz-meta-colour': 'blue' }); // no length: node sends Transfer-Encoding: chunked
        res.write('hel');
        res.end('lo');
      } else if (req.url.endsWith('/big')) res.end(big);
      else if (req.url.endsWith('/empty')) res.end();
      else res.end('hello');
    });
    for (const [key, want] of [['small', text('hello')], ['big', big], ['empty', Buffer.alloc(0)], ['chunked', text('hello')], ['small', text('hello')]] as const) {
      const got = await lean.get('bucket', `dir/${key}`);
      expect(got?.status).toBe(200);
      expect((await readAll(got!.body, got!.length)).equals(want), key).toBe(true);
    }
    expect(server.seen[3]!.headers['x-amz-meta-colour']).toBeUndefined();
    expect(server.seen.every((s) => /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=.*host.*, Signature=[0-9a-f]{64}$/.test(s.headers.authorization ?? ''))).toBe(true);
    expect(server.seen[0]!.url).toBe('/bucket/dir/small');
    // Kept alive: the plain http client's two connections at most, and one of undici's for the chunked answer (which
    // the plain client cannot frame, so it is asked again there).
    expect(server.seen).toHaveLength(6);
    expect(server.connections()).toBeLessThanOrEqual(3);
  });

  it('leaves every answer but 200 to the SDK (a 404, a redirect, a 500), and the connection serves the next request', async () => {
    const { server, lean } = await setUp((req, res, n) => {
      // Framed answers (Content-Length), so the plain http client reads each: a chunked one it would ask undici for.
      const answer = (status: number, body: string, headers: http.OutgoingHttpHeaders = {}) => res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) }).end(body);
      if (n === 1) answer(404, '<Error><Code>NoSuchKey</Code></Error>');
      else if (n === 2) answer(307, '', { location: 'http://elsewhere.invalid/bucket/k' });
      else if (n === 3) answer(500, '<Error><Code>InternalError</Code></Error>');
      else answer(200, 'ok');
    });
    expect(await lean.get('bucket', 'k')).toBeUndefined();
    expect(await lean.get('bucket', 'k')).toBeUndefined();
    expect(await lean.list('bucket', '', {})).toBeUndefined();
    const ok = (await lean.get('bucket', 'k'))!;
    expect((await readAll(ok.body, ok.length)).toString()).toBe('ok');
    expect(server.seen).toHaveLength(4); // each asked once
    expect(server.connections()).toBeLessThanOrEqual(2);
  });

  it('an unreachable server, or none answering in time, is left to the SDK', async () => {
    const { endpoint, close } = await serve(() => undefined);
    await close();
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: creds });
    const lean = new LeanS3(client, { endpoint, forcePathStyle: true, connections: 1 });
    cleanup.push(() => client.destroy(), () => lean.close());
    expect(await lean.get('bucket', 'k')).toBeUndefined();
    expect(await lean.put('bucket', 'k', [text('x')])).toBeUndefined();
  });

  it('holds back a body its consumer pauses (the server cannot write on), and loses no byte when resumed', async () => {
    const body = randomBytes(32 * 1024 * 1024);
    let blocked = 0;
    const { lean } = await setUp((_req, res) => {
      res.writeHead(200, { 'content-length': body.length });
      let at = 0;
      const more = () => {
        while (at < body.length) {
          const ok = res.write(body.subarray(at, (at += 256 * 1024)));
          if (!ok) {
            blocked++;
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    const got = await lean.get('bucket', 'big');
    const pieces: Buffer[] = [];
    let received = 0;
    let heldBack = false;
    const source = got!.body;
    await source.pipe((piece) => {
      pieces.push(Buffer.from(piece));
      received += piece.length;
      if (received > 1024 * 1024 && !heldBack) {
        heldBack = true;
        // Paused for a while: the server's writes must block long before all 32 MiB are buffered somewhere.
        setTimeout(() => {
          expect(blocked).toBeGreaterThan(0);
          source.resume();
        }, 300);
        return false;
      }
      return true;
    });
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
  });

  it('a connection cut in the middle of a body: the repository read is repeated through the SDK, a backup read fails as retryable', async () => {
    const whole = randomBytes(200_000);
    const { server } = await setUp((_req, res, n) => {
      res.writeHead(200, { 'content-length': whole.length });
      if (n % 2 === 1) res.write(whole.subarray(0, 1000), () => res.socket?.destroy());
      else res.end(whole);
    });
    const store = new S3Store('bucket', '', { url: 's3://bucket/', endpoint: server.endpoint, forcePathStyle: true, ...creds, maxAttempts: 1 });
    cleanup.push(() => store.close());
    expect((await store.getBuffer('blobs/x')).equals(whole)).toBe(true);
    expect(server.seen.map((s) => s.headers['user-agent']?.includes('aws-sdk') ?? false)).toEqual([false, true]);

    const client = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: creds });
    const lean = new LeanS3(client, { endpoint: server.endpoint, forcePathStyle: true, connections: 1 });
    cleanup.push(() => client.destroy(), () => lean.close());
    const opened = await openObject({ client, endpoint: server.endpoint, lean }, 'bucket', 'k');
    const err = await readAll(opened.body, opened.size).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).kind).toBe('unreachable');
  });

  it('PUTs pieces in order with their length and signed SHA-256, create-only: 200 created, 412 exists, anything else to the SDK', async () => {
    const { server, lean } = await setUp((_req, res, n) => {
      if (n === 1) res.end();
      else if (n === 2) res.writeHead(412).end('<Error><Code>PreconditionFailed</Code></Error>');
      else res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
    });
    const parts = [Buffer.from([0]), randomBytes(70_000)];
    expect(await lean.put('bucket', 'blobs/ab/cd', parts, { ifAbsent: true })).toEqual({ created: true });
    expect(await lean.put('bucket', 'blobs/ab/cd', parts, { ifAbsent: true })).toEqual({ created: false });
    expect(await lean.put('bucket', 'blobs/ab/cd', parts, { ifAbsent: true })).toBeUndefined();
    const first = server.seen[0]!;
    expect(first.method).toBe('PUT');
    expect(first.body.equals(Buffer.concat(parts))).toBe(true);
    expect(first.headers['content-length']).toBe('70001');
    expect(first.headers['if-none-match']).toBe('*');
    expect(first.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
    expect(first.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
  });

  it('credentials that expire are fetched again from the SDK client’s provider, and later requests sign with the new ones', async () => {
    let calls = 0;
    // The SDK refreshes credentials within 5 minutes of their expiry: these are good for half a second.
    const provider = async () => ({ accessKeyId: `AKID${++calls}`, secretAccessKey: 'secret', expiration: new Date(Date.now() + 300_000 + 500) });
    const { server, lean } = await setUp((_req, res) => res.end('x'), provider);
    await readAll((await lean.get('bucket', 'a'))!.body, 1);
    await readAll((await lean.get('bucket', 'b'))!.body, 1);
    await new Promise((resolve) => setTimeout(resolve, 700));
    await readAll((await lean.get('bucket', 'c'))!.body, 1);
    const used = server.seen.map((s) => /Credential=(\w+)\//.exec(s.headers.authorization ?? '')?.[1]);
    expect(used).toEqual(['AKID1', 'AKID1', 'AKID2']);
  });

  it('lists a page with entity-escaped and CDATA keys', async () => {
    const { lean } = await setUp((_req, res) =>
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><IsTruncated>true</IsTruncated>' +
          '<Contents><Key>a &amp; b &lt;c&gt; caf&#xe9; &#128512;</Key><LastModified>2026-12-01T10:09:07.123Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>' +
          '<Contents><Key><![CDATA[x<y>&amp;]]></Key><LastModified>2026-12-01T10:09:08Z</LastModified><ETag>"d"</ETag><Size>0</Size></Contents>' +
          '<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>',
      ),
    );
    expect(await lean.list('bucket', '', {})).toEqual({
      objects: [
        { key: 'a & b <c> café 😀', size: 12, etag: 'abc', lastModified: '2026-12-01T10:09:07.123Z' },
        { key: 'x<y>&amp;', size: 0, etag: 'd', lastModified: '2026-12-01T10:09:08.000Z' },
      ],
      nextToken: 'tok+/=',
    });
  });
});
