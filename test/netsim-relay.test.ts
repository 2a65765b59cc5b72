// interop/netsim/relay.ts over real UDP sockets on 127.0.0.1: a client socket, the relay and an
// echo server. Checks delay, rate, queue drops, loss, targeted drops, corruption, rebinding, log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRelay, type LogRecord, type Relay, type RelayOptions } from '../interop/netsim/relay.js';
import { spawnPeer } from './support/peers.js';

interface Rx { data: Buffer; port: number; address: string; t: number }

async function socket(host = '127.0.0.1'): Promise<{ s: dgram.Socket; rx: Rx[]; port: number; wait: (n: number, ms: number) => Promise<Rx[]> }> {
  const s = dgram.createSocket('udp4');
  const rx: Rx[] = [];
  const waiters: (() => void)[] = [];
  s.on('message', (data, r) => {
    rx.push({ data, port: r.port, address: r.address, t: performance.now() });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  const wait = async (n: number, ms: number) => {
    const end = Date.now() + ms;
    while (rx.length < n && Date.now() < end) await new Promise<void>((r) => { waiters.push(r); setTimeout(r, Math.max(1, end - Date.now())); });
    return rx;
  };
  return { s, rx, port: s.address().port, wait };
}

/** Client → relay → echo server; returns everything needed, closes in `fn`'s finally. */
async function setup(opts: Omit<RelayOptions, 'listen' | 'target'>, fn: (x: { relay: Relay; client: Awaited<ReturnType<typeof socket>>; server: Awaited<ReturnType<typeof socket>>; send: (b: Uint8Array) => void }) => Promise<void>) {
  const server = await socket();
  server.s.on('message', (m, r) => server.s.send(m, r.port, r.address)); // echo
  const client = await socket();
  const relay = await startRelay({ listen: 0, target: { host: '127.0.0.1', port: server.port }, ...opts });
  try {
    await fn({ relay, client, server, send: (b) => client.s.send(b, relay.port, '127.0.0.1') });
  } finally {
    await relay.close();
    client.s.close();
    server.s.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pkt = (first: number, size: number, tag = 0) => {
  const b = new Uint8Array(size);
  b[0] = first;
  b[4] = 1; // version 1
  b[5] = tag & 0xff;
  b[6] = tag >> 8;
  return b;
};
const fast = { delayMs: 0, rateMbps: 0 };

test('delay: RTT >= 2 x one-way delay', async () => {
  await setup({ up: { delayMs: 40 }, down: { delayMs: 40 } }, async ({ client, send }) => {
    const rtts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      send(pkt(0x40, 100, i));
      await client.wait(i + 1, 2000);
      rtts.push(client.rx[i]!.t - t);
    }
    // >= the configured delay always; the upper bound only catches gross errors (loaded CI).
    for (const r of rtts) assert.ok(r >= 80 && r < 400, `rtt ${r.toFixed(1)} ms`);
  });
});

test('rate limit: a burst arrives at the configured rate', async () => {
  // 250 x 1000 B at 4 Mbit/s: 2 ms apart, 498 ms from first to last.
  await setup({ up: { delayMs: 5, rateMbps: 4, queuePackets: 1000 }, down: fast }, async ({ server, send, relay }) => {
    for (let i = 0; i < 250; i++) send(pkt(0x40, 1000, i));
    await server.wait(250, 4000);
    assert.is(server.rx.length, 250);
    const span = server.rx[249]!.t - server.rx[0]!.t;
    const mbps = (249 * 1000 * 8) / (span * 1000);
    assert.ok(mbps > 3.4 && mbps < 4.6, `measured ${mbps.toFixed(2)} Mbit/s over ${span.toFixed(0)} ms`);
    assert.is(relay.stats.up.forwarded, 250);
  });
});

test('queue: a burst beyond the queue is dropped at the tail', async () => {
  await setup({ up: { delayMs: 5, rateMbps: 1, queuePackets: 10 }, down: fast }, async ({ server, send, relay }) => {
    for (let i = 0; i < 60; i++) send(pkt(0x40, 1200, i));
    for (let k = 0; k < 100 && relay.stats.up.received < 60; k++) await sleep(10); // 1200 B at 1 Mbit/s = 9.6 ms each
    const st = relay.stats.up;
    assert.is(st.received, 60);
    assert.ok(st.dropped.queue >= 30, `queue drops ${st.dropped.queue}`);
    assert.is(st.forwarded + st.dropped.queue, 60);
    await server.wait(st.forwarded, 1000);
    assert.is(server.rx.length, st.forwarded);
    // The first datagrams went through, in order (drop-tail keeps the head).
    assert.equal(server.rx.slice(0, 10).map((r) => r.data[5]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

test('random loss over 1000 datagrams within a binomial bound', async () => {
  await setup({ up: { ...fast, loss: 0.25 }, down: fast, seed: 11 }, async ({ server, send, relay }) => {
    for (let i = 0; i < 1000; i++) {
      send(pkt(0x40, 200, i));
      if (i % 50 === 49) await sleep(2); // stay clear of socket buffer limits
    }
    for (let k = 0; k < 100 && relay.stats.up.received < 1000; k++) await sleep(20);
    const st = relay.stats.up;
    assert.is(st.received, 1000);
    const sd = Math.sqrt(1000 * 0.25 * 0.75);
    assert.ok(Math.abs(st.dropped.loss - 250) < 5 * sd, `lost ${st.dropped.loss}`);
    await server.wait(1000 - st.dropped.loss, 2000);
    assert.is(server.rx.length, 1000 - st.dropped.loss);
  });
});

test('targeted drops: first N and Handshake packets by first byte; blackhole window', async () => {
  await setup({ up: { ...fast, dropFirst: 2, dropTypes: ['handshake'] }, down: { ...fast, blackholes: [{ fromMs: 0, toMs: 1e9 }] } }, async ({ server, client, send, relay }) => {
    const firsts = [0xc0, 0xc0, 0xc0, 0xe0, 0x40, 0xe1, 0x41];
    firsts.forEach((b, i) => send(pkt(b, 100, i)));
    await server.wait(3, 1000);
    await sleep(50);
    assert.equal(server.rx.map((r) => r.data[5]), [2, 4, 6]);
    assert.is(client.rx.length, 0, 'replies fell into the blackhole');
    assert.is(relay.stats.down.dropped.blackhole, 3);
  });
});

test('corruption: forwarded with bytes changed', async () => {
  await setup({ up: { ...fast, corrupt: 1, corruptBytes: 3, corruptSkip: 1 }, down: fast }, async ({ server, send }) => {
    const p = pkt(0x40, 300, 7);
    send(p);
    await server.wait(1, 1000);
    const got = server.rx[0]!.data;
    let diff = 0;
    for (let i = 0; i < p.length; i++) if (got[i] !== p[i]) diff++;
    assert.ok(diff >= 1 && diff <= 3, `${diff} bytes differ`);
    assert.is(got[0], 0x40);
  });
});

test('rebinding: the server sees a new source port (and address); the client keeps its path', async () => {
  await setup({ up: fast, down: fast }, async ({ relay, server, client, send }) => {
    send(pkt(0x40, 50, 1));
    await client.wait(1, 1000);
    const before = server.rx[0]!;
    const r = await relay.rebind();
    assert.is(r.from.port, before.port);
    send(pkt(0x40, 50, 2));
    await client.wait(2, 1000);
    const after = server.rx[1]!;
    assert.is.not(after.port, before.port);
    assert.is(after.port, relay.upstreamAddress.port);
    assert.is(client.rx[1]!.data[5], 2, 'echo came back through the new mapping');
    // Address rebinding to a second loopback address, if this host routes 127.0.0.2.
    let addrOk = true;
    try {
      await relay.rebind({ address: '127.0.0.2' });
    } catch {
      addrOk = false;
      console.log('SKIPPED: 127.0.0.2 unavailable: cannot bind a second loopback address here');
    }
    if (addrOk) {
      send(pkt(0x40, 50, 3));
      await client.wait(3, 1000);
      assert.is(server.rx[2]!.address, '127.0.0.2');
      assert.is(client.rx[2]!.data[5], 3);
    }
    // Client side: replies now come from a new port; the client may keep sending to the old one.
    const c = await relay.rebind({ side: 'client' });
    send(pkt(0x40, 50, 4));
    await client.wait(4, 1000);
    assert.is(client.rx[3]!.port, c.to.port);
    assert.is.not(c.to.port, relay.port);
    assert.is(relay.stats.rebinds, addrOk ? 3 : 2);
  });
});

test('log: one JSON line per datagram with direction, type, fate', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'netsim-')), 'log.jsonl');
  const recs: LogRecord[] = [];
  await setup({ up: { ...fast, dropFirst: 1 }, down: fast, log: (r) => recs.push(r) }, async ({ send, client }) => {
    send(pkt(0xc0, 1200, 0));
    send(pkt(0xe0, 600, 1));
    await client.wait(1, 1000);
  });
  const dg = recs.filter((r) => r.dir);
  assert.equal(dg.map((r) => [r.dir, r.type, r.fate, r.size]), [
    ['up', 'initial', 'dropped', 1200],
    ['up', 'handshake', 'forwarded', 600],
    ['down', 'handshake', 'forwarded', 600],
  ]);
  assert.is(dg[0]!.reason, 'targeted');
  assert.is(dg[1]!.first, 'e000000001010000');
  assert.ok(recs.some((r) => r.event === 'client'));
  // File form.
  await setup({ up: fast, down: fast, log: file }, async ({ send, client }) => {
    send(pkt(0x40, 10, 0));
    await client.wait(1, 1000);
  });
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
  assert.equal(lines.filter((l) => l.dir).map((l) => l.dir), ['up', 'down']);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('CLI: relays with the given options and prints stats on exit', async () => {
  const server = await socket();
  server.s.on('message', (m, r) => server.s.send(m, r.port, r.address));
  const client = await socket();
  const proc = spawnPeer(process.execPath, ['scripts/run-ts.mjs', 'interop/netsim/cli.ts', '--listen', '0', '--target', `127.0.0.1:${server.port}`, '--delay', '5', '--up-drop-first', '1', '--duration', '3'], { lifetimeMs: 10_000 });
  try {
    let port = 0;
    for (let i = 0; i < 200 && !port && !proc.exited; i++) {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(proc.output());
      if (m) port = Number(m[1]);
      else await sleep(20);
    }
    assert.ok(port > 0, proc.output());
    client.s.send(pkt(0x40, 100, 1), port, '127.0.0.1'); // dropped (--up-drop-first 1)
    client.s.send(pkt(0x40, 100, 2), port, '127.0.0.1');
    await client.wait(1, 2000);
    assert.equal(client.rx.map((r) => r.data[5]), [2]);
    await proc.done;
    assert.is(proc.exitCode, 0, proc.output());
    const stats = JSON.parse(proc.output().trim().split('\n').pop()!);
    assert.equal([stats.up.received, stats.up.dropped.targeted, stats.down.forwarded], [2, 1, 1]);
  } finally {
    await proc.kill();
    client.s.close();
    server.s.close();
  }
});

test.run();
