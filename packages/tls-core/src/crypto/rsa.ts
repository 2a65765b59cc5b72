/**
 * RSA with BigInt (RFC 8017) for providers without native RSA (noble). Not a hot path: one signature
 * per handshake and a few verifications per certificate chain.
 *
 * - RSASP1 with CRT (§5.2.1, second form) plus a fault check (s^e mod n must give back m).
 * - EMSA-PSS encode/verify (§9.1.1 / §9.1.2) with MGF1 (§B.2.1).
 * - RSASSA-PKCS1-v1_5 verification by re-encoding the full EMSA-PKCS1-v1_5 block (§8.2.2, §9.2)
 *   and comparing it byte for byte (no DigestInfo parsing, so no parser confusion).
 * - Key generation: random primes by trial division + Miller-Rabin, e = 65537.
 *
 * Hash functions and randomness are passed in: this file imports no crypto library.
 */
import type { RsaPrivateComponents } from './keys.js';

export type RsaHash = 'sha256' | 'sha384' | 'sha512';
export type HashFn = (alg: RsaHash, data: Uint8Array) => Uint8Array;
export type RandomFn = (n: number) => Uint8Array;

const HLEN: Record<RsaHash, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** DER DigestInfo prefixes (RFC 8017 §9.2 Note 1). */
const DIGEST_INFO: Record<RsaHash, Uint8Array> = {
  sha256: hexBytes('3031300d060960864801650304020105000420'),
  sha384: hexBytes('3041300d060960864801650304020205000430'),
  sha512: hexBytes('3051300d060960864801650304020305000440'),
};

function hexBytes(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}

export function os2ip(b: Uint8Array): bigint {
  let hex = '';
  for (let i = 0; i < b.length; i++) hex += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return hex.length ? BigInt('0x' + hex) : 0n;
}

/** I2OSP; throws if x does not fit in `len` bytes. */
export function i2osp(x: bigint, len: number): Uint8Array {
  if (x < 0n) throw new RangeError('negative integer');
  const hex = x.toString(16);
  if (hex.length > len * 2) throw new RangeError('integer too large');
  const out = new Uint8Array(len);
  const padded = hex.padStart(len * 2, '0');
  for (let i = 0; i < len; i++) out[i] = parseInt(padded.substr(i * 2, 2), 16);
  return out;
}

/** Unsigned magnitude bytes of x (at least one byte). */
export function bigToBytes(x: bigint): Uint8Array {
  const hex = x.toString(16);
  return i2osp(x, Math.max(1, (hex.length + 1) >> 1));
}

export function bitLen(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  if (mod === 1n) return 0n;
  let r = 1n;
  let b = base % mod;
  if (b < 0n) b += mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    e >>= 1n;
    if (e > 0n) b = (b * b) % mod;
  }
  return r;
}

