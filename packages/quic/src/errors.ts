/**
 * QUIC transport error codes (RFC 9000 §20.1; VERSION_NEGOTIATION_ERROR from RFC 9368 §10.2).
 * Thrown as `ProtocolViolation('quic', code, message, frameType)` (see {@link quicError}).
 */
import { ProtocolViolation } from '@petrel/tls-core';

export const TransportError = {
  NO_ERROR: 0x0,
  INTERNAL_ERROR: 0x1,
  CONNECTION_REFUSED: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_LIMIT_ERROR: 0x4,
  STREAM_STATE_ERROR: 0x5,
  FINAL_SIZE_ERROR: 0x6,
  FRAME_ENCODING_ERROR: 0x7,
  TRANSPORT_PARAMETER_ERROR: 0x8,
  CONNECTION_ID_LIMIT_ERROR: 0x9,
  PROTOCOL_VIOLATION: 0xa,
  INVALID_TOKEN: 0xb,
  APPLICATION_ERROR: 0xc,
  CRYPTO_BUFFER_EXCEEDED: 0xd,
  KEY_UPDATE_ERROR: 0xe,
  AEAD_LIMIT_REACHED: 0xf,
  NO_VIABLE_PATH: 0x10,
  VERSION_NEGOTIATION_ERROR: 0x11,
  /** CRYPTO_ERROR range start: 0x100 + TLS alert (RFC 9001 §4.8). */
  CRYPTO_ERROR: 0x100,
  CRYPTO_ERROR_MAX: 0x1ff,
} as const;
export type TransportErrorCode = (typeof TransportError)[keyof typeof TransportError];

/** The CRYPTO_ERROR code carrying a TLS alert (RFC 9001 §4.8). */
export function cryptoError(alert: number): number {
  return TransportError.CRYPTO_ERROR + (alert & 0xff);
}

export function transportErrorName(code: number): string {
  if (code >= TransportError.CRYPTO_ERROR && code <= TransportError.CRYPTO_ERROR_MAX) {
    return `CRYPTO_ERROR(0x${(code - 0x100).toString(16)})`;
  }
  for (const [k, v] of Object.entries(TransportError)) if (v === code && k !== 'CRYPTO_ERROR_MAX') return k;
  return `0x${code.toString(16)}`;
}

/** Shorthand for a QUIC transport-level ProtocolViolation. */
export function quicError(code: number, message: string, frameType = 0): ProtocolViolation {
  return new ProtocolViolation('quic', code, message, frameType);
}
