/**
 * QUIC connections (quic-sim): whole Endpoint / Connection state machines fed Initial packets.
 *
 * Inputs: up to 4 chunks, each `u16 length | plaintext frames`; every chunk becomes one Initial
 * packet (protected with the right Initial keys, padded to 1200 bytes) fed to a fresh connection,
 * so the mutations reach the frame parser, CRYPTO reassembly and the TLS state machine behind it.
 * Then timers run on a virtual clock. Strict: any exception, 'error' event or local INTERNAL_ERROR
 * close is a failure (peer input only ever closes with a protocol error code).
 *
 * Two crypto flavors of each target: the node provider ('quic-conn-server-initial',
 * 'quic-conn-client-initial', what CI always ran) and the fuzzing provider (the same names with
 * '-fast': ./fuzz-provider.ts, a deterministic PRNG per run, and on the client a real
 * WebPkiVerifier over a chain signed with the fuzzing provider), which skips the ECDH, ML-KEM,
 * ECDSA and AES-GCM cost so long campaigns reach 10^6 inputs.
 */
import { Endpoint as QuicEndpoint } from '../../packages/quic/src/endpoint.js';
import type { QuicConnection as QuicConn } from '../../packages/quic/src/api.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader } from '../../packages/quic/src/header.js';
import { initialKeys } from '../../packages/quic/src/initial.js';
import { sealPacket } from '../../packages/quic/src/packet.js';
import type { PacketKeys } from '../../packages/quic/src/protection.js';
import { QUIC_V1 } from '../../packages/quic/src/version.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import type { CryptoProvider, SigningKey } from '../../packages/tls-core/src/crypto/provider.js';
import type { CertificateVerifier } from '../../packages/tls-core/src/handshake/api.js';
import { WebPkiVerifier } from '../../packages/tls-core/src/x509/verifier.js';
import { ALPN, CLIENT_ADDR, SERVER_ADDR, SIM_EPOCH, SimpleHost, captureInitialPayloads, seededProvider, testIdentity, watchedFactory } from '../support/quic-pair.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { fuzzProvider } from './fuzz-provider.js';
import { concat } from './mutate.js';

type Captured = ReturnType<typeof captureInitialPayloads>;

interface Flavor {
  /** The provider for one run (fresh per run where that keeps runs deterministic). */
  provider(): CryptoProvider;
  /** Provider for the Initial keys the harness protects its packets with. */
  keysProvider: CryptoProvider;
  identity: { chain: Uint8Array[]; key: SigningKey };
  client: { insecureSkipVerify: true } | { verifier: CertificateVerifier };
  /** A real handshake's Initial payloads and the client's CIDs (its transport parameters name its SCID). */
  captured: Captured;
}

type Kind = 'real' | 'fast';
const flavors: Partial<Record<Kind, Flavor>> = {};

function flavor(kind: Kind): Flavor {
  let f = flavors[kind];
  if (f) return f;
  if (kind === 'real') {
    const id = testIdentity(nodeProvider);
    f = {
      // Seeded randomBytes per run: runs are deterministic, and the client's DCID (so its Initial
      // keys) is the same every run.
      provider: () => seededProvider(nodeProvider, 0x1417),
      keysProvider: nodeProvider,
      // Loaded once: loading the key is configuration work, not under test.
      identity: { chain: [id.leaf.certDer], key: nodeProvider.loadPrivateKey(id.leaf.keyDer) },
      client: { insecureSkipVerify: true },
      captured: captureInitialPayloads(nodeProvider, 7),
    };
  } else {
    const p = fuzzProvider(7);
    const id = testIdentity(p);
    f = {
      provider: () => fuzzProvider(0x1417),
      keysProvider: p,
      identity: { chain: [id.leaf.certDer, id.ca.certDer], key: p.loadPrivateKey(id.leaf.keyDer) },
      client: { verifier: new WebPkiVerifier({ roots: [id.ca.certDer] }) },
      captured: captureInitialPayloads(p, 7),
    };
  }
  flavors[kind] = f;
  return f;
}

function chunks(input: Uint8Array): Uint8Array[] {
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

function framed(payloads: Uint8Array[]): Uint8Array {
  return concat(...payloads.flatMap((p) => [Uint8Array.of(p.length >> 8, p.length & 0xff), p]));
}

/** Initial write keys by (provider, keys DCID, role): the same few per target, derived once. */
const keyCache = new Map<string, PacketKeys>();

function initialPacket(fl: Flavor, keysDcid: Uint8Array, isServer: boolean, dcid: Uint8Array, scid: Uint8Array, pn: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1600);
  const pnOffset = writeLongHeader(buf, 0, PacketType.Initial, QUIC_V1, dcid, scid, null, pn, 2, 2);
  buf.set(payload, pnOffset + 2);
  const id = `${fl.keysProvider.name} ${isServer} ${Buffer.from(keysDcid).toString('hex')}`;
  let keys = keyCache.get(id);
  if (!keys) {
    if (keyCache.size > 64) keyCache.clear();
    keys = initialKeys(fl.keysProvider, QUIC_V1, keysDcid, isServer).write;
    keyCache.set(id, keys);
  }
  const end = sealPacket(keys, buf, 0, pnOffset, 2, 2, pnOffset + 2 + payload.length, pn, 1200);
  return buf.slice(0, end);
}

