/**
 * The `node` crypto provider: node:crypto (OpenSSL). Default on Node.
 * ML-KEM (for x25519mlkem768) comes from @noble/post-quantum: Node 20 has no ML-KEM. QUIC
 * header-protection masks: AES through one reused OpenSSL ECB context (AES-NI, constant-time), and
 * ChaCha20 in JS (./chacha-hp.ts: no tables, so constant-time as well, and ~20x cheaper than a
 * node:crypto call per packet).
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  constants,
  diffieHellman,
  generateKeyPairSync,
  randomFillSync,
  sign as nodeSign,
  verify as nodeVerify,
  type Cipher,
  type CipherGCM,
  type DecipherGCM,
  type Hash as NodeHashObject,
  type KeyObject,
} from 'node:crypto';
import { ConfigError } from '../errors.js';
import { ChaChaHeaderProtection } from './chacha-hp.js';
import { x25519Mlkem768 } from './hybrid.js';
import {
  allSignatureSchemes,
  checkKeyPair,
  ecFieldLength,
  ecdsaDerToRaw,
  parsePrivateKey,
  parseSpki,
  verifyByScheme,
  schemeMismatch,
  schemesFor,
  sigHashLength,
  type ParsedPublicKey,
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

/** A plain Uint8Array view of a Buffer (no copy), so results compare equal across providers. */
function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** A fresh Uint8Array of its own (not a view into Node's shared Buffer pool). */
function randomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

class NodeHash implements Hash {
  constructor(
    readonly alg: HashAlg,
    private readonly h: NodeHashObject = createHash(alg),
  ) {}
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  digest(): Uint8Array {
    return u8(this.h.copy().digest());
  }
  clone(): Hash {
    return new NodeHash(this.alg, this.h.copy());
  }
}

function hmac(alg: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array {
  return u8(createHmac(alg, key).update(data).digest());
}

/** RFC 5869 §2.2. An empty salt is the same as HashLen zero bytes for HMAC. */
function hkdfExtract(alg: HashAlg, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmac(alg, salt, ikm);
}

const counter = new Uint8Array(1);

/** RFC 5869 §2.3. */
function hkdfExpand(alg: HashAlg, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const hl = hashLength[alg];
  const n = Math.ceil(length / hl);
  if (n > 255) throw new RangeError(`HKDF-Expand length ${length} exceeds 255 * HashLen`);
  const out = new Uint8Array(length);
  let t: Uint8Array | null = null;
  for (let i = 1, pos = 0; i <= n; i++, pos += hl) {
    const h = createHmac(alg, prk);
    if (t) h.update(t);
    h.update(info);
    counter[0] = i;
    h.update(counter);
    t = u8(h.digest());
    out.set(length - pos >= hl ? t : t.subarray(0, length - pos), pos);
  }
  return out;
}

function checkKey(alg: AeadAlg, key: Uint8Array, what: string): void {
  const want = aeadKeyLength[alg];
  if (want === undefined) throw new ConfigError(`unknown AEAD '${alg}': use aes-128-gcm, aes-256-gcm or chacha20-poly1305`);
  if (key.length !== want) throw new ConfigError(`${alg} ${what} must be ${want} bytes, got ${key.length}`);
}

const TAG = 16;
/** createCipheriv / createDecipheriv options (one object for every call). */
const GCM_OPTIONS = { authTagLength: TAG };

class NodeAead implements Aead {
  private readonly key: KeyObject;
  private readonly cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  constructor(
    readonly alg: AeadAlg,
    key: Uint8Array,
  ) {
    checkKey(alg, key, 'key');
    this.key = createSecretKey(key);
    this.cipher = alg;
  }

  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    const len = plaintext.length;
    if (nonce.length !== 12) throw new RangeError('AEAD nonce must be 12 bytes');
    // createCipheriv per call is unavoidable with node:crypto (no re-keying of a context with a new IV).
    const c = createCipheriv(this.cipher as 'aes-128-gcm', this.key, nonce, GCM_OPTIONS) as CipherGCM;
    c.setAAD(aad);
    const ct = c.update(plaintext);
    c.final();
    const res = out ? out.subarray(0, len + TAG) : new Uint8Array(len + TAG);
    if (res.length < len + TAG) throw new RangeError('AEAD output buffer too small');
    res.set(ct, 0);
    res.set(c.getAuthTag(), len);
    return res;
  }

  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null {
    const len = ciphertext.length - TAG;
    if (len < 0 || nonce.length !== 12) return null;
    if (out && out.length < len) return null;
    try {
      const d = createDecipheriv(this.cipher as 'aes-128-gcm', this.key, nonce, GCM_OPTIONS) as DecipherGCM;
      d.setAuthTag(ciphertext.subarray(len));
      d.setAAD(aad);
      const pt = d.update(ciphertext.subarray(0, len));
      d.final(); // throws on authentication failure; nothing was written to `out` yet
      if (!out) return u8(pt);
      out.set(pt, 0);
      return out.subarray(0, len);
    } catch {
      return null;
    }
  }

  sealInPlace(nonce: Uint8Array, buf: Uint8Array, aadStart: number, textStart: number, textEnd: number): void {
    if (nonce.length !== 12) throw new RangeError('AEAD nonce must be 12 bytes');
    if (aadStart < 0 || aadStart > textStart || textStart > textEnd || textEnd + TAG > buf.length) throw new RangeError('AEAD output buffer too small');
    const c = createCipheriv(this.cipher as 'aes-128-gcm', this.key, nonce, GCM_OPTIONS) as CipherGCM;
    c.setAAD(buf.subarray(aadStart, textStart));
    buf.set(c.update(buf.subarray(textStart, textEnd)), textStart);
    c.final();
    buf.set(c.getAuthTag(), textEnd);
  }

  openInPlace(nonce: Uint8Array, buf: Uint8Array, aadStart: number, textStart: number, tagStart: number): boolean {
    if (nonce.length !== 12 || aadStart < 0 || aadStart > textStart || textStart > tagStart || tagStart + TAG > buf.length) return false;
    try {
      const d = createDecipheriv(this.cipher as 'aes-128-gcm', this.key, nonce, GCM_OPTIONS) as DecipherGCM;
      d.setAuthTag(buf.subarray(tagStart, tagStart + TAG));
      d.setAAD(buf.subarray(aadStart, textStart));
      const pt = d.update(buf.subarray(textStart, tagStart));
      d.final(); // throws on authentication failure; buf is untouched until then
      buf.set(pt, textStart);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * RFC 9001 §5.4.3: mask = AES-ECB(hp_key, sample)[0..5], through one ECB context reused for every
 * packet. Kept on OpenSSL although ./aes-hp.ts (noble's AES core, used by the noble provider) is
 * ~6x faster per mask: that AES is table-based, so not constant-time against a cache-timing
 * attacker on the same host, and the difference (~0.5 µs of the 10-20 µs a packet costs) does not
 * show end to end (bench `cpu/` rows). The default provider keeps the constant-time one.
 */
class NodeAesHp implements HeaderProtection {
  private readonly ecb: Cipher;
  private readonly out = new Uint8Array(5);
  constructor(alg: 'aes-128-gcm' | 'aes-256-gcm', key: Uint8Array) {
    this.ecb = createCipheriv(alg === 'aes-128-gcm' ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
    this.ecb.setAutoPadding(false);
  }
  mask(sample: Uint8Array, offset = 0): Uint8Array {
    // A short sample would leave a partial block buffered in the ECB context and corrupt later masks.
    if (offset < 0 || offset + 16 > sample.length) throw new RangeError('header protection sample needs 16 bytes');
    const block = this.ecb.update(sample.subarray(offset, offset + 16));
    const m = this.out;
    m[0] = block[0]!;
    m[1] = block[1]!;
    m[2] = block[2]!;
    m[3] = block[3]!;
    m[4] = block[4]!;
    return m;
  }
}

function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url');
}

function fromB64u(s: string): Uint8Array {
  return u8(Buffer.from(s, 'base64url'));
}

// Keys are imported as JWK rather than DER: OpenSSL 3's DER decoders cost ~300 µs per key,
// the JWK path (raw key setters) ~5-25 µs.
const x25519: KeyExchange = {
  group: 'x25519',
  generate(privateKey?: Uint8Array): KeyShare {
    if (privateKey && privateKey.length !== 32) throw new RangeError('x25519 private key must be 32 bytes');
    // Node requires an `x` member but derives the public key from `d`.
    const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(privateKey ?? randomBytes(32)), x: '' }, format: 'jwk' });
    const share = fromB64u(priv.export({ format: 'jwk' }).x!);
    return {
      group: 'x25519',
      share,
      complete(peerShare: Uint8Array): Uint8Array | null {
        if (peerShare.length !== 32) return null;
        try {
          const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(peerShare) }, format: 'jwk' });
          const secret = u8(diffieHellman({ privateKey: priv, publicKey }));
          // RFC 8446 §7.4.2: abort on an all-zero X25519 shared secret.
          return secret.length === 32 && !isAllZero(secret) ? secret : null;
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

function respondWith(kx: KeyExchange, clientShare: Uint8Array): { share: Uint8Array; secret: Uint8Array } | null {
  const ours = kx.generate();
  const secret = ours.complete(clientShare);
  return secret ? { share: ours.share, secret } : null;
}

function ecdhGroup(group: 'secp256r1' | 'secp384r1'): KeyExchange {
  const curveName = group === 'secp256r1' ? 'prime256v1' : 'secp384r1';
  const flen = group === 'secp256r1' ? 32 : 48;
  const kx: KeyExchange = {
    group,
    generate(privateKey?: Uint8Array): KeyShare {
      const ecdh = createECDH(curveName);
      if (privateKey) {
        if (privateKey.length !== flen) throw new RangeError(`${group} private key must be ${flen} bytes`);
        ecdh.setPrivateKey(privateKey);
      } else ecdh.generateKeys();
      const share = u8(ecdh.getPublicKey()); // uncompressed: 0x04 || x || y (RFC 8446 §4.2.8.2)
      return {
        group,
        share,
        complete(peerShare: Uint8Array): Uint8Array | null {
          // TLS 1.3 allows only the uncompressed form; OpenSSL rejects points not on the curve.
          if (peerShare.length !== 1 + 2 * flen || peerShare[0] !== 4) return null;
          try {
            const s = u8(ecdh.computeSecret(peerShare)); // the x coordinate
            return s.length === flen ? s : null;
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

const pssOpts = (key: KeyObject, hash: keyof typeof sigHashLength, saltLength?: number) => ({
  key,
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength: saltLength ?? sigHashLength[hash],
});

class NodeSigningKey implements SigningKey {
  readonly schemes: readonly SignatureScheme[];
  readonly spki: Uint8Array;
  constructor(
    readonly type: KeyType,
    readonly bits: number,
    private readonly key: KeyObject,
  ) {
    this.schemes = schemesFor(type);
    this.spki = u8(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  }
  sign(scheme: SignatureScheme, message: Uint8Array): Uint8Array {
    if (!this.schemes.includes(scheme)) throw schemeMismatch(this.type, scheme);
    switch (scheme) {
      case 'ecdsa_secp256r1_sha256':
        return u8(nodeSign('sha256', message, { key: this.key, dsaEncoding: 'der' }));
      case 'ecdsa_secp384r1_sha384':
        return u8(nodeSign('sha384', message, { key: this.key, dsaEncoding: 'der' }));
      case 'ed25519':
        return u8(nodeSign(null, message, this.key));
      default: {
        // rsa_pss_rsae_*: salt length = hash length, MGF1 with the same hash (RFC 8446 §4.2.3).
        const hash = scheme === 'rsa_pss_rsae_sha256' ? 'sha256' : scheme === 'rsa_pss_rsae_sha384' ? 'sha384' : 'sha512';
        return u8(nodeSign(hash, message, pssOpts(this.key, hash)));
      }
    }
  }
}

function loadPrivateKey(der: Uint8Array): SigningKey {
  const p = parsePrivateKey(der);
  let key: KeyObject;
  try {
    if (p.type === 'rsa') key = createPrivateKey({ key: Buffer.from(p.pkcs1), format: 'der', type: 'pkcs1' });
    else key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: p.format });
  } catch (e) {
    throw new ConfigError(`cannot load ${p.type} private key: ${(e as Error).message}`);
  }
  return checkKeyPair(new NodeSigningKey(p.type, p.bits, key), verify);
}

function generatePrivateKey(type: KeyType, bits?: number): Uint8Array {
  let pair: { privateKey: KeyObject };
  switch (type) {
    case 'ec-p256':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'ec-p384':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      break;
    case 'ed25519':
      pair = generateKeyPairSync('ed25519');
      break;
    case 'rsa':
      pair = generateKeyPairSync('rsa', { modulusLength: bits ?? 2048, publicExponent: 65537 });
      break;
    default:
      throw new ConfigError(`cannot generate key type '${String(type)}': use ec-p256, ec-p384, ed25519 or rsa`);
  }
  return u8(pair.privateKey.export({ format: 'der', type: 'pkcs8' }));
}

/** A small cache of imported public keys: chains verify the same intermediate/root keys again and again. */
const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 64;

function publicKeyObject(pk: ParsedPublicKey, spki: Uint8Array): KeyObject {
  const id = b64u(spki);
  let key = keyCache.get(id);
  if (key) return key;
  switch (pk.kind) {
    case 'ec': {
      const f = ecFieldLength[pk.curve];
      const crv = pk.curve === 'p256' ? 'P-256' : 'P-384';
      key = createPublicKey({ key: { kty: 'EC', crv, x: b64u(pk.point.subarray(1, 1 + f)), y: b64u(pk.point.subarray(1 + f)) }, format: 'jwk' });
      break;
    }
    case 'ed25519':
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pk.key) }, format: 'jwk' });
      break;
    case 'rsa':
      key = createPublicKey({ key: { kty: 'RSA', n: b64u(pk.n), e: b64u(pk.e) }, format: 'jwk' });
      break;
  }
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(id, key);
  return key;
}

function verifySignature(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const pk = parseSpki(spki);
    if (!pk) return false;
    switch (alg.kind) {
      case 'ecdsa': {
        if (pk.kind !== 'ec') return false;
        // Parse the DER signature ourselves (strict, same rules as the noble provider).
        const raw = ecdsaDerToRaw(signature, ecFieldLength[pk.curve]);
        if (!raw) return false;
        return nodeVerify(alg.hash, message, { key: publicKeyObject(pk, spki), dsaEncoding: 'ieee-p1363' }, raw);
      }
      case 'ed25519':
        return pk.kind === 'ed25519' && signature.length === 64 && nodeVerify(null, message, publicKeyObject(pk, spki), signature);
      case 'rsa-pkcs1':
        return pk.kind === 'rsa' && !pk.pss && nodeVerify(alg.hash, message, { key: publicKeyObject(pk, spki), padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'rsa-pss':
        return pk.kind === 'rsa' && nodeVerify(alg.hash, message, pssOpts(publicKeyObject(pk, spki), alg.hash, alg.saltLength), signature);
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

export const nodeProvider: CryptoProvider = {
  name: 'node',
  randomBytes,
  hash: (alg) => new NodeHash(alg),
  digest: (alg, data) => u8(createHash(alg).update(data).digest()),
  hmac,
  hkdfExtract,
  hkdfExpand,
  aead: (alg, key) => new NodeAead(alg, key),
  headerProtection(alg: AeadAlg, hpKey: Uint8Array): HeaderProtection {
    checkKey(alg, hpKey, 'header protection key');
    // AES on OpenSSL (constant-time AES-NI), ChaCha20 in JS (see NodeAesHp).
    return alg === 'chacha20-poly1305' ? new ChaChaHeaderProtection(hpKey) : new NodeAesHp(alg, hpKey);
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
