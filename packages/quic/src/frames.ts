/**
 * QUIC frames (RFC 9000 §12.4, §19; DATAGRAM from RFC 9221 §4): one table of all frame types,
 * a decoder without per-frame objects, and encoders that write into a buffer at an offset.
 *
 * Decoding: the caller owns one reusable {@link Frame} and calls
 * `off = decodeFrame(buf, off, end, packetType, frame)` until `off === end`. The decoder overwrites the
 * fields that belong to `frame.type`; byte payloads (STREAM/CRYPTO/DATAGRAM data, tokens, connection
 * IDs, reasons, path data) are offsets into `frame.buf` (= the decrypted datagram), never copies: copy
 * them if they must outlive the datagram. ACK ranges go into the reusable `frame.ackRanges` array.
 * Errors are thrown as ProtocolViolation('quic', FRAME_ENCODING_ERROR | PROTOCOL_VIOLATION, msg, frameType).
 * Role-specific rules (a server receiving HANDSHAKE_DONE or NEW_TOKEN, stream-direction checks, flow
 * control) belong to the connection.
 *
 * ```ts
 * const f = new Frame();
 * for (let o = payloadOffset; o < payloadEnd; ) {
 *   o = decodeFrame(buf, o, payloadEnd, PacketType.OneRtt, f);
 *   switch (f.type) { case FrameType.CRYPTO: crypto.insert(f.offset, f.buf.subarray(f.dataOffset, f.dataOffset + f.dataLength)); ... }
 * }
 * ```
 *
 * Encoding: `encodeFrame(buf, off, frame)` / `frameSize(frame)` for any frame described by a Frame
 * struct, plus allocation-free helpers for the hot ones (STREAM and CRYPTO headers, ACK, PADDING).
 */
import { TransportError, quicError } from './errors.js';
import { PacketType } from './header.js';
import {
  readVarintChecked,
  varintGreaterThan,
  varintLength,
  varintSizeAt,
  writeVarint,
} from './varint.js';

export const FrameType = {
  PADDING: 0x00,
  PING: 0x01,
  ACK: 0x02,
  ACK_ECN: 0x03,
  RESET_STREAM: 0x04,
  STOP_SENDING: 0x05,
  CRYPTO: 0x06,
  NEW_TOKEN: 0x07,
  /** STREAM frames are 0x08..0x0f: base | OFF (0x04) | LEN (0x02) | FIN (0x01). */
  STREAM: 0x08,
  MAX_DATA: 0x10,
  MAX_STREAM_DATA: 0x11,
  MAX_STREAMS_BIDI: 0x12,
  MAX_STREAMS_UNI: 0x13,
  DATA_BLOCKED: 0x14,
  STREAM_DATA_BLOCKED: 0x15,
  STREAMS_BLOCKED_BIDI: 0x16,
  STREAMS_BLOCKED_UNI: 0x17,
  NEW_CONNECTION_ID: 0x18,
  RETIRE_CONNECTION_ID: 0x19,
  PATH_CHALLENGE: 0x1a,
  PATH_RESPONSE: 0x1b,
  /** Transport CONNECTION_CLOSE (carries the offending frame type). */
  CONNECTION_CLOSE: 0x1c,
  /** Application CONNECTION_CLOSE. */
  CONNECTION_CLOSE_APP: 0x1d,
  HANDSHAKE_DONE: 0x1e,
  /** DATAGRAM without Length (extends to the end of the packet), RFC 9221. */
  DATAGRAM: 0x30,
  /** DATAGRAM with Length. */
  DATAGRAM_LEN: 0x31,
} as const;

export const STREAM_FLAG_OFF = 0x04;
export const STREAM_FLAG_LEN = 0x02;
export const STREAM_FLAG_FIN = 0x01;

