/**
 * QUIC packet headers (RFC 9000 §17, RFC 9369 §3.2, RFC 8999): parsing of long and short headers over
 * a datagram without copying, splitting of coalesced packets (RFC 9000 §12.2), packet-number
 * encoding/decoding (RFC 9000 §17.1, Appendix A.2/A.3), and header builders that write into a send
 * buffer and return the offsets the packet builder patches later.
 *
 * Parsing fills a caller-owned, reusable {@link PacketHeader}; nothing is allocated per packet.
 * Malformed unprotected fields make the parser return false (the packet/datagram is dropped,
 * RFC 9000 §12.2, §17.2); it never throws on peer input.
 *
 * Usage (receive side):
 * ```ts
 * const h = new PacketHeader();
 * for (let off = 0; off < datagram.length; off = h.packetEnd) {
 *   if (!parseHeader(datagram, off, datagram.length, localCidLength, h)) break; // drop the rest
 *   // route on h.dcidOffset/h.dcidLength, pick keys by h.type, unprotect(datagram, h.headerOffset, h.pnOffset, h.packetEnd, ...)
 * }
 * ```
 */
import { readVarintChecked, varintSizeAt, writeVarint, writeVarintFixed } from './varint.js';
import { QUIC_V1, QUIC_V2 } from './version.js';

/** Packet types, independent of the version's wire encoding (RFC 9369 §3.2 permutes the long type bits). */
export const PacketType = {
  Initial: 0,
  ZeroRtt: 1,
  Handshake: 2,
  Retry: 3,
  OneRtt: 4,
  /** Long header with version 0 (RFC 9000 §17.2.1). */
  VersionNegotiation: 5,
  /** Long header of a version we do not implement: only the invariant fields are parsed (RFC 8999 §5.1). */
  UnknownVersion: 6,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** Maximum connection ID length in QUIC v1/v2 (RFC 9000 §17.2). */
export const MAX_CID_LENGTH = 20;

// Long packet type bits (first byte bits 4-5) per version: index = PacketType (Initial, 0-RTT, Handshake, Retry).
const V1_TYPE_BITS = [0, 1, 2, 3];
const V2_TYPE_BITS = [1, 2, 3, 0];
// Reverse: wire bits → PacketType.
const V1_BITS_TYPE: PacketType[] = [0, 1, 2, 3];
const V2_BITS_TYPE: PacketType[] = [3, 0, 1, 2];

/** The long-header type bits (0..3) for `type` in `version` (v1 or v2). */
export function longTypeBits(version: number, type: PacketType): number {
  return (version === QUIC_V2 ? V2_TYPE_BITS : V1_TYPE_BITS)[type]!;
}

/** Parsed header: offsets into the datagram, filled in place by {@link parseHeader}. */
export class PacketHeader {
  type: PacketType = PacketType.OneRtt;
  /** 0 for short headers (the version is the connection's). */
  version = 0;
  /** True for long headers. */
  long = false;
  /** First byte as received (still header-protected for Initial/0-RTT/Handshake/1-RTT). */
  firstByte = 0;
  /** Offset of the first byte of this packet in the datagram. */
  headerOffset = 0;
  dcidOffset = 0;
  dcidLength = 0;
  /** Long headers only (0/0 otherwise). */
  scidOffset = 0;
  scidLength = 0;
  /** Initial: the token; Retry: the Retry token (the 16-byte integrity tag follows it). 0/0 otherwise. */
  tokenOffset = 0;
  tokenLength = 0;
  /** Offset of the (protected) packet number. Not meaningful for Retry/VN/unknown versions. */
  pnOffset = 0;
  /** End of this packet (exclusive): start of the next coalesced packet, or the datagram end. */
  packetEnd = 0;
}

/**
 * Parses the header of the packet starting at `buf[offset]` (datagram ends at `end`).
 * `localCidLength` is the length of our connection IDs (short headers carry no length).
 * `allowFixedBitZero` accepts a cleared QUIC Bit (only if we advertised grease_quic_bit, RFC 9287).
 * Returns false if the packet must be dropped; then the rest of the datagram is dropped too.
 */
export function parseHeader(
  buf: Uint8Array,
  offset: number,
  end: number,
  localCidLength: number,
  out: PacketHeader,
  allowFixedBitZero = false,
): boolean {
  if (offset >= end || end > buf.length) return false;
  const b0 = buf[offset]!;
  out.firstByte = b0;
  out.headerOffset = offset;
  out.scidOffset = 0;
  out.scidLength = 0;
  out.tokenOffset = 0;
  out.tokenLength = 0;
  if ((b0 & 0x80) === 0) {
    // Short header (RFC 9000 §17.3.1).
    if (!allowFixedBitZero && (b0 & 0x40) === 0) return false;
    const pnOffset = offset + 1 + localCidLength;
    if (pnOffset > end) return false;
    out.long = false;
    out.type = PacketType.OneRtt;
    out.version = 0;
    out.dcidOffset = offset + 1;
    out.dcidLength = localCidLength;
    out.pnOffset = pnOffset;
    out.packetEnd = end;
    return true;
  }
  // Long header (RFC 9000 §17.2; RFC 8999 §5.1 for the invariant part).
  if (end - offset < 7) return false;
  out.long = true;
  const version = ((buf[offset + 1]! << 24) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 8) | buf[offset + 4]!) >>> 0;
  out.version = version;
  let o = offset + 5;
  const dl = buf[o++]!;
  if (o + dl + 1 > end) return false;
  out.dcidOffset = o;
  out.dcidLength = dl;
  o += dl;
  const sl = buf[o++]!;
  if (o + sl > end) return false;
  out.scidOffset = o;
  out.scidLength = sl;
  o += sl;
  out.pnOffset = o;
  out.packetEnd = end;
  if (version === 0) {
    out.type = PacketType.VersionNegotiation;
    return true;
  }
  if (version !== QUIC_V1 && version !== QUIC_V2) {
    out.type = PacketType.UnknownVersion;
    return true;
  }
  if (dl > MAX_CID_LENGTH || sl > MAX_CID_LENGTH) return false;
  if (!allowFixedBitZero && (b0 & 0x40) === 0) return false;
  const type = (version === QUIC_V2 ? V2_BITS_TYPE : V1_BITS_TYPE)[(b0 >> 4) & 3]!;
  out.type = type;
  if (type === PacketType.Retry) {
    // Retry Token fills the packet up to the 16-byte integrity tag (RFC 9000 §17.2.5).
    if (end - o < 16) return false;
    out.tokenOffset = o;
    out.tokenLength = end - 16 - o;
    return true;
  }
  if (type === PacketType.Initial) {
    const tl = readVarintChecked(buf, o, end);
    if (tl < 0) return false;
    o += varintSizeAt(buf, o);
    if (tl > end - o) return false;
    out.tokenOffset = o;
    out.tokenLength = tl;
    o += tl;
  }
  const length = readVarintChecked(buf, o, end);
  if (length < 0) return false;
  o += varintSizeAt(buf, o);
  if (length > end - o) return false;
  out.pnOffset = o;
  out.packetEnd = o + length;
  return true;
}

