import { UsageError } from '../../errors.ts';
import type { ObjectStore } from '../../storage/object-store.ts';
import type { MarkerEncryption } from '../marker.ts';
import { readSlots, type KeySlot, type SlotKind } from './key-slots.ts';
import type { KeySource } from './key-source.ts';
import { isMasterKeyOf } from './keys.ts';

/** Where each kind of key is given, for the message when none was. */
export const KEY_SOURCE_HINTS: Record<SlotKind, string> = {
  passphrase: 'a passphrase in BAK_PASSWORD, BAK_PASSWORD_FILE or BAK_PASSWORD_COMMAND, --password-file or --password-command, or encryption.password / passwordCommand in the repository\'s config',
  'aws-kms': 'encryption.awsKms in the repository\'s config (region, and endpoint if not AWS itself)',
  'gcp-kms': 'encryption.gcpKms in the repository\'s config',
};

/** The repository is encrypted and no key source given opened it: exit 2, naming what was tried and what was not. */
export class NoUsableKeyError extends UsageError {}

/**
 * The master key, from the first slot one of `sources` opens (passphrases first: no network), checked against the
 * marker's key check. Fails with every source tried and why, and the slot kinds no source was given for.
 */
export async function unlockMasterKey(
  store: ObjectStore,
  repositoryId: string,
  encryption: MarkerEncryption,
  sources: readonly KeySource[],
): Promise<{ master: Buffer; slot: KeySlot; source: KeySource }> {
  const { slots, unreadable } = await readSlots(store);
  const failures: string[] = [];
  for (const source of sources) {
    const mine = slots.filter((s) => s.kind === source.kind);
    if (mine.length === 0) {
      failures.push(`${source.label}: the repository has no ${source.kind} slot`);
      continue;
    }
    for (const slot of mine) {
      let master: Buffer;
      try {
        master = await source.unwrap(slot, repositoryId);
      } catch (err) {
        failures.push(`${source.label}, slot ${slot.id}: ${(err as Error).message}`);
        continue;
      }
      if (isMasterKeyOf(master, repositoryId, encryption.keyCheck)) return { master, slot, source };
      master.fill(0);
      failures.push(`${source.label}, slot ${slot.id}: it holds a key that is not this repository's`);
    }
  }
  const given = new Set(sources.map((s) => s.kind));
  const untried = [...new Set(slots.map((s) => s.kind))].filter((k) => !given.has(k));
  for (const kind of untried) {
    const n = slots.filter((s) => s.kind === kind).length;
    failures.push(`${n} ${kind} slot${n === 1 ? '' : 's'}: no key given (${KEY_SOURCE_HINTS[kind]})`);
  }
  for (const u of unreadable) failures.push(`${u.key} is unreadable: ${u.problem}`);
  if (slots.length === 0) failures.push('the repository has no readable key slot under keys/');
  throw new NoUsableKeyError(`the repository at ${store.description} is encrypted and no key opened it:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
}
