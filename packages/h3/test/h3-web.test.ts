// fetch() and a Request → Response handler over two H3Connections joined in memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectInMemory } from '../src/memory-session.js';

const handler = async (req: Request): Promise<Response> => {
  const url = new URL(req.url);
  if (url.pathname === '/hello') {
    return new Response(`hello ${url.searchParams.get('name') ?? 'world'} via ${req.method}`, {
      headers: { 'content-type': 'text/plain', 'x-seen-ua': req.headers.get('user-agent') ?? '' },
    });
  }
  if (url.pathname === '/echo') {
    const body = new Uint8Array(await req.arrayBuffer());
    return new Response(body, { status: 201, headers: { 'x-len': String(body.length), 'x-cookie': req.headers.get('cookie') ?? '' } });
  }
  if (url.pathname === '/stream') {
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (i === 50) c.close();
        else c.enqueue(new Uint8Array(1000).fill(i++));
      },
    });
    return new Response(stream);
  }
  if (url.pathname === '/forever') {
    return new Response(new ReadableStream({ pull: () => new Promise((r) => setTimeout(r, 5)).then(() => undefined) }));
  }
  if (url.pathname === '/early') {
    await req.body!.cancel();
    return new Response('early answer');
  }
  if (url.pathname === '/nocontent') return new Response(null, { status: 204 });
  if (url.pathname === '/throw') throw new Error('handler bug');
  return new Response('not found', { status: 404 });
};

test('GET with query, headers both ways', async () => {
  const h3 = connectInMemory(handler);
  const res = await h3.fetch('https://example.com/hello?name=petrel', { headers: { 'user-agent': 'petrel-test' } });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'text/plain');
  assert.is(res.headers.get('x-seen-ua'), 'petrel-test');
  assert.is(await res.text(), 'hello petrel via GET');
});

test('POST body echoed, many requests reuse the connection and the dynamic table', async () => {
  const h3 = connectInMemory(handler);
  for (let i = 0; i < 10; i++) {
    const body = new Uint8Array(5000 + i).map((_, j) => (j * 7 + i) & 0xff);
    const res = await h3.fetch('https://example.com/echo', { method: 'POST', body, headers: { cookie: 'a=1' } });
    assert.is(res.status, 201);
    assert.is(res.headers.get('x-len'), String(body.length));
    assert.is(res.headers.get('x-cookie'), 'a=1');
    assert.equal(new Uint8Array(await res.arrayBuffer()), body);
  }
  await new Promise((r) => setTimeout(r, 5));
  assert.is(h3.serverSession.activeRequests, 0);
  assert.is(h3.server.activeRequests, 0);
  assert.is(h3.client.activeRequests, 0);
  assert.ok(h3.client.encoder.insertCount > 0);
  assert.ok(h3.server.encoder.insertCount > 0);
});

test('streamed request and response bodies', async () => {
  const h3 = connectInMemory(handler);
  let n = 0;
  const reqBody = new ReadableStream<Uint8Array>({
    pull(c) {
      if (n === 20) c.close();
      else c.enqueue(new Uint8Array(100).fill(n++));
    },
  });
  const res = await h3.fetch('https://example.com/echo', { method: 'PUT', body: reqBody, duplex: 'half' } as RequestInit);
  assert.is((await res.arrayBuffer()).byteLength, 2000);
  const res2 = await h3.fetch('https://example.com/stream');
  const all = new Uint8Array(await res2.arrayBuffer());
  assert.is(all.length, 50000);
  assert.is(all[49999], 49);
});

test('204, 404, handler error → 500, HEAD', async () => {
  const errors: unknown[] = [];
  const h3 = connectInMemory(handler, { onError: (e) => errors.push(e) });
  assert.is((await h3.fetch('https://example.com/nocontent')).status, 204);
  const nf = await h3.fetch('https://example.com/missing');
  assert.is(nf.status, 404);
  assert.is(await nf.text(), 'not found');
  assert.is((await h3.fetch('https://example.com/throw')).status, 500);
  assert.is(errors.length, 1);
  const head = await h3.fetch('https://example.com/hello', { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.is(await head.text(), '');
});

test('abort cancels the request stream; cancelling the body resets the stream', async () => {
  const h3 = connectInMemory(handler);
  const ac = new AbortController();
  const res = await h3.fetch('https://example.com/forever', { signal: ac.signal });
  const reader = res.body!.getReader();
  ac.abort();
  try {
    for (let i = 0; i < 100; i++) {
      const r = await reader.read();
      if (r.done) break;
    }
    assert.unreachable('body should error after abort');
  } catch (e) {
    assert.ok(e instanceof Error);
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(h3.transports.client.log.some((l) => l.op === 'stop' && l.code === 0x10c));
  const res2 = await h3.fetch('https://example.com/forever');
  await res2.body!.cancel();
  await new Promise((r) => setTimeout(r, 20));
  assert.is(h3.client.activeRequests, 0);
  assert.is(h3.server.activeRequests, 0);
});

test('a handler that cancels the request body still answers (STOP_SENDING H3_NO_ERROR)', async () => {
  const h3 = connectInMemory(handler);
  const body = new ReadableStream<Uint8Array>({
    pull: (c) => new Promise((r) => setTimeout(r, 2)).then(() => c.enqueue(new Uint8Array(100))),
  });
  const res = await h3.fetch('https://example.com/early', { method: 'POST', body, duplex: 'half' } as RequestInit);
  assert.is(await res.text(), 'early answer');
  assert.ok(h3.transports.server.log.some((l) => l.op === 'stop' && l.code === 0x100));
  await new Promise((r) => setTimeout(r, 20));
  assert.is(h3.server.activeRequests, 0);
  assert.is(h3.serverSession.activeRequests, 0);
});

test('connection close rejects pending fetches', async () => {
  const h3 = connectInMemory(() => new Promise<Response>(() => {}));
  const p = h3.fetch('https://example.com/never');
  await new Promise((r) => setTimeout(r, 5));
  h3.server.close(0x100, 'bye');
  try {
    await p;
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TypeError);
  }
});

test.run();
