/**
 * The wire layer against a real QUIC server (ngtcp2 gtlsserver, loopback only): our Version
 * Negotiation parsing, and a client Initial built and protected by us (the RFC 9001 A.2
 * ClientHello with ALPN "h3") whose answer (the server's Initial packets, coalesced with Handshake
 * packets) we split, unprotect and decode. Skips loudly when the peer is not installed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { peers, freePort, requirePeer, spawnPeer, withPeer } from '../../../test/support/peers.js';
import { buildRetry } from '../src/retry.js';
import { decodeTransportParameters } from '../src/transport-params.js';
import { providers } from '../../../test/support/providers.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader, writePacketLength } from '../src/header.js';
import { initialKeys } from '../src/initial.js';
import { UnprotectedPacket } from '../src/protection.js';
import { Frame, FrameType, decodeFrame } from '../src/frames.js';
import { QUIC_V1, QUIC_V2, parseVersionNegotiation } from '../src/version.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

// RFC 9001 Appendix A.2 CRYPTO frame (ClientHello for example.com, x25519, QUIC transport parameters
// with initial_source_connection_id 8394c8f03e515708).
const A2_CRYPTO =
  '060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c000004130113' +
  '02010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d00170018001000070005' +
  '04616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce1' +
  '5d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c0002400100' +
  '3900320408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806' +
  '048000ffff';
const CLIENT_SCID = hex('8394c8f03e515708');

/** The A.2 ClientHello with its ALPN "alpn" replaced by "h3" (the only one ngtcp2's examples speak). */
function h3CryptoFrame(): Uint8Array {
  const a = hex(A2_CRYPTO);
  const from = hex('00100007000504616c706e');
  const to = hex('001000050003026833');
  let at = -1;
  for (let i = 0; i + from.length <= a.length && at < 0; i++) if (from.every((b, j) => a[i + j] === b)) at = i;
  assert.ok(at > 0);
  const d = from.length - to.length;
  const out = new Uint8Array(a.length - d);
  out.set(a.subarray(0, at));
  out.set(to, at);
  out.set(a.subarray(at + from.length), at + to.length);
  const put16 = (o: number, v: number) => {
    out[o] = v >> 8;
    out[o + 1] = v & 0xff;
  };
  // CRYPTO Length (2-byte varint), Handshake length (24 bits), extensions length.
  assert.is(((a[2]! & 0x3f) << 8) | a[3]!, a.length - 4);
  put16(2, 0x4000 | (out.length - 4));
  assert.is((a[6]! << 8) | a[7]!, a.length - 8);
  put16(6, out.length - 8);
  assert.is((a[51]! << 8) | a[52]!, a.length - 53);
  put16(51, out.length - 53);
  return out;
}

function clientInitial(version: number, dcid: Uint8Array): Uint8Array {
  const provider = providers[0]!;
  const buf = new Uint8Array(1200);
  const pnOffset = writeLongHeader(buf, 0, PacketType.Initial, version, dcid, CLIENT_SCID, null, 0, 4, 2);
  const payloadEnd = buf.length - 16;
  writePacketLength(buf, pnOffset - 2, 2, buf.length - pnOffset);
  buf.set(h3CryptoFrame(), pnOffset + 4); // the rest stays 0: PADDING
  initialKeys(provider, version, dcid, false).write.protect(buf, 0, pnOffset, 4, payloadEnd, 0);
  return buf;
}

