// The application-facing edges of the HTTP/3 web API: whatever a handler or a fetch caller does
// (throws, rejects, returns garbage, aborts, errors or abandons streams), the other side sees a 500
// or a stream reset, the connection keeps serving, and nothing escapes as an unhandled rejection
// or uncaught exception (DEVELOPERS.md: no exception escapes a public entry point).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectInMemory } from '../src/memory-session.js';
import { H3Connection, type H3Event } from '../src/connection.js';
import { memoryTransportPair } from '../src/memory-transport.js';
import { driveMemoryTransport } from '../src/memory-session.js';
import { H3ClientSession } from '../src/web.js';
import dgram from 'node:dgram';
import { connectH3, serve, H3Agent } from '../src/node.js';
import { connect as quicConnect } from '../../quic/src/node/index.js';
import { makeCert } from '../../../test/support/certs.js';
import { t, tick, within } from '../../../test/support/escape-guard.js';

async function rejects(p: Promise<unknown>, check: (e: unknown) => void, ms = 2000): Promise<void> {
  try {
    await within(ms, p, 'settlement');
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('no settlement')) throw e;
    check(e);
    return;
  }
  assert.unreachable('expected a rejection');
}
async function stillServes(fetch: (u: string) => Promise<Response>): Promise<void> {
  const res = await within(2000, fetch('https://example.com/ok'));
  assert.is(res.status, 200);
  assert.is(await res.text(), 'ok');
}

// ---- server: handler misbehaviour ------------------------------------------------------------

t('server: handler throws synchronously, rejects, returns a non-Response → 500, keeps serving', async () => {
  const errors: unknown[] = [];
  const h3 = connectInMemory(
    ((req: Request) => {
      const p = new URL(req.url).pathname;
      if (p === '/sync') throw new Error('sync bug');
      if (p === '/reject') return Promise.reject(new Error('async bug'));
      if (p === '/string') return 'not a response' as unknown as Response;
      if (p === '/undefined') return Promise.resolve(undefined as unknown as Response);
      if (p === '/null') return null as unknown as Response;
      return new Response('ok');
    }) as (r: Request) => Response,
    { onError: (e) => errors.push(e) },
  );
  for (const p of ['/sync', '/reject', '/string', '/undefined', '/null']) {
    const res = await within(2000, h3.fetch(`https://example.com${p}`), `response to ${p}`);
    assert.is(res.status, 500, p);
    await res.arrayBuffer();
  }
  assert.is(errors.length, 5);
  assert.ok(errors.slice(2).every((e) => e instanceof TypeError && /Response/.test(e.message)), String(errors[2]));
  await stillServes(h3.fetch);
  await tick();
  assert.is(h3.serverSession.activeRequests, 0);
});

t('server: an onError callback that throws does not escape', async () => {
  const h3 = connectInMemory(
    (req) => {
      if (new URL(req.url).pathname === '/ok') return new Response('ok');
      throw new Error('handler bug');
    },
    {
      onError: () => {
        throw new Error('onError bug');
      },
    },
  );
  const res = await within(2000, h3.fetch('https://example.com/x'));
  assert.is(res.status, 500);
  await stillServes(h3.fetch);
});

t('server: a response body that errors midway resets the stream (H3_INTERNAL_ERROR), connection keeps serving', async () => {
  const h3 = connectInMemory((req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    let n = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (n++ < 3) c.enqueue(new Uint8Array(1000));
          else c.error(new Error('disk on fire'));
        },
      }),
    );
  });
  const res = await h3.fetch('https://example.com/bad');
  assert.is(res.status, 200);
  await rejects(res.arrayBuffer(), (e) => assert.instance(e, TypeError));
  assert.ok(h3.transports.server.log.some((l) => l.op === 'reset' && l.code === 0x102), JSON.stringify(h3.transports.server.log));
  await stillServes(h3.fetch);
});

