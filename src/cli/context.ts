import type { Command } from 'commander';
import { keySourcesFor, type KeyFlags } from '../config/key-sources.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { resolveRepository, type ResolvedRepository } from '../config/resolve.ts';
import { createLogger, type Logger } from '../log.ts';
import type { KeySource } from '../repository/encryption/key-source.ts';
import { Repository } from '../repository/repository.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { openStore } from '../storage/open.ts';
import { NO_PROGRESS, type ProgressSink } from '../util/progress.ts';
import { stdoutOutput, type Output } from './output.ts';
import { TerminalProgress } from './progress.ts';
import { stopOnInterrupt } from './interrupt.ts';

export interface GlobalOptions {
  config?: string;
  repo?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  concurrency?: number;
  /** --progress / --no-progress; undefined: shown when stderr is a terminal and neither --json nor --quiet. */
  progress?: boolean;
  /** Where an encrypted repository's passphrase is read (never the passphrase itself). */
  passwordFile?: string;
  passwordCommand?: string;
}

/** What every command needs: flags, config, logger, output, and the repository opened on demand. */
export class CliContext {
  readonly globals: GlobalOptions;
  readonly log: Logger;
  readonly out: Output;
  private readonly progressLine: TerminalProgress | undefined;
  private loaded: LoadedConfig | undefined;
  private readonly stores: ObjectStore[] = [];
  private interrupt: AbortSignal | undefined;

  constructor(command: Command) {
    this.globals = command.optsWithGlobals<GlobalOptions>();
    const showProgress = this.globals.progress ?? (Boolean(process.stderr.isTTY) && !this.globals.json && !this.globals.quiet);
    this.progressLine = showProgress ? new TerminalProgress({ forced: !process.stderr.isTTY }) : undefined;
    this.log = createLogger({ verbose: this.globals.verbose, quiet: this.globals.quiet, json: this.globals.json, sink: this.progressLine });
    this.out = stdoutOutput(Boolean(this.globals.json));
  }

  /** Aborted by the first SIGINT or SIGTERM (see stopOnInterrupt); for the commands that clean up before they exit. */
  interruptSignal(): AbortSignal {
    this.interrupt ??= stopOnInterrupt(this.log);
    return this.interrupt;
  }

  get config(): LoadedConfig {
    this.loaded ??= loadConfig(this.globals.config);
    return this.loaded;
  }

  get concurrency(): number {
    return this.globals.concurrency ?? this.config.config.defaults.concurrency ?? 4;
  }

  resolveRepository(options: { url?: string; job?: string } = {}): ResolvedRepository {
    const resolved = resolveRepository(this.config.config, { flag: options.url ?? this.globals.repo, job: options.job });
    const named = resolved.name ? ` "${resolved.name}"` : '';
    this.log.info(`using repository${named} ${resolved.settings.url} (${resolved.origin})`);
    return resolved;
  }

  async openStore(resolved: ResolvedRepository): Promise<ObjectStore> {
    const store = await openStore(resolved.settings);
    this.stores.push(store);
    return store;
  }

  async openRepository(options: { job?: string } = {}): Promise<Repository> {
    return this.openResolved(this.resolveRepository(options));
  }

  /** Opens a resolved repository with its key sources (flags, environment, config). */
  async openResolved(resolved: ResolvedRepository): Promise<Repository> {
    const store = await this.openStore(resolved);
    return Repository.open(store, { concurrency: this.concurrency, keys: this.keySources(resolved), expectEncrypted: resolved.encryption !== undefined });
  }

  /** The key sources for a repository: --password-file / --password-command, BAK_PASSWORD…, its config's encryption; plus KMS keys to wrap with. */
  keySources(resolved: ResolvedRepository, kms: Pick<KeyFlags, 'awsKmsKey' | 'gcpKmsKey'> = {}): KeySource[] {
    return keySourcesFor(resolved, { passwordFile: this.globals.passwordFile, passwordCommand: this.globals.passwordCommand, ...kms });
  }

  /** A progress line for one operation (backup, restore …) when one is wanted; else a sink that draws nothing. */
  startProgress(title: string): ProgressSink {
    if (!this.progressLine) return NO_PROGRESS;
    this.progressLine.begin(title);
    return this.progressLine;
  }

  /** Ends the line: at 100 % when the operation succeeded, else where it stopped. */
  endProgress(succeeded: boolean): void {
    this.progressLine?.end(succeeded);
  }

  async close(): Promise<void> {
    this.progressLine?.end(false);
    await Promise.all(this.stores.map((s) => s.close?.().catch(() => undefined)));
  }
}
