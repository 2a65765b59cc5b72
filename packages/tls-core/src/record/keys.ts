/**
 * Record protection keys (RFC 8446 §5.2, §5.3, §7.3): one AEAD context per traffic secret, the
 * static IV, a reusable nonce buffer and the 64-bit sequence number (kept as a JS number: we
 * never get near 2^53 records because the key usage limits of §5.5 force a KeyUpdate long before).
 */
import type { Aead, CryptoProvider } from '../crypto/provider.js';
import { aeadKeyLength } from '../crypto/provider.js';
import type { CipherSuite } from '../handshake/api.js';
import { CipherSuites } from '../handshake/api.js';
import { hkdfExpandLabel } from '../hkdf.js';

const EMPTY = new Uint8Array(0);
const TWO_32 = 4294967296;

/**
 * Records per key after which the writer should send a KeyUpdate (RFC 8446 §5.5: AES-GCM may
 * protect at most 2^24.5 full-size records per key; ChaCha20-Poly1305 has no practical limit,
 * we still rekey well before the sequence number could overflow).
 */
export function softRecordLimit(suite: CipherSuite): number {
  return CipherSuites[suite].aead === 'chacha20-poly1305' ? 2 ** 48 : 2 ** 24;
}
/** Hard limit: the writer refuses to use the key beyond this many records. */
export function hardRecordLimit(suite: CipherSuite): number {
  return CipherSuites[suite].aead === 'chacha20-poly1305' ? Number.MAX_SAFE_INTEGER : Math.floor(2 ** 24.5);
}

export class RecordKey {
  readonly aead: Aead;
  readonly iv: Uint8Array;
  /** Reused for every record: valid only until the next call to {@link nextNonce}. */
  private readonly nonce = new Uint8Array(12);
  /** Number of records protected (or deprotected) with this key so far. */
  seq = 0;

  constructor(
    provider: CryptoProvider,
    readonly suite: CipherSuite,
    secret: Uint8Array,
  ) {
    const s = CipherSuites[suite];
    const key = hkdfExpandLabel(provider, s.hash, secret, 'key', EMPTY, aeadKeyLength[s.aead]);
    this.iv = hkdfExpandLabel(provider, s.hash, secret, 'iv', EMPTY, 12);
    this.aead = provider.aead(s.aead, key);
  }

  /**
   * The per-record nonce (RFC 8446 §5.3): the 64-bit sequence number, left-padded to 12 bytes,
   * XORed with the static IV. Does not advance the sequence number (see {@link advance}).
   */
  nonceFor(seq: number): Uint8Array {
    const n = this.nonce;
    const iv = this.iv;
    const hi = Math.floor(seq / TWO_32) >>> 0;
    const lo = seq >>> 0;
    for (let i = 0; i < 4; i++) n[i] = iv[i]!;
    n[4] = iv[4]! ^ (hi >>> 24);
    n[5] = iv[5]! ^ ((hi >>> 16) & 0xff);
    n[6] = iv[6]! ^ ((hi >>> 8) & 0xff);
    n[7] = iv[7]! ^ (hi & 0xff);
    n[8] = iv[8]! ^ (lo >>> 24);
    n[9] = iv[9]! ^ ((lo >>> 16) & 0xff);
    n[10] = iv[10]! ^ ((lo >>> 8) & 0xff);
    n[11] = iv[11]! ^ (lo & 0xff);
    return n;
  }
}
