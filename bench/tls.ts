/**
 * TLS 1.3 over TCP on 127.0.0.1: Petrel versus node:tls in the same run, same client, same
 * certificate (ECDSA P-256), each server in its own process.
 *
 *   tls/tcp-handshakes          full handshakes/s, `openssl s_time -new` against each server
 *   tls/tcp-resumed-handshakes  resumed handshakes/s, `openssl s_time -reuse`
 *   tls/tcp-client-handshakes   sequential full handshakes/s of our client vs node's client (against a node:tls server)
 *   tls/tcp-bulk                MB/s over one connection, server → client (petrel↔petrel vs node↔node)
 *   tls/tcp-bulk-4k-writes      the same with the server writing 4 KiB per write() (write coalescing)
 *
 *   node scripts/run-ts.mjs bench/tls.ts [--quick] [--filter SUBSTRING]
 *
 * `runTlsBench` is imported by bench/run.ts. Each row carries Petrel's samples and the node:tls
 * figure ('node-tls'); run.ts prints the ratio. Rows also carry `case`, `impl`, `value`, `samples`
 * (Petrel's) for standalone use.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nodeProvider } from '../packages/tls-core/src/crypto/node.js';
import { connect } from '../packages/tls-core/src/tcp/client.js';
import { createServer } from '../packages/tls-core/src/tcp/server.js';
import type { TlsSocket } from '../packages/tls-core/src/tcp/socket.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import type { BenchRow } from './lib/types.js';

export interface TlsBenchRow extends BenchRow {
  /** Standalone form: the case, Petrel's median and samples. */
  case: string;
  impl: string;
  value: number;
  samples: number[];
}

const benchFile = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(benchFile), '..');
const NODE_FLAGS = ['--conditions=petrel-src', '--import', 'tsx'];

// ---------------------------------------------------------------------------------------------
// Server processes

/** What every benchmark server does: answer a request line with a short reply, or stream N bytes for "bulk N". */
const NODE_SERVER_JS = `
const tls = require('tls'), fs = require('fs');
const [cert, key] = process.argv.slice(1);
const srv = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: 'TLSv1.3' }, (s) => {
  s.on('error', () => {});
  let got = '';
  s.on('data', (d) => {
    got += d;
    const m = /^bulk (\\d+)(?: (\\d+))?\\n/.exec(got);
    if (m) { sendBulk(s, Number(m[1]), Number(m[2] || 65536)); got = ''; return; }
    if (got.includes('\\n')) s.end('HTTP/1.0 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok');
  });
});
function sendBulk(s, n, size) {
  const chunk = Buffer.alloc(size, 0x61); let sent = 0;
  const pump = () => { while (sent < n) { const k = Math.min(chunk.length, n - sent); sent += k; if (!s.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return void s.once('drain', pump); } s.end(); };
  pump();
}
srv.listen(0, '127.0.0.1', () => console.log('PORT ' + srv.address().port));
`;