t('server: a Response whose body is locked (already being read) → 500 and onError, no unhandled rejection', async () => {
  const errors: unknown[] = [];
  const h3 = connectInMemory(
    (req) => {
      if (new URL(req.url).pathname === '/ok') return new Response('ok');
      const r = new Response('body someone else reads');
      r.body!.getReader();
      return r;
    },
    { onError: (e) => errors.push(e) },
  );
  const res = await within(2000, h3.fetch('https://example.com/locked'));
  assert.is(res.status, 500);
  await res.arrayBuffer();
  assert.is(errors.length, 1);
  assert.match(String(errors[0]), /locked/);
  await tick();
  assert.is(h3.serverSession.activeRequests, 0);
  await stillServes(h3.fetch);
});

t('server: a client that resets the request aborts req.signal and cancels a response body that never ends', async () => {
  let signal = null as AbortSignal | null;
  let cancelled: unknown = null;
  const h3 = connectInMemory((req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    signal = req.signal;
    // An event stream that has nothing to say yet: the read never resolves by itself.
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('data: hello\n\n'));
        },
        pull: () => new Promise<void>(() => {}),
        cancel(reason) {
          cancelled = reason ?? 'cancelled';
        },
      }),
    );
  });
  const res = await h3.fetch('https://example.com/events');
  const reader = res.body!.getReader();
  assert.ok((await reader.read()).value);
  await reader.cancel();
  await tick();
  assert.ok(signal, 'handler ran');
  assert.ok(signal!.aborted, 'req.signal aborted after the client reset the stream');
  assert.ok(cancelled !== null, 'the response body stream was cancelled');
  await tick();
  assert.is(h3.serverSession.activeRequests, 0);
  await stillServes(h3.fetch);
});

t('server: a client that aborts while the handler runs aborts req.signal; the late response is dropped', async () => {
  let signal = null as AbortSignal | null;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const h3 = connectInMemory(async (req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    signal = req.signal;
    await released;
    return new Response('too late');
  });
  const ac = new AbortController();
  const p = h3.fetch('https://example.com/slow', { signal: ac.signal });
  await tick();
  ac.abort();
  await rejects(p, (e) => assert.is((e as Error).name, 'AbortError'));
  await tick();
  assert.ok(signal!.aborted, 'req.signal aborted');
  release();
  await tick();
  assert.is(h3.serverSession.activeRequests, 0);
  await stillServes(h3.fetch);
});

t('server: connection closed while handlers run aborts their signals', async () => {
  const signals: AbortSignal[] = [];
  const h3 = connectInMemory((req) => {
    signals.push(req.signal);
    return new Promise<Response>(() => {});
  });
  const p1 = h3.fetch('https://example.com/a');
  const p2 = h3.fetch('https://example.com/b', { method: 'POST', body: 'x' });
  await tick();
  h3.client.close(0x100, 'bye');
  await rejects(p1, (e) => assert.instance(e, TypeError));
  await rejects(p2, (e) => assert.instance(e, TypeError));
  await tick();
  assert.is(signals.length, 2);
  assert.ok(signals.every((s) => s.aborted));
});

t('server: a request body larger than the handler reads; the response still arrives, the stream is released', async () => {
  const h3 = connectInMemory(async (req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    const r = req.body!.getReader();
    await r.read(); // one chunk, then answer
    r.releaseLock();
    return new Response('read a little');
  });
  const big = new Uint8Array(2_000_000);
  const res = await within(5000, h3.fetch('https://example.com/up', { method: 'POST', body: big }));
  assert.is(await res.text(), 'read a little');
  await tick(50);
  assert.is(h3.serverSession.activeRequests, 0);
  await stillServes(h3.fetch);
});

// ---- client: fetch edges -----------------------------------------------------------------------

t('client: abort before sending rejects with AbortError and sends nothing', async () => {
  let calls = 0;
  const h3 = connectInMemory(() => {
    calls++;
    return new Response('ok');
  });
  const ac = new AbortController();
  ac.abort();
  await rejects(h3.fetch('https://example.com/x', { signal: ac.signal }), (e) => assert.is((e as Error).name, 'AbortError'));
  await tick();
  assert.is(calls, 0);
  await stillServes(h3.fetch);
});

