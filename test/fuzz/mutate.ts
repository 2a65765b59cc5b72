/**
 * Structure-aware byte mutator for the fuzzers. One call applies 1..5 stacked mutations chosen
 * among: bit flips, byte sets, small arithmetic, interesting bytes / 16- / 32-bit integers at
 * random offsets, truncation, extension, splicing two inputs, duplicating / deleting / inserting
 * / swapping chunks, QUIC varint re-encodings and boundary values, length-field tweaks (u8 / u16
 * / u24 / DER lengths set to 0, max, ±1, the real remaining size...), dictionary tokens.
 *
 *   const out = mutate(rng, input, { pool, maxLen: 4096, dict });
 *
 * Deterministic for a given Rng state. Never returns a view into `input` (callers may keep it).
 */
import type { Rng } from '../support/rng.js';

export interface MutateOptions {
  /** Other inputs to splice with (seeds, interesting inputs). */
  pool?: readonly Uint8Array[];
  /** Upper bound on the output length (default 4096). */
  maxLen?: number;
  /** Tokens worth inserting (magic numbers, type codes, extension ids...). */
  dict?: readonly Uint8Array[];
  /** Number of stacked mutations; default random 1..5 (geometric-ish). */
  count?: number;
}

const INTERESTING8 = [0x00, 0x01, 0x02, 0x03, 0x0f, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7e, 0x7f, 0x80, 0x81, 0xbf, 0xc0, 0xfe, 0xff];
const INTERESTING16 = [0x0000, 0x0001, 0x007f, 0x0080, 0x00ff, 0x0100, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING32 = [0, 1, 0x7f, 0xff, 0xffff, 0x10000, 0x3fffffff, 0x40000000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x00ffffff];
/** QUIC varint boundary values (RFC 9000 §16); 2^62-1 is split as hi/lo 32-bit words. */
const VARINT_VALUES = [0, 1, 63, 64, 16383, 16384, 0x3fffffff, 0x40000000, 2 ** 53 - 1];

type Op = (rng: Rng, b: Uint8Array, o: Required<Pick<MutateOptions, 'maxLen'>> & MutateOptions) => Uint8Array;

const ops: Op[] = [
  // Bit flip(s)
  (rng, b) => {
    if (!b.length) return b;
    const n = rng.chance(0.7) ? 1 : rng.range(2, 8);
    for (let i = 0; i < n; i++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
    return b;
  },
  // Random byte set
  (rng, b) => {
    if (b.length) b[rng.int(b.length)] = rng.int(256);
    return b;
  },
  // Interesting byte
  (rng, b) => {
    if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING8);
    return b;
  },
  // Small arithmetic on a byte
  (rng, b) => {
    if (b.length) {
      const i = rng.int(b.length);
      b[i] = (b[i]! + rng.range(-16, 16)) & 0xff;
    }
    return b;
  },
  // Interesting 16-bit big-endian integer
  (rng, b) => {
    if (b.length < 2) return b;
    const i = rng.int(b.length - 1);
    const v = rng.pick(INTERESTING16);
    b[i] = v >>> 8;
    b[i + 1] = v;
    return b;
  },
  // Interesting 32-bit big-endian integer
  (rng, b) => {
    if (b.length < 4) return b;
    const i = rng.int(b.length - 3);
    const v = rng.pick(INTERESTING32);
    b[i] = v >>> 24;
    b[i + 1] = v >>> 16;
    b[i + 2] = v >>> 8;
    b[i + 3] = v;
    return b;
  },
  // Truncate
  (rng, b) => b.slice(0, rng.int(b.length + 1)),
  // Truncate a little from the end (keeps most structure)
  (rng, b) => b.slice(0, Math.max(0, b.length - rng.range(1, 4))),
  // Extend with random bytes or a copy of a piece of the input
  (rng, b, o) => {
    const n = rng.range(1, 32);
    const ext = rng.chance(0.5) || b.length === 0 ? rng.bytes(n) : chunk(rng, b, n);
    return concat(b, ext);
  },
  // Splice: prefix of this input + suffix of another
  (rng, b, o) => {
    const other = o.pool && o.pool.length ? rng.pick(o.pool) : b;
    return concat(b.subarray(0, rng.int(b.length + 1)), other.subarray(rng.int(other.length + 1)));
  },
  // Duplicate a chunk in place
  (rng, b) => {
    if (!b.length) return b;
    const s = rng.int(b.length);
    const len = rng.range(1, Math.min(64, b.length - s));
    return concat(b.subarray(0, s + len), b.subarray(s));
  },
  // Delete a chunk
  (rng, b) => {
    if (!b.length) return b;
    const s = rng.int(b.length);
    const len = rng.range(1, Math.min(64, b.length - s));
    return concat(b.subarray(0, s), b.subarray(s + len));
  },
  // Insert random bytes / a repeated byte
  (rng, b) => {
    const at = rng.int(b.length + 1);
    const n = rng.range(1, 16);
    const ins = rng.chance(0.5) ? rng.bytes(n) : new Uint8Array(n).fill(rng.pick(INTERESTING8));
    return concat(b.subarray(0, at), ins, b.subarray(at));
  },
  // Swap two chunks of equal length
  (rng, b) => {
    if (b.length < 4) return b;
    const len = rng.range(1, Math.min(16, b.length >> 1));
    const i = rng.int(b.length - len + 1);
    const j = rng.int(b.length - len + 1);
    const t = b.slice(i, i + len);
    b.copyWithin(i, j, j + len);
    b.set(t, j);
    return b;
  },
  // QUIC varint: re-encode the varint at an offset with another length or a boundary value
  (rng, b) => varintTweak(rng, b),
  (rng, b) => varintTweak(rng, b),
  // Length fields: u8 / u16 / u24 (TLS, QUIC) tweaked
  (rng, b) => lengthTweak(rng, b),
  (rng, b) => lengthTweak(rng, b),
  // DER length tweak: find a plausible tag/length pair and alter the length (short/long form)
  (rng, b) => derLengthTweak(rng, b),
  // Dictionary token: overwrite or insert
  (rng, b, o) => {
    if (!o.dict || !o.dict.length) return b;
    const tok = rng.pick(o.dict);
    const at = rng.int(b.length + 1);
    if (rng.chance(0.5) && at + tok.length <= b.length) {
      b.set(tok, at);
      return b;
    }
    return concat(b.subarray(0, at), tok, b.subarray(at));
  },
];

export function mutate(rng: Rng, input: Uint8Array, opts: MutateOptions = {}): Uint8Array {
  const o = { ...opts, maxLen: opts.maxLen ?? 4096 };
  let b: Uint8Array = input.slice();
  let n = opts.count ?? 1;
  if (opts.count === undefined) while (n < 5 && rng.chance(0.45)) n++;
  for (let i = 0; i < n; i++) {
    b = ops[rng.int(ops.length)]!(rng, b, o);
    if (b.length > o.maxLen) b = b.slice(0, o.maxLen);
  }
  // Ops that return subarrays of `input` must not leak views.
  return b.buffer === input.buffer ? b.slice() : b;
}

/** The number of mutation operators (for statistics / tests). */
export const mutationOpCount = ops.length;

function chunk(rng: Rng, b: Uint8Array, n: number): Uint8Array {
  const s = rng.int(b.length);
  return b.subarray(s, Math.min(b.length, s + n));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Encodes v (< 2^53) as a QUIC varint of exactly `len` bytes (1, 2, 4, 8), truncating v to fit. */
export function encodeVarint(v: number, len: 1 | 2 | 4 | 8): Uint8Array {
  const out = new Uint8Array(len);
  const prefix = { 1: 0, 2: 1, 4: 2, 8: 3 }[len];
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = x % 256;
    x = Math.floor(x / 256);
  }
  out[0] = (out[0]! & 0x3f) | (prefix << 6);
  return out;
}

function varintTweak(rng: Rng, b: Uint8Array): Uint8Array {
  if (!b.length) return b;
  const at = rng.int(b.length);
  const oldLen = 1 << (b[at]! >> 6);
  const end = Math.min(b.length, at + oldLen);
  let v = 0;
  for (let i = at; i < end; i++) v = v * 256 + (i === at ? b[i]! & 0x3f : b[i]!);
  const r = rng.int(4);
  let nv: number;
  let len: 1 | 2 | 4 | 8;
  if (r === 0) {
    // Same value, different (possibly non-minimal or too short) encoding.
    nv = v;
    len = rng.pick([1, 2, 4, 8] as const);
  } else if (r === 1) {
    nv = rng.pick(VARINT_VALUES);
    len = nv < 64 ? 1 : nv < 16384 ? 2 : nv < 0x40000000 ? 4 : 8;
  } else if (r === 2) {
    nv = Math.max(0, v + rng.range(-2, 2));
    len = (oldLen as 1 | 2 | 4 | 8);
  } else {
    // The remaining byte count after this field (a "correct" length), ±1.
    nv = Math.max(0, b.length - end + rng.range(-1, 1));
    len = nv < 64 ? 1 : nv < 16384 ? 2 : 4;
  }
  return concat(b.subarray(0, at), encodeVarint(nv, len), b.subarray(end));
}

function lengthTweak(rng: Rng, b: Uint8Array): Uint8Array {
  const w = rng.pick([1, 2, 2, 3] as const);
  if (b.length < w) return b;
  const at = rng.int(b.length - w + 1);
  let v = 0;
  for (let i = 0; i < w; i++) v = v * 256 + b[at + i]!;
  const max = 2 ** (8 * w) - 1;
  const rest = b.length - at - w;
  const r = rng.int(6);
  let nv = r === 0 ? 0 : r === 1 ? max : r === 2 ? v + 1 : r === 3 ? v - 1 : r === 4 ? rest : rest + rng.pick([-1, 1, 2]);
  nv = Math.min(max, Math.max(0, nv));
  for (let i = w - 1; i >= 0; i--) {
    b[at + i] = nv & 0xff;
    nv = Math.floor(nv / 256);
  }
  return b;
}

function derLengthTweak(rng: Rng, b: Uint8Array): Uint8Array {
  if (b.length < 2) return b;
  // Prefer positions that look like a SEQUENCE/SET/INTEGER/OCTET/BIT/OID tag.
  let at = rng.int(b.length - 1);
  for (let tries = 0; tries < 16; tries++) {
    const t = b[at]!;
    if (t === 0x30 || t === 0x31 || (t >= 0x02 && t <= 0x06) || (t & 0xe0) === 0xa0) break;
    at = rng.int(b.length - 1);
  }
  const l = b[at + 1]!;
  const hdrLen = l & 0x80 ? 1 + (l & 0x7f) : 1;
  const r = rng.int(5);
  let enc: number[];
  if (r === 0) enc = [0x80]; // indefinite (BER only)
  else if (r === 1) enc = [0x81, rng.int(0x80)]; // non-minimal long form
  else if (r === 2) enc = [0x84, 0xff, 0xff, 0xff, 0xff];
  else if (r === 3) enc = [rng.int(0x80)];
  else enc = [0x82, 0x00, rng.int(256)]; // leading zero
  return concat(b.subarray(0, at + 1), Uint8Array.from(enc), b.subarray(Math.min(b.length, at + 1 + hdrLen)));
}
