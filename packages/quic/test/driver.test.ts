/**
 * The node:dgram driver: our client against our server over real UDP on 127.0.0.1 / ::1.
 * Handshake (both providers), a 5 MB transfer, many concurrent streams, uni streams, datagrams,
 * close codes, Retry, resumption + 0-RTT, key update, migration, failures, key log and qlog files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { nodeProvider } from '../../tls-core/src/crypto/node.js';
import { providers } from '../../../test/support/providers.js';
import { connect, listen, toNodeDuplex, type NodeQuicConnection, type QuicServer } from '../src/node/index.js';
import { RecvStream } from '../src/streams/recv.js';
import { QUIC_V1, QUIC_V2, validateServerVersionInformation } from '../src/version.js';

const cert = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1', '::1'] });
const ALPN = ['petrel-test'];

async function readAll(r: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of r) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A server that answers each bidi stream with the bytes it received, reversed in order of... no: echoed as is. */
async function echoServer(extra: Record<string, unknown> = {}, host = '127.0.0.1'): Promise<QuicServer> {
  return listen({ host, port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN, ...extra }, (c) => {
    void (async () => {
      for await (const s of c.incomingBidirectionalStreams) {
        void (async () => {
          const data = await readAll(s.readable);
          const w = s.writable.getWriter();
          await w.write(data);
          await w.close();
        })().catch(() => {});
      }
    })();
    c.on('datagram', (d: Uint8Array) => c.sendDatagram(d));
  });
}

function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

async function echo(conn: NodeQuicConnection, data: Uint8Array): Promise<Uint8Array> {
  const s = await conn.openBidirectionalStream();
  const w = s.writable.getWriter();
  const wp = w.write(data).then(() => w.close());
  const got = await readAll(s.readable);
  await wp;
  return got;
}

for (const p of providers) {
  test(`${p.name}: handshake and echo over UDP 127.0.0.1`, async () => {
    const server = await echoServer({ provider: p });
    try {
      const conn = await connect({ host: '127.0.0.1', port: server.address().port }, { provider: p, alpn: ALPN, ca: cert.certPem });
      assert.is(conn.handshake!.alpn, ALPN[0]);
      assert.ok(conn.handshake!.suite.startsWith('TLS_'));
      const data = pattern(100_000);
      assert.ok(eq(await echo(conn, data), data));
      const info = await conn.close(7, 'done');
      assert.is(info.code, 7);
      assert.is(info.application, true);
    } finally {
      await server.close();
    }
  });
}

test('5 MB transfer, 50 concurrent streams, uni streams, node:stream Duplex', async () => {
  const server = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN }, (c) => {
    void (async () => {
      for await (const s of c.incomingBidirectionalStreams) {
        void (async () => {
          const req = new TextDecoder().decode(await readAll(s.readable));
          const n = Number(req);
          const w = s.writable.getWriter();
          await w.write(pattern(n, n));
          await w.close();
        })().catch(() => {});
      }
    })();
    void (async () => {
      for await (const s of c.incomingUnidirectionalStreams) {
        const data = await readAll(s.readable);
        const u = await c.openUnidirectionalStream();
        const w = u.writable.getWriter();
        await w.write(data);
        await w.close();
      }
    })().catch(() => {});
  });
  try {
    const conn = await connect(`https://127.0.0.1:${server.address().port}/`, { alpn: ALPN, ca: cert.certPem });
    const get = async (n: number): Promise<Uint8Array> => {
      const s = await conn.openBidirectionalStream();
      const w = s.writable.getWriter();
      await w.write(new TextEncoder().encode(String(n)));
      await w.close();
      return readAll(s.readable);
    };
    const t0 = performance.now();
    const big = await get(5_000_000);
    const ms = performance.now() - t0;
    assert.ok(eq(big, pattern(5_000_000, 5_000_000)), '5 MB byte-equal');
    console.log(`  5 MB download over loopback: ${ms.toFixed(0)} ms (${((5e6 * 8) / ms / 1000).toFixed(0)} Mbit/s)`);
    const sizes = Array.from({ length: 50 }, (_, i) => 1000 + i * 997);
    const got = await Promise.all(sizes.map(get));
    for (let i = 0; i < sizes.length; i++) assert.ok(eq(got[i]!, pattern(sizes[i]!, sizes[i]!)), `stream ${i}`);
    // Uni: we send, the server echoes on its own uni stream.
    const u = await conn.openUnidirectionalStream();
    const uw = u.writable.getWriter();
    await uw.write(pattern(3000, 9));
    await uw.close();
    const it = conn.incomingUnidirectionalStreams.getReader();
    const back = await it.read();
    assert.ok(!back.done);
    assert.ok(eq(await readAll(back.value!.readable), pattern(3000, 9)));
    it.releaseLock();
    // node:stream adapter
    const d = toNodeDuplex(await conn.openBidirectionalStream());
    d.end('1234');
    const chunks: Buffer[] = [];
    for await (const c of d) chunks.push(c as Buffer);
    assert.ok(eq(new Uint8Array(Buffer.concat(chunks)), pattern(1234, 1234)));
    await conn.close();
  } finally {
    await server.close();
  }
});

