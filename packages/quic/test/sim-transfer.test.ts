/**
 * Whole connections over the simulated link (test/support/quic-pair.ts): handshakes under heavy
 * loss for many seeds, and bulk transfers (every byte checked against a seeded pattern) under 0%,
 * 10% and 30% random loss with reordering and duplication in both directions.
 * SIM_FULL=1 runs the 10 MB variants under loss and for every provider (by default the 0%-loss case
 * moves 10 MB with the first provider, 4 MB with the others, to keep the file fast on 2 cores).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { QuicPair } from '../../../test/support/quic-pair.js';
import type { LinkConfig } from '../../../test/support/simlink.js';

const FULL = process.env.SIM_FULL === '1';
const MB = 1 << 20;

function link(loss: number): LinkConfig {
  return { delayMs: 15, jitterMs: 2, bandwidthBps: 200e6, queueBytes: 512 * 1024, loss, duplicate: 0.02, reorder: 0.03, reorderDelayMs: 12 };
}

for (const provider of providers) {
  const first = provider === providers[0];
  for (const [loss, size] of [
    [0, FULL || first ? 10 * MB : 4 * MB],
    [0.1, FULL ? 10 * MB : 2 * MB],
    [0.3, FULL ? 10 * MB : MB],
  ] as const) {
    test(`[${provider.name}] ${size / MB} MB over 4 streams under ${loss * 100}% loss, reordering, duplication`, () => {
      const seed = 1000 + loss * 100;
      const pair = new QuicPair({ provider, seed, link: link(loss), client: { maxIdleTimeout: 120_000 }, server: { maxIdleTimeout: 120_000 } });
      assert.ok(pair.handshake(120_000), `handshake (seed ${seed})`);
      const r = pair.transfer(size, { streams: 4, maxVirtualMs: 1_200_000 });
      pair.assertNoBugs();
      assert.ok(r.ok, `seed ${seed}: ${r.error}`);
      assert.is(r.bytes, size);
      const s = pair.stats();
      if (loss > 0) {
        assert.ok(pair.net.down.stats.lost > 0, 'the link lost datagrams');
        assert.ok(s.serverLost > 0, `the server detected lost packets (stats ${JSON.stringify(s)})`);
      }
      assert.ok(pair.net.down.stats.duplicated > 0 && pair.net.down.stats.reordered > 0);
      assert.not.ok(pair.client.isClosed);
      assert.not.ok(pair.serverConn!.isClosed);
    });
  }

  test(`[${provider.name}] clean 200 Mbit/s path: 4 MB at a rate near the bottleneck`, () => {
    const pair = new QuicPair({ provider, seed: 90, link: { delayMs: 15, bandwidthBps: 200e6, queueBytes: 512 * 1024 } });
    assert.ok(pair.handshake());
    const r = pair.transfer(4 * MB);
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    const mbps = (r.bytes * 8) / 1e6 / (r.virtualMs / 1000);
    assert.ok(mbps > 40, `${mbps.toFixed(1)} Mbit/s over a 200 Mbit/s, 30 ms RTT path`);
  });

  test(`[${provider.name}] 20 Mbit/s bottleneck with a 30 KB drop-tail queue: queue drops, congestion control keeps the rate near the bottleneck`, () => {
    const pair = new QuicPair({ provider, seed: 91, link: { delayMs: 10, bandwidthBps: 20e6, queueBytes: 30_000 } });
    assert.ok(pair.handshake());
    const r = pair.transfer(3 * MB);
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.ok(pair.net.down.stats.queueDrops > 0, 'the queue overflowed at least once (slow start)');
    const mbps = (r.bytes * 8) / 1e6 / (r.virtualMs / 1000);
    assert.ok(mbps > 8 && mbps <= 20, `${mbps.toFixed(1)} Mbit/s through a 20 Mbit/s bottleneck`);
    // Drops stay a small fraction: the sender backs off instead of overrunning the queue.
    assert.ok(pair.net.down.stats.queueDrops < pair.net.down.stats.offered * 0.05, `${pair.net.down.stats.queueDrops} queue drops of ${pair.net.down.stats.offered}`);
  });

  test(`[${provider.name}] corrupted datagrams (5% both ways) are discarded, the transfer is exact`, () => {
    const pair = new QuicPair({ provider, seed: 92, link: { delayMs: 10, corrupt: 0.05 } });
    assert.ok(pair.handshake(30_000));
    const r = pair.transfer(MB, { streams: 2 });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.ok(pair.net.down.stats.corrupted > 10 && pair.net.up.stats.corrupted > 0);
    assert.not.ok(pair.client.isClosed || pair.serverConn!.isClosed, 'corruption never closes the connection');
  });

  test(`[${provider.name}] a client → server upload over bidi streams with 5% loss`, () => {
    const pair = new QuicPair({ provider, seed: 77, link: link(0.05) });
    assert.ok(pair.handshake());
    const r = pair.transfer(512 * 1024, { streams: 3, direction: 'up', bidi: true });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    // Client-initiated bidirectional stream IDs: 0, 4, 8.
    assert.equal(r.streams, [0, 4, 8]);
  });

  test(`[${provider.name}] handshake completes under 30% loss in both directions (seeds 1..20)`, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const pair = new QuicPair({ provider, seed, link: { delayMs: 25, loss: 0.3 }, client: { maxIdleTimeout: 300_000 }, server: { maxIdleTimeout: 300_000 } });
      const ok = pair.handshake(300_000);
      pair.assertNoBugs();
      if (!ok) failures.push(`seed ${seed}: not complete after ${pair.elapsed} virtual ms (client ${pair.client.handshakeComplete}, server ${pair.serverConn?.handshakeComplete})`);
      // And the connection works: a small exchange after the lossy handshake.
      else {
        const r = pair.transfer(20_000, { maxVirtualMs: 300_000 });
        if (!r.ok) failures.push(`seed ${seed}: ${r.error}`);
      }
    }
    assert.equal(failures, []);
  });

  test(`[${provider.name}] the handshake survives a lost server flight, a transfer a 2 s blackhole`, () => {
    // Drop every server datagram of the first flight, and everything from 1.1 s to 3.1 s.
    const pair = new QuicPair({ provider, seed: 5, down: { delayMs: 20, drop: (_d, i) => i < 2 }, up: { delayMs: 20 } });
    assert.ok(pair.handshake(60_000));
    assert.is(pair.net.down.stats.targeted, 2);
    // A 2 s blackhole in both directions starting 30 ms into the transfer.
    const hole: [number, number] = [pair.now + 30, pair.now + 2030];
    pair.net.down.set({ blackholes: [hole] });
    pair.net.up.set({ blackholes: [hole] });
    const r = pair.transfer(2 * MB);
    assert.ok(pair.net.down.stats.blackholed > 0, 'the blackhole swallowed datagrams');
    assert.ok(r.virtualMs > 2000, `the transfer waited out the blackhole (${r.virtualMs} ms)`);
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
  });
}

test.run();
