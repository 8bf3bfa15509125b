// The lean GCS requests (storage/gcs-lean.ts) against fake-gcs-server: what they write the client library reads,
// and the other way round; a create-only upload never overwrites; anything unexpected is left to the library.
// The bearer token real GCS needs (fake-gcs-server takes none) is checked at the client boundary: a loopback
// server records what is sent — not verified against a server.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeanGcs } from '../../src/storage/gcs-lean.ts';
import { uniqueName } from '../helpers/backends.ts';
import { requireServer, type ServersEnv } from '../helpers/servers.ts';

let gcs: ServersEnv['gcs'];
let storage: Storage;
let lean: LeanGcs;
const bucket = uniqueName('bak-gcs-lean');

beforeAll(async () => {
  gcs = await requireServer('gcs');
  storage = new Storage({ apiEndpoint: gcs.apiEndpoint, projectId: gcs.projectId });
  await storage.createBucket(bucket);
  lean = new LeanGcs(storage, { apiEndpoint: gcs.apiEndpoint, authenticate: false, connections: 4 });
});

afterAll(async () => {
  await lean?.close();
  await storage?.bucket(bucket).deleteFiles({ force: true }).catch(() => undefined);
  await storage?.bucket(bucket).delete().catch(() => undefined);
});

describe('lean GCS requests (fake-gcs-server)', () => {
  const name = 'blobs/ab/awkward name+&é?#';

  it('a create-only upload of pieces: created once, the library reads it; a second one is refused, nothing overwritten', async () => {
    expect(await lean.create(bucket, name, [Buffer.from([0]), Buffer.from('hello')])).toEqual({ created: true });
    expect(await lean.create(bucket, name, [Buffer.from('other')])).toEqual({ created: false });
    const [read] = await storage.bucket(bucket).file(name).download();
    expect(read.equals(Buffer.from('\u0000hello'))).toBe(true);
  });

  it('downloads what the library wrote; a missing object is left to the library', async () => {
    const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    await storage.bucket(bucket).file('written/by-library').save(body, { resumable: false });
    expect((await lean.download(bucket, 'written/by-library'))?.equals(body)).toBe(true);
    expect(await lean.download(bucket, 'no/such/object')).toBeUndefined();
    expect(await lean.download(uniqueName('bak-no-bucket'), 'x')).toBeUndefined();
  });

  it('sends the auth client’s bearer token when it authenticates (client boundary: not verified against a server)', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-length': 2 }).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fakeAuth = { authClient: { getRequestHeaders: async () => new Headers({ authorization: 'Bearer token-1' }) } } as unknown as Storage;
    const client = new LeanGcs(fakeAuth, { apiEndpoint: endpoint, authenticate: true, connections: 1 });
    try {
      expect(await client.create('b', 'k', [Buffer.from('x')])).toEqual({ created: true });
      expect(seen[0]!.authorization).toBe('Bearer token-1');
      expect(seen[0]!['content-length']).toBe('1');
    } finally {
      await client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
