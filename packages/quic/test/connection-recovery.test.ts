import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';
import { PacketHeader, PacketType, parseHeader } from '../src/header.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';

for (const provider of providers) {
  test(`[${provider.name}] tail loss: the PTO probe carries the unacknowledged stream data again, not just a PING (RFC 9002 §6.2.4)`, () => {
    let armed = false;
    let dropped = 0;
    const p = new Pair({
      provider,
      delay: 10,
      // Drop every server datagram for 5 ms once armed: the tail of the transfer.
      drop: (dir, _d, _n, now) => {
        if (dir === 'down' && armed && now < armedAt + 5) {
          dropped++;
          return true;
        }
        return false;
      },
    });
    let armedAt = Infinity;
    assert.ok(p.handshake());
    p.runFor(300);
    const id = p.server!.openStream(false)!;
    const mark = p.log.length;
    p.server!.write(id, new Uint8Array(4000).fill(1), true);
    armed = true;
    armedAt = p.now;
    let got = 0;
    let fins = 0;
    assert.ok(p.runUntil(() => {
      const r = readAll(p.client, id);
      got += r.data.length;
      fins += r.fins;
      return fins === 1;
    }, 5000));
    assert.ok(dropped >= 1);
    assert.is(got, 4000);
    const down = p.packets(mark).filter((x) => x.dir === 'down' && x.type === PacketType.OneRtt);
    const firstDelivered = down.find((x) => x.at >= armedAt + 5)!;
    assert.ok(firstDelivered, 'a probe after the loss');
    assert.ok(firstDelivered.frames.some((f) => (f & ~7) === FrameType.STREAM), `probe frames: ${firstDelivered.frames.map((f) => f.toString(16))}`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] successive PTO probes carry successive outstanding packets: a lost response behind an older packet whose ACKs keep getting lost still arrives`, () => {
    // The client's ACKs are all lost from `ackLoss` on; the server's first packet of M2 is lost.
    // Packet A (M1) was delivered but never acknowledged, so it stays the oldest outstanding one:
    // probes that all repeat the oldest packet would never carry M2 (ngtcp2's client under 30% loss).
    let ackLoss = false;
    let dropM2 = false;
    let droppedM2 = 0;
    const p = new Pair({
      provider,
      delay: 10,
      drop: (dir) => {
        if (dir === 'up' && ackLoss) return true;
        if (dir === 'down' && dropM2) {
          dropM2 = false;
          droppedM2++;
          return true;
        }
        return false;
      },
    });
    assert.ok(p.handshake());
    p.runFor(300);
    const id = p.server!.openStream(false)!;
    let got = 0;
    const read = () => (got += readAll(p.client, id).data.length);
    ackLoss = true;
    p.server!.write(id, new Uint8Array(500).fill(1), false);
    assert.ok(p.runUntil(() => read() >= 500, 1000), 'M1 delivered');
    dropM2 = true;
    p.server!.write(id, new Uint8Array(500).fill(2), false);
    const t0 = p.now;
    assert.ok(p.runUntil(() => read() >= 1000, 5000), `M2 never arrived while the client's ACKs were lost (got ${got})`);
    assert.is(droppedM2, 1);
    // The first PTO's second probe (within ~1 PTO of the loss, not after backoffs).
    assert.ok(p.now - t0 < 1500, `M2 after ${p.now - t0} ms`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] the client's Finished declared lost while its window is full of 1-RTT data is sent again (Handshake CRYPTO does not wait for the window)`, () => {
    // For a 2 s burst every client Handshake packet with CRYPTO (the Finished) is lost, and every
    // second server Handshake probe. The client starts a 200 kB upload as soon as its handshake
    // completes, filling the window with 1-RTT packets the server cannot acknowledge before it has
    // the Finished. The Finished, declared lost by the time threshold after a server ACK of a later
    // ACK-only Handshake packet, must still go out once the burst ends.
    let burstEnd = Infinity;
    let t0 = 0;
    let serverHsProbes = 0;
    let iu: PacketInspector | null = null;
    let idn: PacketInspector | null = null;
    const kinds = (insp: PacketInspector, dir: 'up' | 'down', d: Uint8Array) =>
      insp.open(dir, d.slice()).map((pk) => ({ type: pk.type as number, crypto: PacketInspector.frames(pk).some((f) => f.type === FrameType.CRYPTO) }));
    const p: Pair = new Pair({
      provider,
      delay: 10,
      mutate: (dir, d) => {
        if (dir !== 'up' || p.now >= burstEnd) return d;
        if (!kinds(iu!, 'up', d).some((k) => k.type === PacketType.Handshake && k.crypto)) return d;
        // Keep a coalesced Initial, blank the Handshake packet (the server stops at the zeros).
        const h = new PacketHeader();
        for (let off = 0; off < d.length && parseHeader(d, off, d.length, 8, h); off = h.packetEnd) {
          if (h.type === PacketType.Handshake) {
            if (off === 0) return null;
            const out = d.slice();
            out.fill(0, off);
            return out;
          }
        }
        return d;
      },
      extraDelay: (dir, n) => (dir === 'down' && n >= 3 ? 20 : 0),
      drop: (dir, d) => {
        if (dir !== 'down' || p.now < t0 + 15 || p.now >= burstEnd) return false;
        return kinds(idn!, 'down', d).some((k) => k.type === PacketType.Handshake && k.crypto) && serverHsProbes++ % 2 === 1;
      },
    });
    iu = new PacketInspector(provider, p.keyLog);
    idn = new PacketInspector(provider, p.keyLog);
    t0 = p.now;
    burstEnd = t0 + 2000;
    p.onEvent = (side, e) => {
      if (side === 'client' && e.type === 'handshakeComplete') {
        const sid = p.client.openStream(true)!;
        p.client.write(sid, new Uint8Array(200_000).fill(7), true);
      }
    };
    assert.ok(p.runUntil(() => !!p.server?.handshakeComplete, 40_000), 'server handshake completes');
    assert.ok(p.now - t0 < 4000, `server handshake complete at +${p.now - t0} ms (the loss burst ends at +2000)`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] a lost STREAMS_BLOCKED is sent again while still blocked at that limit (RFC 9000 §13.3)`, () => {
    let dropBlocked = 0;
    let insp: PacketInspector | null = null;
    const p: Pair = new Pair({
      provider,
      delay: 10,
      server: { maxStreamsBidi: 1 },
      drop: (dir, d) => {
        if (dir !== 'up' || dropBlocked > 0) return false;
        const f = insp!.open(dir, d).flatMap((x) => PacketInspector.frames(x).map((y) => y.type));
        if (!f.includes(FrameType.STREAMS_BLOCKED_BIDI)) return false;
        dropBlocked++;
        return true;
      },
    });
    insp = new PacketInspector(provider, p.keyLog);
    assert.ok(p.handshake());
    p.runFor(100);
    assert.is(p.client.openStream(true), 0);
    assert.is(p.client.openStream(true), null, 'the peer allows one bidirectional stream');
    const mark = p.log.length;
    p.runFor(3000);
    assert.is(dropBlocked, 1, 'the first STREAMS_BLOCKED was lost');
    const sent = p.packets(mark).filter((x) => x.dir === 'up' && x.frames.includes(FrameType.STREAMS_BLOCKED_BIDI));
    assert.ok(sent.length >= 2, `STREAMS_BLOCKED sent ${sent.length} time(s)`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] a stream that became readable and was then reset and removed leaves no bookkeeping behind`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    const notified = () => (p.server as unknown as { readableNotified: Set<number> }).readableNotified;
    for (let i = 0; i < 20; i++) {
      const id = p.client.openStream(false)!;
      p.client.write(id, new Uint8Array(100).fill(i), false);
      p.runFor(50); // the server is told the stream is readable, the application does not read
      p.client.resetStream(id, 7);
      p.runFor(50);
    }
    assert.is(p.events('server', 'streamReset').length, 20);
    assert.is(notified().size, 0, `${notified().size} stream ids left in readableNotified`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] an application-limited sender does not grow its window (RFC 9002 §7.8); a bulk sender does`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(200);
    const id = p.server!.openStream(false)!;
    const initial = p.server!.stats.cwnd;
    for (let i = 0; i < 50; i++) {
      p.server!.write(id, new Uint8Array(1000).fill(i), false); // 1 kB every 100 ms: never near the window
      p.runFor(100);
      readAll(p.client, id);
    }
    assert.is(p.server!.stats.cwnd, initial, `cwnd grew from ${initial} to ${p.server!.stats.cwnd} while application-limited`);
    p.server!.write(id, new Uint8Array(400_000).fill(1), true);
    let fins = 0;
    assert.ok(p.runUntil(() => ((fins += readAll(p.client, id).fins), fins > 0), 10_000));
    assert.ok(p.server!.stats.cwnd > 2 * initial, `a bulk transfer grows the window (${p.server!.stats.cwnd})`);
    assert.equal(p.bugs(), []);
  });
}

test.run();
