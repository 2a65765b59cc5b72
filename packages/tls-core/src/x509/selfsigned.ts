/**
 * Certificate generation for demos, tests and the example servers: a self-signed certificate or one
 * issued by a given CA, with the TBSCertificate DER-encoded here (RFC 5280 §4.1) and signed through
 * the crypto provider.
 *
 * Signature algorithms: ecdsa-with-SHA256 (P-256 issuer key), ecdsa-with-SHA384 (P-384), Ed25519,
 * and for RSA issuers RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (RFC 4055): the provider's
 * SigningKey signs TLS 1.3 schemes only, which exclude PKCS#1 v1.5.
 *
 *   const { certPem, keyPem } = generateSelfSigned({ provider, names: ['localhost', '127.0.0.1', '::1'] });
 *   const ca = generateSelfSigned({ provider, names: [], isCA: true, commonName: 'Test CA' });
 *   const leaf = generateSelfSigned({ provider, names: ['example.test'], issuer: ca });
 */
import type { CryptoProvider, KeyType, SignatureScheme, SigningKey } from '../crypto/provider.js';
import { ConfigError } from '../errors.js';
import {
  derBitString,
  derBoolean,
  derContext,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derSmallInteger,
  derTime,
  derUnsignedInteger,
  derUtf8String,
  pemEncode,
} from '../util/der.js';
import { parseCertificate } from './cert.js';
import { CertificateError } from './errors.js';
import { normalizeDnsName, parseIpLiteral } from './identity.js';
import { OID } from './oids.js';

export interface GenerateOptions {
  provider: CryptoProvider;
  /** subjectAltName entries: DNS names (a leading "*." label is allowed) and IP literals (v4 or v6). */
  names: string[];
  /** Key of the new certificate (default 'ec-p256'); RSA keys are 2048 bits. */
  keyType?: KeyType;
  /** Validity in days from now (default 365). notBefore is one hour back, for clock skew. */
  days?: number;
  /** A CA certificate (basicConstraints cA, keyCertSign) instead of a server/client certificate. */
  isCA?: boolean;
  /** The issuing CA (e.g. an earlier result with isCA); default: self-signed. */
  issuer?: { certDer: Uint8Array; keyDer: Uint8Array };
  /** Subject common name (default: the first name, or "Petrel CA" / "Petrel"). */
  commonName?: string;
  /** pathLenConstraint for a CA. */
  pathLen?: number;
  /** "Now" in ms since the epoch (default Date.now()). */
  nowMs?: number;
  /** An existing private key (PKCS#8/SEC1/PKCS#1 DER) to certify instead of generating one. */
  keyDer?: Uint8Array;
}

export interface GeneratedCertificate {
  certDer: Uint8Array;
  /** PKCS#8 DER (or the `keyDer` option as given). */
  keyDer: Uint8Array;
  certPem: string;
  keyPem: string;
}

const DAY = 86_400_000;

