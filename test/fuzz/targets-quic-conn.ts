/**
 * Connection-level QUIC fuzz target: a whole in-memory handshake between a client and a server
 * Endpoint (real Connection, node provider) on a virtual clock, where one datagram is replaced by
 * the fuzz input.
 *
 * Input: [k][datagram]. Datagram number k % 8 of the exchange (counted over both directions in
 * send order) is replaced by the rest of the input. The run is deterministic: the provider's
 * randomBytes is a seeded PRNG, the TLS randoms and key shares are fixed, the certificate is
 * Ed25519 (deterministic signatures) and the clock is virtual, so the captured datagrams of a
 * clean run are exactly what the same run would send, and a mutated one goes deep: the peer has
 * the right keys, so mutations of the unprotected bits, of lengths, of CIDs and of the
 * ciphertext all reach header parsing, unprotection and (for intact AEAD) frame handling.
 *
 * Failures: an exception out of Endpoint/Connection calls, Endpoint.onError (a contained bug),
 * a connection 'error' event (internal error), or a close with INTERNAL_ERROR.
 */
import { Endpoint } from '../../packages/quic/src/endpoint.js';
import type { Address, ConnectionEvent, QuicConnection } from '../../packages/quic/src/api.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import type { CryptoProvider } from '../../packages/tls-core/src/crypto/provider.js';
import { generateSelfSigned, type GeneratedCertificate } from '../../packages/tls-core/src/x509/selfsigned.js';
import { Rng } from '../support/rng.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { concat } from './mutate.js';

const CLIENT: Address = { address: '10.0.0.1', port: 50000, family: 4 };
const SERVER: Address = { address: '10.0.0.2', port: 4433, family: 4 };
const T0 = Date.UTC(2026, 0, 1);
const ALPN = 'fuzz';
const SLOTS = 8;
const fixed = (b: number) => new Uint8Array(32).fill(b);
const INTERNAL_ERROR = 0x1;

let cert: GeneratedCertificate | undefined;

/** node provider with a seeded randomBytes (everything else unchanged). */
function seededProvider(seed: number): CryptoProvider {
  const rng = new Rng(seed);
  const p = Object.create(nodeProvider) as CryptoProvider;
  p.randomBytes = (n: number) => rng.bytes(n);
  return p;
}

export interface PairRun {
  bugs: string[];
  datagrams: Uint8Array[];
  clientComplete: boolean;
  serverComplete: boolean;
  closes: string[];
}

/** Runs the exchange; datagram `replaceAt` is replaced by `replacement` (null: clean run). */
export function runQuicPair(replaceAt: number, replacement: Uint8Array | null): PairRun {
  cert ??= generateSelfSigned({ provider: nodeProvider, names: ['example.com'], keyType: 'ed25519', nowMs: T0 });
  const provider = seededProvider(0x5eed);
  const run: PairRun = { bugs: [], datagrams: [], clientComplete: false, serverComplete: false, closes: [] };
  const tokenKeys = { tokenKey: new Uint8Array(16).fill(7), resetKey: new Uint8Array(32).fill(8) };
  const onError = (e: unknown) => run.bugs.push(`endpoint onError: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const server = new Endpoint({
    provider,
    tokenKeys,
    onError,
    server: {
      provider,
      tls: { identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: [ALPN], random: fixed(4), keySharePrivateKeys: { x25519: fixed(5) }, now: () => T0 },
    },
  });
  const clientEp = new Endpoint({ provider, tokenKeys, onError });
  let now = T0;
  const client = clientEp.connect(SERVER, {
    provider,
    tls: { serverName: 'example.com', insecureSkipVerify: true, alpn: [ALPN], groups: ['x25519'], keyShares: ['x25519'], random: fixed(1), keySharePrivateKeys: { x25519: fixed(3) }, now: () => T0 },
  }, now);
  const conns: QuicConnection[] = [client];
  const onEvent = (c: QuicConnection, e: ConnectionEvent) => {
    if (e.type === 'error') run.bugs.push(`${c.role} error event: ${e.error instanceof Error ? (e.error.stack ?? e.error.message) : String(e.error)}`);
    else if (e.type === 'closed') {
      run.closes.push(`${c.role}:${e.info.kind}:${e.info.code}`);
      if (!e.info.remote && !e.info.application && e.info.code === INTERNAL_ERROR) run.bugs.push(`${c.role} closed with INTERNAL_ERROR: ${e.info.reason}`);
    } else if (e.type === 'handshakeComplete') {
      if (c.role === 'client') run.clientComplete = true;
      else run.serverComplete = true;
    }
  };
  const drainEvents = () => {
    for (let ev = server.pollEvent(); ev; ev = server.pollEvent()) if (ev.type === 'connection') conns.push(ev.connection);
    for (const c of conns) for (let e = c.pollEvent(), n = 0; e && n < 1000; e = c.pollEvent(), n++) onEvent(c, e);
  };
  const deliver = (from: Endpoint, to: Endpoint, toFrom: Address): boolean => {
    let moved = false;
    for (let t = from.pollTransmit(now), n = 0; t && n < 100; t = from.pollTransmit(now), n++) {
      let d = t.datagram;
      const idx = run.datagrams.length;
      run.datagrams.push(d.slice());
      if (idx === replaceAt && replacement) d = replacement;
      to.receive(d, toFrom, now);
      moved = true;
    }
    return moved;
  };
  for (let step = 0; step < 400; step++) {
    const a = deliver(clientEp, server, CLIENT);
    const b = deliver(server, clientEp, SERVER);
    drainEvents();
    if (run.clientComplete && run.serverComplete && run.datagrams.length > SLOTS) break;
    if (!a && !b) {
      const ts = [clientEp.nextTimeout(), server.nextTimeout()].filter((x): x is number => x !== null);
      if (ts.length === 0) break;
      now = Math.max(now, Math.min(...ts));
      if (now - T0 > 20_000) break; // virtual time bound (handshake timeouts, PTOs)
      clientEp.handleTimeout(now);
      server.handleTimeout(now);
      drainEvents();
    }
  }
  return run;
}

let clean: PairRun | undefined;

export const quicPairTarget = defineTarget<PairRun>({
  name: 'quic-pair',
  description: 'client/server Endpoint handshake in memory (deterministic), datagram k replaced by the input',
  strict: true,
  seeds: () => {
    clean ??= runQuicPair(-1, null);
    if (!clean.clientComplete || !clean.serverComplete) throw new Error(`quic-pair: the clean handshake does not complete (${clean.closes.join(', ')} ${clean.bugs.join('; ')})`);
    return clean.datagrams.slice(0, SLOTS).map((d, k) => concat(Uint8Array.of(k), d));
  },
  run: (input) => {
    if (input.length === 0) return runQuicPair(-1, null);
    return runQuicPair(input[0]! % SLOTS, input.subarray(1));
  },
  check: (st) => {
    if (st.bugs.length) throw new Error(`invariant: ${st.bugs[0]}`);
  },
  signature: (st) => `${st.clientComplete ? 'C' : '-'}${st.serverComplete ? 'S' : '-'} ${st.closes.join(',')}`,
  maxLen: 1500,
});

export const quicConnTargets: FuzzTarget[] = [quicPairTarget];
