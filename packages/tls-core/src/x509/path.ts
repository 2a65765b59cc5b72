/**
 * Certification path building and validation (RFC 5280 §6, with webpki's choices where RFC 5280
 * leaves room).
 *
 * Building: depth-first from the leaf. For the certificate at the end of the partial path, trust
 * anchors whose subject equals its issuer are tried first, then presented certificates with that
 * subject (those whose subjectKeyIdentifier matches the authorityKeyIdentifier first). Alternative
 * paths (cross-signed intermediates, several certificates with one subject) are explored on failure.
 * Bounded: at most `maxDepth` intermediates, at most `signatureBudget` signature verifications and a
 * fixed number of search steps, never the same subject+key twice in one path (no loops).
 *
 * Checks, per certificate (issuer-independent, done when the certificate enters a path):
 *   version 3; no unhandled critical extension; validity period (inclusive, to the second; the
 *   trust anchor's validity is not checked, see below); EKU: if present
 *   it must list the purpose (serverAuth / clientAuth; anyExtendedKeyUsage is not enough, as in
 *   webpki and OpenSSL), if absent it is accepted (webpki practice); leaf: keyUsage, if present,
 *   must include digitalSignature (TLS 1.3 CertificateVerify); a CA certificate (basicConstraints
 *   cA) is not accepted as a leaf unless it is itself a trust anchor (deliberately stricter than
 *   OpenSSL, as webpki: a certificate-signing key should not also authenticate TLS handshakes, and a
 *   CA certificate as end entity is most often a misissued or misused certificate; `allowCaLeaf`
 *   lifts this for OpenSSL compatibility, the node:tls layer uses it); intermediates: basicConstraints
 *   with cA, keyUsage (if present) with keyCertSign.
 * Checks per path (once an anchor is reached): signatures (during building), pathLenConstraint
 *   counting non-self-issued intermediates (§6.1.4 (l)-(m)), name constraints of every CA
 *   (intermediates and the anchor) applied to every certificate below it except self-issued
 *   intermediates (§6.1.3 (b)); the anchor, if it has basicConstraints / keyUsage, must allow
 *   certificate signing and, if it has an extendedKeyUsage, list the purpose (as OpenSSL does; RFC 5280
 *   leaves anchor constraints optional). The anchor's validity period and critical extensions are
 *   not checked (RFC 5280 §6.1.1 (d): a trust anchor is a name and a key).
 */
import type { CryptoProvider } from '../crypto/provider.js';
import { algorithmName, signatureAlgorithmOf } from './algorithms.js';
import { type Certificate, KeyUsage, bytesEqual, hex } from './cert.js';
import { nameConstraintViolation } from './constraints.js';
import { CertificateError } from './errors.js';
import { OID } from './oids.js';

export type Purpose = 'serverAuth' | 'clientAuth';

/** Trust anchors indexed by subject. */
export class TrustStore {
  private readonly bySubject = new Map<string, Certificate[]>();
  private readonly byDer = new Set<string>();
  private count = 0;

  constructor(anchors: Iterable<Certificate> = []) {
    for (const a of anchors) this.add(a);
  }

  get size(): number {
    return this.count;
  }

  add(anchor: Certificate): void {
    const d = hex(anchor.der);
    if (this.byDer.has(d)) return;
    this.byDer.add(d);
    const k = hex(anchor.subject.raw);
    const list = this.bySubject.get(k);
    if (list) list.push(anchor);
    else this.bySubject.set(k, [anchor]);
    this.count++;
  }

  /** Anchors whose subject is `cert`'s issuer. */
  candidates(cert: Certificate): Certificate[] {
    return this.bySubject.get(hex(cert.issuer.raw)) ?? [];
  }

  /** Is this exact certificate a trust anchor? */
  contains(cert: Certificate): boolean {
    return this.byDer.has(hex(cert.der));
  }
}

