import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';
import { PacketType } from '../src/header.js';

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
}

test.run();
