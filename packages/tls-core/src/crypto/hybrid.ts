/**
 * X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem, codepoint 0x11ec), built on any provider's X25519.
 *
 * ML-KEM comes from @noble/post-quantum in both providers: Node 20's node:crypto has no ML-KEM
 * (it arrived with OpenSSL 3.5, which Node 20 does not ship).
 *
 * Wire layout (ML-KEM part first for this group, unlike the older X25519Kyber768Draft00):
 * - client share: ML-KEM-768 encapsulation key (1184) || X25519 public key (32)
 * - server share: ML-KEM-768 ciphertext (1088) || X25519 public key (32)
 * - shared secret: ML-KEM shared secret (32) || X25519 shared secret (32)
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { KeyExchange, KeyShare } from './provider.js';

export const MLKEM768_EK = 1184;
export const MLKEM768_CT = 1088;
const X25519_LEN = 32;

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function x25519Mlkem768(x25519: KeyExchange, randomBytes: (n: number) => Uint8Array): KeyExchange {
  return {
    group: 'x25519mlkem768',
    generate(privateKey?: Uint8Array): KeyShare {
      if (privateKey && privateKey.length !== 64 + 32) throw new RangeError('x25519mlkem768 private key must be the 64-byte ML-KEM seed followed by the 32-byte X25519 scalar');
      const kem = ml_kem768.keygen(privateKey ? privateKey.subarray(0, 64) : randomBytes(64));
      const x = x25519.generate(privateKey ? privateKey.subarray(64) : undefined);
      const share = concat2(kem.publicKey, x.share);
      const dk = kem.secretKey;
      return {
        group: 'x25519mlkem768',
        share,
        complete(peerShare: Uint8Array): Uint8Array | null {
          if (peerShare.length !== MLKEM768_CT + X25519_LEN) return null;
          let ssK: Uint8Array;
          try {
            ssK = ml_kem768.decapsulate(peerShare.subarray(0, MLKEM768_CT), dk);
          } catch {
            return null;
          }
          const ssX = x.complete(peerShare.subarray(MLKEM768_CT));
          return ssX ? concat2(ssK, ssX) : null;
        },
      };
    },
    respond(clientShare: Uint8Array) {
      if (clientShare.length !== MLKEM768_EK + X25519_LEN) return null;
      let enc: { cipherText: Uint8Array; sharedSecret: Uint8Array };
      try {
        // Throws on an encapsulation key that fails the FIPS 203 §7.2 modulus check.
        enc = ml_kem768.encapsulate(clientShare.subarray(0, MLKEM768_EK), randomBytes(32));
      } catch {
        return null;
      }
      const x = x25519.generate();
      const ssX = x.complete(clientShare.subarray(MLKEM768_EK));
      if (!ssX) return null;
      return { share: concat2(enc.cipherText, x.share), secret: concat2(enc.sharedSecret, ssX) };
    },
  };
}