/** Sends `datagram` and collects answers until `done(all)` or the timeout. */
function exchange(sock: dgram.Socket, port: number, datagram: Uint8Array, done: (got: Uint8Array[]) => boolean, timeoutMs = 3000): Promise<Uint8Array[]> {
  return new Promise((resolve) => {
    const got: Uint8Array[] = [];
    const finish = () => {
      clearTimeout(timer);
      sock.off('message', onMsg);
      resolve(got);
    };
    const onMsg = (m: Buffer) => {
      got.push(new Uint8Array(m));
      if (done(got)) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('message', onMsg);
    sock.send(datagram, port, '127.0.0.1');
  });
}

interface ServerFlight {
  initials: number;
  handshakes: number;
  serverHello: Uint8Array | null;
  acked: boolean;
}

/** Splits, unprotects and decodes the server's answer with every provider. */
function readServerFlight(datagrams: Uint8Array[], version: number, dcid: Uint8Array): ServerFlight {
  const r: ServerFlight = { initials: 0, handshakes: 0, serverHello: null, acked: false };
  for (const provider of providers) {
    const { read } = initialKeys(provider, version, dcid, false);
    const h = new PacketHeader();
    const u = new UnprotectedPacket();
    const f = new Frame();
    let largest = -1;
    for (const d0 of datagrams) {
      const d = d0.slice();
      for (let off = 0; off < d.length; off = h.packetEnd) {
        if (!parseHeader(d, off, d.length, CLIENT_SCID.length, h)) break;
        assert.equal(d.subarray(h.dcidOffset, h.dcidOffset + h.dcidLength), CLIENT_SCID);
        if (h.type === PacketType.Handshake) r.handshakes++;
        if (h.type !== PacketType.Initial) continue;
        assert.is(h.version, version);
        assert.ok(read.unprotect(d, h.headerOffset, h.pnOffset, h.packetEnd, largest, u), `${provider.name}: server Initial opens`);
        largest = Math.max(largest, u.pn);
        r.initials++;
        for (let o = u.payloadOffset; o < u.payloadEnd; ) {
          o = decodeFrame(d, o, u.payloadEnd, PacketType.Initial, f);
          if (f.type === FrameType.ACK || f.type === FrameType.ACK_ECN) {
            assert.is(f.largestAcked, 0);
            r.acked = true;
          }
          if (f.type === FrameType.CRYPTO && f.offset === 0) r.serverHello = f.data();
          if (f.type === FrameType.CONNECTION_CLOSE) assert.unreachable(`server closed: 0x${f.errorCode.toString(16)} ${new TextDecoder().decode(f.data())}`);
        }
      }
    }
  }
  return r;
}

test('ngtcp2 server: Version Negotiation, and our v1 (and v2 if offered) Initial answered with a ServerHello', async () => {
  const srv = requirePeer('gtlsserver');
  if (!srv) return;
  const certs = peers().certs;
  const www = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-www-'));
  const port = await freePort('udp');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    await withPeer(srv, ['-q', '-d', www, '127.0.0.1', String(port), certs.key, certs.cert], { lifetimeMs: 20000, port, proto: 'udp' }, async () => {
      // 1. An unknown (reserved) version gets a Version Negotiation packet echoing our CIDs.
      const probe = new Uint8Array(1200);
      const vDcid = hex('0102030405060708');
      writeLongHeader(probe, 0, PacketType.Initial, 0x1a2a3a4a, vDcid, CLIENT_SCID, null, 0, 4, 2);
      const vnReply = await exchange(sock, port, probe, (g) => g.length > 0);
      assert.ok(vnReply.length > 0, 'no Version Negotiation answer');
      const vn = parseVersionNegotiation(vnReply[0]!);
      assert.ok(vn, 'parse Version Negotiation');
      assert.equal(vn!.dcid, CLIENT_SCID);
      assert.equal(vn!.scid, vDcid);
      assert.ok(vn!.versions.includes(QUIC_V1), `versions ${vn!.versions.map((v) => v.toString(16))}`);

      // 2. Initial per version the server supports.
      const versions = [QUIC_V1, ...(vn!.versions.includes(QUIC_V2) ? [QUIC_V2] : [])];
      if (!vn!.versions.includes(QUIC_V2)) console.log(`note: this ngtcp2 does not offer QUIC v2 (offers ${vn!.versions.map((v) => v.toString(16)).join(', ')}); v2 checked against RFC 9369 vectors only`);
      for (const version of versions) {
        const dcid = providers[0]!.randomBytes(8);
        const replies = await exchange(sock, port, clientInitial(version, dcid), (g) => readServerFlight(g, version, dcid).serverHello !== null);
        const flight = readServerFlight(replies, version, dcid);
        assert.ok(flight.initials > 0, 'server Initial received');
        assert.ok(flight.acked, 'our Initial was acknowledged');
        assert.ok(flight.serverHello, 'ServerHello received');
        assert.is(flight.serverHello![0], 2); // HandshakeType server_hello
        assert.is((flight.serverHello![4]! << 8) | flight.serverHello![5]!, 0x0303); // legacy_version
      }
    });
  } finally {
    sock.close();
    fs.rmSync(www, { recursive: true, force: true });
  }
});

/** Waits for the next datagram matching `pred` (bounded). */
function nextDatagram(sock: dgram.Socket, pred: (d: Uint8Array) => boolean, timeoutMs: number): Promise<{ d: Uint8Array; port: number } | null> {
  return new Promise((resolve) => {
    const onMsg = (m: Buffer, rinfo: dgram.RemoteInfo) => {
      const d = new Uint8Array(m);
      if (!pred(d)) return;
      clearTimeout(timer);
      sock.off('message', onMsg);
      resolve({ d, port: rinfo.port });
    };
    const timer = setTimeout(() => {
      sock.off('message', onMsg);
      resolve(null);
    }, timeoutMs);
    sock.on('message', onMsg);
  });
}

