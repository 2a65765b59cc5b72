/**
 * Session tickets, PSK resumption, 0-RTT (accepted / rejected), anti-replay, ticket key rotation,
 * and KeyUpdate — in-memory client/server pairs over both providers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { makeCert } from '../../../test/support/certs.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { Alert } from '../src/errors.js';
import type { SessionTicket, TlsEvent, TlsSession } from '../src/handshake/api.js';
import { MAX_TICKETS_PER_CONNECTION, TlsClient } from '../src/handshake/client.js';
import { TlsServer } from '../src/handshake/server.js';
import type { TlsClientConfig, TlsServerConfig } from '../src/handshake/config.js';
import { AntiReplay, TicketKeyring } from '../src/handshake/tickets.js';
import {
  ExtensionType,
  HandshakeType,
  bytesEqual,
  encodeClientHello,
  encodeOfferedPsks,
  findExt,
  parseClientHello,
  parseNewSessionTicket,
  parseOfferedPsks,
  parseServerHello,
} from '../src/handshake/codec.js';
import { KeySchedule } from '../src/keyschedule.js';
import { pinVerifier, runPair, secretsMatch } from './handshake-pair.js';

const cert = makeCert({ keyType: 'ec-p256', sans: ['example.com'] });

function ok(r: Awaited<ReturnType<typeof runPair>>, label: string): void {
  assert.is(r.c.alert?.error.message, undefined, `${label}: client alert`);
  assert.is(r.s.alert?.error.message, undefined, `${label}: server alert`);
  assert.ok(r.c.complete && r.s.complete, `${label}: complete`);
  // A rejected 0-RTT leaves the client with an early write secret the server never derived.
  const rejected = !r.c.session.info.earlyDataAccepted;
  const filter = (l: string[]) => l.filter((m) => !(rejected && m.includes('early')));
  assert.equal(filter(secretsMatch(r.c, r.s)), [], `${label}: secrets`);
  assert.equal(filter(secretsMatch(r.s, r.c)), [], `${label}: secrets (server view)`);
}

function drainAll(s: TlsSession): TlsEvent[] {
  const out: TlsEvent[] = [];
  for (let e = s.poll(); e; e = s.poll()) out.push(e);
  return out;
}

for (const p of providers) {
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const serverCfg = (extra: Partial<TlsServerConfig> = {}): TlsServerConfig => ({
    provider: p,
    identity: { chain: [cert.certDer], key: cert.keyDer },
    alpn: ['h2', 'http/1.1'],
    now,
    ...extra,
  });
  const clientCfg = (extra: Partial<TlsClientConfig> = {}): TlsClientConfig => ({
    provider: p,
    serverName: 'example.com',
    verifier: pinVerifier(cert.certDer),
    alpn: ['h2', 'http/1.1'],
    now,
    ...extra,
  });
  async function ticketFrom(scfg: TlsServerConfig, extra: Partial<TlsClientConfig> = {}): Promise<SessionTicket> {
    const r = await runPair(new TlsClient(clientCfg(extra)), new TlsServer(scfg));
    ok(r, 'ticket handshake');
    assert.ok(r.c.tickets.length > 0, 'got a ticket');
    return r.c.tickets[0]!;
  }

  test(`${p.name}: NewSessionTicket flood: at most MAX_TICKETS_PER_CONNECTION become tickets`, async () => {
    let copies = 0;
    const r = await runPair(new TlsClient(clientCfg()), new TlsServer(serverCfg({ tickets: { keys: new TicketKeyring(p), count: 2 } })), (from, level, data) => {
      if (from === 'server' && level === 'application' && data[0] === HandshakeType.new_session_ticket) {
        copies += 20;
        return Array.from({ length: 20 }, () => data);
      }
      return data;
    });
    ok(r, 'flood');
    assert.is(copies, 40);
    assert.is(r.c.tickets.length, MAX_TICKETS_PER_CONNECTION);
  });

  test(`${p.name}: tickets and PSK resumption`, async () => {
    const scfg = serverCfg({ tickets: { count: 2, lifetimeSeconds: 3600 } });
    const r0 = await runPair(new TlsClient(clientCfg()), new TlsServer(scfg));
    ok(r0, 'full');
    assert.is(r0.c.tickets.length, 2);
    const t = r0.c.tickets[1]!;
    assert.is(t.serverName, 'example.com');
    assert.is(t.lifetimeSeconds, 3600);
    assert.is(t.alpn, 'h2');
    assert.is(t.maxEarlyData, 0);
    assert.not.ok(bytesEqual(r0.c.tickets[0]!.psk, t.psk), 'distinct PSKs per ticket nonce');
    clock += 5000;
    const client = new TlsClient(clientCfg({ resumption: t }));
    const server = new TlsServer(scfg);
    let sawCert = false;
    const r = await runPair(client, server, (from, level, data) => {
      if (data[0] === HandshakeType.certificate) sawCert = true;
      return data;
    });
    ok(r, 'resumed');
    assert.is(client.info.resumed, true);
    assert.is(server.info.resumed, true);
    assert.not.ok(sawCert, 'no Certificate in a resumed handshake');
    assert.equal(client.info.peerCertificates, []);
    assert.is(client.info.signatureScheme, null);
    assert.is(r.c.tickets.length, 2, 'new tickets after resumption');
  });

  test(`${p.name}: unusable tickets fall back to a full handshake`, async () => {
    const scfg = serverCfg({ tickets: { lifetimeSeconds: 60 } });
    const t = await ticketFrom(scfg);
    // other server (other ticket keys)
    let client = new TlsClient(clientCfg({ resumption: t }));
    let r = await runPair(client, new TlsServer(serverCfg()));
    ok(r, 'foreign ticket');
    assert.is(client.info.resumed, false);
    // expired on the server (client clock lags)
    const stale = { ...t, receivedAt: clock + 120_000 };
    clock += 120_000;
    client = new TlsClient(clientCfg({ resumption: stale }));
    r = await runPair(client, new TlsServer(scfg));
    ok(r, 'expired');
    assert.is(client.info.resumed, false);
    // other server name: the client does not offer it
    const t2 = await ticketFrom(scfg);
    client = new TlsClient(clientCfg({ resumption: { ...t2, serverName: 'other.example' } }));
    r = await runPair(client, new TlsServer(scfg));
    ok(r, 'other name');
    assert.is(client.info.resumed, false);
  });

  test(`${p.name}: server selects a later PSK identity; binders of different lengths`, async () => {
    const scfg = serverCfg();
    const t = await ticketFrom(scfg);
    const client = new TlsClient(clientCfg({ resumption: t }));
    client.start();
    const ch0 = (drainAll(client).find((e) => e.type === 'send') as Extract<TlsEvent, { type: 'send' }>).data;
    const ch = parseClientHello(ch0.subarray(4));
    const mine = parseOfferedPsks(findExt(ch.extensions, ExtensionType.pre_shared_key)!);
    ch.extensions = ch.extensions.filter((e) => e.type !== ExtensionType.pre_shared_key);
    ch.extensions.push(
      encodeOfferedPsks({
        identities: [{ identity: p.randomBytes(40), obfuscatedAge: 1 }, mine.identities[0]!],
        binders: [new Uint8Array(48), new Uint8Array(32)],
      }),
    );
    const msg = encodeClientHello(ch);
    const ks = new KeySchedule(p, 'sha256');
    const truncated = msg.subarray(0, msg.length - (2 + 49 + 33));
    msg.set(ks.finishedMac(ks.binderKey(ks.earlySecret(t.psk)), p.digest('sha256', truncated)), msg.length - 32);
    const server = new TlsServer(scfg);
    server.receive('initial', msg);
    const ev = drainAll(server);
    assert.not.ok(ev.some((e) => e.type === 'alert'), JSON.stringify(ev.find((e) => e.type === 'alert')));
    const sh = parseServerHello((ev.find((e) => e.type === 'send') as Extract<TlsEvent, { type: 'send' }>).data.subarray(4));
    assert.equal([...findExt(sh.extensions, ExtensionType.pre_shared_key)!], [0, 1], 'second identity selected');
    assert.is(server.info.resumed, true);
  });

  test(`${p.name}: psk_ke resumption (no (EC)DHE) only when the server allows it`, async () => {
    const scfg = serverCfg({ tickets: { allowPskOnly: true } });
    const t = await ticketFrom(scfg);
    let client = new TlsClient(clientCfg({ resumption: t, pskModes: ['psk_ke'] }));
    let server = new TlsServer(scfg);
    let sawShare = true;
    let r = await runPair(client, server, (from, level, data) => {
      if (data[0] === HandshakeType.server_hello) sawShare = data.length > 4 + 2 + 32 + 1 + 32 + 2 + 1 + 2 + 6 + 6;
      return data;
    });
    ok(r, 'psk_ke');
    assert.is(client.info.resumed, true);
    assert.is(client.info.group, null);
    assert.is(server.info.group, null);
    assert.not.ok(sawShare, 'ServerHello without key_share');
    // A server that does not allow psk_ke ignores the PSK and does a full handshake.
    const strict = serverCfg();
    const t2 = await ticketFrom(strict);
    client = new TlsClient(clientCfg({ resumption: t2, pskModes: ['psk_ke'] }));
    server = new TlsServer(strict);
    r = await runPair(client, server);
    ok(r, 'psk_ke refused');
    assert.is(client.info.resumed, false);
    assert.is(client.info.group, 'x25519mlkem768');
  });

  test(`${p.name}: ticket key rotation (current + previous)`, async () => {
    const keys = new TicketKeyring(p);
    const scfg = serverCfg({ tickets: { keys } });
    const t = await ticketFrom(scfg);
    keys.rotate();
    let client = new TlsClient(clientCfg({ resumption: t }));
    ok(await runPair(client, new TlsServer(scfg)), 'previous key');
    assert.is(client.info.resumed, true);
    keys.rotate();
    client = new TlsClient(clientCfg({ resumption: t }));
    ok(await runPair(client, new TlsServer(scfg)), 'retired key');
    assert.is(client.info.resumed, false);
  });

  test(`${p.name}: wrong PSK binder → decrypt_error`, async () => {
    const scfg = serverCfg();
    const t = await ticketFrom(scfg);
    const r = await runPair(new TlsClient(clientCfg({ resumption: t })), new TlsServer(scfg), (from, level, data) => {
      if (data[0] === HandshakeType.client_hello) {
        const d = data.slice();
        d[d.length - 1] ^= 1; // last byte of the binder
        return d;
      }
      return data;
    });
    assert.is(r.s.alert?.alert, Alert.decrypt_error);
    // A PSK derived from the wrong secret: the binder is valid-looking but wrong.
    const r2 = await runPair(new TlsClient(clientCfg({ resumption: { ...t, psk: new Uint8Array(t.psk.length) } })), new TlsServer(scfg));
    assert.is(r2.s.alert?.alert, Alert.decrypt_error);
  });

  test(`${p.name}: 0-RTT accepted (TCP): early secrets, EndOfEarlyData`, async () => {
    const scfg = serverCfg({ maxEarlyData: 16384 });
    const t = await ticketFrom(scfg);
    assert.is(t.maxEarlyData, 16384);
    const lines: string[] = [];
    const client = new TlsClient(clientCfg({ resumption: t, earlyData: true, keyLog: (l) => lines.push(l) }));
    const server = new TlsServer(scfg);
    const seen: string[] = [];
    const r = await runPair(client, server, (from, level, data) => {
      seen.push(`${from}:${level}:${data[0]}`);
      return data;
    });
    ok(r, '0-rtt');
    assert.ok(r.c.secrets.has('early/write') && r.s.secrets.has('early/read'));
    assert.ok(bytesEqual(r.c.secrets.get('early/write')!, r.s.secrets.get('early/read')!));
    assert.is(client.info.earlyDataAccepted, true);
    assert.is(server.info.earlyDataAccepted, true);
    const ce = r.c.events;
    const idx = (f: (e: TlsEvent) => boolean) => ce.findIndex(f);
    assert.ok(idx((e) => e.type === 'secret' && e.level === 'early') === 1, 'early write secret right after the ClientHello');
    assert.ok(ce.some((e) => e.type === 'earlyData' && e.accepted));
    assert.ok(seen.includes(`client:early:${HandshakeType.end_of_early_data}`), 'EndOfEarlyData at the early level');
    // The handshake write key arrives with the ServerHello (TCP alerts are protected from then on);
    // EndOfEarlyData is still sent at 'early', before any handshake-level message.
    const hsWrite = idx((e) => e.type === 'secret' && e.level === 'handshake' && e.direction === 'write');
    const hsRead = idx((e) => e.type === 'secret' && e.level === 'handshake' && e.direction === 'read');
    assert.ok(hsWrite > 0 && hsWrite === hsRead + 1, 'handshake write key at the ServerHello');
    assert.ok(
      idx((e) => e.type === 'send' && e.level === 'early') < idx((e) => e.type === 'send' && e.level === 'handshake'),
      'EndOfEarlyData before the client flight',
    );
    assert.ok(r.s.events.some((e) => e.type === 'earlyData' && e.accepted));
    const early = lines.find((l) => l.startsWith('CLIENT_EARLY_TRAFFIC_SECRET '));
    assert.ok(early?.endsWith(Buffer.from(r.c.secrets.get('early/write')!).toString('hex')), 'early secret in the key log');
  });

  test(`${p.name}: 0-RTT rejected: ticket reused, ALPN changed, replay cache full, after HRR`, async () => {
    const keys = new TicketKeyring(p);
    const scfg = serverCfg({ maxEarlyData: 1000, tickets: { keys, count: 3 } });
    const r0 = await runPair(new TlsClient(clientCfg()), new TlsServer(scfg));
    const [t1, t2, t3] = r0.c.tickets;
    // first use accepted
    let client = new TlsClient(clientCfg({ resumption: t1, earlyData: true }));
    ok(await runPair(client, new TlsServer(scfg)), 'first use');
    assert.is(client.info.earlyDataAccepted, true);
    // reuse: resumed, 0-RTT refused
    client = new TlsClient(clientCfg({ resumption: t1, earlyData: true }));
    let r = await runPair(client, new TlsServer(scfg));
    ok(r, 'reuse');
    assert.is(client.info.resumed, true);
    assert.is(client.info.earlyDataAccepted, false);
    assert.ok(r.c.events.some((e) => e.type === 'earlyData' && !e.accepted), 'client told 0-RTT was rejected');
    assert.ok(r.s.events.some((e) => e.type === 'earlyData' && !e.accepted));
    assert.not.ok(r.s.secrets.has('early/read'));
    // ALPN changed: a server preferring http/1.1 (same ticket keys)
    const other = serverCfg({ maxEarlyData: 1000, tickets: { keys }, alpn: ['http/1.1', 'h2'] });
    client = new TlsClient(clientCfg({ resumption: t2, earlyData: true }));
    r = await runPair(client, new TlsServer(other));
    ok(r, 'alpn changed');
    assert.is(client.info.resumed, true);
    assert.is(client.info.alpn, 'http/1.1');
    assert.is(client.info.earlyDataAccepted, false);
    // replay cache full
    const tiny = serverCfg({ maxEarlyData: 1000, tickets: { keys, count: 3 }, antiReplay: new AntiReplay(1) });
    const r1 = await runPair(new TlsClient(clientCfg()), new TlsServer(tiny));
    client = new TlsClient(clientCfg({ resumption: r1.c.tickets[0], earlyData: true }));
    ok(await runPair(client, new TlsServer(tiny)), 'cache slot 1');
    assert.is(client.info.earlyDataAccepted, true);
    client = new TlsClient(clientCfg({ resumption: r1.c.tickets[1], earlyData: true }));
    ok(await runPair(client, new TlsServer(tiny)), 'cache full');
    assert.is(client.info.resumed, true);
    assert.is(client.info.earlyDataAccepted, false);
    // after HRR: resumed, never 0-RTT
    const hrr = serverCfg({ maxEarlyData: 1000, tickets: { keys }, groups: ['secp256r1'] });
    client = new TlsClient(clientCfg({ resumption: t3, earlyData: true, keyShares: ['x25519'] }));
    r = await runPair(client, new TlsServer(hrr));
    ok(r, 'hrr resumption');
    assert.is(client.info.helloRetry, true);
    assert.is(client.info.resumed, true);
    assert.is(client.info.earlyDataAccepted, false);
    assert.ok(r.c.events.some((e) => e.type === 'earlyData' && !e.accepted));
  });

  test(`${p.name}: QUIC 0-RTT: max_early_data 0xffffffff, no EndOfEarlyData, transport parameters remembered`, async () => {
    const stp = Uint8Array.of(7, 7, 7);
    const scfg = serverCfg({ maxEarlyData: 1, quic: { transportParameters: stp }, alpn: ['h3'] });
    const cq = { quic: { transportParameters: Uint8Array.of(1) }, alpn: ['h3'] };
    let nst: Uint8Array | null = null;
    const r0 = await runPair(new TlsClient(clientCfg(cq)), new TlsServer(scfg), (from, level, data) => {
      if (data[0] === HandshakeType.new_session_ticket) nst = data;
      return data;
    });
    ok(r0, 'quic full');
    assert.is(parseNewSessionTicket(nst!.subarray(4)).maxEarlyData, 0xffffffff);
    const t = r0.c.tickets[0]!;
    assert.ok(bytesEqual(t.transportParameters!, stp));
    const client = new TlsClient(clientCfg({ ...cq, resumption: t, earlyData: true }));
    const seen: number[] = [];
    const r = await runPair(client, new TlsServer(scfg), (from, level, data) => {
      seen.push(data[0]!);
      return data;
    });
    ok(r, 'quic 0-rtt');
    assert.is(client.info.earlyDataAccepted, true);
    assert.not.ok(seen.includes(HandshakeType.end_of_early_data));
    assert.ok(bytesEqual(r.c.secrets.get('early/write')!, r.s.secrets.get('early/read')!));
  });

  test(`${p.name}: shared config + per-connection options (QUIC transport parameters, key log) keep tickets working`, async () => {
    const shared = serverCfg({ quic: { transportParameters: Uint8Array.of(0) }, alpn: ['h3'], maxEarlyData: 1 });
    const cq = { quic: { transportParameters: Uint8Array.of(1) }, alpn: ['h3'] };
    const lines: string[] = [];
    const client0 = new TlsClient(clientCfg(cq));
    const r0 = await runPair(client0, new TlsServer(shared, { quicTransportParameters: Uint8Array.of(5, 5), keyLog: (l) => lines.push(l) }));
    ok(r0, 'conn 1');
    assert.ok(bytesEqual(client0.info.peerTransportParameters!, Uint8Array.of(5, 5)), 'per-connection transport parameters');
    assert.ok(lines.length >= 5, 'per-connection key log');
    const client = new TlsClient(clientCfg({ ...cq, resumption: r0.c.tickets[0], earlyData: true }));
    const r = await runPair(client, new TlsServer(shared, { quicTransportParameters: Uint8Array.of(6), now: () => clock + 1 }));
    ok(r, 'conn 2');
    assert.is(client.info.resumed, true);
    assert.is(client.info.earlyDataAccepted, true);
    assert.ok(bytesEqual(client.info.peerTransportParameters!, Uint8Array.of(6)));
    assert.throws(() => new TlsServer(serverCfg(), { quicTransportParameters: Uint8Array.of(1) }), /quic/);
    // A per-connection clock far in the future makes the ticket stale: full handshake.
    const late = new TlsClient(clientCfg({ ...cq, resumption: r0.c.tickets[1] ?? r.c.tickets[0] }));
    ok(await runPair(late, new TlsServer(shared, { now: () => clock + 10 * 86400_000 })), 'late');
    assert.is(late.info.resumed, false);
  });

  test(`${p.name}: resumption with client authentication keeps the client certificate`, async () => {
    const cc = makeCert({ keyType: 'ed25519', sans: ['client.test'] });
    const scfg = serverCfg({ clientAuth: 'require', clientVerifier: pinVerifier(cc.certDer) });
    const withCert = { clientCertificate: { chain: [cc.certDer], key: cc.keyDer } };
    const t = await ticketFrom(scfg, withCert);
    const server = new TlsServer(scfg);
    const client = new TlsClient(clientCfg({ ...withCert, resumption: t }));
    ok(await runPair(client, server), 'resumed with client auth');
    assert.is(server.info.resumed, true);
    assert.ok(bytesEqual(server.info.peerCertificates![0]!, cc.certDer));
  });

  test(`${p.name}: KeyUpdate (TCP)`, async () => {
    const client = new TlsClient(clientCfg());
    const server = new TlsServer(serverCfg());
    const r = await runPair(client, server);
    ok(r, 'hs');
    const c0 = r.c.secrets.get('application/write')!;
    const s0 = r.s.secrets.get('application/write')!;
    client.updateKeys(true);
    const ce = drainAll(client);
    assert.equal(ce.map((e) => e.type), ['send', 'secret']);
    const c1 = (ce[1] as Extract<TlsEvent, { type: 'secret' }>).secret;
    assert.not.ok(bytesEqual(c0, c1));
    server.receive('application', (ce[0] as Extract<TlsEvent, { type: 'send' }>).data);
    const se = drainAll(server);
    assert.equal(se.map((e) => e.type), ['secret', 'send', 'secret'], 'server updates read, answers once, updates write');
    assert.ok(bytesEqual((se[0] as Extract<TlsEvent, { type: 'secret' }>).secret, c1));
    const s1 = (se[2] as Extract<TlsEvent, { type: 'secret' }>).secret;
    assert.not.ok(bytesEqual(s0, s1));
    const answer = (se[1] as Extract<TlsEvent, { type: 'send' }>).data;
    assert.is(answer[4], 0, 'answer is update_not_requested');
    client.receive('application', answer);
    const ce2 = drainAll(client);
    assert.equal(ce2.map((e) => e.type), ['secret'], 'no ping-pong');
    assert.ok(bytesEqual((ce2[0] as Extract<TlsEvent, { type: 'secret' }>).secret, s1));
    // server-initiated, not requested
    server.updateKeys(false);
    const se2 = drainAll(server);
    client.receive('application', (se2[0] as Extract<TlsEvent, { type: 'send' }>).data);
    const ce3 = drainAll(client);
    assert.equal(ce3.map((e) => e.type), ['secret']);
    assert.ok(bytesEqual((ce3[0] as Extract<TlsEvent, { type: 'secret' }>).secret, (se2[1] as Extract<TlsEvent, { type: 'secret' }>).secret));
    // invalid request_update → illegal_parameter
    client.receive('application', Uint8Array.of(24, 0, 0, 1, 2));
    const bad = drainAll(client);
    assert.is(bad[0]?.type === 'alert' && bad[0].alert, Alert.illegal_parameter);
    // KeyUpdate followed by more bytes in the same delivery → unexpected_message
    const s2 = new TlsServer(serverCfg());
    ok(await runPair(new TlsClient(clientCfg()), s2), 'hs2');
    s2.receive('application', Uint8Array.of(24, 0, 0, 1, 0, 24, 0));
    const e2 = drainAll(s2);
    assert.is(e2.at(-1)?.type === 'alert' && (e2.at(-1) as Extract<TlsEvent, { type: 'alert' }>).alert, Alert.unexpected_message);
    // updateKeys before the handshake is a local usage error
    assert.throws(() => new TlsClient(clientCfg()).updateKeys(false), /before the handshake/);
  });
}

test.run();
