import { UsageError } from '../errors.ts';
import type { Engine } from './engine.ts';
import { ENGINE_NAMES } from './names.ts';

/**
 * Engines known to this build. Adding an engine is one folder under src/engines/ plus one line in
 * `builtInEngines` below; tests may register extra engines of their own.
 */
const engines = new Map<string, Engine>();

// One line per engine folder, as each lands: e.g. `import { postgresEngine } from './postgres/index.ts';`
const builtInEngines: Engine[] = [];
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
