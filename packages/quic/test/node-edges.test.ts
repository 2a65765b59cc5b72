/**
 * The application-facing edges of the QUIC node driver: callbacks and listeners that throw,
 * streams used after the connection closed, cancelled or stopped midway, close() twice, a port in
 * use. Nothing may escape to the process (unhandled rejection / uncaught exception), the server
 * keeps serving, and every pending promise settles.
 */
import dgram from 'node:dgram';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { nodeProvider } from '../../tls-core/src/crypto/node.js';
import { connect, listen, QuicStreamError, type NodeQuicConnection, type QuicServer } from '../src/node/index.js';
import { Connection } from '../src/connection.js';
import type { ConnectionFactory } from '../src/endpoint.js';
import type { Address } from '../src/api.js';
import type { ClientConnectionConfig, ConnectionHost, ServerConnectionParams, ServerTransportConfig } from '../src/config.js';
import { t, tick, warnings, within } from '../../../test/support/escape-guard.js';

const cert = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1'] });
const ALPN = ['petrel-edges'];

async function settleError(p: Promise<unknown>, ms = 3000): Promise<unknown> {
  try {
    await within(ms, p, 'settlement');
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('no settlement')) throw e;
    return e;
  }
  return assert.unreachable('expected a rejection');
}

const server = (onConn?: (c: NodeQuicConnection) => void, extra: Record<string, unknown> = {}): Promise<QuicServer> =>
  listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN, ...extra }, onConn);
const client = (s: QuicServer, extra: Record<string, unknown> = {}): Promise<NodeQuicConnection> =>
  connect({ host: '127.0.0.1', port: s.address().port }, { alpn: ALPN, insecureSkipVerify: true, handshakeTimeoutMs: 3000, ...extra });

t('a throwing onConnection callback or "connection" listener does not kill the server; reported as "error"', async () => {
  let n = 0;
  const s = await server(() => {
    if (++n === 1) throw new Error('onConnection bug');
  });
  const errors: unknown[] = [];
  s.on('error', (e) => errors.push(e));
  let m = 0;
  s.on('connection', () => {
    if (++m === 2) throw new Error('listener bug');
  });
  try {
    for (let i = 0; i < 3; i++) {
      const c = await within(5000, client(s), `connection ${i}`);
      await c.close();
    }
    assert.is(n, 3);
    assert.is(m, 3);
    assert.equal(
      errors.map((e) => (e as Error).message),
      ['onConnection bug', 'listener bug'],
    );
  } finally {
    await s.close();
  }
});

