/**
 * QUIC packet protection (RFC 9001 §5, §6; RFC 9369 §3.3): packet keys from a traffic secret,
 * in-place AEAD payload protection and header protection, key update, AEAD usage limits.
 *
 * All operations work in place on the datagram/send buffer. The only per-packet allocations are the
 * small `subarray` views the provider's AEAD interface takes (fewer through its optional in-place
 * sealInPlace/openInPlace, which take offsets); the nonce buffer is reused per key.
 *
 * Send: write header + frames (leave 16 bytes after the payload for the tag), patch the Length,
 * then `keys.protect(buf, headerOffset, pnOffset, pnLength, payloadEnd, pn)` → packet end.
 * Receive: `keys.unprotect(buf, h.headerOffset, h.pnOffset, h.packetEnd, largestPn, result)`; or, with
 * key update, `removeHeaderProtection` first (header protection keys never change), read
 * `result.keyPhase`, pick the key generation, then `keys.decrypt(buf, result)`.
 */
import type { Aead, AeadAlg, CryptoProvider, HashAlg, HeaderProtection } from '@petrel/tls-core';
import { aeadKeyLength, hashLength, hkdfExpandLabel } from '@petrel/tls-core';
import { TransportError, quicError } from './errors.js';
import { decodePacketNumber } from './header.js';
import { QUIC_V2 } from './version.js';

const EMPTY = new Uint8Array(0);

/** The HKDF labels of a QUIC version (RFC 9001 §5.1, §6.1; RFC 9369 §3.3.2). */
export interface QuicLabels {
  key: string;
  iv: string;
  hp: string;
  ku: string;
}
export const V1_LABELS: QuicLabels = { key: 'quic key', iv: 'quic iv', hp: 'quic hp', ku: 'quic ku' };
export const V2_LABELS: QuicLabels = { key: 'quicv2 key', iv: 'quicv2 iv', hp: 'quicv2 hp', ku: 'quicv2 ku' };

export function labelsFor(version: number): QuicLabels {
  return version === QUIC_V2 ? V2_LABELS : V1_LABELS;
}

/** An AEAD and the hash of its TLS cipher suite (compatible with the entries of `CipherSuites`). */
export interface PacketCipher {
  aead: AeadAlg;
  hash: HashAlg;
}

/**
 * AEAD usage limits (RFC 9001 §6.6), in packets. Confidentiality: packets protected with one key
 * before a key update is required. Integrity: packets failing authentication (across all keys of
 * the connection) before the connection must close with AEAD_LIMIT_REACHED.
 */
export const AEAD_LIMITS: Record<AeadAlg, { confidentiality: number; integrity: number }> = {
  'aes-128-gcm': { confidentiality: 2 ** 23, integrity: 2 ** 52 },
  'aes-256-gcm': { confidentiality: 2 ** 23, integrity: 2 ** 52 },
  // ChaCha20-Poly1305: the confidentiality limit exceeds the number of possible packets (2^62).
  'chacha20-poly1305': { confidentiality: 2 ** 62, integrity: 2 ** 36 },
};

/**
 * PADDING bytes to add to a payload of `payloadLength` bytes so that the header protection sample
 * (which starts 4 bytes after the packet number field, RFC 9001 §5.4.2) fits: pnLength + payload >= 4.
 */
export function paddingForSample(pnLength: number, payloadLength: number): number {
  const missing = 4 - pnLength - payloadLength;
  return missing > 0 ? missing : 0;
}

/** Result of header-protection removal / decryption, reused across packets. */
export class UnprotectedPacket {
  /** Full packet number. */
  pn = 0;
  pnLength = 0;
  /** First byte with header protection removed. */
  firstByte = 0;
  /** Short header Key Phase bit (false for long headers). */
  keyPhase = false;
  headerOffset = 0;
  pnOffset = 0;
  packetEnd = 0;
  /** Plaintext frames are buf[payloadOffset, payloadEnd) after a successful decrypt. */
  payloadOffset = 0;
  payloadEnd = 0;
}

/**
 * Packet protection keys of one direction and key phase. Create once per secret; reuse.
 */
