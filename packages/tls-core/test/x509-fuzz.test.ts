/**
 * Fuzz test of the X.509 parser and verifier: systematic mutations of real certificates (every
 * single-bit flip, every truncation, every DER length octet changed) and seeded random mutation
 * (test/fuzz engine) for a bounded time. The parser may only throw CertificateError; the verifier
 * may only return null or a ProtocolViolation; the PEM helpers may only throw CertificateError.
 * SEED=n reproduces a run; X509_FUZZ_SECONDS raises the time per target.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import { defineTarget, describeFailure, fuzz } from '../../../test/fuzz/engine.js';
import { ProtocolViolation } from '../src/errors.js';
import { signatureAlgorithmOf } from '../src/x509/algorithms.js';
import { parseCertificate } from '../src/x509/cert.js';
import { nameConstraintViolation } from '../src/x509/constraints.js';
import { CertificateError } from '../src/x509/errors.js';
import { certificateMatchesName, presentedNames } from '../src/x509/identity.js';
import { loadPemChain, loadPemKey } from '../src/x509/pem.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';
import { WebPkiVerifier } from '../src/x509/verifier.js';
import { OpensslPki, T_NOW } from './x509-openssl.js';

const SECONDS = Number(process.env.X509_FUZZ_SECONDS) || 1;
const SEED = Number(process.env.SEED) || 20261123;
const NOW = T_NOW * 1000;

const pki = new OpensslPki();
const CA = ['basicConstraints=critical,CA:TRUE,pathlen:3', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const root = pki.issue('root', { subj: '/CN=Fuzz Root/O=Petrel/C=DE', ext: CA });
const inter = pki.issue('inter', {
  subj: '/CN=Fuzz Inter/O=Petrel',
  issuer: root,
  ext: [
    ...CA,
    'authorityKeyIdentifier=keyid',
    'nameConstraints=critical,permitted;DNS:example.test,permitted;IP:10.0.0.0/255.0.0.0,permitted;IP:fd01::/ffff::,excluded;DNS:bad.example.test,excluded;IP:fd00::/ffff::,permitted;email:example.test,permitted;dirName:dn_sect,excluded;URI:.bad.test',
    '[dn_sect]',
    'O=Petrel',
  ],
});
const leaf = pki.issue('leaf', {
  subj: '/O=Petrel/CN=leaf',
  issuer: inter,
  ext: [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    'subjectAltName=DNS:example.test,DNS:*.w.example.test,IP:10.1.2.3,IP:fd01::1,email:a@example.test,URI:https://example.test/,otherName:1.2.3.4;UTF8:x,RID:1.2.3',
    'authorityKeyIdentifier=keyid,issuer',
    'subjectKeyIdentifier=hash',
    'certificatePolicies=2.23.140.1.2.1',
    '1.3.6.1.4.1.99999.7=ASN1:NULL',
  ],
});
pki.key('rsa', 'rsa');
const pss = pki.issue('pss', { subj: '/CN=pss', key: 'rsa', ext: CA, sig: 'pss' });
const seedsCerts: Uint8Array[] = [leaf.der, inter.der, root.der, pss.der];
for (const keyType of ['ed25519', 'ec-p384'] as const) seedsCerts.push(generateSelfSigned({ provider: providers[0]!, names: ['a.test', '::1'], keyType, nowMs: NOW }).certDer);

/** Parses and then runs the code that consumes a parsed certificate. Throws only CertificateError. */
function exercise(input: Uint8Array): void {
  const c = parseCertificate(input);
  signatureAlgorithmOf(c.signatureAlgorithm);
  presentedNames(c);
  certificateMatchesName(c, 'example.test');
  certificateMatchesName(c, 'fd01::1');
  if (c.nameConstraints) nameConstraintViolation(c.nameConstraints, c);
}

function parseOnlyTypedErrors(input: Uint8Array, what: string): void {
  try {
    exercise(input);
  } catch (e) {
    if (!(e instanceof CertificateError)) {
      const hex = Buffer.from(input).toString('hex');
      assert.unreachable(`${what}: ${(e as Error)?.stack ?? String(e)}\ninput: ${hex}`);
    }
  }
}

/** Offsets of every DER length octet (first octet of each length field), walking nested elements. */
function lengthOffsets(b: Uint8Array, start = 0, end = b.length, depth = 0, out: number[] = []): number[] {
  let p = start;
  while (p + 2 <= end && depth < 40) {
    const tag = b[p]!;
    let len = b[p + 1]!;
    let hdr = 2;
    out.push(p + 1);
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3 || p + 2 + n > end) return out;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[p + 2 + i]!;
      hdr += n;
    }
    const vs = p + hdr;
    if (vs + len > end) return out;
    if (tag & 0x20) lengthOffsets(b, vs, vs + len, depth + 1, out);
    else if ((tag === 0x04 || tag === 0x03) && len > 2) lengthOffsets(b, tag === 0x03 ? vs + 1 : vs, vs + len, depth + 1, out);
    p = vs + len;
  }
  return out;
}

