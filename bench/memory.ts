/**
 * Memory per idle connection on the server: N client connections from a second process, each
 * completes its handshake and one small request, then stays idle; the server process reports
 * process.memoryUsage() (after two forced GCs, --expose-gc) before the clients connect and once
 * they are all established. Same method for Petrel QUIC (hq-interop, bench/quic-proc.ts) and for
 * a node:tls (TLS 1.3 over TCP) server — the peer.
 *
 *   memory/idle-conn-rss    kB of server RSS per idle connection   (lower is better)
 *   memory/idle-conn-heap   kB of server V8 heap used per idle connection
 *
 * N = 200 (--quick) / 1000. Loopback only, every process has a bounded lifetime and is killed in a finally.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, peers } from '../test/support/peers.js';
import { makeWww } from './lib/peers.js';
import { selected, type BenchOptions, type BenchRow, type PeerFigure } from './lib/types.js';
import { errText, log, missing, petrelArgs, petrelRuntime, prepareBundle } from './quic-lib.js';

interface Lines {
  proc: ChildProcess;
  /** Resolves with the first stdout line starting with `prefix` (rest of the line). */
  next(prefix: string, timeoutMs: number): Promise<string>;
  send(line: string): void;
  kill(): void;
  output(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) killTree(p);
});

function killTree(p: ChildProcess): void {
  if (p.pid === undefined) return;
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

function spawnLines(cmd: string, args: string[], lifetimeMs: number): Lines {
  const proc = spawn(cmd, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, BENCH_LIFETIME_MS: String(lifetimeMs) } });
  live.add(proc);
  const guard = setTimeout(() => killTree(proc), lifetimeMs + 5000);
  guard.unref();
  let buf = '';
  let all = '';
  const waiters: { prefix: string; resolve: (s: string) => void }[] = [];
  const lines: string[] = [];
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    all = (all + d).slice(-4000);
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.findIndex((x) => line.startsWith(x.prefix));
      if (w >= 0) {
        const x = waiters.splice(w, 1)[0]!;
        x.resolve(line.slice(x.prefix.length));
      }
      else lines.push(line);
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (all = (all + d).slice(-4000)));
  proc.stdin!.on('error', () => {});
  proc.once('exit', () => {
    live.delete(proc);
    clearTimeout(guard);
  });
  return {
    proc,
    next(prefix, timeoutMs) {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return Promise.resolve(lines.splice(i, 1)[0]!.slice(prefix.length));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no "${prefix}" line within ${timeoutMs} ms; output: ${all.slice(-300)}`)), timeoutMs);
        const onExit = () => reject(new Error(`process exited before "${prefix}": ${all.slice(-300)}`));
        proc.once('exit', onExit);
        waiters.push({
          prefix,
          resolve: (s) => {
            clearTimeout(t);
            proc.off('exit', onExit);
            resolve(s.trimStart());
          },
        });
      });
    },
    send(line) {
      proc.stdin!.write(`${line}\n`);
    },
    kill() {
      proc.stdin!.end();
      killTree(proc);
    },
    output: () => all,
  };
}

// node:tls server and client, same protocol as quic-proc (READY, mem → MEM, count → COUNT; IDLE)
const NODE_TLS_SERVER = `
const tls = require('tls'), fs = require('fs');
const [cert, key] = process.argv.slice(1);
const small = Buffer.alloc(1000, 0x61);
const socks = new Set();
const srv = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: 'TLSv1.3' }, (s) => {
  socks.add(s); s.on('close', () => socks.delete(s)); s.on('error', () => {});
  s.once('data', () => s.write(small));
});
srv.listen(0, '127.0.0.1', () => process.stdout.write('READY ' + srv.address().port + '\\n'));
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i).trim(); buf = buf.slice(i + 1);
  if (l === 'mem') { global.gc && (gc(), gc()); const m = process.memoryUsage(); process.stdout.write('MEM ' + JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }) + '\\n'); }
  else if (l === 'count') process.stdout.write('COUNT ' + socks.size + '\\n'); } });
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(3), +process.env.BENCH_LIFETIME_MS || 300000);
`;
const NODE_TLS_CLIENT = `
const tls = require('tls');
const [port, n] = process.argv.slice(1).map(Number);
const socks = []; let next = 0, fail = 0;
function one() { return new Promise((res) => {
  const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1.3' }, () => s.write('GET /small\\n'));
  let got = 0; s.on('data', (d) => { got += d.length; if (got >= 1000) { socks.push(s); res(); } });
  s.on('error', () => { fail++; res(); });
}); }
(async () => {
  await Promise.all(Array.from({ length: 20 }, async () => { while (next < n) { next++; await one(); } }));
  process.stdout.write('IDLE ' + socks.length + ' ' + fail + '\\n');
})();
process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(3), +process.env.BENCH_LIFETIME_MS || 300000);
`;

interface MemResult {
  conns: number;
  rssKB: number;
  heapKB: number;
  before: Record<string, number>;
  after: Record<string, number>;
}

async function measure(kind: 'petrel' | 'node-tls', n: number, www: string): Promise<MemResult> {
  const c = peers().certs;
  const lifetime = 240_000;
  const port = kind === 'petrel' ? await freePort('udp') : 0;
  const srv =
    kind === 'petrel'
      ? spawnLines(process.execPath, petrelArgs(['--expose-gc'], 'server', 'hq', '127.0.0.1', String(port), www, c.cert, c.key), lifetime)
      : spawnLines(process.execPath, ['--expose-gc', '-e', NODE_TLS_SERVER, c.selfsigned, c.key], lifetime);
  let cli: Lines | null = null;
  try {
    const p = Number(await srv.next('READY', 30_000));
    // Warm the server up with one connection first, so that code loading is in the baseline.
    const warm =
      kind === 'petrel'
        ? spawnLines(process.execPath, petrelArgs([], 'idle', `https://127.0.0.1:${p}/small`, '1', c.ca), lifetime)
        : spawnLines(process.execPath, ['-e', NODE_TLS_CLIENT, String(p), '1'], lifetime);
    await warm.next('IDLE', 60_000);
    warm.kill();
    await new Promise((r) => setTimeout(r, kind === 'petrel' ? 1500 : 300));
    srv.send('mem');
    const before = JSON.parse(await srv.next('MEM', 20_000)) as Record<string, number>;
    cli =
      kind === 'petrel'
        ? spawnLines(process.execPath, petrelArgs([], 'idle', `https://127.0.0.1:${p}/small`, String(n), c.ca), lifetime)
        : spawnLines(process.execPath, ['-e', NODE_TLS_CLIENT, String(p), String(n)], lifetime);
    const idle = (await cli.next('IDLE', 180_000)).split(' ').map(Number);
    if (!idle[0]) throw new Error(`no connection established (${idle[1]} failed)`);
    await new Promise((r) => setTimeout(r, 1000));
    srv.send('count');
    const conns = Number(await srv.next('COUNT', 20_000));
    srv.send('mem');
    const after = JSON.parse(await srv.next('MEM', 20_000)) as Record<string, number>;
    if (!(conns > 0)) throw new Error(`server counts ${conns} connections (client established ${idle[0]}, ${idle[1]} failed)`);
    return { conns, rssKB: (after.rss! - before.rss!) / 1024 / conns, heapKB: (after.heapUsed! - before.heapUsed!) / 1024 / conns, before, after };
  } finally {
    cli?.kill();
    srv.kill();
  }
}

