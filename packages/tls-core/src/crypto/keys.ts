/**
 * Pure key-format helpers shared by the crypto providers (no crypto library imports here):
 * PKCS#8 (RFC 5208/5958), SEC1 ECPrivateKey (RFC 5915), PKCS#1 RSAPrivateKey (RFC 8017 App. A.1.2),
 * SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) parsing and building, and ECDSA signature DER <-> raw.
 */
import { ConfigError } from '../errors.js';
import { DerReader, DerError, Tag, derEncode, oidToString } from '../util/der.js';
import type { KeyType, SignatureAlgorithm, SignatureScheme, SigningKey } from './provider.js';

export const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
  x25519: '1.3.101.110',
} as const;

/** DER content bytes of the OIDs we emit. */
const OID_BYTES = {
  rsaEncryption: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
  ecPublicKey: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
  prime256v1: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
  secp384r1: [0x2b, 0x81, 0x04, 0x00, 0x22],
  ed25519: [0x2b, 0x65, 0x70],
  x25519: [0x2b, 0x65, 0x6e],
};

export type EcCurve = 'p256' | 'p384';
export const ecFieldLength: Record<EcCurve, number> = { p256: 32, p384: 48 };

/** RSA private key components as unsigned big-endian bytes (leading zeros stripped). */
export interface RsaPrivateComponents {
  n: Uint8Array;
  e: Uint8Array;
  d: Uint8Array;
  p: Uint8Array;
  q: Uint8Array;
  dp: Uint8Array;
  dq: Uint8Array;
  qi: Uint8Array;
}

export type ParsedPrivateKey =
  | {
      type: 'ec-p256' | 'ec-p384';
      curve: EcCurve;
      format: 'pkcs8' | 'sec1';
      /** The private scalar, left-padded to the field length. */
      d: Uint8Array;
      /** The uncompressed public point if the encoding carried it. */
      publicKey?: Uint8Array;
      /** The SEC1 ECPrivateKey structure (inside PKCS#8 or as given). */
      sec1: Uint8Array;
      bits: number;
    }
  | { type: 'ed25519'; format: 'pkcs8'; seed: Uint8Array; bits: 256 }
  | {
      type: 'rsa';
      format: 'pkcs8' | 'pkcs1';
      /** True for the id-RSASSA-PSS algorithm identifier (RFC 4055). */
      pss: boolean;
      rsa: RsaPrivateComponents;
      /** The PKCS#1 RSAPrivateKey structure. */
      pkcs1: Uint8Array;
      bits: number;
    };

export const UNSUPPORTED_KEY_HINT = 'use ECDSA P-256/P-384, Ed25519 or RSA (>= 2048 bits)';

/** Strips leading zero bytes of an unsigned big-endian integer (keeps at least one byte). */
export function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Bit length of an unsigned big-endian integer. */
export function bitLength(b: Uint8Array): number {
  const s = stripZeros(b);
  if (s.length === 1 && s[0] === 0) return 0;
  return (s.length - 1) * 8 + (32 - Math.clz32(s[0]!));
}

/** Content bytes of a DER INTEGER that must be non-negative; returns the magnitude without sign padding. */
function unsignedInt(v: Uint8Array): Uint8Array {
  if (v.length === 0) throw new DerError('empty INTEGER');
  if (v[0]! & 0x80) throw new DerError('negative INTEGER');
  return stripZeros(v);
}

/** Left-pads `b` to `len` bytes; throws if it is longer. */
export function leftPad(b: Uint8Array, len: number): Uint8Array {
  const s = stripZeros(b);
  if (s.length > len) throw new DerError('integer too large');
  const out = new Uint8Array(len);
  out.set(s, len - s.length);
  return out;
}

function curveFromOid(oid: string): EcCurve {
  if (oid === OID.prime256v1) return 'p256';
  if (oid === OID.secp384r1) return 'p384';
  const name = oid === OID.secp521r1 ? 'P-521' : `curve OID ${oid}`;
  throw new ConfigError(`unsupported key type: EC key on ${name}; ${UNSUPPORTED_KEY_HINT}`);
}