/** The quic_transport_parameters extension (0x39) of a ClientHello, or null. */
function transportParamsExtension(ch: Uint8Array): Uint8Array | null {
  if (ch[0] !== 1) return null;
  let o = 4 + 2 + 32;
  o += 1 + ch[o]!; // session id
  o += 2 + ((ch[o]! << 8) | ch[o + 1]!); // cipher suites
  o += 1 + ch[o]!; // compression
  const end = o + 2 + ((ch[o]! << 8) | ch[o + 1]!);
  for (o += 2; o + 4 <= end; ) {
    const type = (ch[o]! << 8) | ch[o + 1]!;
    const len = (ch[o + 2]! << 8) | ch[o + 3]!;
    if (type === 0x39) return ch.subarray(o + 4, o + 4 + len);
    o += 4 + len;
  }
  return null;
}

test('ngtcp2 client: its Initial opens with our keys, its transport parameters decode, and it follows our Retry', async () => {
  const cli = requirePeer('gtlsclient');
  if (!cli) return;
  const provider = providers[0]!;
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-dl-'));
  const proc = spawnPeer(cli, ['-q', '--download', out, '127.0.0.1', String(port), `https://127.0.0.1:${port}/x`], { lifetimeMs: 10000 });
  try {
    const isInitial = (d: Uint8Array) => {
      const h = new PacketHeader();
      return parseHeader(d, 0, d.length, 0, h) && h.type === PacketType.Initial;
    };
    const first = await nextDatagram(sock, isInitial, 5000);
    assert.ok(first, `no Initial from gtlsclient: ${proc.output()}`);
    const d = first!.d;
    assert.ok(d.length >= 1200, 'client Initial datagram padded to 1200 bytes');
    const h = new PacketHeader();
    assert.ok(parseHeader(d, 0, d.length, 0, h));
    assert.is(h.version, QUIC_V1);
    const odcid = d.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
    const clientScid = d.slice(h.scidOffset, h.scidOffset + h.scidLength);
    assert.is(h.tokenLength, 0);
    for (const p of providers) {
      const copy = d.slice();
      const { read } = initialKeys(p, QUIC_V1, odcid, true);
      const u = new UnprotectedPacket();
      assert.ok(read.unprotect(copy, 0, h.pnOffset, h.packetEnd, -1, u), `${p.name}: client Initial opens`);
      const f = new Frame();
      let ch: Uint8Array | null = null;
      for (let o = u.payloadOffset; o < u.payloadEnd; ) {
        o = decodeFrame(copy, o, u.payloadEnd, PacketType.Initial, f);
        if (f.type === FrameType.CRYPTO && f.offset === 0) ch = f.data();
      }
      assert.ok(ch, 'ClientHello in the first Initial');
      const tpBytes = transportParamsExtension(ch!);
      assert.ok(tpBytes, 'quic_transport_parameters extension');
      const tp = decodeTransportParameters(tpBytes!, 'client');
      assert.equal(tp.initialSourceConnectionId, clientScid);
      assert.ok(tp.initialMaxData > 0);
    }
    // Answer with a Retry; the client must come back with our token and our new connection ID.
    const newCid = provider.randomBytes(8);
    const token = provider.randomBytes(24);
    sock.send(buildRetry(provider, QUIC_V1, clientScid, newCid, token, odcid, 0x0a), first!.port, '127.0.0.1');
    const second = await nextDatagram(
      sock,
      (x) => {
        const g = new PacketHeader();
        return parseHeader(x, 0, x.length, 0, g) && g.type === PacketType.Initial && g.tokenLength > 0;
      },
      5000,
    );
    assert.ok(second, `client did not follow our Retry: ${proc.output()}`);
    const g = new PacketHeader();
    assert.ok(parseHeader(second!.d, 0, second!.d.length, 0, g));
    assert.equal(second!.d.subarray(g.dcidOffset, g.dcidOffset + g.dcidLength), newCid);
    assert.equal(second!.d.subarray(g.tokenOffset, g.tokenOffset + g.tokenLength), token);
    const u = new UnprotectedPacket();
    assert.ok(initialKeys(provider, QUIC_V1, newCid, true).read.unprotect(second!.d, 0, g.pnOffset, g.packetEnd, 0, u));
  } finally {
    await proc.kill();
    sock.close();
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test.run();
