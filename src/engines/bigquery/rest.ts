import type { BigQueryClients } from './client.ts';
import { isRetryable } from './client.ts';
import { withRetry } from '../../util/retry.ts';

export interface RestRequest {
  /** Relative to …/bigquery/v2/projects/<project>. */
  uri: string;
  /** Default: the clients' project. */
  project?: string;
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  qs?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
}

/**
 * One BigQuery REST call through the official client (its auth and request handling), counted by kind so a run can
 * say how many metadata calls it made. Retries are bak's (util/retry.ts), not the client's: its default retries every
 * HTTP 500, which the emulator answers for permanent errors ("unsupported bigquery.routines.list" took 48 s).
 */
export async function restCall<T = Record<string, unknown>>(clients: BigQueryClients, kind: string, request: RestRequest): Promise<T> {
  const qs = Object.fromEntries(Object.entries(request.qs ?? {}).filter(([, v]) => v !== undefined));
  return withRetry(
    () => {
      clients.count(kind);
      return new Promise<T>((resolve, reject) => {
        clients.rest.request({ uri: request.uri, projectId: request.project ?? clients.project, method: request.method ?? 'GET', qs, ...(request.json !== undefined ? { json: request.json } : {}) }, (err: Error | null, body: unknown) =>
          err ? reject(err) : resolve((body ?? {}) as T),
        );
      });
    },
    { attempts: 4, baseDelayMs: 1000, maxDelayMs: 16_000, retryable: isRetryable },
  );
}

/** Every page of a list call, item by item: `maxResults` per call, never the whole list in memory. */
export async function* restPages<T>(clients: BigQueryClients, kind: string, request: RestRequest, field: string, pageSize = 1000): AsyncGenerator<T> {
  let pageToken: string | undefined;
  do {
    const page = await restCall<Record<string, unknown>>(clients, kind, { ...request, qs: { ...request.qs, maxResults: pageSize, pageToken } });
    for (const item of (page[field] as T[] | undefined) ?? []) yield item;
    pageToken = (page.nextPageToken as string | undefined) || undefined;
  } while (pageToken);
}
