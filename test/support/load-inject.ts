/**
 * Frames into a live connection, for the limit tests (test/load-limits.test.ts): a client and a
 * server Endpoint (real Connection, node provider) handshake in memory on a virtual clock; then
 * the given payloads go to the server as 1-RTT packets protected with the client's real keys
 * (from the TLS key log), and the exchange runs on briefly. Returns the server's close, if any.
 *
 *   const r = injectToServer([Uint8Array.of(0x01)], { maxStreamsBidi: 10 });
 *   r.serverClose   // { code, reason, ... } or null
 *
 * (test/fuzz/targets-quic-conn.ts has a similar harness; it waits for more than 8 datagrams
 * before injecting, which the current handshake no longer produces.)
 */
import type { Address, CloseInfo, QuicConnection } from '../../packages/quic/src/api.js';
import type { TransportConfig } from '../../packages/quic/src/config.js';
import { Endpoint } from '../../packages/quic/src/endpoint.js';
import { writeShortHeader } from '../../packages/quic/src/header.js';
import { INITIAL_CIPHER } from '../../packages/quic/src/initial.js';
import { PacketKeys } from '../../packages/quic/src/protection.js';
import { QUIC_V1 } from '../../packages/quic/src/version.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import { generateSelfSigned, type GeneratedCertificate } from '../../packages/tls-core/src/x509/selfsigned.js';

const CLIENT: Address = { address: '10.0.0.1', port: 50000, family: 4 };
const SERVER: Address = { address: '10.0.0.2', port: 4433, family: 4 };
const T0 = Date.UTC(2026, 0, 1);
let cert: GeneratedCertificate | undefined;

export interface InjectResult {
  handshake: boolean;
  injected: number;
  serverClose: CloseInfo | null;
  clientClose: CloseInfo | null;
  /** Contained internal errors (Endpoint onError, 'error' events): must stay empty. */
  bugs: string[];
  server: QuicConnection | null;
}

export function injectToServer(payloads: Uint8Array[], serverTransport: TransportConfig = {}): InjectResult {
  cert ??= generateSelfSigned({ provider: nodeProvider, names: ['example.com'], keyType: 'ec-p256', nowMs: T0 });
  const provider = nodeProvider;
  const bugs: string[] = [];
  const onError = (e: unknown): void => void bugs.push(`endpoint onError: ${e instanceof Error ? e.message : String(e)}`);
  const server = new Endpoint({
    provider,
    onError,
    server: { ...serverTransport, provider, tls: { identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: ['load'], now: () => T0 } },
  });
  const clientEp = new Endpoint({ provider, onError });
  const keyLog: string[] = [];
  let now = T0;
  const client = clientEp.connect(SERVER, { provider, tls: { serverName: 'example.com', insecureSkipVerify: true, alpn: ['load'], now: () => T0, keyLog: (l) => keyLog.push(l) } }, now);
  let serverConn: QuicConnection | null = null;
  let serverCid: Uint8Array | null = null;
  const res: InjectResult = { handshake: false, injected: 0, serverClose: null, clientClose: null, bugs, server: null };
  const drain = (): void => {
    for (let ev = server.pollEvent(); ev; ev = server.pollEvent()) if (ev.type === 'connection') serverConn = ev.connection;
    for (const c of [client, serverConn]) {
      if (!c) continue;
      for (let e = c.pollEvent(), n = 0; e && n < 10_000; e = c.pollEvent(), n++) {
        if (e.type === 'error') bugs.push(`${c.role} error event: ${String(e.error)}`);
        if (e.type === 'closed') {
          if (c === client) res.clientClose = e.info;
          else res.serverClose = e.info;
        }
      }
    }
  };
  const deliver = (from: Endpoint, to: Endpoint, fromAddr: Address): boolean => {
    let moved = false;
    for (let t = from.pollTransmit(now), n = 0; t && n < 1000; t = from.pollTransmit(now), n++) {
      const d = t.datagram;
      // The server's first SCID (long header: flags, version, DCID len + DCID, SCID len + SCID).
      if (from === server && !serverCid && (d[0]! & 0x80) !== 0) {
        const dl = d[5]!;
        serverCid = d.slice(7 + dl, 7 + dl + d[6 + dl]!);
      }
      to.receive(d, fromAddr, now);
      moved = true;
    }
    return moved;
  };
  const pump = (steps: number): void => {
    for (let i = 0; i < steps; i++) {
      const a = deliver(clientEp, server, CLIENT);
      const b = deliver(server, clientEp, SERVER);
      drain();
      if (!a && !b) {
        const ts = [clientEp.nextTimeout(), server.nextTimeout()].filter((x): x is number => x !== null);
        if (ts.length === 0) return;
        const next = Math.min(...ts);
        if (next - T0 > 20_000) return;
        now = Math.max(now, next);
        clientEp.handleTimeout(now);
        server.handleTimeout(now);
        drain();
      }
    }
  };
  for (let i = 0; i < 200 && !(client.handshakeComplete && (serverConn as QuicConnection | null)?.handshakeComplete); i++) pump(1);
  res.server = serverConn;
  res.handshake = client.handshakeComplete && !!(serverConn as QuicConnection | null)?.handshakeComplete;
  if (!res.handshake) return res;
  pump(10); // HANDSHAKE_DONE and its ACK: the server is confirmed
  const line = keyLog.find((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 '));
  if (!line || !serverCid) {
    bugs.push('no client 1-RTT secret or server CID');
    return res;
  }
  const keys = PacketKeys.fromSecret(provider, INITIAL_CIPHER, QUIC_V1, Uint8Array.from(Buffer.from(line.split(' ')[2]!, 'hex')));
  const dcid: Uint8Array = serverCid;
  payloads.forEach((payload, i) => {
    const pn = 0x100 + i;
    const body = payload.length >= 24 ? payload : Uint8Array.from([...payload, ...new Uint8Array(24 - payload.length)]);
    const d = new Uint8Array(1 + dcid.length + 2 + body.length + 16);
    const pnOffset = writeShortHeader(d, 0, dcid, pn, 2, false);
    d.set(body, pnOffset + 2);
    const end = keys.protect(d, 0, pnOffset, 2, pnOffset + 2 + body.length, pn);
    server.receive(d.subarray(0, end), CLIENT, now);
    res.injected++;
  });
  drain();
  pump(20);
  return res;
}
