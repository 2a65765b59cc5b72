/**
 * Petrel's error vocabulary (shared by every layer).
 *
 * - {@link ProtocolViolation}: the peer sent something wrong. Carries the wire code to send back:
 *   a TLS alert, a QUIC transport error, or an HTTP/3 / QPACK application error. Parsers and state
 *   machines throw it; the connection boundary catches it and closes with that code. It never
 *   escapes a public entry point.
 * - {@link ConfigError}: local misconfiguration, thrown at construction with a message that says
 *   what to fix.
 * - Anything else reaching a connection boundary is a bug: it is turned into INTERNAL_ERROR /
 *   internal_error, surfaced as an error event, and fuzzers count it as a failure.
 */

export type ErrorLayer = 'tls' | 'quic' | 'h3' | 'qpack';

export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
  constructor(
    /** Which vocabulary `code` belongs to. */
    readonly layer: ErrorLayer,
    /** TLS AlertDescription, QUIC transport error code, or H3/QPACK error code. */
    readonly code: number,
    message: string,
    /** QUIC: the frame type that triggered the error, for CONNECTION_CLOSE (0 if unknown). */
    readonly frameType = 0,
  ) {
    super(message);
  }
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** TLS 1.3 AlertDescription values (RFC 8446 §6). */
export const Alert = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  missing_extension: 109,
  unsupported_extension: 110,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120,
} as const;
export type AlertDescription = (typeof Alert)[keyof typeof Alert];

export function alertName(code: number): string {
  for (const [k, v] of Object.entries(Alert)) if (v === code) return k;
  return `alert_${code}`;
}

/** Shorthand: a TLS protocol violation that is answered with `alert`. */
export function tlsError(alert: AlertDescription, message: string): ProtocolViolation {
  return new ProtocolViolation('tls', alert, message);
}

/** Returns true if `e` is a ProtocolViolation (any layer). */
export function isProtocolViolation(e: unknown): e is ProtocolViolation {
  return e instanceof ProtocolViolation;
}
