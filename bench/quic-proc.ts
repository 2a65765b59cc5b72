/**
 * The Petrel side of the QUIC / HTTP/3 benchmarks, one role per child process (so that RSS and CPU
 * are per process). Run by bench/quic.ts and bench/h3.ts (`node --conditions=petrel-src --import tsx
 * bench/quic-proc.ts MODE ...`); every mode prints one `RESULT {json}` line on stdout, servers
 * print `READY <port>` once bound and `STATS {json}` when they stop (SIGTERM, stdin closed, or
 * their lifetime is over).
 *
 *   server hq|h3 HOST PORT WWW CERT KEY        hq-interop (GET /file\r\n) or HTTP/3 file server
 *                                              stdin lines: "mem" → `MEM {json}` (after a GC when
 *                                              --expose-gc), "count" → `COUNT n` (live connections),
 *                                              "snap FILE" → heap snapshot, `SNAP FILE`
 *   get hq|h3 URL OUT CA                        one connection, one file → RESULT {ms, bytes}
 *   handshakes hq|h3 URL N CONC CA              N/10 (at least 3) warm-up connections, then N connections
 *                                              (CONC at a time) each fetching URL → RESULT {ms, ok, fail}
 *   idle URL N CA                               N connections, each fetches URL once, then stays idle;
 *                                              prints `IDLE n`, exits when stdin closes
 *   h3req URL N WINDOW CA                       one h3 connection, N/10 warm-up GETs, then N GETs with
 *                                              WINDOW in flight → RESULT {ms, ok, bytes} (ms: the N GETs)
 *
 * Env: PETREL_PROVIDER=node|noble (default node), BENCH_LIFETIME_MS (default 300 000),
 * BENCH_NO_STDIN=1 (server: ignore stdin; stop with SIGTERM).
 * `ms` is measured inside the process, from just before connect() to the last byte (module
 * loading and process start-up excluded). STATS / RESULT also carry maxRssMB and cpuS of the process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import { connect, listen, type NodeQuicConnection } from '../packages/quic/src/node/index.js';
import { connectH3, serve } from '../packages/h3/src/node.js';
import { readHqGetPath } from '../interop/hq.js';

const PROVIDER = (process.env.PETREL_PROVIDER === 'noble' ? 'noble' : 'node') as 'node' | 'noble';
const HQ = 'hq-interop';
const LIFETIME = Number(process.env.BENCH_LIFETIME_MS ?? 300_000);
const WINDOWS = {
  connectionWindow: 8 * 1024 * 1024,
  maxConnectionWindow: 32 * 1024 * 1024,
  streamWindow: 4 * 1024 * 1024,
  maxStreamWindow: 16 * 1024 * 1024,
};

const lifetime = setTimeout(() => finish(3), LIFETIME);

function procStats(): { maxRssMB: number; cpuS: number; rssMB: number } {
  const ru = process.resourceUsage();
  return { maxRssMB: ru.maxRSS / 1024, cpuS: (ru.userCPUTime + ru.systemCPUTime) / 1e6, rssMB: process.memoryUsage.rss() / 2 ** 20 };
}

function out(tag: string, o: unknown): void {
  process.stdout.write(`${tag} ${JSON.stringify(o)}\n`);
}

let finishing = false;
function finish(code: number): void {
  if (finishing) return;
  finishing = true;
  clearTimeout(lifetime);
  out('STATS', procStats());
  process.exit(code);
}

function onStdinLines(fn: (line: string) => void): void {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      fn(buf.slice(0, i).trim());
      buf = buf.slice(i + 1);
    }
  });
  process.stdin.on('end', () => finish(0));
}

function memory(): Record<string, number> {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

function safeFile(www: string, urlPath: string): string | null {
  const rel = decodeURIComponent(urlPath.split('?')[0]!);
  const file = path.resolve(www, `.${path.posix.normalize(`/${rel}`)}`);
  if (!file.startsWith(path.resolve(www))) return null;
  try {
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers

async function server(kind: string, host: string, port: number, www: string, certFile: string, keyFile: string): Promise<void> {
  const cert = fs.readFileSync(certFile, 'utf8');
  const key = fs.readFileSync(keyFile, 'utf8');
  const common = { host, port, cert, key, provider: PROVIDER, maxIdleTimeout: 120_000, maxStreamsBidi: 1000, ...WINDOWS, streamWindow: 2 * 1024 * 1024 };
  const small = new Map<string, Uint8Array>();
  const srv =
    kind === 'h3'
      ? await serve({ ...common, onError: () => {} }, (req) => {
          const file = safeFile(www, new URL(req.url).pathname);
          if (!file) return new Response('not found', { status: 404 });
          const size = fs.statSync(file).size;
          if (size <= 64 * 1024) {
            let b = small.get(file);
            if (!b) small.set(file, (b = new Uint8Array(fs.readFileSync(file))));
            return new Response(b as unknown as BodyInit, { headers: { 'content-length': String(size) } });
          }
          const body = Readable.toWeb(fs.createReadStream(file, { highWaterMark: 256 * 1024 })) as unknown as ReadableStream<Uint8Array>;
          return new Response(body as unknown as BodyInit, { headers: { 'content-length': String(size) } });
        })
      : await listen({ ...common, alpn: [HQ] }, (c) => void serveHq(c, www, small).catch(() => {}));
  process.stdout.write(`READY ${srv.address().port}\n`);
  process.on('SIGTERM', () => finish(0));
  process.on('SIGINT', () => finish(0));
  if (process.env.BENCH_NO_STDIN) return;
  onStdinLines((line) => {
    if (line === 'mem') out('MEM', memory());
    else if (line === 'count') process.stdout.write(`COUNT ${srv.connections.length}\n`);
    else if (line.startsWith('snap ')) process.stdout.write(`SNAP ${v8.writeHeapSnapshot(line.slice(5))}\n`);
  });
}

async function serveHq(c: NodeQuicConnection, www: string, small: Map<string, Uint8Array>): Promise<void> {
  for await (const s of c.incomingBidirectionalStreams) {
    void (async () => {
      const urlPath = await readHqGetPath(s.readable);
      const w = s.writable.getWriter();
      const file = urlPath !== null ? safeFile(www, urlPath) : null;
      if (!file) {
        await w.close();
        return;
      }
      const size = fs.statSync(file).size;
      if (size <= 64 * 1024) {
        let b = small.get(file);
        if (!b) small.set(file, (b = new Uint8Array(fs.readFileSync(file))));
        await w.write(b);
        await w.close();
        return;
      }
      const fd = fs.openSync(file, 'r');
      try {
        for (;;) {
          const buf = new Uint8Array(256 * 1024);
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n <= 0) break;
          await w.write(n === buf.length ? buf : buf.subarray(0, n));
        }
      } finally {
        fs.closeSync(fd);
      }
      await w.close();
    })().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

function serverName(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

async function hqConnect(u: URL, ca: string, idle = 30_000): Promise<NodeQuicConnection> {
  return connect(u, { provider: PROVIDER, alpn: [HQ], ca, serverName: serverName(u), maxIdleTimeout: idle, ...WINDOWS, handshakeTimeoutMs: 20_000 });
}

/** GET over hq-interop on `conn`; writes the body to `fd` (or counts it); returns bytes. */
async function hqGet(conn: NodeQuicConnection, u: URL, fd: number | null): Promise<number> {
  const s = await conn.openBidirectionalStream();
  const w = s.writable.getWriter();
  await w.write(new TextEncoder().encode(`GET ${u.pathname}\r\n`));
  await w.close();
  let n = 0;
  for await (const chunk of s.readable) {
    if (fd !== null) fs.writeSync(fd, chunk);
    n += chunk.length;
  }
  return n;
}

