/**
 * Typed certificate errors. Every way a certificate or chain can be rejected has a `kind` that an
 * application can switch on, a message a person can act on, and the fields that explain it
 * (which certificate, which dates, which names). `toProtocolViolation()` maps it to the TLS alert.
 *
 * Alert mapping (RFC 8446 §6.2), decided here once:
 * - expired and not-yet-valid → certificate_expired ("a certificate has expired or is not currently
 *   valid": the RFC's own wording covers both).
 * - unknown-issuer, path-too-long (no path within the depth / work bounds) → unknown_ca.
 * - bad-signature → bad_certificate. decrypt_error is for handshake signatures (CertificateVerify,
 *   Finished); a chain whose signature does not verify is a corrupt certificate.
 * - name-mismatch, name-constraint, not-ca, path-length, malformed, pin-mismatch, too-many → bad_certificate.
 * - key-usage, ext-key-usage, unsupported-algorithm, unsupported-version,
 *   unknown-critical-extension, ca-as-leaf → unsupported_certificate.
 * - empty-chain → certificate_required (client certificates) / decode_error (server certificates).
 */
import { Alert, type AlertDescription, ProtocolViolation } from '../errors.js';

export type CertificateErrorKind =
  /** The DER / X.509 structure is invalid (the typed parse error). */
  | 'malformed'
  | 'unsupported-version'
  | 'unsupported-algorithm'
  | 'unknown-critical-extension'
  | 'expired'
  | 'not-yet-valid'
  | 'unknown-issuer'
  | 'bad-signature'
  | 'not-ca'
  | 'ca-as-leaf'
  | 'path-length'
  | 'path-too-long'
  | 'key-usage'
  | 'ext-key-usage'
  | 'name-constraint'
  | 'name-mismatch'
  | 'pin-mismatch'
  | 'empty-chain'
  | 'too-many';

export interface CertificateErrorFields {
  /** Position in the presented chain (0 = leaf); -1 for a trust anchor; undefined if not tied to one certificate. */
  index?: number;
  /** Subject of the certificate concerned, as text. */
  subject?: string;
  /** Issuer name that could not be found (unknown-issuer). */
  issuer?: string;
  /** Validity period (ms since the epoch) and the time of the check. */
  notBefore?: number;
  notAfter?: number;
  now?: number;
  /** The name asked for (name-mismatch) and the names the certificate presents ("DNS:x", "IP:y"). */
  expectedName?: string;
  presentedNames?: string[];
  /** The name that violated a constraint (name-constraint). */
  name?: string;
  /** Extension OID (unknown-critical-extension) or algorithm OID (unsupported-algorithm). */
  oid?: string;
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  readonly index?: number;
  readonly subject?: string;
  readonly issuer?: string;
  readonly notBefore?: number;
  readonly notAfter?: number;
  readonly now?: number;
  readonly expectedName?: string;
  readonly presentedNames?: string[];
  readonly oid?: string;
  /** The violating name, for name-constraint errors (the `name` property is the class name). */
  readonly constrainedName?: string;

  constructor(
    readonly kind: CertificateErrorKind,
    message: string,
    fields: CertificateErrorFields = {},
  ) {
    super(message);
    const { name, ...rest } = fields;
    Object.assign(this, rest);
    if (name !== undefined) this.constrainedName = name;
  }

  /** The TLS alert this error is answered with. */
  get alert(): AlertDescription {
    return certificateAlert(this.kind);
  }

  /** A ProtocolViolation carrying the alert; the CertificateError is its `cause`. */
  toProtocolViolation(alert: AlertDescription = this.alert): ProtocolViolation {
    const pv = new ProtocolViolation('tls', alert, this.message);
    pv.cause = this;
    return pv;
  }
}

export function certificateAlert(kind: CertificateErrorKind): AlertDescription {
  switch (kind) {
    case 'expired':
    case 'not-yet-valid':
      return Alert.certificate_expired;
    case 'unknown-issuer':
    case 'path-too-long':
      return Alert.unknown_ca;
    case 'key-usage':
    case 'ext-key-usage':
    case 'unsupported-algorithm':
    case 'unsupported-version':
    case 'unknown-critical-extension':
    case 'ca-as-leaf':
      return Alert.unsupported_certificate;
    case 'empty-chain':
      return Alert.certificate_required;
    default:
      return Alert.bad_certificate;
  }
}

/** The CertificateError behind a ProtocolViolation returned by a verifier, if any. */
export function certificateErrorOf(e: unknown): CertificateError | undefined {
  if (e instanceof CertificateError) return e;
  if (e instanceof Error && e.cause instanceof CertificateError) return e.cause;
  return undefined;
}

export function malformed(message: string, index?: number): CertificateError {
  return new CertificateError('malformed', message, index === undefined ? {} : { index });
}