export class PacketKeys {
  private readonly nonce = new Uint8Array(12);
  /** Packets protected with these keys (compare with AEAD_LIMITS[alg].confidentiality; RFC 9001 §6.6). */
  sealed = 0;
  /** Packets that failed authentication with these keys (sum over keys vs AEAD_LIMITS[alg].integrity). */
  openFailures = 0;

  constructor(
    readonly provider: CryptoProvider,
    readonly cipher: PacketCipher,
    readonly version: number,
    /** The traffic secret these keys were derived from (kept for key update). */
    readonly secret: Uint8Array,
    readonly aead: Aead,
    readonly iv: Uint8Array,
    readonly hp: HeaderProtection,
  ) {}

  /** Derives key, iv and hp key from `secret` (RFC 9001 §5.1; v2 labels per RFC 9369 §3.3.2). */
  static fromSecret(provider: CryptoProvider, cipher: PacketCipher, version: number, secret: Uint8Array): PacketKeys {
    const labels = labelsFor(version);
    const keyLen = aeadKeyLength[cipher.aead];
    const key = hkdfExpandLabel(provider, cipher.hash, secret, labels.key, EMPTY, keyLen);
    const iv = hkdfExpandLabel(provider, cipher.hash, secret, labels.iv, EMPTY, 12);
    const hpKey = hkdfExpandLabel(provider, cipher.hash, secret, labels.hp, EMPTY, keyLen);
    return new PacketKeys(
      provider,
      cipher,
      version,
      secret,
      provider.aead(cipher.aead, key),
      iv,
      provider.headerProtection(cipher.aead, hpKey),
    );
  }

  /**
   * The next key generation (RFC 9001 §6.1): secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length);
   * key and iv are rederived, the header protection key is not updated.
   */
  next(): PacketKeys {
    const labels = labelsFor(this.version);
    const h = this.cipher.hash;
    const secret = hkdfExpandLabel(this.provider, h, this.secret, labels.ku, EMPTY, hashLength[h]);
    const key = hkdfExpandLabel(this.provider, h, secret, labels.key, EMPTY, aeadKeyLength[this.cipher.aead]);
    const iv = hkdfExpandLabel(this.provider, h, secret, labels.iv, EMPTY, 12);
    return new PacketKeys(this.provider, this.cipher, this.version, secret, this.provider.aead(this.cipher.aead, key), iv, this.hp);
  }

  /** nonce = iv XOR left-padded packet number (RFC 9001 §5.3), in the reused nonce buffer. */
  private makeNonce(pn: number): Uint8Array {
    const n = this.nonce;
    n.set(this.iv);
    const hi = Math.floor(pn / 0x100000000);
    const lo = pn >>> 0;
    n[4]! ^= hi >>> 24;
    n[5]! ^= (hi >>> 16) & 0xff;
    n[6]! ^= (hi >>> 8) & 0xff;
    n[7]! ^= hi & 0xff;
    n[8]! ^= lo >>> 24;
    n[9]! ^= (lo >>> 16) & 0xff;
    n[10]! ^= (lo >>> 8) & 0xff;
    n[11]! ^= lo & 0xff;
    return n;
  }

  /**
   * Protects the packet in place: the header occupies buf[headerOffset, pnOffset + pnLength) (with the
   * Length field already final and the unprotected packet number written), the plaintext payload
   * buf[pnOffset + pnLength, payloadEnd); the 16-byte tag is written at payloadEnd, so buf must have
   * room up to payloadEnd + 16. Then applies header protection. Returns the packet end (payloadEnd + 16).
   * The sample needs pnLength + payload length >= 4 (pad with PADDING frames); otherwise RangeError (local bug).
   */
  protect(buf: Uint8Array, headerOffset: number, pnOffset: number, pnLength: number, payloadEnd: number, pn: number): number {
    const payloadStart = pnOffset + pnLength;
    const packetEnd = payloadEnd + 16;
    const sampleOffset = pnOffset + 4;
    if (sampleOffset + 16 > packetEnd || packetEnd > buf.length) {
      throw new RangeError('packet too short for header protection sample, or buffer too small for the tag');
    }
    this.sealed++;
    const aead = this.aead;
    if (aead.sealInPlace !== undefined) aead.sealInPlace(this.makeNonce(pn), buf, headerOffset, payloadStart, payloadEnd);
    else aead.seal(this.makeNonce(pn), buf.subarray(headerOffset, payloadStart), buf.subarray(payloadStart, payloadEnd), buf.subarray(payloadStart, packetEnd));
    const mask = this.hp.mask(buf, sampleOffset);
    buf[headerOffset]! ^= mask[0]! & ((buf[headerOffset]! & 0x80) !== 0 ? 0x0f : 0x1f);
    for (let i = 0; i < pnLength; i++) buf[pnOffset + i]! ^= mask[1 + i]!;
    return packetEnd;
  }

