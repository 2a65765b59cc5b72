/**
 * Connection-level QUIC fuzz target: a whole in-memory handshake between a client and a server
 * Endpoint (real Connection, node provider) on a virtual clock, where one datagram is replaced by
 * the fuzz input.
 *
 * Input: [k][datagram]. Datagram number k % n of the exchange (counted over both directions in
 * send order; n = the datagrams of the clean run, at most 8) is replaced by the rest of the input. The run is deterministic: the provider's
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
import type { CryptoProvider, SigningKey } from '../../packages/tls-core/src/crypto/provider.js';
import type { CertificateVerifier } from '../../packages/tls-core/src/handshake/api.js';
import { generateSelfSigned } from '../../packages/tls-core/src/x509/selfsigned.js';
import { WebPkiVerifier } from '../../packages/tls-core/src/x509/verifier.js';
import { fuzzProvider } from './fuzz-provider.js';
import { Frame, FrameType, encodeFrame, frameSize } from '../../packages/quic/src/frames.js';
import { writeShortHeader } from '../../packages/quic/src/header.js';
import { INITIAL_CIPHER } from '../../packages/quic/src/initial.js';
import { PacketKeys } from '../../packages/quic/src/protection.js';
import { QUIC_V1 } from '../../packages/quic/src/version.js';
import { Rng } from '../support/rng.js';
import { quicFrameSeeds } from './targets-quic.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { concat } from './mutate.js';

const CLIENT: Address = { address: '10.0.0.1', port: 50000, family: 4 };
const SERVER: Address = { address: '10.0.0.2', port: 4433, family: 4 };
const T0 = Date.UTC(2026, 0, 1);
const ALPN = 'fuzz';
/** At most this many datagrams of the clean exchange are replacement slots. */
const MAX_SLOTS = 8;
/** Steps after the handshake (both sides complete, or the injection) before the run ends. */
const AFTER_STEPS = 20;
const fixed = (b: number) => new Uint8Array(32).fill(b);
const INTERNAL_ERROR = 0x1;

/**
 * The crypto a pair runs with. 'real': the node provider (seeded randomBytes), an Ed25519
 * certificate, no chain verification (what the CI targets always ran). 'fast': the fuzzing
 * provider (./fuzz-provider.ts: cheap stand-ins that still fail on any mismatch), a CA-issued
 * leaf verified by the real WebPkiVerifier (path, validity, name), so a run costs no real crypto.
 */
export type PairCrypto = 'real' | 'fast';

interface Flavor {
  provider(): CryptoProvider;
  identity: { chain: Uint8Array[]; key: SigningKey };
  client: { insecureSkipVerify: true } | { verifier: CertificateVerifier };
}
const flavors: Partial<Record<PairCrypto, Flavor>> = {};

function flavor(kind: PairCrypto): Flavor {
  let f = flavors[kind];
  if (f) return f;
  if (kind === 'real') {
    const cert = generateSelfSigned({ provider: nodeProvider, names: ['example.com'], keyType: 'ed25519', nowMs: T0 });
    f = {
      provider: () => seededProvider(0x5eed),
      // The key loaded once (loading it is config work, not under test; it was 20% of each run).
      identity: { chain: [cert.certDer], key: nodeProvider.loadPrivateKey(cert.keyDer) },
      client: { insecureSkipVerify: true },
    };
  } else {
    const p = fuzzProvider(1);
    const ca = generateSelfSigned({ provider: p, names: [], isCA: true, keyType: 'ec-p256', nowMs: T0 - 86_400_000 });
    const leaf = generateSelfSigned({ provider: p, names: ['example.com'], issuer: ca, keyType: 'ec-p256', nowMs: T0 - 86_400_000 });
    f = {
      provider: () => fuzzProvider(0x5eed),
      identity: { chain: [leaf.certDer, ca.certDer], key: p.loadPrivateKey(leaf.keyDer) },
      client: { verifier: new WebPkiVerifier({ roots: [ca.certDer] }) },
    };
  }
  flavors[kind] = f;
  return f;
}

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
  /** Direction of each datagram in `datagrams`. */
  dirs: ('up' | 'down')[];
  /** Key log lines (TLS secrets) of the client. */
  keyLog: string[];
  /** Protected 1-RTT packets injected (frame targets). */
  injected: number;
  /** The replacement datagram was delivered (its slot occurred in the exchange). */
  replaced: boolean;
  clientComplete: boolean;
  serverComplete: boolean;
  closes: string[];
}

