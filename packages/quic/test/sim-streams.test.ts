/**
 * Stream-level behaviour between real connections over the simulated link: resets and
 * STOP_SENDING reaching the peer, many streams through a small stream limit, repeated key updates
 * during a transfer, datagrams under loss, the anti-amplification limit before address
 * validation, and a handshake that times out against a silent server.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { QuicPair, closedInfo } from '../../../test/support/quic-pair.js';
import { Rng } from '../../../test/support/rng.js';

for (const provider of providers) {
  test(`[${provider.name}] RESET_STREAM and STOP_SENDING reach the peer with their codes`, () => {
    const pair = new QuicPair({ provider, seed: 101, link: { delayMs: 10, loss: 0.05 } });
    assert.ok(pair.handshake());
    const a = pair.client.openStream(true)!;
    pair.client.write(a, new Uint8Array(50_000));
    pair.runFor(50);
    pair.client.resetStream(a, 0x77);
    const b = pair.client.openStream(true)!;
    pair.client.write(b, new Uint8Array(10));
    pair.runFor(100);
    pair.serverConn!.stopSending(b, 0x99);
    assert.ok(
      pair.runUntil(() => pair.events('server', 'streamReset').some((e) => e.id === a) && pair.events('client', 'streamStopped').some((e) => e.id === b), 10_000),
      'streamReset on the server and streamStopped on the client',
    );
    pair.assertNoBugs();
    const reset = pair.events('server', 'streamReset').find((e) => e.id === a)!;
    assert.is(reset.code, 0x77);
    assert.ok(reset.finalSize >= 0 && reset.finalSize <= 50_000);
    assert.is(pair.events('client', 'streamStopped').find((e) => e.id === b)!.code, 0x99);
    // Writing on the stopped stream is refused, the connection stays up.
    assert.is(pair.client.write(b, new Uint8Array(10)), 0);
    assert.ok(pair.transfer(20_000).ok);
  });

  test(`[${provider.name}] 60 streams through a limit of 8 concurrent streams`, () => {
    const pair = new QuicPair({ provider, seed: 102, link: { delayMs: 10, loss: 0.02 }, client: { maxStreamsUni: 8 } });
    assert.ok(pair.handshake());
    const r = pair.transfer(600_000, { streams: 60 });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.is(r.streams.length, 60);
    assert.is(new Set(r.streams).size, 60);
    assert.ok(pair.events('server', 'streamsAvailable').length > 0, 'the server was told more streams are available');
  });

  test(`[${provider.name}] five key updates, alternating sides, during a 3 MB transfer with loss`, () => {
    const pair = new QuicPair({ provider, seed: 103, link: { delayMs: 10, loss: 0.03, reorder: 0.01 } });
    assert.ok(pair.handshake());
    let updates = 0;
    const r = pair.transfer(3 << 20, {
      streams: 2,
      during: (p, prog) => {
        if (updates < 5 && prog.received > (updates + 1) * 400_000) {
          const conn = updates % 2 === 0 ? p.client : p.serverConn!;
          if (conn.updateKeys()) updates++;
        }
      },
    });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.is(updates, 5);
    assert.is(pair.connStats('client')!.keyUpdates, 5);
    assert.is(pair.connStats('server')!.keyUpdates, 5);
    assert.is(pair.events('client', 'keyUpdate').filter((e) => e.initiatedBy === 'local').length, 3);
    assert.is(pair.events('server', 'keyUpdate').filter((e) => e.initiatedBy === 'local').length, 2);
  });

  test(`[${provider.name}] datagrams under 20% loss are not retransmitted, the rest arrive intact`, () => {
    const pair = new QuicPair({ provider, seed: 104, link: { delayMs: 10, loss: 0.2 }, client: { maxDatagramFrameSize: 1200 }, server: { maxDatagramFrameSize: 1200 } });
    assert.ok(pair.handshake(30_000));
    const sent = new Map<string, number>();
    // ~1000-byte datagrams: one per packet, so the link's losses hit individual datagrams.
    for (let i = 0; i < 200; i++) {
      const msg = `dgram-${i}-` + 'x'.repeat(900 + (i % 50));
      if (pair.client.sendDatagram(new TextEncoder().encode(msg))) sent.set(msg, i);
      pair.runFor(2);
    }
    pair.runFor(3000);
    pair.assertNoBugs();
    const got = pair.events('server', 'datagram').map((e) => new TextDecoder().decode(e.data));
    assert.ok(got.every((m) => sent.has(m)), 'every received datagram is one that was sent, intact');
    assert.is(new Set(got).size, got.length, 'no duplicates (no retransmission)');
    assert.ok(got.length > 100 && got.length < sent.size, `${got.length} of ${sent.size} arrived`);
  });

  test(`[${provider.name}] anti-amplification: an unvalidated server sends at most 3x what it received`, () => {
    // Everything after the client's first flight is lost: the server cannot validate the address.
    let firstFlight = 0;
    const pair = new QuicPair({
      provider,
      seed: 105,
      link: { delayMs: 10 },
      up: {
        drop: (d, i) => {
          if (i === 0) firstFlight = d.length;
          // The first flight may be two datagrams (a large ClientHello); keep those.
          return i >= 2;
        },
      },
    });
    pair.runFor(10_000);
    pair.assertNoBugs();
    const received = pair.net.up.stats.deliveredBytes;
    assert.ok(firstFlight >= 1200);
    assert.ok(received > 0);
    const sent = pair.net.down.stats.offeredBytes;
    assert.ok(sent > 0, 'the server answered');
    assert.ok(sent <= 3 * received, `server sent ${sent} bytes after receiving ${received} (limit ${3 * received})`);
  });

  test(`[${provider.name}] a silent server: the client gives up with 'handshake-timeout' or 'idle'`, () => {
    const pair = new QuicPair({ provider, seed: 106, link: { delayMs: 10 }, up: { loss: 1 }, client: { maxIdleTimeout: 5000 } });
    assert.ok(pair.runUntil(() => pair.client.isClosed, 60_000), 'the client closed');
    pair.assertNoBugs();
    const info = closedInfo(pair, 'client')!;
    assert.ok(info.kind === 'handshake-timeout' || info.kind === 'idle', info.kind);
    assert.ok(pair.elapsed >= 4900 && pair.elapsed < 20_000, `gave up after ${pair.elapsed} ms`);
    assert.is(pair.serverConn, null);
  });

  test(`[${provider.name}] migrate() is refused when the server disables active migration`, () => {
    const pair = new QuicPair({ provider, seed: 107, link: { delayMs: 10 }, server: { disableActiveMigration: true } });
    assert.ok(pair.handshake());
    assert.not.ok(pair.migrate());
    assert.ok(pair.transfer(50_000).ok);
    pair.assertNoBugs();
  });

  test(`[${provider.name}] the server closes mid-transfer: the client sees the application close, no error`, () => {
    const pair = new QuicPair({ provider, seed: 108, link: { delayMs: 10 } });
    assert.ok(pair.handshake());
    let closed = false;
    const r = pair.transfer(2 << 20, {
      during: (p, prog) => {
        if (!closed && prog.received > 300_000) {
          p.serverConn!.close(0x3, 'shutting down', p.now);
          closed = true;
        }
      },
    });
    assert.not.ok(r.ok);
    assert.ok(pair.runUntil(() => pair.client.isClosed && pair.serverConn!.isClosed, 10_000));
    pair.assertNoBugs();
    const ci = closedInfo(pair, 'client')!;
    assert.equal({ code: ci.code, application: ci.application, remote: ci.remote, reason: ci.reason }, { code: 0x3, application: true, remote: true, reason: 'shutting down' });
    // After closing, the API refuses new work quietly.
    assert.is(pair.client.openStream(true), null);
    assert.not.ok(pair.client.sendDatagram(new Uint8Array(1)));
  });
}

/** Stream API calls at random on both sides (open, write with/without FIN, read, reset, STOP_SENDING, datagrams, key updates) under loss and reordering: no exception, no error event, nobody closes. */
for (const provider of providers) {
  test(`[${provider.name}] random stream API use on both sides under loss (12 seeds)`, () => {
    const problems: string[] = [];
    for (let seed = 1; seed <= 12; seed++) {
      const rng = new Rng(seed * 7919);
      const limits = { maxStreamsBidi: 10, maxStreamsUni: 10, streamWindow: 20_000, connectionWindow: 60_000, maxDatagramFrameSize: 500 };
      const pair = new QuicPair({ provider, seed, link: { delayMs: 5, loss: rng.pick([0, 0.05, 0.2]), reorder: 0.05 }, client: limits, server: limits });
      if (!pair.handshake(30_000)) {
        problems.push(`seed ${seed}: no handshake`);
        continue;
      }
      const ids = { client: [] as number[], server: [] as number[] };
      for (let step = 0; step < 300; step++) {
        const side = rng.chance(0.5) ? 'client' : 'server';
        const c = side === 'client' ? pair.client : pair.serverConn!;
        for (const e of side === 'client' ? pair.clientEvents : pair.serverEvents) if (e.type === 'streamOpened' && !ids[side].includes(e.id)) ids[side].push(e.id);
        const known = ids[side];
        // A stream we can send on: bidirectional, or unidirectional opened by us (RFC 9000 §2.1).
        const sendable = known.filter((id) => (id & 2) === 0 || (id & 1) === (side === 'server' ? 1 : 0));
        const op = rng.int(8);
        if (op === 0) {
          const id = c.openStream(rng.chance(0.5));
          if (id !== null) known.push(id);
        } else if (op === 1 && sendable.length) c.write(rng.pick(sendable), rng.bytes(rng.pick([0, 10, 3000, 30_000])), rng.chance(0.3));
        else if (op === 2 && known.length) c.read(rng.pick(known), rng.pick([1, 100, Infinity]));
        else if (op === 3 && sendable.length) c.resetStream(rng.pick(sendable), rng.int(100));
        else if (op === 4 && known.length) c.stopSending(rng.pick(known), rng.int(100));
        else if (op === 5) c.sendDatagram(rng.bytes(rng.int(600)));
        else if (op === 6 && rng.chance(0.1)) c.updateKeys();
        else pair.runFor(rng.pick([1, 5, 20]));
      }
      pair.runFor(3000);
      try {
        pair.assertNoBugs();
      } catch (e) {
        problems.push(`seed ${seed}: ${(e as Error).message.slice(0, 300)}`);
      }
      const closed = pair.events('client', 'closed')[0] ?? pair.events('server', 'closed')[0];
      if (closed) problems.push(`seed ${seed}: closed ${JSON.stringify(closed.info)}`);
    }
    assert.equal(problems, []);
  });
}

for (const provider of providers) {
  test(`[${provider.name}] datagrams never exceed the peer's max_udp_payload_size (RFC 9000 §18.2)`, () => {
    const max = { up: 0, down: 0 };
    const pair = new QuicPair({
      provider,
      seed: 109,
      link: { delayMs: 10, loss: 0.02 },
      client: { maxUdpPayloadSize: 1230 },
      server: { maxUdpPayloadSize: 1250 },
      tap: (dir, d) => {
        max[dir] = Math.max(max[dir], d.length);
      },
    });
    assert.ok(pair.handshake());
    assert.ok(pair.transfer(300_000).ok);
    assert.ok(pair.transfer(300_000, { direction: 'up', bidi: true }).ok);
    pair.assertNoBugs();
    assert.ok(max.down <= 1230 && max.down >= 1200, `server sent up to ${max.down}`);
    assert.ok(max.up <= 1250 && max.up >= 1200, `client sent up to ${max.up}`);
  });
}

test.run();
