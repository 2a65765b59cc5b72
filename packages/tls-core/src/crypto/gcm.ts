/**
 * AES-GCM (NIST SP 800-38D) for the noble provider, keyed once: the AES key schedule, H and the
 * GHASH table are computed per key instead of per packet (noble's `gcm()` redoes all of that on
 * every call and has no output parameter). Only 12-byte nonces (TLS 1.3 / QUIC).
 *
 * - AES block encryption: noble's `unsafe.encrypt` on the expanded key (state as little-endian words).
 * - GHASH: Shoup's 8-bit table method. M[b] = b·H for every byte value b (a 4 KiB table per key);
 *   X·H = Σ M[x_i]·x^(8i) by Horner's rule over the 16 bytes, with a 256-entry table for the
 *   reduction of the byte shifted out at each step (x^128 = 1 + x + x^2 + x^7).
 *   GCM's bit order is reflected: the first byte's most significant bit is the coefficient of x^0,
 *   so multiplying by x is a right shift.
 * - Works on unaligned buffers and in place (out aliasing the input at the same offset).
 * - open() authenticates before writing anything to `out`.
 */
import { unsafe as aes } from '@noble/ciphers/aes.js';

/** R8[f]: the 16-bit value (in the first two bytes) that reduces byte f shifted past x^127. */
const R8 = /* @__PURE__ */ (() => {
  const t = new Uint16Array(256);
  for (let f = 0; f < 256; f++) {
    let v = 0;
    for (let j = 0; j < 8; j++) if (f & (0x80 >> j)) v ^= (0x8000 >>> j) ^ (0x4000 >>> j) ^ (0x2000 >>> j) ^ (0x0100 >>> j);
    t[f] = v;
  }
  return t;
})();

function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function bswap(x: number): number {
  return ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) >>> 0;
}

/** XORs the little-endian bytes of `w` into dst[o..o+n] from src[o..o+n] (n <= 4). */
function xorWord(src: Uint8Array, dst: Uint8Array, o: number, w: number, n: number): void {
  for (let i = 0; i < n; i++) dst[o + i] = src[o + i]! ^ ((w >>> (8 * i)) & 0xff);
}

/** Tag bytes t[o..o+4] = big-endian bytes of the GHASH word `s` XOR little-endian bytes of the AES word `e`. */
function tagWord(t: Uint8Array, o: number, s: number, e: number): void {
  t[o] = (s >>> 24) ^ e;
  t[o + 1] = (s >>> 16) ^ (e >>> 8);
  t[o + 2] = (s >>> 8) ^ (e >>> 16);
  t[o + 3] = s ^ (e >>> 24);
}

export class AesGcm {
  private readonly xk: Uint32Array;
  private readonly m = new Uint32Array(256 * 4);
  // GHASH accumulator (big-endian words of the 128-bit block).
  private y0 = 0;
  private y1 = 0;
  private y2 = 0;
  private y3 = 0;
  private readonly tag = new Uint8Array(16);

  constructor(key: Uint8Array) {
    this.xk = aes.expandKeyLE(key);
    const h = aes.encrypt(this.xk, 0, 0, 0, 0);
    // H as big-endian words (noble's state words are little-endian).
    let z0 = bswap(h.s0);
    let z1 = bswap(h.s1);
    let z2 = bswap(h.s2);
    let z3 = bswap(h.s3);
    const m = this.m;
    // M[0x80 >> k] = H·x^k.
    for (let k = 0; k < 8; k++) {
      const i = (0x80 >> k) * 4;
      m[i] = z0;
      m[i + 1] = z1;
      m[i + 2] = z2;
      m[i + 3] = z3;
      const carry = z3 & 1;
      z3 = ((z3 >>> 1) | (z2 << 31)) >>> 0;
      z2 = ((z2 >>> 1) | (z1 << 31)) >>> 0;
      z1 = ((z1 >>> 1) | (z0 << 31)) >>> 0;
      z0 = ((z0 >>> 1) ^ (carry ? 0xe1000000 : 0)) >>> 0;
    }
    // Linearity: M[a ^ b] = M[a] ^ M[b].
    for (let b = 3; b < 256; b++) {
      const low = b & -b;
      if (low === b) continue;
      const r = b ^ low;
      for (let w = 0; w < 4; w++) m[b * 4 + w] = m[r * 4 + w]! ^ m[low * 4 + w]!;
    }
  }

  /** y = (y ^ block) · H, block given as big-endian words. */
  private absorb(b0: number, b1: number, b2: number, b3: number): void {
    const m = this.m;
    const w0 = this.y0 ^ b0;
    const w1 = this.y1 ^ b1;
    const w2 = this.y2 ^ b2;
    const w3 = this.y3 ^ b3;
    let z0 = 0;
    let z1 = 0;
    let z2 = 0;
    let z3 = 0;
    // Horner from the last byte (x^120..x^127) to the first: Z = Z·x^8 ^ M[byte].
    for (let k = 15; k >= 0; k--) {
      const word = k >= 12 ? w3 : k >= 8 ? w2 : k >= 4 ? w1 : w0;
      const i = ((word >>> (24 - 8 * (k & 3))) & 0xff) << 2;
      const f = z3 & 0xff;
      z3 = ((z3 >>> 8) | (z2 << 24)) ^ m[i + 3]!;
      z2 = ((z2 >>> 8) | (z1 << 24)) ^ m[i + 2]!;
      z1 = ((z1 >>> 8) | (z0 << 24)) ^ m[i + 1]!;
      z0 = (z0 >>> 8) ^ (R8[f]! << 16) ^ m[i]!;
    }
    this.y0 = z0;
    this.y1 = z1;
    this.y2 = z2;
    this.y3 = z3;
  }

