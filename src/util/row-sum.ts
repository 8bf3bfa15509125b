/**
 * Order-independent sums of per-row hashes, the arithmetic behind copy-digest.ts. Each kind takes a
 * whole row (`addRow`) on the fast path, or a row cut by a chunk boundary piece by piece
 * (`beginRow`/`feedRow`/`endRow`) so a huge row is never reassembled in memory.
 */
import { createHash, hash, type Hash } from 'node:crypto';

export interface RowSum {
  addRow(buf: Buffer, view: DataView, start: number, end: number): void;
  beginRow(): void;
  feedRow(buf: Buffer, view: DataView, from: number, to: number): void;
  endRow(): void;
  /** 32 bits of the hash of the row added last, as an unsigned integer (backup.ts cuts chunks by it). */
  readonly lastRowHash: number;
  /** The sum as lowercase hex, most significant digit first. */
  hex(): string;
}

export const MIX64_ROWSUM = 'mix64-rowsum';
export const SHA256_ROWSUM = 'sha256-rowsum';
export const ROW_SUM_ALGORITHMS = [MIX64_ROWSUM, SHA256_ROWSUM] as const;

export function newRowSum(algorithm: string): RowSum {
  if (algorithm === MIX64_ROWSUM) return new Mix64RowSum();
  if (algorithm === SHA256_ROWSUM) return new Sha256RowSum();
  throw new Error(`unknown row digest algorithm "${algorithm}" (this bak knows ${ROW_SUM_ALGORITHMS.join(', ')}); a newer bak wrote this snapshot`);
}

/** Sum of two digests of one algorithm (same hex length): the digest of the union of their rows. */
export function addDigests(a: string, b: string): string {
  if (a.length !== b.length) throw new Error(`cannot add digests of different lengths (${a.length}, ${b.length})`);
  const sum = (BigInt(`0x${a}`) + BigInt(`0x${b}`)) % 2n ** BigInt(4 * a.length);
  return sum.toString(16).padStart(a.length, '0');
}

const TWO_32 = 2 ** 32;
// Each lane gains < 2^32 per row; carrying every 2^20 rows keeps lanes below 2^53, where doubles are exact.
const NORMALIZE_EVERY = 2 ** 20;

/** A sum modulo 2^(32·n) held as n little-endian 32-bit limbs in doubles, carries deferred. */
class LaneSum {
  readonly lanes: Float64Array;
  #sinceNormalize = 0;

  constructor(count: number) {
    this.lanes = new Float64Array(count);
  }

  counted(): void {
    if (++this.#sinceNormalize === NORMALIZE_EVERY) this.normalize();
  }

  normalize(): void {
    const lanes = this.lanes;
    let carry = 0;
    for (let k = 0; k < lanes.length; k++) {
      const v = lanes[k]! + carry;
      carry = Math.floor(v / TWO_32);
      lanes[k] = v - carry * TWO_32;
    }
    this.#sinceNormalize = 0; // the carry out of the top lane is dropped: the sum is modular
  }

  hex(): string {
    this.normalize();
    let out = '';
    for (let k = this.lanes.length - 1; k >= 0; k--) out += this.lanes[k]!.toString(16).padStart(8, '0');
    return out;
  }
}

// mix64: two 32-bit lanes, each round a bijection of its lane for a given word (add/xor, rotate,
// multiply by an odd constant), so rows differing in one word always differ in state; murmur3's
// finaliser spreads the lanes and the length over 64 output bits. Primes are xxHash32's.
const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;
const SEED_A = 0x2545f491;
const SEED_B = 0x4f6cdd1d;

function roundA(a: number, w: number): number {
  const x = (a + Math.imul(w, P2)) | 0;
  return Math.imul((x << 13) | (x >>> 19), P1);
}

function roundB(b: number, w: number): number {
  const x = b ^ Math.imul(w, P3);
  return Math.imul((x << 17) | (x >>> 15), P4);
}

function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

class Mix64RowSum implements RowSum {
  readonly #sum = new LaneSum(2);
  lastRowHash = 0;
  // State of a row being fed piece by piece: the lanes, up to 3 bytes of an unfinished word, the length.
  #a = 0;
  #b = 0;
  #tail = 0;
  #tailBytes = 0;
  #length = 0;