t('client: abort while the body streams errors the body with AbortError, resets the stream', async () => {
  const h3 = connectInMemory((req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    return new Response(new ReadableStream({ pull: (c) => tick(2).then(() => c.enqueue(new Uint8Array(100))) }));
  });
  const ac = new AbortController();
  const res = await h3.fetch('https://example.com/stream', { signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read();
  ac.abort();
  await rejects(
    (async () => {
      for (;;) if ((await reader.read()).done) return;
    })(),
    (e) => assert.is((e as Error).name, 'AbortError'),
  );
  await tick();
  assert.is(h3.client.activeRequests, 0);
  assert.is(h3.serverSession.activeRequests, 0);
  await stillServes(h3.fetch);
});

t('client: abort, or STOP_SENDING from the server, while a request body is uploading cancels the body source', async () => {
  const h3 = connectInMemory(async (req) => {
    const p = new URL(req.url).pathname;
    if (p === '/ok') return new Response('ok');
    if (p === '/early') {
      await req.body!.cancel(); // STOP_SENDING: the rest of the upload is not wanted
      return new Response('early');
    }
    await req.arrayBuffer().catch(() => {});
    return new Response('done');
  });
  const source = (onCancel: (r: unknown) => void): ReadableStream<Uint8Array> =>
    new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new Uint8Array(10)),
      pull: () => new Promise<void>(() => {}), // the next chunk never comes
      cancel: onCancel,
    });
  let cancelled: unknown = null;
  const ac = new AbortController();
  const p = h3.fetch('https://example.com/up', { method: 'POST', body: source((r) => (cancelled = r ?? 'cancelled')), duplex: 'half', signal: ac.signal } as RequestInit);
  await tick();
  ac.abort();
  await rejects(p, (e) => assert.is((e as Error).name, 'AbortError'));
  await tick();
  assert.ok(cancelled !== null, 'request body source cancelled after abort');
  cancelled = null;
  const res = await within(2000, h3.fetch('https://example.com/early', { method: 'POST', body: source((r) => (cancelled = r ?? 'cancelled')), duplex: 'half' } as RequestInit));
  assert.is(await res.text(), 'early');
  await tick();
  assert.ok(cancelled !== null, 'request body source cancelled after STOP_SENDING');
  await stillServes(h3.fetch);
});

t('client: a request body stream that errors rejects the fetch (no hang), connection stays usable', async () => {
  let handlerSaw: unknown = null;
  const h3 = connectInMemory(async (req) => {
    if (new URL(req.url).pathname === '/ok') return new Response('ok');
    try {
      await req.arrayBuffer();
    } catch (e) {
      handlerSaw = e;
    }
    return new Response('unreachable');
  });
  let n = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (n++ < 2) c.enqueue(new Uint8Array(100));
      else c.error(new Error('upload source failed'));
    },
  });
  await rejects(h3.fetch('https://example.com/up', { method: 'POST', body, duplex: 'half' } as RequestInit), (e) => {
    assert.instance(e, TypeError);
    assert.is(((e as TypeError).cause as Error)?.message, 'upload source failed');
  });
  await tick();
  assert.ok(handlerSaw instanceof Error, 'the handler saw its request body fail');
  assert.is(h3.client.activeRequests, 0);
  await stillServes(h3.fetch);
});

t('client: server closes the connection mid-body → the body errors with TypeError (no hang)', async () => {
  let h3!: ReturnType<typeof connectInMemory>;
  h3 = connectInMemory(() => {
    let n = 0;
    return new Response(
      new ReadableStream({
        pull: (c) =>
          tick(2).then(() => {
            if (n++ === 3) h3.server.close(0x102, 'going down');
            c.enqueue(new Uint8Array(100));
          }),
      }),
    );
  });
  const res = await h3.fetch('https://example.com/x');
  await rejects(res.arrayBuffer(), (e) => assert.instance(e, TypeError));
});

