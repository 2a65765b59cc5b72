/**
 * RFC 9002 §6.2.3: a server that receives an Initial packet with CRYPTO data it already has (the
 * client's PTO repeating its ClientHello) re-sends its unacknowledged Initial CRYPTO data at once
 * instead of waiting for its own PTO. Seen in the interop matrix (handshakeloss, ngtcp2 client →
 * our server, 30% loss): the client's repeated ClientHellos were answered with ACK-only Initials
 * while our ServerHello waited for the backed-off PTO, and gtlsclient's 10 s handshake timeout fired.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair } from './connection-harness.js';
import type { QlogEvent } from '../src/config.js';

type F = { frame_type: string; offset?: number };
const frames = (e: QlogEvent): F[] => (e.data.frames as F[]) ?? [];
const initial = (e: QlogEvent) => (e.data.header as { packet_type: string }).packet_type === 'initial';

for (const provider of providers.slice(0, 1)) {
  test(`[${provider.name}] server: a repeated ClientHello makes the server re-send its ServerHello at once (not at its PTO)`, () => {
    const se: QlogEvent[] = [];
    // The server's whole first flight is lost; the client's PTO (initial RTT 50 ms) fires long
    // before the server's (initial RTT 333 ms: about 1 s).
    let firstFlightAt = -1;
    const p = new Pair({
      provider,
      delay: 10,
      client: { initialRtt: 50 },
      server: { qlog: (e) => se.push(e) },
      drop: (dir, _d, _n, now) => {
        if (dir !== 'down') return false;
        if (firstFlightAt < 0) firstFlightAt = now;
        return now === firstFlightAt;
      },
    });
    assert.ok(p.runUntil(() => p.client.handshakeComplete, 5000));
    // The client's repeated ClientHello (a second Initial with CRYPTO at offset 0) ...
    const dups = se.filter((e) => e.name === 'transport:packet_received' && initial(e) && frames(e).some((f) => f.frame_type === 'crypto' && f.offset === 0));
    assert.ok(dups.length >= 3, 'the client repeated its ClientHello'); // 2 packets in the first flight carry offset 0
    const probeAt = dups[2]!.time;
    // ... is answered at once with the ServerHello again, not at the server's own PTO (~375 ms later).
    const resent = se.find((e) => e.name === 'transport:packet_sent' && initial(e) && e.time >= probeAt && frames(e).some((f) => f.frame_type === 'crypto'));
    assert.ok(resent, 'ServerHello re-sent');
    assert.ok(resent!.time - probeAt < 5, `ServerHello re-sent ${resent!.time - probeAt} ms after the repeated ClientHello`);
    assert.equal(p.bugs(), []);
  });
}

test.run();
