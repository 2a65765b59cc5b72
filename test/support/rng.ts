/**
 * Seeded, fast PRNG for fuzzers, simulations and tests (sfc32: 32-bit state words, passes
 * PractRand to large sizes, a handful of integer ops per output). Not for cryptography.
 *
 *   const rng = new Rng(42);          // or new Rng('some-string'), or Rng.fromEnv()
 *   rng.int(10)                       // 0..9
 *   rng.range(5, 9)                   // 5..9 inclusive
 *   rng.bytes(16)                     // Uint8Array(16)
 *   rng.pick([a, b, c]); rng.chance(0.25); rng.float(); rng.fork()
 *
 * The same seed gives the same sequence on every platform.
 */

export type Seed = number | string;

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** The seed this generator was created from (as a number), for printing in failure messages. */
  readonly seed: number;

  constructor(seed: Seed = 1) {
    const s = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    this.seed = s;
    // Seed expansion with splitmix32 so that small / similar seeds give unrelated streams.
    let x = s;
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A seed from $SEED (number or string) or else from the clock; print `rng.seed` on failure. */
  static fromEnv(name = 'SEED'): Rng {
    const v = process.env[name];
    if (v !== undefined && v !== '') return new Rng(/^\d+$/.test(v) ? Number(v) : v);
    return new Rng((Date.now() ^ (process.pid << 16)) >>> 0);
  }

  /** Next 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32 (0 when n <= 0). Unbiased (rejection). */
  int(n: number): number {
    if (n <= 1) return 0;
    if (n > 4294967296) return Math.floor(this.float() * n);
    const limit = 4294967296 - (4294967296 % n);
    let v = this.u32();
    while (v >= limit) v = this.u32();
    return v % n;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && (p >= 1 || this.float() < p);
  }

  /** A random element of a non-empty array. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError('Rng.pick: empty array');
    return arr[this.int(arr.length)]!;
  }

  /** n random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.fill(out);
    return out;
  }

  /** Fills `buf` with random bytes and returns it. */
  fill(buf: Uint8Array): Uint8Array {
    let i = 0;
    for (; i + 4 <= buf.length; i += 4) {
      const v = this.u32();
      buf[i] = v;
      buf[i + 1] = v >>> 8;
      buf[i + 2] = v >>> 16;
      buf[i + 3] = v >>> 24;
    }
    if (i < buf.length) {
      let v = this.u32();
      for (; i < buf.length; i++, v >>>= 8) buf[i] = v;
    }
    return buf;
  }

  /** Fisher-Yates shuffle in place; returns `arr`. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
    return arr;
  }

  /** An independent generator derived from this one (for sub-simulations). */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

/** FNV-1a of a string, as a 32-bit seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
