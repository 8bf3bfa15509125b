import { ExitCode, InterruptedError } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * Ctrl-C or SIGTERM (timeout(1), systemd, a CI job's cancel) during a backup, restore or gc: the first one aborts the
 * returned signal, so the engine stops its children (pg_dump, pg_restore, transfers) and removes its staging, and the
 * operation releases its lock (a backup abandons its snapshot) before bak exits with 130 or 143; a second one exits at
 * once. Without a handler Node exited on the spot: staging and the lock stayed, and pg_dump ran on to the end when the
 * signal came to bak alone.
 */
export function stopOnInterrupt(log: Logger): AbortSignal {
  const controller = new AbortController();
  const on = (name: 'SIGINT' | 'SIGTERM') => () => {
    if (controller.signal.aborted) process.exit(name === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated);
    log.warn(`${name}: stopping and cleaning up (${name === 'SIGINT' ? 'Ctrl-C' : 'send it'} again to quit at once)`);
    controller.abort(new InterruptedError(name));
  };
  process.on('SIGINT', on('SIGINT'));
  process.on('SIGTERM', on('SIGTERM'));
  return controller.signal;
}
