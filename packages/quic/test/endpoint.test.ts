/**
 * Endpoint (sans-I/O routing, accept, Retry, Version Negotiation, Stateless Reset, limits) with a
 * fake Connection: the endpoint's decisions are checked on the wire bytes it produces.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CryptoProvider } from '@petrel/tls-core';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import type { Address, ConnectionEvent, QuicConnection, StreamChunk, Transmit } from '../src/api.js';
import type { ClientConnectionConfig, ConnectionHost, ServerConnectionParams, ServerTransportConfig } from '../src/config.js';
import { Endpoint, type ConnectionFactory, type EndpointOptions } from '../src/endpoint.js';
import { Frame, FrameType, decodeFrame } from '../src/frames.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader, writeShortHeader } from '../src/header.js';
import { initialKeys } from '../src/initial.js';
import { sealPacket } from '../src/packet.js';
import { UnprotectedPacket } from '../src/protection.js';
import { parseRetry } from '../src/retry.js';
import { QUIC_V1, QUIC_V2, isReservedVersion, parseVersionNegotiation } from '../src/version.js';

class FakeConn implements QuicConnection {
  version = QUIC_V1;
  isClosed = false;
  handshakeComplete = false;
  received: Uint8Array[] = [];
  out: Transmit[] = [];
  timeout: number | null = null;
  timeouts: number[] = [];
  cids: Uint8Array[] = [];
  constructor(
    readonly role: 'client' | 'server',
    public remote: Address,
    readonly host: ConnectionHost,
    readonly params: ServerConnectionParams | null,
    readonly cfg: ClientConnectionConfig | ServerTransportConfig,
  ) {
    if (params) {
      this.cids.push(params.localCid);
      host.cidChanged(params.localCid, true);
    } else {
      const c = host.newCid();
      this.cids.push(c);
      host.cidChanged(c, true);
    }
  }
  issue(): Uint8Array {
    const c = this.host.newCid();
    this.cids.push(c);
    this.host.cidChanged(c, true);
    return c;
  }
  receive(d: Uint8Array): void {
    this.received.push(d);
  }
  pollTransmit(): Transmit | null {
    return this.out.shift() ?? null;
  }
  nextTimeout(): number | null {
    return this.timeout;
  }
  handleTimeout(now: number): void {
    this.timeouts.push(now);
    this.timeout = null;
  }
  pollEvent(): ConnectionEvent | undefined {
    return undefined;
  }
  openStream(): number | null {
    return null;
  }
  write(): number {
    return 0;
  }
  read(): StreamChunk | null {
    return null;
  }
  resetStream(): void {}
  stopSending(): void {}
  sendDatagram(): boolean {
    return false;
  }
  updateKeys(): boolean {
    return false;
  }
  migrate(): boolean {
    return false;
  }
  close(): void {
    this.finish();
  }
  finish(): void {
    this.isClosed = true;
    for (const c of this.cids) this.host.cidChanged(c, false);
  }
}

function fakeFactory(): ConnectionFactory & { made: FakeConn[] } {
  const made: FakeConn[] = [];
  return {
    made,
    client(cfg, remote, host) {
      const c = new FakeConn('client', remote, host, null, cfg);
      made.push(c);
      return c;
    },
    server(cfg, params, host) {
      const c = new FakeConn('server', params.remote, host, params, cfg);
      made.push(c);
      return c;
    },
  };
}

const CLIENT: Address = { address: '127.0.0.1', port: 50000, family: 4 };
const OTHER: Address = { address: '127.0.0.1', port: 50001, family: 4 };

function serverEndpoint(p: CryptoProvider, extra: Partial<EndpointOptions['server']> = {}, opts: Partial<EndpointOptions> = {}) {
  const factory = fakeFactory();
  const errors: unknown[] = [];
  const ep = new Endpoint({
    provider: p,
    server: { provider: p, tls: { alpn: ['hq-interop'] }, ...extra },
    factory,
    onError: (e) => errors.push(e),
    ...opts,
  });
  return { ep, factory, errors };
}

/** A protected client Initial (PING + padding) in a datagram of `size` bytes. */
function clientInitial(p: CryptoProvider, dcid: Uint8Array, scid: Uint8Array, token: Uint8Array | null = null, size = 1200, version = QUIC_V1): Uint8Array {
  const buf = new Uint8Array(size + 64);
  const keys = initialKeys(p, version, dcid, false).write;
  const pnOff = writeLongHeader(buf, 0, PacketType.Initial, version, dcid, scid, token, 0, 4, 2);
  buf[pnOff + 4] = FrameType.PING;
  const end = sealPacket(keys, buf, 0, pnOff, 4, 2, pnOff + 5, 0, size);
  return buf.slice(0, end);
}