export interface PathOptions {
  anchors: TrustStore;
  provider: CryptoProvider;
  nowMs: number;
  purpose: Purpose;
  /** Maximum number of intermediates (default 6). */
  maxDepth?: number;
  /** Maximum number of signature verifications while searching (default 100). */
  signatureBudget?: number;
  allowExpired?: boolean;
  /** Accept a CA certificate (basicConstraints cA) as the leaf, as OpenSSL does (default false, see above). */
  allowCaLeaf?: boolean;
}

export interface ValidatedPath {
  /** Leaf first, then the intermediates used (not the anchor). */
  certificates: Certificate[];
  anchor: Certificate;
}

const MAX_STEPS = 5000;

interface Search {
  o: PathOptions;
  presented: Certificate[];
  maxDepth: number;
  sigBudget: number;
  steps: number;
  best: CertificateError | null;
  bestDepth: number;
  exhausted: CertificateError | null;
}

/**
 * Builds and validates a path from `chain[0]` (the leaf) through any of `chain[1..]` to a trust
 * anchor. Returns the path or the most relevant error (never throws for any parsed input).
 */
export function buildPath(chain: Certificate[], o: PathOptions): ValidatedPath | CertificateError {
  const leaf = chain[0];
  if (!leaf) return new CertificateError('empty-chain', 'no certificate was presented');
  const s: Search = {
    o,
    presented: dedupe(chain.slice(1)),
    maxDepth: o.maxDepth ?? 6,
    sigBudget: o.signatureBudget ?? 100,
    steps: 0,
    best: null,
    bestDepth: -1,
    exhausted: null,
  };
  const e = issuerIndependent(leaf, 0, true, o);
  if (e) return e;
  const path = [leaf];
  const anchor = extend(path, s);
  if (anchor) return { certificates: path, anchor };
  if (s.exhausted) return s.exhausted;
  return s.best ?? unknownIssuer(path);
}

function unknownIssuer(path: Certificate[]): CertificateError {
  const last = path[path.length - 1]!;
  return new CertificateError(
    'unknown-issuer',
    `unknown issuer: "${last.issuer.text}" (issuer of "${last.subject.text}") is not a trusted root and was not presented`,
    { index: 0, subject: path[0]!.subject.text, issuer: last.issuer.text },
  );
}

function dedupe(list: Certificate[]): Certificate[] {
  const out: Certificate[] = [];
  for (const c of list) if (!out.some((x) => bytesEqual(x.der, c.der))) out.push(c);
  return out;
}

function record(s: Search, e: CertificateError, depth: number): void {
  if (depth > s.bestDepth) {
    s.best = e;
    s.bestDepth = depth;
  }
}