// Table flags. Packet types in which a frame may appear (RFC 9000 §12.4 Table 3):
const IN_INITIAL = 1;
const IN_0RTT = 2;
const IN_HANDSHAKE = 4;
const IN_1RTT = 8;
/** Ack-eliciting (all frames except ACK, PADDING, CONNECTION_CLOSE; RFC 9002 §2). */
const ACK_ELICITING = 16;
/** Counted toward bytes in flight (everything except ACK; "C" in Table 3 marks the exception). */
const IN_FLIGHT = 32;
/** Probing frame (PADDING, NEW_CONNECTION_ID, PATH_CHALLENGE, PATH_RESPONSE; RFC 9000 §9.1). */
const PROBING = 64;
/** Subject to flow control (STREAM). */
const FLOW_CONTROLLED = 128;

const IH01 = IN_INITIAL | IN_HANDSHAKE | IN_0RTT | IN_1RTT;
const IH_1 = IN_INITIAL | IN_HANDSHAKE | IN_1RTT;
const Z01 = IN_0RTT | IN_1RTT;
const O1 = IN_1RTT;
const AE = ACK_ELICITING | IN_FLIGHT;

/** Flags per frame type 0x00..0x31 (0 = unknown type). */
const FRAME_TABLE = new Uint16Array(0x32);
FRAME_TABLE[0x00] = IH01 | IN_FLIGHT | PROBING; // PADDING
FRAME_TABLE[0x01] = IH01 | AE; // PING
FRAME_TABLE[0x02] = IH_1; // ACK
FRAME_TABLE[0x03] = IH_1; // ACK_ECN
FRAME_TABLE[0x04] = Z01 | AE; // RESET_STREAM
FRAME_TABLE[0x05] = Z01 | AE; // STOP_SENDING
FRAME_TABLE[0x06] = IH_1 | AE; // CRYPTO
FRAME_TABLE[0x07] = O1 | AE; // NEW_TOKEN
for (let t = 0x08; t <= 0x0f; t++) FRAME_TABLE[t] = Z01 | AE | FLOW_CONTROLLED; // STREAM
for (let t = 0x10; t <= 0x17; t++) FRAME_TABLE[t] = Z01 | AE; // MAX_*, *_BLOCKED
FRAME_TABLE[0x18] = Z01 | AE | PROBING; // NEW_CONNECTION_ID
FRAME_TABLE[0x19] = Z01 | AE; // RETIRE_CONNECTION_ID
FRAME_TABLE[0x1a] = Z01 | AE | PROBING; // PATH_CHALLENGE
FRAME_TABLE[0x1b] = O1 | AE | PROBING; // PATH_RESPONSE
FRAME_TABLE[0x1c] = IH01 | IN_FLIGHT; // CONNECTION_CLOSE (transport)
FRAME_TABLE[0x1d] = Z01 | IN_FLIGHT; // CONNECTION_CLOSE (application): 0-RTT/1-RTT only (§12.4)
FRAME_TABLE[0x1e] = O1 | AE; // HANDSHAKE_DONE
FRAME_TABLE[0x30] = Z01 | AE; // DATAGRAM (RFC 9221 §4)
FRAME_TABLE[0x31] = Z01 | AE;

function packetTypeBit(packetType: PacketType): number {
  switch (packetType) {
    case PacketType.Initial:
      return IN_INITIAL;
    case PacketType.ZeroRtt:
      return IN_0RTT;
    case PacketType.Handshake:
      return IN_HANDSHAKE;
    case PacketType.OneRtt:
      return IN_1RTT;
    default:
      return 0;
  }
}

function flags(type: number): number {
  return type >= 0 && type < 0x32 ? FRAME_TABLE[type]! : 0;
}

/** True if `type` is a frame type we know (RFC 9000 §19 + RFC 9221). */
export function isKnownFrameType(type: number): boolean {
  return flags(type) !== 0;
}
/** May a frame of `type` appear in a packet of `packetType` (RFC 9000 §12.4 Table 3)? */
export function frameAllowedIn(type: number, packetType: PacketType): boolean {
  return (flags(type) & packetTypeBit(packetType)) !== 0;
}
/** Does a frame of this type make its packet ack-eliciting? */
export function isAckEliciting(type: number): boolean {
  return (flags(type) & ACK_ELICITING) !== 0;
}
/** Does a packet containing this frame count toward bytes in flight (congestion control)? Everything but ACK. */
export function countsInFlight(type: number): boolean {
  return (flags(type) & IN_FLIGHT) !== 0;
}
/** Probing frame (RFC 9000 §9.1)? */
export function isProbingFrame(type: number): boolean {
  return (flags(type) & PROBING) !== 0;
}
/** Subject to flow control (STREAM)? */
export function isFlowControlled(type: number): boolean {
  return (flags(type) & FLOW_CONTROLLED) !== 0;
}