t('client: malformed response headers → fetch rejects with TypeError; other requests unaffected', async () => {
  const t = memoryTransportPair();
  const client = new H3Connection(t.client);
  const server = new H3Connection(t.server);
  const session = new H3ClientSession(client);
  driveMemoryTransport(t.client, client, (evs) => session.handleEvents(evs));
  driveMemoryTransport(t.server, server, (evs: H3Event[]) => {
    for (const ev of evs) {
      if (ev.type !== 'headers') continue;
      const path = ev.headers.find(([n]) => n === ':path')![1];
      if (path === '/nostatus') server.sendHeaders(ev.streamId, [['content-type', 'text/plain']], true);
      else if (path === '/badstatus') server.sendHeaders(ev.streamId, [[':status', 'abc']], true);
      else if (path === '/upper') server.sendHeaders(ev.streamId, [[':status', '200'], ['X-Upper', 'v']], true);
      else if (path === '/700') server.sendHeaders(ev.streamId, [[':status', '700']], true); // outside 100..599 (RFC 9110 §15)
      else server.sendHeaders(ev.streamId, [[':status', '200']], true);
    }
  });
  for (const p of ['/nostatus', '/badstatus', '/upper', '/700']) {
    await rejects(session.fetch(`https://example.com${p}`), (e) => assert.instance(e, TypeError, p));
  }
  await tick();
  assert.is(client.activeRequests, 0);
  const ok = await within(2000, session.fetch('https://example.com/fine'));
  assert.is(ok.status, 200);
});

// ---- over UDP: serve() / connectH3() -------------------------------------------------------------

const ca = makeCert({ keyType: 'ec-p256', ca: true, cn: 'edges CA' });
const leaf = makeCert({ keyType: 'ec-p256', sans: ['localhost', '127.0.0.1'], issuer: ca });

t('serve/connectH3 over UDP: bad handlers → 500, reset mid-body cancels the body and aborts req.signal, client close while streaming', async () => {
  let signal = null as AbortSignal | null;
  let cancelled = false;
  const server = await serve({ port: 0, host: '127.0.0.1', cert: leaf.certPem, key: leaf.keyPem, onError: () => {} }, (req) => {
    const p = new URL(req.url).pathname;
    if (p === '/throw') throw new Error('bug');
    if (p === '/garbage') return 42 as unknown as Response;
    if (p === '/stream') {
      signal = req.signal;
      return new Response(
        new ReadableStream<Uint8Array>({
          start: (c) => c.enqueue(new Uint8Array(10)),
          pull: () => new Promise<void>(() => {}),
          cancel: () => void (cancelled = true),
        }),
      );
    }
    return new Response('ok');
  });
  const port = server.address().port;
  try {
    const client = await connectH3({ host: '127.0.0.1', port }, { ca: ca.certPem, serverName: 'localhost' });
    const url = (p: string): string => `https://localhost:${port}${p}`;
    assert.is((await within(5000, client.fetch(url('/throw')))).status, 500);
    assert.is((await within(5000, client.fetch(url('/garbage')))).status, 500);
    const res = await within(5000, client.fetch(url('/stream')));
    const reader = res.body!.getReader();
    await within(5000, reader.read());
    await reader.cancel();
    for (let i = 0; i < 100 && !(cancelled && signal?.aborted); i++) await tick(10);
    assert.ok(cancelled, 'response body cancelled on the server');
    assert.ok(signal!.aborted, 'req.signal aborted on the server');
    const ok = await within(5000, client.fetch(url('/ok')));
    assert.is(await ok.text(), 'ok');
    // The client goes away while a body streams: the server's stream is cancelled again.
    cancelled = false;
    const res2 = await within(5000, client.fetch(url('/stream')));
    await within(5000, res2.body!.getReader().read());
    await client.close();
    for (let i = 0; i < 100 && !cancelled; i++) await tick(10);
    assert.ok(cancelled, 'response body cancelled when the client closed the connection');
    // The server still accepts new connections.
    const c2 = await connectH3({ host: '127.0.0.1', port }, { ca: ca.certPem, serverName: 'localhost' });
    assert.is(await (await within(5000, c2.fetch(url('/ok')))).text(), 'ok');
    await c2.close();
  } finally {
    await server.close();
  }
});

