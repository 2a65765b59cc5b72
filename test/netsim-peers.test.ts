// The network simulator with real QUIC peers: ngtcp2 gtlsclient downloads through the relay from
// gtlsserver under delay, rate limit, loss and a mid-transfer NAT rebinding, and the log shows
// the handshake. Skips loudly when ngtcp2 is unavailable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRelay, type LogRecord } from '../interop/netsim/relay.js';
import { freePort, peers, requirePeer, runBounded, spawnPeer, waitForPort } from './support/peers.js';

async function download(opts: { up?: object; down?: object; rebindAfter1rtt?: number; sizeKB: number }) {
  const srvBin = requirePeer('gtlsserver');
  const cliBin = requirePeer('gtlsclient');
  if (!srvBin || !cliBin || !requirePeer('certs')) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netsim-peers-'));
  const www = path.join(dir, 'www');
  const dl = path.join(dir, 'dl');
  fs.mkdirSync(www);
  fs.mkdirSync(dl);
  const body = Buffer.alloc(opts.sizeKB * 1000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
  fs.writeFileSync(path.join(www, 'f'), body);
  const port = await freePort('udp');
  const c = peers().certs;
  const srv = spawnPeer(srvBin, ['-q', '-d', www, '127.0.0.1', String(port), c.key, c.cert], { lifetimeMs: 30_000 });
  const log: LogRecord[] = [];
  let oneRtt = 0;
  // NAT rebinding once the transfer runs (after the handshake: a server need not accept a new
  // path before that, RFC 9000 §9): after N 1-RTT datagrams went down.
  const onLog = (r: LogRecord) => {
    log.push(r);
    if (r.dir === 'down' && r.type === '1rtt' && ++oneRtt === opts.rebindAfter1rtt) void relay.rebind().catch(() => {});
  };
  const relay = await startRelay({ listen: 0, target: { host: '127.0.0.1', port }, up: opts.up ?? {}, down: opts.down ?? {}, seed: 5, log: onLog });
  try {
    await waitForPort(port, 'udp', { proc: srv });
    const r = await runBounded(cliBin, ['-q', '--exit-on-all-streams-close', '--download', dl, '127.0.0.1', String(relay.port), `https://127.0.0.1:${relay.port}/f`], { timeoutMs: 20_000 });
    const got = fs.existsSync(path.join(dl, 'f')) ? fs.readFileSync(path.join(dl, 'f')) : Buffer.alloc(0);
    return { r, ok: got.equals(body), stats: relay.stats, log };
  } finally {
    await relay.close();
    await srv.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('ngtcp2 download through the default link (15 ms, 10 Mbit/s, 25 packets); log shows the handshake', async () => {
  const res = await download({ sizeKB: 300 });
  if (!res) return;
  assert.ok(res.ok, `download failed: exit ${res.r.code} ${res.r.stderr.slice(-300)}`);
  const types = res.log.filter((l) => l.dir === 'up').map((l) => l.type);
  assert.is(types[0], 'initial', 'the client starts with an Initial');
  assert.ok(res.log.some((l) => l.dir === 'down' && l.type === 'handshake' || l.dir === 'down' && l.type === 'initial'));
  assert.ok(res.log.some((l) => l.type === '1rtt'));
  // 300 kB at 10 Mbit/s is at least 240 ms of serialization, plus 30 ms RTTs.
  assert.ok(res.r.ms >= 240, `took ${res.r.ms} ms`);
});

test('ngtcp2 download with 5% loss each way, the first Handshake datagram from the server dropped, and a NAT rebinding', async () => {
  const res = await download({ sizeKB: 400, up: { loss: 0.05, delayMs: 5 }, down: { loss: 0.05, delayMs: 5, dropTypes: ['handshake'], dropTypesCount: 1 }, rebindAfter1rtt: 40 });
  if (!res) return;
  assert.ok(res.ok, `download failed: exit ${res.r.code} ${res.r.stderr.slice(-300)}`);
  assert.is(res.stats.down.dropped.targeted, 1);
  assert.ok(res.stats.up.dropped.loss + res.stats.down.dropped.loss > 0, 'some loss happened');
  const rb = res.log.find((l) => l.event === 'rebind');
  assert.ok(rb, 'rebinding happened');
  const after = res.log.filter((l) => l.t > rb!.t && l.dir === 'down' && l.fate !== 'dropped').length;
  assert.ok(after > 10, `the transfer went on over the new path (${after} datagrams down after the rebinding)`);
});

test.run();
