/**
 * 0-RTT through the Connection: accepted, rejected (data resent in 1-RTT), and after a Retry (the
 * 0-RTT packets sent before the Retry are lost: their stream data goes out again, RFC 9000 §17.2.5.3).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { QuicPair, type PairOptions } from '../../../test/support/quic-pair.js';
import { TicketKeyring } from '../../tls-core/src/handshake/tickets.js';
import type { SessionTicket } from '../../tls-core/src/handshake/api.js';

for (const provider of providers) {
  function firstTicket(base: Omit<PairOptions, 'provider'>): { ticket: SessionTicket; end: number } {
    const first = new QuicPair({ provider, ...base });
    assert.ok(first.handshake());
    assert.ok(first.runUntil(() => first.events('client', 'sessionTicket').length > 0, 5000), 'session ticket');
    return { ticket: first.events('client', 'sessionTicket')[0]!.ticket, end: first.now };
  }

  for (const [accept, retry] of [
    [true, false],
    [false, false],
    [true, true],
    [false, true],
  ] as const) {
    test(`[${provider.name}] 0-RTT ${retry ? 'after a Retry ' : ''}(${accept ? 'accepted' : 'rejected'}): the request still arrives, no endless exchange`, () => {
      const keys = new TicketKeyring(provider);
      const { ticket, end } = firstTicket({ seed: 3, link: { delayMs: 10 }, server: { tls: { tickets: { keys }, maxEarlyData: 0xffffffff } } });
      const pair = new QuicPair({
        provider,
        seed: 4,
        startTime: end + 2000,
        link: { delayMs: 10 },
        server: { retry: retry ? 'always' : 'never', tls: { tickets: { keys }, maxEarlyData: accept ? 0xffffffff : 0 } },
        client: { session: ticket, earlyData: true },
      });
      const msg = new TextEncoder().encode('early '.repeat(100));
      const id = pair.client.openStream(true)!;
      assert.is(id, 0);
      assert.is(pair.client.write(id, msg, true), msg.length);
      const got: number[] = [];
      let fin = false;
      pair.addTask(() => {
        const sc = pair.serverConn;
        if (!sc) return;
        for (let c = fin ? null : sc.read(0), k = 0; c && k < 100; c = fin ? null : sc.read(0), k++) {
          got.push(...c.data);
          fin ||= c.fin;
        }
      });
      assert.ok(pair.runUntil(() => fin && pair.client.handshakeComplete, 10_000), 'the stream arrived');
      assert.equal(new Uint8Array(got), msg);
      pair.assertNoBugs();
      assert.equal(pair.events('client', 'earlyData').map((e) => e.accepted), [accept]);
      // Then the connection goes quiet.
      pair.runFor(1000);
      const s = pair.stats();
      const before = s.upDatagrams + s.downDatagrams;
      pair.runFor(3000);
      const s2 = pair.stats();
      assert.ok(s2.upDatagrams + s2.downDatagrams - before <= 2, `${s2.upDatagrams + s2.downDatagrams - before} datagrams while idle`);
      // RFC 9001 §4.9.3: the server no longer holds 0-RTT keys a few PTO after 1-RTT began.
      const zs = (pair.serverConn as unknown as { inner: { zeroRttRead: unknown } }).inner;
      assert.is(zs.zeroRttRead, null, '0-RTT read keys discarded');
      // Buffered 0-RTT/1-RTT packets are replayed after the datagram that completed the handshake,
      // not in the middle of it (that clobbered the packet being processed: the server never
      // validated the client's address and stayed amplification-limited).
      const r = pair.transfer(300_000, { maxVirtualMs: 10_000 });
      assert.ok(r.ok, r.error);
      assert.ok(r.virtualMs < 2000, `300 KB took ${r.virtualMs} ms`);
    });
  }
  test(`[${provider.name}] 0-RTT rejected by a server with lower limits (2 streams, 16 kB windows): the streams and data sent in 0-RTT start over under the new limits and all arrive (RFC 9001 §4.6.2)`, () => {
    const keys = new TicketKeyring(provider);
    const { ticket, end } = firstTicket({ seed: 3, link: { delayMs: 10 }, server: { maxStreamsBidi: 100, tls: { tickets: { keys }, maxEarlyData: 0xffffffff } } });
    const pair = new QuicPair({
      provider,
      seed: 4,
      startTime: end + 2000,
      link: { delayMs: 10 },
      server: { retry: 'never', maxStreamsBidi: 2, connectionWindow: 16_384, streamWindow: 16_384, maxConnectionWindow: 16_384, maxStreamWindow: 16_384, tls: { tickets: { keys }, maxEarlyData: 0 } },
      client: { session: ticket, earlyData: true },
    });
    const sizes = [30_000, 1, 1, 5000, 1, 1, 20_000, 1, 1, 1];
    const ids: number[] = [];
    for (const n of sizes) {
      const id = pair.client.openStream(true)!;
      assert.ok(id !== null, 'opened under the remembered limit of 100');
      ids.push(id);
      assert.is(pair.client.write(id, new Uint8Array(n).fill(ids.length), true), n);
    }
    const got = new Map<number, number>();
    const fins = new Set<number>();
    pair.addTask(() => {
      const sc = pair.serverConn;
      if (!sc) return;
      for (const id of ids) {
        for (let c = fins.has(id) ? null : sc.read(id), k = 0; c && k < 100; c = fins.has(id) ? null : sc.read(id), k++) {
          got.set(id, (got.get(id) ?? 0) + c.data.length);
          if (c.fin) {
            fins.add(id);
            sc.write(id, new Uint8Array(0), true); // our side done too: the stream closes, its credit returns
          }
        }
      }
    });
    assert.ok(pair.runUntil(() => fins.size === ids.length, 20_000), `${fins.size} of ${ids.length} streams arrived`);
    assert.equal(ids.map((id) => got.get(id)), sizes);
    assert.equal(pair.events('client', 'earlyData').map((e) => e.accepted), [false]);
    assert.equal(pair.events('client', 'closed'), []);
    assert.equal(pair.events('server', 'closed'), []);
    pair.assertNoBugs();
  });
}

test.run();