test('IPv6 ::1, datagrams, peer close code seen by the server', async () => {
  let serverConn: NodeQuicConnection | null = null;
  const server = await echoServer({ maxDatagramFrameSize: 1200 }, '::1');
  server.on('connection', (c: NodeQuicConnection) => (serverConn = c));
  try {
    const conn = await connect(`https://[::1]:${server.address().port}`, { alpn: ALPN, ca: cert.certPem, maxDatagramFrameSize: 1200 });
    assert.is(conn.remote.address, '::1');
    const got: Uint8Array[] = [];
    conn.on('datagram', (d: Uint8Array) => got.push(d));
    for (let i = 0; i < 20 && got.length === 0; i++) {
      assert.ok(conn.sendDatagram(new TextEncoder().encode(`ping ${i}`)), 'datagram accepted');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(got.length > 0, 'a datagram came back');
    assert.ok(new TextDecoder().decode(got[0]!).startsWith('ping'));
    assert.is(conn.sendDatagram(new Uint8Array(5000)), false, 'too large');
    await conn.close(42, 'bye');
    const info = await serverConn!.closed;
    assert.is(info.code, 42);
    assert.is(info.remote, true);
    assert.is(info.reason, 'bye');
  } finally {
    await server.close();
  }
});

test('Retry over UDP, key update, migration; resumption with 0-RTT', async () => {
  const server = await echoServer({ retry: 'always', tls: { maxEarlyData: 0xffffffff } });
  const plain = await echoServer({ tls: { maxEarlyData: 0xffffffff } });
  try {
    const port = server.address().port;
    const c1 = await connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: cert.certPem });
    assert.is((c1.stats as { retry?: boolean } | null)?.retry, true, 'the client followed a Retry');
    assert.ok(server.endpoint.stats.retriesSent >= 1);
    assert.ok(eq(await echo(c1, pattern(1000)), pattern(1000)));
    // Key update, then traffic in both directions under the new keys.
    assert.ok(c1.updateKeys(), 'key update allowed after confirmation');
    assert.ok(eq(await echo(c1, pattern(200_000, 3)), pattern(200_000, 3)));
    assert.ok(c1.keyUpdates.local >= 1, 'local key update happened');
    // Migration to a new local port: the server follows the client to it.
    const before = server.connections[0]!.remote.port;
    assert.ok(await c1.migrate(), 'migrate');
    assert.ok(eq(await echo(c1, pattern(50_000, 4)), pattern(50_000, 4)), 'traffic after migration');
    assert.is.not(server.connections[0]!.remote.port, before, 'server sees the new path');
    await c1.close();
    // Resumption with 0-RTT (server without Retry; see the skipped test below for Retry + 0-RTT).
    const p2 = plain.address().port;
    const c2 = await connect({ host: '127.0.0.1', port: p2 }, { alpn: ALPN, ca: cert.certPem });
    for (let i = 0; i < 100 && !c2.sessionTicket; i++) await new Promise((r) => setTimeout(r, 10));
    const ticket = c2.sessionTicket;
    assert.ok(ticket, 'session ticket received');
    await c2.close();
    // The request goes out before the handshake completes.
    const c3 = await connect({ host: '127.0.0.1', port: p2 }, { alpn: ALPN, ca: cert.certPem, session: ticket!, earlyData: true, early: true });
    const got = await echo(c3, pattern(500, 5));
    await c3.ready;
    assert.ok(eq(got, pattern(500, 5)));
    assert.is(c3.handshake!.resumed, true, 'resumed');
    assert.is(c3.earlyDataAccepted, true, '0-RTT accepted');
    await c3.close();
  } finally {
    await server.close();
    await plain.close();
  }
});

