/**
 * A ClientHello that needs two Initial datagrams (the X25519MLKEM768 key share makes it ~1.4 kB):
 * the second datagram's padding room carries the ClientHello's first bytes again, so that a server
 * receiving only the second datagram still gets CRYPTO data at offset 0. Seen in the interop
 * matrix (handshakecorruption, 30% corruption): ngtcp2's server answers a first Initial whose CRYPTO
 * data does not start at offset 0 with a Retry, whose token the next corrupted Initials then expose.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair } from './connection-harness.js';
import type { QlogEvent } from '../src/config.js';

type F = { frame_type: string; offset?: number; length?: number };
const frames = (e: QlogEvent): F[] => (e.data.frames as F[]) ?? [];
const initialsSent = (evs: QlogEvent[]) =>
  evs.filter((e) => e.name === 'transport:packet_sent' && (e.data.header as { packet_type: string }).packet_type === 'initial');

for (const provider of providers.slice(0, 1)) {
  test(`[${provider.name}] two-datagram ClientHello: the second Initial repeats the start; the server gets offset 0 from it alone`, () => {
    const ce: QlogEvent[] = [];
    const se: QlogEvent[] = [];
    // The client's first datagram is lost: the server only sees the second one at first.
    const p = new Pair({ provider, delay: 10, client: { qlog: (e) => ce.push(e) }, server: { qlog: (e) => se.push(e) }, drop: (dir, _d, n) => dir === 'up' && n === 0 });
    p.runFor(15);
    const first = initialsSent(ce);
    assert.is(first.length, 2, 'the ClientHello spans two Initial packets (else this test proves nothing)');
    const crypto0 = frames(first[0]!).filter((f) => f.frame_type === 'crypto');
    const crypto1 = frames(first[1]!).filter((f) => f.frame_type === 'crypto');
    assert.equal(crypto0.map((f) => f.offset), [0]);
    const tailStart = crypto0[0]!.length!;
    assert.ok(crypto1.some((f) => f.offset === tailStart), 'second packet carries the rest');
    const head = crypto1.find((f) => f.offset === 0);
    assert.ok(head, 'second packet repeats the start of the ClientHello');
    assert.ok(head!.length! >= 64 && head!.length! <= tailStart);
    for (const e of ce.filter((x) => x.name === 'transport:packet_sent')) assert.ok((e.data.raw as { length: number }).length <= 1200);
    // The server, having received only the second datagram, has the ClientHello's first bytes.
    const got = se.filter((e) => e.name === 'transport:packet_received').flatMap(frames);
    assert.ok(got.some((f) => f.frame_type === 'crypto' && f.offset === 0), JSON.stringify(got));
    // And the handshake completes once the client's PTO repeats the flight.
    p.runFor(3000);
    const done = ce.some((e) => e.name === 'transport:packet_received' && frames(e).some((f) => f.frame_type === 'handshake_done'));
    assert.ok(done, 'handshake done');
  });

  test(`[${provider.name}] no repeat once the ClientHello is acknowledged or a ServerHello arrived (retransmissions keep their room)`, () => {
    const ce: QlogEvent[] = [];
    // The second datagram is lost: the server answers (ACK + ServerHello) from the first one.
    const p = new Pair({ provider, delay: 10, client: { qlog: (e) => ce.push(e) }, drop: (dir, _d, n) => dir === 'up' && n === 1 });
    p.runFor(3000);
    const ini = initialsSent(ce);
    assert.ok(ini.length >= 3);
    // Initial packets after the first flight: no CRYPTO frame at offset 0 except the first packet's.
    for (const e of ini.slice(2)) assert.not.ok(frames(e).some((f) => f.frame_type === 'crypto' && f.offset === 0), JSON.stringify(frames(e)));
    assert.ok(ce.some((e) => e.name === 'transport:packet_received' && frames(e).some((f) => f.frame_type === 'handshake_done')), 'handshake done');
  });
}

test.run();
