import { UsageError } from '../errors.ts';
import { bigqueryEngine } from './bigquery/index.ts';
import { datomicEngine } from './datomic/index.ts';
import type { Engine } from './engine.ts';
import { ENGINE_NAMES } from './names.ts';
import { postgresEngine } from './postgres/index.ts';
import { s3Engine } from './s3/index.ts';
import { spannerEngine } from './spanner/index.ts';

/**
 * Engines known to this build. Adding an engine is one folder under src/engines/ plus one line in
 * `builtInEngines` below; tests may register extra engines of their own.
 */
const engines = new Map<string, Engine>();

// One line per engine folder.
const builtInEngines: Engine[] = [postgresEngine, s3Engine, spannerEngine, bigqueryEngine, datomicEngine];
for (const engine of builtInEngines) engines.set(engine.name, engine);

export function registerEngine(engine: Engine): void {
  if (engines.has(engine.name)) throw new Error(`engine ${engine.name} is already registered`);
  engines.set(engine.name, engine);
}

export function unregisterEngine(name: string): void {
  engines.delete(name);
}

export function findEngine(name: string): Engine | undefined {
  return engines.get(name);
}

export function getEngine(name: string): Engine {
  const engine = engines.get(name);
  if (engine) return engine;
  if ((ENGINE_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`the ${name} engine is not available in this version of bak yet`);
  }
  throw new UsageError(`unknown engine "${name}" (known: ${ENGINE_NAMES.join(', ')})`);
}

export function registeredEngines(): Engine[] {
  return [...engines.values()];
}

/** The engine a source URI's scheme names: postgres://, spanner://, bigquery://, datomic:, s3://. */
export function engineNameForUri(uri: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    case 'spanner':
    case 'bigquery':
    case 'datomic':
    case 's3':
      return scheme;
    default:
      throw new UsageError(`cannot tell the engine of source "${uri.replace(/\/\/[^@/]*@/, '//***@')}": name it with --engine (${ENGINE_NAMES.join(', ')})`);
  }
}