/* Retry + 0-RTT (was a connection.ts bug, fixed in 5f63993): the 0-RTT request is answered. */
test('Retry + 0-RTT: the 0-RTT request is answered', async () => {
  const server = await echoServer({ retry: 'always', tls: { maxEarlyData: 0xffffffff } });
  try {
    const port = server.address().port;
    const c1 = await connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: cert.certPem });
    for (let i = 0; i < 100 && !c1.sessionTicket; i++) await new Promise((r) => setTimeout(r, 10));
    await c1.close();
    const c2 = await connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: cert.certPem, session: c1.sessionTicket!, earlyData: true, early: true });
    const got = await Promise.race([echo(c2, pattern(500, 5)), new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    assert.ok(got && eq(got, pattern(500, 5)), '0-RTT request answered after Retry');
    await c2.close();
  } finally {
    await server.close();
  }
});

test('failures reject clearly: unknown CA, nothing listening (timeout)', async () => {
  const other = generateSelfSigned({ provider: nodeProvider, names: ['localhost'] });
  const server = await echoServer();
  try {
    const port = server.address().port;
    let err = null as Error | null;
    await connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: other.certPem }).catch((e: Error) => (err = e));
    assert.ok(err, 'rejected');
    assert.match(err!.message, /handshake failed/);
    err = null;
    await connect({ host: '127.0.0.1', port }, { alpn: ['nope'], ca: cert.certPem }).catch((e: Error) => (err = e));
    assert.ok(err, 'ALPN mismatch rejected');
  } finally {
    await server.close();
  }
  let err = null as Error | null;
  const t0 = Date.now();
  await connect({ host: '127.0.0.1', port: 9 }, { alpn: ALPN, ca: cert.certPem, handshakeTimeoutMs: 500 }).catch((e: Error) => (err = e));
  assert.ok(err);
  assert.match(err!.message, /timed out|failed/);
  assert.ok(Date.now() - t0 < 3000);
});

test('20 concurrent clients on one server socket; maxConnections refuses with CONNECTION_REFUSED', async () => {
  const server = await echoServer({ maxConnections: 20 });
  try {
    const port = server.address().port;
    const conns = await Promise.all(Array.from({ length: 20 }, () => connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: cert.certPem })));
    const got = await Promise.all(conns.map((c, i) => echo(c, pattern(20_000 + i, i))));
    for (let i = 0; i < got.length; i++) assert.ok(eq(got[i]!, pattern(20_000 + i, i)), `client ${i}`);
    assert.is(server.endpoint.connectionCount, 20);
    let err = null as Error | null;
    await connect({ host: '127.0.0.1', port }, { alpn: ALPN, ca: cert.certPem, handshakeTimeoutMs: 3000 }).catch((e: Error) => (err = e));
    assert.ok(err, 'the 21st is refused');
    assert.match(err!.message, /0x2\b|refused|busy/i);
    assert.ok(server.endpoint.stats.refused >= 1);
    await Promise.all(conns.map((c) => c.close()));
  } finally {
    await server.close();
  }
});

