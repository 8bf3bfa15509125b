import { sha256Hex } from '../util/hash.ts';

/**
 * The folder under `snapshots/` for one source: readable (engine + host/path slug) and unique
 * (a hash of the redacted URI), so two sources whose slugs collide still never share a folder.
 */
export function sourceKeyOf(engine: string, redactedSource: string): string {
  const withoutScheme = redactedSource.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^@/]*@/, '');
  const slug = withoutScheme
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  const hash = sha256Hex(`${engine}\n${redactedSource}`).slice(0, 8);
  return [engine.toLowerCase(), slug, hash].filter(Boolean).join('-');
}

/** Whether a snapshot is of the source a filter names: its URI, a part of it, or its source key. */
export function sourceMatches(snapshot: { source: string; sourceKey: string }, filter: string): boolean {
  return snapshot.source === filter || snapshot.sourceKey === filter || snapshot.source.includes(filter);
}
