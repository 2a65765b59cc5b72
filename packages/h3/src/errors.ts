/**
 * HTTP/3 (RFC 9114 §8.1) and QPACK (RFC 9204 §6) error codes, and the h3 flavours of
 * {@link ProtocolViolation}.
 */
import { ProtocolViolation } from '@petrel/tls-core';

/** RFC 9114 §8.1: every HTTP/3 error code. */
export const H3Error = {
  H3_NO_ERROR: 0x100,
  H3_GENERAL_PROTOCOL_ERROR: 0x101,
  H3_INTERNAL_ERROR: 0x102,
  H3_STREAM_CREATION_ERROR: 0x103,
  H3_CLOSED_CRITICAL_STREAM: 0x104,
  H3_FRAME_UNEXPECTED: 0x105,
  H3_FRAME_ERROR: 0x106,
  H3_EXCESSIVE_LOAD: 0x107,
  H3_ID_ERROR: 0x108,
  H3_SETTINGS_ERROR: 0x109,
  H3_MISSING_SETTINGS: 0x10a,
  H3_REQUEST_REJECTED: 0x10b,
  H3_REQUEST_CANCELLED: 0x10c,
  H3_REQUEST_INCOMPLETE: 0x10d,
  H3_MESSAGE_ERROR: 0x10e,
  H3_CONNECT_ERROR: 0x10f,
  H3_VERSION_FALLBACK: 0x110,
} as const;
export type H3ErrorCode = (typeof H3Error)[keyof typeof H3Error];

/** RFC 9297 §2.1: malformed HTTP/3 Datagram. Not part of the RFC 9114 table. */
export const H3_DATAGRAM_ERROR = 0x33;

/** RFC 9204 §6. */
export const QpackError = {
  QPACK_DECOMPRESSION_FAILED: 0x200,
  QPACK_ENCODER_STREAM_ERROR: 0x201,
  QPACK_DECODER_STREAM_ERROR: 0x202,
} as const;
export type QpackErrorCode = (typeof QpackError)[keyof typeof QpackError];

export function h3ErrorName(code: number): string {
  for (const [k, v] of Object.entries(H3Error)) if (v === code) return k;
  for (const [k, v] of Object.entries(QpackError)) if (v === code) return k;
  if (code === H3_DATAGRAM_ERROR) return 'H3_DATAGRAM_ERROR';
  return `0x${code.toString(16)}`;
}

/** A connection error of the h3 layer. */
export function h3Error(code: number, message: string): ProtocolViolation {
  return new ProtocolViolation('h3', code, message);
}

/** A connection error of the qpack layer. */
export function qpackError(code: number, message: string): ProtocolViolation {
  return new ProtocolViolation('qpack', code, message);
}

/**
 * A stream error (RFC 9114 §8): the stream is reset with `code`; the connection lives on.
 * Still a ProtocolViolation, so anything that expects one handles it.
 */
export class H3StreamError extends ProtocolViolation {
  constructor(
    readonly streamId: number,
    code: number,
    message: string,
  ) {
    super('h3', code, message);
  }
}

/**
 * Local misuse of a sending API that depends on what the peer allows (e.g. a field section larger
 * than the peer's SETTINGS_MAX_FIELD_SECTION_SIZE, or writing to a stream that is not open).
 */
export class H3UsageError extends Error {
  override readonly name = 'H3UsageError';
}
