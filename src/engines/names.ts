/** Every engine bak knows by name; an engine is usable once its folder registers it in registry.ts. */
export const ENGINE_NAMES = ['postgres', 'spanner', 'bigquery', 'datomic', 's3'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
