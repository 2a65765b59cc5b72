/**
 * Differential test: Petrel's WebPkiVerifier against `openssl verify -purpose sslserver` on a few
 * hundred generated cases (valid chains, expiry, wrong names and IPs, EKU / keyUsage / basicConstraints
 * / pathLen / name-constraint violations, broken signatures, unknown roots, key types). The decisions
 * must be equal, except for the deliberate stricter choices listed in STRICTER, where OpenSSL accepts
 * and Petrel must reject with exactly the listed error kind, and the three deliberate cases in
 * BEYOND_OPENSSL (trailing dot, the notAfter second, backtracking path building).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { certificateErrorOf, type CertificateErrorKind } from '../src/x509/errors.js';
import { WebPkiVerifier } from '../src/x509/verifier.js';
import { OpensslPki, type PkiCert, type PkiKeyType, T_NOW, breakSignature, mapLimit } from './x509-openssl.js';

/**
 * Where Petrel is deliberately stricter than OpenSSL's defaults (variant → the error Petrel reports).
 */
const STRICTER: Record<string, { kind: CertificateErrorKind; why: string }> = {
  'leaf-is-ca': { kind: 'ca-as-leaf', why: 'webpki: a CA certificate is not accepted as an end-entity certificate' },
  'leaf-ku-keyenc': { kind: 'key-usage', why: 'TLS 1.3 signs the handshake: the leaf keyUsage must include digitalSignature; OpenSSL accepts keyEncipherment' },
  'leaf-cn-only': { kind: 'name-mismatch', why: 'RFC 9525 §6.2: no fallback to the subject common name; OpenSSL falls back when there is no DNS SAN' },
  'leaf-crit-policies': { kind: 'unknown-critical-extension', why: 'no certificate-policy processing, so a critical certificatePolicies is rejected (webpki); OpenSSL processes policies' },
  'nc-excluded-wildcard': { kind: 'name-constraint', why: 'a wildcard SAN that can match an excluded name is rejected; OpenSSL compares the literal "*.x"' },
};

/**
 * Where Petrel accepts and OpenSSL 3.0 rejects, deliberately (each is exercised below):
 */
const BEYOND_OPENSSL: { variant: string; when: (query: string, time: number) => boolean; why: string }[] = [
  {
    variant: 'ok',
    when: (q) => q.endsWith('.'),
    why: 'a trailing dot (absolute DNS name) denotes the same name, as in webpki and browsers; OpenSSL 3.0 compares it literally',
  },
  {
    variant: 'leaf-validity-edges',
    when: (_q, t) => t === T_NOW + 86400,
    why: 'RFC 5280 §4.1.2.5: the validity period includes notAfter; OpenSSL treats the notAfter second itself as expired',
  },
  {
    variant: 'cross-signed',
    when: () => true,
    why: 'path building tries the other candidate issuer (RFC 4158); OpenSSL 3.0 takes the first untrusted certificate with the issuer name and does not backtrack',
  },
];

const pki = new OpensslPki();
const T = T_NOW; // 2030-01-01, seconds
const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'];

interface Variant {
  name: string;
  depth?: 0 | 1 | 2;
  rootExt?: string[];
  interExt?: string[];
  /** Extensions of the intermediate directly above the leaf when depth is 2 (the lower one). */
  lowerExt?: string[];
  leafExt?: (i: number) => string[];
  leafSan?: boolean;
  keys?: { root?: PkiKeyType; inter?: PkiKeyType; leaf?: PkiKeyType };
  sig?: 'pss' | 'sha384' | 'sha512';
  leafDates?: [string, string];
  interDates?: [string, string];
  breakLeaf?: boolean;
  breakInter?: boolean;
  wrongRoot?: boolean;
  omitInter?: boolean;
  crossSigned?: boolean;
  /** Present the cross-certificate after the one that chains to the trusted root. */
  crossSecond?: boolean;
  selfIssued?: boolean;
  /** Extra queries beyond the standard five. */
  extraQueries?: (i: number) => string[];
  /** Check times (seconds); default [T]. */
  times?: (i: number) => number[];
}

const san = (i: number): string => `subjectAltName=DNS:svc${i}.example.test,DNS:*.wild${i}.example.test,IP:10.${i}.0.1,IP:fd00::${i}:1`;