function parseRsaPrivateKey(der: Uint8Array): RsaPrivateComponents {
  const r = new DerReader(der).enter(Tag.SEQUENCE);
  const version = r.read(Tag.INTEGER).value;
  if (version.length !== 1 || version[0] !== 0) throw new ConfigError('unsupported RSA private key: multi-prime RSA keys (version != 0) are not supported; use a two-prime RSA key');
  const f = () => unsignedInt(r.read(Tag.INTEGER).value);
  const comp = { n: f(), e: f(), d: f(), p: f(), q: f(), dp: f(), dq: f(), qi: f() };
  r.end();
  return comp;
}

function parseSec1(der: Uint8Array, curveHint?: EcCurve): { curve: EcCurve; d: Uint8Array; publicKey?: Uint8Array } {
  const r = new DerReader(der).enter(Tag.SEQUENCE);
  const version = r.read(Tag.INTEGER).value;
  if (version.length !== 1 || version[0] !== 1) throw new DerError('ECPrivateKey version must be 1');
  const dRaw = r.read(Tag.OCTET_STRING).value;
  let curve = curveHint;
  const params = r.optional(0xa0);
  if (params) {
    const inner = new DerReader(params.value);
    if (inner.peekTag() !== Tag.OID) throw new ConfigError(`unsupported key type: EC key with explicit curve parameters; ${UNSUPPORTED_KEY_HINT}`);
    const c = curveFromOid(oidToString(inner.read(Tag.OID).value));
    if (curve && c !== curve) throw new DerError('ECPrivateKey curve does not match the PKCS#8 algorithm');
    curve = c;
  }
  if (!curve) throw new DerError('ECPrivateKey without curve parameters');
  let publicKey: Uint8Array | undefined;
  const pub = r.optional(0xa1);
  if (pub) {
    const bs = new DerReader(pub.value).read(Tag.BIT_STRING).value;
    if (bs.length < 2 || bs[0] !== 0) throw new DerError('bad public key BIT STRING');
    publicKey = bs.subarray(1);
  }
  const len = ecFieldLength[curve];
  const d = leftPad(dRaw, len);
  if (d.every((x) => x === 0)) throw new DerError('EC private scalar is zero');
  return publicKey ? { curve, d, publicKey } : { curve, d };
}

function typeOfCurve(c: EcCurve): 'ec-p256' | 'ec-p384' {
  return c === 'p256' ? 'ec-p256' : 'ec-p384';
}

/**
 * Parses a private key in PKCS#8, SEC1 or PKCS#1 DER (format detected from the structure).
 * Throws ConfigError with an actionable message for malformed or unsupported keys, including
 * RSA keys under 2048 bits.
 */
export function parsePrivateKey(der: Uint8Array): ParsedPrivateKey {
  let parsed: ParsedPrivateKey;
  try {
    parsed = parsePrivateKeyInner(der);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`cannot parse private key (${why}): expected DER PKCS#8, SEC1 EC or PKCS#1 RSA private key (PEM must be decoded first)`);
  }
  if (parsed.type === 'rsa' && parsed.bits < 2048)
    throw new ConfigError(`RSA key too small (${parsed.bits} bits): use an RSA key of at least 2048 bits, or ECDSA P-256/P-384 / Ed25519`);
  return parsed;
}