function shortPacket(dcid: Uint8Array, size: number, rng: Rng): Uint8Array {
  const buf = rng.bytes(size);
  writeShortHeader(buf, 0, dcid, 7, 2, false);
  return buf;
}

/** Decrypts the server's Initial CONNECTION_CLOSE with the client's keys; returns the error code. */
function initialCloseCode(p: CryptoProvider, clientDcid: Uint8Array, d: Uint8Array): number {
  const h = new PacketHeader();
  assert.ok(parseHeader(d, 0, d.length, 8, h), 'close packet parses');
  assert.is(h.type, PacketType.Initial);
  const keys = initialKeys(p, h.version, clientDcid, false).read;
  const u = new UnprotectedPacket();
  const buf = d.slice();
  assert.ok(keys.unprotect(buf, 0, h.pnOffset, h.packetEnd, -1, u), 'close packet decrypts with the Initial keys');
  const f = new Frame();
  let off = u.payloadOffset;
  while (off < u.payloadEnd) {
    off = decodeFrame(buf, off, u.payloadEnd, PacketType.Initial, f);
    if (f.type === FrameType.CONNECTION_CLOSE) return f.errorCode;
  }
  throw new Error('no CONNECTION_CLOSE in the packet');
}

function drain(ep: Endpoint, now = 0): Transmit[] {
  const out: Transmit[] = [];
  for (let i = 0; i < 10_000; i++) {
    const t = ep.pollTransmit(now);
    if (!t) break;
    out.push(t);
  }
  return out;
}