function serveMode(kind: string, cert: string, key: string): void {
  if (kind !== 'petrel') throw new Error(`unknown server kind ${kind}`);
  const srv = createServer({ cert: fs.readFileSync(cert, 'utf8'), key: fs.readFileSync(key, 'utf8'), provider: process.env.PETREL_PROVIDER === 'noble' ? 'noble' : 'node' }, (s: TlsSocket) => {
    s.on('error', () => {});
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const m = /^bulk (\d+)(?: (\d+))?\n/.exec(got);
      if (m) {
        sendBulk(s, Number(m[1]), Number(m[2] ?? 65536));
        got = '';
        return;
      }
      if (got.includes('\n')) s.end('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
  });
  srv.on('tlsClientError', () => {});
  srv.listen(0, '127.0.0.1', () => console.log(`PORT ${srv.address().port}`));
  // exit normally on SIGTERM (lets --cpu-prof write its profile)
  process.on('SIGTERM', () => process.exit(0));
}

/** Streams `n` bytes in writes of `size` bytes (the application's write size), honouring backpressure. */
function sendBulk(s: TlsSocket | tls.TLSSocket, n: number, size: number): void {
  const chunk = Buffer.alloc(size, 0x61);
  let sent = 0;
  const pump = (): void => {
    while (sent < n) {
      const k = Math.min(chunk.length, n - sent);
      sent += k;
      if (!s.write(k === chunk.length ? chunk : chunk.subarray(0, k))) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

interface ServerProc {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function startServerProc(kind: 'petrel' | 'node', cert: string, key: string, env: NodeJS.ProcessEnv = {}): Promise<ServerProc> {
  const args = kind === 'node' ? ['-e', NODE_SERVER_JS, cert, key] : [...NODE_FLAGS, benchFile, '--serve', 'petrel', cert, key];
  const proc = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} server did not start: ${out}`)), 20_000);
    const on = (d: Buffer) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', on);
    proc.stderr!.on('data', on);
    proc.on('exit', () => reject(new Error(`${kind} server exited: ${out}`)));
  });
  return {
    port,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 2000).unref();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

function haveOpenssl(): boolean {
  return spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
}

/** Connections per second that `openssl s_time` reaches in `seconds` (mode -new or -reuse). */
function sTime(port: number, seconds: number, mode: '-new' | '-reuse'): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, mode, '-tls1_3', '-time', String(seconds), '-www', '/'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), seconds * 1000 + 30_000);
    p.on('exit', () => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      const all = [...out.matchAll(/(\d+) connections in ([\d.]+)s?;? .*?(?:real seconds|$)/gm)];
      const m = [...out.matchAll(/(\d+) connections in (\d+) real seconds/g)].pop() ?? null;
      void all;
      if (!m) return reject(new Error(`s_time: ${out.trim().split('\n').slice(-3).join(' / ')}`));
      const n = Number(m[1]);
      const realS = Number(m[2]);
      // s_time reports whole seconds; with -new the run is the whole process, use our wall clock.
      resolve(mode === '-new' ? (n * 1000) / ms : n / Math.max(1, realS));
    });
  });
}

/** Sequential full handshakes per second for `ms` with a client function. */
async function loopRate(ms: number, once: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 5; i++) await once(); // warm-up
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    await once();
    n++;
  }
  return (n * 1000) / (performance.now() - t0);
}

function petrelHandshake(port: number, ca: string, provider: 'node' | 'noble'): Promise<void> {
  return new Promise((resolve, reject) => {
    // One X25519 key share like node's client (the default also sends an X25519MLKEM768 share, which node:tls 20 cannot use).
    const s = connect({ port, servername: 'localhost', ca, provider, keyShares: ['x25519'] });
    s.on('secureConnect', () => s.write('GET / HTTP/1.0\n\n'));
    s.on('data', () => {});
    s.on('end', () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

function nodeHandshake(port: number, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca, minVersion: 'TLSv1.3' });
    s.on('secureConnect', () => s.write('GET / HTTP/1.0\n\n'));
    s.on('data', () => {});
    s.on('end', () => s.end());
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}

/** MB/s received over one connection after asking for `bytes`, written by the server in `writeSize`-byte writes. */
function bulk(kind: 'petrel' | 'node', port: number, ca: string, bytes: number, writeSize = 65536): Promise<number> {
  return new Promise((resolve, reject) => {
    const s: net.Socket | TlsSocket =
      kind === 'petrel' ? connect({ port, servername: 'localhost', ca }) : tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca, minVersion: 'TLSv1.3' });
    let got = 0;
    let t0 = 0;
    s.on('secureConnect', () => {
      t0 = performance.now();
      s.write(`bulk ${bytes} ${writeSize}\n`);
    });
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => {
      const ms = performance.now() - t0;
      s.destroy();
      if (got !== bytes) reject(new Error(`bulk: got ${got} of ${bytes} bytes`));
      else resolve(bytes / 1e6 / (ms / 1000));
    });
    s.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------

const median = (x: number[]): number => {
  const s = [...x].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

function row(name: string, unit: string, petrel: number[], peer: number[] | { missing: string }, notes: string): TlsBenchRow {
  return { name, unit, petrel, peers: { 'node-tls': peer }, notes, case: name, impl: 'petrel', value: median(petrel), samples: petrel };
}

const log = (s: string): void => void process.stderr.write(`  ${s}\n`);

export async function runTlsBench(opts: { quick: boolean; filter?: string | string[] }): Promise<TlsBenchRow[]> {
  const filters = opts.filter === undefined ? [] : Array.isArray(opts.filter) ? opts.filter : [opts.filter];
  const want = (name: string) => filters.length === 0 || filters.some((f) => name.includes(f));
  const quick = opts.quick;
  const secs = quick ? 2 : 6;
  const reps = quick ? 1 : 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-tls-'));
  const rows: TlsBenchRow[] = [];
  const g = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1'] });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  fs.writeFileSync(certFile, g.certPem);
  fs.writeFileSync(keyFile, g.keyPem);
  const servers: ServerProc[] = [];
  try {
    const petrel = await startServerProc('petrel', certFile, keyFile);
    servers.push(petrel);
    const node = await startServerProc('node', certFile, keyFile);
    servers.push(node);
    const ossl = haveOpenssl();

    for (const [name, mode] of [
      ['tls/tcp-handshakes', '-new'],
      ['tls/tcp-resumed-handshakes', '-reuse'],
    ] as const) {
      if (!want(name)) continue;
      if (!ossl) {
        console.log(`SKIPPED: ${name}: openssl (s_time) not found`);
        continue;
      }
      const p: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < reps; i++) {
        log(`${name}: s_time ${mode} ${secs}s against petrel and node:tls (${i + 1}/${reps}) ...`);
        p.push(await sTime(petrel.port, secs, mode));
        n.push(await sTime(node.port, secs, mode));
      }
      rows.push(row(name, 'conn/s', p, n, `openssl s_time ${mode} -tls1_3 -www / for ${secs}s against each server (ECDSA P-256, X25519; server in its own process)`));
    }

    const clientCase = 'tls/tcp-client-handshakes';
    if (want(clientCase)) {
      const p: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < reps; i++) {
        log(`${clientCase}: sequential handshakes for ${secs}s, petrel client and node client → node:tls (${i + 1}/${reps}) ...`);
        p.push(await loopRate(secs * 1000, () => petrelHandshake(node.port, g.certPem, 'node')));
        n.push(await loopRate(secs * 1000, () => nodeHandshake(node.port, g.certPem)));
      }
      rows.push(row(clientCase, 'conn/s', p, n, 'one connection at a time, request + response + close, against a node:tls server process; Petrel client with the node provider, one X25519 key share (as node)'));
      if (want(`${clientCase} [noble]`) || filters.length === 0) {
        log(`${clientCase} [noble] ...`);
        const pn = [await loopRate(secs * 1000, () => petrelHandshake(node.port, g.certPem, 'noble'))];
        rows.push(row(`${clientCase} [noble]`, 'conn/s', pn, n, 'as above with the noble provider (pure JS crypto)'));
      }
    }

    const bulkCase = 'tls/tcp-bulk';
    if (want(bulkCase)) {
      const bytes = (quick ? 32 : 128) * 1024 * 1024;
      const p: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < reps + 1; i++) {
        log(`${bulkCase}: ${bytes >> 20} MB petrel↔petrel and node↔node (${i + 1}/${reps + 1}) ...`);
        p.push(await bulk('petrel', petrel.port, g.certPem, bytes));
        n.push(await bulk('node', node.port, g.certPem, bytes));
      }
      // the first round is warm-up
      rows.push(row(bulkCase, 'MB/s', p.slice(1), n.slice(1), `${bytes >> 20} MB server → client over one connection, AES-128-GCM; Petrel client+server vs node:tls client+server`));
    }

    // The same with the server application writing 4 KiB at a time: measures write coalescing
    // (node:tls seals one record per write; Petrel stages small writes into full records).
    const smallCase = 'tls/tcp-bulk-4k-writes';
    if (want(smallCase)) {
      const bytes = (quick ? 16 : 64) * 1024 * 1024;
      const p: number[] = [];
      const n: number[] = [];
      for (let i = 0; i < reps + 1; i++) {
        log(`${smallCase}: ${bytes >> 20} MB in 4 KiB writes, petrel↔petrel and node↔node (${i + 1}/${reps + 1}) ...`);
        p.push(await bulk('petrel', petrel.port, g.certPem, bytes, 4096));
        n.push(await bulk('node', node.port, g.certPem, bytes, 4096));
      }
      rows.push(row(smallCase, 'MB/s', p.slice(1), n.slice(1), `${bytes >> 20} MB server → client over one connection, the server writing 4 KiB per write() call, AES-128-GCM; first round is warm-up`));
    }
  } finally {
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Standalone

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--serve') {
    serveMode(argv[1]!, argv[2]!, argv[3]!);
  } else {
    const quick = argv.includes('--quick');
    const fi = argv.indexOf('--filter');
    const filter = fi >= 0 ? argv[fi + 1] : undefined;
    const rows = await runTlsBench({ quick, ...(filter ? { filter } : {}) });
    console.log(`${'case'.padEnd(36)} ${'petrel'.padStart(12)} ${'node:tls'.padStart(12)}  ratio  unit`);
    for (const r of rows) {
      const peer = r.peers!['node-tls'];
      const q = Array.isArray(peer) ? median(peer) : NaN;
      const list = (x: number[]) => x.map((v) => v.toFixed(0)).join(' ');
      console.log(
        `${r.name.padEnd(36)} ${r.value.toFixed(1).padStart(12)} ${q.toFixed(1).padStart(12)}  ${(r.value / q).toFixed(2).padStart(5)}  ${r.unit}   samples petrel [${list(r.samples)}] node [${Array.isArray(peer) ? list(peer) : '-'}]`,
      );
    }
    process.exit(0);
  }
}
