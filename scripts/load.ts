/**
 * Loopback load runs with figures (the heavier variants of test/load-*.test.ts):
 *
 *   node scripts/run-ts.mjs scripts/load.ts conns [N=1000] [PATH=/bytes/1000]
 *   node scripts/run-ts.mjs scripts/load.ts flood [N=5000] [THRESHOLD=64]
 *   node scripts/run-ts.mjs scripts/load.ts vanish [N=200]
 *
 * Prints one JSON object per run (connections, failures, wall time, server peak RSS, ...).
 */
import { floodSend, makeInitials, mb, runClients, sleep, startLoadServer, waitFor } from '../test/support/load.js';
import { runVanish } from '../test/support/load-vanish.js';

const [mode = 'conns', a1, a2] = process.argv.slice(2);

async function conns(n: number, path: string): Promise<void> {
  const srv = await startLoadServer({});
  try {
    const before = await srv.stats();
    const r = await runClients(srv.port, n, { path });
    const after = await srv.stats();
    console.log(
      JSON.stringify({
        mode: 'conns',
        connections: n,
        ok: r.ok,
        failures: r.failures,
        errors: r.errors,
        wallMs: Math.round(r.ms),
        serverRssBefore: mb(before.rss),
        serverPeakRss: mb(after.maxRss),
        peakServerConnections: after.peakConnections,
        peakHandshakes: after.peakHandshakes,
        requests: after.requests,
        endpoint: after.endpoint,
      }),
    );
  } finally {
    await srv.close();
  }
}

async function flood(n: number, threshold: number): Promise<void> {
  const srv = await startLoadServer({ retry: 'auto', retryThreshold: threshold, maxIdleTimeout: 3000 });
  try {
    const initials = makeInitials(n);
    const base = await srv.gc();
    let legit: Awaited<ReturnType<typeof runClients>> | null = null;
    let peakRssDuring = 0;
    let peakHeapDuring = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        const s = await srv.stats();
        peakRssDuring = Math.max(peakRssDuring, s.rss);
        peakHeapDuring = Math.max(peakHeapDuring, s.heapUsed);
        await sleep(100);
      }
    })();
    const t0 = performance.now();
    const floodRun = floodSend(srv.port, initials, { sockets: 64, perTick: 100 });
    await sleep(100);
    legit = await runClients(srv.port, 20, { path: '/bytes/100', expectBytes: 100 });
    const f = await floodRun;
    const floodMs = performance.now() - t0;
    const during = await srv.stats();
    done = true;
    await sampler;
    await waitFor(async () => (await srv.stats()).connections === 0, 15_000);
    const after = await srv.gc();
    console.log(
      JSON.stringify({
        mode: 'flood',
        initialsSent: f.sent,
        floodMs: Math.round(floodMs),
        answers: f.answers,
        retryThreshold: threshold,
        peakHandshakes: during.peakHandshakes,
        peakConnections: during.peakConnections,
        endpoint: during.endpoint,
        legit: { ok: legit.ok, failures: legit.failures, retried: legit.retried, errors: legit.errors },
        heapBaseline: mb(base.heapUsed),
        heapPeakDuring: mb(peakHeapDuring),
        heapAfterGc: mb(after.heapUsed),
        rssBaseline: mb(base.rss),
        rssPeakDuring: mb(peakRssDuring),
        rssAfter: mb(after.rss),
        maxRss: mb(after.maxRss),
        connectionsAfter: after.connections,
      }),
    );
  } finally {
    await srv.close();
  }
}

if (mode === 'conns') await conns(Number(a1 ?? 1000), a2 ?? '/bytes/1000');
else if (mode === 'flood') await flood(Number(a1 ?? 5000), Number(a2 ?? 64));
else if (mode === 'vanish') console.log(JSON.stringify({ mode: 'vanish', ...(await runVanish(Number(a1 ?? 200))) }));
else {
  console.error('usage: scripts/load.ts conns|flood|vanish [N] [...]');
  process.exit(2);
}
