/**
 * A deterministic, cheap CryptoProvider for fuzzing the connection state machines (the idea of
 * BoringSSL's fuzzer mode): the real targets spend most of each input in ECDH, ML-KEM, signatures
 * and AES-GCM, which mutated inputs can never get past anyway. With this provider both peers of a
 * fuzz run agree on every key, and every check still *fails on a mismatch*, so the code that
 * handles a failed check keeps being exercised; it is only cheap and not secure.
 *
 * - Hashes, HMAC, HKDF: a keyed multi-lane mixing function (FNV-style lanes, murmur finalizer)
 *   with the right output lengths; HKDF is RFC 5869's construction over that HMAC stand-in, so
 *   labels, contexts and lengths still matter exactly as with the real one.
 * - AEAD: ciphertext = plaintext XOR a keystream from (key, nonce); tag = 16 bytes of the mixing
 *   function over (key, nonce, aad, ciphertext). open() recomputes the tag and returns null on any
 *   difference (a flipped bit in header, aad, nonce, ciphertext or tag fails as it does with GCM).
 *   Wrong key lengths throw ConfigError like the real providers.
 * - Header protection: the 5-byte mask is the mixing function of (hp key, 16-byte sample).
 * - Key exchange: shares have each group's real length and shape (x25519 32 bytes, P-256/P-384
 *   uncompressed points 65/97 bytes starting 0x04, X25519MLKEM768 1216 / 1120 bytes); the shared
 *   secret is a hash of (client share, server share) with the group's secret length, so both sides
 *   agree and a changed share changes the secret. Wrong lengths, a missing 0x04 and an all-zero
 *   x25519 share are rejected (null), as the real providers reject invalid shares.
 * - Signatures: a hash of (algorithm, SPKI, message), as long as the real one (Ed25519 64 bytes,
 *   ECDSA a DER SEQUENCE of r and s, RSA the modulus length). The SPKI is parsed and the scheme
 *   checked against the key by the real code (keys.ts verifyByScheme, ecdsaDerToRaw), only the
 *   arithmetic is replaced: a signature over other bytes or with another key fails.
 * - Private keys: loadPrivateKey / generatePrivateKey use the node provider once (cached) for the
 *   key's type and SPKI; sign() is the hash above. Certificates generated with this provider
 *   (generateSelfSigned) carry such signatures, so WebPkiVerifier with this provider verifies
 *   chains for real (path building, validity, names, constraints) at no cost.
 * - randomBytes: a seeded PRNG per provider instance (fuzzProvider(seed)).
 *
 * Not covered by targets using it: the real primitives and their error paths (those are what the
 * real-crypto targets and the provider unit tests cover).
 */
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import { ecdsaRawToDer, ecdsaDerToRaw, ecFieldLength, parseSpki, schemeAlgorithm, schemeMismatch, verifyByScheme } from '../../packages/tls-core/src/crypto/keys.js';
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
} from '../../packages/tls-core/src/crypto/provider.js';
import { ConfigError } from '../../packages/tls-core/src/errors.js';
import { Rng } from '../support/rng.js';

// ---- the mixing function -----------------------------------------------------------------------

