/**
 * Child-process HTTP/3 server for the load tests (test/load-*.test.ts, scripts/load.ts). Started by
 * `startLoadServer()` (test/support/load.ts) with `fork()` and `--expose-gc`, so that its memory,
 * handles and timers are measured apart from the clients'. Talks over the IPC channel:
 *
 *   parent → child  { id, cmd: 'stats' | 'gc' | 'close' }
 *   child → parent  { type: 'ready', port } once listening; { id, reply: LoadServerStats } per command
 *
 * The configuration comes as JSON in argv[2] (LoadServerConfig). Routes: GET /bytes/N answers N
 * bytes (streamed); POST /sink reads the whole body and answers its length; POST /later?ms=M waits M ms
 * before it reads the body (a slow application); anything else "ok".
 */
import process from 'node:process';
import { serve } from '../../packages/h3/src/node.js';
import type { QuicServer } from '../../packages/quic/src/node/index.js';

export interface LoadServerConfig {
  certPem: string;
  keyPem: string;
  provider?: 'node' | 'noble';
  retry?: 'always' | 'auto' | 'never';
  retryThreshold?: number;
  maxConnections?: number;
  maxHandshakes?: number;
  maxIdleTimeout?: number;
  maxStreamsBidi?: number;
  /** Sample interval for peak connection / handshake counts (ms, default 20). */
  sampleMs?: number;
}

export interface LoadServerStats {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** Peak RSS of the process so far (bytes, from resourceUsage().maxRSS). */
  maxRss: number;
  /** Connections the Endpoint holds, handshakes in flight, connection wrappers in the driver. */
  connections: number;
  handshakes: number;
  wrappers: number;
  peakConnections: number;
  peakHandshakes: number;
  /** Endpoint counters (accepted, refused, retriesSent, dropped, ...). */
  endpoint: Record<string, number>;
  requests: number;
  requestErrors: number;
  /** process.getActiveResourcesInfo() counted by kind (Timeout, UDPWRAP, ...). */
  resources: Record<string, number>;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadServerConfig;
let requests = 0;
let requestErrors = 0;
let peakConnections = 0;
let peakHandshakes = 0;

const server: QuicServer = await serve(
  {
    port: 0,
    host: '127.0.0.1',
    provider: cfg.provider ?? 'node',
    cert: cfg.certPem,
    key: cfg.keyPem,
    retry: cfg.retry,
    retryThreshold: cfg.retryThreshold,
    maxConnections: cfg.maxConnections,
    maxHandshakes: cfg.maxHandshakes,
    maxIdleTimeout: cfg.maxIdleTimeout,
    maxStreamsBidi: cfg.maxStreamsBidi,
    onError: () => requestErrors++,
  },
  async (req) => {
    requests++;
    const url = new URL(req.url);
    const m = /^\/bytes\/(\d+)$/.exec(url.pathname);
    if (m) {
      // Streamed in 16 KiB chunks on demand, so the response body itself holds no memory.
      let left = Math.min(Number(m[1]), 1 << 30);
      const chunk = new Uint8Array(16_384).fill(0x61);
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (left <= 0) return ctl.close();
            const k = Math.min(left, chunk.length);
            left -= k;
            ctl.enqueue(chunk.slice(0, k));
          },
        }),
      );
    }
    if (url.pathname === '/later') {
      // Reads nothing for ?ms= milliseconds, then consumes the body (a slow application).
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 1000)));
      let n = 0;
      for await (const c of req.body as unknown as AsyncIterable<Uint8Array>) n += c.length;
      return new Response(String(n));
    }
    if (url.pathname === '/sink') {
      let n = 0;
      for await (const c of req.body as unknown as AsyncIterable<Uint8Array>) n += c.length;
      return new Response(String(n));
    }
    return new Response('ok');
  },
);

const ep = server.endpoint;
// One sampler timer for the whole run: it is part of every baseline, so it cancels out.
const sampler = setInterval(() => {
  if (ep.connectionCount > peakConnections) peakConnections = ep.connectionCount;
  if (ep.handshakesInFlight > peakHandshakes) peakHandshakes = ep.handshakesInFlight;
}, cfg.sampleMs ?? 20);

function stats(): LoadServerStats {
  const m = process.memoryUsage();
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    maxRss: process.resourceUsage().maxRSS * 1024,
    connections: ep.connectionCount,
    handshakes: ep.handshakesInFlight,
    wrappers: server.connections.length,
    peakConnections,
    peakHandshakes,
    endpoint: { ...ep.stats },
    requests,
    requestErrors,
    resources,
  };
}

async function gc(): Promise<void> {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('load-server: run with --expose-gc');
  // Several rounds with turns of the event loop in between (finalizers, weak refs, stream teardown).
  for (let i = 0; i < 4; i++) {
    g();
    await new Promise((r) => setImmediate(r));
  }
}

process.on('message', (msg: { id: number; cmd: string }) => {
  void (async () => {
    if (msg.cmd === 'gc') await gc();
    if (msg.cmd === 'conns') {
      // Diagnostics: what each remaining connection is waiting for.
      const t = performance.timeOrigin + performance.now();
      const list = ep.connections().map((c) => {
        const x = c as unknown as Record<string, unknown>;
        const nt = c.nextTimeout();
        return { state: x['state'], closed: c.isClosed, hs: c.handshakeComplete, next: nt === null ? null : Math.round(nt - t), idle: Math.round((x['idleDeadline'] as number) - t), stats: x['stats'] };
      });
      process.send!({ id: msg.id, reply: { ...stats(), list } });
      return;
    }
    if (msg.cmd === 'close') {
      clearInterval(sampler);
      await server.close(0, 'bye', 500);
      process.send!({ id: msg.id, reply: stats() });
      process.disconnect();
      return;
    }
    process.send!({ id: msg.id, reply: stats() });
  })();
});
process.on('disconnect', () => {
  clearInterval(sampler);
  void server.close(0, 'parent gone', 200).finally(() => process.exit(0));
});

process.send!({ type: 'ready', port: server.address().port });