/** Tries to complete `path` (mutated in place); returns the anchor on success. */
function extend(path: Certificate[], s: Search): Certificate | null {
  if (s.exhausted) return null;
  if (++s.steps > MAX_STEPS) {
    s.exhausted = new CertificateError('path-too-long', 'gave up building a certification path: too many candidate paths');
    return null;
  }
  const cert = path[path.length - 1]!;
  const depth = path.length - 1;
  const alg = signatureAlgorithmOf(cert.signatureAlgorithm);
  if (!alg) {
    record(
      s,
      new CertificateError('unsupported-algorithm', `certificate "${cert.subject.text}" is signed with unsupported algorithm ${algorithmName(cert.signatureAlgorithm.oid)}`, {
        index: depth,
        subject: cert.subject.text,
        oid: cert.signatureAlgorithm.oid,
      }),
      depth + 1,
    );
    return null;
  }
  const verify = (issuer: Certificate): boolean | null => {
    if (s.sigBudget <= 0) {
      s.exhausted = new CertificateError('path-too-long', 'gave up building a certification path: signature-check budget exhausted');
      return null;
    }
    s.sigBudget--;
    return s.o.provider.verifySignature(alg, issuer.spki, cert.tbs, cert.signature);
  };
  const badSig = (issuer: Certificate): CertificateError =>
    new CertificateError('bad-signature', `the signature on "${cert.subject.text}" does not verify with the key of "${issuer.subject.text}"`, {
      index: depth,
      subject: cert.subject.text,
      issuer: issuer.subject.text,
    });

  // 1. Trust anchors.
  for (const a of orderByKeyId(s.o.anchors.candidates(cert), cert)) {
    const ok = verify(a);
    if (ok === null) return null;
    if (!ok) {
      record(s, badSig(a), depth + 1);
      continue;
    }
    const e = validatePath(path, a, s.o);
    if (!e) return a;
    record(s, e, depth + 1);
  }
  // 2. Presented intermediates.
  const candidates = s.presented.filter((c) => bytesEqual(c.subject.raw, cert.issuer.raw));
  if (candidates.length === 0) {
    if (s.o.anchors.candidates(cert).length === 0) record(s, unknownIssuer(path), depth);
    return null;
  }
  if (depth >= s.maxDepth) {
    record(s, new CertificateError('path-too-long', `certification path longer than ${s.maxDepth} intermediates`, { index: depth, subject: cert.subject.text }), depth + 1);
    return null;
  }
  for (const c of orderByKeyId(candidates, cert)) {
    if (path.some((p) => p === c || (bytesEqual(p.subject.raw, c.subject.raw) && bytesEqual(p.spki, c.spki)))) continue;
    const index = s.presented.indexOf(c) + 1;
    const e = issuerIndependent(c, index, false, s.o);
    if (e) {
      record(s, e, depth + 1);
      continue;
    }
    const ok = verify(c);
    if (ok === null) return null;
    if (!ok) {
      record(s, badSig(c), depth + 1);
      continue;
    }
    path.push(c);
    const a = extend(path, s);
    if (a) return a;
    path.pop();
    if (s.exhausted) return null;
  }
  return null;
}

/** Candidates whose subjectKeyIdentifier equals `cert`'s authorityKeyIdentifier come first. */
function orderByKeyId(list: Certificate[], cert: Certificate): Certificate[] {
  const aki = cert.authorityKeyId;
  if (!aki || list.length < 2) return list;
  const match = (c: Certificate): boolean => c.subjectKeyId !== null && bytesEqual(c.subjectKeyId, aki);
  return [...list.filter(match), ...list.filter((c) => !match(c))];
}

const purposeOid: Record<Purpose, string> = { serverAuth: OID.serverAuth, clientAuth: OID.clientAuth };

function issuerIndependent(c: Certificate, index: number, isLeaf: boolean, o: PathOptions): CertificateError | null {
  const who = `${isLeaf ? 'leaf' : 'intermediate'} certificate "${c.subject.text}"`;
  const f = { index, subject: c.subject.text };
  if (c.version !== 3) return new CertificateError('unsupported-version', `${who} is X.509 v${c.version}; only v3 is accepted`, f);
  if (c.unhandledCritical.length > 0)
    return new CertificateError('unknown-critical-extension', `${who} has a critical extension this implementation does not process: ${c.unhandledCritical.join(', ')}`, {
      ...f,
      oid: c.unhandledCritical[0]!,
    });
  if (!o.allowExpired) {
    const now = Math.floor(o.nowMs / 1000) * 1000;
    const t = { ...f, notBefore: c.notBefore, notAfter: c.notAfter, now: o.nowMs };
    if (now > c.notAfter)
      return new CertificateError('expired', `${who} expired at ${iso(c.notAfter)} (now is ${iso(o.nowMs)})`, t);
    if (now < c.notBefore)
      return new CertificateError('not-yet-valid', `${who} is not valid before ${iso(c.notBefore)} (now is ${iso(o.nowMs)})`, t);
  }
  if (c.extKeyUsage && !c.extKeyUsage.includes(purposeOid[o.purpose]))
    return new CertificateError('ext-key-usage', `${who} is not valid for ${o.purpose}: its extendedKeyUsage lists ${c.extKeyUsage.map(ekuName).join(', ')}`, f);
  if (isLeaf) {
    if (c.basicConstraints?.ca && !o.allowCaLeaf && !o.anchors.contains(c))
      return new CertificateError('ca-as-leaf', `${who} is a CA certificate (basicConstraints cA) used as an end-entity certificate`, f);
    if (c.keyUsage !== null && !(c.keyUsage & KeyUsage.digitalSignature))
      return new CertificateError('key-usage', `${who} keyUsage does not include digitalSignature (needed to sign the TLS 1.3 handshake)`, f);
  } else {
    if (!c.basicConstraints?.ca) return new CertificateError('not-ca', `${who} is not a CA (basicConstraints cA is ${c.basicConstraints ? 'false' : 'absent'}) but issued a certificate in the chain`, f);
    if (c.keyUsage !== null && !(c.keyUsage & KeyUsage.keyCertSign))
      return new CertificateError('key-usage', `${who} is a CA whose keyUsage does not include keyCertSign`, f);
  }
  return null;
}

