/**
 * TLS fuzz targets (packages/tls-core): the handshake message codec, and whole TlsSession state
 * machines fed mutated flights captured from a real in-memory handshake (node provider):
 *
 * - tls-codec: byte 0 picks a parser (ClientHello, ServerHello, EncryptedExtensions, Certificate,
 *   CertificateRequest, CertificateVerify, NewSessionTicket, KeyUpdate), the rest is the body.
 * - tls-server-hello: a fresh TlsServer receives the input as its Initial-level data.
 * - tls-client-flight: a fresh TlsClient (fixed random and key share, so the captured server
 *   flight is valid for it) receives [u16 length][ServerHello bytes][Handshake-level bytes].
 * - tls-server-finished: a fresh TlsServer (fixed random and key share) gets the captured
 *   ClientHello, then the input as the client's Handshake-level flight (Finished).
 *
 * TlsSession.receive never throws (errors are 'alert' events): these targets are strict, and
 * their invariant checks look at the events (at most one alert, last; nothing after it; no
 * completion together with an alert).
 *
 * The seeds come from a handshake run at first use. Its certificate (a fresh Ed25519 key) differs per
 * process, so `--seed/--iterations` reproduce exactly only within a run; crash files replay
 * exactly (the sessions under test are deterministic).
 */
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import type { EncryptionLevel, TlsEvent, TlsSession } from '../../packages/tls-core/src/handshake/api.js';
import { TlsClient } from '../../packages/tls-core/src/handshake/client.js';
import {
  HandshakeType,
  parseCertificate,
  parseCertificateRequest,
  parseCertificateVerify,
  parseClientHello,
  parseEncryptedExtensions,
  parseKeyUpdate,
  parseNewSessionTicket,
  parseServerHello,
} from '../../packages/tls-core/src/handshake/codec.js';
import type { TlsClientConfig, TlsServerConfig } from '../../packages/tls-core/src/handshake/config.js';
import { TlsServer } from '../../packages/tls-core/src/handshake/server.js';
import { generateSelfSigned } from '../../packages/tls-core/src/x509/selfsigned.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { concat } from './mutate.js';

const invariant = (ok: boolean, msg: string): void => {
  if (!ok) throw new Error(`invariant: ${msg}`);
};

const NOW = Date.UTC(2026, 0, 1);
const fixed = (b: number) => new Uint8Array(32).fill(b);

interface Captured {
  client: TlsClientConfig;
  server: TlsServerConfig;
  clientHello: Uint8Array;
  serverInitial: Uint8Array;
  serverHandshake: Uint8Array;
  clientHandshake: Uint8Array;
  /** Every handshake message seen, framed (type + u24 length + body). */
  messages: Uint8Array[];
}
let captured: Captured | undefined;

function drain(s: TlsSession, out: { level: EncryptionLevel; data: Uint8Array }[], events?: TlsEvent[]): void {
  for (let e = s.poll(), n = 0; e && n < 1000; e = s.poll(), n++) {
    events?.push(e);
    if (e.type === 'send') out.push({ level: e.level, data: e.data });
  }
}

/** Runs one real handshake (synchronously) and records each flight. */
function capture(): Captured {
  if (captured) return captured;
  // Ed25519: deterministic signatures, so the server's flight (and with it the transcript) is the
  // same every time the captured configuration runs, and the captured client Finished verifies.
  const cert = generateSelfSigned({ provider: nodeProvider, names: ['example.com'], keyType: 'ed25519', nowMs: NOW });
  const client: TlsClientConfig = {
    provider: nodeProvider,
    serverName: 'example.com',
    insecureSkipVerify: true,
    alpn: ['h2', 'http/1.1'],
    groups: ['x25519', 'secp256r1'],
    keyShares: ['x25519'],
    random: fixed(1),
    sessionId: fixed(2),
    keySharePrivateKeys: { x25519: fixed(3) },
    now: () => NOW,
  };
  const server: TlsServerConfig = {
    provider: nodeProvider,
    identity: { chain: [cert.certDer], key: cert.keyDer },
    alpn: ['http/1.1', 'h2'],
    random: fixed(4),
    keySharePrivateKeys: { x25519: fixed(5) },
    now: () => NOW,
  };
  const c = new TlsClient(client);
  const s = new TlsServer(server);
  c.start();
  s.start();
  const flights: { from: 'c' | 's'; level: EncryptionLevel; data: Uint8Array }[] = [];
  const cEvents: TlsEvent[] = [];
  const sEvents: TlsEvent[] = [];
  for (let round = 0; round < 20; round++) {
    const fc: { level: EncryptionLevel; data: Uint8Array }[] = [];
    const fs: { level: EncryptionLevel; data: Uint8Array }[] = [];
    drain(c, fc, cEvents);
    drain(s, fs, sEvents);
    if (s.pending) throw new Error('fuzz seed capture: the server went asynchronous');
    for (const m of fc) {
      flights.push({ from: 'c', ...m });
      s.receive(m.level, m.data);
    }
    for (const m of fs) {
      flights.push({ from: 's', ...m });
      c.receive(m.level, m.data);
    }
    if (fc.length === 0 && fs.length === 0) break;
  }
  const alert = [...cEvents, ...sEvents].find((e) => e.type === 'alert');
  if (alert) throw new Error(`fuzz seed capture: handshake failed: ${alert.type === 'alert' ? alert.error.message : ''}`);
  if (!c.handshakeComplete || !s.handshakeComplete) throw new Error('fuzz seed capture: handshake did not complete');
  const join = (from: 'c' | 's', level: EncryptionLevel) => concat(...flights.filter((f) => f.from === from && f.level === level).map((f) => f.data));
  captured = {
    client,
    server,
    clientHello: join('c', 'initial'),
    serverInitial: join('s', 'initial'),
    serverHandshake: join('s', 'handshake'),
    clientHandshake: join('c', 'handshake'),
    messages: splitMessages(concat(...flights.map((f) => f.data))),
  };
  return captured;
}

