/**
 * Petrel's quic-interop-runner endpoint (https://github.com/quic-interop/quic-interop-runner):
 * hq-interop (HTTP/0.9 over QUIC: the client sends "GET /path\r\n" on a bidirectional stream and
 * FIN, the server answers with the file's bytes and FIN).
 *
 * Environment (the runner's contract; every path overridable so it runs without Docker):
 *   ROLE=client|server  TESTCASE=<name>  REQUESTS="https://server4:443/a https://server4:443/b"
 *   WWW (/www)  DOWNLOADS (/downloads)  CERTS (/certs: cert.pem, priv.key)  PORT (443)
 *   HOST (server bind address, default '::')  SSLKEYLOGFILE  QLOGDIR  LOGS (/logs)
 *   REPORT: optional path of a JSON report (what happened: versions, Retry, resumption, 0-RTT,
 *           key updates, suites) that interop/runner.ts uses to check each test's property.
 *   PETREL_PROVIDER=node|noble (default node)
 * Exit status: 0 success, 1 failure, 127 unsupported test case (the runner's convention).
 *
 * HTTP/3: TESTCASE=http3 (a transfer over h3), or HTTP=h3 with any other test case (what the
 * runner uses against ngtcp2, whose examples speak only h3): the server is packages/h3's serve()
 * answering GET /path with the file, the client connectH3().fetch() per URL; the test case's
 * transport behaviour (Retry, resumption, 0-RTT, ChaCha20, key update, versions) is the same.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connect, listen, type ConnectOptions, type ListenOptions, type NodeQuicConnection, type QuicServer } from '../packages/quic/src/node/index.js';
import { connectH3, serve } from '../packages/h3/src/node.js';
import { QUIC_V1, QUIC_V2 } from '../packages/quic/src/version.js';
import type { CipherSuite, SessionTicket } from '../packages/tls-core/src/handshake/api.js';
import { readHqGetPath } from './hq.js';

const env = process.env;
const ROLE = env.ROLE ?? '';
const TESTCASE = env.TESTCASE ?? '';
const WWW = env.WWW ?? '/www';
const DOWNLOADS = env.DOWNLOADS ?? '/downloads';
const CERTS = env.CERTS ?? '/certs';
const PORT = Number(env.PORT ?? 443);
const HOST = env.HOST ?? '::';
const REPORT = env.REPORT ?? '';
const PROVIDER = (env.PETREL_PROVIDER ?? 'node') as 'node' | 'noble';
const HQ = 'hq-interop';
/** A reserved version (RFC 9000 §15) to force Version Negotiation. */
const RESERVED_VERSION = 0x1a2a3a4a;

/** hq-interop or h3 (see the header comment). */
const HTTP = env.HTTP ?? (TESTCASE === 'http3' ? 'h3' : 'hq');

const SERVER_TESTS = new Set([
  'handshake', 'transfer', 'longrtt', 'chacha20', 'multiplexing', 'retry', 'resumption', 'zerortt', 'keyupdate', 'v2',
  'versionnegotiation', 'multiconnect', 'ipv6', 'handshakeloss', 'transferloss', 'handshakecorruption', 'transfercorruption',
  'blackhole', 'amplificationlimit', 'portrebinding', 'addressrebinding', 'rebind-port', 'rebind-addr', 'connectionmigration', 'goodput', 'crosstraffic',
]);
SERVER_TESTS.add('http3');
const CLIENT_TESTS = new Set([...SERVER_TESTS]);

interface ConnReport {
  role: 'client' | 'server';
  version: number;
  alpn: string | null;
  suite: string | null;
  resumed: boolean;
  earlyDataAccepted: boolean | null;
  retry: boolean | null;
  keyUpdates: { local: number; peer: number };
  close: string | null;
  streams: number;
  /** Client: active migrations started (connectionmigration). */
  migrations: number;
}

const report = {
  role: ROLE,
  testcase: TESTCASE,
  connections: [] as ConnReport[],
  server: null as null | Record<string, number>,
  client: { versionNegotiationReceived: 0 },
  errors: [] as string[],
};

function writeReport(): void {
  if (!REPORT) return;
  try {
    fs.writeFileSync(REPORT, JSON.stringify(report, null, 1));
  } catch {
    /* ignore */
  }
}

function log(...a: unknown[]): void {
  console.error(`[petrel ${ROLE}]`, ...a);
}

