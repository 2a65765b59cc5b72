/**
 * Certificate signature algorithms: AlgorithmIdentifier → the provider's SignatureAlgorithm.
 * Accepted: sha{256,384,512}WithRSAEncryption (RFC 4055), RSASSA-PSS with SHA-2 and MGF1 over
 * the same hash (RFC 4055 §3.1), ecdsa-with-SHA{256,384,512} (RFC 5758), Ed25519 (RFC 8410).
 * SHA-1 and MD5 based signatures are refused (unsupported-algorithm).
 */
import type { SignatureAlgorithm } from '../crypto/provider.js';
import { DerReader, Tag, oidToString } from '../util/der.js';
import type { AlgorithmIdentifier } from './cert.js';
import { OID } from './oids.js';

type Sha2 = 'sha256' | 'sha384' | 'sha512';

const hashByOid: Record<string, Sha2> = { [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

const isNullOrAbsent = (p: Uint8Array | null): boolean => p === null || (p.length === 2 && p[0] === Tag.NULL && p[1] === 0);

/** null if the algorithm is not supported or its parameters are invalid. Never throws. */
export function signatureAlgorithmOf(alg: AlgorithmIdentifier): SignatureAlgorithm | null {
  switch (alg.oid) {
    case OID.sha256WithRSAEncryption:
      return isNullOrAbsent(alg.params) ? { kind: 'rsa-pkcs1', hash: 'sha256' } : null;
    case OID.sha384WithRSAEncryption:
      return isNullOrAbsent(alg.params) ? { kind: 'rsa-pkcs1', hash: 'sha384' } : null;
    case OID.sha512WithRSAEncryption:
      return isNullOrAbsent(alg.params) ? { kind: 'rsa-pkcs1', hash: 'sha512' } : null;
    case OID.ecdsaWithSha256:
      return alg.params === null ? { kind: 'ecdsa', hash: 'sha256' } : null;
    case OID.ecdsaWithSha384:
      return alg.params === null ? { kind: 'ecdsa', hash: 'sha384' } : null;
    case OID.ecdsaWithSha512:
      return alg.params === null ? { kind: 'ecdsa', hash: 'sha512' } : null;
    case OID.ed25519:
      return alg.params === null ? { kind: 'ed25519' } : null;
    case OID.rsassaPss:
      return alg.params === null ? null : pssParams(alg.params);
    default:
      return null;
  }
}

/** Name of an algorithm for messages. */
export function algorithmName(oid: string): string {
  const names: Record<string, string> = {
    [OID.sha256WithRSAEncryption]: 'sha256WithRSAEncryption',
    [OID.sha384WithRSAEncryption]: 'sha384WithRSAEncryption',
    [OID.sha512WithRSAEncryption]: 'sha512WithRSAEncryption',
    [OID.rsassaPss]: 'RSASSA-PSS',
    [OID.ecdsaWithSha256]: 'ecdsa-with-SHA256',
    [OID.ecdsaWithSha384]: 'ecdsa-with-SHA384',
    [OID.ecdsaWithSha512]: 'ecdsa-with-SHA512',
    [OID.ed25519]: 'Ed25519',
    '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
    '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
    '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  };
  return names[oid] ?? oid;
}

/** RSASSA-PSS-params (RFC 4055 §3.1); SHA-1 defaults are refused, so hash and MGF must be explicit. */
function pssParams(params: Uint8Array): SignatureAlgorithm | null {
  try {
    const outer = new DerReader(params);
    const seq = outer.enter(Tag.SEQUENCE);
    outer.end();
    const h = seq.optional(0xa0);
    if (!h) return null;
    const hash = hashAlgorithm(new DerReader(h.value));
    const m = seq.optional(0xa1);
    if (!m || !hash) return null;
    const mr = new DerReader(m.value);
    const mgf = mr.enter(Tag.SEQUENCE);
    mr.end();
    if (oidToString(mgf.read(Tag.OID).value) !== OID.mgf1) return null;
    const mgfHash = hashAlgorithm(new DerReader(mgf.read(Tag.SEQUENCE).raw));
    mgf.end();
    if (mgfHash !== hash) return null;
    let saltLength = 20;
    const s = seq.optional(0xa2);
    if (s) {
      const sr = new DerReader(s.value);
      const v = sr.read(Tag.INTEGER).value;
      sr.end();
      if (v.length === 0 || v.length > 2 || v[0]! & 0x80) return null;
      saltLength = v.length === 1 ? v[0]! : (v[0]! << 8) | v[1]!;
    }
    const t = seq.optional(0xa3);
    if (t) {
      const tr = new DerReader(t.value);
      const v = tr.read(Tag.INTEGER).value;
      tr.end();
      if (v.length !== 1 || v[0] !== 1) return null;
    }
    seq.end();
    return { kind: 'rsa-pss', hash, saltLength };
  } catch {
    return null;
  }
}

function hashAlgorithm(r: DerReader): Sha2 | null {
  const seq = r.enter(Tag.SEQUENCE);
  r.end();
  const oid = oidToString(seq.read(Tag.OID).value);
  if (!seq.done) {
    const p = seq.read();
    if (p.tag !== Tag.NULL || p.value.length !== 0) return null;
  }
  seq.end();
  return hashByOid[oid] ?? null;
}
