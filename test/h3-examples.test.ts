/**
 * The HTTP/3 examples as a user runs them: `pnpm h3-server` serving a temp folder (content types,
 * index.html, redirect, 404, 405, path traversal and symlink escapes blocked), `pnpm h3-get`
 * downloading byte-equal with --ca and refusing an unverified server without --insecure, and
 * `pnpm demo` (the README's main job) exiting 0 with the negotiated parameters.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { H3Agent } from '../packages/h3/src/node.js';
import { staticFiles } from '../examples/h3-static.js';
import { freePort, repoRoot } from './support/peers.js';
import { Rng } from './support/rng.js';

const runTs = path.join(repoRoot, 'scripts', 'run-ts.mjs');

function run(file: string, args: string[], timeoutMs = 30_000): { proc: ChildProcess; done: Promise<{ code: number | null; out: string; err: string }>; out: () => string } {
  const proc = spawn(process.execPath, [runTs, file, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  timer.unref();
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    }),
  );
  return { proc, done, out: () => out };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-h3-examples-'));
const www = path.join(dir, 'www');
fs.mkdirSync(path.join(www, 'docs'), { recursive: true });
fs.writeFileSync(path.join(dir, 'secret.txt'), 'outside the root\n');
fs.writeFileSync(path.join(www, 'index.html'), '<h1>root</h1>\n');
fs.writeFileSync(path.join(www, 'docs', 'index.html'), '<h1>docs</h1>\n');
fs.writeFileSync(path.join(www, 'style.css'), 'body{}\n');
fs.writeFileSync(path.join(www, 'data.json'), '{"a":1}\n');
const blob = Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 131 + (i >> 11)) & 0xff);
fs.writeFileSync(path.join(www, 'blob.bin'), blob);
fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(www, 'escape.txt'));
const certFile = path.join(dir, 'server-cert.pem');

let server: ReturnType<typeof run> | null = null;
let port = 0;

test.before(async () => {
  port = await freePort('udp');
  server = run('examples/h3-server.ts', ['--root', www, '--port', String(port), '--cert-out', certFile], 120_000);
  for (let i = 0; i < 300 && !/listening on/.test(server.out()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(server.out(), /listening on https:\/\/127\.0\.0\.1:\d+\//, server.out());
});

test.after(async () => {
  if (server) {
    server.proc.kill('SIGTERM');
    await server.done;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('h3-server: prints where it wrote its self-signed certificate and its SHA-256 fingerprint', () => {
  assert.match(server!.out(), new RegExp(`written to ${certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(server!.out(), /SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  assert.match(fs.readFileSync(certFile, 'utf8'), /-----BEGIN CERTIFICATE-----/);
});

test('h3-server: content types, index.html, redirect, 404, 405, HEAD, traversal and symlink escapes blocked', async () => {
  const agent = new H3Agent({ ca: fs.readFileSync(certFile, 'utf8') });
  const base = `https://localhost:${port}`;
  try {
    const get = async (p: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: string; res: Response }> => {
      const res = await agent.fetch(base + p, { redirect: 'manual', ...init });
      return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), res };
    };
    const results = await Promise.all(
      ['/', '/docs/', '/docs', '/style.css', '/data.json', '/blob.bin', '/missing.txt', '/..%2fsecret.txt', '/docs/..%2f..%2fsecret.txt', '/escape.txt', '/%E0%A4%A'].map((p) => get(p)),
    );
    const [root, docs, docsNoSlash, css, json, bin, missing, trav1, trav2, escape, badPct] = results;
    assert.equal([root!.status, root!.type, root!.body], [200, 'text/html; charset=utf-8', '<h1>root</h1>\n']);
    assert.equal([docs!.status, docs!.body], [200, '<h1>docs</h1>\n']);
    assert.is(docsNoSlash!.status, 301);
    assert.is(docsNoSlash!.res.headers.get('location'), '/docs/');
    assert.is(css!.type, 'text/css; charset=utf-8');
    assert.is(json!.type, 'application/json');
    assert.is(bin!.type, 'application/octet-stream');
    assert.is(bin!.res.headers.get('content-length'), String(blob.length));
    assert.is(missing!.status, 404);
    for (const t of [trav1!, trav2!, escape!]) {
      assert.ok(t.status === 403 || t.status === 404, `status ${t.status}`);
      assert.not.match(t.body, /outside the root/);
    }
    assert.is(escape!.status, 403);
    assert.is(badPct!.status, 400);
    const post = await get('/index.html', { method: 'POST', body: 'x' });
    assert.is(post.status, 405);
    assert.is(post.res.headers.get('allow'), 'GET, HEAD');
    const head = await get('/blob.bin', { method: 'HEAD' });
    assert.equal([head.status, head.body, head.res.headers.get('content-length')], [200, '', String(blob.length)]);
    assert.is(agent.connectionsOpened, 1);
  } finally {
    await agent.close();
  }
});

test('h3-get --ca: byte-equal downloads on one connection, prints ALPN, suite, group and timings', async () => {
  const out = path.join(dir, 'dl');
  const r = await run('examples/h3-get.ts', ['--ca', certFile, '--output', out, `https://localhost:${port}/blob.bin`, `https://localhost:${port}/style.css`, `https://127.0.0.1:${port}/docs`]).done;
  assert.is(r.code, 0, r.out + r.err);
  assert.equal(new Uint8Array(fs.readFileSync(path.join(out, 'blob.bin'))), blob);
  assert.is(fs.readFileSync(path.join(out, 'style.css'), 'utf8'), 'body{}\n');
  assert.is(fs.readFileSync(path.join(out, 'docs'), 'utf8'), '<h1>docs</h1>\n');
  assert.match(r.out, /redirected to https:\/\/127\.0\.0\.1:\d+\/docs\//);
  assert.match(r.out, /ALPN:\s+h3/);
  assert.match(r.out, /cipher suite:\s+TLS_AES_128_GCM_SHA256/);
  assert.match(r.out, /group:\s+\w+/);
  assert.match(r.out, /certificate:\s+verified against --ca/);
  assert.match(r.out, /connect \+ handshake:\s+[\d.]+ ms/);
  assert.match(r.out, /TTFB:\s+[\d.]+ ms/);
  assert.match(r.out, /status:\s+200/);
  assert.match(r.out, /header:\s+content-type: text\/css/);
  // localhost and 127.0.0.1 are two origins: two connections, the two localhost URLs share one
  // (the redirect's second request goes on the 127.0.0.1 one).
  assert.match(r.out, /connection https:\/\/localhost:\d+: \w+, 2 request\(s\) on it/);
  assert.match(r.out, /connection https:\/\/127\.0\.0\.1:\d+: \w+, 2 request\(s\) on it/);
  assert.match(r.err, /3\/3 ok, \d+ bytes in [\d.]+ ms \([\d.]+ Mbit\/s\), 2 connection\(s\)/);
});

test('h3-get refuses an unverified server without --insecure, works with --insecure, fails on 404', async () => {
  const bad = await run('examples/h3-get.ts', [`https://localhost:${port}/style.css`]).done;
  assert.is(bad.code, 1, bad.out + bad.err);
  assert.match(bad.err, /unknown issuer/);
  assert.match(bad.err, /pass --ca FILE/);
  const ok = await run('examples/h3-get.ts', ['--insecure', '--print', `https://localhost:${port}/style.css`]).done;
  assert.is(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /body\{\}/);
  assert.match(ok.out, /certificate:\s+NOT verified/);
  const missing = await run('examples/h3-get.ts', ['--ca', certFile, `https://localhost:${port}/nothing`]).done;
  assert.is(missing.code, 1);
  assert.match(missing.out, /status:\s+404/);
});

test('staticFiles fuzz: random hostile paths never escape the root, never throw, only expected statuses', async () => {
  const handler = staticFiles(www);
  const rng = new Rng('h3-static-paths');
  const parts = ['..', '.', '%2e%2e', '%2E.', '.%2e', '%2f', '%2F', '%5c', '\\', '%00', '%', '%zz', 'docs', 'escape.txt', 'secret.txt', 'index.html', '', '/', '//', '%c0%af', '%e0%80%af', '~', 'blob.bin', '?x=/..', '#..', ';', '%252e%252e'];
  const seen = new Set<number>();
  for (let i = 0; i < 1500; i++) {
    let p = '';
    const n = 1 + rng.int(8);
    for (let j = 0; j < n; j++) p += (rng.chance(0.6) ? '/' : '') + parts[rng.int(parts.length)]!;
    let req: Request;
    try {
      req = new Request(`https://localhost/${p}`);
    } catch {
      continue; // not a URL a server could be asked for
    }
    const res = await handler(req);
    seen.add(res.status);
    assert.ok([200, 301, 400, 403, 404].includes(res.status), `${p}: ${res.status}`);
    if (res.body) {
      const body = await res.text();
      assert.not.match(body, /outside the root/, p);
    }
  }
  assert.ok(seen.has(200) && seen.has(404) && seen.has(403) && seen.has(400), [...seen].join(','));
});

test('pnpm demo: HTTP/3 on 127.0.0.1, verified certificate, exits 0 and prints status, ALPN, suite, group, timings', async () => {
  const r = await run('examples/demo.ts', []).done;
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /status:\s+200/);
  assert.match(r.out, /ALPN:\s+h3/);
  assert.match(r.out, /cipher suite:\s+TLS_/);
  assert.match(r.out, /group:\s+\w+/);
  assert.match(r.out, /not insecure/);
  assert.match(r.out, /connect\+handshake:\s+[\d.]+ ms/);
  assert.match(r.out, /4 MB download:\s+200, 4000000 bytes/);
});

test.run();