async function h3Body(res: Response, fd: number | null): Promise<number> {
  let n = 0;
  if (!res.body) return 0;
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (fd !== null) fs.writeSync(fd, value);
    n += value.length;
  }
  if (res.status !== 200) throw new Error(`HTTP status ${res.status}`);
  return n;
}

async function get(kind: string, url: string, outFile: string, caFile: string): Promise<void> {
  const ca = fs.readFileSync(caFile, 'utf8');
  const u = new URL(url);
  const fd = fs.openSync(outFile, 'w');
  const t0 = performance.now();
  let bytes: number;
  try {
    if (kind === 'h3') {
      const c = await connectH3(u, { provider: PROVIDER, ca, serverName: serverName(u), ...WINDOWS, maxIdleTimeout: 30_000, handshakeTimeoutMs: 20_000 });
      bytes = await h3Body(await c.fetch(url), fd);
      const ms = performance.now() - t0;
      out('RESULT', { ms, bytes, ...procStats() });
      await c.close();
    } else {
      const c = await hqConnect(u, ca);
      bytes = await hqGet(c, u, fd);
      const ms = performance.now() - t0;
      out('RESULT', { ms, bytes, ...procStats() });
      await c.close(0, '');
    }
  } finally {
    fs.closeSync(fd);
  }
  finish(0);
}

