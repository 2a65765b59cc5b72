/**
 * The fuzz target registry: every parser of Petrel, one entry each. `pnpm fuzz` runs them all (or
 * --target NAME), test/fuzz-smoke.test.ts runs each briefly, test/fuzz-corpus.test.ts replays
 * test/fuzz/corpus/<name>/*.bin.
 *
 * Adding a target: write a `defineTarget({ name, seeds, run, acceptable?, check? })` (see
 * FuzzTarget in ./engine.ts) and append it to `targets` below. Seeds are valid inputs from real
 * encoders; corpus files (test/fuzz/corpus/<name>/*.bin) are added to them automatically.
 */
import { DerError, DerReader, derEncode, oidToString, pemDecode, pemEncode, Tag } from '../../packages/tls-core/src/util/der.js';
import { certificateSpki } from '../../packages/tls-core/src/x509/spki.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import { signatureAlgorithmOf } from '../../packages/tls-core/src/x509/algorithms.js';
import { parseCertificate } from '../../packages/tls-core/src/x509/cert.js';
import { nameConstraintViolation } from '../../packages/tls-core/src/x509/constraints.js';
import { CertificateError } from '../../packages/tls-core/src/x509/errors.js';
import { certificateMatchesName, presentedNames } from '../../packages/tls-core/src/x509/identity.js';
import { generateSelfSigned } from '../../packages/tls-core/src/x509/selfsigned.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { quicTargets } from './targets-quic.js';
import { quicConnTargets } from './targets-quic-conn.js';
import { quicInitialConnTargets } from './targets-quic-initial.js';
import { tlsTargets } from './targets-tls.js';
import { h3Targets } from './targets-h3.js';

const isDerError = (e: unknown): boolean => e instanceof DerError;
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** Walks every element of a DER blob recursively (constructed tags entered, OIDs decoded). */
function derWalk(buf: Uint8Array, depth = 0): number {
  if (depth > 64) return 0;
  const r = new DerReader(buf);
  let n = 0;
  while (!r.done) {
    const tlv = r.read();
    n++;
    if (tlv.tag === Tag.OID) oidToString(tlv.value);
    else if (tlv.tag & 0x20) n += derWalk(tlv.value, depth + 1);
    else if ((tlv.tag === Tag.BIT_STRING || tlv.tag === Tag.OCTET_STRING) && tlv.value.length > 1) {
      // Encapsulated DER is common (SPKI keys, extensions): try it, errors are fine.
      try {
        n += derWalk(tlv.tag === Tag.BIT_STRING ? tlv.value.subarray(1) : tlv.value, depth + 1);
      } catch (e) {
        if (!(e instanceof DerError)) throw e;
      }
    }
  }
  return n;
}

/** A small hand-built DER structure, so the target has seeds without any file. */
function builtDer(): Uint8Array {
  const oid = (arcs: number[]) => {
    const out = [40 * arcs[0]! + arcs[1]!];
    for (const a of arcs.slice(2)) {
      const parts = [a & 0x7f];
      for (let x = Math.floor(a / 128); x > 0; x = Math.floor(x / 128)) parts.unshift((x & 0x7f) | 0x80);
      out.push(...parts);
    }
    return derEncode(Tag.OID, Uint8Array.from(out));
  };
  const seq = (...xs: Uint8Array[]) => derEncode(Tag.SEQUENCE, Uint8Array.from(xs.flatMap((x) => [...x])));
  return seq(
    seq(oid([1, 2, 840, 10045, 2, 1]), oid([1, 2, 840, 10045, 3, 1, 7])),
    derEncode(Tag.BIT_STRING, Uint8Array.from([0, 4, ...new Array(64).fill(7)])),
    derEncode(Tag.INTEGER, Uint8Array.from([0x00, 0x80, 1, 2])),
    derEncode(Tag.UTF8String, bytes('petrel')),
    derEncode(0xa0, seq(derEncode(Tag.BOOLEAN, Uint8Array.of(0xff)), derEncode(Tag.NULL, new Uint8Array(0)))),
    derEncode(Tag.OCTET_STRING, new Uint8Array(300).fill(0x41)),
  );
}

export const derTarget = defineTarget({
  name: 'der',
  description: 'DerReader walk (read/enter/optional/end) + oidToString over nested DER',
  seeds: () => [builtDer()],
  run: (input) => {
    derWalk(input);
    // The strict API on the same bytes: a SEQUENCE with optional parts and end().
    const r = new DerReader(input);
    if (!r.done && r.peekTag() === Tag.SEQUENCE) {
      const s = r.enter(Tag.SEQUENCE);
      s.optional(0xa0);
      while (!s.done) s.read();
      s.end();
    }
  },
  acceptable: isDerError,
});

export const pemTarget = defineTarget({
  name: 'pem',
  description: 'pemDecode over text, then a DER walk of each block; round trip through pemEncode',
  seeds: () => [bytes(pemEncode('CERTIFICATE', builtDer()) + pemEncode('PUBLIC KEY', builtDer().subarray(0, 40)))],
  run: (input) => {
    const blocks = pemDecode(latin1(input));
    for (const b of blocks) {
      const again = pemDecode(pemEncode(b.label, b.der));
      if (again.length !== 1 || Buffer.compare(again[0]!.der, b.der) !== 0) throw new Error('pemEncode/pemDecode round trip differs');
      try {
        derWalk(b.der);
      } catch (e) {
        if (!(e instanceof DerError)) throw e;
      }
    }
  },
  acceptable: isDerError,
});

export const spkiTarget = defineTarget({
  name: 'x509-spki',
  description: 'certificateSpki (tbsCertificate walk to subjectPublicKeyInfo)',
  seeds: () => [],
  run: (input) => {
    const spki = certificateSpki(input);
    if (spki.length === 0) throw new Error('empty SPKI');
  },
  acceptable: isDerError,
});

export const x509CertTarget = defineTarget({
  name: 'x509-cert',
  description: 'parseCertificate + the code that consumes a parsed certificate (algorithms, names, name constraints)',
  // Corpus: test/fuzz/corpus/x509-cert (openssl-made certificates); plus fresh self-signed ones.
  seeds: () =>
    (['ec-p256', 'ed25519'] as const).map((keyType) => generateSelfSigned({ provider: nodeProvider, names: ['a.test', '127.0.0.1', '::1'], keyType, nowMs: Date.UTC(2026, 0, 1) }).certDer),
  run: (input) => {
    const c = parseCertificate(input);
    signatureAlgorithmOf(c.signatureAlgorithm);
    presentedNames(c);
    certificateMatchesName(c, 'a.test');
    certificateMatchesName(c, 'fd01::1');
    if (c.nameConstraints) nameConstraintViolation(c.nameConstraints, c);
  },
  acceptable: (e) => e instanceof CertificateError,
});

/** Every registered target, in the order `pnpm fuzz` runs them. */
export const targets: FuzzTarget[] = [derTarget, pemTarget, spkiTarget, x509CertTarget, ...quicTargets, ...quicConnTargets, ...tlsTargets, ...h3Targets, ...quicInitialConnTargets];

export function findTarget(name: string): FuzzTarget | undefined {
  return targets.find((t) => t.name === name);
}
