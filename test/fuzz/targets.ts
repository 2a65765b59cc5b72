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
export const targets: FuzzTarget[] = [derTarget, pemTarget, spkiTarget, x509CertTarget, ...quicTargets, ...quicConnTargets, ...tlsTargets, ...h3Targets];

export function findTarget(name: string): FuzzTarget | undefined {
  return targets.find((t) => t.name === name);
}

// ---- QUIC connections (quic-sim): whole Endpoint / Connection state machines --------------------
// Inputs: up to 4 chunks, each `u16 length | plaintext frames`; every chunk becomes one Initial
// packet (protected with the real Initial keys, padded to 1200 bytes) fed to a fresh connection, so
// the mutations reach the frame parser, CRYPTO reassembly and the TLS state machine behind it. Then
// timers run on a virtual clock. Strict: any exception, 'error' event or local INTERNAL_ERROR close
// is a failure (peer input only ever closes with a protocol error code).
import { concat as connFuzzConcat } from './mutate.js';
import { Endpoint as QuicEndpoint } from '../../packages/quic/src/endpoint.js';
import type { QuicConnection as QuicConn } from '../../packages/quic/src/api.js';
import { PacketHeader as ConnFuzzHeader, PacketType as ConnFuzzPacketType, parseHeader as connFuzzParseHeader, writeLongHeader } from '../../packages/quic/src/header.js';
import { initialKeys as connFuzzInitialKeys } from '../../packages/quic/src/initial.js';
import { sealPacket } from '../../packages/quic/src/packet.js';
import { QUIC_V1 as CONN_FUZZ_V1 } from '../../packages/quic/src/version.js';
import { ALPN, SERVER_ADDR, CLIENT_ADDR, SIM_EPOCH, SimpleHost, captureInitialPayloads, testIdentity, watchedFactory } from '../support/quic-pair.js';

const connFuzzSeeds = { cache: null as ReturnType<typeof captureInitialPayloads> | null };
/** A real handshake's Initial payloads and the client's CIDs (its transport parameters name its SCID). */
function connFuzzCaptured(): ReturnType<typeof captureInitialPayloads> {
  connFuzzSeeds.cache ??= captureInitialPayloads(nodeProvider, 7);
  return connFuzzSeeds.cache;
}

function connFuzzChunks(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o + 2 <= input.length && out.length < 4) {
    const n = (input[o]! << 8) | input[o + 1]!;
    o += 2;
    out.push(input.subarray(o, Math.min(input.length, o + n, o + 1400)));
    o += n;
  }
  return out;
}

function connFuzzFrame(payloads: Uint8Array[]): Uint8Array {
  return connFuzzConcat(...payloads.flatMap((p) => [Uint8Array.of(p.length >> 8, p.length & 0xff), p]));
}

function connFuzzInitial(keysDcid: Uint8Array, isServer: boolean, dcid: Uint8Array, scid: Uint8Array, pn: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1600);
  const pnOffset = writeLongHeader(buf, 0, ConnFuzzPacketType.Initial, CONN_FUZZ_V1, dcid, scid, null, pn, 2, 2);
  buf.set(payload, pnOffset + 2);
  const keys = connFuzzInitialKeys(nodeProvider, CONN_FUZZ_V1, keysDcid, isServer).write;
  const end = sealPacket(keys, buf, 0, pnOffset, 2, 2, pnOffset + 2 + payload.length, pn, 1200);
  return buf.slice(0, end);
}

interface ConnFuzzState {
  outcome: string;
}