test('SSLKEYLOGFILE and QLOGDIR outputs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-driver-'));
  try {
    const keyLogFile = path.join(dir, 'keys.log');
    const qlogDir = path.join(dir, 'qlog');
    const server = await echoServer({ keyLogFile, qlogDir });
    const conn = await connect({ host: '127.0.0.1', port: server.address().port }, { alpn: ALPN, ca: cert.certPem, keyLogFile, qlogDir });
    assert.ok(eq(await echo(conn, pattern(3000)), pattern(3000)));
    await conn.close();
    await server.close();
    const keys = fs.readFileSync(keyLogFile, 'utf8');
    assert.match(keys, /CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]+/);
    assert.match(keys, /SERVER_TRAFFIC_SECRET_0 /);
    const files = fs.readdirSync(qlogDir);
    assert.ok(files.some((f) => f.endsWith('_server.sqlog')), `server qlog in ${files}`);
    assert.ok(files.some((f) => f.endsWith('_client.sqlog')), `client qlog in ${files}`);
    // Both named by the same Original Destination Connection ID.
    const odcids = files.map((f) => f.split('_')[0]!);
    assert.ok(odcids.every((x) => /^[0-9a-f]{16,40}$/.test(x)) && new Set(odcids).size === 1, `ODCID names: ${files}`);
    for (const f of files) {
      const recs = fs.readFileSync(path.join(qlogDir, f), 'utf8').split('\x1e').filter(Boolean);
      const head = JSON.parse(recs[0]!);
      assert.is(head.qlog_version, '0.3');
      assert.is(head.qlog_format, 'JSON-SEQ');
      assert.ok(recs.length > 3, 'events follow the header');
      for (const r of recs) JSON.parse(r);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/* A FIN after all data was read (was a streams/recv.ts bug found in interop with quic-go, fixed in e77b8c3). */
test('RecvStream: FIN after all data was read is delivered', () => {
  const s = new RecvStream(0, { window: 1000 });
  s.onStreamFrame(0, new Uint8Array(10), false);
  assert.is(s.read()?.length, 10);
  s.onStreamFrame(10, new Uint8Array(0), true);
  s.read();
  assert.is(s.isFinished, true, 'the FIN is seen by the reader');
});

/*
 * BUG in packages/quic/src/version.ts validateServerVersionInformation (owner: quic-packet), found
 * with quic-go (which predates RFC 9368): a client that reacted to Version Negotiation and moved to
 * QUIC v1 closes with VERSION_NEGOTIATION_ERROR when the server sends no version_information.
 * RFC 9368 §8 "Special Handling for QUIC Version 1": the client SHALL proceed as if the server had
 * sent Chosen Version 1 and Available Versions [1].
 */
test('RFC 9368 §8: v1 after VN without server version_information is accepted', () => {
  validateServerVersionInformation(null, QUIC_V1, [QUIC_V1, QUIC_V2], true);
});

test('exportKeyingMaterial: node:tls argument order, equal on both ends over UDP', async () => {
  const seen: NodeQuicConnection[] = [];
  const srv = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN }, (c) => void seen.push(c));
  try {
    const c = await connect(`https://127.0.0.1:${srv.address().port}`, { alpn: ALPN, ca: cert.certPem });
    for (let i = 0; i < 100 && !seen[0]?.handshake; i++) await new Promise((r) => setTimeout(r, 10));
    const serverConn = seen[0];
    assert.ok(serverConn?.handshake, 'server handshake complete');
    const a = c.exportKeyingMaterial(40, 'EXPORTER-petrel', new TextEncoder().encode('ctx'));
    assert.ok(Buffer.isBuffer(a) && a.length === 40);
    assert.is(serverConn!.exportKeyingMaterial(40, 'EXPORTER-petrel', new TextEncoder().encode('ctx')).toString('hex'), a.toString('hex'));
    assert.is.not(c.exportKeyingMaterial(40, 'EXPORTER-other').toString('hex'), a.toString('hex'));
    await c.close();
  } finally {
    await srv.close();
  }
});

test.run();