const variants: Variant[] = [
  { name: 'ok', extraQueries: (i) => [`SVC${i}.Example.TEST`, `svc${i}.example.test.`, `x.y.wild${i}.example.test`, `wild${i}.example.test`, `10.${i}.0.2`, `fd00:0:0:0:0:0:${i}:1`, `fd00::${i}:2`, `svc${i}.example.tes`, `other.example.test`] },
  { name: 'ok-depth0', depth: 0 },
  { name: 'ok-depth2', depth: 2 },
  { name: 'rsa-root', keys: { root: 'rsa' } },
  { name: 'rsa-chain-sha512', keys: { root: 'rsa', inter: 'rsa', leaf: 'rsa' }, sig: 'sha512' },
  { name: 'rsa-pss', keys: { root: 'rsa', inter: 'rsa' }, sig: 'pss' },
  { name: 'p384', keys: { root: 'ec-p384', inter: 'ec-p384', leaf: 'ec-p384' }, sig: 'sha384' },
  { name: 'ed25519', keys: { root: 'ed25519', inter: 'ed25519', leaf: 'ed25519' } },
  { name: 'mixed-keys', keys: { root: 'ed25519', inter: 'rsa', leaf: 'ec-p384' } },
  { name: 'ecdsa-sha512', sig: 'sha512' },
  { name: 'leaf-expired', leafDates: ['20200101000000Z', '20291231235959Z'] },
  { name: 'leaf-not-yet-valid', leafDates: ['20300101000001Z', '20400101000000Z'] },
  { name: 'leaf-validity-edges', leafDates: ['20300101000000Z', '20300102000000Z'], times: () => [T - 1, T, T + 86400, T + 86401] },
  { name: 'inter-expired', interDates: ['20200101000000Z', '20291201000000Z'] },
  { name: 'inter-not-yet-valid', interDates: ['20300201000000Z', '20400101000000Z'] },
  { name: 'leaf-eku-client', leafExt: () => ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'] },
  { name: 'leaf-eku-absent', leafExt: () => ['keyUsage=critical,digitalSignature'] },
  { name: 'leaf-eku-any', leafExt: () => ['extendedKeyUsage=anyExtendedKeyUsage'] },
  { name: 'leaf-eku-both', leafExt: () => ['extendedKeyUsage=clientAuth,serverAuth'] },
  { name: 'leaf-eku-codesign', leafExt: () => ['extendedKeyUsage=codeSigning'] },
  { name: 'inter-eku-client', interExt: [...CA, 'extendedKeyUsage=clientAuth'] },
  { name: 'inter-eku-server', interExt: [...CA, 'extendedKeyUsage=serverAuth'] },
  { name: 'inter-not-ca', interExt: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,keyCertSign'] },
  { name: 'inter-no-bc', interExt: ['keyUsage=critical,keyCertSign'] },
  { name: 'inter-no-bc-no-ku', interExt: ['subjectKeyIdentifier=hash'] },
  { name: 'inter-no-certsign', interExt: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature,cRLSign'] },
  { name: 'inter-no-ku', interExt: ['basicConstraints=critical,CA:TRUE'] },
  { name: 'pathlen0-violated', depth: 2, interExt: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] },
  { name: 'pathlen1-ok', depth: 2, interExt: ['basicConstraints=critical,CA:TRUE,pathlen:1', 'keyUsage=critical,keyCertSign'] },
  { name: 'pathlen0-lower-ok', depth: 2, lowerExt: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] },
  { name: 'root-pathlen0-violated', rootExt: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] },
  { name: 'root-pathlen0-depth0-ok', depth: 0, rootExt: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] },
  { name: 'self-issued-under-pathlen0', selfIssued: true, interExt: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] },
  { name: 'nc-permitted-ok', interExt: [...CA, 'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:10.0.0.0/255.0.0.0,permitted;IP:fd00::/ff00::'] },
  { name: 'nc-permitted-dns-outside', interExt: [...CA, 'nameConstraints=critical,permitted;DNS:other.test'] },
  { name: 'nc-permitted-dot-subdomains', interExt: [...CA, 'nameConstraints=critical,permitted;DNS:.example.test'] },
  { name: 'nc-excluded-dns', interExt: [...CA, 'nameConstraints=critical,excluded;DNS:example.test'] },
  { name: 'nc-excluded-other-dns', interExt: [...CA, 'nameConstraints=critical,excluded;DNS:example.org'] },
  { name: 'nc-permitted-ip-outside', interExt: [...CA, 'nameConstraints=critical,permitted;IP:192.168.0.0/255.255.0.0'] },
  { name: 'nc-excluded-ip6', interExt: [...CA, 'nameConstraints=critical,excluded;IP:fd00::/ffff::'] },
  { name: 'nc-excluded-ip4-host', interExt: [...CA, 'nameConstraints=critical,excluded;IP:10.0.0.1/255.255.255.255'] },
  { name: 'nc-excluded-wildcard', interExt: [...CA, 'nameConstraints=critical,excluded;DNS:a.wildN.example.test'] },
  { name: 'root-eku-client', rootExt: [...CA, 'extendedKeyUsage=clientAuth'] },
  { name: 'root-eku-server', rootExt: [...CA, 'extendedKeyUsage=serverAuth,clientAuth'] },
  { name: 'nc-root-permitted', rootExt: [...CA, 'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:10.0.0.0/255.0.0.0,permitted;IP:fd00::/ff00::'] },
  { name: 'nc-root-excluded', rootExt: [...CA, 'nameConstraints=critical,excluded;DNS:example.test'] },
  { name: 'leaf-unknown-critical', leafExt: () => [...LEAF, '1.3.6.1.4.1.99999.7=critical,ASN1:NULL'] },
  { name: 'leaf-unknown-noncritical', leafExt: () => [...LEAF, '1.3.6.1.4.1.99999.7=ASN1:NULL'] },
  { name: 'leaf-crit-policies', leafExt: () => [...LEAF, 'certificatePolicies=critical,2.23.140.1.2.1'] },
  { name: 'leaf-is-ca', leafExt: () => ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature,keyCertSign'] },
  { name: 'leaf-ku-keyenc', leafExt: () => ['keyUsage=critical,keyEncipherment', 'extendedKeyUsage=serverAuth'] },
  { name: 'leaf-ku-both', leafExt: () => ['keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth'] },
  { name: 'leaf-cn-only', leafSan: false },
  { name: 'broken-leaf-signature', breakLeaf: true },
  { name: 'broken-inter-signature', breakInter: true },
  { name: 'broken-rsa-signature', keys: { root: 'rsa', inter: 'rsa' }, breakLeaf: true },
  { name: 'broken-ed25519-signature', keys: { inter: 'ed25519' }, breakLeaf: true },
  { name: 'wrong-root', wrongRoot: true },
  { name: 'missing-intermediate', omitInter: true },
  { name: 'cross-signed', crossSigned: true },
  { name: 'cross-signed-second', crossSigned: true, crossSecond: true },
];

