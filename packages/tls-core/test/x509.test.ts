/**
 * X.509 validation rules, one passing and one failing case each, on chains made by the openssl CLI
 * (generated once for this file), for every crypto provider.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Alert, ProtocolViolation, alertName } from '../src/errors.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { signatureAlgorithmOf } from '../src/x509/algorithms.js';
import { KeyUsage, parseCertificate } from '../src/x509/cert.js';
import { CertificateError, type CertificateErrorKind, certificateErrorOf } from '../src/x509/errors.js';
import { certificateMatchesName, dnsNameMatches, formatIp, normalizeDnsName, parseIpLiteral } from '../src/x509/identity.js';
import { loadPemChain, loadPemKey, loadPemKeyInfo } from '../src/x509/pem.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';
import { InsecureVerifier, WebPkiVerifier } from '../src/x509/verifier.js';
import { OpensslPki, type PkiCert, T_NOW, breakSignature } from './x509-openssl.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { rootCertificates } from 'node:tls';
import path from 'node:path';

const NOW = T_NOW * 1000;
const pki = new OpensslPki();
const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'];
const SAN = 'subjectAltName=DNS:example.test,DNS:*.wild.test,IP:127.0.0.1,IP:::1';

const rootA = pki.issue('rootA', { subj: '/CN=Root A/O=Petrel', ext: CA });
const rootB = pki.issue('rootB', { subj: '/CN=Root B/O=Petrel', ext: CA });
const inter = pki.issue('inter', { subj: '/CN=Inter/O=Petrel', issuer: rootA, ext: [...CA, 'authorityKeyIdentifier=keyid'] });
const leafKey = pki.key('leafkey');
const mk = (name: string, issuer: PkiCert, ext: string[], extra: Partial<Parameters<OpensslPki['issue']>[1]> = {}): PkiCert =>
  pki.issue(name, { subj: `/CN=${name}`, issuer, key: leafKey, ext, ...extra });
const leaf = mk('leaf', inter, [...LEAF, SAN]);

type Case = { roots: PkiCert[]; chain: (PkiCert | Uint8Array)[]; name?: string | null; now?: number; purpose?: 'server' | 'client'; opts?: object };
const der = (c: PkiCert | Uint8Array): Uint8Array => (c instanceof Uint8Array ? c : c.der);

function run(p: CryptoProvider, c: Case): ProtocolViolation | null {
  const v = new WebPkiVerifier({ roots: c.roots.map((r) => r.der), ...(c.opts ?? {}) });
  const chain = c.chain.map(der);
  if (c.purpose === 'client') return v.verifyClient(chain, c.now ?? NOW, p);
  return v.verifyServer(chain, c.name === undefined ? 'example.test' : c.name, c.now ?? NOW, p);
}

function ok(p: CryptoProvider, c: Case, what: string): void {
  const r = run(p, c);
  assert.is(r, null, `${p.name}: ${what}: expected success, got ${r?.message}`);
}

function fails(p: CryptoProvider, c: Case, kind: CertificateErrorKind, alert: number, what: string): CertificateError {
  const r = run(p, c);
  assert.ok(r instanceof ProtocolViolation, `${p.name}: ${what}: expected ${kind}, got success`);
  const e = certificateErrorOf(r);
  assert.ok(e, `${p.name}: ${what}: no CertificateError cause`);
  assert.is(e.kind, kind, `${p.name}: ${what}: kind ${e.kind} (${r.message})`);
  assert.is(r.code, alert, `${p.name}: ${what}: alert ${alertName(r.code)}`);
  assert.is(r.layer, 'tls');
  return e;
}

// ---- Certificates for the rules below (made once). ----
const interShort = pki.issue('interShort', { subj: '/CN=Inter/O=Petrel', issuer: rootA, key: 'k-inter', ext: CA, end: '20250101000000Z' });
const interNotCa = pki.issue('interNotCa', { subj: '/CN=NotCA', issuer: rootA, ext: ['basicConstraints=critical,CA:FALSE'] });
const leafOfNotCa = mk('leafOfNotCa', interNotCa, [...LEAF, SAN]);
const interNoBc = pki.issue('interNoBc', { subj: '/CN=NoBC', issuer: rootA, ext: ['keyUsage=critical,keyCertSign'] });
const leafOfNoBc = mk('leafOfNoBc', interNoBc, [...LEAF, SAN]);
const interNoCertSign = pki.issue('interNoCertSign', { subj: '/CN=NoCertSign', issuer: rootA, ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature,cRLSign'] });
const leafOfNoCertSign = mk('leafOfNoCertSign', interNoCertSign, [...LEAF, SAN]);
// pathLen
const pl0 = pki.issue('pl0', { subj: '/CN=PL0', issuer: rootA, ext: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] });
const pl1 = pki.issue('pl1', { subj: '/CN=PL1', issuer: rootA, ext: ['basicConstraints=critical,CA:TRUE,pathlen:1', 'keyUsage=critical,keyCertSign'] });
const below0 = pki.issue('below0', { subj: '/CN=Below', issuer: pl0, ext: CA });
const below1 = pki.issue('below1', { subj: '/CN=Below', issuer: pl1, key: 'k-below0', ext: CA });
const leafBelow0 = mk('leafBelow0', below0, [...LEAF, SAN]);
const leafDirect0 = mk('leafDirect0', pl0, [...LEAF, SAN]);
// self-issued under pathlen:0 (same subject as pl0, new key): does not count (RFC 5280 §6.1.4 (l)).
const pl0self = pki.issue('pl0self', { subj: '/CN=PL0', issuer: pl0, ext: CA });
const leafSelfIssued = mk('leafSelfIssued', pl0self, [...LEAF, SAN]);
// EKU / KU
const leafClientOnly = mk('leafClientOnly', inter, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', SAN]);
const leafNoEku = mk('leafNoEku', inter, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', SAN]);
const leafAnyEku = mk('leafAnyEku', inter, ['extendedKeyUsage=anyExtendedKeyUsage', SAN]);
const leafKeyEnc = mk('leafKeyEnc', inter, ['keyUsage=critical,keyEncipherment', 'extendedKeyUsage=serverAuth', SAN]);
const interClientEku = pki.issue('interClientEku', { subj: '/CN=InterClient', issuer: rootA, ext: [...CA, 'extendedKeyUsage=clientAuth'] });
const leafOfClientEku = mk('leafOfClientEku', interClientEku, [...LEAF, SAN]);
// Name constraints
const ncInter = pki.issue('ncInter', {
  subj: '/CN=NC Inter',
  issuer: rootA,
  ext: [...CA, 'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:127.0.0.0/255.0.0.0,excluded;DNS:bad.example.test,excluded;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
});
const ncGood = mk('ncGood', ncInter, [...LEAF, 'subjectAltName=DNS:example.test,DNS:www.example.test,IP:127.0.0.1']);
const ncOutside = mk('ncOutside', ncInter, [...LEAF, 'subjectAltName=DNS:example.test,DNS:other.test']);
const ncExcluded = mk('ncExcluded', ncInter, [...LEAF, 'subjectAltName=DNS:example.test,DNS:x.bad.example.test']);
const ncIpOutside = mk('ncIpOutside', ncInter, [...LEAF, 'subjectAltName=DNS:example.test,IP:10.0.0.1']);
const ncIpExcluded = mk('ncIpExcluded', ncInter, [...LEAF, 'subjectAltName=DNS:example.test,IP:::1']);
const ncLookalike = mk('ncLookalike', ncInter, [...LEAF, 'subjectAltName=DNS:badexample.test']);
const ncEmailInter = pki.issue('ncEmailInter', { subj: '/CN=NC Email', issuer: rootA, ext: [...CA, 'nameConstraints=critical,permitted;email:example.test,permitted;dirName:nc_dn', '[nc_dn]', 'O=Petrel'] });
const ncEmailGood = pki.issue('ncEmailGood', { subj: '/O=Petrel/CN=x/emailAddress=a@example.test', issuer: ncEmailInter, key: leafKey, ext: [...LEAF, SAN, 'subjectAltName=DNS:example.test,email:b@example.test'] });
const ncEmailBadDn = pki.issue('ncEmailBadDn', { subj: '/O=Petrel/CN=x/emailAddress=a@example.org', issuer: ncEmailInter, key: leafKey, ext: [...LEAF, 'subjectAltName=DNS:example.test'] });
const ncEmailBadSan = pki.issue('ncEmailBadSan', { subj: '/O=Petrel/CN=x', issuer: ncEmailInter, key: leafKey, ext: [...LEAF, 'subjectAltName=DNS:example.test,email:b@example.org'] });
const ncDirBad = pki.issue('ncDirBad', { subj: '/O=Other/CN=x', issuer: ncEmailInter, key: leafKey, ext: [...LEAF, 'subjectAltName=DNS:example.test'] });
const ncRoot = pki.issue('ncRoot', { subj: '/CN=NC Root', ext: [...CA, 'nameConstraints=critical,permitted;DNS:example.test'] });
const interOfNcRoot = pki.issue('interOfNcRoot', { subj: '/CN=Inter NC', issuer: ncRoot, ext: CA });
const leafOfNcRootGood = mk('leafOfNcRootGood', interOfNcRoot, [...LEAF, 'subjectAltName=DNS:a.example.test']);
const leafOfNcRootBad = mk('leafOfNcRootBad', interOfNcRoot, [...LEAF, 'subjectAltName=DNS:a.example.org']);
// Critical extensions, CN fallback, CA as leaf
const leafUnknownCrit = mk('leafUnknownCrit', inter, [...LEAF, SAN, '1.3.6.1.4.1.99999.1=critical,ASN1:NULL']);
const leafUnknownNonCrit = mk('leafUnknownNonCrit', inter, [...LEAF, SAN, '1.3.6.1.4.1.99999.1=ASN1:NULL']);
const leafCnOnly = pki.issue('leafCnOnly', { subj: '/CN=example.test', issuer: inter, key: leafKey, ext: LEAF });
const leafIsCa = mk('leafIsCa', inter, [...CA, SAN]);
const leafIsCaNoKu = mk('leafIsCaNoKu', inter, ['basicConstraints=critical,CA:TRUE', SAN]);
const selfCa = pki.issue('selfCa', { subj: '/CN=example.test', ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,digitalSignature', SAN] });
// Cross-signing and alternative paths: X (one key) certified by A and by B.
const xByA = pki.issue('xByA', { subj: '/CN=Cross X', issuer: rootA, ext: CA });
const xByB = pki.issue('xByB', { subj: '/CN=Cross X', issuer: rootB, key: 'k-xByA', ext: CA });
const xByAExpired = pki.issue('xByAExpired', { subj: '/CN=Cross X', issuer: rootA, key: 'k-xByA', ext: CA, end: '20250101000000Z' });
const leafOfX = mk('leafOfX', xByA, [...LEAF, SAN]);
// Loop: P certified by Q and Q by P, neither reaching a root.
const loopP = pki.issue('loopP', { subj: '/CN=Loop P', issuer: rootB, ext: CA });
const loopQ = pki.issue('loopQ', { subj: '/CN=Loop Q', issuer: loopP, ext: CA });
const loopP2 = pki.issue('loopP2', { subj: '/CN=Loop P', issuer: loopQ, key: 'k-loopP', ext: CA });
const leafOfLoop = mk('leafOfLoop', loopP, [...LEAF, SAN]);
// Depth: a chain of 7 intermediates.
const deep: PkiCert[] = [];
{
  let up = rootA;
  for (let i = 0; i < 7; i++) {
    up = pki.issue(`deep${i}`, { subj: `/CN=Deep ${i}`, issuer: up, ext: CA });
    deep.unshift(up);
  }
}
const leafDeep = mk('leafDeep', deep[0]!, [...LEAF, SAN]);
// Algorithms
pki.key('rsaRoot', 'rsa');
const rootRsa = pki.issue('rootRsa', { subj: '/CN=RSA Root', key: 'rsaRoot', ext: CA });
const leafRsaPkcs1 = mk('leafRsaPkcs1', rootRsa, [...LEAF, SAN]);
const leafRsaPkcs1Sha512 = mk('leafRsaPkcs1Sha512', rootRsa, [...LEAF, SAN], { sig: 'sha512' });
const leafRsaPss = mk('leafRsaPss', rootRsa, [...LEAF, SAN], { sig: 'pss' });
pki.key('p384Root', 'ec-p384');
const rootP384 = pki.issue('rootP384', { subj: '/CN=P384 Root', key: 'p384Root', ext: CA, sig: 'sha384' });
const leafP384 = mk('leafP384', rootP384, [...LEAF, SAN], { sig: 'sha384' });
const leafEcSha512 = mk('leafEcSha512', rootA, [...LEAF, SAN], { sig: 'sha512' });
pki.key('edRoot', 'ed25519');
const rootEd = pki.issue('rootEd', { subj: '/CN=Ed Root', key: 'edRoot', ext: CA });
const leafEd = mk('leafEd', rootEd, [...LEAF, SAN]);
pki.key('edLeaf', 'ed25519');
const leafEdKey = pki.issue('leafEdKey', { subj: '/CN=edleaf', issuer: inter, key: 'edLeaf', ext: [...LEAF, SAN] });

for (const p of providers) {
  test(`${p.name}: a valid chain verifies; DNS, IP and wildcard names`, () => {
    const base = { roots: [rootA], chain: [leaf, inter] };
    for (const name of ['example.test', 'EXAMPLE.Test', 'example.test.', '127.0.0.1', '::1', '0:0:0:0:0:0:0:1', '[::1]', 'a.wild.test', 'A.WILD.TEST', null])
      ok(p, { ...base, name }, `name ${name}`);
    const e = fails(p, { ...base, name: 'other.test' }, 'name-mismatch', Alert.bad_certificate, 'other name');
    assert.equal(e.presentedNames, ['DNS:example.test', 'DNS:*.wild.test', 'IP:127.0.0.1', 'IP:::1']);
    assert.match(e.message, /DNS:example\.test, DNS:\*\.wild\.test, IP:127\.0\.0\.1, IP:::1/);
    for (const name of ['a.b.wild.test', 'wild.test', '127.0.0.2', '::2', 'sub.example.test', 'example.tes', '*.wild.test', '127.1', '', 'exa mple.test'])
      fails(p, { ...base, name }, 'name-mismatch', Alert.bad_certificate, `name ${JSON.stringify(name)}`);
  });

  test(`${p.name}: unknown issuer`, () => {
    ok(p, { roots: [rootB, rootA], chain: [leaf, inter] }, 'right root among others');
    const e = fails(p, { roots: [rootB], chain: [leaf, inter] }, 'unknown-issuer', Alert.unknown_ca, 'other root');
    assert.match(e.message, /Root A/);
    fails(p, { roots: [rootA], chain: [leaf] }, 'unknown-issuer', Alert.unknown_ca, 'missing intermediate');
    ok(p, { roots: [rootA, inter], chain: [leaf] }, 'intermediate as anchor');
    ok(p, { roots: [rootA], chain: [leaf, inter, rootA] }, 'root sent too');
    ok(p, { roots: [rootA], chain: [leaf, rootB, interNotCa, inter] }, 'unrelated extras in the chain');
  });

  test(`${p.name}: validity period (injectable clock), expired → certificate_expired`, () => {
    const base = { roots: [rootA], chain: [leaf, inter] };
    ok(p, { ...base, now: Date.UTC(2020, 0, 1) }, 'first instant');
    ok(p, { ...base, now: Date.UTC(2040, 0, 1) + 999 }, 'last second (inclusive)');
    const e = fails(p, { ...base, now: Date.UTC(2040, 0, 1, 0, 0, 1) }, 'expired', Alert.certificate_expired, 'after notAfter');
    assert.is(e.notAfter, Date.UTC(2040, 0, 1));
    assert.is(e.now, Date.UTC(2040, 0, 1, 0, 0, 1));
    assert.match(e.message, /2040-01-01T00:00:00\.000Z.*now is 2040-01-01T00:00:01\.000Z/);
    const n = fails(p, { ...base, now: Date.UTC(2019, 11, 31, 23, 59, 59) }, 'not-yet-valid', Alert.certificate_expired, 'before notBefore');
    assert.is(n.notBefore, Date.UTC(2020, 0, 1));
    fails(p, { roots: [rootA], chain: [leaf, interShort] }, 'expired', Alert.certificate_expired, 'expired intermediate');
    ok(p, { roots: [rootA], chain: [leaf, interShort, inter] }, 'expired intermediate with a valid alternative');
    ok(p, { roots: [rootA], chain: [leaf, inter], now: Date.UTC(2050, 0, 1), opts: { allowExpired: true } }, 'allowExpired');
  });

  test(`${p.name}: signatures`, () => {
    fails(p, { roots: [rootA], chain: [breakSignature(leaf.der), inter] }, 'bad-signature', Alert.bad_certificate, 'leaf signature');
    fails(p, { roots: [rootA], chain: [leaf, breakSignature(inter.der)] }, 'bad-signature', Alert.bad_certificate, 'intermediate signature');
    for (const [l, r, what] of [
      [leafRsaPkcs1, rootRsa, 'sha256WithRSAEncryption'],
      [leafRsaPkcs1Sha512, rootRsa, 'sha512WithRSAEncryption'],
      [leafRsaPss, rootRsa, 'RSASSA-PSS'],
      [leafP384, rootP384, 'ecdsa-with-SHA384 (P-384)'],
      [leafEcSha512, rootA, 'ecdsa-with-SHA512 (P-256)'],
      [leafEd, rootEd, 'Ed25519'],
    ] as const) {
      ok(p, { roots: [r], chain: [l] }, what);
      fails(p, { roots: [r], chain: [breakSignature(l.der)] }, 'bad-signature', Alert.bad_certificate, `${what} broken`);
    }
    ok(p, { roots: [rootA], chain: [leafEdKey, inter] }, 'Ed25519 leaf key');
  });

  test(`${p.name}: basicConstraints cA and keyUsage keyCertSign on CAs`, () => {
    fails(p, { roots: [rootA], chain: [leafOfNotCa, interNotCa] }, 'not-ca', Alert.bad_certificate, 'cA false');
    fails(p, { roots: [rootA], chain: [leafOfNoBc, interNoBc] }, 'not-ca', Alert.bad_certificate, 'no basicConstraints');
    fails(p, { roots: [rootA], chain: [leafOfNoCertSign, interNoCertSign] }, 'key-usage', Alert.unsupported_certificate, 'no keyCertSign');
    fails(p, { roots: [interNotCa], chain: [leafOfNotCa] }, 'not-ca', Alert.bad_certificate, 'anchor with cA false');
    ok(p, { roots: [rootA], chain: [leaf, inter] }, 'proper CA');
  });

  test(`${p.name}: pathLenConstraint, self-issued intermediates`, () => {
    ok(p, { roots: [rootA], chain: [leafDirect0, pl0] }, 'pathlen 0, no intermediate below');
    fails(p, { roots: [rootA], chain: [leafBelow0, below0, pl0] }, 'path-length', Alert.bad_certificate, 'pathlen 0 with one below');
    ok(p, { roots: [rootA], chain: [leafBelow0, below1, pl1] }, 'pathlen 1 with one below');
    ok(p, { roots: [rootA], chain: [leafSelfIssued, pl0self, pl0] }, 'self-issued does not count');
  });

  test(`${p.name}: extKeyUsage and keyUsage of the leaf`, () => {
    fails(p, { roots: [rootA], chain: [leafClientOnly, inter] }, 'ext-key-usage', Alert.unsupported_certificate, 'clientAuth-only leaf as server');
    ok(p, { roots: [rootA], chain: [leafClientOnly, inter], purpose: 'client' }, 'clientAuth-only leaf as client');
    fails(p, { roots: [rootA], chain: [leaf, inter], purpose: 'client' }, 'ext-key-usage', Alert.unsupported_certificate, 'serverAuth-only leaf as client');
    ok(p, { roots: [rootA], chain: [leafNoEku, inter] }, 'absent EKU (webpki practice)');
    ok(p, { roots: [rootA], chain: [leafNoEku, inter], purpose: 'client' }, 'absent EKU as client');
    fails(p, { roots: [rootA], chain: [leafAnyEku, inter] }, 'ext-key-usage', Alert.unsupported_certificate, 'anyExtendedKeyUsage only');
    fails(p, { roots: [rootA], chain: [leafOfClientEku, interClientEku] }, 'ext-key-usage', Alert.unsupported_certificate, 'intermediate EKU clientAuth');
    fails(p, { roots: [rootA], chain: [leafKeyEnc, inter] }, 'key-usage', Alert.unsupported_certificate, 'keyEncipherment only');
  });

  test(`${p.name}: name constraints (DNS and IP, permitted and excluded, on intermediates and anchors)`, () => {
    const nc = (l: PkiCert, name = 'example.test') => ({ roots: [rootA], chain: [l, ncInter], name });
    ok(p, nc(ncGood), 'inside');
    ok(p, nc(ncGood, '127.0.0.1'), 'inside (IP)');
    const e = fails(p, nc(ncOutside), 'name-constraint', Alert.bad_certificate, 'DNS outside permitted');
    assert.is(e.constrainedName, 'DNS:other.test');
    fails(p, nc(ncExcluded), 'name-constraint', Alert.bad_certificate, 'DNS in excluded');
    fails(p, nc(ncIpOutside), 'name-constraint', Alert.bad_certificate, 'IP outside permitted');
    fails(p, nc(ncIpExcluded), 'name-constraint', Alert.bad_certificate, 'IP in excluded');
    fails(p, nc(ncLookalike, 'badexample.test'), 'name-constraint', Alert.bad_certificate, 'suffix without a dot boundary');
    ok(p, { roots: [rootA], chain: [ncEmailGood, ncEmailInter] }, 'email and directoryName inside');
    fails(p, { roots: [rootA], chain: [ncEmailBadDn, ncEmailInter] }, 'name-constraint', Alert.bad_certificate, 'subject emailAddress outside');
    fails(p, { roots: [rootA], chain: [ncEmailBadSan, ncEmailInter] }, 'name-constraint', Alert.bad_certificate, 'email SAN outside');
    fails(p, { roots: [rootA], chain: [ncDirBad, ncEmailInter] }, 'name-constraint', Alert.bad_certificate, 'subject DN outside directoryName');
    ok(p, { roots: [ncRoot], chain: [leafOfNcRootGood, interOfNcRoot], name: 'a.example.test' }, 'anchor constraints, inside');
    fails(p, { roots: [ncRoot], chain: [leafOfNcRootBad, interOfNcRoot], name: 'a.example.org' }, 'name-constraint', Alert.bad_certificate, 'anchor constraints, outside');
  });

  test(`${p.name}: unknown critical extensions, no CN fallback, CA as leaf`, () => {
    fails(p, { roots: [rootA], chain: [leafUnknownCrit, inter] }, 'unknown-critical-extension', Alert.unsupported_certificate, 'unknown critical');
    ok(p, { roots: [rootA], chain: [leafUnknownNonCrit, inter] }, 'unknown non-critical');
    const e = fails(p, { roots: [rootA], chain: [leafCnOnly, inter] }, 'name-mismatch', Alert.bad_certificate, 'CN only');
    assert.match(e.message, /no subjectAltName/);
    ok(p, { roots: [rootA], chain: [leafCnOnly, inter], name: null }, 'CN only, no name asked');
    fails(p, { roots: [rootA], chain: [leafIsCa, inter] }, 'ca-as-leaf', Alert.unsupported_certificate, 'CA certificate as leaf');
    // Deliberately stricter than OpenSSL by default (webpki: a CA certificate is not an end entity);
    // allowCaLeaf (used by the node:tls layer) accepts it as OpenSSL does, other leaf rules still apply.
    fails(p, { roots: [rootA], chain: [leafIsCaNoKu, inter] }, 'ca-as-leaf', Alert.unsupported_certificate, 'CA leaf without keyUsage, default');
    ok(p, { roots: [rootA], chain: [leafIsCaNoKu, inter], opts: { allowCaLeaf: true } }, 'CA leaf, allowCaLeaf');
    fails(p, { roots: [rootA], chain: [leafIsCa, inter], opts: { allowCaLeaf: true } }, 'key-usage', Alert.unsupported_certificate, 'CA leaf without digitalSignature, allowCaLeaf');
    fails(p, { roots: [rootA], chain: [selfCa] }, 'ca-as-leaf', Alert.unsupported_certificate, 'untrusted self-signed CA, default');
    fails(p, { roots: [rootA], chain: [selfCa], opts: { allowCaLeaf: true } }, 'unknown-issuer', Alert.unknown_ca, 'untrusted self-signed CA, allowCaLeaf');
    ok(p, { roots: [selfCa], chain: [selfCa] }, 'self-signed CA trusted directly');
  });

  test(`${p.name}: path building: cross-signed, alternatives, loops, depth`, () => {
    ok(p, { roots: [rootA], chain: [leafOfX, xByB, xByA] }, 'cross-signed: second candidate');
    ok(p, { roots: [rootB], chain: [leafOfX, xByA, xByB] }, 'cross-signed: other root');
    ok(p, { roots: [rootA, rootB], chain: [leafOfX, xByAExpired, xByB] }, 'expired cross-sign skipped');
    fails(p, { roots: [rootA], chain: [leafOfX, xByAExpired, xByB] }, 'expired', Alert.certificate_expired, 'only an expired path');
    fails(p, { roots: [rootA], chain: [leafOfLoop, loopP, loopQ, loopP2] }, 'unknown-issuer', Alert.unknown_ca, 'loop without a root');
    ok(p, { roots: [rootB], chain: [leafOfLoop, loopP2, loopQ, loopP] }, 'loop with a root');
    const deepChain = [leafDeep, ...deep];
    fails(p, { roots: [rootA], chain: deepChain }, 'path-too-long', Alert.unknown_ca, '7 intermediates, default max 6');
    ok(p, { roots: [rootA], chain: deepChain, opts: { maxDepth: 7 } }, '7 intermediates, max 7');
    ok(p, { roots: [rootA, deep[1]!], chain: deepChain }, 'shorter path through a closer anchor');
    fails(p, { roots: [rootA], chain: deepChain, opts: { maxDepth: 7, signatureBudget: 5 } }, 'path-too-long', Alert.unknown_ca, 'signature budget');
  });

  test(`${p.name}: SPKI pins`, () => {
    const pin = (c: PkiCert): string => Buffer.from(p.digest('sha256', parseCertificate(c.der).spki)).toString('base64');
    ok(p, { roots: [rootA], chain: [leaf, inter], opts: { pins: [pin(inter)] } }, 'intermediate pin');
    ok(p, { roots: [rootA], chain: [leaf, inter], opts: { pins: [pin(rootB), pin(leaf)] } }, 'leaf pin among others');
    fails(p, { roots: [rootA], chain: [leaf, inter], opts: { pins: [pin(rootB)] } }, 'pin-mismatch', Alert.bad_certificate, 'wrong pin');
    // Same pin as `openssl ... | openssl dgst -sha256 -binary | base64`.
    const spkiDer = execFileSync('sh', ['-c', `openssl x509 -pubkey -noout -in ${inter.file} | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`], { cwd: pki.dir, encoding: 'utf8' }).trim();
    assert.is(spkiDer, pin(inter));
  });

  test(`${p.name}: generateSelfSigned: every key type, self-signed and CA-issued, checked by us and by openssl`, () => {
    for (const keyType of ['ec-p256', 'ec-p384', 'ed25519', 'rsa'] as const) {
      const ss = generateSelfSigned({ provider: p, names: ['localhost', '127.0.0.1', '::1'], keyType, nowMs: NOW, days: 10 });
      const v = new WebPkiVerifier({ roots: ss.certPem });
      for (const n of ['localhost', '127.0.0.1', '::1']) assert.is(v.verifyServer([ss.certDer], n, NOW, p), null, `${keyType} ${n}`);
      assert.ok(v.verifyServer([ss.certDer], 'other', NOW, p));
      assert.is(certificateErrorOf(v.verifyServer([ss.certDer], 'localhost', NOW + 11 * 86400e3, p))?.kind, 'expired');
      assert.is(certificateErrorOf(v.verifyServer([ss.certDer], 'localhost', NOW - 2 * 3600e3, p))?.kind, 'not-yet-valid');
      // The key works with the provider and matches the certificate.
      const key = p.loadPrivateKey(loadPemKey(ss.keyPem));
      assert.equal(key.spki, parseCertificate(ss.certDer).spki);
      const ca = generateSelfSigned({ provider: p, names: [], isCA: true, keyType, nowMs: NOW, commonName: `CA ${keyType}` });
      const l = generateSelfSigned({ provider: p, names: ['*.example.test', 'example.test'], issuer: ca, nowMs: NOW });
      const vc = new WebPkiVerifier({ roots: [ca.certDer] });
      assert.is(vc.verifyServer([l.certDer], 'a.example.test', NOW, p), null, `${keyType} CA-issued`);
      assert.is(vc.verifyClient([l.certDer], NOW, p), null, `${keyType} CA-issued client`);
      assert.is(certificateErrorOf(new WebPkiVerifier({ roots: [ss.certDer] }).verifyServer([l.certDer], null, NOW, p))?.kind, 'unknown-issuer');
      const dir = pki.dir;
      fs.writeFileSync(path.join(dir, `gen-${keyType}-ca.pem`), ca.certPem);
      fs.writeFileSync(path.join(dir, `gen-${keyType}-leaf.pem`), l.certPem);
      fs.writeFileSync(path.join(dir, `gen-${keyType}-ss.pem`), ss.certPem);
      const at = String(Math.floor(NOW / 1000));
      const out = execFileSync('openssl', ['verify', '-attime', at, '-purpose', 'sslserver', '-verify_hostname', 'a.example.test', '-CAfile', `gen-${keyType}-ca.pem`, `gen-${keyType}-leaf.pem`], { cwd: dir, encoding: 'utf8' });
      assert.match(out, /: OK/);
      const out2 = execFileSync('openssl', ['verify', '-attime', at, '-purpose', 'sslserver', '-verify_ip', '::1', '-CAfile', `gen-${keyType}-ss.pem`, `gen-${keyType}-ss.pem`], { cwd: dir, encoding: 'utf8' });
      assert.match(out2, /: OK/);
    }
  });

  test(`${p.name}: malformed certificates → bad_certificate; empty chains`, () => {
    const v = new WebPkiVerifier({ roots: [rootA.der] });
    for (const bad of [leaf.der.subarray(0, 100), new Uint8Array(0), Uint8Array.of(0x30, 0x00), Uint8Array.from([...leaf.der, 0])]) {
      const r = v.verifyServer([bad, inter.der], 'example.test', NOW, p);
      assert.is(r?.code, Alert.bad_certificate);
      assert.is(certificateErrorOf(r)?.kind, 'malformed');
    }
    assert.is(v.verifyServer([leaf.der, inter.der.subarray(1)], 'example.test', NOW, p)?.code, Alert.bad_certificate);
    assert.is(v.verifyServer([], 'example.test', NOW, p)?.code, Alert.decode_error);
    assert.is(v.verifyClient([], NOW, p)?.code, Alert.certificate_required);
    assert.is(new InsecureVerifier().verifyServer(), null);
    assert.is(new InsecureVerifier().verifyClient(), null);
  });
}

test('parser: fields and extensions of an openssl certificate', () => {
  const c = parseCertificate(ncInter.der);
  assert.is(c.version, 3);
  assert.is(c.subject.text, 'CN=NC Inter');
  assert.is(c.issuer.text, 'CN=Root A, O=Petrel');
  assert.equal(c.basicConstraints, { ca: true, pathLen: null });
  assert.is(c.keyUsage, KeyUsage.keyCertSign | KeyUsage.cRLSign);
  assert.ok(c.nameConstraints);
  assert.equal(c.nameConstraints.permitted.map((g) => g.type), ['dns', 'ip']);
  assert.equal(c.nameConstraints.excluded.map((g) => g.type), ['dns', 'ip']);
  assert.equal(c.nameConstraints.permitted[1], { type: 'ip', bytes: Uint8Array.of(127, 0, 0, 0, 255, 0, 0, 0) });
  assert.is(c.notBefore, Date.UTC(2020, 0, 1));
  assert.is(c.notAfter, Date.UTC(2040, 0, 1));
  const l = parseCertificate(leaf.der);
  assert.equal(l.extKeyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.is(l.keyUsage, KeyUsage.digitalSignature);
  assert.equal(l.subjectAltNames?.map((g) => g.type), ['dns', 'dns', 'ip', 'ip']);
  assert.ok(l.authorityKeyId && parseCertificate(inter.der).subjectKeyId);
  assert.equal(l.authorityKeyId, parseCertificate(inter.der).subjectKeyId);
  assert.is(l.selfIssued, false);
  assert.is(parseCertificate(rootA.der).selfIssued, true);
  assert.equal(parseCertificate(leafUnknownCrit.der).unhandledCritical, ['1.3.6.1.4.1.99999.1']);
  assert.is(parseCertificate(pl1.der).basicConstraints?.pathLen, 1);
  let threw: unknown;
  try {
    parseCertificate(leaf.der.subarray(0, 50), 3);
  } catch (e) {
    threw = e;
  }
  assert.ok(threw instanceof CertificateError);
  assert.is((threw as CertificateError).kind, 'malformed');
  assert.is((threw as CertificateError).index, 3);
});

test('PEM: loadPemChain, loadPemKey (PKCS#8, SEC1, PKCS#1)', () => {
  const chain = loadPemChain(`junk\n${leaf.pem}${inter.pem}`);
  assert.is(chain.length, 2);
  assert.equal(chain[1], inter.der);
  assert.throws(() => loadPemChain('nothing'), (e: unknown) => e instanceof CertificateError && e.kind === 'malformed');
  assert.throws(() => loadPemChain('-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n'), (e: unknown) => e instanceof CertificateError);
  const pkcs8 = pki.keyPem(leafKey);
  assert.is(loadPemKeyInfo(pkcs8).format, 'pkcs8');
  const sec1 = execFileSync('openssl', ['ec', '-in', `${leafKey}.key`], { cwd: pki.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  assert.is(loadPemKeyInfo(`-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}`).format, 'sec1');
  const pkcs1 = execFileSync('openssl', ['rsa', '-in', 'rsaRoot.key', '-traditional'], { cwd: pki.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  assert.is(loadPemKeyInfo(pkcs1).format, 'pkcs1');
  for (const p of providers) {
    const leafSpki = parseCertificate(leaf.der).spki;
    assert.equal(p.loadPrivateKey(loadPemKey(pkcs8)).spki, leafSpki);
    assert.equal(p.loadPrivateKey(loadPemKey(sec1)).spki, leafSpki);
    assert.equal(p.loadPrivateKey(loadPemKey(pkcs1)).spki, parseCertificate(rootRsa.der).spki);
  }
  assert.throws(() => loadPemKey('-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n'), /encrypted/);
  assert.throws(() => loadPemKey(leaf.pem), /no private key/);
});

test('RFC 9525 DNS matching: case, trailing dot, wildcards, IDNA', () => {
  const m = (presented: string, ref: string): boolean => {
    const r = normalizeDnsName(ref);
    return r !== null && dnsNameMatches(presented, r);
  };
  assert.ok(m('www.example.com', 'WWW.Example.COM'));
  assert.ok(m('www.example.com', 'www.example.com.'));
  assert.ok(m('www.example.com.', 'www.example.com'));
  assert.ok(m('*.example.com', 'foo.example.com'));
  assert.not.ok(m('*.example.com', 'example.com'), 'wildcard needs a label');
  assert.not.ok(m('*.example.com', 'a.b.example.com'), 'one label only');
  assert.not.ok(m('*.com', 'example.com'), 'wildcard over a single label');
  assert.not.ok(m('*.', 'a'), 'empty rest');
  assert.not.ok(m('f*.example.com', 'foo.example.com'), 'partial-label wildcard');
  assert.not.ok(m('*oo.example.com', 'foo.example.com'));
  assert.not.ok(m('*.*.example.com', 'a.b.example.com'), 'two wildcards');
  assert.not.ok(m('a.*.example.com', 'a.b.example.com'), 'wildcard not left-most');
  assert.not.ok(m('www.example.com', 'www.example.co'));
  assert.ok(m('*.co.uk', 'example.co.uk'), 'no public-suffix list: two labels remain');
  // IDNA: U-labels in the reference become A-labels; A-labels compare as ASCII.
  assert.is(normalizeDnsName('bücher.example'), 'xn--bcher-kva.example');
  assert.ok(m('xn--bcher-kva.example', 'BÜCHER.example'));
  assert.ok(m('XN--BCHER-KVA.example', 'xn--bcher-kva.example'));
  assert.ok(m('*.xn--bcher-kva.example', 'www.bücher.example'));
  assert.not.ok(m('bücher.example', 'bücher.example'), 'presented names are IA5 (A-labels)');
  assert.is(normalizeDnsName('bücher.example/@evil.test'), null, 'no URL tricks through IDNA conversion');
  assert.is(normalizeDnsName('evil.test#.bücher.example'), null);
  assert.is(normalizeDnsName('a..b'), null);
  assert.is(normalizeDnsName('*.example.com'), null);
  assert.is(normalizeDnsName('a'.repeat(64) + '.com'), null);
});

test('IP literals: IPv4, IPv6 compressed forms, formatting', () => {
  assert.equal(parseIpLiteral('127.0.0.1'), Uint8Array.of(127, 0, 0, 1));
  for (const bad of ['127.0.0', '127.0.0.256', '01.2.3.4', '1.2.3.4.5', '1.2.3.-4', 'a.b.c.d', '', '::1::', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', ':::', '1:2:3:4:5:6:7::8', 'g::1'])
    assert.is(parseIpLiteral(bad), null, bad);
  const v6 = (s: string): string => formatIp(parseIpLiteral(s)!);
  assert.is(v6('::1'), '::1');
  assert.is(v6('::'), '::');
  assert.is(v6('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.is(v6('2001:db8::'), '2001:db8::');
  assert.is(v6('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
  assert.is(v6('::ffff:192.0.2.1'), '::ffff:c000:201');
  assert.is(v6('[fe80::1:2]'), 'fe80::1:2');
  assert.is(v6('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
  assert.is(v6('1::2:3:4:5:6:7'), '1:0:2:3:4:5:6:7');
});

test('identity: an IP literal matches only iPAddress SANs, a DNS name only dNSName SANs', () => {
  const c = parseCertificate(mk('ipAsDns', inter, [...LEAF, 'subjectAltName=DNS:10.1.2.3,IP:10.9.9.9']).der);
  assert.not.ok(certificateMatchesName(c, '10.1.2.3'), 'IP literal vs dNSName');
  assert.ok(certificateMatchesName(c, '10.9.9.9'));
  assert.not.ok(certificateMatchesName(c, '::ffff:10.9.9.9'), 'IPv4-mapped IPv6 is a different address');
});

test('WebPkiVerifier: default roots are Node\'s, bad options are ConfigErrors', () => {
  const v = new WebPkiVerifier();
  assert.is(v.rootCount, rootCertificates.length, 'every root of Node\'s store parses');
  assert.is(certificateErrorOf(v.verifyServer([leaf.der, inter.der], 'example.test', NOW, providers[0]!))?.kind, 'unknown-issuer');
  assert.throws(() => new WebPkiVerifier({ roots: '' }), /no "-----BEGIN CERTIFICATE-----"/);
  assert.throws(() => new WebPkiVerifier({ roots: [] }), /empty/);
  assert.throws(() => new WebPkiVerifier({ roots: [Uint8Array.of(1, 2, 3)] }), /certificate 0/);
  assert.throws(() => new WebPkiVerifier({ roots: [rootA.der], pins: ['abc'] }), /base64 SHA-256/);
});

test('real-world certificates: every self-signed root of Node\'s store verifies its own signature (both providers)', () => {
  const algs = new Map<string, number>();
  for (const p of providers) {
    let checked = 0;
    for (const pem of rootCertificates) {
      const c = parseCertificate(loadPemChain(pem)[0]!);
      const alg = signatureAlgorithmOf(c.signatureAlgorithm);
      if (!c.selfIssued || !alg) continue; // e.g. sha1WithRSAEncryption: not accepted for chains
      assert.ok(p.verifySignature(alg, c.spki, c.tbs, c.signature), `${p.name}: ${c.subject.text}`);
      const bad = new Uint8Array(c.signature);
      bad[bad.length - 1] ^= 1;
      assert.not.ok(p.verifySignature(alg, c.spki, c.tbs, bad), `${p.name}: ${c.subject.text} (broken)`);
      algs.set(c.signatureAlgorithm.oid, (algs.get(c.signatureAlgorithm.oid) ?? 0) + 1);
      checked++;
    }
    assert.ok(checked > 100, `${p.name}: ${checked} roots checked`);
  }
  // RSA PKCS#1 SHA-256/384/512 and ECDSA SHA-256/384 all occur.
  assert.ok(algs.size >= 4, [...algs.keys()].join(' '));
});

test.after(() => pki.cleanup());
test.run();
