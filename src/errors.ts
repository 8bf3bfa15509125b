/** Exit codes that cron jobs and CI depend on (DESIGN.md). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  mismatch: 3,
  /** Stopped by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number, as a shell reports a process it killed. */
  interrupted: 130,
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the operator: its message is printed as is, its exit code is returned. */
export class BakError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, exitCode: ExitCode = ExitCode.failed, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = options.hint;
  }
}

/** Wrong flag, bad argument, unknown snapshot id: the operator asked for something that cannot be. */
export class UsageError extends BakError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, ExitCode.usage, options);
  }
}

/** Config file or manifest that does not validate: names the path and the value at fault. */
export class ConfigError extends BakError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, ExitCode.usage, options);
  }
}

/** Verification found data that does not match what the manifest promised. */
export class MismatchError extends BakError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, ExitCode.mismatch, options);
  }
}

/** The run was stopped by a signal; what it had started was stopped and cleaned up first. */
export class InterruptedError extends BakError {
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM', outcome = 'stopped, nothing was committed', hint?: string) {
    super(`interrupted by ${signal}: ${outcome}`, signal === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated, { hint });
    this.signal = signal;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