/**
 * Reads the Destination Connection ID offset/length of the packet at `offset` without a full parse
 * (for routing). Returns the DCID length, or -1 if the header is too short. The DCID starts at
 * `offset + 6` for long headers and `offset + 1` for short headers.
 */
export function dcidLengthAt(buf: Uint8Array, offset: number, end: number, localCidLength: number): number {
  if (offset >= end) return -1;
  if ((buf[offset]! & 0x80) === 0) return offset + 1 + localCidLength <= end ? localCidLength : -1;
  if (end - offset < 6) return -1;
  const dl = buf[offset + 5]!;
  return offset + 6 + dl <= end ? dl : -1;
}

// ---------------------------------------------------------------------------------------------
// Packet numbers (RFC 9000 §17.1, Appendix A)

/**
 * Number of bytes (1..4) to encode `fullPn` given the largest packet number the peer acknowledged
 * in this space (-1 if none), per RFC 9000 Appendix A.2: a window at least twice the unacknowledged range.
 */
export function packetNumberLength(fullPn: number, largestAcked: number): number {
  const twice = 2 * (fullPn - largestAcked);
  if (twice <= 0x100) return 1;
  if (twice <= 0x10000) return 2;
  if (twice <= 0x1000000) return 3;
  return 4;
}

/**
 * Recovers a full packet number from its truncated form (RFC 9000 Appendix A.3).
 * `largestPn` is the largest packet number successfully processed in the space (-1 if none).
 */