function parsePrivateKeyInner(der: Uint8Array): ParsedPrivateKey {
  const outer = new DerReader(der);
  const seq = outer.enter(Tag.SEQUENCE);
  outer.end();
  seq.read(Tag.INTEGER);
  const next = seq.peekTag();
  if (next === Tag.INTEGER) {
    // PKCS#1 RSAPrivateKey: version, n, e, ...
    const rsa = parseRsaPrivateKey(der);
    return { type: 'rsa', format: 'pkcs1', pss: false, rsa, pkcs1: der, bits: bitLength(rsa.n) };
  }
  if (next === Tag.OCTET_STRING) {
    const { curve, d, publicKey } = parseSec1(der);
    const base = { type: typeOfCurve(curve), curve, format: 'sec1' as const, d, sec1: der, bits: curve === 'p256' ? 256 : 384 };
    return publicKey ? { ...base, publicKey } : base;
  }
  // PKCS#8 PrivateKeyInfo / OneAsymmetricKey.
  const alg = seq.enter(Tag.SEQUENCE);
  const oid = oidToString(alg.read(Tag.OID).value);
  const priv = seq.read(Tag.OCTET_STRING).value;
  if (oid === OID.rsaEncryption || oid === OID.rsassaPss) {
    const rsa = parseRsaPrivateKey(priv);
    return { type: 'rsa', format: 'pkcs8', pss: oid === OID.rsassaPss, rsa, pkcs1: priv, bits: bitLength(rsa.n) };
  }
  if (oid === OID.ecPublicKey) {
    const params = alg.read();
    if (params.tag !== Tag.OID) throw new ConfigError(`unsupported key type: EC key with explicit curve parameters; ${UNSUPPORTED_KEY_HINT}`);
    const curve = curveFromOid(oidToString(params.value));
    const { d, publicKey } = parseSec1(priv, curve);
    const base = { type: typeOfCurve(curve), curve, format: 'pkcs8' as const, d, sec1: priv, bits: curve === 'p256' ? 256 : 384 };
    return publicKey ? { ...base, publicKey } : base;
  }
  if (oid === OID.ed25519) {
    const seed = new DerReader(priv).read(Tag.OCTET_STRING).value;
    if (seed.length !== 32) throw new DerError('Ed25519 private key must be 32 bytes');
    return { type: 'ed25519', format: 'pkcs8', seed, bits: 256 };
  }
  const names: Record<string, string> = { [OID.ed448]: 'Ed448', [OID.x25519]: 'X25519 (not a signature key)', '1.2.840.10040.4.1': 'DSA', '1.3.101.111': 'X448' };
  throw new ConfigError(`unsupported key type ${names[oid] ?? `with OID ${oid}`}: ${UNSUPPORTED_KEY_HINT}`);
}

export type ParsedPublicKey =
  | { kind: 'ec'; curve: EcCurve; point: Uint8Array }
  | { kind: 'ed25519'; key: Uint8Array }
  | { kind: 'rsa'; pss: boolean; n: Uint8Array; e: Uint8Array; bits: number };

