/**
 * `pnpm h3-get`: downloads URLs over HTTP/3 with Petrel (one QUIC connection per origin, requests
 * sent concurrently on it).
 *
 *   pnpm h3-get -- URL... [--output DIR] [--insecure] [--ca F] [--concurrency N] [--print]
 *                 [--provider node|noble] [--server-name NAME] [--quiet]
 *
 * Prints, per connection: negotiated ALPN, cipher suite, group, QUIC version, how the certificate
 * was checked and the connect + handshake time; per request: status, headers, size, TTFB, total
 * time and throughput. Bodies go to DIR/<last path segment> with --output, to stdout with --print,
 * otherwise they are read and counted. Large bodies show a progress bar on stderr when it is a
 * terminal (one summary line otherwise).
 * Certificates are verified against Node's root store, or --ca (PEM) as the only trust anchors;
 * --insecure skips verification (testing only). Exit status 0 when every request got a response
 * with status < 400, 1 otherwise, 2 on bad arguments.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { H3Agent, type H3ConnectionInfo } from '../packages/h3/src/node.js';

const usage = 'usage: pnpm h3-get -- URL... [--output DIR] [--insecure] [--ca F] [--concurrency N] [--print] [--provider node|noble] [--server-name NAME] [--quiet]';
const FLAGS_WITH_VALUE = new Set(['output', 'ca', 'concurrency', 'provider', 'server-name']);

const urls: string[] = [];
const opt = new Map<string, string>();
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const name = a.slice(2);
      if (FLAGS_WITH_VALUE.has(name)) {
        const v = argv[++i];
        if (v === undefined) fail2(`--${name} needs a value`);
        opt.set(name, v!);
      } else opt.set(name, 'true');
    } else urls.push(a);
  }
}

function fail2(msg: string): never {
  console.error(`h3-get: ${msg}\n${usage}`);
  process.exit(2);
}

if (opt.has('help')) {
  console.log(usage);
  process.exit(0);
}
if (urls.length === 0) fail2('no URL given');
for (const u of urls) {
  let p: URL;
  try {
    p = new URL(u);
  } catch {
    fail2(`not a URL: ${u}`);
  }
  if (p!.protocol !== 'https:') fail2(`HTTP/3 needs https: URLs, got ${u}`);
}
const concurrency = Number(opt.get('concurrency') ?? 16);
if (!Number.isInteger(concurrency) || concurrency < 1) fail2(`bad --concurrency ${opt.get('concurrency')}`);
const outDir = opt.get('output');
if (outDir) fs.mkdirSync(outDir, { recursive: true });
const caFile = opt.get('ca');
const insecure = opt.has('insecure');
const quiet = opt.has('quiet');
const print = opt.has('print');
const provider = getProvider(opt.get('provider') ?? 'node');

const agent = new H3Agent({
  ca: caFile ? fs.readFileSync(caFile, 'utf8') : undefined,
  insecure,
  idleTimeoutMs: 60_000,
  connect: { provider, ...(opt.has('server-name') ? { serverName: opt.get('server-name')! } : {}) },
});

const out = (line: string): void => {
  if (!quiet) process.stdout.write(`${line}\n`);
};
const ms = (x: number): string => `${x.toFixed(1)} ms`;
const mbit = (bytes: number, msTaken: number): string => `${((bytes * 8) / 1e6 / Math.max(msTaken / 1000, 1e-6)).toFixed(1)} Mbit/s`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

// ---- progress (aggregate over all transfers) --------------------------------------------------

const LARGE = 1 << 20;
const WRITE_BATCH = 512 * 1024;
const progress = { total: 0, done: 0, active: 0, large: false, t0: performance.now(), lastDraw: 0 };
const tty = process.stderr.isTTY === true;

function draw(force = false): void {
  if (!tty || !progress.large) return;
  const now = performance.now();
  if (!force && now - progress.lastDraw < 100) return;
  progress.lastDraw = now;
  const width = 30;
  const frac = progress.total > 0 ? Math.min(1, progress.done / progress.total) : 0;
  const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
  process.stderr.write(`\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(progress.done)}/${mb(progress.total)} ${mbit(progress.done, now - progress.t0)} ${progress.active} active  `);
}

// ---- connections -------------------------------------------------------------------------------

const shownOrigins = new Map<string, Promise<H3ConnectionInfo>>();

function describeConnection(info: H3ConnectionInfo): void {
  const h = info.handshake;
  const q = info.client.quic;
  out(`connection ${info.origin} (${q.remote.address}:${q.remote.port})`);
  out(`  ALPN:                ${h.alpn ?? '(none)'}`);
  out(`  cipher suite:        ${h.suite}`);
  out(`  group:               ${h.group ?? '(none: PSK only)'}`);
  out(`  QUIC version:        0x${q.version.toString(16).padStart(8, '0')}`);
  out(`  certificate:         ${insecure ? 'NOT verified (--insecure)' : caFile ? `verified against --ca ${caFile}` : "verified against Node's root store"} (${h.peerCertificates.length} cert${h.peerCertificates.length === 1 ? '' : 's'}, ${h.signatureScheme ?? 'resumed'})`);
  out(`  connect + handshake: ${ms(info.connectMs)}`);
}

function connectionFor(url: URL): Promise<H3ConnectionInfo> {
  let p = shownOrigins.get(url.origin);
  if (!p) {
    p = agent.connection(url);
    shownOrigins.set(url.origin, p);
    p.then(describeConnection, () => {});
  }
  return p;
}

// ---- downloads ---------------------------------------------------------------------------------

const usedNames = new Set<string>();
function outputName(url: URL): string {
  let base = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  base = base.replace(/[/\\\0]/g, '_');
  if (base === '' || base === '.' || base === '..') base = 'index.html';
  let name = base;
  for (let i = 1; usedNames.has(name); i++) name = `${base}.${i}`;
  usedNames.add(name);
  return name;
}

interface Result {
  ok: boolean;
  bytes: number;
}

async function download(u: string): Promise<Result> {
  const url = new URL(u);
  try {
    await connectionFor(url);
  } catch (e) {
    console.error(`h3-get: ${u}: ${e instanceof Error ? e.message : String(e)}`);
    if (!insecure && /certificate|issuer|verif|trusted|bad_certificate|0x1(2a|2b|2c|2e|30|31)/i.test(String(e))) {
      console.error('h3-get: the server certificate could not be verified: pass --ca FILE (its CA, PEM), or --insecure for testing');
    }
    return { ok: false, bytes: 0 };
  }
  const t0 = performance.now();
  let res: Response;
  try {
    res = await agent.fetch(url, { headers: { 'user-agent': 'petrel-h3-get' } });
  } catch (e) {
    console.error(`h3-get: ${u}: ${e instanceof Error ? e.message : String(e)}`);
    return { ok: false, bytes: 0 };
  }
  const ttfb = performance.now() - t0;
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(length)) {
    progress.total += length;
    if (length >= LARGE) progress.large = true;
  }
  progress.active++;
  const name = outDir ? outputName(url) : null;
  const fh = name ? await fs.promises.open(path.join(outDir!, name), 'w') : null;
  let bytes = 0;
  let error: unknown = null;
  // Chunks arrive about one QUIC packet at a time: write them to the file in batches.
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = async (): Promise<void> => {
    if (fh && batch.length) await fh.writev(batch);
    batch = [];
    batched = 0;
  };
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        progress.done += chunk.length;
        if (fh) {
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= WRITE_BATCH || batch.length >= 1000) await flush();
        } else if (print) process.stdout.write(chunk);
        draw();
      }
    }
    await flush();
  } catch (e) {
    error = e;
  } finally {
    progress.active--;
    await fh?.close();
  }
  const total = performance.now() - t0;
  out(`${u}`);
  if (res.redirected) out(`  redirected to ${res.url}`);
  out(`  status:   ${res.status}`);
  res.headers.forEach((v, k) => out(`  header:   ${k}: ${v}`));
  out(`  body:     ${bytes} bytes${name ? ` -> ${path.join(outDir!, name)}` : ''}${error ? ` (INCOMPLETE: ${error instanceof Error ? error.message : String(error)})` : ''}`);
  out(`  TTFB:     ${ms(ttfb)}`);
  out(`  total:    ${ms(total)} (${mbit(bytes, total)})`);
  if (error) console.error(`h3-get: ${u}: body failed: ${error instanceof Error ? error.message : String(error)}`);
  return { ok: !error && res.status < 400, bytes };
}

const tStart = performance.now();
const queue = [...urls];
const results: Result[] = [];
await Promise.all(
  Array.from({ length: Math.min(concurrency, urls.length) }, async () => {
    for (let u = queue.shift(); u !== undefined; u = queue.shift()) results.push(await download(u));
  }),
);
const elapsed = performance.now() - tStart;
if (tty && progress.large) {
  draw(true);
  process.stderr.write('\n');
}
const bytes = results.reduce((s, r) => s + r.bytes, 0);
const failed = results.filter((r) => !r.ok).length;
for (const p of shownOrigins.values()) {
  const info = await p.catch(() => null);
  if (info) out(`connection ${info.origin}: ${info.client.quic.isClosed ? 'closed' : 'open'}, ${info.requests} request(s) on it`);
}
const summary = `h3-get: ${results.length - failed}/${results.length} ok, ${bytes} bytes in ${ms(elapsed)} (${mbit(bytes, elapsed)}), ${agent.connectionsOpened} connection(s)`;
if (!tty || !progress.large || quiet) console.error(summary);
else out(summary);
await agent.close();
process.exit(failed ? 1 : 0);

