/**
 * HTTP/3 acceptance against real peers on 127.0.0.1, through Petrel's user-facing tools:
 *  - our `fetch` (H3Agent) and `pnpm h3-get` download from the ngtcp2/nghttp3 server (gtlsserver)
 *    and from the quic-go http3 server;
 *  - the ngtcp2 client (gtlsclient) and the quic-go http3 client download from `pnpm h3-server`;
 *  - files byte-equal; 20 concurrent requests on ONE connection in every direction (our side:
 *    counted by the agent / h3-get; their side: counted from h3-server's connection log);
 *  - QPACK dynamic table in use both ways with nghttp3: our encoder's inserts acknowledged by
 *    nghttp3, and nghttp3's encoder inserting into our table and referring to those entries in the
 *    responses it sent (counted in our decoder).
 * INTEROP_FULL=1 adds a 50 MB file to every direction and prints time and throughput.
 * A missing peer skips with a `SKIPPED:` line. CI budget: ~30 s for this file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { H3Agent } from '../packages/h3/src/node.js';
import { QpackDecoder } from '../packages/h3/src/qpack/decoder.js';
import { freePort, peers, repoRoot, requirePeer, runBounded, spawnPeer, startQuicGoServer, waitForPort, type PeerProcess } from './support/peers.js';
import { providers } from './support/providers.js';

const FULL = process.env.INTEROP_FULL === '1';
const runTs = path.join(repoRoot, 'scripts', 'run-ts.mjs');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-interop-h3-'));
const www = path.join(dir, 'www');
fs.mkdirSync(www);

/** Deterministic pseudo-random bytes (xorshift32), so a corrupted or shifted byte shows. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const w = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x >>> 0;
  }
  for (let i = w.length * 4; i < n; i++) out[i] = i & 0xff;
  return out;
}

const files = new Map<string, Uint8Array>();
const put = (name: string, data: Uint8Array): void => {
  files.set(name, data);
  fs.writeFileSync(path.join(www, name), data);
};
const MANY = 20;
for (let i = 0; i < MANY; i++) put(`f${i}.bin`, bytes(1000 + i * 3001, i + 1));
put('mid.bin', bytes(1_200_000, 99));
if (FULL) put('f50m.bin', bytes(50_000_000, 5050));
const manyNames = Array.from({ length: MANY }, (_, i) => `f${i}.bin`);
const names = [...manyNames, 'mid.bin', ...(FULL ? ['f50m.bin'] : [])];

function sameFile(file: string, name: string): void {
  const want = files.get(name)!;
  assert.ok(fs.existsSync(file), `${file} missing`);
  const got = fs.readFileSync(file);
  assert.is(got.length, want.length, `${name}: length`);
  assert.ok(Buffer.compare(got, want) === 0, `${name}: content differs`);
}

const figure = (what: string, nBytes: number, ms: number): void => {
  console.log(`  FIGURE ${what}: ${(nBytes / 1e6).toFixed(1)} MB in ${ms.toFixed(0)} ms = ${((nBytes * 8) / 1e6 / (ms / 1000)).toFixed(1)} Mbit/s`);
};

/** `pnpm h3-server` as a child process; resolves once it listens. */
async function startH3Server(provider: string): Promise<{ proc: PeerProcess; port: number; connections: () => string[] } | null> {
  const p = peers();
  if (!requirePeer('certs')) return null;
  const port = await freePort('udp');
  const proc = spawnPeer(process.execPath, [runTs, 'examples/h3-server.ts', '--root', www, '--port', String(port), '--cert', p.certs.cert, '--key', p.certs.key, '--provider', provider], {
    lifetimeMs: FULL ? 300_000 : 60_000,
    cwd: repoRoot,
  });
  for (let i = 0; i < 400 && !/listening on/.test(proc.output()) && !proc.exited; i++) await new Promise((r) => setTimeout(r, 25));
  if (!/listening on/.test(proc.output())) {
    await proc.kill();
    throw new Error(`h3-server did not start:\n${proc.output()}`);
  }
  return { proc, port, connections: () => proc.output().split('\n').filter((l) => l.startsWith('connection from ')) };
}