export function generateSelfSigned(o: GenerateOptions): GeneratedCertificate {
  const { provider } = o;
  const keyType = o.keyType ?? 'ec-p256';
  const keyDer = o.keyDer ?? provider.generatePrivateKey(keyType);
  const key = provider.loadPrivateKey(keyDer);
  const now = o.nowMs ?? Date.now();
  const days = o.days ?? 365;
  if (!(days > 0)) throw new ConfigError(`days must be positive, got ${days}`);

  const sans: Uint8Array[] = [];
  for (const n of o.names) {
    const ip = parseIpLiteral(n);
    if (ip) {
      sans.push(derContext(7, ip, false));
      continue;
    }
    const wildcard = n.startsWith('*.');
    const dns = normalizeDnsName(wildcard ? n.slice(2) : n);
    if (!dns) throw new ConfigError(`names: "${n}" is neither a DNS name nor an IP address`);
    sans.push(derContext(2, new TextEncoder().encode(wildcard ? `*.${dns}` : dns), false));
  }
  const cn = o.commonName ?? o.names[0] ?? (o.isCA ? 'Petrel CA' : 'Petrel');
  const subject = derSequence(derSet(derSequence(derOid(OID.commonName), derUtf8String(cn))));

  let issuerName = subject;
  let signer: SigningKey = key;
  let authorityKeyId: Uint8Array | null = null;
  if (o.issuer) {
    let ca;
    try {
      ca = parseCertificate(o.issuer.certDer);
    } catch (e) {
      throw new ConfigError(`issuer: cannot parse the CA certificate: ${(e as CertificateError).message}`);
    }
    if (!ca.basicConstraints?.ca) throw new ConfigError(`issuer: "${ca.subject.text}" is not a CA certificate (generate it with isCA: true)`);
    issuerName = ca.subject.raw;
    signer = provider.loadPrivateKey(o.issuer.keyDer);
    authorityKeyId = ca.subjectKeyId;
  }

  const spki = key.spki;
  const subjectKeyId = keyIdentifier(provider, spki);
  const ext = (oid: string, critical: boolean, value: Uint8Array): Uint8Array =>
    derSequence(derOid(oid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
  const extensions: Uint8Array[] = [];
  if (o.isCA) {
    const bc = o.pathLen === undefined ? derSequence(derBoolean(true)) : derSequence(derBoolean(true), derSmallInteger(o.pathLen));
    extensions.push(ext(OID.basicConstraints, true, bc));
    // keyCertSign (bit 5) | cRLSign (bit 6) | digitalSignature (bit 0): 0x86, 1 unused bit.
    extensions.push(ext(OID.keyUsage, true, derBitString(Uint8Array.of(0x86), 1)));
  } else {
    extensions.push(ext(OID.basicConstraints, true, derSequence()));
    // digitalSignature (bit 0): 0x80, 7 unused bits.
    extensions.push(ext(OID.keyUsage, true, derBitString(Uint8Array.of(0x80), 7)));
    extensions.push(ext(OID.extKeyUsage, false, derSequence(derOid(OID.serverAuth), derOid(OID.clientAuth))));
  }
  if (sans.length > 0) extensions.push(ext(OID.subjectAltName, false, derSequence(...sans)));
  extensions.push(ext(OID.subjectKeyIdentifier, false, derOctetString(subjectKeyId)));
  if (authorityKeyId) extensions.push(ext(OID.authorityKeyIdentifier, false, derSequence(derContext(0, authorityKeyId, false))));

  const serial = provider.randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, 16 bytes, never zero
  const { algorithm, scheme } = signatureFor(signer);
  const tbs = derSequence(
    derContext(0, derSmallInteger(2), true), // v3
    derUnsignedInteger(serial),
    algorithm,
    issuerName,
    derSequence(derTime(now - 3_600_000), derTime(now + days * DAY)),
    subject,
    spki,
    derContext(3, derSequence(...extensions), true),
  );
  const signature = signer.sign(scheme, tbs);
  const certDer = derSequence(tbs, algorithm, derBitString(signature));
  // generatePrivateKey returns PKCS#8; a key given in `keyDer` is passed through in its own format.
  const label = o.keyDer && !isPkcs8(keyDer) ? keyLabel(keyDer) : 'PRIVATE KEY';
  return { certDer, keyDer, certPem: pemEncode('CERTIFICATE', certDer), keyPem: pemEncode(label, keyDer) };
}

/** RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey BIT STRING. */
function keyIdentifier(provider: CryptoProvider, spki: Uint8Array): Uint8Array {
  return provider.digest('sha256', spki).subarray(0, 20);
}

function signatureFor(key: SigningKey): { algorithm: Uint8Array; scheme: SignatureScheme } {
  switch (key.type) {
    case 'ec-p256':
      return { algorithm: derSequence(derOid(OID.ecdsaWithSha256)), scheme: 'ecdsa_secp256r1_sha256' };
    case 'ec-p384':
      return { algorithm: derSequence(derOid(OID.ecdsaWithSha384)), scheme: 'ecdsa_secp384r1_sha384' };
    case 'ed25519':
      return { algorithm: derSequence(derOid(OID.ed25519)), scheme: 'ed25519' };
    case 'rsa': {
      const sha256 = derSequence(derOid(OID.sha256), derNull());
      const params = derSequence(
        derContext(0, sha256, true),
        derContext(1, derSequence(derOid(OID.mgf1), sha256), true),
        derContext(2, derSmallInteger(32), true),
      );
      return { algorithm: derSequence(derOid(OID.rsassaPss), params), scheme: 'rsa_pss_rsae_sha256' };
    }
    default:
      throw new ConfigError(`cannot sign certificates with a ${String(key.type)} key`);
  }
}

function isPkcs8(der: Uint8Array): boolean {
  // PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER 0, SEQUENCE { OID ... } ... }; SEC1/PKCS#1 have no inner SEQUENCE second.
  try {
    let p = 1;
    const lenByte = der[p]!;
    p += lenByte & 0x80 ? 1 + (lenByte & 0x7f) : 1;
    if (der[p] !== 0x02) return false;
    p += 2 + der[p + 1]!;
    return der[p] === 0x30;
  } catch {
    return false;
  }
}

function keyLabel(der: Uint8Array): string {
  // SEC1 ECPrivateKey has an OCTET STRING as its second element; PKCS#1 an INTEGER.
  let p = 1;
  const lenByte = der[p]!;
  p += lenByte & 0x80 ? 1 + (lenByte & 0x7f) : 1;
  p += 2 + der[p + 1]!;
  return der[p] === 0x04 ? 'EC PRIVATE KEY' : 'RSA PRIVATE KEY';
}