  private ghashBytes(data: Uint8Array, start: number, end: number): void {
    let p = start;
    for (; p + 16 <= end; p += 16) this.absorb(be32(data, p), be32(data, p + 4), be32(data, p + 8), be32(data, p + 12));
    if (p < end) {
      // Zero-padded final block.
      let w0 = 0;
      let w1 = 0;
      let w2 = 0;
      let w3 = 0;
      for (let i = 0; p + i < end; i++) {
        const v = data[p + i]! << (24 - 8 * (i & 3));
        if (i < 4) w0 |= v;
        else if (i < 8) w1 |= v;
        else if (i < 12) w2 |= v;
        else w3 |= v;
      }
      this.absorb(w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0);
    }
  }

  /** GCTR from counter 2 over src[0..len] into dst (may alias at the same offset). */
  private ctr(n0: number, n1: number, n2: number, src: Uint8Array, dst: Uint8Array, len: number): void {
    const xk = this.xk;
    let c = 2;
    let p = 0;
    for (; p + 16 <= len; p += 16, c++) {
      const k = aes.encrypt(xk, n0, n1, n2, bswap(c));
      const k0 = k.s0;
      const k1 = k.s1;
      const k2 = k.s2;
      const k3 = k.s3;
      dst[p] = src[p]! ^ k0;
      dst[p + 1] = src[p + 1]! ^ (k0 >>> 8);
      dst[p + 2] = src[p + 2]! ^ (k0 >>> 16);
      dst[p + 3] = src[p + 3]! ^ (k0 >>> 24);
      dst[p + 4] = src[p + 4]! ^ k1;
      dst[p + 5] = src[p + 5]! ^ (k1 >>> 8);
      dst[p + 6] = src[p + 6]! ^ (k1 >>> 16);
      dst[p + 7] = src[p + 7]! ^ (k1 >>> 24);
      dst[p + 8] = src[p + 8]! ^ k2;
      dst[p + 9] = src[p + 9]! ^ (k2 >>> 8);
      dst[p + 10] = src[p + 10]! ^ (k2 >>> 16);
      dst[p + 11] = src[p + 11]! ^ (k2 >>> 24);
      dst[p + 12] = src[p + 12]! ^ k3;
      dst[p + 13] = src[p + 13]! ^ (k3 >>> 8);
      dst[p + 14] = src[p + 14]! ^ (k3 >>> 16);
      dst[p + 15] = src[p + 15]! ^ (k3 >>> 24);
    }
    if (p < len) {
      // Final partial block (Uint8Array stores keep the low 8 bits).
      const k = aes.encrypt(xk, n0, n1, n2, bswap(c));
      const n = len - p;
      xorWord(src, dst, p, k.s0, Math.min(4, n));
      if (n > 4) xorWord(src, dst, p + 4, k.s1, Math.min(4, n - 4));
      if (n > 8) xorWord(src, dst, p + 8, k.s2, Math.min(4, n - 8));
      if (n > 12) xorWord(src, dst, p + 12, k.s3, n - 12);
    }
  }

  /** Computes the tag into this.tag: E(K, J0) ^ GHASH(A, C). */
  private computeTag(n0: number, n1: number, n2: number, aad: Uint8Array, ct: Uint8Array, ctLen: number): Uint8Array {
    this.y0 = this.y1 = this.y2 = this.y3 = 0;
    this.ghashBytes(aad, 0, aad.length);
    this.ghashBytes(ct, 0, ctLen);
    const aBits = aad.length * 8;
    const cBits = ctLen * 8;
    this.absorb(Math.floor(aBits / 0x100000000), aBits >>> 0, Math.floor(cBits / 0x100000000), cBits >>> 0);
    const e = aes.encrypt(this.xk, n0, n1, n2, 0x01000000); // J0 = nonce || 00000001
    const t = this.tag;
    tagWord(t, 0, this.y0, e.s0);
    tagWord(t, 4, this.y1, e.s1);
    tagWord(t, 8, this.y2, e.s2);
    tagWord(t, 12, this.y3, e.s3);
    return t;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    if (nonce.length !== 12) throw new RangeError('AES-GCM nonce must be 12 bytes');
    const len = plaintext.length;
    const res = out ? out.subarray(0, len + 16) : new Uint8Array(len + 16);
    if (res.length < len + 16) throw new RangeError('AEAD output buffer too small');
    const n0 = le32(nonce, 0);
    const n1 = le32(nonce, 4);
    const n2 = le32(nonce, 8);
    this.ctr(n0, n1, n2, plaintext, res, len);
    res.set(this.computeTag(n0, n1, n2, aad, res, len), len);
    return res;
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null {
    const len = ciphertext.length - 16;
    if (len < 0 || nonce.length !== 12) return null;
    if (out && out.length < len) return null;
    const n0 = le32(nonce, 0);
    const n1 = le32(nonce, 4);
    const n2 = le32(nonce, 8);
    const t = this.computeTag(n0, n1, n2, aad, ciphertext, len);
    let d = 0;
    for (let i = 0; i < 16; i++) d |= t[i]! ^ ciphertext[len + i]!;
    if (d !== 0) return null;
    const res = out ? out.subarray(0, len) : new Uint8Array(len);
    this.ctr(n0, n1, n2, ciphertext, res, len);
    return res;
  }
}