const EMPTY = new Uint8Array(0);

/**
 * A decoded frame, reused across frames. Fields not used by `type` keep stale values.
 * Byte payloads are `buf[dataOffset, dataOffset + dataLength)`.
 */
export class Frame {
  /** Frame type as on the wire (STREAM: 0x08..0x0f with flags; PADDING: a run of padding bytes). */
  type = 0;
  /** The buffer the offsets refer to. */
  buf: Uint8Array = EMPTY;
  /** STREAM, RESET_STREAM, STOP_SENDING, MAX_STREAM_DATA, STREAM_DATA_BLOCKED. */
  streamId = 0;
  /** STREAM and CRYPTO: offset of the data in the stream. */
  offset = 0;
  /**
   * Bytes: STREAM/CRYPTO/DATAGRAM data, NEW_TOKEN token, NEW_CONNECTION_ID connection ID,
   * PATH_CHALLENGE/PATH_RESPONSE data (8), CONNECTION_CLOSE reason phrase. PADDING: dataLength = run length.
   */
  dataOffset = 0;
  dataLength = 0;
  /** STREAM FIN bit. */
  fin = false;
  /** RESET_STREAM, STOP_SENDING, CONNECTION_CLOSE: the (application or transport) error code. */
  errorCode = 0;
  /** RESET_STREAM final size. */
  finalSize = 0;
  /** MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS_*, DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED_*: the limit. */
  maximum = 0;
  /** NEW_CONNECTION_ID, RETIRE_CONNECTION_ID sequence number. */
  sequence = 0;
  /** NEW_CONNECTION_ID Retire Prior To. */
  retirePriorTo = 0;
  /** NEW_CONNECTION_ID: offset of the 16-byte stateless reset token in buf. */
  resetTokenOffset = 0;
  /** CONNECTION_CLOSE (0x1c): the type of the frame that triggered the error (0 if unknown). */
  frameType = 0;
  /** ACK: largest acknowledged. */
  largestAcked = 0;
  /** ACK: raw ACK Delay field (scale by 2^ack_delay_exponent microseconds). */
  ackDelay = 0;
  /** ACK: number of ranges in ackRanges (first range included), i.e. ACK Range Count + 1. */
  ackRangeCount = 0;
  /**
   * ACK: ranges as pairs [largest0, smallest0, largest1, smallest1, ...] in descending order, inclusive.
   * Reused and grown as needed; only the first 2 * ackRangeCount entries are meaningful.
   */
  ackRanges: number[] = [];
  /** ACK_ECN counts (0 for plain ACK). */
  ect0 = 0;
  ect1 = 0;
  ce = 0;

