// Resource limits: exceeding each one ends in a clean protocol error or a drop, never in unbounded
// memory. Fast (a few seconds). Connection-level cases inject frames as properly protected 1-RTT
// packets into a live in-memory connection (test/support/load-inject.ts: real Endpoint and
// Connection on both sides, keys from the TLS key log) and check the server's close code. The
// table of limits is in test/load/README.md.
//
// The two former LOAD_KNOWN_BUGS cases (per-connection out-of-order segments, unread HTTP/3 bodies)
// are normal tests now; run with --expose-gc for the heap figure of the first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { injectToServer } from './support/load-inject.js';
import { Endpoint } from '../packages/quic/src/endpoint.js';
import type { Address } from '../packages/quic/src/api.js';
import { nodeProvider } from '../packages/tls-core/src/crypto/node.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { ReceivedPackets } from '../packages/quic/src/ack.js';
import { Assembler } from '../packages/quic/src/assembler.js';
import { TransportError } from '../packages/quic/src/errors.js';
import { SendStream } from '../packages/quic/src/streams/send.js';
import { ProtocolViolation } from '../packages/tls-core/src/errors.js';
import { connectH3 } from '../packages/h3/src/node.js';
import { loadCerts, mb, runClients, sleep, startLoadServer, waitFor } from './support/load.js';