for (const p of providers) {
  const rng = new Rng(`endpoint-${p.name}`);

  test(`${p.name}: accepts a client Initial, routes retransmits, short headers and new CIDs to the connection`, () => {
    const { ep, factory, errors } = serverEndpoint(p);
    const dcid = rng.bytes(8);
    const scid = rng.bytes(5);
    const d = clientInitial(p, dcid, scid);
    ep.receive(d, CLIENT, 0);
    const ev = ep.pollEvent();
    assert.ok(ev && ev.type === 'connection');
    assert.is(factory.made.length, 1);
    const c = factory.made[0]!;
    assert.is(ev!.connection, c);
    const params = c.params!;
    assert.equal([...params.initialDcid], [...dcid]);
    assert.equal([...params.originalDcid], [...dcid]);
    assert.equal([...params.clientScid], [...scid]);
    assert.is(params.retryScid, null);
    assert.is(params.addressValidated, false);
    assert.is(params.version, QUIC_V1);
    assert.is(params.localCid.length, 8);
    assert.is(c.received.length, 1, 'the first datagram is delivered');
    assert.is(ep.handshakesInFlight, 1);
    // A retransmitted Initial (same DCID) goes to the same connection, no new one.
    ep.receive(clientInitial(p, dcid, scid), CLIENT, 10);
    assert.is(factory.made.length, 1);
    assert.is(c.received.length, 2);
    // Short header to our CID.
    ep.receive(shortPacket(params.localCid, 50, rng), CLIENT, 20);
    assert.is(c.received.length, 3);
    // A CID issued later routes too; a retired one stops routing (→ treated as unknown).
    const c2 = c.issue();
    ep.receive(shortPacket(c2, 60, rng), OTHER, 30);
    assert.is(c.received.length, 4);
    c.host.cidChanged(c2, false);
    ep.receive(shortPacket(c2, 60, rng), OTHER, 40);
    assert.is(c.received.length, 4);
    assert.is(drain(ep, 40).length, 1, 'unknown CID from another address → Stateless Reset');
    // Handshake completes: no longer counted in flight.
    c.handshakeComplete = true;
    ep.receive(shortPacket(params.localCid, 50, rng), CLIENT, 50);
    assert.is(ep.handshakesInFlight, 0);
    assert.is(errors.length, 0);
  });

  test(`${p.name}: drops small Initials, short DCIDs, undecryptable Initials and stray long packets`, () => {
    const { ep, factory } = serverEndpoint(p);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), null, 1100), CLIENT, 0);
    ep.receive(clientInitial(p, rng.bytes(7), rng.bytes(8)), CLIENT, 0);
    const bad = clientInitial(p, rng.bytes(8), rng.bytes(8));
    bad[bad.length - 1]! ^= 0x55;
    ep.receive(bad, CLIENT, 0);
    // A Handshake packet with an unknown DCID.
    const hs = new Uint8Array(1200);
    writeLongHeader(hs, 0, PacketType.Handshake, QUIC_V1, rng.bytes(8), rng.bytes(8), null, 0, 1, 2);
    ep.receive(hs, CLIENT, 0);
    assert.is(factory.made.length, 0);
    assert.is(ep.pollEvent(), undefined);
    assert.is(drain(ep).length, 0);
    assert.ok(ep.stats.dropped >= 4);
  });

  test(`${p.name}: Version Negotiation for unknown versions in ≥1200-byte datagrams, with a greased version`, () => {
    const { ep } = serverEndpoint(p, { versions: [QUIC_V2, QUIC_V1] });
    const dcid = rng.bytes(12);
    const scid = rng.bytes(3);
    const d = new Uint8Array(1200);
    d[0] = 0xc0;
    new DataView(d.buffer).setUint32(1, 0x1a2a3a4a);
    d[5] = dcid.length;
    d.set(dcid, 6);
    d[6 + dcid.length] = scid.length;
    d.set(scid, 7 + dcid.length);
    ep.receive(d, CLIENT, 0);
    const out = drain(ep);
    assert.is(out.length, 1);
    const vn = parseVersionNegotiation(out[0]!.datagram);
    assert.ok(vn, 'a Version Negotiation packet');
    assert.equal([...vn!.dcid], [...scid], 'VN DCID = client SCID');
    assert.equal([...vn!.scid], [...dcid], 'VN SCID = client DCID');
    assert.equal(vn!.versions.slice(0, 2), [QUIC_V2, QUIC_V1]);
    assert.ok(vn!.versions.some(isReservedVersion), 'greased version listed');
    assert.is(out[0]!.remote.port, CLIENT.port);
    assert.ok(out[0]!.datagram.length < d.length);
    // Too small: no answer (§14.1 anti-amplification).
    ep.receive(d.subarray(0, 1199), CLIENT, 0);
    assert.is(drain(ep).length, 0);
    // A supported version the server does not accept → VN too.
    const { ep: ep1 } = serverEndpoint(p, { versions: [QUIC_V1] });
    ep1.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), null, 1200, QUIC_V2), CLIENT, 0);
    const o1 = drain(ep1);
    assert.is(o1.length, 1);
    assert.equal(parseVersionNegotiation(o1[0]!.datagram)!.versions[0], QUIC_V1);
    // A client-only endpoint never sends VN.
    const client = new Endpoint({ provider: p, factory: fakeFactory() });
    client.receive(d, CLIENT, 0);
    assert.is(drain(client).length, 0);
  });

  test(`${p.name}: retry 'always': Retry with a valid tag, then the token validates the address`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'always' });
    const odcid = rng.bytes(8);
    const scid = rng.bytes(8);
    ep.receive(clientInitial(p, odcid, scid), CLIENT, 0);
    assert.is(factory.made.length, 0);
    const out = drain(ep);
    assert.is(out.length, 1);
    const retry = parseRetry(p, out[0]!.datagram, odcid);
    assert.ok(retry, 'Retry parses and its integrity tag verifies');
    assert.equal([...retry!.dcid], [...scid]);
    assert.is(ep.stats.retriesSent, 1);
    // The client retries with the token and DCID = Retry SCID.
    ep.receive(clientInitial(p, retry!.scid, scid, retry!.token), CLIENT, 100);
    assert.is(factory.made.length, 1);
    const prm = factory.made[0]!.params!;
    assert.equal([...prm.originalDcid], [...odcid]);
    assert.equal([...prm.retryScid!], [...retry!.scid]);
    assert.equal([...prm.initialDcid], [...retry!.scid]);
    assert.is(prm.addressValidated, true);
    assert.is(drain(ep).length, 0);
  });

  test(`${p.name}: an invalid Retry token gets an Initial CONNECTION_CLOSE(INVALID_TOKEN)`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'always' });
    const odcid = rng.bytes(8);
    const scid = rng.bytes(8);
    ep.receive(clientInitial(p, odcid, scid), CLIENT, 0);
    const retry = parseRetry(p, drain(ep)[0]!.datagram, odcid)!;
    // From another port: the token binds the address.
    ep.receive(clientInitial(p, retry.scid, scid, retry.token), OTHER, 100);
    assert.is(factory.made.length, 0);
    let out = drain(ep);
    assert.is(out.length, 1);
    assert.is(initialCloseCode(p, retry.scid, out[0]!.datagram), 0x0b);
    // Expired (> 10 s).
    ep.receive(clientInitial(p, retry.scid, scid, retry.token), CLIENT, 60_000);
    out = drain(ep);
    assert.is(initialCloseCode(p, retry.scid, out[0]!.datagram), 0x0b);
    assert.is(ep.stats.invalidTokens, 2);
    // Garbage token (not ours): treated as no token → a Retry.
    ep.receive(clientInitial(p, odcid, scid, rng.bytes(40)), CLIENT, 0);
    out = drain(ep);
    assert.ok(parseRetry(p, out[0]!.datagram, odcid), 'garbage token → Retry');
  });

  test(`${p.name}: a valid Retry token used with another DCID is invalid (INVALID_TOKEN)`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'always' });
    const odcid = rng.bytes(8);
    const scid = rng.bytes(8);
    ep.receive(clientInitial(p, odcid, scid), CLIENT, 0);
    const retry = parseRetry(p, drain(ep)[0]!.datagram, odcid)!;
    const otherDcid = rng.bytes(8);
    ep.receive(clientInitial(p, otherDcid, scid, retry.token), CLIENT, 10);
    assert.is(factory.made.length, 0);
    assert.is(initialCloseCode(p, otherDcid, drain(ep)[0]!.datagram), 0x0b);
  });

  test(`${p.name}: retry 'auto' above the threshold; NEW_TOKEN tokens skip Retry`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'auto', retryThreshold: 1 });
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 0);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 0);
    assert.is(factory.made.length, 2);
    const odcid = rng.bytes(8);
    ep.receive(clientInitial(p, odcid, rng.bytes(8)), CLIENT, 0);
    assert.is(factory.made.length, 2);
    assert.ok(parseRetry(p, drain(ep)[0]!.datagram, odcid), 'third handshake in flight → Retry');
    const token = factory.made[0]!.host.newToken!('127.0.0.1', 0);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), token), OTHER, 1000);
    assert.is(factory.made.length, 3, 'NEW_TOKEN token (same IP, other port) accepted without Retry');
    assert.is(factory.made[2]!.params!.addressValidated, true);
    assert.is(factory.made[2]!.params!.retryScid, null);
  });

  test(`${p.name}: a NEW_TOKEN token validates one connection only (§8.1.4); replayed, it counts as no token`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'always' });
    const token = ep.tokens.newToken('127.0.0.1', 0);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), token), CLIENT, 1000);
    assert.is(factory.made.length, 1);
    assert.is(factory.made[0]!.params!.addressValidated, true);
    drain(ep, 1000);
    // The same token again (a replay, or the client reusing it): Retry, not an error close.
    const odcid = rng.bytes(8);
    ep.receive(clientInitial(p, odcid, rng.bytes(8), token), OTHER, 2000);
    assert.is(factory.made.length, 1);
    const out = drain(ep, 2000);
    assert.is(out.length, 1);
    assert.ok(parseRetry(p, out[0]!.datagram, odcid), 'Retry');
    assert.is(ep.stats.invalidTokens, 0);
    // Without Retry the connection starts, but its address is not validated (anti-amplification applies).
    const { ep: ep2, factory: f2 } = serverEndpoint(p, { retry: 'never' });
    const t2 = ep2.tokens.newToken('127.0.0.1', 0);
    ep2.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), t2), CLIENT, 1000);
    ep2.receive(clientInitial(p, rng.bytes(8), rng.bytes(8), t2), CLIENT, 1000);
    assert.equal(f2.made.map((c) => c.params!.addressValidated), [true, false]);
  });

  test(`${p.name}: limits refuse with CONNECTION_REFUSED; room frees when handshakes complete or connections close`, () => {
    const { ep, factory } = serverEndpoint(p, { maxHandshakes: 1, maxConnections: 2 });
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 0);
    const dcid2 = rng.bytes(8);
    ep.receive(clientInitial(p, dcid2, rng.bytes(8)), CLIENT, 0);
    assert.is(factory.made.length, 1);
    const out = drain(ep);
    assert.is(out.length, 1);
    assert.is(initialCloseCode(p, dcid2, out[0]!.datagram), 0x02);
    assert.is(ep.stats.refused, 1);
    const c0 = factory.made[0]!;
    c0.handshakeComplete = true;
    ep.receive(shortPacket(c0.params!.localCid, 40, rng), CLIENT, 1);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 2);
    assert.is(factory.made.length, 2);
    factory.made[1]!.handshakeComplete = true;
    ep.receive(shortPacket(factory.made[1]!.params!.localCid, 40, rng), CLIENT, 3);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 4);
    assert.is(factory.made.length, 2, 'maxConnections reached');
    drain(ep);
    c0.finish();
    ep.handleTimeout(5);
    assert.is(ep.connectionCount, 1);
    ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), CLIENT, 6);
    assert.is(factory.made.length, 3);
  });

  test(`${p.name}: Stateless Reset: smaller than the trigger, token of the DCID, rate-limited, queue bounded`, () => {
    const { ep } = serverEndpoint(p, {}, { resetsPerSecond: 10, maxQueued: 5 });
    const dcid = rng.bytes(8);
    ep.receive(shortPacket(dcid, 100, rng), CLIENT, 0);
    let out = drain(ep);
    assert.is(out.length, 1);
    const r = out[0]!.datagram;
    assert.ok(r.length < 100 && r.length >= 21);
    assert.is(r[0]! & 0xc0, 0x40, 'looks like a short header');
    assert.equal([...r.subarray(r.length - 16)], [...ep.tokens.resetToken(dcid)]);
    // 30 bytes → 29-byte reset; 21 bytes → none (it could not be smaller and valid).
    ep.receive(shortPacket(dcid, 30, rng), CLIENT, 0);
    out = drain(ep);
    assert.is(out[0]!.datagram.length, 29);
    ep.receive(shortPacket(dcid, 21, rng), CLIENT, 0);
    assert.is(drain(ep).length, 0);
    // Flood at one instant: the bucket (10/s) and the queue (5) bound the answers.
    for (let i = 0; i < 200; i++) ep.receive(shortPacket(rng.bytes(8), 60, rng), CLIENT, 0);
    out = drain(ep);
    assert.ok(out.length <= 5, `queue bounded (${out.length})`);
    for (let i = 0; i < 200; i++) {
      ep.receive(shortPacket(rng.bytes(8), 60, rng), CLIENT, 0);
      drain(ep);
    }
    const sent = ep.stats.statelessResetsSent;
    assert.ok(sent <= 10 + 1, `rate-limited (${sent})`);
    // A second later the bucket has refilled.
    ep.receive(shortPacket(rng.bytes(8), 60, rng), CLIENT, 1000);
    assert.is(drain(ep, 1000).length, 1);
  });

  test(`${p.name}: unknown short-header packets from a connection's peer go to that connection (possible reset for us)`, () => {
    const factory = fakeFactory();
    const ep = new Endpoint({ provider: p, factory });
    const c = ep.connect(CLIENT, { provider: p, tls: { alpn: ['x'], insecureSkipVerify: true } }, 0) as FakeConn;
    ep.receive(shortPacket(rng.bytes(8), 40, rng), CLIENT, 0);
    assert.is(c.received.length, 1);
    assert.is(drain(ep).length, 0, 'no reset sent toward our own peer');
    // Routing by the client's SCID.
    ep.receive(shortPacket(c.cids[0]!, 40, rng), OTHER, 0);
    assert.is(c.received.length, 2);
    assert.throws(() => ep.connect(CLIENT, { provider: p, tls: { alpn: ['x'], insecureSkipVerify: true }, cidLength: 12 }, 0), /cidLength/);
  });

  test(`${p.name}: an unknown short-header packet reaches the connection of its peer among more than 64 (§10.3.1), also after the peer migrated`, () => {
    const { ep, factory } = serverEndpoint(p, { retry: 'never' });
    const N = 70;
    const peer = (i: number): Address => ({ address: '10.0.0.1', port: 1000 + i, family: 4 });
    for (let i = 0; i < N; i++) ep.receive(clientInitial(p, rng.bytes(8), rng.bytes(8)), peer(i), 0);
    drain(ep);
    assert.is(ep.connectionCount, N);
    for (const i of [0, 10, 64, 69]) {
      const c = factory.made[i]!;
      const before = c.received.length;
      // E.g. a Stateless Reset from that client: offered to its connection, not answered by a reset.
      ep.receive(shortPacket(rng.bytes(8), 40, rng), peer(i), 1);
      assert.is(c.received.length, before + 1, `client #${i}: offered`);
      assert.is(ep.stats.statelessResetsSent, 0, `client #${i}: no reset toward our own peer`);
    }
    // Client #68 migrates: the connection reports its new address after a packet from there.
    const m = factory.made[68]!;
    const moved: Address = { address: '10.0.0.2', port: 4000, family: 4 };
    m.remote = moved;
    ep.receive(shortPacket(m.cids[0]!, 40, rng), moved, 2);
    const n0 = m.received.length;
    ep.receive(shortPacket(rng.bytes(8), 40, rng), moved, 2);
    assert.is(m.received.length, n0 + 1, 'offered at the new address');
    ep.receive(shortPacket(rng.bytes(8), 40, rng), peer(68), 2);
    assert.is(m.received.length, n0 + 1, 'not at the old one');
    assert.is(drain(ep, 2).length, 1, 'the old address gets a reset');
    // A closed connection's peer gets the endpoint's reset again.
    factory.made[69]!.finish();
    drain(ep, 3);
    const r0 = ep.stats.statelessResetsSent;
    ep.receive(shortPacket(rng.bytes(8), 40, rng), peer(69), 3);
    assert.is(ep.stats.statelessResetsSent, r0 + 1);
  });

  test(`${p.name}: pollTransmit round-robins connections; nextTimeout/handleTimeout; closed connections are unrouted`, () => {
    const factory = fakeFactory();
    const ep = new Endpoint({ provider: p, factory });
    const cfg = { provider: p, tls: { alpn: ['x'], insecureSkipVerify: true } };
    const a = ep.connect(CLIENT, cfg, 0) as FakeConn;
    const b = ep.connect(OTHER, cfg, 0) as FakeConn;
    const mk = (tag: number): Transmit => ({ datagram: new Uint8Array([tag]), remote: CLIENT });
    a.out.push(mk(1), mk(1), mk(1));
    b.out.push(mk(2), mk(2));
    assert.equal(
      drain(ep).map((t) => t.datagram[0]),
      [1, 2, 1, 2, 1],
    );
    a.timeout = 50;
    b.timeout = 20;
    assert.is(ep.nextTimeout(), 20);
    ep.handleTimeout(30);
    assert.equal(b.timeouts, [30]);
    assert.equal(a.timeouts, []);
    assert.is(ep.nextTimeout(), 50);
    a.finish();
    ep.handleTimeout(31);
    assert.is(ep.connectionCount, 1);
    ep.receive(shortPacket(a.cids[0]!, 40, rng), CLIENT, 40);
    assert.is(a.received.length, 0, 'a closed connection gets nothing');
    assert.is(drain(ep).length, 1, 'its CID is unknown now: Stateless Reset');
    assert.is(ep.nextTimeout(), null);
  });

  test(`${p.name}: fuzz: random and mutated datagrams never throw, memory stays bounded`, () => {
    const fz = new Rng(`endpoint-fuzz-${p.name}`);
    const { ep, factory, errors } = serverEndpoint(p, { retry: 'auto', retryThreshold: 4, maxConnections: 50, maxHandshakes: 20 }, { maxQueued: 16 });
    const seeds: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) seeds.push(clientInitial(p, fz.bytes(8), fz.bytes(fz.int(21))));
    const t0 = Date.now();
    let now = 0;
    for (let i = 0; i < 3000 && Date.now() - t0 < 4000; i++) {
      now += fz.int(5);
      let d: Uint8Array;
      const k = fz.int(6);
      if (k === 0) d = fz.bytes(fz.int(1400));
      else if (k === 1 && factory.made.length > 0) {
        const c = fz.pick(factory.made);
        d = shortPacket(c.cids[0]!, 1 + c.cids[0]!.length + fz.int(100), fz);
      } else {
        d = fz.pick(seeds).slice();
        const muts = 1 + fz.int(4);
        for (let m = 0; m < muts; m++) {
          const at = fz.int(d.length);
          const what = fz.int(4);
          if (what === 0) d[at] = fz.int(256);
          else if (what === 1) d = d.subarray(0, at);
          else if (what === 2 && at < 40) d[at]! ^= 1 << fz.int(8);
          else if (what === 3) {
            if (fz.chance(0.5)) d[fz.int(Math.min(d.length, 1) || 1)] = 0x80 | fz.int(128);
          }
        }
        if (fz.chance(0.2)) {
          // a fresh valid Initial from time to time (connections, limits)
          d = clientInitial(p, fz.bytes(8 + fz.int(13)), fz.bytes(fz.int(21)));
        }
      }
      ep.receive(d, fz.chance(0.5) ? CLIENT : OTHER, now);
      if (fz.chance(0.3)) drain(ep, now);
      if (fz.chance(0.05) && factory.made.length) fz.pick(factory.made).finish();
      if (fz.chance(0.05) && factory.made.length) fz.pick(factory.made).handshakeComplete = true;
      ep.handleTimeout(now);
      assert.ok(ep.connectionCount <= 50);
    }
    assert.equal(errors, [], 'no internal error reached the endpoint boundary');
    assert.ok(ep.stats.accepted > 0, 'some connections were accepted');
    assert.ok(drain(ep, now).length <= 16 + 50);
  });
}

test.run();
