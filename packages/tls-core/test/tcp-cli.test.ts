/**
 * The TLS examples as a user runs them: `pnpm demo` exits 0 and prints what was negotiated;
 * `pnpm tls-server` + `pnpm tls-client --resume --early-data` resume with 0-RTT.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const runTs = path.join(root, 'scripts', 'run-ts.mjs');

function run(file: string, args: string[], timeoutMs = 30_000): { proc: ChildProcess; done: Promise<{ code: number | null; out: string }>; out: () => string } {
  const proc = spawn(process.execPath, [runTs, file, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  timer.unref();
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
  return { proc, done, out: () => out };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

test('pnpm tls-demo: exits 0 and prints status, ALPN, suite, group, signature scheme, timings', async () => {
  const r = await run('examples/tls-demo.ts', []).done;
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /status:\s+HTTP\/1\.1 200 OK/);
  assert.match(r.out, /ALPN:\s+http\/1\.1/);
  assert.match(r.out, /cipher suite:\s+TLS_/);
  assert.match(r.out, /group:\s+\w+/);
  assert.match(r.out, /signature scheme:\s+ecdsa_secp256r1_sha256/);
  assert.match(r.out, /handshake:\s+[\d.]+ ms/);
});

test('tls-server + tls-client: full handshake, then resumption with 0-RTT (noble client)', async () => {
  const port = await freePort();
  const srv = run('examples/tls-server.ts', ['--port', String(port), '--alpn', 'http/1.1', '--early-data', '16384']);
  try {
    for (let i = 0; i < 200 && !/listening on/.test(srv.out()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(srv.out(), /listening on 127\.0\.0\.1/);
    const c = await run('examples/tls-client.ts', ['--port', String(port), '--insecure', '--alpn', 'http/1.1', '--resume', '--early-data', 'request', '--provider', 'noble']).done;
    assert.is(c.code, 0, c.out);
    assert.match(c.out, /connection 1 \(full handshake\):[\s\S]*resumed:\s+false[\s\S]*response:\s+HTTP\/1\.1 200 OK/);
    assert.match(c.out, /connection \(resumption\):[\s\S]*resumed:\s+true[\s\S]*early data: accepted[\s\S]*response:\s+HTTP\/1\.1 200 OK/);
    // without --ca or --insecure the client refuses to run
    const bad = await run('examples/tls-client.ts', ['--port', String(port)]).done;
    assert.is(bad.code, 1);
    assert.match(bad.out, /insecureSkipVerify/);
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.done;
  }
});

test.run();