interface Case {
  variant: string;
  query: string;
  time: number;
  rootFile: string;
  rootDer: Uint8Array[];
  untrustedFile: string | null;
  chain: Uint8Array[];
  leafFile: string;
}

const isIp = (q: string): boolean => /^[0-9.]+$/.test(q) || q.includes(':');

function build(): Case[] {
  for (const t of ['ec-p256', 'ec-p384', 'ed25519', 'rsa'] as const) {
    pki.key(`root-${t}`, t);
    pki.key(`inter-${t}`, t);
    pki.key(`leaf-${t}`, t);
  }
  pki.key('inter2-ec-p256', 'ec-p256');
  const otherRoot = pki.issue('other-root', { subj: '/CN=Other Root', key: 'root-ec-p256', ext: CA });
  const cases: Case[] = [];
  variants.forEach((v, i) => {
    const kr = v.keys?.root ?? 'ec-p256';
    const ki = v.keys?.inter ?? 'ec-p256';
    const kl = v.keys?.leaf ?? 'ec-p256';
    const depth = v.depth ?? 1;
    const root = pki.issue(`r${i}`, { subj: `/CN=Root ${i}/O=Diff`, key: `root-${kr}`, ext: v.rootExt ?? CA, sig: v.sig });
    const inters: PkiCert[] = [];
    let issuer = root;
    for (let d = 0; d < depth; d++) {
      const lower = d === depth - 1 && depth === 2;
      const ext = (lower ? v.lowerExt : d === 0 ? v.interExt : undefined) ?? [...CA, 'authorityKeyIdentifier=keyid'];
      const key = d === 0 ? `inter-${ki}` : 'inter2-ec-p256';
      const c = pki.issue(`i${i}-${d}`, { subj: `/CN=Inter ${i}.${d}/O=Diff`, issuer, key, ext: ext.map((e) => e.replace('wildN', `wild${i}`)), sig: v.sig, start: v.interDates?.[0], end: v.interDates?.[1] });
      inters.unshift(c);
      issuer = c;
    }
    if (v.selfIssued) {
      // A self-issued certificate (same subject, new key) below the intermediate.
      const si = pki.issue(`si${i}`, { subj: `/CN=Inter ${i}.0/O=Diff`, issuer, key: 'inter2-ec-p256', ext: CA });
      inters.unshift(si);
      issuer = si;
    }
    let cross: PkiCert | null = null;
    if (v.crossSigned) {
      // The intermediate, also certified by another root; presented first.
      cross = pki.issue(`x${i}`, { subj: `/CN=Inter ${i}.0/O=Diff`, issuer: otherRoot, key: `inter-${ki}`, ext: CA });
    }
    const leafExt = v.leafExt ? v.leafExt(i) : LEAF;
    const leafSubj = v.leafSan === false ? `/CN=svc${i}.example.test` : `/CN=leaf${i}`;
    const leaf = pki.issue(`l${i}`, { subj: leafSubj, issuer, key: `leaf-${kl}`, ext: v.leafSan === false ? leafExt : [...leafExt, san(i)], sig: v.sig, start: v.leafDates?.[0], end: v.leafDates?.[1] });
    let leafDer = leaf.der;
    let leafFile = leaf.file;
    if (v.breakLeaf) {
      leafDer = breakSignature(leaf.der);
      leafFile = pki.writeCert(`l${i}-broken.pem`, leafDer);
    }
    let interDers = inters.map((c) => c.der);
    let interFiles: (PkiCert | string)[] = [...inters];
    if (v.breakInter) {
      interDers = inters.map((c) => breakSignature(c.der));
      interFiles = inters.map((c, k) => pki.writeCert(`i${i}-${k}-broken.pem`, interDers[k]!));
    }
    if (cross) {
      interDers = v.crossSecond ? [...interDers, cross.der] : [cross.der, ...interDers];
      interFiles = v.crossSecond ? [...interFiles, cross] : [cross, ...interFiles];
    }
    if (v.omitInter) {
      interDers = [];
      interFiles = [];
    }
    const untrustedFile = interFiles.length ? pki.bundle(`u${i}.pem`, interFiles) : null;
    const trust = v.wrongRoot ? otherRoot : root;
    const queries = [`svc${i}.example.test`, `a.wild${i}.example.test`, `nope${i}.example.test`, `10.${i}.0.1`, `fd00::${i}:1`, ...(v.extraQueries?.(i) ?? [])];
    const times = v.times?.(i) ?? [T];
    for (const time of times)
      for (const query of queries)
        cases.push({ variant: v.name, query, time, rootFile: trust.file, rootDer: [trust.der], untrustedFile, chain: [leafDer, ...interDers], leafFile });
  });
  return cases;
}

