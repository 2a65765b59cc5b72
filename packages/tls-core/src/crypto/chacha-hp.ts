/**
 * ChaCha20 header-protection mask (RFC 9001 §5.4.4) from one ChaCha20 block (RFC 8439 §2.3),
 * written out so that it allocates nothing per call and accepts every counter value: the sample
 * is peer-controlled, and a general ChaCha20 stream API may refuse counter 0xffffffff.
 *
 * Used by both providers: node:crypto needs a createCipheriv per sample (one native call and
 * several allocations), several times slower than these 20 rounds on local variables. ChaCha20
 * is add-rotate-xor only (no table lookups), so this runs in constant time like OpenSSL's.
 */
import type { HeaderProtection } from './provider.js';

/** The constant words "expand 32-byte k" (RFC 8439 §2.3). */
const C0 = 0x61707865;
const C1 = 0x3320646e;
const C2 = 0x79622d32;
const C3 = 0x6b206574;

export class ChaChaHeaderProtection implements HeaderProtection {
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;
  private readonly k4: number;
  private readonly k5: number;
  private readonly k6: number;
  private readonly k7: number;
  private readonly out = new Uint8Array(5);

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('ChaCha20 key must be 32 bytes');
    this.k0 = le32(key, 0);
    this.k1 = le32(key, 4);
    this.k2 = le32(key, 8);
    this.k3 = le32(key, 12);
    this.k4 = le32(key, 16);
    this.k5 = le32(key, 20);
    this.k6 = le32(key, 24);
    this.k7 = le32(key, 28);
  }

  mask(sample: Uint8Array, offset = 0): Uint8Array {
    if (offset < 0 || offset + 16 > sample.length) throw new RangeError('header protection sample needs 16 bytes');
    // State words 0..3 constants, 4..11 key, 12 = counter = sample[0..4] little-endian,
    // 13..15 = nonce = sample[4..16] (three little-endian words). All int32 arithmetic.
    let x0 = C0 | 0,
      x1 = C1 | 0,
      x2 = C2 | 0,
      x3 = C3 | 0;
    let x4 = this.k0 | 0,
      x5 = this.k1 | 0,
      x6 = this.k2 | 0,
      x7 = this.k3 | 0;
    let x8 = this.k4 | 0,
      x9 = this.k5 | 0,
      x10 = this.k6 | 0,
      x11 = this.k7 | 0;
    let x12 = le32(sample, offset) | 0,
      x13 = le32(sample, offset + 4) | 0,
      x14 = le32(sample, offset + 8) | 0,
      x15 = le32(sample, offset + 12) | 0;
    let t: number;
    for (let i = 0; i < 10; i++) {
      // Column rounds: QR(0,4,8,12) QR(1,5,9,13) QR(2,6,10,14) QR(3,7,11,15) (RFC 8439 §2.1, §2.3).
      x0 = (x0 + x4) | 0; t = x12 ^ x0; x12 = (t << 16) | (t >>> 16);
      x8 = (x8 + x12) | 0; t = x4 ^ x8; x4 = (t << 12) | (t >>> 20);
      x0 = (x0 + x4) | 0; t = x12 ^ x0; x12 = (t << 8) | (t >>> 24);
      x8 = (x8 + x12) | 0; t = x4 ^ x8; x4 = (t << 7) | (t >>> 25);

      x1 = (x1 + x5) | 0; t = x13 ^ x1; x13 = (t << 16) | (t >>> 16);
      x9 = (x9 + x13) | 0; t = x5 ^ x9; x5 = (t << 12) | (t >>> 20);
      x1 = (x1 + x5) | 0; t = x13 ^ x1; x13 = (t << 8) | (t >>> 24);
      x9 = (x9 + x13) | 0; t = x5 ^ x9; x5 = (t << 7) | (t >>> 25);

      x2 = (x2 + x6) | 0; t = x14 ^ x2; x14 = (t << 16) | (t >>> 16);
      x10 = (x10 + x14) | 0; t = x6 ^ x10; x6 = (t << 12) | (t >>> 20);
      x2 = (x2 + x6) | 0; t = x14 ^ x2; x14 = (t << 8) | (t >>> 24);
      x10 = (x10 + x14) | 0; t = x6 ^ x10; x6 = (t << 7) | (t >>> 25);

      x3 = (x3 + x7) | 0; t = x15 ^ x3; x15 = (t << 16) | (t >>> 16);
      x11 = (x11 + x15) | 0; t = x7 ^ x11; x7 = (t << 12) | (t >>> 20);
      x3 = (x3 + x7) | 0; t = x15 ^ x3; x15 = (t << 8) | (t >>> 24);
      x11 = (x11 + x15) | 0; t = x7 ^ x11; x7 = (t << 7) | (t >>> 25);

      // Diagonal rounds: QR(0,5,10,15) QR(1,6,11,12) QR(2,7,8,13) QR(3,4,9,14).
      x0 = (x0 + x5) | 0; t = x15 ^ x0; x15 = (t << 16) | (t >>> 16);
      x10 = (x10 + x15) | 0; t = x5 ^ x10; x5 = (t << 12) | (t >>> 20);
      x0 = (x0 + x5) | 0; t = x15 ^ x0; x15 = (t << 8) | (t >>> 24);
      x10 = (x10 + x15) | 0; t = x5 ^ x10; x5 = (t << 7) | (t >>> 25);

      x1 = (x1 + x6) | 0; t = x12 ^ x1; x12 = (t << 16) | (t >>> 16);
      x11 = (x11 + x12) | 0; t = x6 ^ x11; x6 = (t << 12) | (t >>> 20);
      x1 = (x1 + x6) | 0; t = x12 ^ x1; x12 = (t << 8) | (t >>> 24);
      x11 = (x11 + x12) | 0; t = x6 ^ x11; x6 = (t << 7) | (t >>> 25);

      x2 = (x2 + x7) | 0; t = x13 ^ x2; x13 = (t << 16) | (t >>> 16);
      x8 = (x8 + x13) | 0; t = x7 ^ x8; x7 = (t << 12) | (t >>> 20);
      x2 = (x2 + x7) | 0; t = x13 ^ x2; x13 = (t << 8) | (t >>> 24);
      x8 = (x8 + x13) | 0; t = x7 ^ x8; x7 = (t << 7) | (t >>> 25);

      x3 = (x3 + x4) | 0; t = x14 ^ x3; x14 = (t << 16) | (t >>> 16);
      x9 = (x9 + x14) | 0; t = x4 ^ x9; x4 = (t << 12) | (t >>> 20);
      x3 = (x3 + x4) | 0; t = x14 ^ x3; x14 = (t << 8) | (t >>> 24);
      x9 = (x9 + x14) | 0; t = x4 ^ x9; x4 = (t << 7) | (t >>> 25);
    }
    // Keystream bytes 0..4 = LE bytes of (x0 + C0) and the low byte of (x1 + C1); XOR with zeros.
    // Words 2..15 do not reach the first five bytes, so their final additions are skipped.
    const w0 = (x0 + C0) | 0;
    const w1 = (x1 + C1) | 0;
    const m = this.out;
    m[0] = w0;
    m[1] = w0 >>> 8;
    m[2] = w0 >>> 16;
    m[3] = w0 >>> 24;
    m[4] = w1;
    return m;
  }
}

function le32(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}