t('without an "error" listener a throwing callback becomes a process warning, not a crash', async () => {
  warnings.length = 0;
  const s = await server(() => {
    throw new Error('unobserved bug');
  });
  try {
    const c = await within(5000, client(s));
    c.on('handshakeConfirmed', () => {
      throw new Error('client listener bug');
    });
    await tick(100);
    const c2 = await within(5000, client(s));
    await c.close();
    await c2.close();
    assert.ok(warnings.some((w) => /unobserved bug/.test(w.message)), warnings.map((w) => w.message).join('; '));
    assert.ok(warnings.some((w) => /handshakeConfirmed' listener .* client listener bug/.test(w.message)), warnings.map((w) => w.message).join('; '));
  } finally {
    await s.close();
  }
});

t('writes after the connection closed reject with QuicStreamError; close() twice; cancel after close', async () => {
  const s = await server();
  try {
    const c = await within(5000, client(s));
    const st = await c.openBidirectionalStream();
    const w = st.writable.getWriter();
    await w.write(new Uint8Array(10));
    const r = st.readable.getReader();
    const pendingRead = r.read();
    const a = c.close(5, 'done');
    const b = c.close(6, 'again');
    const [i1, i2] = await within(3000, Promise.all([a, b]));
    assert.is(i1, i2);
    assert.is(i1.code, 5);
    const readErr = await settleError(pendingRead);
    assert.instance(readErr, QuicStreamError);
    assert.is((readErr as QuicStreamError).kind, 'closed');
    const writeErr = await settleError(w.write(new Uint8Array(10)));
    assert.instance(writeErr, QuicStreamError);
    await settleError(w.close());
    // cancel() on an errored stream settles (with the stream's error, as Web Streams do).
    await within(1000, r.cancel().catch(() => {}));
    await settleError(c.openBidirectionalStream());
  } finally {
    await s.close();
  }
});

t('a pending write blocked on flow control rejects when the peer stops the stream (reader.cancel)', async () => {
  let serverConn: NodeQuicConnection | null = null;
  const s = await server(
    (c) => {
      serverConn = c;
      void (async () => {
        for await (const st of c.incomingBidirectionalStreams) {
          const r = st.readable.getReader();
          await r.read();
          await tick(50);
          await r.cancel(7); // STOP_SENDING with code 7
        }
      })().catch(() => {});
    },
    { streamWindow: 64 * 1024, maxStreamWindow: 64 * 1024, connectionWindow: 1 << 20 },
  );
  try {
    const c = await within(5000, client(s));
    const st = await c.openBidirectionalStream();
    const w = st.writable.getWriter();
    // Far more than the peer's stream window: the write stays pending until the peer stops us.
    const err = await settleError(w.write(new Uint8Array(2_000_000)), 5000);
    assert.instance(err, QuicStreamError);
    assert.is((err as QuicStreamError).kind, 'stopped');
    assert.is((err as QuicStreamError).code, 7);
    // The connection stays usable.
    const st2 = await c.openBidirectionalStream();
    const w2 = st2.writable.getWriter();
    await within(2000, w2.write(new Uint8Array(5)));
    assert.ok(serverConn);
    await c.close();
  } finally {
    await s.close();
  }
});

t('listen on a port in use rejects with a clear error; the socket is not leaked', async () => {
  const busy = dgram.createSocket('udp4');
  await new Promise<void>((r) => busy.bind(0, '127.0.0.1', () => r()));
  const port = busy.address().port;
  try {
    const err = await settleError(listen({ host: '127.0.0.1', port, cert: cert.certPem, key: cert.keyPem, alpn: ALPN }));
    assert.instance(err, Error);
    assert.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
    assert.match((err as Error).message, String(port));
  } finally {
    busy.close();
  }
});

t('connect to a port where nobody listens rejects within the handshake timeout', async () => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  const port = probe.address().port;
  probe.close();
  const t0 = Date.now();
  const err = await settleError(connect({ host: '127.0.0.1', port }, { alpn: ALPN, insecureSkipVerify: true, handshakeTimeoutMs: 800 }), 5000);
  assert.instance(err, Error);
  assert.match((err as Error).message, /timed out|handshake/);
  assert.match((err as Error).message, String(port));
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
});

t('a throwing key log callback (tls.keyLog) does not fail the handshake on either side', async () => {
  const bad = (): void => {
    throw new Error('keyLog bug');
  };
  const s = await server(undefined, { tls: { keyLog: bad } });
  try {
    const c = await within(5000, client(s, { tls: { keyLog: bad } }));
    const st = await c.openBidirectionalStream();
    const w = st.writable.getWriter();
    await within(2000, w.write(new Uint8Array(3)));
    assert.ok(c.handshake);
    await c.close();
  } finally {
    await s.close();
  }
});

t('QuicServer.close() twice resolves both times', async () => {
  const s = await server();
  const c = await within(5000, client(s));
  await within(3000, Promise.all([s.close(), s.close()]));
  await within(3000, c.closed);
});

t('connect({ signal }): an abort during the handshake rejects at once with the reason', async () => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = connect({ host: '127.0.0.1', port: silent.address().port }, { alpn: ALPN, insecureSkipVerify: true, handshakeTimeoutMs: 5000, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const err = await settleError(p, 2000);
    assert.is((err as Error).name, 'AbortError');
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    const pre = new AbortController();
    pre.abort();
    assert.is(((await settleError(connect({ host: '127.0.0.1', port: 1 }, { alpn: ALPN, signal: pre.signal }))) as Error).name, 'AbortError');
  } finally {
    silent.close();
  }
});

t('stream writes: a string chunk is a TypeError (not silently nothing); DataView and ArrayBuffer chunks carry their bytes', async () => {
  const s = await server((c) => {
    void (async () => {
      for await (const st of c.incomingBidirectionalStreams) {
        void (async () => {
          const parts: number[] = [];
          for await (const chunk of st.readable) parts.push(...chunk);
          const w = st.writable.getWriter();
          await w.write(Uint8Array.from(parts));
          await w.close();
        })().catch(() => {});
      }
    })();
  });
  try {
    const c = await within(5000, client(s));
    const st = await c.openBidirectionalStream();
    const w = st.writable.getWriter();
    const err = await settleError(w.write('hello' as unknown as Uint8Array));
    assert.instance(err, TypeError);
    assert.match((err as Error).message, /TextEncoder/);
    const st2 = await c.openBidirectionalStream();
    const w2 = st2.writable.getWriter();
    const buf = Uint8Array.of(9, 1, 2, 3, 4, 9);
    await w2.write(new DataView(buf.buffer, 1, 4) as unknown as Uint8Array);
    await w2.write(Uint8Array.of(5, 6).buffer as unknown as Uint8Array);
    await w2.close();
    const got: number[] = [];
    for await (const chunk of st2.readable) got.push(...chunk);
    assert.equal(got, [1, 2, 3, 4, 5, 6]);
    await c.close();
  } finally {
    await s.close();
  }
});

t('a peer that resets its sending side (writer.abort) errors our pending read with kind "reset" and its code', async () => {
  const s = await server((c) => {
    void (async () => {
      for await (const st of c.incomingBidirectionalStreams) {
        const w = st.writable.getWriter();
        await w.write(Uint8Array.of(1, 2, 3));
        await tick(30);
        await w.abort(9).catch(() => {}); // RESET_STREAM with code 9
      }
    })().catch(() => {});
  });
  try {
    const c = await within(5000, client(s));
    const st = await c.openBidirectionalStream();
    const w = st.writable.getWriter();
    await w.write(Uint8Array.of(0));
    const r = st.readable.getReader();
    const err = await settleError(
      (async () => {
        for (;;) if ((await r.read()).done) return;
      })(),
    );
    assert.instance(err, QuicStreamError);
    assert.is((err as QuicStreamError).kind, 'reset');
    assert.is((err as QuicStreamError).code, 9);
    // Our sending side is still ours: the write direction is independent of the peer's reset.
    await within(2000, w.write(Uint8Array.of(1)));
    await c.close();
  } finally {
    await s.close();
  }
});

t('a connection that throws out of pollEvent (a bug) is closed alone; the server process and its other connections go on', async () => {
  let made = 0;
  const factory: ConnectionFactory = {
    client: (cfg: ClientConnectionConfig, remote: Address, host: ConnectionHost, now: number) => Connection.client(cfg, remote, host, now),
    server: (cfg: ServerTransportConfig, params: ServerConnectionParams, host: ConnectionHost, now: number) => {
      const inner = Connection.server(cfg, params, host, now);
      if (++made !== 1) return inner;
      // The first connection breaks as soon as a stream is opened to it.
      return new Proxy(inner, {
        get(target, prop) {
          if (prop === 'pollEvent')
            return () => {
              const e = target.pollEvent();
              if (e?.type === 'streamOpened') throw new Error('injected bug');
              return e;
            };
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
  const internal: unknown[] = [];
  const s = await server((c) => {
    c.on('internalError', (e) => internal.push(e));
    void (async () => {
      for await (const st of c.incomingBidirectionalStreams) {
        const w = st.writable.getWriter();
        await w.write(Uint8Array.of(42));
        await w.close();
      }
    })().catch(() => {});
  }, { factory });
  try {
    const bad = await within(5000, client(s));
    const st = await bad.openBidirectionalStream();
    await st.writable.getWriter().write(Uint8Array.of(1));
    const info = await within(3000, bad.closed, 'close of the broken connection');
    assert.ok(info.remote);
    assert.match(info.reason, /internal error: injected bug/);
    assert.is(internal.length, 1);
    const good = await within(5000, client(s));
    const st2 = await good.openBidirectionalStream();
    await st2.writable.getWriter().write(Uint8Array.of(1));
    const r = await within(3000, st2.readable.getReader().read());
    assert.equal([...r.value!], [42]);
    await good.close();
  } finally {
    await s.close();
  }
});

test.run();