  /**
   * Removes header protection in place (RFC 9001 §5.4) and decodes the packet number against
   * `largestPn` (largest packet number received in the space, -1 if none). Fills `out`.
   * Returns false (drop) if the packet is too short to hold a sample. The header protection key is the
   * same for all key generations, so any generation of the space can do this.
   */
  removeHeaderProtection(
    buf: Uint8Array,
    headerOffset: number,
    pnOffset: number,
    packetEnd: number,
    largestPn: number,
    out: UnprotectedPacket,
  ): boolean {
    const sampleOffset = pnOffset + 4;
    if (sampleOffset + 16 > packetEnd || packetEnd > buf.length || headerOffset >= pnOffset) return false;
    const mask = this.hp.mask(buf, sampleOffset);
    const long = (buf[headerOffset]! & 0x80) !== 0;
    const first = buf[headerOffset]! ^ (mask[0]! & (long ? 0x0f : 0x1f));
    buf[headerOffset] = first;
    const pnLength = (first & 3) + 1;
    let truncated = 0;
    for (let i = 0; i < pnLength; i++) {
      const b = buf[pnOffset + i]! ^ mask[1 + i]!;
      buf[pnOffset + i] = b;
      truncated = truncated * 256 + b;
    }
    out.pn = decodePacketNumber(largestPn, truncated, pnLength * 8);
    out.pnLength = pnLength;
    out.firstByte = first;
    out.keyPhase = !long && (first & 0x04) !== 0;
    out.headerOffset = headerOffset;
    out.pnOffset = pnOffset;
    out.packetEnd = packetEnd;
    out.payloadOffset = pnOffset + pnLength;
    out.payloadEnd = packetEnd - 16;
    return true;
  }

  /**
   * Decrypts the payload in place after {@link removeHeaderProtection}. Returns false if authentication
   * fails (drop; the payload bytes are then unspecified). After successful decryption, non-zero reserved
   * bits are a PROTOCOL_VIOLATION (RFC 9000 §17.2, §17.3.1), thrown as ProtocolViolation.
   */
  decrypt(buf: Uint8Array, p: UnprotectedPacket): boolean {
    const aead = this.aead;
    const ok =
      aead.openInPlace !== undefined
        ? aead.openInPlace(this.makeNonce(p.pn), buf, p.headerOffset, p.payloadOffset, p.payloadEnd)
        : aead.open(this.makeNonce(p.pn), buf.subarray(p.headerOffset, p.payloadOffset), buf.subarray(p.payloadOffset, p.packetEnd), buf.subarray(p.payloadOffset, p.packetEnd)) !== null;
    if (!ok) {
      this.openFailures++;
      return false;
    }
    const reserved = (p.firstByte & 0x80) !== 0 ? p.firstByte & 0x0c : p.firstByte & 0x18;
    if (reserved !== 0) throw quicError(TransportError.PROTOCOL_VIOLATION, 'reserved header bits set');
    return true;
  }

  /** {@link removeHeaderProtection} then {@link decrypt} with these keys. false → drop the packet. */
  unprotect(
    buf: Uint8Array,
    headerOffset: number,
    pnOffset: number,
    packetEnd: number,
    largestPn: number,
    out: UnprotectedPacket,
  ): boolean {
    return this.removeHeaderProtection(buf, headerOffset, pnOffset, packetEnd, largestPn, out) && this.decrypt(buf, out);
  }
}
