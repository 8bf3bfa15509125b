import type { KeySlot, SlotKind, SlotSecret } from './key-slots.ts';

/**
 * Something that can wrap a repository's master key into a slot and unwrap it again: a passphrase, an AWS KMS key,
 * a Google Cloud KMS key. Sources are built from flags, the environment and the config (sources.ts); the repository
 * tries each against the slots of its kind.
 */
export interface KeySource {
  readonly kind: SlotKind;
  /** Where the key comes from, for messages; never the secret: "passphrase from BAK_PASSWORD", "AWS KMS key alias/bak". */
  readonly label: string;
  /** Whether it can make a slot (a KMS source needs a key named to wrap with; any source can open the slots of its kind). */
  readonly canWrap: boolean;
  /** A new slot's secret fields for `master`. */
  wrap(master: Buffer, repositoryId: string, slotId: string): Promise<SlotSecret>;
  /** The master key from one slot of this source's kind; throws an Error saying why not (wrong passphrase, KMS refused …). */
  unwrap(slot: KeySlot, repositoryId: string): Promise<Buffer>;
}

/** Associated data or encryption context that ties a wrapped key to its repository and slot. */
export function slotAad(repositoryId: string, slotId: string): Buffer {
  return Buffer.from(`bak-key-slot:${repositoryId}:${slotId}`, 'utf8');
}

/** The context AWS KMS binds a wrapped key to (it must be given again to decrypt; CloudTrail logs it). */
export function awsEncryptionContext(repositoryId: string): Record<string, string> {
  return { 'bak-repository': repositoryId };
}