/** Minimal QUIC varint (RFC 9000 §16). */
function v(n: number): number[] {
  if (n < 0x40) return [n];
  if (n < 0x4000) return [0x40 | (n >> 8), n & 0xff];
  if (n < 0x40000000) return [0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const hi = Math.floor(n / 2 ** 32);
  return [0xc0 | (hi >>> 24), (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
/** STREAM frame with OFF and LEN bits (0x0e). */
const stream = (id: number, off: number, data: number[]): number[] => [0x0e, ...v(id), ...v(off), ...v(data.length), ...data];
const crypto = (off: number, data: number[]): number[] => [0x06, ...v(off), ...v(data.length), ...data];
const PING = [0x01];

/** Sends the payloads client → server after the handshake; returns the server's close ("kind:code:reason") or null. */
function injectUp(payloads: number[][]): { close: string | null; all: string[]; bugs: string[] } {
  const run = injectToServer(payloads.map((p) => Uint8Array.from(p)));
  assert.ok(run.handshake, 'the handshake before the injection completed');
  assert.is(run.injected, payloads.length);
  const c = run.serverClose;
  const close = c ? `${c.kind}:${c.remote ? 'remote' : 'local'}:${c.code}:${c.reason}` : null;
  const cc = run.clientClose;
  return { close, all: [close ?? '-', cc ? `client ${cc.kind}:${cc.code}:${cc.reason}` : '-'], bugs: run.bugs };
}

/** Splits frames into payloads of at most ~1000 bytes. */
function packets(frames: number[][]): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (const f of frames) {
    if (cur.length + f.length > 1000) {
      out.push(cur);
      cur = [];
    }
    cur.push(...f);
  }
  if (cur.length) out.push(cur);
  return out;
}

function closeCode(close: string | null): number {
  assert.ok(close, 'the server closed the connection');
  return Number(close!.split(':')[2]);
}

// ---------------------------------------------------------------------------------------------
// QUIC connection level (defaults of packages/quic/src/connection.ts)

test('control: benign frames after the handshake do not close the connection', () => {
  const r = injectUp([[...stream(0, 0, [1, 2, 3]), ...PING]]);
  assert.equal(r.bugs, []);
  assert.is(r.close, null, r.all.join(','));
});

test('CRYPTO reassembly (maxCryptoBuffer, default 64 KiB): data beyond read offset + 64 KiB → CRYPTO_BUFFER_EXCEEDED', () => {
  const r = injectUp([crypto(64 * 1024 + 100, [1, 2, 3, 4])]);
  assert.equal(r.bugs, []);
  assert.is(closeCode(r.close), TransportError.CRYPTO_BUFFER_EXCEEDED, r.close ?? '');
});

test('CRYPTO within the bound is buffered (no close): the check can fail', () => {
  const r = injectUp([crypto(60 * 1024, [1, 2, 3, 4])]);
  assert.equal(r.bugs, []);
  // Out-of-order 1-RTT CRYPTO data within the bound is kept (or the post-handshake message is
  // rejected later); in no case CRYPTO_BUFFER_EXCEEDED.
  if (r.close) assert.is.not(closeCode(r.close), TransportError.CRYPTO_BUFFER_EXCEEDED);
});

test('streams (maxStreamsBidi, default 100): the peer opening stream index 100 → STREAM_LIMIT_ERROR', () => {
  assert.is(injectUp([stream(4 * 99, 0, [1])]).close, null, 'stream index 99 is allowed');
  const r = injectUp([stream(4 * 100, 0, [1])]);
  assert.is(closeCode(r.close), TransportError.STREAM_LIMIT_ERROR, r.close ?? '');
  const u = injectUp([stream(4 * 100 + 2, 0, [1])]); // client-initiated uni, default 100 too
  assert.is(closeCode(u.close), TransportError.STREAM_LIMIT_ERROR, u.close ?? '');
});

test('bytes per stream (streamWindow, default 256 KiB): data beyond the window → FLOW_CONTROL_ERROR', () => {
  assert.is(injectUp([stream(0, 256 * 1024 - 1, [1])]).close, null, 'the last byte of the window is allowed');
  const r = injectUp([stream(0, 256 * 1024, [1])]);
  assert.is(closeCode(r.close), TransportError.FLOW_CONTROL_ERROR, r.close ?? '');
});

test('bytes per connection (connectionWindow, default 1 MiB): the sum over streams beyond it → FLOW_CONTROL_ERROR', () => {
  // Four streams at their full 256 KiB = exactly 1 MiB: allowed; a fifth byte on a fifth stream is not.
  const four = [0, 4, 8, 12].map((id) => stream(id, 256 * 1024 - 1, [1]));
  assert.is(injectUp([four.flat()]).close, null, '1 MiB in total is allowed');
  const r = injectUp([[...four.flat(), ...stream(16, 0, [1])]]);
  assert.is(closeCode(r.close), TransportError.FLOW_CONTROL_ERROR, r.close ?? '');
});

test('out-of-order data (Assembler maxGaps 2048 per stream): more holes → PROTOCOL_VIOLATION', () => {
  // 1-byte frames at offsets 1, 3, 5, ...: one hole each (offset 0 never comes).
  const ok = injectUp(packets(Array.from({ length: 2000 }, (_, i) => stream(0, 1 + 2 * i, [i & 0xff]))));
  assert.is(ok.close, null, `2000 holes are allowed: ${ok.all.join(',')}`);
  const r = injectUp(packets(Array.from({ length: 2100 }, (_, i) => stream(0, 1 + 2 * i, [i & 0xff]))));
  assert.is(closeCode(r.close), TransportError.PROTOCOL_VIOLATION, r.close ?? '');
});

test('peer ACK frame claiming 2^30 ranges in a short packet → FRAME_ENCODING_ERROR (no allocation by count)', () => {
  const r = injectUp([[0x02, ...v(3), 0, ...v(2 ** 30), 0]]);
  assert.equal(r.bugs, []);
  assert.is(closeCode(r.close), TransportError.FRAME_ENCODING_ERROR, r.close ?? '');
});

// ---------------------------------------------------------------------------------------------
// Component level

test('ACK ranges tracked (maxAckRanges, default 64): 10,000 alternating packet numbers keep ≤ 64 ranges', () => {
  const rp = new ReceivedPackets({ maxAckDelay: 25, maxRanges: 64 });
  for (let pn = 0; pn < 20_000; pn += 2) rp.onPacketReceived(pn, pn, true);
  assert.ok(rp.rangeCount <= 64, `${rp.rangeCount} ranges`);
  assert.ok(rp.rangeCount >= 32, 'the newest ranges are kept (the check can fail)');
});

test('Assembler without a byte bound still stops at maxGaps; with maxBuffer it stops at the byte bound', () => {
  const a = new Assembler({ maxBuffer: Infinity, maxGaps: 100, frameType: 0x08 });
  let err: unknown = null;
  try {
    for (let i = 0; i < 1000; i++) a.insert(1 + 2 * i, Uint8Array.of(i & 0xff));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ProtocolViolation, String(err));
  assert.ok(a.gapCount <= 101, `${a.gapCount} gaps kept`);
  const b = new Assembler({ maxBuffer: 1000 });
  assert.throws(() => b.insert(999, Uint8Array.of(1, 2)), (e: unknown) => e instanceof ProtocolViolation && e.code === TransportError.CRYPTO_BUFFER_EXCEEDED);
  assert.is(b.buffered, 0, 'a rejected frame buffered nothing');
});

test('Assembler segment budget shared across streams: counted on insert, returned on read/discard/merge, PROTOCOL_VIOLATION beyond', () => {
  const budget = { used: 0, max: 100 };
  const a = new Assembler({ maxBuffer: Infinity, frameType: 0x08, budget });
  const b = new Assembler({ maxBuffer: Infinity, frameType: 0x08, budget });
  for (let i = 0; i < 50; i++) a.insert(1 + 2 * i, Uint8Array.of(1));
  for (let i = 0; i < 50; i++) b.insert(1 + 2 * i, Uint8Array.of(1));
  assert.is(budget.used, 100);
  // Filling a's holes makes its segments adjacent: merged when the budget is reached, not an error.
  for (let i = 0; i < 50; i++) a.insert(2 * i, Uint8Array.of(1));
  assert.ok(budget.used <= 100, `${budget.used}`);
  assert.ok(a.segmentCount < 50, `a merged to ${a.segmentCount} segments`);
  // b's holes cannot merge: it runs into the shared bound.
  let err: unknown = null;
  let n = 0;
  try {
    for (; n < 200; n++) b.insert(101 + 2 * n, Uint8Array.of(1));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ProtocolViolation && err.code === TransportError.PROTOCOL_VIOLATION, String(err));
  assert.ok(50 + n + a.segmentCount >= 100 && n < 60, `stopped after ${n} more holes`);
  while (a.read()) {}
  assert.is(a.segmentCount, 0);
  b.discard();
  assert.is(budget.used, 0, 'everything returned');
});

/** A server Endpoint with defaults, and `n` client first flights (client Initials) sent to it; nothing else is delivered. */
function halfOpen(n: number, server: Record<string, unknown> = {}): { ep: Endpoint; t0: number; firsts: Uint8Array[] } {
  const t0 = Date.UTC(2026, 0, 1);
  const cert = generateSelfSigned({ provider: nodeProvider, names: ['example.com'], keyType: 'ec-p256', nowMs: t0 });
  const ep = new Endpoint({ provider: nodeProvider, server: { ...server, provider: nodeProvider, tls: { identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: ['load'], now: () => t0 } } });
  const srvAddr: Address = { address: '10.0.0.2', port: 4433, family: 4 };
  const firsts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const cep = new Endpoint({ provider: nodeProvider });
    cep.connect(srvAddr, { provider: nodeProvider, tls: { serverName: 'example.com', insecureSkipVerify: true, alpn: ['load'], now: () => t0 } }, t0);
    const first = cep.pollTransmit(t0)!;
    firsts.push(first.datagram.slice());
    ep.receive(first.datagram, { address: '10.0.1.1', port: 10000 + i, family: 4 }, t0);
  }
  for (let t = ep.pollTransmit(t0), k = 0; t && k < 100_000; t = ep.pollTransmit(t0), k++); // the server's flights go nowhere
  return { ep, t0, firsts };
}

test(`Endpoint defaults: retry 'auto' (threshold 64): beyond 64 half-open handshakes new clients get a Retry, not state`, () => {
  const { ep } = halfOpen(80);
  assert.is(ep.stats.accepted, 65, JSON.stringify(ep.stats));
  assert.is(ep.stats.retriesSent, 15, JSON.stringify(ep.stats));
  assert.is(ep.handshakesInFlight, 65);
  const never = halfOpen(70, { retry: 'never' });
  assert.is(never.ep.stats.retriesSent, 0, 'the check can fail');
  assert.is(never.ep.handshakesInFlight, 70);
});

test(`retry 'auto': a retransmitted first Initial of a client that got a Retry gets a Retry again once the load is gone (no orphan connection)`, () => {
  const { ep, t0, firsts } = halfOpen(3, { retryThreshold: 1, handshakeTimeout: 1000 });
  assert.is(ep.stats.accepted, 2);
  assert.is(ep.stats.retriesSent, 1);
  const t1 = t0 + 1000;
  ep.handleTimeout(t1); // the two half-open handshakes time out
  assert.is(ep.handshakesInFlight, 0);
  ep.receive(firsts[2]!, { address: '10.0.1.1', port: 10002, family: 4 }, t1);
  assert.is(ep.stats.retriesSent, 2, 'Retry again for the same DCID');
  assert.is(ep.stats.accepted, 2);
  const fresh = halfOpen(1, { retryThreshold: 1 });
  assert.is(fresh.ep.stats.accepted, 1, 'an unknown DCID below the threshold is accepted (the check can fail)');
});

test('Endpoint defaults: handshakeTimeout 10 s closes half-open connections (idle timeout is 30 s); 0 disables', () => {
  const { ep, t0 } = halfOpen(5);
  assert.is(ep.handshakesInFlight, 5);
  const next = ep.nextTimeout();
  assert.ok(next !== null && next <= t0 + 10_000, `next timeout ${next !== null ? next - t0 : null}`);
  // Run the timers (PTOs retransmit into the void) up to just before 10 s, then past it.
  let now = t0;
  const runUntil = (end: number): void => {
    for (let i = 0; i < 10_000; i++) {
      const t = ep.nextTimeout();
      if (t === null || t > end) break;
      now = Math.max(now, t);
      ep.handleTimeout(now);
      for (let x = ep.pollTransmit(now), k = 0; x && k < 10_000; x = ep.pollTransmit(now), k++);
    }
  };
  runUntil(t0 + 9_999);
  assert.is(ep.handshakesInFlight, 5, 'not before the timeout');
  runUntil(t0 + 10_000);
  assert.is(ep.handshakesInFlight, 0, 'no handshake in flight after 10 s');
  runUntil(t0 + 25_000); // closing period (3 × PTO) over, well before the 30 s idle timeout
  assert.is(ep.connectionCount, 0, 'the half-open connections are gone');
  const off = halfOpen(2, { handshakeTimeout: 0 });
  for (let i = 0, t = off.t0; i < 10_000; i++) {
    const n = off.ep.nextTimeout();
    if (n === null || n > off.t0 + 20_000) break;
    t = Math.max(t, n);
    off.ep.handleTimeout(t);
    for (let x = off.ep.pollTransmit(t), k = 0; x && k < 10_000; x = off.ep.pollTransmit(t), k++);
  }
  assert.is(off.ep.handshakesInFlight, 2, 'handshakeTimeout 0: only the idle timeout applies');
});

test('send buffer (sendBufferSize): write() accepts at most the bound, the rest waits for the application', () => {
  const s = new SendStream(0, { initialMaxData: 1 << 30, maxBuffered: 64 * 1024 });
  const n = s.write(new Uint8Array(10 << 20));
  assert.ok(n <= 64 * 1024, `accepted ${n}`);
  assert.ok(n > 0);
  assert.is(s.write(new Uint8Array(100)), 0, 'full: nothing more until acknowledged');
});

// ---------------------------------------------------------------------------------------------
// Endpoint over the node driver (server in a child process)

test('maxConnections over UDP: connection N+1 is refused (CONNECTION_REFUSED) while N are open; accepted again after they close', async () => {
  const srv = await startLoadServer({ maxConnections: 3 });
  const { ca } = loadCerts();
  const open: Awaited<ReturnType<typeof connectH3>>[] = [];
  try {
    for (let i = 0; i < 3; i++) open.push(await connectH3({ host: '127.0.0.1', port: srv.port }, { ca: ca.certPem, serverName: 'localhost' }));
    let err: unknown = null;
    try {
      const c = await connectH3({ host: '127.0.0.1', port: srv.port }, { ca: ca.certPem, serverName: 'localhost', handshakeTimeoutMs: 5000 });
      await c.close();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof Error, 'the fourth connection failed');
    console.log(`  fourth connection: ${(err as Error).message}`);
    assert.match(String((err as Error).message), /refused|0x2\b|CONNECTION_REFUSED/i);
    const s = await srv.stats();
    // ≥ 1: a client Initial that crosses the refusal (a retransmission) is refused again.
    assert.ok(s.endpoint['refused']! >= 1, JSON.stringify(s.endpoint));
    assert.is(s.endpoint['accepted'], 3);
    assert.is(s.connections, 3);
    for (const c of open.splice(0)) await c.close();
    // Draining server connections (3 × PTO after the peer's close) still count toward the limit.
    assert.ok(await waitFor(async () => (await srv.stats()).connections === 0, 10_000), 'server connections drained');
    const r = await runClients(srv.port, 2, { path: '/bytes/10', expectBytes: 10 });
    assert.is(r.ok, 2, JSON.stringify(r.errors));
  } finally {
    for (const c of open) await c.close().catch(() => {});
    await srv.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Formerly missing limits (were LOAD_KNOWN_BUGS=1)

test('out-of-order holes across streams are bounded per connection (maxReassemblySegments, default 16,384) → PROTOCOL_VIOLATION', () => {
  // Each stream allows 2048 holes (assembler.ts maxGaps) and each hole costs a segment object:
  // 100 streams × 2000 one-byte frames use only 400 KiB of flow-control credit. Without the
  // per-connection segment budget (streams/manager.ts) they pinned ~50-60 MB of heap.
  const count = 100 * 2000;
  // Built in a function so that only the datagram payloads exist at the heap baseline.
  const payloads = ((): Uint8Array[] => {
    const frames: number[][] = [];
    for (let s = 0; s < 100; s++) for (let i = 0; i < 2000; i++) frames.push(stream(4 * s, 1 + 2 * i, [0x55]));
    return packets(frames).map((p) => Uint8Array.from(p));
  })();
  const g = (globalThis as { gc?: () => void }).gc;
  g?.();
  const h0 = process.memoryUsage().heapUsed;
  const r = injectToServer(payloads);
  g?.();
  const grew = process.memoryUsage().heapUsed - h0;
  console.log(`  ${count} one-byte frames on 100 streams: server ${r.serverClose ? `closed (${r.serverClose.code})` : 'open'}, heap +${mb(grew)}${g ? '' : ' (no --expose-gc: rough)'}`);
  assert.ok(r.serverClose !== null, 'the server closed the connection');
  assert.is(r.serverClose!.code, TransportError.PROTOCOL_VIOLATION, JSON.stringify(r.serverClose));
  if (g) assert.ok(grew < 16 << 20, `heap grew by ${mb(grew)} for ${mb(count * 8)} of frames`);
});

test('h3: a request body the handler has not read yet is bounded by flow control (BODY_READ_HIGH_WATER_MARK + stream window)', async () => {
  // packages/h3/src/web.ts pauses reading a request stream from QUIC while its body stream holds
  // more than 256 KiB the handler has not read (quic-adapter.ts pauseReading): QUIC flow control
  // then stops the client. Before that, 48 MB were accepted and buffered for a handler that read nothing.
  const srv = await startLoadServer({});
  const { ca } = loadCerts();
  try {
    const base = await srv.gc();
    const c = await connectH3({ host: '127.0.0.1', port: srv.port }, { ca: ca.certPem, serverName: 'localhost' });
    const total = 48 << 20;
    let sent = 0;
    const chunk = new Uint8Array(65536).fill(1);
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (sent >= total) return ctl.close();
        sent += chunk.length;
        ctl.enqueue(chunk.slice());
      },
    });
    const p = c.fetch(`https://localhost:${srv.port}/later?ms=4000`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    p.catch(() => {}); // awaited below when the checks pass
    await sleep(3000);
    const s = await srv.stats();
    console.log(`  client handed over ${mb(sent)} to a handler that read nothing; server arrayBuffers ${mb(base.arrayBuffers)} → ${mb(s.arrayBuffers)}`);
    // Stream window auto-tunes up to maxStreamWindow (16 MiB) at most.
    assert.ok(sent < 20 << 20, `the client could send ${mb(sent)} although the handler read nothing`);
    assert.ok(s.arrayBuffers - base.arrayBuffers < 20 << 20, `server buffers ${mb(s.arrayBuffers - base.arrayBuffers)} for one unread request body`);
    await (await p).text();
    await c.close().catch(() => {});
  } finally {
    await srv.close();
  }
});

test.run();