export function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('not invertible');
  return ((s0 % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

export interface RsaPublicKey {
  n: bigint;
  e: bigint;
  /** Modulus length in bits. */
  bits: number;
}

export interface RsaPrivateKey extends RsaPublicKey {
  d: bigint;
  p: bigint;
  q: bigint;
  dp: bigint;
  dq: bigint;
  qi: bigint;
}

export function rsaPrivateFromComponents(c: RsaPrivateComponents): RsaPrivateKey {
  const n = os2ip(c.n);
  const k: RsaPrivateKey = { n, e: os2ip(c.e), d: os2ip(c.d), p: os2ip(c.p), q: os2ip(c.q), dp: os2ip(c.dp), dq: os2ip(c.dq), qi: os2ip(c.qi), bits: bitLen(n) };
  if (k.p * k.q !== k.n || k.e < 3n || k.p < 3n || k.q < 3n) throw new RangeError('inconsistent RSA private key (n != p*q)');
  return k;
}

export function rsaComponentsFromPrivate(k: RsaPrivateKey): RsaPrivateComponents {
  return { n: bigToBytes(k.n), e: bigToBytes(k.e), d: bigToBytes(k.d), p: bigToBytes(k.p), q: bigToBytes(k.q), dp: bigToBytes(k.dp), dq: bigToBytes(k.dq), qi: bigToBytes(k.qi) };
}

/** RSASP1 with CRT and a check against faults (RFC 8017 §5.2.1). */
function rsasp1(k: RsaPrivateKey, m: bigint): bigint {
  if (m >= k.n) throw new RangeError('message representative out of range');
  const s1 = modPow(m, k.dp, k.p);
  const s2 = modPow(m, k.dq, k.q);
  let h = ((s1 - s2) * k.qi) % k.p;
  if (h < 0n) h += k.p;
  const s = s2 + k.q * h;
  if (modPow(s, k.e, k.n) !== m) throw new Error('RSA signature fault check failed');
  return s;
}

/** MGF1 (RFC 8017 §B.2.1). */
function mgf1(hash: HashFn, alg: RsaHash, seed: Uint8Array, len: number): Uint8Array {
  const hl = HLEN[alg];
  const out = new Uint8Array(len);
  const buf = new Uint8Array(seed.length + 4);
  buf.set(seed, 0);
  for (let c = 0, pos = 0; pos < len; c++, pos += hl) {
    buf[seed.length] = c >>> 24;
    buf[seed.length + 1] = (c >>> 16) & 0xff;
    buf[seed.length + 2] = (c >>> 8) & 0xff;
    buf[seed.length + 3] = c & 0xff;
    const h = hash(alg, buf);
    out.set(len - pos >= hl ? h : h.subarray(0, len - pos), pos);
  }
  return out;
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1). */
export function emsaPssEncode(hash: HashFn, alg: RsaHash, message: Uint8Array, emBits: number, salt: Uint8Array): Uint8Array {
  const hl = HLEN[alg];
  const emLen = Math.ceil(emBits / 8);
  const mHash = hash(alg, message);
  if (emLen < hl + salt.length + 2) throw new RangeError('RSA modulus too small for PSS with this hash');
  const mPrime = new Uint8Array(8 + hl + salt.length);
  mPrime.set(mHash, 8);
  mPrime.set(salt, 8 + hl);
  const h = hash(alg, mPrime);
  const dbLen = emLen - hl - 1;
  const db = new Uint8Array(dbLen);
  db[dbLen - salt.length - 1] = 0x01;
  db.set(salt, dbLen - salt.length);
  const mask = mgf1(hash, alg, h, dbLen);
  for (let i = 0; i < dbLen; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = new Uint8Array(emLen);
  em.set(db, 0);
  em.set(h, dbLen);
  em[emLen - 1] = 0xbc;
  return em;
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2). */
export function emsaPssVerify(hash: HashFn, alg: RsaHash, message: Uint8Array, em: Uint8Array, emBits: number, sLen: number): boolean {
  const hl = HLEN[alg];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || sLen < 0 || emLen < hl + sLen + 2) return false;
  if (em[emLen - 1] !== 0xbc) return false;
  const dbLen = emLen - hl - 1;
  const masked = em.subarray(0, dbLen);
  const h = em.subarray(dbLen, dbLen + hl);
  const topMask = 0xff >> (8 * emLen - emBits);
  if (masked[0]! & ~topMask & 0xff) return false;
  const mask = mgf1(hash, alg, h, dbLen);
  const db = new Uint8Array(dbLen);
  for (let i = 0; i < dbLen; i++) db[i] = masked[i]! ^ mask[i]!;
  db[0]! &= topMask;
  const psLen = emLen - hl - sLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(dbLen - sLen);
  const mPrime = new Uint8Array(8 + hl + sLen);
  mPrime.set(hash(alg, message), 8);
  mPrime.set(salt, 8 + hl);
  return equal(hash(alg, mPrime), h);
}

/** EMSA-PKCS1-v1_5-ENCODE (RFC 8017 §9.2). */
export function emsaPkcs1Encode(hash: HashFn, alg: RsaHash, message: Uint8Array, emLen: number): Uint8Array {
  const prefix = DIGEST_INFO[alg];
  const tLen = prefix.length + HLEN[alg];
  if (emLen < tLen + 11) throw new RangeError('RSA modulus too small for PKCS#1 v1.5 with this hash');
  const em = new Uint8Array(emLen).fill(0xff);
  em[0] = 0;
  em[1] = 1;
  em[emLen - tLen - 1] = 0;
  em.set(prefix, emLen - tLen);
  em.set(hash(alg, message), emLen - HLEN[alg]);
  return em;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** RSAVP1 → EM of `k` bytes, or null if the signature is out of range. */
function rsavp1(pub: RsaPublicKey, sig: Uint8Array): Uint8Array | null {
  const k = Math.ceil(pub.bits / 8);
  if (sig.length !== k) return null;
  const s = os2ip(sig);
  if (s >= pub.n) return null;
  return i2osp(modPow(s, pub.e, pub.n), k);
}

export function rsaPssSign(hash: HashFn, random: RandomFn, key: RsaPrivateKey, alg: RsaHash, message: Uint8Array, saltLength = HLEN[alg]): Uint8Array {
  const em = emsaPssEncode(hash, alg, message, key.bits - 1, random(saltLength));
  return i2osp(rsasp1(key, os2ip(em)), Math.ceil(key.bits / 8));
}

export function rsaPkcs1Sign(hash: HashFn, key: RsaPrivateKey, alg: RsaHash, message: Uint8Array): Uint8Array {
  const k = Math.ceil(key.bits / 8);
  return i2osp(rsasp1(key, os2ip(emsaPkcs1Encode(hash, alg, message, k))), k);
}

export function rsaPssVerify(hash: HashFn, pub: RsaPublicKey, alg: RsaHash, message: Uint8Array, sig: Uint8Array, saltLength = HLEN[alg]): boolean {
  const em = rsavp1(pub, sig);
  if (!em) return false;
  const emBits = pub.bits - 1;
  const emLen = Math.ceil(emBits / 8);
  // When modBits - 1 is a multiple of 8, EM is one byte shorter than k and the top byte must be 0.
  if (emLen < em.length && em[0] !== 0) return false;
  return emsaPssVerify(hash, alg, message, em.subarray(em.length - emLen), emBits, saltLength);
}

export function rsaPkcs1Verify(hash: HashFn, pub: RsaPublicKey, alg: RsaHash, message: Uint8Array, sig: Uint8Array): boolean {
  const em = rsavp1(pub, sig);
  if (!em) return false;
  try {
    return equal(em, emsaPkcs1Encode(hash, alg, message, em.length));
  } catch {
    return false;
  }
}

const SMALL_PRIMES: number[] = (() => {
  const out: number[] = [];
  for (let n = 3; out.length < 400; n += 2) if (out.every((p) => p * p > n || n % p !== 0)) out.push(n);
  return out;
})();

/** Miller-Rabin with `rounds` random bases (FIPS 186-5 Table B.1: 4-5 rounds suffice for 1024-bit+ candidates after trial division). */
function isProbablePrime(n: bigint, random: RandomFn, rounds: number): boolean {
  if (n < 2n) return false;
  for (const p of SMALL_PRIMES) {
    const bp = BigInt(p);
    if (n === bp) return true;
    if (n % bp === 0n) return false;
  }
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  const bytes = Math.ceil(bitLen(n) / 8);
  for (let i = 0; i < rounds; i++) {
    const a = 2n + (os2ip(random(bytes)) % (n - 3n));
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    let composite = true;
    for (let r = 1; r < s; r++) {
      x = (x * x) % n;
      if (x === n - 1n) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

function randomPrime(bits: number, e: bigint, random: RandomFn): bigint {
  const bytes = Math.ceil(bits / 8);
  const excess = bytes * 8 - bits;
  for (let attempt = 0; attempt < 100000; attempt++) {
    const b = random(bytes);
    b[0]! &= 0xff >> excess;
    // Top two bits set so that p*q has exactly 2*bits bits; odd.
    b[0]! |= 0xc0 >> excess;
    b[bytes - 1]! |= 1;
    const c = os2ip(b);
    if ((c - 1n) % e === 0n) continue; // gcd(e, p-1) must be 1 (e is prime)
    if (isProbablePrime(c, random, 5)) return c;
  }
  throw new Error('RSA prime generation did not converge');
}

/** Generates an RSA key (e = 65537). Slow for big sizes (BigInt): ~1 s for 2048 bits. */
export function rsaGenerate(bits: number, random: RandomFn): RsaPrivateKey {
  if (!Number.isInteger(bits) || bits < 512 || bits > 8192) throw new RangeError('RSA key size must be 512..8192 bits');
  const e = 65537n;
  for (;;) {
    // Both primes have their top two bits set, so n has exactly ceil(bits/2) + floor(bits/2) bits.
    const p = randomPrime(Math.ceil(bits / 2), e, random);
    const q = randomPrime(Math.floor(bits / 2), e, random);
    if (p === q) continue;
    const n = p * q;
    if (bitLen(n) !== bits) continue;
    const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
    const d = modInverse(e, lambda);
    const [P, Q] = p > q ? [p, q] : [q, p];
    return { n, e, d, p: P, q: Q, dp: d % (P - 1n), dq: d % (Q - 1n), qi: modInverse(Q, P), bits };
  }
}
