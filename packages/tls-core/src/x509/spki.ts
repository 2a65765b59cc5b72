import { DerReader, Tag } from '../util/der.js';

/**
 * Extracts the SubjectPublicKeyInfo (DER, as a view into `certDer`) from an X.509 certificate.
 * Throws DerError on malformed input. (RFC 5280 §4.1: Certificate → tbsCertificate → subjectPublicKeyInfo.)
 */
export function certificateSpki(certDer: Uint8Array): Uint8Array {
  const cert = new DerReader(certDer).enter(Tag.SEQUENCE);
  const tbs = cert.enter(Tag.SEQUENCE);
  tbs.optional(0xa0); // [0] EXPLICIT version
  tbs.read(Tag.INTEGER); // serialNumber
  tbs.read(Tag.SEQUENCE); // signature AlgorithmIdentifier
  tbs.read(Tag.SEQUENCE); // issuer
  tbs.read(Tag.SEQUENCE); // validity
  tbs.read(Tag.SEQUENCE); // subject
  return tbs.read(Tag.SEQUENCE).raw; // subjectPublicKeyInfo
}
