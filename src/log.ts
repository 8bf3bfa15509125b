import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  verbose?: boolean | undefined;
  quiet?: boolean | undefined;
  json?: boolean | undefined;
  /** Where log text goes instead of fd 2: the progress line, which keeps the two apart. */
  sink?: { log(text: string): void } | undefined;
}

/** Logs go to stderr (stdout is for results): pretty on a terminal, JSON lines otherwise. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const sink = options.sink;
  if (process.stderr.isTTY && !options.json) {
    // Loaded only for a terminal: cron and --json runs never pay for the pretty-printer.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const prettyOptions = { ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' };
    if (sink) {
      // Formatted in this thread, synchronously, so a line is on screen before the next one is logged.
      const format = pretty.prettyFactory(prettyOptions);
      return pino({ level }, { write: (line: string) => sink.log(format(line)) });
    }
    return pino({ level }, pretty({ ...prettyOptions, destination: 2, sync: true }));
  }
  if (sink) return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, { write: (line: string) => sink.log(line) });
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}
