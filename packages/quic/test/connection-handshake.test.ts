import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { EPOCH, Pair, readAll } from './connection-harness.js';
import { PacketHeader, PacketType, parseHeader } from '../src/header.js';
import { FrameType } from '../src/frames.js';
import { TransportError } from '../src/errors.js';
import { QUIC_V1, QUIC_V2 } from '../src/version.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';

for (const provider of providers) {
  const patterns: [string, (dir: 'up' | 'down', n: number) => boolean][] = [
    ['first client flight lost', (d, n) => d === 'up' && n < 2],
    ['server first datagram lost', (d, n) => d === 'down' && n === 0],
    ['server Handshake datagrams lost (client anti-deadlock PTO)', (d, n) => d === 'down' && n >= 1 && n <= 3],
    ['client Finished lost', (d, n) => d === 'up' && n >= 2 && n <= 3],
    ['every other datagram lost', (_d, n) => n % 2 === 1 && n < 12],
    // The tail of the ServerHello and the client's next datagrams are lost (the regression for PTO
    // probes resending only the oldest packet is sim-transfer's 30%-loss seeds; this is a smoke case).
    ['ServerHello tail and the ACK of its head lost', (d, n) => (d === 'down' && n === 2) || (d === 'up' && n >= 2 && n <= 4)],
  ];
  for (const [name, drop] of patterns) {
    test(`[${provider.name}] handshake completes: ${name}`, () => {
      const p = new Pair({ provider, delay: 15, drop: (d, _x, n) => drop(d, n) });
      assert.ok(p.handshake(20_000), 'handshake');
      assert.ok(p.now - EPOCH < 3000, `handshake took ${p.now - EPOCH} ms`);
      assert.equal(p.bugs(), []);
    });
  }

  test(`[${provider.name}] a lost HANDSHAKE_DONE is sent again; the client confirms and drops its Handshake keys`, () => {
    let inspector: PacketInspector | null = null;
    let dropped = 0;
    const p: Pair = new Pair({
      provider,
      delay: 10,
      mutate: (dir, data) => {
        const opened = inspector!.open(dir, data);
        if (dir === 'down' && dropped === 0 && opened.some((x) => PacketInspector.frames(x).some((f) => f.type === FrameType.HANDSHAKE_DONE))) {
          dropped++;
          return null;
        }
        return data;
      },
    });
    inspector = new PacketInspector(provider, p.keyLog);
    assert.ok(p.handshake(5000), 'confirmed');
    assert.is(dropped, 1);
    const done = p.packets().filter((x) => x.dir === 'down' && x.frames.includes(FrameType.HANDSHAKE_DONE));
    assert.ok(done.length >= 2, 'sent twice');
    p.runFor(500);
    const firstDoneIdx = done[1]!.dgram;
    assert.not.ok(p.packets(firstDoneIdx + 1).some((x) => x.type === PacketType.Handshake), 'no Handshake packets after confirmation');
    assert.equal(p.bugs(), []);
  });

  for (const lost of [-1, 0, 1]) {
    test(`[${provider.name}] compatible version negotiation v1 → v2${lost >= 0 ? ` with client datagram #${lost} lost (server ACKs in v1 first, RFC 9368 §4)` : ''}`, () => {
      const p = new Pair({ provider, delay: 10, server: { versions: [QUIC_V2, QUIC_V1] }, drop: (d, _x, n) => d === 'up' && n === lost });
      assert.ok(p.handshake(10_000), 'handshake');
      assert.is(p.client.version, QUIC_V2);
      assert.is(p.server!.version, QUIC_V2);
      const id = p.client.openStream(true)!;
      p.client.write(id, new Uint8Array(2000), true);
      p.runFor(200);
      assert.is(p.events('server', 'streamReadable').length, 1);
      assert.equal(p.bugs(), []);
    });
  }

  test(`[${provider.name}] an Initial with another compatible version that does not open does not switch the client's version (RFC 9368 §4; only an authenticated packet may)`, () => {
    // The server's first datagram arrives with its version rewritten to v2 (it cannot decrypt as
    // v2); the real v1 flight follows on the server's PTO and the handshake completes in v1.
    const p = new Pair({
      provider,
      delay: 10,
      client: { versions: [QUIC_V1, QUIC_V2] },
      mutate: (dir, data, n) => {
        if (dir !== 'down' || n !== 0) return data;
        const d = data.slice();
        d[0] = (d[0]! & 0xcf) | 0x10; // v2 Initial type bits
        d.set([0x6b, 0x33, 0x43, 0xcf], 1);
        return d;
      },
    });
    assert.ok(p.handshake(20_000), 'handshake');
    assert.is(p.client.version, QUIC_V1);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] 1-RTT packets that arrive before the client's Finished are buffered and processed after it (RFC 9001 §5.7)`, () => {
    const hsDatagrams = new Set<number>();
    const h = new PacketHeader();
    const p = new Pair({
      provider,
      delay: 10,
      mutate: (dir, data, n) => {
        if (dir === 'up') {
          for (let off = 0; off < data.length && parseHeader(data, off, data.length, 8, h); off = h.packetEnd) if (h.type === PacketType.Handshake) hsDatagrams.add(n);
        }
        return data;
      },
      // The client's Handshake datagrams (its Finished) arrive 30 ms late, after its first 1-RTT data.
      extraDelay: (dir, n) => (dir === 'up' && hsDatagrams.has(n) ? 30 : 0),
    });
    let id = -1;
    p.onEvent = (side, e) => {
      if (side === 'client' && e.type === 'handshakeComplete') {
        id = p.client.openStream(true)!;
        p.client.write(id, new Uint8Array(6000).fill(8), true);
      }
    };
    assert.ok(p.handshake(5000));
    let got = 0;
    let fin = 0;
    assert.ok(p.runUntil(() => {
      const r = readAll(p.server!, id);
      got += r.data.length;
      fin += r.fins;
      return fin === 1;
    }, 3000));
    assert.is(got, 6000);
    // The data was sent once: the buffered packets were processed, not dropped and retransmitted.
    assert.is(p.client.stats.lost, 0);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] amplification limit: an unvalidated server sends at most 3x what it received (RFC 9000 §8.1)`, () => {
    // The client's first flight arrives; everything after it is lost, so the server's address check never succeeds.
    const p = new Pair({ provider, delay: 10, drop: (d, _x, n) => d === 'up' && n >= 2 });
    p.runFor(10_000);
    let up = 0;
    let down = 0;
    let upDelivered = 0;
    for (const s of p.log) {
      if (s.dir === 'up') {
        up++;
        if (up <= 2) upDelivered += s.data.length;
      } else down += s.data.length;
    }
    assert.ok(down > 0);
    assert.ok(down <= 3 * upDelivered, `server sent ${down} bytes for ${upDelivered} received`);
    assert.ok(up > 2, 'the client kept probing');
    // §14.1 holds at the limit too: an ack-eliciting server Initial never goes out in a datagram
    // under 1200 bytes (when the budget left is smaller, Initials carry only ACKs).
    for (const x of p.packets()) {
      if (x.dir !== 'down' || x.type !== PacketType.Initial) continue;
      if (x.frames.some((f) => f !== FrameType.ACK && f !== FrameType.PADDING)) assert.ok(x.size >= 1200, `ack-eliciting server Initial in a ${x.size}-byte datagram`);
    }
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] datagram sizes: client Initial datagrams ≥ 1200, server ack-eliciting Initial datagrams ≥ 1200 (§14.1)`, () => {
    const p = new Pair({ provider, delay: 10, drop: (d, _x, n) => d === 'down' && n === 1 });
    assert.ok(p.handshake());
    for (const x of p.packets()) {
      if (x.type !== PacketType.Initial) continue;
      const eliciting = x.frames.some((f) => f !== FrameType.ACK && f !== FrameType.PADDING);
      if (x.dir === 'up' || eliciting) assert.ok(x.size >= 1200, `${x.dir} Initial datagram of ${x.size} bytes`);
    }
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] Initial keys: the client stops sending Initials once it sends Handshake packets; no Initial or Handshake packets after confirmation (RFC 9001 §4.9)`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    const id = p.client.openStream(true)!;
    p.client.write(id, new Uint8Array(3000), true);
    p.runFor(1000);
    const pk = p.packets();
    const firstHs = pk.findIndex((x) => x.dir === 'up' && x.type === PacketType.Handshake);
    assert.ok(firstHs > 0);
    assert.not.ok(pk.slice(firstHs + 1).some((x) => x.dir === 'up' && x.type === PacketType.Initial), 'client Initial after its first Handshake packet');
    const lastLong = Math.max(...pk.map((x, i) => (x.type === PacketType.Initial || x.type === PacketType.Handshake ? i : -1)));
    const firstStream = pk.findIndex((x) => x.frames.some((f) => (f & ~7) === FrameType.STREAM));
    assert.ok(lastLong < firstStream, 'long-header packets end with the handshake');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] transport parameters authenticate CIDs: a wrong original_destination_connection_id → TRANSPORT_PARAMETER_ERROR (§7.3)`, () => {
    const p = new Pair({ provider, delay: 10, serverParams: { originalDcid: new Uint8Array(8).fill(7) } });
    p.runFor(3000);
    const c = p.events('client', 'closed')[0];
    assert.ok(c, 'client closed');
    assert.is(c!.info.code, TransportError.TRANSPORT_PARAMETER_ERROR);
    assert.is(c!.info.remote, false);
    const s = p.events('server', 'closed')[0];
    assert.ok(s && s.info.remote && s.info.code === TransportError.TRANSPORT_PARAMETER_ERROR, 'the server heard why');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] transport parameters: a wrong initial_source_connection_id of the client → TRANSPORT_PARAMETER_ERROR at the server`, () => {
    const p = new Pair({ provider, delay: 10, serverParams: { clientScid: new Uint8Array(8).fill(9) } });
    p.runFor(3000);
    const s = p.events('server', 'closed')[0];
    assert.ok(s, 'server closed');
    assert.is(s!.info.code, TransportError.TRANSPORT_PARAMETER_ERROR);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] handshake timeout: a client with no answer closes after the idle timeout with kind 'handshake-timeout'`, () => {
    const p = new Pair({ provider, delay: 10, client: { maxIdleTimeout: 4000 }, drop: (d) => d === 'up' });
    p.runFor(10_000);
    const c = p.events('client', 'closed')[0];
    assert.ok(c);
    assert.is(c!.info.kind, 'handshake-timeout');
    assert.ok(p.client.isClosed);
    // PTO backoff: a handful of probes, not a flood.
    assert.ok(p.log.length < 20, `${p.log.length} datagrams`);
  });
}

test.run();