// ---------------------------------------------------------------------------------------------
// Our client → ngtcp2 gtlsserver

for (const provider of providers) {
  test(`[${provider.name}] fetch → ngtcp2 gtlsserver: ${MANY} concurrent requests + ${FULL ? '50 MB' : '1.2 MB'} on one connection, QPACK dynamic table both ways`, async () => {
    const bin = requirePeer('gtlsserver');
    const p = peers();
    if (!bin || !requirePeer('certs')) return;
    const port = await freePort('udp');
    // Count dynamic-table references in the field sections nghttp3 sends us (decoder side).
    const proto = QpackDecoder.prototype as unknown as { dynamicRef: (abs: number) => unknown };
    const original = proto.dynamicRef;
    assert.type(original, 'function', 'QpackDecoder.dynamicRef (every dynamic-table reference of a field section goes through it) was renamed');
    let dynamicRefs = 0;
    proto.dynamicRef = function (this: unknown, abs: number) {
      dynamicRefs++;
      return original.call(this, abs);
    };
    const srv = spawnPeer(bin, ['-q', '-d', www, '127.0.0.1', String(port), p.certs.key, p.certs.cert], { lifetimeMs: FULL ? 120_000 : 30_000 });
    const agent = new H3Agent({ ca: fs.readFileSync(p.certs.ca, 'utf8'), connect: { provider, serverName: 'localhost' } });
    try {
      await waitForPort(port, 'udp', { proc: srv });
      const base = `https://127.0.0.1:${port}`;
      const t0 = performance.now();
      const rs = await Promise.all(names.map((n) => agent.fetch(`${base}/${n}`, { headers: { 'user-agent': 'petrel-interop', 'x-petrel-test': 'qpack dynamic table' } })));
      const bodies = await Promise.all(rs.map(async (r) => new Uint8Array(await r.arrayBuffer())));
      const ms = performance.now() - t0;
      for (let i = 0; i < names.length; i++) {
        assert.is(rs[i]!.status, 200);
        assert.is(rs[i]!.headers.get('content-length'), String(files.get(names[i]!)!.length));
        assert.ok(Buffer.compare(bodies[i]!, files.get(names[i]!)!) === 0, `${names[i]} differs`);
      }
      if (FULL) figure(`[${provider.name}] fetch ← gtlsserver, ${names.length} files concurrently incl. 50 MB`, bodies.reduce((s, b) => s + b.length, 0), ms);
      const info = await agent.connection(base);
      assert.is(agent.connectionsOpened, 1, 'one connection');
      assert.is(info.requests, names.length);
      // A second round on the same connection: header fields seen before come from the tables.
      const again = await Promise.all(manyNames.slice(0, 5).map((n) => agent.fetch(`${base}/${n}`, { headers: { 'user-agent': 'petrel-interop', 'x-petrel-test': 'qpack dynamic table' } })));
      for (const r of again) await r.arrayBuffer();
      const h3 = info.client.h3;
      // Encoder side: we inserted, nghttp3 acknowledged every insert (Insert Count Increment / Section Acknowledgment).
      assert.ok(h3.encoder.insertCount > 0, `our inserts ${h3.encoder.insertCount}`);
      for (let i = 0; i < 100 && h3.encoder.knownReceivedCount < h3.encoder.insertCount; i++) await new Promise((r) => setTimeout(r, 10));
      assert.is(h3.encoder.knownReceivedCount, h3.encoder.insertCount);
      // Decoder side: nghttp3 inserted into our table and its responses referred to those entries.
      assert.ok(h3.decoder.insertCount > 0, `nghttp3 inserts ${h3.decoder.insertCount}`);
      assert.ok(dynamicRefs > 0, `dynamic references in nghttp3's field sections: ${dynamicRefs}`);
      console.log(`  [${provider.name}] QPACK with nghttp3: we inserted ${h3.encoder.insertCount} (all acknowledged), nghttp3 inserted ${h3.decoder.insertCount} and referred to dynamic entries ${dynamicRefs} times`);
    } finally {
      proto.dynamicRef = original;
      await agent.close();
      await srv.kill();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// pnpm h3-get → quic-go http3 server

test(`h3-get → quic-go http3 server: ${MANY} concurrent requests${FULL ? ' + 50 MB' : ''} on one connection, byte-equal`, async () => {
  const p = peers();
  if (!requirePeer('certs')) return;
  const qg = await startQuicGoServer('http3', www, { lifetimeMs: FULL ? 120_000 : 40_000 });
  if (!qg) return;
  const out = path.join(dir, 'from-quic-go');
  try {
    const urls = names.map((n) => `https://127.0.0.1:443/${n}`);
    const r = await runBounded(process.execPath, [runTs, 'examples/h3-get.ts', '--ca', p.certs.ca, '--output', out, '--concurrency', String(names.length), '--quiet', ...urls], { timeoutMs: FULL ? 100_000 : 30_000, cwd: repoRoot });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${names.length}/${names.length} ok, \\d+ bytes in [\\d.]+ ms \\([\\d.]+ Mbit/s\\), 1 connection\\(s\\)`));
    for (const n of names) sameFile(path.join(out, n), n);
    if (FULL) {
      const m = /ok, (\d+) bytes in ([\d.]+) ms/.exec(r.stderr)!;
      figure(`h3-get ← quic-go http3 server, ${names.length} files concurrently incl. 50 MB`, Number(m[1]), Number(m[2]));
    }
  } finally {
    await qg.kill();
  }
});

// ---------------------------------------------------------------------------------------------
// Their clients → pnpm h3-server (node and noble providers)

for (const provider of providers) {
  test(`[${provider.name}] ngtcp2 gtlsclient → h3-server: ${names.length} URLs on one connection, byte-equal`, async () => {
    const bin = requirePeer('gtlsclient');
    if (!bin) return;
    const s = await startH3Server(provider.name);
    if (!s) return;
    const out = path.join(dir, `gtlsclient-${provider.name}`);
    fs.mkdirSync(out);
    try {
      const urls = names.map((n) => `https://127.0.0.1:${s.port}/${n}`);
      const r = await runBounded(bin, ['-q', '--exit-on-all-streams-close', '--download', out, '127.0.0.1', String(s.port), ...urls], { timeoutMs: FULL ? 100_000 : 30_000 });
      assert.is(r.code, 0, `${r.stdout}\n${r.stderr}\n${s.proc.output()}`);
      for (const n of names) sameFile(path.join(out, n), n);
      const conns = s.connections();
      assert.is(conns.length, 1, conns.join('\n'));
      assert.match(conns[0]!, /: h3, TLS_/);
      const served = s.proc.output().split('\n').filter((l) => / 200 \d+ /.test(l));
      assert.is(served.length, names.length);
      if (FULL) figure(`[${provider.name}] gtlsclient ← h3-server, ${names.length} files incl. 50 MB (process wall time)`, names.reduce((t, n) => t + files.get(n)!.length, 0), r.ms);
    } finally {
      await s.proc.kill();
    }
  });

  test(`[${provider.name}] quic-go http3 client → h3-server: ${names.length} URLs on one connection, byte-equal`, async () => {
    const bin = requirePeer('quicGo');
    if (!bin) return;
    const s = await startH3Server(provider.name);
    if (!s) return;
    const out = path.join(dir, `quic-go-${provider.name}`);
    fs.mkdirSync(out);
    try {
      const urls = names.map((n) => `https://127.0.0.1:${s.port}/${n}`);
      const r = await runBounded(bin, ['client', 'http3', out, ...urls], { timeoutMs: FULL ? 100_000 : 30_000 });
      assert.is(r.code, 0, `${r.stdout}\n${r.stderr}\n${s.proc.output()}`);
      for (const n of names) sameFile(path.join(out, n), n);
      const conns = s.connections();
      assert.is(conns.length, 1, conns.join('\n'));
      if (FULL) figure(`[${provider.name}] quic-go client ← h3-server, ${names.length} files incl. 50 MB (process wall time)`, names.reduce((t, n) => t + files.get(n)!.length, 0), r.ms);
    } finally {
      await s.proc.kill();
    }
  });
}

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