function splitMessages(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o + 4 <= b.length; ) {
    const len = (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
    if (o + 4 + len > b.length) break;
    out.push(b.subarray(o, o + 4 + len));
    o += 4 + len;
  }
  return out;
}

// ---- codec -------------------------------------------------------------------------------------

const PARSERS: [number, (body: Uint8Array) => unknown][] = [
  [HandshakeType.client_hello, parseClientHello],
  [HandshakeType.server_hello, parseServerHello],
  [HandshakeType.encrypted_extensions, parseEncryptedExtensions],
  [HandshakeType.certificate, parseCertificate],
  [HandshakeType.certificate_request, parseCertificateRequest],
  [HandshakeType.certificate_verify, parseCertificateVerify],
  [HandshakeType.new_session_ticket, parseNewSessionTicket],
  [HandshakeType.key_update, parseKeyUpdate],
];

export const tlsCodecTarget = defineTarget({
  name: 'tls-codec',
  description: 'handshake message parsers (byte 0 = HandshakeType picks the parser, rest = body)',
  seeds: () => {
    const seeds = capture()
      .messages.filter((m) => PARSERS.some(([t]) => t === m[0]))
      .map((m) => concat(m.subarray(0, 1), m.subarray(4)));
    seeds.push(Uint8Array.of(HandshakeType.key_update, 1));
    return seeds;
  },
  run: (input) => {
    if (input.length === 0) return;
    const p = PARSERS.find(([t]) => t === input[0]) ?? PARSERS[input[0]! % PARSERS.length]!;
    p[1](input.subarray(1));
  },
});

// ---- sessions ----------------------------------------------------------------------------------

interface SessionState {
  session: TlsSession;
  events: TlsEvent[];
}

function checkEvents(st: SessionState): void {
  const alerts = st.events.filter((e) => e.type === 'alert');
  invariant(alerts.length <= 1, `${alerts.length} alert events`);
  if (alerts.length) {
    invariant(st.events[st.events.length - 1]!.type === 'alert', 'the alert is the last event');
    invariant(!st.events.some((e) => e.type === 'handshakeComplete'), 'complete and alert');
    const a = alerts[0]!;
    if (a.type === 'alert') invariant(Number.isInteger(a.alert) && a.alert >= 0 && a.alert < 256, `alert code ${a.alert}`);
    // A failed session takes no more input.
    st.session.receive('handshake', Uint8Array.of(20, 0, 0, 32, ...new Array(32).fill(0)));
    invariant(st.session.poll() === undefined, 'events after the alert');
  }
}

/** The alert and its message (digits stripped), or how far the handshake got. */
function sessionSignature(st: SessionState): string {
  const a = st.events.find((e) => e.type === 'alert');
  if (a && a.type === 'alert') return `alert ${a.alert} ${a.error.message.replace(/\d+/g, '#').slice(0, 60)}`;
  return st.events.map((e) => e.type[0]).join('').slice(0, 40) + (st.session.handshakeComplete ? ' complete' : '');
}

function feed(st: SessionState, level: EncryptionLevel, data: Uint8Array): void {
  st.session.receive(level, data);
  drain(st.session, [], st.events);
}

export const tlsServerHelloTarget = defineTarget<SessionState>({
  name: 'tls-server-hello',
  description: 'TlsServer.receive(initial, input): mutated ClientHellos into a fresh server; events consistent',
  strict: true,
  seeds: () => [capture().clientHello],
  run: (input) => {
    const st: SessionState = { session: new TlsServer(capture().server), events: [] };
    st.session.start();
    // Two pieces: fragmentation must not matter.
    const cut = input.length >> 1;
    feed(st, 'initial', input.subarray(0, cut));
    feed(st, 'initial', input.subarray(cut));
    invariant(!st.session.handshakeComplete, 'server complete after one flight');
    return st;
  },
  check: checkEvents,
  signature: sessionSignature,
});

export const tlsClientFlightTarget = defineTarget<SessionState>({
  name: 'tls-client-flight',
  description: 'TlsClient after its ClientHello: [u16 n][n bytes at initial][rest at handshake] from a mutated server flight',
  strict: true,
  seeds: () => {
    const c = capture();
    const n = c.serverInitial.length;
    return [concat(Uint8Array.of(n >> 8, n & 0xff), c.serverInitial, c.serverHandshake)];
  },
  run: (input) => {
    const st: SessionState = { session: new TlsClient(capture().client), events: [] };
    st.session.start();
    drain(st.session, [], st.events);
    if (input.length < 2) return st;
    const n = Math.min(input.length - 2, (input[0]! << 8) | input[1]!);
    feed(st, 'initial', input.subarray(2, 2 + n));
    feed(st, 'handshake', input.subarray(2 + n));
    return st;
  },
  check: checkEvents,
  signature: sessionSignature,
});

export const tlsServerFinishedTarget = defineTarget<SessionState>({
  name: 'tls-server-finished',
  description: 'TlsServer after the captured ClientHello: the input as the client Handshake-level flight (Finished)',
  strict: true,
  seeds: () => [capture().clientHandshake],
  run: (input) => {
    const c = capture();
    const st: SessionState = { session: new TlsServer(c.server), events: [] };
    st.session.start();
    feed(st, 'initial', c.clientHello);
    feed(st, 'handshake', input);
    return st;
  },
  check: checkEvents,
  signature: sessionSignature,
});

export const tlsTargets: FuzzTarget[] = [tlsCodecTarget, tlsServerHelloTarget, tlsClientFlightTarget, tlsServerFinishedTarget];