interface ConnFuzzState {
  outcome: string;
}

/** Runs a connection's timers and output for a bounded number of rounds; throws on any sign of a bug. */
function pump(conn: QuicConn | null, io: { pollTransmit(now: number): unknown; nextTimeout(): number | null; handleTimeout(now: number): void }, now: number, thrown: unknown[]): ConnFuzzState {
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

const SERVER_SCID = Uint8Array.from([0x5c, 0x1d, 0x5c, 0x1d, 0x5c, 0x1d, 0x5c, 0x1d]);

const serverTarget = (name: string, kind: Kind, what: string) =>
  defineTarget<ConnFuzzState>({
    name,
    description: `server Endpoint + Connection fed client Initial packets with mutated frames (ClientHello CRYPTO, ACK, PADDING, ...; ${what})`,
    seeds: () => [framed(flavor(kind).captured.up.slice(0, 2)), framed(flavor(kind).captured.up.slice(0, 1))],
    run: (input) => {
      const fl = flavor(kind);
      const provider = fl.provider();
      const thrown: unknown[] = [];
      const ep = new QuicEndpoint({
        provider,
        server: { provider, tls: { identity: fl.identity, alpn: [ALPN] }, maxIdleTimeout: 2000 },
        factory: watchedFactory((e) => thrown.push(e)),
        onError: (e) => thrown.push(e),
      });
      let now = SIM_EPOCH;
      let conn: QuicConn | null = null;
      const { clientDcid, clientScid } = fl.captured;
      chunks(input).forEach((payload, pn) => {
        ep.receive(initialPacket(fl, clientDcid, false, clientDcid, clientScid, pn, payload), { ...CLIENT_ADDR }, ++now);
        for (let e = ep.pollEvent(); e; e = ep.pollEvent()) conn = e.connection;
      });
      return pump(conn, ep, now, thrown);
    },
    strict: true,
    signature: (s) => s.outcome,
    maxLen: 4200,
  });

const clientTarget = (name: string, kind: Kind, what: string) =>
  defineTarget<ConnFuzzState>({
    name,
    description: `client Connection fed server Initial packets with mutated frames (ServerHello CRYPTO, ACK, ...; ${what})`,
    seeds: () => [framed(flavor(kind).captured.down.slice(0, 2))],
    run: (input) => {
      const fl = flavor(kind);
      const provider = fl.provider();
      const thrown: unknown[] = [];
      const factory = watchedFactory((e) => thrown.push(e));
      let now = SIM_EPOCH;
      const client = factory.client(
        { provider, tls: { serverName: 'localhost', alpn: [ALPN], ...fl.client }, maxIdleTimeout: 2000 },
        { ...SERVER_ADDR },
        new SimpleHost(provider),
        now,
      );
      const first = client.pollTransmit(now);
      if (!first) throw new Error('the client sent no Initial');
      for (let i = 0; i < 8 && client.pollTransmit(now); i++);
      const h = new PacketHeader();
      if (!parseHeader(first.datagram, 0, first.datagram.length, 8, h)) throw new Error('unparseable client Initial');
      const dcid = first.datagram.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
      const scid = first.datagram.slice(h.scidOffset, h.scidOffset + h.scidLength);
      chunks(input).forEach((payload, pn) => {
        client.receive(initialPacket(fl, dcid, true, scid, SERVER_SCID, pn, payload), { ...SERVER_ADDR }, ++now);
      });
      return pump(client, client, now, thrown);
    },
    strict: true,
    signature: (s) => s.outcome,
    maxLen: 4200,
  });

export const quicConnServerTarget = serverTarget('quic-conn-server-initial', 'real', 'node provider');
export const quicConnClientTarget = clientTarget('quic-conn-client-initial', 'real', 'node provider');
export const quicConnServerFastTarget = serverTarget('quic-conn-server-initial-fast', 'fast', 'fuzzing provider');
export const quicConnClientFastTarget = clientTarget('quic-conn-client-initial-fast', 'fast', 'fuzzing provider, chain verified');

export const quicInitialConnTargets: FuzzTarget[] = [quicConnServerTarget, quicConnClientTarget, quicConnServerFastTarget, quicConnClientFastTarget];
