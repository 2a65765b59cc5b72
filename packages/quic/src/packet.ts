/**
 * Whole-packet helpers that are not header parsing: finishing (padding, Length, protection) a packet
 * written into a send buffer, and Stateless Reset (RFC 9000 §10.3). Stateless reset token
 * generation (HMAC of the connection ID) lives with the endpoint (token.ts / cid.ts).
 */
import { writeVarintFixed } from './varint.js';
import type { PacketKeys } from './protection.js';

/** AEAD tag length of every QUIC v1/v2 cipher. */
export const AEAD_TAG_LENGTH = 16;

/**
 * Finishes a packet whose header was written with writeLongHeader / writeShortHeader and whose frames
 * end at `payloadEnd`: appends PADDING (zero bytes) so that the header protection sample fits
 * (RFC 9001 §5.4.2) and the packet reaches `minPacketEnd` (e.g. the end of a 1200-byte client Initial
 * datagram, RFC 9000 §14.1), patches the Length field for long headers (`lengthSize` bytes right
 * before the packet number; pass 0 for short headers), then protects the packet in place.
 * Returns the packet end. `buf` needs room up to max(payloadEnd + padding, minPacketEnd - 16) + 16.
 */
export function sealPacket(
  keys: PacketKeys,
  buf: Uint8Array,
  headerOffset: number,
  pnOffset: number,
  pnLength: number,
  lengthSize: number,
  payloadEnd: number,
  pn: number,
  minPacketEnd = 0,
): number {
  let end = payloadEnd;
  const sampleMin = pnOffset + 4; // pnLength + payload >= 4
  if (end < sampleMin) end = sampleMin;
  if (end < minPacketEnd - AEAD_TAG_LENGTH) end = minPacketEnd - AEAD_TAG_LENGTH;
  if (end + AEAD_TAG_LENGTH > buf.length) throw new RangeError('send buffer too small for padding and tag');
  if (end > payloadEnd) buf.fill(0, payloadEnd, end);
  if (lengthSize > 0) writeVarintFixed(buf, pnOffset - lengthSize, end + AEAD_TAG_LENGTH - pnOffset, lengthSize);
  return keys.protect(buf, headerOffset, pnOffset, pnLength, end, pn);
}

/**
 * Where datagrams are built: slices of a shared 64 KiB pool (as Node's Buffer pool), so that a
 * datagram is written in place and handed out as an exact-size view, without a copy or an
 * ArrayBuffer of its own (an off-heap allocation, ~0.3 µs, plus its finalization by the GC).
 * Bytes of a committed datagram are never written again: the view stays valid for as long as
 * its holder keeps it (which keeps that pool alive, as any view would). One reservation at a time:
 * a nested `reserve` (a callback building another datagram meanwhile) gets a buffer of its own.
 */
export class DatagramPool {
  private pool: Uint8Array;
  private pos = 0;
  private reserved: Uint8Array | null = null;

  constructor(readonly size = 64 * 1024) {
    this.pool = new Uint8Array(size);
  }

  /** A buffer of `n` bytes to build one datagram in; then {@link commit} or {@link release}. */
  reserve(n: number): Uint8Array {
    if (this.reserved !== null || n > this.size >> 2) return new Uint8Array(n);
    if (this.size - this.pos < n) {
      this.pool = new Uint8Array(this.size);
      this.pos = 0;
    }
    return (this.reserved = this.pool.subarray(this.pos, this.pos + n));
  }

  /** The datagram: the first `used` bytes of `buf` (from reserve); the pool moves past them. */
  commit(buf: Uint8Array, used: number): Uint8Array {
    if (buf !== this.reserved) return buf.subarray(0, used);
    this.reserved = null;
    this.pos += (used + 7) & ~7; // 8-byte aligned starts
    return buf.subarray(0, used);
  }

  /** Nothing was sent from `buf` (or building it failed): the reservation ends, the bytes are reused. */
  release(buf?: Uint8Array): void {
    if (buf === undefined || buf === this.reserved) this.reserved = null;
  }
}

/** Stateless reset token length. */
export const STATELESS_RESET_TOKEN_LENGTH = 16;
/** Smallest possible Stateless Reset: 5 bytes looking like a short header + the 16-byte token (§10.3). */
export const MIN_STATELESS_RESET_LENGTH = 21;

/**
 * Size of the Stateless Reset to send in response to a packet of `receivedLength` bytes: one byte
 * shorter than the trigger (so resets cannot loop, §10.3.3) and never below 21 bytes; `preferred`
 * (default 43) caps it. Returns 0 if no reset may be sent (the trigger is too small).
 */
export function statelessResetSize(receivedLength: number, preferred = 43): number {
  const n = Math.min(preferred, receivedLength - 1);
  return n >= MIN_STATELESS_RESET_LENGTH ? n : 0;
}

/**
 * Writes a Stateless Reset into `out` (its whole length is the datagram): `random` supplies the
 * unpredictable bytes (at least out.length - 16 of them), the first byte is forced to 0b01xxxxxx
 * (short header form, fixed bit set), and the last 16 bytes are `token`.
 */
export function writeStatelessReset(out: Uint8Array, token: Uint8Array, random: Uint8Array): Uint8Array {
  if (out.length < MIN_STATELESS_RESET_LENGTH) throw new RangeError('a Stateless Reset is at least 21 bytes');
  if (token.length !== STATELESS_RESET_TOKEN_LENGTH) throw new RangeError('stateless reset token must be 16 bytes');
  const n = out.length - STATELESS_RESET_TOKEN_LENGTH;
  if (random.length < n) throw new RangeError(`need ${n} random bytes`);
  out.set(random.subarray(0, n), 0);
  out[0] = (out[0]! & 0x3f) | 0x40;
  out.set(token, n);
  return out;
}

/**
 * Offset of the candidate stateless reset token in a datagram buf[offset, end): the last 16 bytes.
 * Returns -1 if the datagram is too small to be a Stateless Reset (RFC 9000 §10.3.1).
 */
export function statelessResetTokenOffset(buf: Uint8Array, offset: number, end: number): number {
  return end - offset >= MIN_STATELESS_RESET_LENGTH && end <= buf.length ? end - STATELESS_RESET_TOKEN_LENGTH : -1;
}

/**
 * Does the datagram buf[offset, end) end with `token`? Constant-time in the token bytes. Call this for
 * a datagram that could not be processed (RFC 9000 §10.3.1), for each stateless reset token of the
 * peer's active connection IDs.
 */
export function matchesStatelessReset(buf: Uint8Array, offset: number, end: number, token: Uint8Array): boolean {
  const at = statelessResetTokenOffset(buf, offset, end);
  if (at < 0 || token.length !== STATELESS_RESET_TOKEN_LENGTH) return false;
  let diff = 0;
  for (let i = 0; i < STATELESS_RESET_TOKEN_LENGTH; i++) diff |= buf[at + i]! ^ token[i]!;
  return diff === 0;
}