/** Parses a SubjectPublicKeyInfo. Returns null for malformed or unsupported keys (never throws). */
export function parseSpki(spki: Uint8Array): ParsedPublicKey | null {
  try {
    const outer = new DerReader(spki);
    const seq = outer.enter(Tag.SEQUENCE);
    outer.end();
    const alg = seq.enter(Tag.SEQUENCE);
    const oid = oidToString(alg.read(Tag.OID).value);
    const bits = seq.read(Tag.BIT_STRING).value;
    seq.end();
    if (bits.length < 2 || bits[0] !== 0) return null;
    const key = bits.subarray(1);
    if (oid === OID.ecPublicKey) {
      const p = alg.read(Tag.OID);
      const c = oidToString(p.value);
      const curve: EcCurve | null = c === OID.prime256v1 ? 'p256' : c === OID.secp384r1 ? 'p384' : null;
      if (!curve) return null;
      // Uncompressed points only (what certificates use; RFC 5480 allows compressed but nobody does).
      if (key.length !== 1 + 2 * ecFieldLength[curve] || key[0] !== 4) return null;
      return { kind: 'ec', curve, point: key };
    }
    if (oid === OID.ed25519) {
      if (key.length !== 32 || !alg.done) return null;
      return { kind: 'ed25519', key };
    }
    if (oid === OID.rsaEncryption || oid === OID.rsassaPss) {
      const r = new DerReader(key).enter(Tag.SEQUENCE);
      const n = unsignedInt(r.read(Tag.INTEGER).value);
      const e = unsignedInt(r.read(Tag.INTEGER).value);
      r.end();
      const nb = bitLength(n);
      if (nb < 512 || nb > 16384) return null;
      return { kind: 'rsa', pss: oid === OID.rsassaPss, n, e, bits: nb };
    }
    return null;
  } catch {
    return null;
  }
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
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

const seq = (...parts: Uint8Array[]) => derEncode(Tag.SEQUENCE, concat(...parts));
const oidEnc = (b: number[]) => derEncode(Tag.OID, Uint8Array.from(b));
const octets = (b: Uint8Array) => derEncode(Tag.OCTET_STRING, b);
const bitString = (b: Uint8Array) => derEncode(Tag.BIT_STRING, concat([0], b));

/** DER INTEGER from an unsigned big-endian magnitude. */
export function derUnsignedInt(b: Uint8Array): Uint8Array {
  const s = stripZeros(b);
  return derEncode(Tag.INTEGER, s[0]! & 0x80 ? concat([0], s) : s);
}

const curveOid = (c: EcCurve) => (c === 'p256' ? OID_BYTES.prime256v1 : OID_BYTES.secp384r1);

export function ecSpki(curve: EcCurve, point: Uint8Array): Uint8Array {
  return seq(seq(oidEnc(OID_BYTES.ecPublicKey), oidEnc(curveOid(curve))), bitString(point));
}

export function ed25519Spki(pub: Uint8Array): Uint8Array {
  return seq(seq(oidEnc(OID_BYTES.ed25519)), bitString(pub));
}

export function x25519Spki(pub: Uint8Array): Uint8Array {
  return seq(seq(oidEnc(OID_BYTES.x25519)), bitString(pub));
}

export function rsaSpki(n: Uint8Array, e: Uint8Array): Uint8Array {
  return seq(seq(oidEnc(OID_BYTES.rsaEncryption), derEncode(Tag.NULL, new Uint8Array(0))), bitString(seq(derUnsignedInt(n), derUnsignedInt(e))));
}

/** PKCS#8 for an EC key (the inner SEC1 structure omits the parameters, as OpenSSL does, and carries the public key). */
export function ecPkcs8(curve: EcCurve, d: Uint8Array, point: Uint8Array): Uint8Array {
  const sec1 = seq(derEncode(Tag.INTEGER, Uint8Array.of(1)), octets(leftPad(d, ecFieldLength[curve])), derEncode(0xa1, bitString(point)));
  return seq(derEncode(Tag.INTEGER, Uint8Array.of(0)), seq(oidEnc(OID_BYTES.ecPublicKey), oidEnc(curveOid(curve))), octets(sec1));
}

export function ed25519Pkcs8(seed: Uint8Array): Uint8Array {
  return seq(derEncode(Tag.INTEGER, Uint8Array.of(0)), seq(oidEnc(OID_BYTES.ed25519)), octets(octets(seed)));
}

export function x25519Pkcs8(scalar: Uint8Array): Uint8Array {
  return seq(derEncode(Tag.INTEGER, Uint8Array.of(0)), seq(oidEnc(OID_BYTES.x25519)), octets(octets(scalar)));
}

export function rsaPkcs1(c: RsaPrivateComponents): Uint8Array {
  return seq(derEncode(Tag.INTEGER, Uint8Array.of(0)), ...[c.n, c.e, c.d, c.p, c.q, c.dp, c.dq, c.qi].map(derUnsignedInt));
}

export function rsaPkcs8(c: RsaPrivateComponents): Uint8Array {
  return seq(derEncode(Tag.INTEGER, Uint8Array.of(0)), seq(oidEnc(OID_BYTES.rsaEncryption), derEncode(Tag.NULL, new Uint8Array(0))), octets(rsaPkcs1(c)));
}

/**
 * ECDSA-Sig-Value DER (SEQUENCE { r INTEGER, s INTEGER }) → r || s, each `len` bytes.
 * Strict: minimal positive INTEGERs, no trailing data, 0 < r, s. Returns null if malformed.
 */
export function ecdsaDerToRaw(der: Uint8Array, len: number): Uint8Array | null {
  try {
    const outer = new DerReader(der);
    const r = outer.enter(Tag.SEQUENCE);
    outer.end();
    const out = new Uint8Array(2 * len);
    for (let i = 0; i < 2; i++) {
      const v = r.read(Tag.INTEGER).value;
      if (v.length === 0 || v[0]! & 0x80) return null;
      if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) return null; // non-minimal
      const m = stripZeros(v);
      if (m.length > len || (m.length === 1 && m[0] === 0)) return null;
      out.set(m, i * len + len - m.length);
    }
    r.end();
    return out;
  } catch {
    return null;
  }
}

/** r || s (equal halves) → ECDSA-Sig-Value DER. */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length >> 1;
  return seq(derUnsignedInt(raw.subarray(0, half)), derUnsignedInt(raw.subarray(half)));
}