function track(c: NodeQuicConnection): ConnReport {
  const r: ConnReport = {
    role: c.role,
    version: c.version,
    alpn: null,
    suite: null,
    resumed: false,
    earlyDataAccepted: null,
    retry: null,
    keyUpdates: c.keyUpdates,
    close: null,
    streams: 0,
    migrations: 0,
  };
  report.connections.push(r);
  const fill = () => {
    r.version = c.version;
    if (c.handshake) {
      r.alpn = c.handshake.alpn;
      r.suite = c.handshake.suite;
      r.resumed = c.handshake.resumed;
      if (c.role === 'server') r.earlyDataAccepted = c.handshake.earlyDataAccepted;
    }
    if (c.role === 'client') r.earlyDataAccepted = c.earlyDataAccepted;
    const st = c.stats as { retry?: boolean } | null;
    if (st && typeof st.retry === 'boolean') r.retry = st.retry;
    writeReport();
  };
  c.on('handshake', fill);
  c.on('earlyData', fill);
  c.on('keyUpdate', fill);
  void c.closed.then((info) => {
    r.close = `${info.kind} ${info.remote ? 'peer' : 'local'} ${info.application ? 'app' : 'transport'} 0x${info.code.toString(16)} ${info.reason}`;
    fill();
  });
  return r;
}

// ---------------------------------------------------------------------------------------------
// Server

