/**
 * The crypto provider interface: the only place crypto happens (DESIGN.md, "tls-core").
 *
 * Protocol code receives a `CryptoProvider` value and never imports `node:crypto` or `@noble/*`.
 * Adding a provider (e.g. WebCrypto) means adding a file that implements this interface.
 * All byte values are `Uint8Array`. Nothing here throws on peer-controlled input: AEAD open returns
 * null, key-exchange completion returns null for an invalid peer share, verify returns false.
 */

export type HashAlg = 'sha256' | 'sha384';

export const hashLength: Record<HashAlg, number> = { sha256: 32, sha384: 48 };

/** An incremental hash (transcript hash). `digest()` does not finalize: it may be called again after more updates. */
export interface Hash {
  readonly alg: HashAlg;
  update(data: Uint8Array): void;
  /** Hash of everything fed so far; the hash stays usable. */
  digest(): Uint8Array;
  /** An independent copy with the same state. */
  clone(): Hash;
}

export type AeadAlg = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

export const aeadKeyLength: Record<AeadAlg, number> = {
  'aes-128-gcm': 16,
  'aes-256-gcm': 32,
  'chacha20-poly1305': 32,
};

/** An AEAD bound to one key, created once per key and reused for every record/packet. Nonces are 12 bytes, tags 16. */
export interface Aead {
  readonly alg: AeadAlg;
  /**
   * Encrypts `plaintext`; returns ciphertext || tag (plaintext.length + 16 bytes).
   * If `out` is given (at least plaintext.length + 16 bytes) the result is written there and a
   * subarray of `out` is returned; `out` may alias `plaintext` at the same offset (in-place).
   */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array;
  /** Decrypts and authenticates ciphertext || tag. Returns null on failure; never throws. `out` as for seal. */
  open(nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array | null;
  /**
   * Optional fast path of seal() for QUIC packets, in place and by offsets (no views for the caller
   * to make): buf[aadStart, textStart) is the AAD, buf[textStart, textEnd) the plaintext, replaced
   * by the ciphertext, and the tag is written at buf[textEnd, textEnd + 16). Same result as
   * seal(nonce, aad, plaintext, out-aliasing-plaintext).
   */
  sealInPlace?(nonce: Uint8Array, buf: Uint8Array, aadStart: number, textStart: number, textEnd: number): void;
  /**
   * Optional fast path of open(), in place: buf[textStart, tagStart) is the ciphertext and
   * buf[tagStart, tagStart + 16) the tag; on success the plaintext replaces the ciphertext and true
   * is returned; false on authentication failure (buf is then unchanged). Never throws.
   */
  openInPlace?(nonce: Uint8Array, buf: Uint8Array, aadStart: number, textStart: number, tagStart: number): boolean;
}

/** QUIC header protection (RFC 9001 §5.4) bound to one key. */
export interface HeaderProtection {
  /**
   * Computes the 5-byte mask from the 16-byte sample at `sample[offset..offset+16]`.
   * The returned array may be a buffer reused by the next call: copy it if you keep it.
   */
  mask(sample: Uint8Array, offset?: number): Uint8Array;
}

export type NamedGroup = 'x25519' | 'secp256r1' | 'secp384r1' | 'x25519mlkem768';

/** Wire codes (RFC 8446 §4.2.7, draft-ietf-tls-ecdhe-mlkem). */
export const NamedGroupCode: Record<NamedGroup, number> = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  x25519: 0x001d,
  x25519mlkem768: 0x11ec,
};

/** A key share we generated (client side, or server side of a classic DH group). */
export interface KeyShare {
  readonly group: NamedGroup;
  /** What goes in our KeyShareEntry. */
  readonly share: Uint8Array;
  /** Derives the shared secret from the peer's share (client: the server's share). null if the peer share is invalid. */
  complete(peerShare: Uint8Array): Uint8Array | null;
}

