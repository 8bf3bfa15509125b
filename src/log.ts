import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Logs go to stderr (stdout is for results): pretty on a terminal, JSON lines otherwise. */
export function createLogger(options: { verbose?: boolean; quiet?: boolean; json?: boolean } = {}): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  if (process.stderr.isTTY && !options.json) {
    return pino({ level }, pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' }));
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
