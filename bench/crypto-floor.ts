// What an encrypted repository costs beyond a plain one, done by a plain tool: openssl derives the passphrase slot's
// scrypt key once and runs AES-256-CTR and GMAC (the two halves of AES-256-GCM) over every byte of a plain repository
// of the same snapshot. Run beside plain bak on the same cores, it is the floor of an encrypted bak: nothing encrypts
// the same bytes behind the same key derivation for less.
export interface ScryptCost {
  logN: number;
  r: number;
  p: number;
}

/**
 * A shell command: scrypt at `cost` (openssl kdf; none for a KMS slot, whose one Decrypt request is left out), then
 * AES-256-CTR and GMAC over every file under `repoDir`, the two at once.
 */
export function cryptoFloorCommand(repoDir: string, cost: ScryptCost | undefined): string {
  const key = '00'.repeat(32);
  const kdf =
    cost &&
    `openssl kdf -keylen 32 -kdfopt pass:bench -kdfopt hexsalt:${'ab'.repeat(16)} -kdfopt n:${2 ** cost.logN} -kdfopt r:${cost.r} ` +
    `-kdfopt p:${cost.p} -kdfopt maxmem_bytes:${2 ** 31} SCRYPT > /dev/null`;
  const files = `find '${repoDir}' -type f -print0 | xargs -0 -r cat`;
  const ctr = `${files} | openssl enc -aes-256-ctr -K ${key} -iv ${'00'.repeat(16)} > /dev/null`;
  const gmac = `${files} | openssl mac -cipher AES-256-GCM -macopt hexkey:${key} -macopt hexiv:${'00'.repeat(12)} GMAC > /dev/null`;
  const aes = `{ ${ctr} & ${gmac} & wait; }`;
  return cost ? `${kdf} && ${aes}` : aes;
}