export function decodePacketNumber(largestPn: number, truncatedPn: number, pnNbits: number): number {
  const expected = largestPn + 1;
  const win = 2 ** pnNbits;
  const hwin = win / 2;
  const candidate = expected - (expected % win) + truncatedPn;
  if (candidate <= expected - hwin && candidate < 2 ** 62 - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

/** Writes the low `length` bytes of `pn` at `off`; returns the offset after them. */
export function writePacketNumber(buf: Uint8Array, off: number, pn: number, length: number): number {
  // pn < 2^53: take the low 32 bits exactly.
  const low = pn % 0x100000000;
  for (let i = length - 1; i >= 0; i--) buf[off + (length - 1 - i)] = (low >>> (8 * i)) & 0xff;
  return off + length;
}

// ---------------------------------------------------------------------------------------------
// Header builders (send side)

/**
 * Writes a long header (Initial, 0-RTT or Handshake) at `off`: first byte (reserved bits 0, packet
 * number length bits set), version, CIDs, for Initial the token, a `lengthSize`-byte Length field
 * (filled with 0; patch it with {@link writePacketLength} once the payload is written) and the
 * truncated packet number. Returns the packet number offset; the Length field is at
 * `pnOffset - lengthSize` and the payload starts at `pnOffset + pnLength`.
 */
export function writeLongHeader(
  buf: Uint8Array,
  off: number,
  type: PacketType,
  version: number,
  dcid: Uint8Array,
  scid: Uint8Array,
  token: Uint8Array | null,
  pn: number,
  pnLength: number,
  lengthSize = 2,
): number {
  buf[off] = 0xc0 | (longTypeBits(version, type) << 4) | (pnLength - 1);
  buf[off + 1] = version >>> 24;
  buf[off + 2] = (version >>> 16) & 0xff;
  buf[off + 3] = (version >>> 8) & 0xff;
  buf[off + 4] = version & 0xff;
  let o = off + 5;
  buf[o++] = dcid.length;
  buf.set(dcid, o);
  o += dcid.length;
  buf[o++] = scid.length;
  buf.set(scid, o);
  o += scid.length;
  if (type === PacketType.Initial) {
    const tl = token === null ? 0 : token.length;
    o = writeVarint(buf, o, tl);
    if (tl > 0) buf.set(token!, o);
    o += tl;
  }
  o = writeVarintFixed(buf, o, 0, lengthSize);
  return writePacketNumber(buf, o, pn, pnLength) - pnLength;
}

/** Size of the long header {@link writeLongHeader} writes (up to and including the packet number). */
export function longHeaderSize(
  type: PacketType,
  dcidLength: number,
  scidLength: number,
  tokenLength: number,
  pnLength: number,
  lengthSize = 2,
): number {
  let n = 7 + dcidLength + scidLength + lengthSize + pnLength;
  if (type === PacketType.Initial) n += (tokenLength < 64 ? 1 : tokenLength < 16384 ? 2 : 4) + tokenLength;
  return n;
}

/**
 * Patches the Length field (RFC 9000 §17.2: packet number + protected payload, i.e. including the
 * 16-byte AEAD tag) at `lengthOffset` in exactly `lengthSize` bytes.
 */
export function writePacketLength(buf: Uint8Array, lengthOffset: number, lengthSize: number, length: number): void {
  writeVarintFixed(buf, lengthOffset, length, lengthSize);
}

/**
 * Writes a short header (RFC 9000 §17.3.1) at `off` with the fixed bit set, `spin` and `keyPhase`
 * bits, and the truncated packet number. Returns the packet number offset (payload at pnOffset + pnLength).
 */
export function writeShortHeader(
  buf: Uint8Array,
  off: number,
  dcid: Uint8Array,
  pn: number,
  pnLength: number,
  keyPhase: boolean,
  spin = false,
): number {
  buf[off] = 0x40 | (spin ? 0x20 : 0) | (keyPhase ? 0x04 : 0) | (pnLength - 1);
  buf.set(dcid, off + 1);
  const o = off + 1 + dcid.length;
  writePacketNumber(buf, o, pn, pnLength);
  return o;
}
