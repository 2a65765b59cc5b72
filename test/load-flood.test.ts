// Handshake flood on loopback (no spoofing): real client Initials (distinct DCIDs and key shares,
// made by our client) sent once each from many source ports and never followed up, while
// legitimate clients connect. The server (child process) must keep its handshake state bounded:
// with retry 'auto' it answers with stateless Retry once more than retryThreshold handshakes are in
// flight; with retry 'never' maxHandshakes refuses the excess. Memory measured before, during and
// after (full GC). CI: 1,500 Initials; LOAD_FULL=1: 10,000.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { floodSend, makeInitials, mb, runClients, sleep, startLoadServer, waitFor, type LoadServer } from './support/load.js';

const full = process.env.LOAD_FULL === '1';
const FLOOD = full ? 10_000 : 1500;
const LEGIT = 10;
const initials = makeInitials(FLOOD);

async function sampleWhile<T>(srv: LoadServer, p: Promise<T>): Promise<{ value: T; peakHeap: number; peakRss: number }> {
  let done = false;
  let peakHeap = 0;
  let peakRss = 0;
  const sampler = (async () => {
    while (!done) {
      const s = await srv.stats();
      peakHeap = Math.max(peakHeap, s.heapUsed);
      peakRss = Math.max(peakRss, s.rss);
      await sleep(50);
    }
  })();
  try {
    return { value: await p, peakHeap, peakRss };
  } finally {
    done = true;
    await sampler;
  }
}

test(`retry 'auto': ${FLOOD} unfinished handshakes → Retry past the threshold, bounded memory, legitimate clients connect`, async () => {
  const threshold = 32;
  const srv = await startLoadServer({ retry: 'auto', retryThreshold: threshold, maxIdleTimeout: 1500 });
  try {
    await runClients(srv.port, 2, { path: '/bytes/100' }); // warm-up
    await waitFor(async () => (await srv.stats()).connections === 0, 10_000);
    const base = await srv.gc();
    const run = (async () => {
      const flood = floodSend(srv.port, initials, { sockets: 32, perTick: 100 });
      await sleep(50);
      const legit = await runClients(srv.port, LEGIT, { path: '/bytes/100', expectBytes: 100 });
      return { flood: await flood, legit };
    })();
    const { value, peakHeap, peakRss } = await sampleWhile(srv, run);
    const during = await srv.stats();
    const ok = await waitFor(async () => (await srv.stats()).connections === 0, 30_000);
    const after = await srv.gc();
    console.log(
      `  flood ${value.flood.sent} Initials (${during.endpoint['received']} datagrams reached the endpoint, ${during.endpoint['dropped']} dropped there): ${during.endpoint['retriesSent']} Retry, ${during.endpoint['accepted']} accepted, peak ${during.peakHandshakes} handshakes; ` +
        `legit ${value.legit.ok}/${LEGIT} ok (${value.legit.retried} via Retry); heap ${mb(base.heapUsed)} → peak ${mb(peakHeap)} → ${mb(after.heapUsed)}; rss ${mb(base.rss)} → peak ${mb(peakRss)}`,
    );
    assert.equal(value.legit.errors, {});
    assert.is(value.legit.ok, LEGIT);
    assert.ok(value.legit.retried > 0, 'legitimate clients went through Retry during the flood');
    // Unvalidated handshakes stop at threshold + 1; validated ones (legit, with our token) come on top.
    assert.ok(during.peakHandshakes <= threshold + 1 + LEGIT + 2, `peak ${during.peakHandshakes} handshakes`);
    assert.ok(during.endpoint['accepted']! <= threshold + 1 + LEGIT + 2 + 40, `accepted ${during.endpoint['accepted']}`); // + those finished/timed out meanwhile
    // Every flood Initial that reached the endpoint got a Retry, or was dropped (kernel buffer before
    // it, the endpoint's bounded queue of stateless answers); none created state beyond the threshold.
    const e = during.endpoint;
    assert.ok(e['received']! >= Math.min(1000, value.flood.sent * 0.3), `only ${e['received']} datagrams reached the server`);
    assert.ok(e['retriesSent']! + e['dropped']! + e['accepted']! >= e['received']! - 10 * LEGIT, JSON.stringify(e));
    assert.ok(e['retriesSent']! >= Math.min(500, e['received']! / 2), JSON.stringify(e));
    assert.ok(peakHeap - base.heapUsed < 48 * 1048576, `heap grew by ${mb(peakHeap - base.heapUsed)}`);
    assert.ok(ok, 'half-open connections timed out');
    assert.ok(after.heapUsed < base.heapUsed + 4 * 1048576, `heap after ${mb(after.heapUsed)} vs baseline ${mb(base.heapUsed)}`);
  } finally {
    await srv.close();
  }
});

test(`retry 'never', maxHandshakes 100: the excess is refused (CONNECTION_REFUSED), memory bounded, state released`, async () => {
  const srv = await startLoadServer({ retry: 'never', maxHandshakes: 100, maxIdleTimeout: 1500 });
  try {
    const base = await srv.gc();
    const n = Math.min(FLOOD, 1000);
    const { value, peakHeap } = await sampleWhile(srv, floodSend(srv.port, initials.slice(0, n), { sockets: 32, perTick: 25 }));
    const during = await srv.stats();
    const perConn = (peakHeap - base.heapUsed) / Math.max(1, during.peakHandshakes);
    console.log(
      `  ${value.sent} Initials (${during.endpoint['received']} reached the endpoint, the rest dropped by the socket buffer): ${during.endpoint['accepted']} accepted, ${during.endpoint['refused']} refused, peak ${during.peakHandshakes} handshakes; heap +${mb(peakHeap - base.heapUsed)} (~${(perConn / 1024).toFixed(0)} KiB per half-open connection)`,
    );
    assert.ok(during.peakHandshakes <= 100, `peak ${during.peakHandshakes}`);
    // Every Initial that reached the endpoint was either accepted or refused (none dropped on the floor).
    const e = during.endpoint;
    assert.ok(e['received']! >= 200, `only ${e['received']} Initials reached the server`);
    assert.ok(e['accepted']! + e['refused']! + e['dropped']! >= e['received']!, JSON.stringify(e));
    assert.ok(e['refused']! >= e['received']! - 100 - 20, JSON.stringify(e));
    assert.ok(await waitFor(async () => (await srv.stats()).connections === 0, 30_000), 'half-open connections timed out');
    const after = await srv.gc();
    assert.is(after.handshakes, 0);
    assert.ok(after.heapUsed < base.heapUsed + 4 * 1048576, `heap after ${mb(after.heapUsed)} vs baseline ${mb(base.heapUsed)}`);
    // With the old ones gone, a legitimate client gets in again.
    const r = await runClients(srv.port, 3, { path: '/bytes/10', expectBytes: 10 });
    assert.is(r.ok, 3, JSON.stringify(r.errors));
  } finally {
    await srv.close();
  }
});

test.run();
