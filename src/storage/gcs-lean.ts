import type { Storage } from '@google-cloud/storage';
import type { Pool } from 'undici';
import { discard, readAll } from '../util/push-source.ts';
import { exchange, leanPool, type Exchanged } from './http-exchange.ts';

/**
 * The two hot GCS requests of a repository without @google-cloud/storage's per-request machinery: a create-only
 * upload of a blob held in memory (JSON API, uploadType=media, ifGenerationMatch=0) and a whole-object download,
 * on undici with the Storage client's own credentials (google-auth-library, refreshed as it refreshes them).
 *
 * Why: into fake-gcs-server, 3,000 create-only uploads of 20 KiB, 16 at once, cost 1.3-1.5 ms of CPU each through
 * `file.save` and 0.16-0.34 ms as a bare undici request (2026-12-02): a Datomic backup of 100,000 segments
 * spent most of its CPU there, and its peak RSS went past 200 MB.
 *
 * Only the plain case: any failure before an answer and any answer but the expected ones resolve undefined, and
 * the caller repeats the request through the client library, which retries and maps the error.
 */
export class LeanGcs {
  readonly #origin: string;
  readonly #storage: Storage;
  readonly #auth: boolean;
  readonly #pool: Pool;

  constructor(storage: Storage, options: { apiEndpoint: string; authenticate: boolean; connections: number }) {
    this.#storage = storage;
    this.#origin = new URL(options.apiEndpoint).origin;
    this.#auth = options.authenticate;
    this.#pool = leanPool(this.#origin, options.connections);
  }

  /** Uploads `parts` (in order, never joined) as `name`: `created` false if it exists (412); undefined: ask the library. */
  async create(bucket: string, name: string, parts: readonly Buffer[]): Promise<{ created: boolean } | undefined> {
    const length = parts.reduce((n, p) => n + p.length, 0);
    const query = `uploadType=media&ifGenerationMatch=0&name=${encodeURIComponent(name)}`;
    const answer = await this.#send('POST', `/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?${query}`, { 'content-type': 'application/octet-stream', 'content-length': String(length) }, parts);
    if (!answer) return undefined;
    discard(answer.body);
    if (answer.status === 200) return { created: true };
    if (answer.status === 412) return { created: false };
    return undefined;
  }

  /** The whole object, or undefined: ask the library (which maps a missing object, a denied read …). */
  async download(bucket: string, name: string): Promise<Buffer | undefined> {
    const answer = await this.#send('GET', `/download/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}?alt=media`, {});
    if (!answer) return undefined;
    if (answer.status !== 200) {
      discard(answer.body);
      return undefined;
    }
    try {
      return await readAll(answer.body, Number(answer.headers['content-length'] ?? 0));
    } catch {
      return undefined; // cut off mid-body: the library reads it again
    }
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }

  async #send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: readonly Buffer[]): Promise<Exchanged | undefined> {
    try {
      const auth = this.#auth ? await this.#authHeaders() : {};
      return await exchange(this.#pool, {
        method,
        path,
        headers: { ...headers, ...auth },
        // undici sends an iterable's pieces in turn (its types omit it).
        ...(body ? { body: body.length === 1 ? body[0]! : (body as unknown as Buffer) } : {}),
      });
    } catch {
      return undefined;
    }
  }

  /** The Authorization header the library would send (its auth client caches and refreshes the token). */
  async #authHeaders(): Promise<Record<string, string>> {
    const got = (await this.#storage.authClient.getRequestHeaders(this.#origin)) as unknown;
    if (got && typeof (got as Headers).entries === 'function') return Object.fromEntries((got as Headers).entries());
    return got as Record<string, string>;
  }
}