test('Petrel and OpenSSL agree on generated chains (differences only where Petrel is deliberately stricter)', async () => {
  const t0 = Date.now();
  const cases = build();
  const tGen = Date.now() - t0;
  assert.ok(cases.length >= 200, `${cases.length} cases`);
  const ref = await mapLimit(cases, 8, (c) =>
    pki.verify([
      '-attime', String(c.time),
      '-purpose', 'sslserver',
      '-CAfile', c.rootFile,
      ...(c.untrustedFile ? ['-untrusted', c.untrustedFile] : []),
      isIp(c.query) ? '-verify_ip' : '-verify_hostname', c.query,
      c.leafFile,
    ]),
  );
  const tRef = Date.now() - t0 - tGen;
  const mismatches: string[] = [];
  let accepted = 0;
  let stricter = 0;
  let beyond = 0;
  const stricterSeen = new Set<string>();
  const beyondSeen = new Set<string>();
  for (const p of providers) {
    const verifiers = new Map<Uint8Array, WebPkiVerifier>();
    cases.forEach((c, k) => {
      let v = verifiers.get(c.rootDer[0]!);
      if (!v) verifiers.set(c.rootDer[0]!, (v = new WebPkiVerifier({ roots: c.rootDer })));
      const err = v.verifyServer(c.chain, c.query, c.time * 1000, p);
      const ours = err === null;
      const theirs = ref[k]!.ok;
      const kind = certificateErrorOf(err)?.kind;
      const label = `${p.name} ${c.variant} ${c.query} @${c.time}: petrel ${ours ? 'accepts' : `rejects (${kind}: ${err?.message})`}, openssl ${theirs ? 'accepts' : `rejects (${ref[k]!.out.split('\n').slice(-2).join(' | ')})`}`;
      if (ours === theirs) {
        if (ours) accepted++;
        return;
      }
      const s = STRICTER[c.variant];
      if (theirs && !ours && s && s.kind === kind) {
        stricter++;
        stricterSeen.add(c.variant);
        return;
      }
      const b = BEYOND_OPENSSL.find((x) => x.variant === c.variant && x.when(c.query, c.time));
      if (ours && !theirs && b) {
        beyond++;
        beyondSeen.add(b.variant);
        return;
      }
      mismatches.push(label);
    });
  }
  console.log(
    `  ${cases.length} cases × ${providers.length} providers: ${accepted} accepted by both, ${stricter} documented stricter rejections, ${beyond} documented acceptances beyond OpenSSL; generation ${tGen} ms, openssl ${tRef} ms`,
  );
  assert.equal(mismatches, [], mismatches.slice(0, 20).join('\n'));
  // Each listed stricter choice is exercised (OpenSSL accepted at least one of its cases).
  assert.equal([...stricterSeen].sort(), Object.keys(STRICTER).sort());
  assert.equal([...beyondSeen].sort(), BEYOND_OPENSSL.map((b) => b.variant).sort());
  assert.ok(accepted >= 50 * providers.length, `only ${accepted} accepted`);
});

test.after(() => pki.cleanup());
test.run();