async function server(): Promise<number> {
  if (!SERVER_TESTS.has(TESTCASE)) return 127;
  const cert = fs.readFileSync(path.join(CERTS, 'cert.pem'), 'utf8');
  const key = fs.readFileSync(path.join(CERTS, 'priv.key'), 'utf8');
  const opts: ListenOptions = {
    host: HOST,
    port: PORT,
    cert,
    key,
    provider: PROVIDER,
    alpn: [HQ],
    retry: TESTCASE === 'retry' ? 'always' : 'never',
    versions: TESTCASE === 'v2' ? [QUIC_V2, QUIC_V1] : [QUIC_V1, QUIC_V2],
    tls: { maxEarlyData: 0xffffffff, tickets: { count: 2 } },
    maxIdleTimeout: 30_000,
    connectionWindow: 8 * 1024 * 1024,
    maxConnectionWindow: 32 * 1024 * 1024,
    streamWindow: 2 * 1024 * 1024,
    maxStreamsBidi: 1000,
  };
  await warmUp(opts);
  let srv: QuicServer;
  if (HTTP === 'h3') {
    const { alpn: _alpn, ...rest } = opts;
    srv = await serve(rest, (req) => serveH3(req));
    srv.on('connection', (c: NodeQuicConnection) => void track(c));
  } else {
    srv = await listen(opts, (c) => {
      const r = track(c);
      void serveHq(c, r).catch((e) => log('connection error', e));
    });
  }
  log(`listening on ${HOST}:${PORT} (${TESTCASE}, ${HTTP}), serving ${WWW}`);
  const dump = () => {
    report.server = { ...srv.endpoint.stats };
    writeReport();
  };
  const stop = (): void => {
    dump();
    void srv.close(0, 'shutdown', 300).finally(() => {
      dump();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(dump, 500).unref();
  await new Promise(() => {});
  return 0;
}

/**
 * One handshake against ourselves on an ephemeral loopback port before the real socket binds, with
 * the same certificate, key and settings, and no key log or qlog. A fresh Node process pays for JIT
 * compilation, key import and the first signature on its first connection (20-30 ms on a loaded
 * machine). The peer's RTT sample includes that time and its PTO, 3x the sample, grows with it;
 * in amplificationlimit, where the client's datagrams 2-7 are dropped and the server may not send
 * more than 3x what it received (RFC 9000 §8.1), the handshake completes only when the client's
 * eighth datagram (its sixth PTO, ~63x the PTO base) gets through, which must happen before the
 * client's own 10 s handshake timeout. The warm-up never delays the real server: the runner waits
 * for the real port.
 */
async function warmUp(opts: ListenOptions): Promise<void> {
  const t0 = Date.now();
  const loop = HOST.includes(':') ? '::1' : '127.0.0.1';
  let tmp: QuicServer | null = null;
  try {
    tmp = await listen({ ...opts, host: loop, port: 0, retry: 'never', keyLogFile: '', qlogDir: '' }, () => {});
    const port = tmp.address().port;
    const c = await connect(`https://${loop.includes(':') ? `[${loop}]` : loop}:${port}`, {
      alpn: opts.alpn ?? [HQ],
      insecureSkipVerify: true,
      keyLogFile: '',
      qlogDir: '',
      handshakeTimeoutMs: 3000,
    });
    await c.close(0, 'warm-up');
    log(`warm-up handshake in ${Date.now() - t0} ms`);
  } catch (e) {
    log(`warm-up failed (the server still starts): ${(e as Error).message}`);
  } finally {
    await tmp?.close(0, '', 100).catch(() => {});
  }
}

/** The file under WWW a request path names, or null (outside WWW, missing, not a file). */
function fileFor(urlPath: string): string | null {
  const rel = decodeURIComponent(urlPath.split('?')[0]!);
  const file = path.resolve(WWW, `.${path.posix.normalize(`/${rel}`)}`);
  if (!file.startsWith(path.resolve(WWW)) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return null;
  return file;
}

function serveH3(req: Request): Response {
  const file = fileFor(new URL(req.url).pathname);
  if (!file) return new Response('not found', { status: 404 });
  return new Response(new Uint8Array(fs.readFileSync(file)), { headers: { 'content-type': 'application/octet-stream' } });
}

async function serveHq(c: NodeQuicConnection, r: ConnReport): Promise<void> {
  for await (const s of c.incomingBidirectionalStreams) {
    r.streams++;
    void (async () => {
      const urlPath = await readHqGetPath(s.readable);
      const w = s.writable.getWriter();
      if (urlPath === null) {
        await w.abort(0x1);
        return;
      }
      const file = fileFor(urlPath);
      if (!file) {
        await w.close();
        return;
      }
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.allocUnsafe(256 * 1024);
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n <= 0) break;
          await w.write(new Uint8Array(buf.subarray(0, n)));
        }
      } finally {
        fs.closeSync(fd);
      }
      await w.close();
    })().catch((e) => log('stream error', (e as Error).message));
  }
}

// ---------------------------------------------------------------------------------------------
// Client

interface ClientSettings {
  session?: SessionTicket;
  earlyData?: boolean;
}

async function client(): Promise<number> {
  if (!CLIENT_TESTS.has(TESTCASE)) return 127;
  const urls = requests();
  if (urls.length === 0) {
    log('REQUESTS is empty');
    return 1;
  }
  fs.mkdirSync(DOWNLOADS, { recursive: true });
  switch (TESTCASE) {
    case 'multiconnect':
    case 'handshakeloss':
    case 'handshakecorruption':
      for (const u of urls) await session([u], {});
      return 0;
    case 'resumption':
    case 'zerortt': {
      const first = await session([urls[0]!], {}, true);
      if (!first.ticket) throw new Error('no session ticket from the server: cannot resume');
      await session(urls.slice(1), { session: first.ticket, earlyData: TESTCASE === 'zerortt' });
      return 0;
    }
    default:
      await session(urls, {});
      return 0;
  }
}

function requests(): string[] {
  return (env.REQUESTS ?? '').split(/\s+/).filter(Boolean);
}

/** One connection fetching `urls` concurrently. */
/**
 * multiconnect is what handshakeloss / handshakecorruption run (50 handshakes, 30% loss or
 * corruption): a ClientHello flight whose datagrams are all lost 4 times running (client PTOs at
 * 0, 1, 3, 7 s, then 15 and 31 s) happens about once in a full run with the relay's fixed seed
 * (e.g. seed 1 corrupts 8 consecutive client datagrams, #212-219). The client then keeps trying
 * through the 6th flight (31 s) instead of giving up at 20 s: handshake deadline and idle timeout
 * (which also runs from the first packet when nothing was received, RFC 9000 §10.1) 45 s.
 */
const PATIENT = TESTCASE === 'multiconnect' || TESTCASE === 'handshakeloss' || TESTCASE === 'handshakecorruption';

async function session(urls: string[], s: ClientSettings, wantTicket = false): Promise<{ ticket: SessionTicket | null }> {
  const u0 = new URL(urls[0]!);
  const cipherSuites: CipherSuite[] | undefined = TESTCASE === 'chacha20' ? ['TLS_CHACHA20_POLY1305_SHA256'] : undefined;
  const opts: ConnectOptions = {
    provider: PROVIDER,
    alpn: [HQ],
    insecureSkipVerify: true, // the interop runner's certificates are not verifiable by name
    tls: cipherSuites ? { cipherSuites } : {},
    session: s.session,
    earlyData: s.earlyData,
    early: !!s.earlyData,
    version: TESTCASE === 'versionnegotiation' ? RESERVED_VERSION : QUIC_V1,
    versions: TESTCASE === 'v2' ? [QUIC_V2, QUIC_V1] : [QUIC_V1, QUIC_V2],
    maxIdleTimeout: PATIENT ? 45_000 : 30_000,
    connectionWindow: 8 * 1024 * 1024,
    maxConnectionWindow: 32 * 1024 * 1024,
    streamWindow: 4 * 1024 * 1024,
    maxStreamWindow: 16 * 1024 * 1024,
    handshakeTimeoutMs: PATIENT ? 45_000 : 20_000,
  };
  let conn: NodeQuicConnection;
  let get: (u: string) => Promise<void>;
  let closeConn: () => Promise<unknown>;
  if (HTTP === 'h3') {
    const { alpn: _alpn, early: _early, ...rest } = opts;
    // connectH3 resolves after the handshake (its HTTP/3 layer starts then): no 0-RTT requests over h3 here.
    const h3 = await connectH3(u0, rest);
    conn = h3.quic;
    get = (u) => fetchH3(h3.fetch, u);
    closeConn = () => h3.close();
  } else {
    conn = await connect(u0, opts);
    get = (u) => fetchHq(conn, u);
    closeConn = () => conn.close(0, '');
  }
  const r = track(conn);
  if (TESTCASE === 'keyupdate') {
    // Initiate a key update early in the transfer: as soon as the handshake is confirmed.
    if (!conn.updateKeys()) {
      await new Promise<void>((res) => {
        const iv = setInterval(() => {
          if (conn.updateKeys() || conn.isClosed) {
            clearInterval(iv);
            res();
          }
        }, 2);
      });
    }
  }
  let migrateTimer: NodeJS.Timeout | undefined;
  if (TESTCASE === 'connectionmigration') {
    // Active migration mid-transfer (RFC 9000 §9): a new local port after MIGRATE_AFTER_MS (default 300).
    migrateTimer = setTimeout(() => {
      void conn.migrate().then(
        (ok) => {
          if (ok) r.migrations++;
          log(`migrate() -> ${ok}`);
          writeReport();
        },
        (e) => log('migrate failed', e),
      );
    }, Number(env.MIGRATE_AFTER_MS ?? 300));
  }
  await Promise.all(urls.map(get)).finally(() => clearTimeout(migrateTimer));
  r.streams = urls.length;
  if (!conn.handshake) await conn.ready;
  let ticket: SessionTicket | null = null;
  if (wantTicket) {
    for (let i = 0; i < 200 && !conn.sessionTicket; i++) await new Promise((res) => setTimeout(res, 10));
    ticket = conn.sessionTicket;
  }
  report.client.versionNegotiationReceived += conn.socketStats.versionNegotiationsReceived;
  await closeConn();
  return { ticket };
}

function downloadPath(u: URL): string {
  const out = path.join(DOWNLOADS, decodeURIComponent(u.pathname).replace(/^\/+/, ''));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  return out;
}

async function fetchH3(fetchFn: (u: string) => Promise<Response>, url: string): Promise<void> {
  const res = await fetchFn(url);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  const body = new Uint8Array(await res.arrayBuffer());
  fs.writeFileSync(downloadPath(new URL(url)), body);
  if (env.PETREL_DEBUG) log(`h3 ${url}: ${body.length} bytes`);
}

async function fetchHq(conn: NodeQuicConnection, url: string): Promise<void> {
  const u = new URL(url);
  const s = await conn.openBidirectionalStream();
  const w = s.writable.getWriter();
  await w.write(new TextEncoder().encode(`GET ${u.pathname}\r\n`));
  await w.close();
  const fd = fs.openSync(downloadPath(u), 'w');
  let n = 0;
  try {
    for await (const chunk of s.readable) {
      fs.writeSync(fd, chunk);
      n += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
    if (env.PETREL_DEBUG) log(`stream ${s.id} ${u.pathname}: ${n} bytes${conn.isClosed ? ' (connection closed)' : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (ROLE === 'server') return server();
  if (ROLE === 'client') return client();
  log('ROLE must be client or server');
  return 1;
}

main().then(
  (code) => {
    writeReport();
    if (code === 127) log(`test case "${TESTCASE}" not supported`);
    process.exit(code);
  },
  (e) => {
    report.errors.push(String((e as Error)?.message ?? e));
    writeReport();
    log('failed:', e);
    process.exit(1);
  },
);
