import { createHash, type Hash } from 'node:crypto';
import { timeSync } from './stage-profile.ts';

/** SHA-256 is the one content hash bak uses: blob names, item checksums, manifest digests. */
export function sha256Hex(data: Buffer | string): string {
  return timeSync('SHA-256', data.length, () => createHash('sha256').update(data).digest('hex'));
}

export function newSha256(): Hash {
  return createHash('sha256');
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