test('parser: every bit flip, truncation and length change of real certificates → only CertificateError', () => {
  let n = 0;
  for (const [k, cert] of seedsCerts.entries()) {
    for (let i = 0; i < cert.length * 8; i++) {
      const m = new Uint8Array(cert);
      m[i >> 3] ^= 0x80 >> (i & 7);
      parseOnlyTypedErrors(m, `cert ${k} bit ${i}`);
      n++;
    }
    for (let len = 0; len < cert.length; len++) {
      parseOnlyTypedErrors(cert.subarray(0, len), `cert ${k} truncated to ${len}`);
      n++;
    }
    const offs = lengthOffsets(cert);
    assert.ok(offs.length > 50, `found ${offs.length} length octets`);
    for (const off of offs) {
      for (const v of [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0xff, (cert[off]! + 1) & 0xff, (cert[off]! - 1) & 0xff]) {
        const m = new Uint8Array(cert);
        m[off] = v;
        parseOnlyTypedErrors(m, `cert ${k} length octet at ${off} = ${v}`);
        n++;
      }
      // Insert / delete a byte right after the length field.
      const ins = new Uint8Array(cert.length + 1);
      ins.set(cert.subarray(0, off + 1));
      ins[off + 1] = 0;
      ins.set(cert.subarray(off + 1), off + 2);
      parseOnlyTypedErrors(ins, `cert ${k} byte inserted at ${off + 1}`);
      const del = new Uint8Array(cert.length - 1);
      del.set(cert.subarray(0, off + 1));
      del.set(cert.subarray(off + 2), off + 1);
      parseOnlyTypedErrors(del, `cert ${k} byte deleted at ${off + 1}`);
      n += 2;
    }
  }
  // The unmodified seeds parse.
  for (const c of seedsCerts) exercise(c);
  assert.ok(n > 20000, `${n} inputs`);
});

test('parser: random mutation (seeded, time-bounded) → only CertificateError', () => {
  const target = defineTarget({
    name: 'x509-cert',
    seeds: () => seedsCerts,
    run: exercise,
    acceptable: (e) => e instanceof CertificateError,
  });
  const stats = fuzz(target, { seed: SEED, seconds: SECONDS, maxInputMs: 500 });
  assert.ok(!stats.failure, stats.failure && describeFailure(stats.failure));
  assert.ok(stats.inputs > 1000, `${stats.inputs} inputs`);
  assert.ok(stats.ok > 0 && stats.rejected > 0, `ok ${stats.ok}, rejected ${stats.rejected}`);
});

for (const p of providers) {
  test(`${p.name}: verifier on mutated chains returns null or a ProtocolViolation, never throws`, () => {
    const v = new WebPkiVerifier({ roots: [root.der] });
    assert.is(v.verifyServer([leaf.der, inter.der], 'example.test', NOW, p), null, 'the unmodified chain verifies');
    const rng = new Rng(SEED);
    const deadline = Date.now() + SECONDS * 1000;
    let n = 0;
    let accepted = 0;
    while (Date.now() < deadline || n < 300) {
      const which = rng.int(2);
      const src = which === 0 ? leaf.der : inter.der;
      const m = new Uint8Array(src);
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips; i++) m[rng.int(m.length)] ^= 1 << rng.int(8);
      const chain = which === 0 ? [m, inter.der] : [leaf.der, m];
      let r: ProtocolViolation | null;
      try {
        r = v.verifyServer(chain, rng.pick(['example.test', '10.1.2.3', 'x.w.example.test', 'other.test']), NOW, p);
        v.verifyClient(chain, NOW, p);
      } catch (e) {
        assert.unreachable(`verifier threw ${(e as Error)?.stack}\ninput: ${Buffer.from(m).toString('hex')}`);
        return;
      }
      if (r === null) accepted++;
      else assert.ok(r instanceof ProtocolViolation && r.cause instanceof CertificateError);
      n++;
      if (n > 200_000) break;
    }
    // A flipped bit inside the signed part or the signature must not verify; only flips the
    // signature does not cover (the outer length is covered by parsing) may remain acceptable.
    assert.ok(accepted < n / 10, `${accepted} of ${n} mutated chains accepted`);
  });
}

test('PEM helpers: mutated PEM text → only CertificateError', () => {
  const text = `${leaf.pem}${inter.pem}${pki.keyPem('rsa')}`;
  const rng = new Rng(SEED + 1);
  for (let i = 0; i < 3000; i++) {
    const chars = text.split('');
    const edits = 1 + rng.int(4);
    for (let j = 0; j < edits; j++) {
      const at = rng.int(chars.length);
      const op = rng.int(3);
      if (op === 0) chars[at] = String.fromCharCode(rng.int(128));
      else if (op === 1) chars.splice(at, 1);
      else chars.splice(at, 0, rng.pick(['-', '=', '\n', 'A', ' ', '-----END CERTIFICATE-----']));
    }
    const s = rng.chance(0.1) ? chars.join('').slice(0, rng.int(text.length)) : chars.join('');
    for (const f of [loadPemChain, loadPemKey]) {
      try {
        const r = f(s);
        if (f === loadPemChain) for (const d of r as Uint8Array[]) parseOnlyTypedErrors(d, 'PEM-decoded cert');
      } catch (e) {
        if (!(e instanceof CertificateError)) assert.unreachable(`${f.name} threw ${(e as Error)?.stack}`);
      }
    }
  }
});

test.after(() => pki.cleanup());
test.run();
