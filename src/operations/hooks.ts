import type { HooksConfig } from '../config/schema.ts';
import { resolveSecret } from '../config/secrets.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

export type HookEvent = 'start' | 'success' | 'failure';

const DEFAULT_TIMEOUT_SECONDS = 10;
/** healthchecks.io caps a ping body at 100 kB; a summary is far smaller, but a long error message is cut. */
const MAX_BODY = 10_000;

/**
 * A job's hooks: a healthchecks-style ping URL and a generic JSON webhook, both secret references.
 * Sending never throws and never logs a URL (it holds the check's credential): a failure is one
 * warning naming the hook, the event and why.
 */
export class JobHooks {
  private readonly ping: string | undefined;
  private readonly webhook: string | undefined;
  private readonly timeoutMs: number;
  private readonly job: string;
  private readonly log: Logger;

  constructor(job: string, config: HooksConfig | undefined, log: Logger) {
    this.job = job;
    this.log = log;
    this.ping = this.resolve(config?.ping, 'ping');
    this.webhook = this.resolve(config?.webhook, 'webhook');
    this.timeoutMs = (config?.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  }

  get configured(): boolean {
    return this.ping !== undefined || this.webhook !== undefined;
  }

  /** Both hooks at once; resolves when both have answered or timed out. */
  async send(event: HookEvent, summary: string, details: Record<string, unknown> = {}): Promise<void> {
    const sends: Array<Promise<void>> = [];
    if (this.ping !== undefined) {
      const base = this.ping.replace(/\/+$/, '');
      const url = event === 'start' ? `${base}/start` : event === 'failure' ? `${base}/fail` : base;
      sends.push(this.post('ping', event, url, 'text/plain; charset=utf-8', summary.slice(0, MAX_BODY)));
    }
    if (this.webhook !== undefined) {
      const body = JSON.stringify({ event, job: this.job, ok: event !== 'failure', at: new Date().toISOString(), summary: summary.slice(0, MAX_BODY), ...details });
      sends.push(this.post('webhook', event, this.webhook, 'application/json', body));
    }
    await Promise.all(sends);
  }

  private async post(hook: string, event: HookEvent, url: string, contentType: string, body: string): Promise<void> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': contentType, 'user-agent': 'bak' },
        body,
        redirect: 'follow',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) this.warn(hook, event, `HTTP ${response.status}`);
      else this.log.debug(`job ${this.job}: ${hook} hook sent (${event})`);
    } catch (err) {
      this.warn(hook, event, describeFetchError(err, this.timeoutMs));
    }
  }

  private warn(hook: string, event: HookEvent, why: string): void {
    this.log.warn(`job ${this.job}: the ${hook} hook (${event}) failed: ${why}; the backup itself is not affected`);
  }

  private resolve(ref: HooksConfig['ping'], name: string): string | undefined {
    try {
      return resolveSecret(ref, `jobs.${this.job}.hooks.${name}`);
    } catch (err) {
      this.log.warn(`${errorMessage(err)}: that hook is not sent`);
      return undefined;
    }
  }
}

/** fetch's own messages are generic ("fetch failed"); the cause's code says what happened, without the URL. */
function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  if (e.cause?.code) return e.cause.code;
  if (e.name === 'TypeError') return 'not a usable URL, or the request could not be made';
  return e.cause?.name ?? e.name ?? 'error';
}
