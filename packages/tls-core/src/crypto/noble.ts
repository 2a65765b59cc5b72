/**
 * The `noble` crypto provider: @noble/hashes, @noble/ciphers, @noble/curves, @noble/post-quantum.
 * Pure JavaScript, so it runs anywhere (browsers, Deno, Bun, workers). RSA is our own BigInt
 * code (./rsa.ts): noble has none.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { expand as hkdfExpandNoble, extract as hkdfExtractNoble } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js';
import { ConfigError } from '../errors.js';
import { AesHeaderProtection } from './aes-hp.js';
import { ChaChaHeaderProtection } from './chacha-hp.js';
import { AesGcm } from './gcm.js';
import { x25519Mlkem768 } from './hybrid.js';
import {
  allSignatureSchemes,
  checkKeyPair,
  ecFieldLength,
  ecPkcs8,
  ecSpki,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  ed25519Pkcs8,
  ed25519Spki,
  parsePrivateKey,
  parseSpki,
  rsaPkcs8,
  rsaSpki,
  verifyByScheme,
  schemeMismatch,
  schemesFor,
  type EcCurve,
} from './keys.js';
import {
  aeadKeyLength,
  hashLength,
  type Aead,
  type AeadAlg,
  type CryptoProvider,
  type Hash,
  type HashAlg,
  type HeaderProtection,
  type KeyExchange,
  type KeyShare,
  type KeyType,
  type NamedGroup,
  type SignatureAlgorithm,
  type SignatureScheme,
  type SigningKey,
} from './provider.js';
import {
  os2ip,
  rsaComponentsFromPrivate,
  rsaGenerate,
  rsaPkcs1Verify,
  rsaPrivateFromComponents,
  rsaPssSign,
  rsaPssVerify,
  type HashFn,
  type RsaPrivateKey,
} from './rsa.js';

const hashes = { sha256, sha384, sha512 } as const;
type AnyHash = keyof typeof hashes;

function randomBytes(n: number): Uint8Array {
  return nobleRandomBytes(n);
}

const hashFn: HashFn = (alg, data) => hashes[alg](data);

type NobleHashState = ReturnType<typeof sha256.create> | ReturnType<typeof sha384.create>;

class NobleHash implements Hash {
  private readonly h: NobleHashState;
  constructor(
    readonly alg: HashAlg,
    h?: NobleHashState,
  ) {
    this.h = h ?? hashes[alg].create();
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  digest(): Uint8Array {
    return this.h.clone().digest();
  }
  clone(): Hash {
    return new NobleHash(this.alg, this.h.clone());
  }
}

function checkKey(alg: AeadAlg, key: Uint8Array, what: string): void {
  const want = aeadKeyLength[alg];
  if (want === undefined) throw new ConfigError(`unknown AEAD '${alg}': use aes-128-gcm, aes-256-gcm or chacha20-poly1305`);
  if (key.length !== want) throw new ConfigError(`${alg} ${what} must be ${want} bytes, got ${key.length}`);
}

const TAG = 16;

class NobleAead implements Aead {
  private readonly key: Uint8Array;
  private readonly gcm: AesGcm | null;
  constructor(
    readonly alg: AeadAlg,
    key: Uint8Array,
  ) {
    checkKey(alg, key, 'key');
    this.key = key.slice(); // noble borrows the key by reference: keep our own copy
    // AES-GCM: our keyed implementation on noble's AES core (./gcm.ts); noble's gcm() re-derives
    // the key schedule and GHASH tables on every call.
    this.gcm = alg === 'chacha20-poly1305' ? null : new AesGcm(this.key);
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    const len = plaintext.length;
    if (out && out.length < len + TAG) throw new RangeError('AEAD output buffer too small');
    if (this.gcm) return this.gcm.seal(nonce, aad, plaintext, out);
    // Writes straight into `out` (in place when it aliases the plaintext).
    return chacha20poly1305(this.key, nonce, aad).encrypt(plaintext, out ? out.subarray(0, len + TAG) : undefined);
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null {
    const len = ciphertext.length - TAG;
    if (len < 0 || nonce.length !== 12) return null;
    if (out && out.length < len) return null;
    if (this.gcm) return this.gcm.open(nonce, aad, ciphertext, out);
    try {
      // The tag is checked before anything is written to `out`.
      return chacha20poly1305(this.key, nonce, aad).decrypt(ciphertext, out ? out.subarray(0, len) : undefined);
    } catch {
      return null;
    }
  }
}

function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

function respondWith(kx: KeyExchange, clientShare: Uint8Array): { share: Uint8Array; secret: Uint8Array } | null {
  const ours = kx.generate();
  const secret = ours.complete(clientShare);
  return secret ? { share: ours.share, secret } : null;
}

const x25519: KeyExchange = {
  group: 'x25519',
  generate(privateKey?: Uint8Array): KeyShare {
    if (privateKey && privateKey.length !== 32) throw new RangeError('x25519 private key must be 32 bytes');
    const priv = privateKey ? privateKey.slice() : randomBytes(32);
    const share = nobleX25519.getPublicKey(priv);
    return {
      group: 'x25519',
      share,
      complete(peerShare: Uint8Array): Uint8Array | null {
        if (peerShare.length !== 32) return null;
        try {
          const s = nobleX25519.getSharedSecret(priv, peerShare);
          // RFC 8446 §7.4.2: abort on an all-zero X25519 shared secret.
          return isAllZero(s) ? null : s;
        } catch {
          return null;
        }
      },
    };
  },
  respond(clientShare: Uint8Array) {
    return respondWith(x25519, clientShare);
  },
};

const curves = { p256, p384 } as const;

function ecdhGroup(group: 'secp256r1' | 'secp384r1'): KeyExchange {
  const curveName: EcCurve = group === 'secp256r1' ? 'p256' : 'p384';
  const curve = curves[curveName];
  const flen = ecFieldLength[curveName];
  const kx: KeyExchange = {
    group,
    generate(privateKey?: Uint8Array): KeyShare {
      if (privateKey && (privateKey.length !== flen || !curve.utils.isValidSecretKey(privateKey))) throw new RangeError(`${group} private key must be a valid ${flen}-byte scalar`);
      const priv = privateKey ? privateKey.slice() : curve.utils.randomSecretKey();
      const share = curve.getPublicKey(priv, false); // uncompressed 0x04 || x || y
      return {
        group,
        share,
        complete(peerShare: Uint8Array): Uint8Array | null {
          if (peerShare.length !== 1 + 2 * flen || peerShare[0] !== 4) return null;
          try {
            // noble validates that the point is on the curve (and not the identity).
            return curve.getSharedSecret(priv, peerShare, true).slice(1); // x coordinate
          } catch {
            return null;
          }
        },
      };
    },
    respond(clientShare: Uint8Array) {
      return respondWith(kx, clientShare);
    },
  };
  return kx;
}

const keyExchanges: Record<NamedGroup, KeyExchange> = {
  x25519,
  secp256r1: ecdhGroup('secp256r1'),
  secp384r1: ecdhGroup('secp384r1'),
  x25519mlkem768: x25519Mlkem768(x25519, randomBytes),
};

type Signer = (scheme: SignatureScheme, message: Uint8Array) => Uint8Array;

class NobleSigningKey implements SigningKey {
  readonly schemes: readonly SignatureScheme[];
  constructor(
    readonly type: KeyType,
    readonly bits: number,
    readonly spki: Uint8Array,
    private readonly signer: Signer,
  ) {
    this.schemes = schemesFor(type);
  }
  sign(scheme: SignatureScheme, message: Uint8Array): Uint8Array {
    if (!this.schemes.includes(scheme)) throw schemeMismatch(this.type, scheme);
    return this.signer(scheme, message);
  }
}

function loadPrivateKey(der: Uint8Array): SigningKey {
  return checkKeyPair(loadUnchecked(der), verify);
}

function loadUnchecked(der: Uint8Array): SigningKey {
  const p = parsePrivateKey(der);
  switch (p.type) {
    case 'ec-p256':
    case 'ec-p384': {
      const curve = curves[p.curve];
      const d = p.d.slice();
      if (!curve.utils.isValidSecretKey(d)) throw new ConfigError(`invalid ${p.type} private key: scalar out of range`);
      const point = curve.getPublicKey(d, false);
      if (p.publicKey && !bytesEqual(p.publicKey, point)) throw new ConfigError(`invalid ${p.type} private key: the embedded public key does not match the private scalar`);
      const hash = p.curve === 'p256' ? sha256 : sha384;
      return new NobleSigningKey(p.type, p.bits, ecSpki(p.curve, point), (_s, msg) =>
        ecdsaRawToDer(curve.sign(hash(msg), d, { prehash: false, format: 'compact' })),
      );
    }
    case 'ed25519': {
      const seed = p.seed.slice();
      return new NobleSigningKey('ed25519', 256, ed25519Spki(ed25519.getPublicKey(seed)), (_s, msg) => ed25519.sign(msg, seed));
    }
    case 'rsa': {
      let key: RsaPrivateKey;
      try {
        key = rsaPrivateFromComponents(p.rsa);
      } catch (e) {
        throw new ConfigError(`invalid RSA private key: ${(e as Error).message}`);
      }
      return new NobleSigningKey('rsa', p.bits, rsaSpki(p.rsa.n, p.rsa.e), (scheme, msg) => {
        // rsa_pss_rsae_*: salt length = hash length, MGF1 with the same hash (RFC 8446 §4.2.3).
        const hash: AnyHash = scheme === 'rsa_pss_rsae_sha256' ? 'sha256' : scheme === 'rsa_pss_rsae_sha384' ? 'sha384' : 'sha512';
        return rsaPssSign(hashFn, randomBytes, key, hash, msg);
      });
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function generatePrivateKey(type: KeyType, bits?: number): Uint8Array {
  switch (type) {
    case 'ec-p256':
    case 'ec-p384': {
      const c: EcCurve = type === 'ec-p256' ? 'p256' : 'p384';
      const d = curves[c].utils.randomSecretKey();
      return ecPkcs8(c, d, curves[c].getPublicKey(d, false));
    }
    case 'ed25519':
      return ed25519Pkcs8(randomBytes(32));
    case 'rsa':
      return rsaPkcs8(rsaComponentsFromPrivate(rsaGenerate(bits ?? 2048, randomBytes)));
    default:
      throw new ConfigError(`cannot generate key type '${String(type)}': use ec-p256, ec-p384, ed25519 or rsa`);
  }
}

function verifySignature(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const pk = parseSpki(spki);
    if (!pk) return false;
    switch (alg.kind) {
      case 'ecdsa': {
        if (pk.kind !== 'ec' || !(alg.hash in hashes)) return false;
        const raw = ecdsaDerToRaw(signature, ecFieldLength[pk.curve]);
        if (!raw) return false;
        // Hash here (any hash with any curve, as X.509 allows); noble truncates per SEC 1 §4.1.4.
        return curves[pk.curve].verify(raw, hashes[alg.hash](message), pk.point, { prehash: false, lowS: false, format: 'compact' });
      }
      case 'ed25519':
        // Strict RFC 8032 verification (no ZIP-215 leniency), as OpenSSL does.
        return pk.kind === 'ed25519' && signature.length === 64 && ed25519.verify(signature, message, pk.key, { zip215: false });
      case 'rsa-pkcs1':
        return pk.kind === 'rsa' && !pk.pss && alg.hash in hashes && rsaPkcs1Verify(hashFn, { n: os2ip(pk.n), e: os2ip(pk.e), bits: pk.bits }, alg.hash, message, signature);
      case 'rsa-pss':
        return pk.kind === 'rsa' && alg.hash in hashes && rsaPssVerify(hashFn, { n: os2ip(pk.n), e: os2ip(pk.e), bits: pk.bits }, alg.hash, message, signature, alg.saltLength);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

function verify(scheme: SignatureScheme, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return verifyByScheme(verifySignature, scheme, spki, message, signature);
}

export const nobleProvider: CryptoProvider = {
  name: 'noble',
  randomBytes,
  hash: (alg) => new NobleHash(alg),
  digest: (alg, data) => hashes[alg](data),
  hmac: (alg, key, data) => nobleHmac(hashes[alg], key, data),
  hkdfExtract: (alg, salt, ikm) => hkdfExtractNoble(hashes[alg], ikm, salt),
  hkdfExpand(alg: HashAlg, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    if (length > 255 * hashLength[alg]) throw new RangeError(`HKDF-Expand length ${length} exceeds 255 * HashLen`);
    return hkdfExpandNoble(hashes[alg], prk, info, length);
  },
  aead: (alg, key) => new NobleAead(alg, key),
  headerProtection(alg: AeadAlg, hpKey: Uint8Array): HeaderProtection {
    checkKey(alg, hpKey, 'header protection key');
    return alg === 'chacha20-poly1305' ? new ChaChaHeaderProtection(hpKey) : new AesHeaderProtection(hpKey);
  },
  groups: ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'],
  keyExchange(group: NamedGroup): KeyExchange {
    const kx = keyExchanges[group];
    if (!kx) throw new ConfigError(`unsupported key exchange group '${String(group)}': use x25519, secp256r1, secp384r1 or x25519mlkem768`);
    return kx;
  },
  signatureSchemes: allSignatureSchemes,
  loadPrivateKey,
  generatePrivateKey,
  verifySignature,
  verify,
};
