/**
 * The client's Handshake-space ACKs before its handshake completes are ack-eliciting (PING) and
 * repeated by its PTO: when part of the server's Handshake flight is lost and the client's ACK of
 * the rest is lost too, the server still learns what arrived (and declares the rest lost, RFC 9002
 * §6.1) within the client's PTO, instead of at its own backed-off PTO. Seen in the interop matrix
 * (handshakecorruption vs ngtcp2: two lost ACK-only Handshake packets of our client left ngtcp2
 * retransmitting one probe packet per PTO until its 10 s handshake timeout).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, identity } from './connection-harness.js';
import type { QlogEvent } from '../src/config.js';

type F = { frame_type: string };
const frames = (e: QlogEvent): F[] => (e.data.frames as F[]) ?? [];

for (const provider of providers.slice(0, 1)) {
  test(`[${provider.name}] lost server Handshake packet + lost client ACK: the client's PING+ACK lets the server repair at once`, () => {
    const id = identity(provider);
    const ce: QlogEvent[] = [];
    // A 4-certificate chain: the server's Handshake flight takes two packets (the second one in
    // its own datagram, down #2, lost); the client's datagram with its ACK of the first (up #2) is lost.
    const p = new Pair({
      provider,
      delay: 10,
      client: { qlog: (e) => ce.push(e) },
      server: { tls: { identity: { chain: [id.certDer, id.certDer, id.certDer, id.certDer], key: id.keyDer } } as never },
      drop: (dir, _d, n) => n === 2,
    });
    const t0 = p.now;
    assert.ok(p.runUntil(() => p.client.handshakeComplete, 5000));
    const took = p.now - t0;
    const sentHs = ce.filter((e) => e.name === 'transport:packet_sent' && (e.data.header as { packet_type: string }).packet_type === 'handshake');
    assert.ok(sentHs.length >= 2);
    for (const e of sentHs) {
      const f = frames(e).map((x) => x.frame_type);
      if (f.includes('ack')) assert.ok(f.includes('ping') || f.includes('crypto'), `ACK-only Handshake packet from the client: ${f.join(',')}`);
    }
    // Without the PING the server would only repair at its PTO (~1 s here).
    assert.ok(took < 500, `handshake took ${took} ms`);
    assert.equal(p.bugs(), []);
  });
}

test.run();
