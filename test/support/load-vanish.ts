/**
 * Clients that vanish mid-transfer: `n` HTTP/3 clients in a child process start downloads and
 * uploads, then the child is SIGKILLed (no CONNECTION_CLOSE). Measures that the server's
 * connections time out and are removed, and that its handles, timers and heap return to the
 * baseline taken before (after a warm-up run, with a full GC in the server child).
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCerts, mb, runClients, startLoadServer, waitFor, type LoadServerStats } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface VanishResult {
  clients: number;
  started: number;
  /** Why clients did not get their transfer started (should be none). */
  clientErrors: Record<string, number>;
  connectionsDuring: number;
  /** ms from the kill until the server held no connection. */
  removedAfterMs: number;
  idleTimeoutMs: number;
  connectionsAfter: number;
  wrappersAfter: number;
  handshakesAfter: number;
  resourcesBaseline: Record<string, number>;
  resourcesAfter: Record<string, number>;
  heapBaseline: number;
  heapDuring: number;
  heapAfter: number;
  rssBaseline: number;
  rssDuring: number;
  rssAfter: number;
  requestErrors: number;
  summary: string;
}

export async function runVanish(n: number, idleTimeoutMs = 1500): Promise<VanishResult> {
  const srv = await startLoadServer({ maxIdleTimeout: idleTimeoutMs });
  const child = fork(path.join(here, 'load-client.ts'), [JSON.stringify({ port: srv.port, n, caPem: loadCerts().ca.certPem })], {
    execArgv: ['--conditions=petrel-src', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    // Warm up (JIT, lazily built tables, the first TLS objects) so the baseline is a steady state.
    const warm = await runClients(srv.port, 4, { path: '/bytes/200000', expectBytes: 200_000 });
    if (warm.failures) throw new Error(`warm-up failed: ${JSON.stringify(warm.errors)}`);
    await waitFor(async () => (await srv.stats()).connections === 0, 10_000);
    const base: LoadServerStats = await srv.gc();
    let clientErrors: Record<string, number> = {};
    child.send('go');
    const started = await new Promise<number>((resolve, reject) => {
      const startMs = 60_000 + n * 500;
      const t = setTimeout(() => reject(new Error(`vanishing clients did not start within ${startMs / 1000} s`)), startMs);
      child.once('message', (m: { type: string; n: number; errors: Record<string, number> }) => {
        clearTimeout(t);
        clientErrors = m.errors;
        resolve(m.n);
      });
      child.once('exit', (c) => reject(new Error(`client child exited early (${c})`)));
    });
    const during = await srv.stats();
    child.kill('SIGKILL');
    const t0 = Date.now();
    const gone = await waitFor(async () => (await srv.stats()).connections === 0, idleTimeoutMs * 3 + 45_000 + n * 400, 50);
    const removedAfterMs = Date.now() - t0;
    if (!gone) {
      const d = await srv.conns();
      throw new Error(`server still holds ${d.connections} connections ${removedAfterMs} ms after the clients vanished: ${JSON.stringify(d.list.slice(0, 5))} wrappers ${d.wrappers} resources ${JSON.stringify(d.resources)}`);
    }
    // Let closing streams, handlers and timers settle.
    await waitFor(async () => {
      const s = await srv.stats();
      return (s.resources['Timeout'] ?? 0) <= (base.resources['Timeout'] ?? 0) && (s.resources['Immediate'] ?? 0) === 0;
    }, 5000);
    const after = await srv.gc();
    return {
      clients: n,
      started,
      clientErrors,
      connectionsDuring: during.connections,
      removedAfterMs,
      idleTimeoutMs,
      connectionsAfter: after.connections,
      wrappersAfter: after.wrappers,
      handshakesAfter: after.handshakes,
      resourcesBaseline: base.resources,
      resourcesAfter: after.resources,
      heapBaseline: base.heapUsed,
      heapDuring: during.heapUsed,
      heapAfter: after.heapUsed,
      rssBaseline: base.rss,
      rssDuring: during.rss,
      rssAfter: after.rss,
      requestErrors: after.requestErrors,
      summary: `heap ${mb(base.heapUsed)} → ${mb(during.heapUsed)} (during) → ${mb(after.heapUsed)} (after GC); rss ${mb(base.rss)} → ${mb(during.rss)} → ${mb(after.rss)}`,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await srv.close();
  }
}