/** Schemes a key of `type` can sign with in TLS 1.3 CertificateVerify. */
export function schemesFor(type: KeyType): ('ecdsa_secp256r1_sha256' | 'ecdsa_secp384r1_sha384' | 'ed25519' | 'rsa_pss_rsae_sha256' | 'rsa_pss_rsae_sha384' | 'rsa_pss_rsae_sha512')[] {
  switch (type) {
    case 'ec-p256':
      return ['ecdsa_secp256r1_sha256'];
    case 'ec-p384':
      return ['ecdsa_secp384r1_sha384'];
    case 'ed25519':
      return ['ed25519'];
    case 'rsa':
      return ['rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512'];
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concat(...parts);
}

export type SchemeInfo =
  | { kind: 'ecdsa'; curve: EcCurve; hash: 'sha256' | 'sha384' }
  | { kind: 'ed25519' }
  | { kind: 'rsa-pss'; hash: 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pkcs1'; hash: 'sha256' | 'sha384' | 'sha512' };

/** What a TLS SignatureScheme means (RFC 8446 §4.2.3). */
export const schemeInfo: Record<SignatureScheme, SchemeInfo> = {
  ecdsa_secp256r1_sha256: { kind: 'ecdsa', curve: 'p256', hash: 'sha256' },
  ecdsa_secp384r1_sha384: { kind: 'ecdsa', curve: 'p384', hash: 'sha384' },
  ed25519: { kind: 'ed25519' },
  rsa_pss_rsae_sha256: { kind: 'rsa-pss', hash: 'sha256' },
  rsa_pss_rsae_sha384: { kind: 'rsa-pss', hash: 'sha384' },
  rsa_pss_rsae_sha512: { kind: 'rsa-pss', hash: 'sha512' },
  rsa_pkcs1_sha256: { kind: 'rsa-pkcs1', hash: 'sha256' },
  rsa_pkcs1_sha384: { kind: 'rsa-pkcs1', hash: 'sha384' },
  rsa_pkcs1_sha512: { kind: 'rsa-pkcs1', hash: 'sha512' },
};

export const allSignatureSchemes: readonly SignatureScheme[] = Object.keys(schemeInfo) as SignatureScheme[];

/**
 * For `verify(scheme, spki, ...)`: the X.509-style algorithm to check with, or null if the key in
 * `spki` cannot be used with `scheme` (ECDSA schemes pin the curve, RFC 8446 §4.2.3; rsa_pss_rsae_*
 * and rsa_pkcs1_* need an rsaEncryption key).
 */
/**
 * CryptoProvider.verify for both providers: the scheme's algorithm for the key in `spki`, checked by
 * the provider's own `verifySignature`. false when the key does not suit the scheme; never throws.
 */
export function verifyByScheme(
  verifySignature: (alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
  scheme: SignatureScheme,
  spki: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const pk = parseSpki(spki);
  if (!pk) return false;
  const alg = schemeAlgorithm(scheme, pk);
  return alg ? verifySignature(alg, spki, message, signature) : false;
}

export function schemeAlgorithm(scheme: SignatureScheme, key: ParsedPublicKey): SignatureAlgorithm | null {
  const info = schemeInfo[scheme];
  if (!info) return null;
  switch (info.kind) {
    case 'ecdsa':
      return key.kind === 'ec' && key.curve === info.curve ? { kind: 'ecdsa', hash: info.hash } : null;
    case 'ed25519':
      return key.kind === 'ed25519' ? { kind: 'ed25519' } : null;
    case 'rsa-pss':
      return key.kind === 'rsa' && !key.pss ? { kind: 'rsa-pss', hash: info.hash } : null;
    case 'rsa-pkcs1':
      return key.kind === 'rsa' && !key.pss ? { kind: 'rsa-pkcs1', hash: info.hash } : null;
  }
}

export const sigHashLength = { sha256: 32, sha384: 48, sha512: 64 } as const;

/** The error thrown when a loaded key is asked to sign with a scheme it cannot use (a local bug). */
export function schemeMismatch(type: KeyType, scheme: string): ConfigError {
  return new ConfigError(`a ${type} key cannot sign with signature scheme '${scheme}'; it supports ${schemesFor(type).join(', ')}`);
}

/**
 * Pairwise consistency test at load time: a signature made with the private key must verify with
 * its public key. Catches corrupted or mismatched key material with a clear ConfigError instead of
 * handshakes failing later at the peer.
 */
export function checkKeyPair(key: SigningKey, verify: (scheme: SignatureScheme, spki: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean): SigningKey {
  const scheme = key.schemes[0]!;
  const message = new TextEncoder().encode('petrel key pair consistency check');
  let ok = false;
  try {
    ok = verify(scheme, key.spki, message, key.sign(scheme, message));
  } catch {
    ok = false;
  }
  if (!ok) throw new ConfigError(`invalid ${key.type} private key: its components are inconsistent (a test signature does not verify); regenerate or re-export the key`);
  return key;
}
