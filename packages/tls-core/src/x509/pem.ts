/**
 * PEM → DER plumbing for certificates and private keys (RFC 7468). The crypto provider loads the
 * key DER (`provider.loadPrivateKey`); these functions only find and decode the right blocks.
 * Errors are CertificateError (kind 'malformed') with a message that says what was expected.
 */
import { DerError, pemDecode } from '../util/der.js';
import { CertificateError } from './errors.js';

export type PrivateKeyFormat = 'pkcs8' | 'sec1' | 'pkcs1';

function decode(pem: string, what: string): { label: string; der: Uint8Array }[] {
  try {
    return pemDecode(pem);
  } catch (e) {
    throw new CertificateError('malformed', `cannot read ${what}: ${(e as DerError).message}`);
  }
}

/** All CERTIFICATE blocks of a PEM text, in order (leaf first for a chain file), as DER. */
export function loadPemChain(pem: string): Uint8Array[] {
  const certs = decode(pem, 'PEM certificates').filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE');
  if (certs.length === 0) throw new CertificateError('malformed', 'no "-----BEGIN CERTIFICATE-----" block found in the PEM text');
  return certs.map((b) => b.der);
}

/**
 * The private key of a PEM text as DER, with its format: "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY"
 * (SEC1; an "EC PARAMETERS" block before it is skipped) or "RSA PRIVATE KEY" (PKCS#1).
 */
export function loadPemKeyInfo(pem: string): { der: Uint8Array; format: PrivateKeyFormat } {
  const blocks = decode(pem, 'PEM private key');
  for (const b of blocks) {
    if (b.label === 'PRIVATE KEY') return { der: b.der, format: 'pkcs8' };
    if (b.label === 'EC PRIVATE KEY') return { der: b.der, format: 'sec1' };
    if (b.label === 'RSA PRIVATE KEY') return { der: b.der, format: 'pkcs1' };
    if (b.label === 'ENCRYPTED PRIVATE KEY')
      throw new CertificateError('malformed', 'the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)');
  }
  const found = blocks.map((b) => b.label).join(', ') || 'no PEM blocks';
  throw new CertificateError('malformed', `no private key block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY) found (found: ${found})`);
}

/** The private key DER of a PEM text (for `provider.loadPrivateKey`). */
export function loadPemKey(pem: string): Uint8Array {
  return loadPemKeyInfo(pem).der;
}