t('serve/connectH3: close() twice, close after the server went away, fetch on a closed client rejects with TypeError', async () => {
  const server = await serve({ port: 0, host: '127.0.0.1', cert: leaf.certPem, key: leaf.keyPem }, () => new Response('ok'));
  const port = server.address().port;
  const opts = { ca: ca.certPem, serverName: 'localhost' };
  const c1 = await connectH3({ host: '127.0.0.1', port }, opts);
  await within(3000, Promise.all([c1.close(), c1.close()]), 'double close');
  await within(3000, c1.close(), 'third close');
  assert.not.ok(c1.usable);
  await rejects(c1.fetch(`https://localhost:${port}/`), (e) => assert.instance(e, TypeError));
  const c2 = await connectH3({ host: '127.0.0.1', port }, opts);
  assert.is(await (await within(3000, c2.fetch(`https://localhost:${port}/`))).text(), 'ok');
  await within(5000, Promise.all([server.close(), server.close()]), 'server double close');
  await within(3000, c2.quic.closed);
  assert.not.ok(c2.usable);
  await within(3000, c2.close(), 'close after the server closed');
  await rejects(c2.fetch(`https://localhost:${port}/`), (e) => assert.instance(e, TypeError));
});

t('a peer that allows fewer than 3 unidirectional streams: the connection is closed (H3_GENERAL_PROTOCOL_ERROR), no crash, the server keeps serving', async () => {
  const server = await serve({ port: 0, host: '127.0.0.1', cert: leaf.certPem, key: leaf.keyPem }, () => new Response('ok'));
  const port = server.address().port;
  const opts = { ca: ca.certPem, serverName: 'localhost' };
  try {
    // A client that grants the server only 2 unidirectional streams: the server's HTTP/3 layer cannot start.
    const q = await quicConnect({ host: '127.0.0.1', port }, { ...opts, alpn: ['h3'], maxStreamsUni: 2 });
    const info = await within(3000, q.closed, 'close of the connection');
    assert.is(info.code, 0x101);
    assert.ok(info.remote);
    assert.match(info.reason, /control streams/);
    const c = await connectH3({ host: '127.0.0.1', port }, opts);
    assert.is(await (await within(3000, c.fetch(`https://localhost:${port}/`))).text(), 'ok');
    await c.close();
  } finally {
    await server.close();
  }
  // Our client against a server that grants only 2: connectH3 rejects and says why.
  const stingy = await serve({ port: 0, host: '127.0.0.1', cert: leaf.certPem, key: leaf.keyPem, maxStreamsUni: 2 }, () => new Response('ok'));
  try {
    await rejects(connectH3({ host: '127.0.0.1', port: stingy.address().port }, opts), (e) => assert.match((e as Error).message, /HTTP\/3 could not start.*control streams/), 5000);
  } finally {
    await stingy.close();
  }
});

t('H3Agent fetch: aborted before → no connection attempt; abort while connecting rejects at once with AbortError', async () => {
  const silent = dgram.createSocket('udp4'); // receives the Initials, never answers
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  const port = silent.address().port;
  const agent = new H3Agent({ insecure: true, connect: { handshakeTimeoutMs: 5000 } });
  try {
    const ac = new AbortController();
    ac.abort();
    await rejects(agent.fetch(`https://127.0.0.1:${port}/`, { signal: ac.signal }), (e) => assert.is((e as Error).name, 'AbortError'));
    assert.is(agent.connectionsOpened, 0);
    const ac2 = new AbortController();
    const t0 = Date.now();
    const p = agent.fetch(`https://127.0.0.1:${port}/`, { signal: ac2.signal });
    setTimeout(() => ac2.abort(), 100);
    await rejects(p, (e) => assert.is((e as Error).name, 'AbortError'), 3000);
    assert.ok(Date.now() - t0 < 1500, `abort took ${Date.now() - t0} ms`);
    // The attempt went on for other requests; closing the agent gives it up at once.
    const t1 = Date.now();
    await within(1000, agent.close(), 'agent close');
    assert.ok(Date.now() - t1 < 500, `close took ${Date.now() - t1} ms`);
    // A request waiting on that attempt fails with a clear error too.
    const agent2 = new H3Agent({ insecure: true, connect: { handshakeTimeoutMs: 5000 } });
    const waiting = agent2.fetch(`https://127.0.0.1:${port}/`);
    await tick(50);
    await within(1000, agent2.close(), 'agent close');
    await rejects(waiting, (e) => {
      assert.instance(e, TypeError);
      assert.match((e as Error).message, /^fetch failed: the H3Agent was closed while connecting$/);
    });
  } finally {
    await agent.close();
    silent.close();
  }
});

test.run();