export async function runMemoryBench(opts: BenchOptions): Promise<BenchRow[]> {
  const rssName = 'memory/idle-conn-rss';
  const heapName = 'memory/idle-conn-heap';
  if (!selected(rssName, opts.filter) && !selected(heapName, opts.filter)) return [];
  const n = opts.quick ? 200 : 1000;
  await prepareBundle();
  const w = makeWww([]);
  try {
    let petrel: MemResult | { error: string };
    let nodeTls: MemResult | { error: string };
    log(`memory: petrel quic x${n} idle connections`);
    try {
      petrel = await measure('petrel', n, w.www);
    } catch (e) {
      petrel = { error: errText(e) };
    }
    log(`memory: node:tls x${n} idle connections`);
    try {
      nodeTls = await measure('node-tls', n, w.www);
    } catch (e) {
      nodeTls = { error: errText(e) };
    }
    const pf = (r: MemResult | { error: string }, k: 'rssKB' | 'heapKB') => ('error' in r ? { petrelMissing: r.error } : { petrel: [r[k]] });
    const peer = (r: MemResult | { error: string }, k: 'rssKB' | 'heapKB'): PeerFigure => ('error' in r ? missing(r.error) : [r[k]]);
    const notes = (r: MemResult | { error: string }, q: MemResult | { error: string }) =>
      `${n} idle connections requested; established: Petrel ${'error' in r ? 0 : r.conns}, node:tls ${'error' in q ? 0 : q.conns}; server memory after GC, delta / connections; ${petrelRuntime()}`;
    return [
      { name: rssName, unit: 'kB/conn', higherIsBetter: false, ...pf(petrel, 'rssKB'), peers: { 'node-tls (TCP)': peer(nodeTls, 'rssKB') }, notes: notes(petrel, nodeTls), extra: { petrel, nodeTls } },
      { name: heapName, unit: 'kB/conn', higherIsBetter: false, ...pf(petrel, 'heapKB'), peers: { 'node-tls (TCP)': peer(nodeTls, 'heapKB') }, notes: notes(petrel, nodeTls) },
    ].filter((r) => selected(r.name, opts.filter));
  } finally {
    w.cleanup();
  }
}