  addRow(buf: Buffer, view: DataView, start: number, end: number): void {
    let a = SEED_A;
    let b = SEED_B;
    let i = start;
    for (const last = end - 4; i <= last; i += 4) {
      const w = view.getInt32(i, true);
      a = roundA(a, w);
      b = roundB(b, w);
    }
    let tail = 0;
    for (let shift = 0; i < end; i++, shift += 8) tail |= buf[i]! << shift;
    this.#finishRow(a, b, tail, end - start);
  }

  beginRow(): void {
    this.#a = SEED_A;
    this.#b = SEED_B;
    this.#tail = 0;
    this.#tailBytes = 0;
    this.#length = 0;
  }

  feedRow(buf: Buffer, view: DataView, from: number, to: number): void {
    let a = this.#a;
    let b = this.#b;
    let tail = this.#tail;
    let tailBytes = this.#tailBytes;
    let i = from;
    this.#length += to - from;
    // Words stay aligned to the row's start, as in addRow: finish the pending word byte by byte first.
    while (tailBytes > 0 && i < to) {
      tail |= buf[i++]! << (8 * tailBytes);
      if (++tailBytes === 4) {
        a = roundA(a, tail);
        b = roundB(b, tail);
        tail = 0;
        tailBytes = 0;
      }
    }
    for (const last = to - 4; i <= last; i += 4) {
      const w = view.getInt32(i, true);
      a = roundA(a, w);
      b = roundB(b, w);
    }
    for (; i < to; i++) tail |= buf[i]! << (8 * tailBytes++);
    this.#a = a;
    this.#b = b;
    this.#tail = tail;
    this.#tailBytes = tailBytes;
  }

  endRow(): void {
    this.#finishRow(this.#a, this.#b, this.#tail, this.#length);
  }

  hex(): string {
    return this.#sum.hex();
  }

  #finishRow(lanesA: number, lanesB: number, tail: number, length: number): void {
    let a = lanesA;
    let b = lanesB;
    if ((length & 3) !== 0) {
      a = roundA(a, tail);
      b = roundB(b, tail);
    }
    a ^= length | 0;
    b ^= Math.imul(Math.floor(length / TWO_32) | 0, P5) ^ P5;
    // (a, b) -> (lo, hi) is invertible, so the finaliser adds no collisions of its own.
    const lo = fmix32((a + Math.imul(b, P3)) | 0);
    const hi = fmix32(b ^ lo);
    const lanes = this.#sum.lanes;
    this.lastRowHash = hi >>> 0;
    lanes[0]! += lo >>> 0;
    lanes[1]! += hi >>> 0;
    this.#sum.counted();
  }
}

class Sha256RowSum implements RowSum {
  readonly #sum = new LaneSum(8);
  lastRowHash = 0;
  #partial: Hash | null = null;

  addRow(buf: Buffer, _view: DataView, start: number, end: number): void {
    this.#add(hash('sha256', buf.subarray(start, end), 'binary'));
  }

  beginRow(): void {
    this.#partial = createHash('sha256');
  }

  feedRow(buf: Buffer, _view: DataView, from: number, to: number): void {
    this.#partial!.update(buf.subarray(from, to));
  }

  endRow(): void {
    this.#add(this.#partial!.digest('binary'));
    this.#partial = null;
  }

  hex(): string {
    return this.#sum.hex();
  }

  // h is the digest as a 'binary' (latin1) string, one char per byte: far cheaper than a Buffer per row.
  #add(h: string): void {
    const lanes = this.#sum.lanes;
    this.lastRowHash = ((h.charCodeAt(0) << 24) | (h.charCodeAt(1) << 16) | (h.charCodeAt(2) << 8) | h.charCodeAt(3)) >>> 0;
    for (let k = 0, i = 28; k < 8; k++, i -= 4) {
      lanes[k]! += ((h.charCodeAt(i) << 24) | (h.charCodeAt(i + 1) << 16) | (h.charCodeAt(i + 2) << 8) | h.charCodeAt(i + 3)) >>> 0;
    }
    this.#sum.counted();
  }
}
