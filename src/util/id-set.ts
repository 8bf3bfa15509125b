/**
 * A set of SHA-256 hex ids held as their first 64 bits: 8 bytes an id instead of ~100 for a string,
 * so gc can mark millions of blobs in a few tens of MiB. A prefix collision can only make gc keep
 * an unreferenced blob, never delete a referenced one.
 */
export class IdPrefixSet {
  private table = new Uint32Array(2 * 1024);
  private used = 0;
  private hasZero = false;

  get size(): number {
    return this.used + (this.hasZero ? 1 : 0);
  }

  add(id: string): void {
    const [hi, lo] = split(id);
    if (hi === 0 && lo === 0) {
      this.hasZero = true;
      return;
    }
    if ((this.used + 1) * 2 > this.table.length / 2) this.grow();
    if (insert(this.table, hi, lo)) this.used++;
  }

  has(id: string): boolean {
    const [hi, lo] = split(id);
    if (hi === 0 && lo === 0) return this.hasZero;
    const slots = this.table.length / 2;
    for (let i = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0; ; i++) {
      const s = (i % slots) * 2;
      const h = this.table[s]!;
      const l = this.table[s + 1]!;
      if (h === 0 && l === 0) return false;
      if (h === hi && l === lo) return true;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    for (let s = 0; s < old.length; s += 2) if (old[s] !== 0 || old[s + 1] !== 0) insert(this.table, old[s]!, old[s + 1]!);
  }
}

function split(id: string): [number, number] {
  return [parseInt(id.slice(0, 8), 16) >>> 0, parseInt(id.slice(8, 16), 16) >>> 0];
}

/** Open addressing with linear probing; returns false when the key was already there. */
function insert(table: Uint32Array, hi: number, lo: number): boolean {
  const slots = table.length / 2;
  for (let i = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0; ; i++) {
    const s = (i % slots) * 2;
    const h = table[s]!;
    const l = table[s + 1]!;
    if (h === hi && l === lo) return false;
    if (h === 0 && l === 0) {
      table[s] = hi;
      table[s + 1] = lo;
      return true;
    }
  }
}
