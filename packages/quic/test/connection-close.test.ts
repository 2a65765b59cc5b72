import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, S_ADDR } from './connection-harness.js';
import { PacketType } from '../src/header.js';
import { FrameType } from '../src/frames.js';
import { TransportError } from '../src/errors.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';

for (const provider of providers) {
  test(`[${provider.name}] closing state: CONNECTION_CLOSE resent at a bounded rate to incoming packets, nothing else, gone after 3 PTO (§10.2.1)`, () => {
    // The server never hears the client's close: the client stays in the closing state while the server keeps sending.
    let closedAt = Infinity;
    const p = new Pair({ provider, delay: 10, drop: (d, _x, _n, now) => d === 'up' && now >= closedAt });
    assert.ok(p.handshake());
    p.runFor(200);
    const id = p.server!.openStream(false)!;
    p.server!.write(id, new Uint8Array(100_000));
    p.runFor(15);
    closedAt = p.now;
    const mark = p.log.length;
    p.client.close(7, 'done', p.now);
    p.drainEvents();
    const ci = p.events('client', 'closed')[0]!;
    assert.equal([ci.info.code, ci.info.application, ci.info.remote], [7, true, false]);
    assert.is(p.client.openStream(true), null);
    p.runFor(300);
    const after = p.packets(mark);
    const upFromClient = after.filter((x) => x.dir === 'up');
    const downCount = after.filter((x) => x.dir === 'down').length;
    assert.ok(upFromClient.length >= 1, 'close sent');
    assert.ok(upFromClient.every((x) => x.frames.every((f) => f === FrameType.CONNECTION_CLOSE_APP || f === FrameType.PADDING)), 'only CONNECTION_CLOSE');
    assert.ok(upFromClient.length <= Math.log2(downCount) + 2, `bounded: ${upFromClient.length} closes for ${downCount} incoming datagrams`);
    assert.ok(p.runUntil(() => p.client.isClosed, 5000), 'closed after 3 PTO');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] draining: the peer's CONNECTION_CLOSE → draining, no packets sent, closed after 3 PTO (§10.2.2)`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(100);
    p.server!.close(0x33, 'bye', p.now);
    p.runFor(15);
    const mark = p.log.length;
    const ci = p.events('client', 'closed')[0]!;
    assert.equal([ci.info.code, ci.info.reason, ci.info.application, ci.info.remote, ci.info.kind], [0x33, 'bye', true, true, 'close']);
    p.runFor(2000);
    assert.not.ok(p.log.slice(mark).some((s) => s.dir === 'up'), 'a draining client sends nothing');
    assert.ok(p.client.isClosed && p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] an application close during the handshake is sent as a transport APPLICATION_ERROR in Initial/Handshake packets (§10.2.3)`, () => {
    const p = new Pair({ provider, delay: 10 });
    // Before anything from the server: only Initial keys.
    p.client.close(0x99, 'secret reason', p.now);
    const mark = 0;
    p.runFor(1000);
    const closes = p.packets(mark).filter((x) => x.dir === 'up');
    assert.ok(closes.length > 0);
    for (const x of closes) {
      if (x.type === PacketType.Initial || x.type === PacketType.Handshake) {
        assert.ok(x.frames.includes(FrameType.CONNECTION_CLOSE), 'transport close in long-header packets');
        assert.not.ok(x.frames.includes(FrameType.CONNECTION_CLOSE_APP));
      }
    }
    const s = p.events('server', 'closed')[0];
    assert.ok(s, 'the server got it');
    assert.equal([s!.info.code, s!.info.application, s!.info.reason], [TransportError.APPLICATION_ERROR, false, '']);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] idle timeout: min of both sides, both close quietly (§10.1)`, () => {
    const p = new Pair({ provider, delay: 10, client: { maxIdleTimeout: 3000 }, server: { maxIdleTimeout: 8000 } });
    assert.ok(p.handshake());
    const t0 = p.now;
    assert.ok(p.runUntil(() => p.client.isClosed && p.server!.isClosed, 20_000));
    const c = p.events('client', 'closed')[0]!.info;
    const s = p.events('server', 'closed')[0]!.info;
    assert.is(c.kind, 'idle');
    assert.is(s.kind, 'idle');
    assert.ok(p.now - t0 >= 2900 && p.now - t0 < 4000, `closed after ${p.now - t0}`);
  });

  test(`[${provider.name}] stateless reset: a datagram ending in the peer's reset token closes the client (§10.3)`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(100);
    // The server "lost state": it answers with a stateless reset for the CID the client uses.
    const srv = p.server as unknown as { localCid: Uint8Array };
    const token = p.ta.resetToken(srv.localCid);
    const reset = new Uint8Array(40);
    reset.set(provider.randomBytes(40));
    reset[0] = 0x40 | (reset[0]! & 0x3f);
    reset.set(token, reset.length - 16);
    p.client.receive(reset, S_ADDR, p.now);
    p.drainEvents();
    const c = p.events('client', 'closed')[0];
    assert.ok(c, 'closed');
    assert.is(c!.info.kind, 'stateless-reset');
    assert.ok(p.client.isClosed);
    assert.is(p.client.pollTransmit(p.now), null);
  });

  test(`[${provider.name}] stale short-header packets for a CID that is not ours (an earlier connection) are dropped: no stray packet numbers in our ACKs (§5.2)`, () => {
    const p = new Pair({ provider, delay: 10 });
    // Inject stale 1-RTT-looking datagrams into the client while its handshake runs.
    let injected = 0;
    p.onEvent = null;
    const inject = (): void => {
      const junk = provider.randomBytes(30);
      junk[0] = 0x40 | (junk[0]! & 0x3f);
      p.client.receive(junk, S_ADDR, p.now);
      injected++;
    };
    inject();
    assert.ok(p.runUntil(() => {
      if (injected < 20) inject();
      return p.client.handshakeComplete && !!p.server?.handshakeComplete;
    }, 5000));
    p.runFor(500);
    const insp = new PacketInspector(provider, p.keyLog);
    let maxAcked = 0;
    for (const s of p.log) {
      for (const pk of insp.open(s.dir, s.data)) {
        if (s.dir !== 'up') continue;
        for (const f of PacketInspector.frames(pk)) if (f.type === FrameType.ACK) maxAcked = Math.max(maxAcked, f.ackRanges[0]!);
      }
    }
    assert.ok(maxAcked < 100, `the client acknowledged packet number ${maxAcked}`);
    assert.not.ok(p.client.isClosed || p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] a random short-header datagram without the token is ignored`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    const junk = provider.randomBytes(60);
    junk[0] = 0x40 | (junk[0]! & 0x3f);
    p.client.receive(junk, S_ADDR, p.now);
    p.drainEvents();
    assert.not.ok(p.client.isClosed);
    assert.is(p.events('client', 'closed').length, 0);
  });
}

test.run();