export interface Injection {
  dir: 'up' | 'down';
  /** Plaintext 1-RTT payloads (frames), each sent as one protected short-header packet once both sides completed the handshake. */
  payloads: Uint8Array[];
}

/**
 * Runs the exchange; datagram `replaceAt` is replaced by `replacement` (null: clean run). With
 * `inject`, once both handshakes completed, the payloads are protected with the real 1-RTT keys
 * (from the client's key log) and delivered, then the exchange goes on briefly.
 */
export function runQuicPair(replaceAt: number, replacement: Uint8Array | null, inject?: Injection, crypto: PairCrypto = 'real'): PairRun {
  const fl = flavor(crypto);
  const provider = fl.provider();
  const run: PairRun = { bugs: [], datagrams: [], dirs: [], keyLog: [], injected: 0, replaced: false, clientComplete: false, serverComplete: false, closes: [] };
  const tokenKeys = { tokenKey: new Uint8Array(16).fill(7), resetKey: new Uint8Array(32).fill(8) };
  const onError = (e: unknown) => run.bugs.push(`endpoint onError: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const server = new Endpoint({
    provider,
    tokenKeys,
    onError,
    server: {
      provider,
      tls: { identity: fl.identity, alpn: [ALPN], random: fixed(4), keySharePrivateKeys: { x25519: fixed(5) }, now: () => T0 },
    },
  });
  const clientEp = new Endpoint({ provider, tokenKeys, onError });
  let now = T0;
  const client = clientEp.connect(SERVER, {
    provider,
    tls: {
      serverName: 'example.com',
      ...fl.client,
      alpn: [ALPN],
      groups: ['x25519'],
      keyShares: ['x25519'],
      cipherSuites: ['TLS_AES_128_GCM_SHA256'],
      random: fixed(1),
      keySharePrivateKeys: { x25519: fixed(3) },
      now: () => T0,
      keyLog: (line: string) => run.keyLog.push(line),
    },
  }, now);
  const conns: QuicConnection[] = [client];
  const onEvent = (c: QuicConnection, e: ConnectionEvent) => {
    if (e.type === 'error') run.bugs.push(`${c.role} error event: ${e.error instanceof Error ? (e.error.stack ?? e.error.message) : String(e.error)}`);
    else if (e.type === 'closed') {
      run.closes.push(`${c.role}:${e.info.kind}:${e.info.code}:${e.info.reason.replace(/\d+/g, "#").slice(0, 60)}`);
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
      run.dirs.push(to === server ? 'up' : 'down');
      if (idx === replaceAt && replacement) {
        d = replacement;
        run.replaced = true;
      }
      to.receive(d, toFrom, now);
      moved = true;
    }
    return moved;
  };
  // The injection goes in as soon as both sides completed the handshake (it used to wait for more
  // than 8 datagrams, which the handshake no longer makes: the target silently injected nothing).
  let doneAtStep = -1;
  for (let step = 0; step < 400; step++) {
    const a = deliver(clientEp, server, CLIENT);
    const b = deliver(server, clientEp, SERVER);
    drainEvents();
    if (doneAtStep < 0 && run.clientComplete && run.serverComplete) {
      doneAtStep = step;
      if (inject) {
        for (const d of protect1Rtt(run, inject, provider)) {
          (inject.dir === 'up' ? server : clientEp).receive(d, inject.dir === 'up' ? CLIENT : SERVER, now);
          run.injected++;
        }
        drainEvents();
        continue;
      }
    }
    if (doneAtStep >= 0 && step - doneAtStep > AFTER_STEPS) break;
    if (!a && !b) {
      if (doneAtStep >= 0 && !inject) break; // clean or replaced run: quiet after the handshake
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

/** Protected short-header packets carrying the injection payloads (keys from the key log). */
function protect1Rtt(run: PairRun, inject: Injection, provider: CryptoProvider): Uint8Array[] {
  const label = inject.dir === 'up' ? 'CLIENT_TRAFFIC_SECRET_0' : 'SERVER_TRAFFIC_SECRET_0';
  const line = run.keyLog.find((l) => l.startsWith(label + ' '));
  if (!line) {
    run.bugs.push(`no ${label} in the key log`);
    return [];
  }
  const secret = Uint8Array.from(Buffer.from(line.split(' ')[2]!, 'hex'));
  const keys = PacketKeys.fromSecret(provider, INITIAL_CIPHER, QUIC_V1, secret);
  // The receiver's CID as the sender uses it: the SCID of the receiver's first long-header packet
  // (its Initial), which stays valid: long header = flags, version, DCID len + DCID, SCID len + SCID.
  let dcid: Uint8Array | null = null;
  for (let i = 0; i < run.datagrams.length && !dcid; i++) {
    const d = run.datagrams[i]!;
    if (run.dirs[i] === inject.dir || (d[0]! & 0x80) === 0 || d.length < 7) continue;
    const dl = d[5]!;
    if (6 + dl >= d.length) continue;
    const sl = d[6 + dl]!;
    if (sl > 0 && 7 + dl + sl <= d.length) dcid = d.slice(7 + dl, 7 + dl + sl);
  }
  if (!dcid) {
    run.bugs.push(`no long-header datagram ${inject.dir === 'up' ? 'down' : 'up'} to take the connection ID from`);
    return [];
  }
  return inject.payloads.map((payload, i) => {
    const pn = 0x1000 + i;
    const body = payload.length >= 24 ? payload : concat(payload, new Uint8Array(24 - payload.length)); // PADDING up to the sample size
    const d = new Uint8Array(1 + dcid!.length + 2 + body.length + 16);
    const pnOffset = writeShortHeader(d, 0, dcid!, pn, 2, false);
    d.set(body, pnOffset + 2);
    const end = keys.protect(d, 0, pnOffset, 2, pnOffset + 2 + body.length, pn);
    return d.subarray(0, end);
  });
}

const clean: Partial<Record<PairCrypto, PairRun>> = {};

function cleanRun(crypto: PairCrypto): PairRun {
  const c = (clean[crypto] ??= runQuicPair(-1, null, undefined, crypto));
  if (!c.clientComplete || !c.serverComplete) throw new Error(`quic-pair (${crypto}): the clean handshake does not complete (${c.closes.join(', ')} ${c.bugs.join('; ')})`);
  return c;
}

/** Replacement slots: the datagrams the clean run actually makes (at most MAX_SLOTS). */
export function quicPairSlots(crypto: PairCrypto = 'real'): number {
  return Math.min(MAX_SLOTS, cleanRun(crypto).datagrams.length);
}

const pairTarget = (name: string, crypto: PairCrypto, what: string) =>
  defineTarget<PairRun>({
    name,
    description: `client/server Endpoint handshake in memory (deterministic, ${what}), datagram k replaced by the input`,
    strict: true,
    seeds: () => cleanRun(crypto).datagrams.slice(0, quicPairSlots(crypto)).map((d, k) => concat(Uint8Array.of(k), d)),
    run: (input) => {
      if (input.length === 0) return runQuicPair(-1, null, undefined, crypto);
      return runQuicPair(input[0]! % quicPairSlots(crypto), input.subarray(1), undefined, crypto);
    },
    check: (st) => {
      if (st.bugs.length) throw new Error(`invariant: ${st.bugs[0]}`);
    },
    signature: (st) => `${st.clientComplete ? 'C' : '-'}${st.serverComplete ? 'S' : '-'} ${st.closes.join(',')}`,
    maxLen: 1500,
  });

export const quicPairTarget = pairTarget('quic-pair', 'real', 'node provider');
/** The same with the fuzzing provider and a verified certificate chain (./fuzz-provider.ts). */
export const quicPairFastTarget = pairTarget('quic-pair-fast', 'fast', 'fuzzing provider, chain verified');

/** Splits [dir][u16 n][n bytes]... into the injection (up to 8 payloads; trailing bytes form the last). */
function parseInjection(input: Uint8Array): Injection {
  const payloads: Uint8Array[] = [];
  let o = 1;
  while (o < input.length && payloads.length < 8) {
    if (o + 2 > input.length) break;
    const n = Math.min((input[o]! << 8) | input[o + 1]!, input.length - o - 2, 1100);
    payloads.push(input.subarray(o + 2, o + 2 + n));
    o += 2 + n;
  }
  return { dir: (input[0] ?? 0) & 1 ? 'down' : 'up', payloads };
}

const framesTarget = (name: string, crypto: PairCrypto, what: string) =>
  defineTarget<PairRun>({
    name,
    description: `frames into a live connection (${what}): after a deterministic handshake, input payloads go out as properly protected 1-RTT packets (byte 0: to the server or to the client)`,
    strict: true,
    seeds: () => {
      // Frame sequences built by the frame encoder (as in quic-frames), grouped into packets.
      const frames = quicFrameSeeds().map((f) => f.subarray(1)).filter((f) => f.length > 0);
      const packet = (...fs: Uint8Array[]) => {
        const b = concat(...fs);
        return concat(Uint8Array.of(b.length >> 8, b.length & 0xff), b);
      };
      const seeds: Uint8Array[] = [];
      // Frames that are valid in context, so mutations start from a working exchange.
      const data = new TextEncoder().encode('hello petrel, fuzzing the live connection');
      const f = (init: Partial<Frame>) => {
        const fr = Object.assign(new Frame(), { buf: data }, init);
        const out = new Uint8Array(frameSize(fr));
        encodeFrame(out, 0, fr);
        return out;
      };
      const benign = (stream: number, uni: number) => [
        packet(f({ type: 0x0e, streamId: stream, offset: 0, dataOffset: 0, dataLength: data.length }), f({ type: FrameType.PING })),
        packet(f({ type: 0x0a, streamId: uni, offset: 0, dataOffset: 0, dataLength: 10 }), f({ type: FrameType.MAX_DATA, maximum: 1 << 22 })),
        packet(f({ type: FrameType.MAX_STREAMS_BIDI, maximum: 200 }), f({ type: FrameType.PATH_CHALLENGE, dataOffset: 0, dataLength: 8 })),
        packet(f({ type: 0x0f, streamId: stream, offset: data.length, dataOffset: 0, dataLength: 5, fin: true }), f({ type: FrameType.STOP_SENDING, streamId: stream, errorCode: 1 })),
      ];
      seeds.push(concat(Uint8Array.of(0), ...benign(0, 2)));
      seeds.push(concat(Uint8Array.of(1), ...benign(1, 3)));
      for (const dir of [0, 1]) {
        seeds.push(concat(Uint8Array.of(dir), ...frames.map((f) => packet(f)).slice(0, 8)));
        seeds.push(concat(Uint8Array.of(dir), packet(...frames.slice(8, 16)), packet(...frames.slice(16))));
      }
      return seeds;
    },
    run: (input) => runQuicPair(-1, null, parseInjection(input), crypto),
    check: (st, input) => {
      if (st.bugs.length) throw new Error(`invariant: ${st.bugs[0]}`);
      if (!st.clientComplete || !st.serverComplete) throw new Error('invariant: the handshake before the injection did not complete');
      // The target must never silently become a no-op again: every payload goes in.
      const want = parseInjection(input).payloads.length;
      if (st.injected !== want) throw new Error(`invariant: ${st.injected} of ${want} payloads injected`);
    },
    signature: (st) => `${st.injected} ${st.closes.join(',')}`,
    maxLen: 4096,
  });

export const quicFramesLiveTarget = framesTarget('quic-conn-frames', 'real', 'node provider');
export const quicFramesLiveFastTarget = framesTarget('quic-conn-frames-fast', 'fast', 'fuzzing provider');

export const quicConnTargets: FuzzTarget[] = [quicPairTarget, quicFramesLiveTarget, quicPairFastTarget, quicFramesLiveFastTarget];