async function handshakes(kind: string, url: string, n: number, conc: number, caFile: string): Promise<void> {
  const ca = fs.readFileSync(caFile, 'utf8');
  const u = new URL(url);
  let next = 0;
  let ok = 0;
  let fail = 0;
  let firstError = '';
  const one = async (): Promise<void> => {
    if (kind === 'h3') {
      const c = await connectH3(u, { provider: PROVIDER, ca, serverName: serverName(u), handshakeTimeoutMs: 10_000 });
      try {
        const b = await h3Body(await c.fetch(url), null);
        if (b <= 0) throw new Error('empty response');
      } finally {
        await c.close();
      }
    } else {
      const c = await hqConnect(u, ca);
      try {
        const b = await hqGet(c, u, null);
        if (b <= 0) throw new Error('empty response');
      } finally {
        await c.close(0, '');
      }
    }
  };
  // Warm-up (JIT): N/10 connections (at least 3), not counted.
  const warm = Math.max(3, Math.ceil(n / 10));
  for (let i = 0; i < warm; i++) await one().catch(() => {});
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(conc, n) }, async () => {
      while (next < n) {
        next++;
        try {
          await one();
          ok++;
        } catch (e) {
          fail++;
          firstError ||= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  const ms = performance.now() - t0;
  out('RESULT', { ms, ok, fail, firstError, ...procStats() });
  finish(0);
}

async function idle(url: string, n: number, caFile: string): Promise<void> {
  const ca = fs.readFileSync(caFile, 'utf8');
  const u = new URL(url);
  const conns: NodeQuicConnection[] = [];
  let fail = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < n) {
        next++;
        try {
          const c = await hqConnect(u, ca, 120_000);
          await hqGet(c, u, null);
          conns.push(c);
        } catch {
          fail++;
        }
      }
    }),
  );
  process.stdout.write(`IDLE ${conns.length} ${fail}\n`);
  onStdinLines(() => {});
}

async function h3req(url: string, n: number, window: number, caFile: string): Promise<void> {
  const ca = fs.readFileSync(caFile, 'utf8');
  const u = new URL(url);
  const t0 = performance.now();
  const c = await connectH3(u, { provider: PROVIDER, ca, serverName: serverName(u), ...WINDOWS, maxIdleTimeout: 30_000, handshakeTimeoutMs: 20_000 });
  // Warm-up (JIT, QPACK state): a tenth of N, not counted.
  const warm = Math.min(200, Math.ceil(n / 10));
  for (let i = 0; i < warm; i += window) await Promise.all(Array.from({ length: Math.min(window, warm - i) }, async () => h3Body(await c.fetch(url), null)));
  const tReady = performance.now();
  let next = 0;
  let ok = 0;
  let bytes = 0;
  let fail = 0;
  let firstError = '';
  await Promise.all(
    Array.from({ length: Math.min(window, n) }, async () => {
      while (next < n) {
        next++;
        try {
          const b = await h3Body(await c.fetch(url), null);
          bytes += b;
          ok++;
        } catch (e) {
          fail++;
          firstError ||= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  const t1 = performance.now();
  out('RESULT', { ms: t1 - tReady, handshakeMs: tReady - t0, ok, fail, bytes, firstError, ...procStats() });
  await c.close().catch(() => {});
  finish(0);
}

// ---------------------------------------------------------------------------------------------

const [mode, ...a] = process.argv.slice(2);
const main = async (): Promise<void> => {
  switch (mode) {
    case 'server':
      return server(a[0]!, a[1]!, Number(a[2]), a[3]!, a[4]!, a[5]!);
    case 'get':
      return get(a[0]!, a[1]!, a[2]!, a[3]!);
    case 'handshakes':
      return handshakes(a[0]!, a[1]!, Number(a[2]), Number(a[3]), a[4]!);
    case 'idle':
      return idle(a[0]!, Number(a[1]), a[2]!);
    case 'h3req':
      return h3req(a[0]!, Number(a[1]), Number(a[2]), a[3]!);
    default:
      throw new Error(`unknown mode ${mode}`);
  }
};
main().catch((e) => {
  process.stderr.write(`quic-proc ${mode}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  out('ERROR', { message: e instanceof Error ? e.message : String(e) });
  finish(1);
});
