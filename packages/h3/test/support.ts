/** Test helpers for packages/h3: hex, seeded PRNG. */
export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function unhex(s: string): Uint8Array {
  s = s.replace(/\s+/g, '');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** mulberry32: small seeded PRNG. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  /** Mutates a copy of `b`: flips, inserts, deletes, truncates. */
  mutate(b: Uint8Array): Uint8Array {
    const a = Array.from(b);
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) {
      const op = this.int(5);
      const at = this.int(a.length + 1);
      if (op === 0 && a.length) a[at % a.length] = this.int(256);
      else if (op === 1 && a.length) a[at % a.length]! ^= 1 << this.int(8);
      else if (op === 2) a.splice(at, 0, this.int(256));
      else if (op === 3 && a.length) a.splice(at % a.length, 1);
      else if (op === 4) a.length = Math.min(a.length, at);
    }
    return Uint8Array.from(a);
  }
}