const P0 = 0x01000193;
const P1 = 0x9e3779b1 | 1;
const P2 = 0x85ebca6b | 1;
const P3 = 0xc2b2ae35 | 1;

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Incremental keyed mixer: 4 independent 32-bit lanes over the bytes, a length, a domain tag. */
class Mixer {
  constructor(
    public a = 0x811c9dc5,
    public b = 0x6a09e667,
    public c = 0xbb67ae85,
    public d = 0x3c6ef372,
    public n = 0,
  ) {}
  static tagged(domain: number): Mixer {
    const m = new Mixer();
    m.u32(domain);
    return m;
  }
  update(x: Uint8Array): this {
    let { a, b, c, d } = this;
    // Position-dependent lane: absolute position, so update(x); update(y) == update(x || y).
    const n0 = this.n;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      a = Math.imul(a ^ v, P0);
      b = Math.imul(b ^ v, P1) ^ (b >>> 15);
      c = Math.imul((c ^ v) + n0 + i, P2);
      d = Math.imul(d ^ (v << 8) ^ (d >>> 11), P3);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    this.n += x.length;
    return this;
  }
  /** Length-prefixed part, so (ab, c) and (a, bc) differ. */
  part(x: Uint8Array): this {
    this.u32(x.length);
    return this.update(x);
  }
  u32(v: number): this {
    this.a = Math.imul(this.a ^ v, P1);
    this.b = Math.imul(this.b ^ v, P2);
    this.c = Math.imul(this.c ^ v, P3);
    this.d = Math.imul(this.d ^ v, P0);
    return this;
  }
  copy(): Mixer {
    return new Mixer(this.a, this.b, this.c, this.d, this.n);
  }
  /** `len` output bytes; the mixer is not changed. */
  final(len: number, out: Uint8Array = new Uint8Array(len)): Uint8Array {
    let a = fmix(this.a ^ this.n);
    let b = fmix(this.b ^ a);
    let c = fmix(this.c ^ b);
    let d = fmix(this.d ^ c);
    a = fmix(a ^ d);
    for (let i = 0, k = 0; i < len; k++) {
      const w = fmix(((a + Math.imul(k, 0x9e3779b9)) ^ (k & 1 ? c : b) ^ Math.imul(d, k + 1)) >>> 0);
      for (let j = 0; j < 4 && i < len; j++, i++) out[i] = (w >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

const D = { hash: 1, hmac: 2, aeadKey: 3, tag: 4, stream: 5, hp: 6, secret: 7, share: 8, sig: 9 } as const;
const encoder = new TextEncoder();
const labels = new Map<string, Uint8Array>();
/** Label bytes, encoded once. */
const label = (s: string): Uint8Array => {
  let b = labels.get(s);
  if (!b) labels.set(s, (b = encoder.encode(s)));
  return b;
};
const HASH_ALG: Record<HashAlg, number> = { sha256: 256, sha384: 384 };

class FuzzHash implements Hash {
  constructor(
    readonly alg: HashAlg,
    private readonly m: Mixer = Mixer.tagged(D.hash).u32(HASH_ALG[alg]),
  ) {}
  update(data: Uint8Array): void {
    this.m.update(data);
  }
  digest(): Uint8Array {
    return this.m.final(hashLength[this.alg]);
  }
  clone(): Hash {
    return new FuzzHash(this.alg, this.m.copy());
  }
}

function digest(alg: HashAlg, data: Uint8Array): Uint8Array {
  return Mixer.tagged(D.hash).u32(HASH_ALG[alg]).update(data).final(hashLength[alg]);
}

function hmac(alg: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array {
  if (!hashLength[alg]) throw new ConfigError(`unknown hash ${String(alg)}`);
  return Mixer.tagged(D.hmac).u32(HASH_ALG[alg]).part(key).part(data).final(hashLength[alg]);
}

/** RFC 5869 §2.3 over the hmac stand-in (same limits: at most 255 blocks). */
function hkdfExpand(alg: HashAlg, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const hl = hashLength[alg];
  if (!Number.isInteger(length) || length < 0 || length > 255 * hl) throw new RangeError(`HKDF-Expand length ${length} out of range`);
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, o = 0; o < length; i++) {
    t = Mixer.tagged(D.hmac).u32(HASH_ALG[alg]).part(prk).part(t).part(info).u32(i).final(hl);
    out.set(t.subarray(0, Math.min(hl, length - o)), o);
    o += hl;
  }
  return out;
}

// ---- AEAD and header protection ---------------------------------------------------------------

function checkKey(alg: AeadAlg, key: Uint8Array, what: string): void {
  const want = aeadKeyLength[alg];
  if (want === undefined) throw new ConfigError(`unknown AEAD '${alg}': use aes-128-gcm, aes-256-gcm or chacha20-poly1305`);
  if (key.length !== want) throw new ConfigError(`${alg} ${what} must be ${want} bytes, got ${key.length}`);
}

const TAG = 16;
const tagScratch = new Uint8Array(TAG);

class FuzzAead implements Aead {
  private readonly k: Mixer;
  constructor(
    readonly alg: AeadAlg,
    key: Uint8Array,
  ) {
    checkKey(alg, key, 'key');
    this.k = Mixer.tagged(D.aeadKey).part(label(alg)).part(key);
  }
  /** XORs `src` into `dst` (same length; may alias at the same offset) with the (key, nonce) keystream. */
  private xor(nonce: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
    const s = this.k.copy().u32(D.stream).part(nonce).final(8);
    let x = (s[0]! | (s[1]! << 8) | (s[2]! << 16) | (s[3]! << 24)) | 1;
    const y = (s[4]! | (s[5]! << 8) | (s[6]! << 16) | (s[7]! << 24)) | 0;
    let w = 0;
    for (let i = 0; i < src.length; i++) {
      if ((i & 3) === 0) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        w = (x + y) | 0;
      }
      dst[i] = src[i]! ^ ((w >>> ((i & 3) * 8)) & 0xff);
    }
  }
  private tag(nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array, out: Uint8Array): Uint8Array {
    return this.k.copy().u32(D.tag).part(nonce).part(aad).part(ct).final(TAG, out);
  }
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    const len = plaintext.length;
    if (nonce.length !== 12) throw new RangeError('AEAD nonce must be 12 bytes');
    const res = out ? out.subarray(0, len + TAG) : new Uint8Array(len + TAG);
    if (res.length < len + TAG) throw new RangeError('AEAD output buffer too small');
    // The tag may cover aad that aliases `out` (QUIC seals in place after the header): compute
    // the ciphertext first, then the tag over it.
    this.xor(nonce, plaintext, res.subarray(0, len));
    this.tag(nonce, aad, res.subarray(0, len), tagScratch);
    res.set(tagScratch, len);
    return res;
  }
  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null {
    const len = ciphertext.length - TAG;
    if (len < 0 || nonce.length !== 12) return null;
    if (out && out.length < len) return null;
    const ct = ciphertext.subarray(0, len);
    const t = this.tag(nonce, aad, ct, tagScratch);
    let diff = 0;
    for (let i = 0; i < TAG; i++) diff |= t[i]! ^ ciphertext[len + i]!;
    if (diff !== 0) return null;
    const res = out ? out.subarray(0, len) : new Uint8Array(len);
    this.xor(nonce, ct, res);
    return res;
  }
}

class FuzzHp implements HeaderProtection {
  private readonly k: Mixer;
  private readonly out = new Uint8Array(5);
  constructor(alg: AeadAlg, key: Uint8Array) {
    checkKey(alg, key, 'header protection key');
    this.k = Mixer.tagged(D.hp).part(label(alg)).part(key);
  }
  mask(sample: Uint8Array, offset = 0): Uint8Array {
    if (offset < 0 || offset + 16 > sample.length) throw new RangeError('header protection sample needs 16 bytes');
    return this.k.copy().update(sample.subarray(offset, offset + 16)).final(5, this.out);
  }
}

// ---- key exchange ------------------------------------------------------------------------------

interface GroupShape {
  client: number;
  server: number;
  secret: number;
  point: boolean;
}
const GROUPS: Record<NamedGroup, GroupShape> = {
  x25519: { client: 32, server: 32, secret: 32, point: false },
  secp256r1: { client: 65, server: 65, secret: 32, point: true },
  secp384r1: { client: 97, server: 97, secret: 48, point: true },
  // ML-KEM-768 encapsulation key (1184) + X25519 (32); ciphertext (1088) + X25519 (32); 32 + 32 secret.
  x25519mlkem768: { client: 1216, server: 1120, secret: 64, point: false },
};

function validShare(group: NamedGroup, g: GroupShape, share: Uint8Array, len: number): boolean {
  if (share.length !== len) return false;
  if (g.point && share[0] !== 0x04) return false;
  if (group === 'x25519' && share.every((b) => b === 0)) return false; // an all-zero secret (RFC 7748 §6.1)
  return true;
}

/**
 * Symmetric in the two shares for the DH groups (a server with a fixed key share runs generate()
 * + complete() like a client, so the roles cannot be told apart); ordered for the KEM hybrid.
 */
function sharedSecret(group: NamedGroup, clientShare: Uint8Array, serverShare: Uint8Array): Uint8Array {
  let [x, y] = [clientShare, serverShare];
  if (group !== 'x25519mlkem768' && Buffer.compare(x, y) > 0) [x, y] = [y, x];
  return Mixer.tagged(D.secret).part(label(group)).part(x).part(y).final(GROUPS[group].secret);
}

function shareFrom(group: NamedGroup, len: number, material: Uint8Array): Uint8Array {
  const s = Mixer.tagged(D.share).part(label(group)).part(material).final(len);
  if (GROUPS[group].point) s[0] = 0x04;
  return s;
}

function keyExchange(group: NamedGroup, random: (n: number) => Uint8Array): KeyExchange {
  const g = GROUPS[group];
  if (!g) throw new ConfigError(`unsupported key exchange group '${String(group)}': use x25519, secp256r1, secp384r1 or x25519mlkem768`);
  return {
    group,
    generate(privateKey?: Uint8Array): KeyShare {
      const share = shareFrom(group, g.client, privateKey ?? random(32));
      return {
        group,
        share,
        complete: (peer) => (validShare(group, g, peer, g.server) ? sharedSecret(group, share, peer) : null),
      };
    },
    respond(clientShare: Uint8Array) {
      if (!validShare(group, g, clientShare, g.client)) return null;
      const share = shareFrom(group, g.server, random(32));
      return { share, secret: sharedSecret(group, clientShare, share) };
    },
  };
}

// ---- signatures --------------------------------------------------------------------------------

/** The signature length the real algorithm produces for this key (null: key and algorithm do not fit). */
function signatureShape(alg: SignatureAlgorithm, spki: Uint8Array): { kind: 'raw'; len: number } | { kind: 'ecdsa'; field: number } | null {
  const pk = parseSpki(spki);
  if (!pk) return null;
  switch (alg.kind) {
    case 'ed25519':
      return pk.kind === 'ed25519' ? { kind: 'raw', len: 64 } : null;
    case 'ecdsa':
      return pk.kind === 'ec' ? { kind: 'ecdsa', field: ecFieldLength[pk.curve] } : null;
    case 'rsa-pkcs1':
    case 'rsa-pss': {
      if (pk.kind !== 'rsa' || (alg.kind === 'rsa-pkcs1' && pk.pss)) return null;
      let i = 0;
      while (i < pk.n.length - 1 && pk.n[i] === 0) i++;
      return { kind: 'raw', len: pk.n.length - i };
    }
  }
}

function expectedSignature(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, len: number): Uint8Array {
  const hash = 'hash' in alg ? alg.hash : 'none';
  return Mixer.tagged(D.sig).part(label(`${alg.kind}/${hash}`)).part(spki).part(message).final(len);
}

function fakeSign(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array): Uint8Array {
  const shape = signatureShape(alg, spki);
  if (!shape) throw new ConfigError(`fuzz provider: cannot sign ${alg.kind} with this key`);
  if (shape.kind === 'raw') return expectedSignature(alg, spki, message, shape.len);
  const raw = expectedSignature(alg, spki, message, 2 * shape.field);
  raw[0]! &= 0x7f; // r, s below the group order's top bit, so they are plausible scalars
  raw[shape.field]! &= 0x7f;
  raw[0]! |= 0x01;
  raw[shape.field]! |= 0x01;
  return ecdsaRawToDer(raw);
}

function verifySignature(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const shape = signatureShape(alg, spki);
    if (!shape) return false;
    let got = signature;
    if (shape.kind === 'ecdsa') {
      const raw = ecdsaDerToRaw(signature, shape.field); // the real, strict DER parse
      if (!raw) return false;
      got = ecdsaRawToDer(raw);
      if (got.length !== signature.length) return false;
    }
    const want = fakeSign(alg, spki, message);
    if (want.length !== got.length) return false;
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff |= want[i]! ^ got[i]!;
    return diff === 0;
  } catch {
    return false;
  }
}

class FuzzSigningKey implements SigningKey {
  constructor(
    readonly type: KeyType,
    readonly bits: number,
    readonly schemes: readonly SignatureScheme[],
    readonly spki: Uint8Array,
  ) {}
  sign(scheme: SignatureScheme, message: Uint8Array): Uint8Array {
    const pk = parseSpki(this.spki);
    const alg = pk && this.schemes.includes(scheme) ? schemeAlgorithm(scheme, pk) : null;
    if (!alg) throw schemeMismatch(this.type, scheme);
    return fakeSign(alg, this.spki, message);
  }
}

const keyCache = new Map<string, FuzzSigningKey>();

/** The key's type and SPKI from the node provider (once per key), with the cheap signer. */
function loadPrivateKey(der: Uint8Array): SigningKey {
  const id = Buffer.from(der).toString('base64');
  let k = keyCache.get(id);
  if (!k) {
    const real = nodeProvider.loadPrivateKey(der);
    k = new FuzzSigningKey(real.type, real.bits, real.schemes, real.spki.slice());
    keyCache.set(id, k);
  }
  return k;
}

// ---- the provider ------------------------------------------------------------------------------

/** A fresh fuzzing provider; randomBytes is a PRNG seeded with `seed` (one per run, for determinism). */
export function fuzzProvider(seed = 1): CryptoProvider {
  const rng = new Rng(seed);
  const randomBytes = (n: number) => rng.bytes(n);
  return {
    name: 'fuzz',
    randomBytes,
    hash: (alg) => new FuzzHash(alg),
    digest,
    hmac,
    hkdfExtract: (alg, salt, ikm) => hmac(alg, salt.length ? salt : new Uint8Array(hashLength[alg]), ikm),
    hkdfExpand,
    aead: (alg, key) => new FuzzAead(alg, key),
    headerProtection: (alg, hpKey) => new FuzzHp(alg, hpKey),
    groups: ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'],
    keyExchange: (group) => keyExchange(group, randomBytes),
    signatureSchemes: nodeProvider.signatureSchemes,
    loadPrivateKey,
    generatePrivateKey: (type, bits) => nodeProvider.generatePrivateKey(type, bits),
    verifySignature,
    verify: (scheme, spki, message, signature) => verifyByScheme(verifySignature, scheme, spki, message, signature),
  };
}