/** Runs a connection's timers and output for a bounded number of rounds; throws on any sign of a bug. */
function connFuzzPump(conn: QuicConn | null, io: { pollTransmit(now: number): unknown; nextTimeout(): number | null; handleTimeout(now: number): void }, now: number, thrown: unknown[]): ConnFuzzState {
  for (let round = 0; round < 12; round++) {
    for (let i = 0; i < 64 && io.pollTransmit(now); i++);
    const t = io.nextTimeout();
    if (t === null) break;
    now = Math.max(now, t === -Infinity ? now : t);
    io.handleTimeout(now);
  }
  if (thrown.length > 0) throw thrown[0];
  let outcome = 'open';
  for (let i = 0; conn && i < 1000; i++) {
    const e = conn.pollEvent();
    if (!e) break;
    if (e.type === 'error') throw new Error(`connection 'error' event: ${String((e.error as Error)?.stack ?? e.error)}`);
    if (e.type === 'closed') {
      if (!e.info.remote && !e.info.application && e.info.code === 0x01 && e.info.kind === 'close') throw new Error(`local INTERNAL_ERROR close: ${e.info.reason}`);
      // A peer's CONNECTION_CLOSE carries any code the input chose: one outcome class for all of them.
      outcome = e.info.remote ? `closed:${e.info.kind}:peer` : `closed:${e.info.kind}:${e.info.code.toString(16)}`;
    }
  }
  return { outcome };
}

const CONN_FUZZ_SCID = Uint8Array.from([0x5c, 0x1d, 0x5c, 0x1d, 0x5c, 0x1d, 0x5c, 0x1d]);

export const quicConnServerTarget = defineTarget<ConnFuzzState>({
  name: 'quic-conn-server-initial',
  description: 'server Endpoint + Connection fed client Initial packets with mutated frames (ClientHello CRYPTO, ACK, PADDING, ...)',
  seeds: () => [connFuzzFrame(connFuzzCaptured().up.slice(0, 2)), connFuzzFrame(connFuzzCaptured().up.slice(0, 1))],
  run: (input) => {
    const thrown: unknown[] = [];
    const id = testIdentity(nodeProvider);
    const ep = new QuicEndpoint({
      provider: nodeProvider,
      server: { provider: nodeProvider, tls: { identity: { chain: [id.leaf.certDer], key: id.leaf.keyDer }, alpn: [ALPN] }, maxIdleTimeout: 2000 },
      factory: watchedFactory((e) => thrown.push(e)),
      onError: (e) => thrown.push(e),
    });
    let now = SIM_EPOCH;
    let conn: QuicConn | null = null;
    const { clientDcid, clientScid } = connFuzzCaptured();
    connFuzzChunks(input).forEach((payload, pn) => {
      ep.receive(connFuzzInitial(clientDcid, false, clientDcid, clientScid, pn, payload), { ...CLIENT_ADDR }, ++now);
      for (let e = ep.pollEvent(); e; e = ep.pollEvent()) conn = e.connection;
    });
    return connFuzzPump(conn, ep, now, thrown);
  },
  strict: true,
  signature: (s) => s.outcome,
  maxLen: 4200,
});

export const quicConnClientTarget = defineTarget<ConnFuzzState>({
  name: 'quic-conn-client-initial',
  description: 'client Connection fed server Initial packets with mutated frames (ServerHello CRYPTO, ACK, ...)',
  seeds: () => [connFuzzFrame(connFuzzCaptured().down.slice(0, 2))],
  run: (input) => {
    const thrown: unknown[] = [];
    const factory = watchedFactory((e) => thrown.push(e));
    let now = SIM_EPOCH;
    const client = factory.client(
      { provider: nodeProvider, tls: { serverName: 'localhost', alpn: [ALPN], insecureSkipVerify: true }, maxIdleTimeout: 2000 },
      { ...SERVER_ADDR },
      new SimpleHost(nodeProvider),
      now,
    );
    const first = client.pollTransmit(now);
    if (!first) throw new Error('the client sent no Initial');
    for (let i = 0; i < 8 && client.pollTransmit(now); i++);
    const h = new ConnFuzzHeader();
    if (!connFuzzParseHeader(first.datagram, 0, first.datagram.length, 8, h)) throw new Error('unparseable client Initial');
    const dcid = first.datagram.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
    const scid = first.datagram.slice(h.scidOffset, h.scidOffset + h.scidLength);
    connFuzzChunks(input).forEach((payload, pn) => {
      client.receive(connFuzzInitial(dcid, true, scid, CONN_FUZZ_SCID, pn, payload), { ...SERVER_ADDR }, ++now);
    });
    return connFuzzPump(client, client, now, thrown);
  },
  strict: true,
  signature: (s) => s.outcome,
  maxLen: 4200,
});

targets.push(quicConnServerTarget, quicConnClientTarget);
