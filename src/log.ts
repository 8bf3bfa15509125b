import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Logs go to stderr (stdout is for results): pretty on a terminal, JSON lines otherwise. */
export function createLogger(options: { verbose?: boolean; quiet?: boolean; json?: boolean } = {}): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  if (process.stderr.isTTY && !options.json) {
    // Loaded only for a terminal: cron and --json runs never pay for the pretty-printer.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino({ level }, pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' }));
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
