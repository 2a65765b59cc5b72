/** X.509 for Petrel: parsing, path validation, service identity, verifiers, certificate generation. */
export { WebPkiVerifier, InsecureVerifier, type WebPkiVerifierOptions, type VerifyRequest } from './verifier.js';
export { generateSelfSigned, type GenerateOptions, type GeneratedCertificate } from './selfsigned.js';
export { loadPemChain, loadPemKey, loadPemKeyInfo, type PrivateKeyFormat } from './pem.js';
export { CertificateError, certificateAlert, certificateErrorOf, type CertificateErrorKind, type CertificateErrorFields } from './errors.js';
export {
  parseCertificate,
  KeyUsage,
  type Certificate,
  type GeneralName,
  type Name,
  type BasicConstraints,
  type NameConstraints,
  type Extension,
  type AlgorithmIdentifier,
} from './cert.js';
export { TrustStore, buildPath, type Purpose, type PathOptions, type ValidatedPath } from './path.js';
export { certificateMatchesName, parseIpLiteral, formatIp, normalizeDnsName, dnsNameMatches } from './identity.js';
export { nodeRootCertificates } from './node-roots.js';
