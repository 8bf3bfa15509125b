import { BakError, UsageError } from '../errors.ts';
import type { BlobStore } from '../repository/blobs.ts';
import { readIndex, type IndexRef } from '../repository/index-blobs.ts';
import type { Manifest, ManifestItem } from '../repository/manifest.ts';
import { compareKeys } from '../util/key-order.ts';

/** One difference between two snapshots of a source: an item, or an entry of a keyed index (S3 objects, segments …). */
export interface Change {
  /** `items`, or the index's name (`objects`, `segments`, `tables` …). */
  where: string;
  change: 'added' | 'removed' | 'changed';
  key: string;
  /** Plain bytes before and after, where the entry says (an item's bytes, an object's size). */
  sizeBefore?: number;
  sizeAfter?: number;
  rowsBefore?: number;
  rowsAfter?: number;
}

/**
 * What changed from snapshot `a` to snapshot `b` of one source, in order: items by name, then each index keyed by
 * `key`, merge-joined as both are streamed (indexes are written in key order; one that is not is an error, never a
 * wrong answer). Memory: the two manifests and a page of each index, whatever the number of keys.
 */
export async function* diffSnapshots(blobs: BlobStore, a: Manifest, b: Manifest): AsyncGenerator<Change> {
  if (a.sourceKey !== b.sourceKey) throw new UsageError(`${a.id} and ${b.id} are snapshots of different sources (${a.source}, ${b.source}): bak diff compares two snapshots of one source`);
  yield* diffItems(a.items, b.items);
  const names = [...new Set([...a.indexes.map((i) => i.name), ...b.indexes.map((i) => i.name)])].sort();
  for (const name of names) {
    const before = a.indexes.find((i) => i.name === name);
    const after = b.indexes.find((i) => i.name === name);
    yield* diffIndex(name, keyedEntries(blobs, a, before), keyedEntries(blobs, b, after));
  }
}

function diffItems(before: readonly ManifestItem[], after: readonly ManifestItem[]): Change[] {
  const changes: Change[] = [];
  const old = new Map(before.map((i) => [i.name, i]));
  const names = new Set(after.map((i) => i.name));
  const sized = (i: ManifestItem, side: 'Before' | 'After') => ({ [`size${side}`]: i.bytes, ...(i.rows === undefined ? {} : { [`rows${side}`]: i.rows }) });
  for (const item of after) {
    const was = old.get(item.name);
    if (!was) changes.push({ where: 'items', change: 'added', key: item.name, ...sized(item, 'After') });
    else if (was.checksum !== item.checksum) changes.push({ where: 'items', change: 'changed', key: item.name, ...sized(was, 'Before'), ...sized(item, 'After') });
  }
  for (const item of before) if (!names.has(item.name)) changes.push({ where: 'items', change: 'removed', key: item.name, ...sized(item, 'Before') });
  return changes.sort((x, y) => compareKeys(x.key, y.key));
}

interface Keyed {
  key: string;
  entry: Record<string, unknown>;
  json: string;
}

/** An index's entries with their keys, checked to come in key order. */
async function* keyedEntries(blobs: BlobStore, manifest: Manifest, ref: IndexRef | undefined): AsyncGenerator<Keyed> {
  if (!ref) return;
  let last: string | undefined;
  for await (const raw of readIndex(blobs, ref)) {
    const entry = raw as Record<string, unknown>;
    if (typeof entry?.key !== 'string') throw new BakError(`snapshot ${manifest.id}: index ${ref.name} has entries without a key; bak diff cannot compare it`);
    if (last !== undefined && compareKeys(last, entry.key) >= 0) throw new BakError(`snapshot ${manifest.id}: index ${ref.name} is not in key order at ${JSON.stringify(entry.key)}; bak diff cannot compare it`);
    last = entry.key;
    yield { key: entry.key, entry, json: canonicalJson(entry) };
  }
}

/** JSON with object keys sorted: an entry carried from a parent and one written anew may list fields in another order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function sizeOf(entry: Record<string, unknown>): number | undefined {
  for (const field of ['size', 'bytes']) if (typeof entry[field] === 'number') return entry[field] as number;
  return undefined;
}

async function* diffIndex(where: string, before: AsyncGenerator<Keyed>, after: AsyncGenerator<Keyed>): AsyncGenerator<Change> {
  const sizes = (b: Keyed | undefined, a: Keyed | undefined) => {
    const s: Partial<Change> = {};
    const sb = b && sizeOf(b.entry);
    const sa = a && sizeOf(a.entry);
    if (sb !== undefined) s.sizeBefore = sb;
    if (sa !== undefined) s.sizeAfter = sa;
    return s;
  };
  let x = await before.next();
  let y = await after.next();
  while (!x.done || !y.done) {
    const order = x.done ? 1 : y.done ? -1 : compareKeys(x.value.key, y.value.key);
    if (order < 0) {
      yield { where, change: 'removed', key: x.value!.key, ...sizes(x.value, undefined) };
      x = await before.next();
    } else if (order > 0) {
      yield { where, change: 'added', key: y.value!.key, ...sizes(undefined, y.value) };
      y = await after.next();
    } else {
      if (x.value!.json !== y.value!.json) yield { where, change: 'changed', key: y.value!.key, ...sizes(x.value, y.value) };
      x = await before.next();
      y = await after.next();
    }
  }
}
