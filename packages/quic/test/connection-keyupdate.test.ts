import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import { PacketType } from '../src/header.js';

for (const provider of providers) {
  test(`[${provider.name}] key update: updateKeys() flips the Key Phase bit on the wire, the peer follows, the next one waits 3 PTO (RFC 9001 §6)`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(300);
    assert.ok(p.client.updateKeys(), 'allowed once a 1-RTT packet was acknowledged');
    assert.not.ok(p.client.updateKeys(), 'not twice in a row');
    const mark = p.log.length;
    const id = p.client.openStream(true)!;
    p.client.write(id, new Uint8Array(5000).fill(1), true);
    let got = 0;
    assert.ok(p.runUntil(() => (got += readAll(p.server!, id).data.length) >= 5000, 2000));
    const after = p.packets(mark).filter((x) => x.type === PacketType.OneRtt);
    const up = after.filter((x) => x.dir === 'up');
    const down = after.filter((x) => x.dir === 'down');
    assert.ok(up.length > 0 && up.every((x) => x.keyPhase), 'client packets after the update carry phase 1');
    assert.ok(down.length > 0 && down[down.length - 1]!.keyPhase, 'the server answers in phase 1');
    assert.equal(p.events('client', 'keyUpdate').map((e) => [e.phase, e.initiatedBy]), [[1, 'local']]);
    assert.equal(p.events('server', 'keyUpdate').map((e) => [e.phase, e.initiatedBy]), [[1, 'peer']]);
    // The server may not start another update right away either (3 PTO after the last, §6.1/§6.5).
    assert.not.ok(p.server!.updateKeys());
    p.server!.ping(); // an ack-eliciting packet of the current phase must be acknowledged first
    p.runFor(100);
    assert.not.ok(p.server!.updateKeys(), 'still within 3 PTO of the last update');
    p.runFor(2000);
    assert.ok(p.server!.updateKeys(), 'after 3 PTO the server may update');
    const mark2 = p.log.length;
    p.server!.ping();
    p.runFor(200);
    const d2 = p.packets(mark2).filter((x) => x.type === PacketType.OneRtt && x.dir === 'down');
    assert.ok(d2.length > 0 && d2.every((x) => !x.keyPhase), 'server now sends phase 0 again (generation 2)');
    assert.is(p.client.stats.keyUpdates, 2);
    assert.not.ok(p.client.isClosed || p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] key update under reordering: packets of the old phase still open for a while`, () => {
    // Delay every 3rd server→client datagram by 15 ms.
    const p = new Pair({ provider, delay: 10, extraDelay: (dir, n) => (dir === 'down' && n % 3 === 0 ? 15 : 0) });
    assert.ok(p.handshake());
    p.runFor(300);
    const id = p.server!.openStream(false)!;
    p.server!.write(id, new Uint8Array(200_000).fill(9), true);
    let got = 0;
    let fins = 0;
    let updated = false;
    assert.ok(
      p.runUntil(() => {
        if (!updated && got > 50_000) updated = p.server!.updateKeys();
        const r = readAll(p.client, id);
        got += r.data.length;
        fins += r.fins;
        return fins === 1;
      }, 10_000),
    );
    assert.ok(updated);
    assert.is(got, 200_000);
    assert.not.ok(p.client.isClosed || p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] after our own key update the old read keys stay until a packet of the new phase opens (RFC 9001 §6.1): the peer's old-phase packets are not dropped while ours are delayed`, () => {
    let blackhole = false;
    const p = new Pair({ provider, delay: 10, server: { keepAliveInterval: 50 }, drop: (dir) => blackhole && dir === 'up' });
    assert.ok(p.handshake());
    p.runFor(1000);
    const k = (p.client as unknown as { oneRtt: { authFailures: number; generation: number } }).oneRtt;
    assert.ok(p.client.updateKeys(), 'update allowed');
    blackhole = true; // the client's new-phase packets reach the server only 400 ms later (> 3 PTO)
    const f0 = k.authFailures;
    p.runFor(400);
    blackhole = false;
    assert.is(k.authFailures - f0, 0, 'genuine old-phase packets of the server failed to open');
    p.runFor(2000);
    assert.not.ok(p.client.isClosed);
    assert.is(k.generation, 1);
    assert.equal(p.bugs(), []);
  });
}

test.run();