/** Path-level checks once `path` (leaf first) chains to `anchor`. */
function validatePath(path: Certificate[], anchor: Certificate, o: PathOptions): CertificateError | null {
  const leaf = path[0]!;
  // A leaf that is itself the anchor (e.g. a trusted self-signed certificate) needs nothing more.
  if (path.length === 1 && bytesEqual(anchor.subject.raw, leaf.subject.raw) && bytesEqual(anchor.spki, leaf.spki)) return null;
  const af = { index: -1, subject: anchor.subject.text };
  if (anchor.basicConstraints && !anchor.basicConstraints.ca)
    return new CertificateError('not-ca', `trust anchor "${anchor.subject.text}" is not a CA (basicConstraints cA is false)`, af);
  if (anchor.keyUsage !== null && !(anchor.keyUsage & KeyUsage.keyCertSign))
    return new CertificateError('key-usage', `trust anchor "${anchor.subject.text}" keyUsage does not include keyCertSign`, af);
  if (anchor.extKeyUsage && !anchor.extKeyUsage.includes(purposeOid[o.purpose]))
    return new CertificateError('ext-key-usage', `trust anchor "${anchor.subject.text}" is restricted by extendedKeyUsage to ${anchor.extKeyUsage.map(ekuName).join(', ')}, not ${o.purpose}`, af);
  // issuers[j] for j = 1..path.length: path[1..] then the anchor.
  const issuers = [...path.slice(1), anchor];
  for (let j = 1; j <= issuers.length; j++) {
    const ca = issuers[j - 1]!;
    const isAnchor = j === issuers.length;
    const index = isAnchor ? -1 : j;
    // pathLenConstraint: non-self-issued intermediates strictly between this CA and the leaf.
    const pl = ca.basicConstraints?.pathLen;
    if (pl !== null && pl !== undefined) {
      let n = 0;
      for (let i = 1; i < j; i++) if (!path[i]!.selfIssued) n++;
      if (n > pl)
        return new CertificateError('path-length', `CA "${ca.subject.text}" allows ${pl} intermediate(s) below it (pathLenConstraint) but the path has ${n}`, {
          index,
          subject: ca.subject.text,
        });
    }
    const nc = ca.nameConstraints;
    if (nc) {
      for (let i = 0; i < j; i++) {
        const c = path[i]!;
        if (i > 0 && c.selfIssued) continue;
        const bad = nameConstraintViolation(nc, c);
        if (bad)
          return new CertificateError('name-constraint', `name ${bad} of "${c.subject.text}" violates the name constraints of CA "${ca.subject.text}"`, {
            index: i,
            subject: c.subject.text,
            name: bad,
          });
      }
    }
  }
  return null;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function ekuName(oid: string): string {
  return oid === OID.serverAuth ? 'serverAuth' : oid === OID.clientAuth ? 'clientAuth' : oid === OID.anyExtendedKeyUsage ? 'anyExtendedKeyUsage' : oid;
}
