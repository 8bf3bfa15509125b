import { createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;

export function newMasterKey(): Buffer {
  return randomBytes(MASTER_KEY_BYTES);
}

/**
 * The keys one master key gives a repository, each derived with HKDF-SHA-256 for one job, so no key is used for two:
 * `data` seals objects, `names` names blobs and snapshot folders. The master key itself is kept only wrapped, in key slots.
 */
export class RepositoryKeys {
  readonly data: KeyObject;
  private readonly names: KeyObject;
  /** Identifies the master key without revealing it: recorded in the marker, so a slot holding another key is named as such. */
  readonly check: string;

  constructor(master: Buffer, repositoryId: string) {
    if (master.length !== MASTER_KEY_BYTES) throw new Error(`a master key is ${MASTER_KEY_BYTES} bytes, not ${master.length}`);
    const derive = (info: string) => createSecretKey(Buffer.from(hkdfSync('sha256', master, repositoryId, info, 32)));
    this.data = derive('bak/v1/seal');
    this.names = derive('bak/v1/names');
    this.check = keyCheck(master, repositoryId);
  }

  /**
   * A blob's stored name: HMAC-SHA-256 of its content's SHA-256 (the id manifests hold, inside sealed manifests). A keyed
   * hash of the content's digest keeps one hash pass over the data (the SHA-256 that names chunks and checks every read)
   * and still lets nobody without the key test whether a known file is stored: its SHA-256 alone names nothing here.
   */
  blobName(id: string): string {
    return createHmac('sha256', this.names).update(`blob:${id}`).digest('hex');
  }

  /** The folder a source's manifests sit in, named so that it says nothing of the source (its key names a database or bucket). */
  sourceFolder(sourceKey: string): string {
    return `s-${createHmac('sha256', this.names).update(`source:${sourceKey}`).digest('hex').slice(0, 32)}`;
  }
}

export function keyCheck(master: Buffer, repositoryId: string): string {
  return createHmac('sha256', master).update(`bak/v1/key-check:${repositoryId}`).digest('hex').slice(0, 32);
}

/** Whether an unwrapped key is this repository's master key (constant time). */
export function isMasterKeyOf(master: Buffer, repositoryId: string, check: string): boolean {
  const actual = Buffer.from(keyCheck(master, repositoryId), 'utf8');
  const expected = Buffer.from(check, 'utf8');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