  /** Copy of the byte payload (for tests and slow paths). */
  data(): Uint8Array {
    return this.buf.slice(this.dataOffset, this.dataOffset + this.dataLength);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding. The cursor is module state (decodeFrame is not re-entrant), so no closure or object is
// created per frame.

let pos = 0;
let curType = 0;

function fail(message: string): never {
  throw quicError(TransportError.FRAME_ENCODING_ERROR, message, curType);
}

function rv(buf: Uint8Array, end: number): number {
  const v = readVarintChecked(buf, pos, end);
  if (v < 0) fail(`truncated frame 0x${curType.toString(16)}`);
  pos += varintSizeAt(buf, pos);
  return v;
}

function bytes(end: number, n: number): number {
  if (n > end - pos) fail(`frame 0x${curType.toString(16)} longer than the packet`);
  const at = pos;
  pos += n;
  return at;
}

/**
 * Decodes the frame at `buf[offset]` (payload ends at `end`) from a packet of `packetType` into `out`.
 * Returns the offset after the frame. Throws ProtocolViolation: FRAME_ENCODING_ERROR for unknown
 * types and malformed frames, PROTOCOL_VIOLATION for a frame not allowed in this packet type or a
 * frame type not in its shortest encoding.
 */
export function decodeFrame(buf: Uint8Array, offset: number, end: number, packetType: PacketType, out: Frame): number {
  if (end > buf.length) end = buf.length;
  pos = offset;
  curType = 0;
  const tv = readVarintChecked(buf, pos, end);
  if (tv < 0) fail('truncated frame type');
  const typeSize = varintSizeAt(buf, pos);
  curType = tv;
  if (!isKnownFrameType(tv)) fail(`unknown frame type 0x${tv.toString(16)}`);
  if (typeSize !== varintLength(tv)) {
    throw quicError(TransportError.PROTOCOL_VIOLATION, 'frame type not minimally encoded', tv);
  }
  if (!frameAllowedIn(tv, packetType)) {
    throw quicError(TransportError.PROTOCOL_VIOLATION, `frame type 0x${tv.toString(16)} not allowed in this packet type`, tv);
  }
  pos += typeSize;
  out.type = tv;
  out.buf = buf;
  switch (tv) {
    case FrameType.PADDING: {
      let p = pos;
      while (p < end && buf[p] === 0) p++;
      out.dataOffset = offset;
      out.dataLength = p - offset;
      return p;
    }
    case FrameType.PING:
    case FrameType.HANDSHAKE_DONE:
      return pos;
    case FrameType.ACK:
    case FrameType.ACK_ECN:
      decodeAck(buf, end, out, tv === FrameType.ACK_ECN);
      return pos;
    case FrameType.RESET_STREAM:
      out.streamId = rv(buf, end);
      out.errorCode = rv(buf, end);
      out.finalSize = rv(buf, end);
      return pos;
    case FrameType.STOP_SENDING:
      out.streamId = rv(buf, end);
      out.errorCode = rv(buf, end);
      return pos;
    case FrameType.CRYPTO: {
      const offPos = pos;
      out.offset = rv(buf, end);
      const len = rv(buf, end);
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      checkStreamBound(buf, offPos, len);
      return pos;
    }
    case FrameType.NEW_TOKEN: {
      const len = rv(buf, end);
      if (len === 0) fail('empty NEW_TOKEN token');
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      return pos;
    }
    case FrameType.MAX_DATA:
    case FrameType.DATA_BLOCKED:
      out.maximum = rv(buf, end);
      return pos;
    case FrameType.MAX_STREAM_DATA:
    case FrameType.STREAM_DATA_BLOCKED:
      out.streamId = rv(buf, end);
      out.maximum = rv(buf, end);
      return pos;
    case FrameType.MAX_STREAMS_BIDI:
    case FrameType.MAX_STREAMS_UNI:
    case FrameType.STREAMS_BLOCKED_BIDI:
    case FrameType.STREAMS_BLOCKED_UNI: {
      const at = pos;
      out.maximum = rv(buf, end);
      // §19.11, §19.14: a count above 2^60 cannot be expressed as a stream ID.
      if (varintGreaterThan(buf, at, 0x10000000, 0)) fail('stream count exceeds 2^60');
      return pos;
    }
    case FrameType.NEW_CONNECTION_ID: {
      out.sequence = rv(buf, end);
      out.retirePriorTo = rv(buf, end);
      if (out.retirePriorTo > out.sequence) fail('NEW_CONNECTION_ID Retire Prior To exceeds Sequence Number');
      const len = buf[bytes(end, 1)]!;
      if (len < 1 || len > 20) fail('NEW_CONNECTION_ID length must be 1..20');
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      out.resetTokenOffset = bytes(end, 16);
      return pos;
    }
    case FrameType.RETIRE_CONNECTION_ID:
      out.sequence = rv(buf, end);
      return pos;
    case FrameType.PATH_CHALLENGE:
    case FrameType.PATH_RESPONSE:
      out.dataOffset = bytes(end, 8);
      out.dataLength = 8;
      return pos;
    case FrameType.CONNECTION_CLOSE:
    case FrameType.CONNECTION_CLOSE_APP: {
      out.errorCode = rv(buf, end);
      out.frameType = tv === FrameType.CONNECTION_CLOSE ? rv(buf, end) : 0;
      const len = rv(buf, end);
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      return pos;
    }
    case FrameType.DATAGRAM:
      out.dataOffset = pos;
      out.dataLength = end - pos;
      return end;
    case FrameType.DATAGRAM_LEN: {
      const len = rv(buf, end);
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      return pos;
    }
    default: {
      // STREAM 0x08..0x0f (§19.8)
      out.streamId = rv(buf, end);
      let offPos = -1;
      if ((tv & STREAM_FLAG_OFF) !== 0) {
        offPos = pos;
        out.offset = rv(buf, end);
      } else out.offset = 0;
      const len = (tv & STREAM_FLAG_LEN) !== 0 ? rv(buf, end) : end - pos;
      out.dataOffset = bytes(end, len);
      out.dataLength = len;
      out.fin = (tv & STREAM_FLAG_FIN) !== 0;
      if (offPos >= 0) checkStreamBound(buf, offPos, len);
      return pos;
    }
  }
}

/** offset + length must not exceed 2^62-1 (§19.6, §19.8), compared exactly on the encoded offset. */
function checkStreamBound(buf: Uint8Array, offPos: number, len: number): void {
  // len < 2^32 (it fits in the packet), so offset + len > 2^62-1 ⇔ offset > (2^30-1)·2^32 + (2^32-1-len).
  if (varintGreaterThan(buf, offPos, 0x3fffffff, 0xffffffff - len)) fail('offset + length exceeds 2^62-1');
}

function decodeAck(buf: Uint8Array, end: number, out: Frame, ecn: boolean): void {
  const largest = rv(buf, end);
  // We never send packet numbers near 2^53; above that the arithmetic below would lose precision.
  // Acknowledging a packet we did not send is a PROTOCOL_VIOLATION (RFC 9000 §13.1).
  if (largest > Number.MAX_SAFE_INTEGER) {
    throw quicError(TransportError.PROTOCOL_VIOLATION, 'ACK of a packet number that was never sent', curType);
  }
  out.largestAcked = largest;
  out.ackDelay = rv(buf, end);
  const count = rv(buf, end);
  const first = rv(buf, end);
  let smallest = largest - first;
  if (smallest < 0) fail('ACK range below packet number 0');
  const r = out.ackRanges;
  r[0] = largest;
  r[1] = smallest;
  // Each further range takes at least 2 bytes, so `count` is bounded by the packet size before we fail.
  for (let i = 1; i <= count; i++) {
    const gap = rv(buf, end);
    const len = rv(buf, end);
    const hi = smallest - gap - 2;
    if (hi < 0) fail('ACK gap below packet number 0');
    smallest = hi - len;
    if (smallest < 0) fail('ACK range below packet number 0');
    r[2 * i] = hi;
    r[2 * i + 1] = smallest;
  }
  out.ackRangeCount = count + 1;
  if (ecn) {
    out.ect0 = rv(buf, end);
    out.ect1 = rv(buf, end);
    out.ce = rv(buf, end);
  } else {
    out.ect0 = 0;
    out.ect1 = 0;
    out.ce = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding (local data: invalid arguments are bugs and throw RangeError).

/** Size of a STREAM frame header (type, stream ID, offset if non-zero, length if `withLength`). */
export function streamFrameHeaderSize(streamId: number, offset: number, length: number, withLength: boolean): number {
  return 1 + varintLength(streamId) + (offset > 0 ? varintLength(offset) : 0) + (withLength ? varintLength(length) : 0);
}

/** Worst-case STREAM frame header size: type + three 8-byte varints. */
export const MAX_STREAM_FRAME_HEADER = 25;

/**
 * Writes a STREAM frame header at `off` (the OFF bit is set iff `offset > 0`); the caller writes the
 * `length` data bytes right after it. Without a Length field the frame must end the packet.
 * Returns the offset where the data goes.
 */
export function writeStreamFrameHeader(
  buf: Uint8Array,
  off: number,
  streamId: number,
  offset: number,
  length: number,
  fin: boolean,
  withLength: boolean,
): number {
  buf[off] = FrameType.STREAM | (offset > 0 ? STREAM_FLAG_OFF : 0) | (withLength ? STREAM_FLAG_LEN : 0) | (fin ? STREAM_FLAG_FIN : 0);
  let o = writeVarint(buf, off + 1, streamId);
  if (offset > 0) o = writeVarint(buf, o, offset);
  if (withLength) o = writeVarint(buf, o, length);
  return o;
}

/** Largest n with n + varintLength(n) <= avail (data bytes that fit after a Length field); 0 if none. */
function fitWithLength(avail: number): number {
  if (avail <= 1) return 0;
  if (avail - 1 < 64) return avail - 1;
  if (avail - 2 < 16384) return Math.max(63, avail - 2);
  if (avail - 4 < 1073741824) return Math.max(16383, avail - 4);
  return avail - 8;
}

/**
 * How many data bytes a STREAM frame for (streamId, offset) can carry in `space` bytes:
 * with a Length field if `withLength` (the frame is followed by others), or up to the end of the
 * packet otherwise. 0 if not even one byte fits (a FIN-only frame needs streamFrameHeaderSize(..., 0, ...)).
 */
export function maxStreamFrameData(streamId: number, offset: number, space: number, withLength: boolean): number {
  const avail = space - 1 - varintLength(streamId) - (offset > 0 ? varintLength(offset) : 0);
  if (!withLength) return avail > 0 ? avail : 0;
  return fitWithLength(avail);
}

/** How many data bytes a CRYPTO frame at `offset` can carry in `space` bytes (0 if none). */
export function maxCryptoFrameData(offset: number, space: number): number {
  return fitWithLength(space - 1 - varintLength(offset));
}

export function cryptoFrameHeaderSize(offset: number, length: number): number {
  return 1 + varintLength(offset) + varintLength(length);
}

/** Writes a CRYPTO frame header; the caller writes `length` bytes of data after it. Returns the data offset. */
export function writeCryptoFrameHeader(buf: Uint8Array, off: number, offset: number, length: number): number {
  buf[off] = FrameType.CRYPTO;
  return writeVarint(buf, writeVarint(buf, off + 1, offset), length);
}

/** Writes `n` PADDING bytes; returns off + n. */
export function writePadding(buf: Uint8Array, off: number, n: number): number {
  buf.fill(0, off, off + n);
  return off + n;
}

/**
 * Size of an ACK frame for `rangeCount` ranges of `ranges` (pairs [largest, smallest] descending,
 * as in {@link Frame.ackRanges}); ECN counts if `ecn` is non-null ([ect0, ect1, ce]).
 */
export function ackFrameSize(
  ranges: ArrayLike<number>,
  rangeCount: number,
  ackDelay: number,
  ecn: ArrayLike<number> | null,
): number {
  if (rangeCount < 1) throw new RangeError('an ACK frame needs at least one range');
  let n = 1 + varintLength(ranges[0]!) + varintLength(ackDelay) + varintLength(rangeCount - 1) + varintLength(ranges[0]! - ranges[1]!);
  for (let i = 1; i < rangeCount; i++) {
    n += varintLength(ranges[2 * i - 1]! - ranges[2 * i]! - 2) + varintLength(ranges[2 * i]! - ranges[2 * i + 1]!);
  }
  if (ecn) n += varintLength(ecn[0]!) + varintLength(ecn[1]!) + varintLength(ecn[2]!);
  return n;
}

/** Writes an ACK (or ACK_ECN if `ecn` is given) frame; see {@link ackFrameSize}. Returns the offset after it. */
export function writeAckFrame(
  buf: Uint8Array,
  off: number,
  ranges: ArrayLike<number>,
  rangeCount: number,
  ackDelay: number,
  ecn: ArrayLike<number> | null,
): number {
  if (rangeCount < 1) throw new RangeError('an ACK frame needs at least one range');
  buf[off] = ecn ? FrameType.ACK_ECN : FrameType.ACK;
  let o = writeVarint(buf, off + 1, ranges[0]!);
  o = writeVarint(buf, o, ackDelay);
  o = writeVarint(buf, o, rangeCount - 1);
  o = writeVarint(buf, o, ranges[0]! - ranges[1]!);
  for (let i = 1; i < rangeCount; i++) {
    const gap = ranges[2 * i - 1]! - ranges[2 * i]! - 2;
    const len = ranges[2 * i]! - ranges[2 * i + 1]!;
    if (gap < 0 || len < 0) throw new RangeError('ACK ranges must be descending and disjoint');
    o = writeVarint(buf, o, gap);
    o = writeVarint(buf, o, len);
  }
  if (ecn) {
    o = writeVarint(buf, o, ecn[0]!);
    o = writeVarint(buf, o, ecn[1]!);
    o = writeVarint(buf, o, ecn[2]!);
  }
  return o;
}

/**
 * Writes a frame made of the type and one varint: MAX_DATA, DATA_BLOCKED, MAX_STREAMS_*,
 * STREAMS_BLOCKED_*, RETIRE_CONNECTION_ID. Returns the offset after it.
 */
export function writeSimpleFrame(buf: Uint8Array, off: number, type: number, value: number): number {
  return writeVarint(buf, writeVarint(buf, off, type), value);
}

/** Writes type + two varints: MAX_STREAM_DATA, STREAM_DATA_BLOCKED, STOP_SENDING (stream ID, value). */
export function writeStreamValueFrame(buf: Uint8Array, off: number, type: number, streamId: number, value: number): number {
  return writeVarint(buf, writeVarint(buf, writeVarint(buf, off, type), streamId), value);
}

/** Size of the frame described by `f` when written by {@link encodeFrame}. */
export function frameSize(f: Frame): number {
  const t = f.type;
  const tl = varintLength(t);
  switch (t) {
    case FrameType.PADDING:
      return Math.max(1, f.dataLength);
    case FrameType.PING:
    case FrameType.HANDSHAKE_DONE:
      return tl;
    case FrameType.ACK:
    case FrameType.ACK_ECN:
      return ackFrameSize(f.ackRanges, f.ackRangeCount, f.ackDelay, t === FrameType.ACK_ECN ? [f.ect0, f.ect1, f.ce] : null);
    case FrameType.RESET_STREAM:
      return tl + varintLength(f.streamId) + varintLength(f.errorCode) + varintLength(f.finalSize);
    case FrameType.STOP_SENDING:
      return tl + varintLength(f.streamId) + varintLength(f.errorCode);
    case FrameType.CRYPTO:
      return cryptoFrameHeaderSize(f.offset, f.dataLength) + f.dataLength;
    case FrameType.NEW_TOKEN:
    case FrameType.DATAGRAM_LEN:
      return tl + varintLength(f.dataLength) + f.dataLength;
    case FrameType.DATAGRAM:
      return tl + f.dataLength;
    case FrameType.MAX_DATA:
    case FrameType.DATA_BLOCKED:
    case FrameType.MAX_STREAMS_BIDI:
    case FrameType.MAX_STREAMS_UNI:
    case FrameType.STREAMS_BLOCKED_BIDI:
    case FrameType.STREAMS_BLOCKED_UNI:
      return tl + varintLength(f.maximum);
    case FrameType.MAX_STREAM_DATA:
    case FrameType.STREAM_DATA_BLOCKED:
      return tl + varintLength(f.streamId) + varintLength(f.maximum);
    case FrameType.NEW_CONNECTION_ID:
      return tl + varintLength(f.sequence) + varintLength(f.retirePriorTo) + 1 + f.dataLength + 16;
    case FrameType.RETIRE_CONNECTION_ID:
      return tl + varintLength(f.sequence);
    case FrameType.PATH_CHALLENGE:
    case FrameType.PATH_RESPONSE:
      return tl + 8;
    case FrameType.CONNECTION_CLOSE:
    case FrameType.CONNECTION_CLOSE_APP:
      return (
        tl +
        varintLength(f.errorCode) +
        (t === FrameType.CONNECTION_CLOSE ? varintLength(f.frameType) : 0) +
        varintLength(f.dataLength) +
        f.dataLength
      );
    default:
      if (t >= 0x08 && t <= 0x0f) {
        return streamFrameHeaderSize(f.streamId, f.offset, f.dataLength, (t & STREAM_FLAG_LEN) !== 0) + f.dataLength;
      }
      throw new RangeError(`unknown frame type 0x${t.toString(16)}`);
  }
}

/**
 * Writes the frame described by `f` at `off` (byte payloads are read from `f.buf`); returns the
 * offset after it. For STREAM, the OFF/LEN/FIN bits of `f.type` are recomputed from `f.offset`,
 * the LEN bit of `f.type`, and `f.fin`. PADDING writes max(1, dataLength) zero bytes.
 */
export function encodeFrame(buf: Uint8Array, off: number, f: Frame): number {
  const t = f.type;
  const src = f.buf;
  if (t >= 0x08 && t <= 0x0f) {
    const o = writeStreamFrameHeader(buf, off, f.streamId, f.offset, f.dataLength, f.fin, (t & STREAM_FLAG_LEN) !== 0);
    return copyData(buf, f, o);
  }
  switch (t) {
    case FrameType.PADDING:
      return writePadding(buf, off, Math.max(1, f.dataLength));
    case FrameType.ACK:
    case FrameType.ACK_ECN:
      return writeAckFrame(buf, off, f.ackRanges, f.ackRangeCount, f.ackDelay, t === FrameType.ACK_ECN ? [f.ect0, f.ect1, f.ce] : null);
    case FrameType.CRYPTO:
      return copyData(buf, f, writeCryptoFrameHeader(buf, off, f.offset, f.dataLength));
  }
  let o = writeVarint(buf, off, t);
  switch (t) {
    case FrameType.PING:
    case FrameType.HANDSHAKE_DONE:
      return o;
    case FrameType.RESET_STREAM:
      o = writeVarint(buf, o, f.streamId);
      o = writeVarint(buf, o, f.errorCode);
      return writeVarint(buf, o, f.finalSize);
    case FrameType.STOP_SENDING:
      return writeVarint(buf, writeVarint(buf, o, f.streamId), f.errorCode);
    case FrameType.NEW_TOKEN:
    case FrameType.DATAGRAM_LEN:
      return copyData(buf, f, writeVarint(buf, o, f.dataLength));
    case FrameType.DATAGRAM:
      return copyData(buf, f, o);
    case FrameType.MAX_DATA:
    case FrameType.DATA_BLOCKED:
    case FrameType.MAX_STREAMS_BIDI:
    case FrameType.MAX_STREAMS_UNI:
    case FrameType.STREAMS_BLOCKED_BIDI:
    case FrameType.STREAMS_BLOCKED_UNI:
      return writeVarint(buf, o, f.maximum);
    case FrameType.MAX_STREAM_DATA:
    case FrameType.STREAM_DATA_BLOCKED:
      return writeVarint(buf, writeVarint(buf, o, f.streamId), f.maximum);
    case FrameType.NEW_CONNECTION_ID:
      if (f.dataLength < 1 || f.dataLength > 20) throw new RangeError('connection ID length must be 1..20');
      o = writeVarint(buf, o, f.sequence);
      o = writeVarint(buf, o, f.retirePriorTo);
      buf[o++] = f.dataLength;
      o = copyData(buf, f, o);
      buf.set(src.subarray(f.resetTokenOffset, f.resetTokenOffset + 16), o);
      return o + 16;
    case FrameType.RETIRE_CONNECTION_ID:
      return writeVarint(buf, o, f.sequence);
    case FrameType.PATH_CHALLENGE:
    case FrameType.PATH_RESPONSE:
      buf.set(src.subarray(f.dataOffset, f.dataOffset + 8), o);
      return o + 8;
    case FrameType.CONNECTION_CLOSE:
    case FrameType.CONNECTION_CLOSE_APP:
      o = writeVarint(buf, o, f.errorCode);
      if (t === FrameType.CONNECTION_CLOSE) o = writeVarint(buf, o, f.frameType);
      return copyData(buf, f, writeVarint(buf, o, f.dataLength));
    default:
      throw new RangeError(`unknown frame type 0x${t.toString(16)}`);
  }
}

function copyData(buf: Uint8Array, f: Frame, o: number): number {
  buf.set(f.buf.subarray(f.dataOffset, f.dataOffset + f.dataLength), o);
  return o + f.dataLength;
}
