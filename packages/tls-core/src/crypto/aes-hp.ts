/**
 * AES header-protection mask (RFC 9001 §5.4.3): mask = AES-ECB(hp_key, sample)[0..5], one block
 * with the key schedule expanded once, on @noble/ciphers' AES core. Nothing is allocated per call
 * beyond what V8 scalar-replaces.
 *
 * Used by both providers. node:crypto's only per-block entry point is `Cipher.update()`, a native
 * call that allocates a Buffer per block (~0.5 µs on the bench machine, ~6x this code; see
 * bench/README.md). The trade-off: noble's AES is table-based, so unlike OpenSSL's AES-NI it is
 * not constant-time against a cache-timing attacker on the same host. What it protects here is
 * the header-protection key only (RFC 9001 §5.4: packet-number confidentiality, not payload
 * secrecy or integrity, which stay with the AEAD).
 */
import { unsafe as aesUnsafe } from '@noble/ciphers/aes.js';
import type { HeaderProtection } from './provider.js';

export class AesHeaderProtection implements HeaderProtection {
  private readonly xk: Uint32Array;
  private readonly out = new Uint8Array(5);
  constructor(key: Uint8Array) {
    if (key.length !== 16 && key.length !== 32) throw new RangeError('AES header protection key must be 16 or 32 bytes');
    this.xk = aesUnsafe.expandKeyLE(key.slice());
  }
  mask(sample: Uint8Array, offset = 0): Uint8Array {
    if (offset < 0 || offset + 16 > sample.length) throw new RangeError('header protection sample needs 16 bytes');
    const r = aesUnsafe.encrypt(this.xk, le32(sample, offset), le32(sample, offset + 4), le32(sample, offset + 8), le32(sample, offset + 12));
    const s0 = r.s0;
    const m = this.out;
    m[0] = s0;
    m[1] = s0 >>> 8;
    m[2] = s0 >>> 16;
    m[3] = s0 >>> 24;
    m[4] = r.s1;
    return m;
  }
}

function le32(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}
