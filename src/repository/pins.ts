import type { ObjectStore } from '../storage/object-store.ts';

/** Pinned snapshots are never removed by gc. A pin is an object of its own, since manifests never change. */
export const PINS_PREFIX = 'pins/';

export async function pinSnapshot(store: ObjectStore, id: string, note: string): Promise<boolean> {
  const { created } = await store.put(`${PINS_PREFIX}${id}`, Buffer.from(JSON.stringify({ id, pinnedAt: new Date().toISOString(), note })), {
    ifAbsent: true,
  });
  return created;
}

export async function unpinSnapshot(store: ObjectStore, id: string): Promise<boolean> {
  const existed = (await store.head(`${PINS_PREFIX}${id}`)) !== undefined;
  await store.delete(`${PINS_PREFIX}${id}`);
  return existed;
}

export async function listPins(store: ObjectStore): Promise<Set<string>> {
  const pins = new Set<string>();
  for await (const obj of store.list(PINS_PREFIX)) pins.add(obj.key.slice(PINS_PREFIX.length));
  return pins;
}
