import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { resolveRepository, type ResolvedRepository } from '../config/resolve.ts';
import { createLogger, type Logger } from '../log.ts';
import { Repository } from '../repository/repository.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { openStore } from '../storage/open.ts';
import { stdoutOutput, type Output } from './output.ts';

export interface GlobalOptions {
  config?: string;
  repo?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  concurrency?: number;
}

/** What every command needs: flags, config, logger, output, and the repository opened on demand. */
export class CliContext {
  readonly globals: GlobalOptions;
  readonly log: Logger;
  readonly out: Output;
  private loaded: LoadedConfig | undefined;
  private readonly stores: ObjectStore[] = [];

  constructor(command: Command) {
    this.globals = command.optsWithGlobals<GlobalOptions>();
    this.log = createLogger({ verbose: this.globals.verbose, quiet: this.globals.quiet, json: this.globals.json });
    this.out = stdoutOutput(Boolean(this.globals.json));
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
    const store = await this.openStore(this.resolveRepository(options));
    return Repository.open(store, { concurrency: this.concurrency });
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((s) => s.close?.().catch(() => undefined)));
  }
}
