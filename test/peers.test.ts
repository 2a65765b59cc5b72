// Smoke test of test/support/peers.ts against what is installed here: the lookup, the loud skips,
// bounded runs, process-group kills and port helpers. Peers that are absent skip loudly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { acquireLock, freePort, isListening, peers, requirePeer, runBounded, spawnPeer, startQuicGoServer, waitForPort, withPeer } from './support/peers.js';

test('peers(): lookup report', () => {
  const p = peers();
  const rows = Object.entries(p.bins).map(([k, v]) => `  ${k.padEnd(11)} ${v ?? `MISSING (${p.missing[k as keyof typeof p.bins]})`}`);
  console.log(`PEERS_DIR ${p.dir ?? `unavailable: ${p.error}`}\n${rows.join('\n')}`);
  for (const v of Object.values(p.bins)) if (v) assert.ok(fs.existsSync(v), v);
  if (requirePeer('certs')) for (const f of Object.values(p.certs)) assert.ok(fs.readFileSync(f, 'utf8').includes('-----BEGIN'), f);
});

test('openssl version', async () => {
  const bin = requirePeer('openssl');
  if (!bin) return;
  const r = await runBounded(bin, ['version'], { timeoutMs: 5000 });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^OpenSSL \d+\.\d+/);
});

test('gtlsserver --help', async () => {
  const bin = requirePeer('gtlsserver');
  if (!bin) return;
  const r = await runBounded(bin, ['--help'], { timeoutMs: 5000 });
  assert.match(r.stdout + r.stderr, /PRIVATE_KEY_FILE/);
});

test('runBounded: kills on timeout, reports exit codes', async () => {
  const r = await runBounded('sh', ['-c', 'sleep 30'], { timeoutMs: 200 });
  assert.ok(r.timedOut);
  assert.ok(r.ms < 5000);
  const e = await runBounded('sh', ['-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 5000 });
  assert.equal([e.code, e.stdout, e.stderr, e.timedOut], [3, 'out\n', 'err\n', false]);
  const i = await runBounded('cat', [], { timeoutMs: 5000, input: 'abc' });
  assert.is(i.stdout, 'abc');
});

test('spawnPeer: kill() takes the whole process group down', async () => {
  const p = spawnPeer('sh', ['-c', 'sleep 30 & echo child $!; wait'], { lifetimeMs: 20_000 });
  let child = 0;
  for (let i = 0; i < 100 && !child; i++) {
    const m = /child (\d+)/.exec(p.output());
    if (m) child = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(child > 0, 'child started');
  await p.kill();
  assert.ok(p.exited);
  await new Promise((r) => setTimeout(r, 50));
  // Dead means gone or a zombie (PID 1 here may not reap orphans).
  let state = 'gone';
  try {
    state = fs.readFileSync(`/proc/${child}/stat`, 'utf8').replace(/^.*\) /, '')[0]!;
  } catch {
    /* gone */
  }
  assert.ok(state === 'gone' || state === 'Z', `grandchild killed with the group (state ${state})`);
});

test('spawnPeer: lifetime bound', async () => {
  const p = spawnPeer('sleep', ['30'], { lifetimeMs: 1000 });
  const t0 = Date.now();
  await Promise.race([p.done, new Promise((r) => setTimeout(r, 5000))]);
  assert.ok(p.exited, 'exited by its lifetime');
  assert.ok(Date.now() - t0 < 4000);
  await p.kill();
});

test('freePort / waitForPort / isListening (udp and tcp)', async () => {
  const u = await freePort('udp');
  assert.not.ok(await isListening(u, 'udp'));
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(u, '127.0.0.1', r));
  try {
    await waitForPort(u, 'udp', { timeoutMs: 2000 });
  } finally {
    s.close();
  }
  const t = await freePort('tcp');
  await assert.not.ok(await isListening(t, 'tcp'));
  let threw = false;
  try {
    await waitForPort(t, 'tcp', { timeoutMs: 200 });
  } catch {
    threw = true;
  }
  assert.ok(threw, 'waitForPort times out');
});

test('withPeer: openssl s_server on a free port', async () => {
  const bin = requirePeer('openssl');
  if (!bin || !requirePeer('certs')) return;
  const c = peers().certs;
  const port = await freePort('tcp');
  const out = await withPeer(bin, ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', c.selfsigned, '-key', c.key, '-www', '-quiet'],
    { lifetimeMs: 15_000, port, proto: 'tcp' },
    async () => {
      const r = await runBounded(bin, ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', c.selfsigned, '-verify_return_error', '-brief'], { timeoutMs: 5000, input: 'GET / HTTP/1.0\r\n\r\n' });
      return r.stdout + r.stderr;
    });
  assert.match(out, /TLSv1\.3/);
  assert.not.ok(await isListening(port, 'tcp'), 'server gone after withPeer');
});

test('acquireLock: exclusive across holders, released on release()', async () => {
  const name = `selftest-${process.pid}`;
  const a = await acquireLock(name, 1000);
  let threw = false;
  try {
    await acquireLock(name, 200);
  } catch {
    threw = true;
  }
  assert.ok(threw, 'second holder waits and times out');
  a.release();
  const b = await acquireLock(name, 1000);
  b.release();
});

test('quic-go: server (locked port 443) and client download a file', async () => {
  const www = fs.mkdtempSync('/tmp/peers-qg-www-');
  const dl = fs.mkdtempSync('/tmp/peers-qg-dl-');
  try {
    fs.writeFileSync(`${www}/f`, Buffer.alloc(50_000, 0x5a));
    const srv = await startQuicGoServer('transfer', www, { lifetimeMs: 30_000 });
    if (!srv) return;
    try {
      const r = await runBounded(peers().bins.quicGo!, ['client', 'transfer', dl, 'https://127.0.0.1:443/f'], { timeoutMs: 20_000 });
      assert.is(r.code, 0, r.stdout + r.stderr);
      assert.equal(fs.readFileSync(`${dl}/f`), fs.readFileSync(`${www}/f`));
    } finally {
      await srv.kill();
    }
    assert.not.ok(await isListening(443, 'udp'), 'server gone');
  } finally {
    fs.rmSync(www, { recursive: true, force: true });
    fs.rmSync(dl, { recursive: true, force: true });
  }
});

test.run();
