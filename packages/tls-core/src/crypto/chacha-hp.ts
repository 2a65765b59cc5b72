/**
 * ChaCha20 header-protection mask (RFC 9001 §5.4.4) from one ChaCha20 block (RFC 8439 §2.3),
 * written out so that it allocates nothing per call and accepts every counter value: the sample
 * is peer-controlled, and a general ChaCha20 stream API may refuse counter 0xffffffff.
 */
import type { HeaderProtection } from './provider.js';

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

export class ChaChaHeaderProtection implements HeaderProtection {
  /** Initial state; words 12..15 (counter, nonce) are filled per call. */
  private readonly init = new Uint32Array(16);
  private readonly x = new Uint32Array(16);
  private readonly out = new Uint8Array(5);

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('ChaCha20 key must be 32 bytes');
    const s = this.init;
    s[0] = 0x61707865;
    s[1] = 0x3320646e;
    s[2] = 0x79622d32;
    s[3] = 0x6b206574;
    for (let i = 0; i < 8; i++) s[4 + i] = le32(key, i * 4);
  }

  mask(sample: Uint8Array, offset = 0): Uint8Array {
    if (offset < 0 || offset + 16 > sample.length) throw new RangeError('header protection sample needs 16 bytes');
    const s = this.init;
    // counter = sample[0..4] little-endian, nonce = sample[4..16] (three little-endian words).
    s[12] = le32(sample, offset);
    s[13] = le32(sample, offset + 4);
    s[14] = le32(sample, offset + 8);
    s[15] = le32(sample, offset + 12);
    const x = this.x;
    x.set(s);
    for (let i = 0; i < 10; i++) {
      qr(x, 0, 4, 8, 12);
      qr(x, 1, 5, 9, 13);
      qr(x, 2, 6, 10, 14);
      qr(x, 3, 7, 11, 15);
      qr(x, 0, 5, 10, 15);
      qr(x, 1, 6, 11, 12);
      qr(x, 2, 7, 8, 13);
      qr(x, 3, 4, 9, 14);
    }
    // Keystream bytes 0..4 = LE bytes of (x0 + s0) and the low byte of (x1 + s1); XOR with zeros.
    const w0 = (x[0]! + s[0]!) >>> 0;
    const w1 = (x[1]! + s[1]!) >>> 0;
    const m = this.out;
    m[0] = w0 & 0xff;
    m[1] = (w0 >>> 8) & 0xff;
    m[2] = (w0 >>> 16) & 0xff;
    m[3] = w0 >>> 24;
    m[4] = w1 & 0xff;
    return m;
  }
}

function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** The ChaCha quarter round (RFC 8439 §2.1) on state words a, b, c, d. */
function qr(x: Uint32Array, a: number, b: number, c: number, d: number): void {
  x[a] = x[a]! + x[b]!;
  x[d] = rotl(x[d]! ^ x[a]!, 16);
  x[c] = x[c]! + x[d]!;
  x[b] = rotl(x[b]! ^ x[c]!, 12);
  x[a] = x[a]! + x[b]!;
  x[d] = rotl(x[d]! ^ x[a]!, 8);
  x[c] = x[c]! + x[d]!;
  x[b] = rotl(x[b]! ^ x[c]!, 7);
}
