import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair } from './connection-harness.js';
import { PacketType } from '../src/header.js';
import { FrameType } from '../src/frames.js';

const ACKS = new Set<number>([FrameType.ACK, FrameType.ACK_ECN, FrameType.PADDING]);

for (const provider of providers) {
  test(`[${provider.name}] an idle connection goes quiet: ACK-only packets are not acknowledged (RFC 9000 §13.2.1)`, () => {
    const p = new Pair({ provider, delay: 5 });
    assert.ok(p.handshake());
    p.runFor(1000);
    const before = p.log.length;
    p.runFor(5000);
    assert.ok(p.log.length - before <= 2, `${p.log.length - before} datagrams in 5 s of idleness`);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] 1-RTT ACKs are delayed up to max_ack_delay for a single ack-eliciting packet`, () => {
    const p = new Pair({ provider, delay: 5, client: { maxAckDelay: 20 } });
    assert.ok(p.handshake());
    p.runFor(500);
    const id = p.server!.openStream(false)!;
    p.server!.write(id, new Uint8Array(100));
    const start = p.log.length;
    const t0 = p.now;
    p.runFor(200);
    const pk = p.packets(start);
    const data = pk.find((x) => x.dir === 'down' && x.frames.some((f) => (f & ~7) === FrameType.STREAM))!;
    assert.ok(data, 'stream packet sent');
    const ack = pk.find((x) => x.dir === 'up' && x.type === PacketType.OneRtt && x.frames.includes(FrameType.ACK));
    assert.ok(ack, 'acknowledged');
    // One ack-eliciting packet: the ACK waits max_ack_delay (20 ms) after arrival (5 ms).
    assert.ok(ack!.at - t0 >= 24 && ack!.at - t0 <= 27, `ack after ${ack!.at - t0} ms`);
    // Every ACK-only packet the client sent was caused by ack-eliciting packets, none by ACKs.
    const onlyAcks = pk.filter((x) => x.dir === 'up' && x.frames.every((f) => ACKS.has(f)));
    assert.ok(onlyAcks.length <= 1, `${onlyAcks.length} ACK-only packets for one data packet`);
    assert.equal(p.bugs(), []);
  });
}

test.run();
