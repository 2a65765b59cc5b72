/**
 * In-memory client/server driver for handshake tests: shuttles 'send' events to the peer at the
 * same level, awaits the server's `pending` (async resolver), and records every event.
 */
import { Alert, tlsError } from '../src/errors.js';
import type { CertificateVerifier, EncryptionLevel, SessionTicket, TlsEvent, TlsSession } from '../src/handshake/api.js';
import { bytesEqual } from '../src/handshake/codec.js';

export interface Side {
  session: TlsSession;
  events: TlsEvent[];
  /** Secrets by `${level}/${direction}` (latest). */
  secrets: Map<string, Uint8Array>;
  tickets: SessionTicket[];
  alert: Extract<TlsEvent, { type: 'alert' }> | null;
  complete: boolean;
}

export function side(session: TlsSession): Side {
  return { session, events: [], secrets: new Map(), tickets: [], alert: null, complete: false };
}

/** Optional hook to tamper with / drop / reorder messages in flight: return the bytes to deliver (or null to drop). */
export type Tamper = (from: 'client' | 'server', level: EncryptionLevel, data: Uint8Array, index: number) => Uint8Array | Uint8Array[] | null;

function drain(s: Side, out: { level: EncryptionLevel; data: Uint8Array }[]): void {
  for (let e = s.session.poll(); e; e = s.session.poll()) {
    s.events.push(e);
    if (e.type === 'send') out.push({ level: e.level, data: e.data });
    else if (e.type === 'secret') s.secrets.set(`${e.level}/${e.direction}`, e.secret);
    else if (e.type === 'sessionTicket') s.tickets.push(e.ticket);
    else if (e.type === 'alert') s.alert = e;
    else if (e.type === 'handshakeComplete') s.complete = true;
  }
}

/** Runs the handshake to quiescence (bounded). */
export async function runPair(client: TlsSession, server: TlsSession, tamper?: Tamper): Promise<{ c: Side; s: Side }> {
  const c = side(client);
  const s = side(server);
  client.start();
  server.start();
  let idx = 0;
  for (let round = 0; round < 50; round++) {
    const fromC: { level: EncryptionLevel; data: Uint8Array }[] = [];
    const fromS: { level: EncryptionLevel; data: Uint8Array }[] = [];
    drain(c, fromC);
    drain(s, fromS);
    if (s.session.pending) {
      await s.session.pending;
      drain(s, fromS);
    }
    let moved = false;
    for (const m of fromC) {
      const d = tamper ? tamper('client', m.level, m.data, idx++) : m.data;
      for (const x of d === null ? [] : Array.isArray(d) ? d : [d]) {
        server.receive(m.level, x);
        moved = true;
      }
    }
    for (const m of fromS) {
      const d = tamper ? tamper('server', m.level, m.data, idx++) : m.data;
      for (const x of d === null ? [] : Array.isArray(d) ? d : [d]) {
        client.receive(m.level, x);
        moved = true;
      }
    }
    if (!moved && !s.session.pending) {
      drain(c, fromC);
      drain(s, fromS);
      if (fromC.length === 0 && fromS.length === 0) break;
      // deliver leftovers on the next round
      for (const m of fromC) server.receive(m.level, m.data);
      for (const m of fromS) client.receive(m.level, m.data);
    }
  }
  drain(c, []);
  drain(s, []);
  return { c, s };
}

/** A pinning verifier: accepts exactly `leaf` as the first certificate. */
export function pinVerifier(leaf: Uint8Array, log?: { serverName: (string | null)[] }): CertificateVerifier {
  return {
    verifyServer(chain, serverName) {
      log?.serverName.push(serverName);
      return chain.length > 0 && bytesEqual(chain[0]!, leaf) ? null : tlsError(Alert.bad_certificate, 'unexpected server certificate');
    },
    verifyClient(chain) {
      return chain.length > 0 && bytesEqual(chain[0]!, leaf) ? null : tlsError(Alert.bad_certificate, 'unexpected client certificate');
    },
  };
}

/** Asserts the two sides derived matching secrets for every level both have. */
export function secretsMatch(c: Side, s: Side): string[] {
  const problems: string[] = [];
  for (const [k, v] of c.secrets) {
    const [level, dir] = k.split('/');
    const peer = s.secrets.get(`${level}/${dir === 'write' ? 'read' : 'write'}`);
    if (!peer) problems.push(`server has no ${level} secret for client ${dir}`);
    else if (!bytesEqual(peer, v)) problems.push(`${k} mismatch`);
  }
  return problems;
}