export interface KeyExchange {
  readonly group: NamedGroup;
  /**
   * Client side: a fresh key pair (for ML-KEM hybrids: the encapsulation key).
   * `privateKey` makes it deterministic (test vectors such as RFC 8448): the raw private scalar
   * for x25519 / secp256r1 / secp384r1; for x25519mlkem768 the 64-byte ML-KEM seed followed by
   * the 32-byte X25519 scalar.
   */
  generate(privateKey?: Uint8Array): KeyShare;
  /**
   * Server side: answer a client share. Returns our share (for hybrids, the KEM ciphertext
   * concatenated as the group specifies) and the shared secret; null if the client share is invalid.
   */
  respond(clientShare: Uint8Array): { share: Uint8Array; secret: Uint8Array } | null;
}

export type SignatureScheme =
  | 'ecdsa_secp256r1_sha256'
  | 'ecdsa_secp384r1_sha384'
  | 'ed25519'
  | 'rsa_pss_rsae_sha256'
  | 'rsa_pss_rsae_sha384'
  | 'rsa_pss_rsae_sha512'
  | 'rsa_pkcs1_sha256'
  | 'rsa_pkcs1_sha384'
  | 'rsa_pkcs1_sha512';

/** Wire codes (RFC 8446 §4.2.3). */
export const SignatureSchemeCode: Record<SignatureScheme, number> = {
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  ed25519: 0x0807,
};

export type SignatureAlgorithm =
  | { kind: 'ecdsa'; hash: 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pkcs1'; hash: 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pss'; hash: 'sha256' | 'sha384' | 'sha512'; saltLength?: number }
  | { kind: 'ed25519' };

export type KeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa';

/** A loaded private key. */
export interface SigningKey {
  readonly type: KeyType;
  /** RSA modulus size in bits; curve size otherwise. */
  readonly bits: number;
  /** Schemes this key can sign with in TLS 1.3 CertificateVerify (never rsa_pkcs1_*). */
  readonly schemes: readonly SignatureScheme[];
  /** The public key as SubjectPublicKeyInfo DER (to check it matches the certificate). */
  readonly spki: Uint8Array;
  sign(scheme: SignatureScheme, message: Uint8Array): Uint8Array;
}

export interface CryptoProvider {
  /** 'node', 'noble', ... */
  readonly name: string;
  randomBytes(n: number): Uint8Array;

  hash(alg: HashAlg): Hash;
  /** One-shot digest. */
  digest(alg: HashAlg, data: Uint8Array): Uint8Array;
  hmac(alg: HashAlg, key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdfExtract(alg: HashAlg, salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  hkdfExpand(alg: HashAlg, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** AEAD context for one key (create once, reuse). Throws ConfigError on a wrong key length. */
  aead(alg: AeadAlg, key: Uint8Array): Aead;
  /** QUIC header protection for one hp key: AES-ECB for AES suites, ChaCha20 for chacha20-poly1305. */
  headerProtection(alg: AeadAlg, hpKey: Uint8Array): HeaderProtection;

  readonly groups: readonly NamedGroup[];
  keyExchange(group: NamedGroup): KeyExchange;

  readonly signatureSchemes: readonly SignatureScheme[];
  /**
   * Loads a private key from DER: PKCS#8, SEC1 (EC) or PKCS#1 (RSA); the format is detected.
   * Throws ConfigError with an actionable message if it cannot be used.
   */
  loadPrivateKey(der: Uint8Array): SigningKey;
  /** Generates a new private key of `type` ('rsa': 2048 bits unless `bits` says otherwise) as PKCS#8 DER. */
  generatePrivateKey(type: KeyType, bits?: number): Uint8Array;
  /**
   * Verifies an X.509-style signature (any hash with any matching key, as certificate chains need):
   * ECDSA (DER signature) with P-256/P-384 keys, RSA PKCS#1 v1.5, RSA-PSS (saltLength defaults to the
   * hash length), Ed25519 (hash ignored). false on any failure; never throws.
   */
  verifySignature(alg: SignatureAlgorithm, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** Verifies `signature` over `message` with the key in `spki` (SubjectPublicKeyInfo DER). false on any failure. */
  verify(scheme: SignatureScheme, spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}
