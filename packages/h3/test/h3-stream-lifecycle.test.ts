// Request stream lifecycles at the edges: early responses, abandoned paused bodies, leaks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { H3Connection, type H3Event } from '../src/connection.js';
import { H3Error } from '../src/errors.js';
import { encodeVarint } from '../src/varint.js';
import { connectInMemory } from '../src/memory-session.js';
import { memoryTransportPair } from '../src/memory-transport.js';
import { driveMemoryTransport } from '../src/memory-session.js';
import { H3ClientSession, H3ServerSession } from '../src/web.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Settles `p` or fails after `ms` (a stalled stream must fail the test, not hang it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}

/** An endless upload, one chunk per few milliseconds. */
const slowUpload = (): ReadableStream<Uint8Array> =>
  new ReadableStream<Uint8Array>({ pull: (c) => sleep(3).then(() => c.enqueue(new Uint8Array(1000))) });

test('early response: the handler stops reading the upload, works, then answers (RFC 9114 §4.1.1)', async () => {
  const h3 = connectInMemory(async (req) => {
    await req.body!.cancel();
    await sleep(20); // the client's RESET_STREAM (its answer to STOP_SENDING) arrives meanwhile
    return new Response('too large', { status: 413 });
  });
  const res = await within(h3.fetch('https://x/upload', { method: 'POST', body: slowUpload(), duplex: 'half' } as RequestInit), 2000, 'fetch');
  assert.is(res.status, 413);
  assert.is(await within(res.text(), 2000, 'body'), 'too large');
  assert.ok(h3.transports.server.log.some((l) => l.op === 'stop' && l.code === H3Error.H3_NO_ERROR));
  assert.not.ok(h3.transports.server.log.some((l) => l.op === 'reset'), 'the server never resets its response');
  await sleep(20);
  assert.is(h3.server.activeRequests, 0);
  assert.is(h3.serverSession.activeRequests, 0);
  assert.is(h3.client.activeRequests, 0);
});

test('early response: a streamed response body outlives the peer reset of the request side', async () => {
  const h3 = connectInMemory((req) => {
    void req.body!.cancel();
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        await sleep(5);
        if (n++ < 10) c.enqueue(new TextEncoder().encode(`c${n} `));
        else c.close();
      },
    });
    return new Response(body);
  });
  const res = await within(h3.fetch('https://x/upload', { method: 'POST', body: slowUpload(), duplex: 'half' } as RequestInit), 2000, 'fetch');
  assert.is(await within(res.text(), 2000, 'body'), 'c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 ');
  await sleep(20);
  assert.is(h3.server.activeRequests, 0);
  assert.is(h3.serverSession.activeRequests, 0);
});

test('H3Connection: a peer reset after we stopped reading is information only', () => {
  const t = memoryTransportPair();
  const client = new H3Connection(t.client);
  const server = new H3Connection(t.server);
  const pump = (): H3Event[] => {
    const out: H3Event[] = [];
    for (let i = 0; i < 10; i++) {
      for (const ev of t.client.poll()) client.handleEvent(ev);
      for (const ev of t.server.poll()) out.push(...server.handleEvent(ev));
    }
    return out;
  };
  pump();
  const id = client.sendRequest([[':method', 'POST'], [':scheme', 'https'], [':authority', 'x'], [':path', '/']]);
  client.sendData(id, new Uint8Array(10));
  assert.ok(pump().some((e) => e.type === 'headers' && e.streamId === id));
  server.stopReading(id);
  // Whatever code the peer's reset carries, the response direction is still ours to finish.
  t.server.inbox.push({ type: 'streamReset', id, code: H3Error.H3_REQUEST_CANCELLED });
  const evs = pump();
  assert.not.ok(evs.some((e) => e.type === 'streamReset' || e.type === 'streamError'), JSON.stringify(evs));
  assert.is(server.activeRequests, 1);
  server.sendHeaders(id, [[':status', '200']]);
  server.sendData(id, new Uint8Array(5), true);
  assert.is(server.activeRequests, 0);
  assert.not.ok(t.server.log.some((l) => l.op === 'reset'));
});

test('a paused request body whose client sends STOP_SENDING only is stopped and forgotten', async () => {
  const t = memoryTransportPair();
  // The server transport pauses like QUIC: data of a paused stream is held until resumed.
  const paused = new Set<number>();
  const held: { ev: Parameters<H3Connection['handleEvent']>[0]; id: number }[] = [];
  Object.assign(t.server, {
    pauseReading: (id: number) => void paused.add(id),
    resumeReading: (id: number) => void paused.delete(id),
  });
  const client = new H3Connection(t.client);
  const server = new H3Connection(t.server);
  const cs = new H3ClientSession(client);
  const ss = new H3ServerSession(server, () => new Response(new ReadableStream({ pull: (c) => sleep(10).then(() => c.enqueue(new Uint8Array(10))) })));
  driveMemoryTransport(t.client, client, (e) => cs.handleEvents(e));
  t.server.onEvent = () =>
    setImmediate(() => {
      for (const ev of t.server.poll()) {
        if (ev.type === 'streamData' && paused.has(ev.id)) held.push({ ev, id: ev.id });
        else ss.handleEvents(server.handleEvent(ev));
      }
      for (let i = 0; i < held.length; i++) {
        if (paused.has(held[i]!.id)) continue;
        ss.handleEvents(server.handleEvent(held[i]!.ev));
        held.splice(i--, 1);
      }
    });
  // More than the read high-water mark, never read by the handler: reading pauses, FIN unread.
  const res = await within(cs.fetch('https://x/up', { method: 'POST', body: new Uint8Array(600 * 1024) }), 2000, 'fetch');
  await sleep(30);
  assert.ok(paused.size > 0, 'the server paused the request body');
  await res.body!.cancel(); // upload complete: the client can only send STOP_SENDING
  await sleep(50);
  assert.is(ss.activeRequests, 0);
  assert.is(server.activeRequests, 0, 'the H3 request state is gone');
  assert.is(paused.size, 0, 'the transport is no longer paused');
  assert.ok(t.server.log.some((l) => l.op === 'stop' && l.code === H3Error.H3_REQUEST_CANCELLED), JSON.stringify(t.server.log));
});

test('aborting a fetch whose upload waits on backpressure releases the waiter and the body', async () => {
  const h3 = connectInMemory(() => new Promise<Response>(() => {}));
  // The client's send buffer stays "full": the upload waits for 'writable' that never comes.
  Object.assign(h3.transports.client, { bufferedAmount: () => 10 * 1024 * 1024 });
  const ac = new AbortController();
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new Uint8Array(10)),
    cancel: () => void (cancelled = true),
  });
  const p = h3.fetch('https://x/up', { method: 'POST', body, duplex: 'half', signal: ac.signal } as RequestInit);
  await sleep(20);
  ac.abort();
  await within(p, 1000, 'fetch').then(
    () => assert.unreachable('the fetch was aborted'),
    (e: unknown) => assert.ok(e instanceof Error && e.name === 'AbortError', String(e)),
  );
  await sleep(20);
  const waiting = (h3.clientSession as unknown as { waiters: { waiting: Map<number, unknown> } }).waiters.waiting;
  assert.is(waiting.size, 0, 'no waiter left');
  assert.ok(cancelled, 'the request body source was cancelled');
});

test('unknown (grease) unidirectional streams that end are forgotten', () => {
  const { client, server } = memoryTransportPair();
  const conn = new H3Connection(server);
  for (let i = 0; i < 500; i++) {
    const id = client.open(false);
    const type = encodeVarint(0x21 + 0x1f * (i + 1));
    if (i % 2) {
      client.write(id, Uint8Array.of(...type, 1, 2, 3), true); // type, data and FIN at once
    } else {
      client.write(id, Uint8Array.of(...type, 1), false); // FIN later, after the type was seen
      client.write(id, Uint8Array.of(2), true);
    }
  }
  const evs: H3Event[] = [];
  for (const ev of server.poll()) evs.push(...conn.handleEvent(ev));
  assert.not.ok(evs.some((e) => e.type === 'connectionError'));
  assert.not.ok(conn.closed);
  assert.is((conn as unknown as { uni: Map<number, unknown> }).uni.size, 0);
});

test('fetches beyond the stream limit wait for MAX_STREAMS; abort, queue bound and close while queued', async () => {
  let served = 0;
  const h3 = connectInMemory((req) => new Response(`r${new URL(req.url).searchParams.get('i')} ${++served}`));
  h3.transports.client.maxStreams = 100; // the server allows 100 request streams for now
  const all = Array.from({ length: 150 }, (_, i) => h3.fetch(`https://x/?i=${i}`).then((r) => r.text()));
  const ac = new AbortController();
  const aborted = h3.fetch('https://x/?i=aborted', { signal: ac.signal });
  await sleep(10);
  assert.is(h3.clientSession.queuedRequests, 51);
  ac.abort();
  await within(aborted, 1000, 'aborted fetch').then(
    () => assert.unreachable('aborted while queued'),
    (e: unknown) => assert.ok(e instanceof Error && e.name === 'AbortError', String(e)),
  );
  assert.is(h3.clientSession.queuedRequests, 50);
  h3.transports.client.allowStreams(200); // MAX_STREAMS raised: the queue drains in order
  const texts = await within(Promise.all(all), 2000, 'queued fetches');
  for (let i = 0; i < 150; i++) assert.ok(texts[i]!.startsWith(`r${i} `), texts[i]);
  assert.is(served, 150);
  assert.is(h3.clientSession.queuedRequests, 0);

  // At the limit again: the connection closes with requests still queued: they reject.
  const more = Array.from({ length: 60 }, () => h3.fetch('https://x/?i=late').then(
    () => 'ok',
    (e: unknown) => (e instanceof TypeError ? 'rejected' : String(e)),
  ));
  await sleep(10);
  assert.is(h3.clientSession.queuedRequests, 10);
  h3.server.close(H3Error.H3_NO_ERROR, 'bye');
  const outcomes = await within(Promise.all(more), 2000, 'fetches at close');
  assert.is(outcomes.filter((o) => o === 'rejected').length + outcomes.filter((o) => o === 'ok').length, 60);
  assert.ok(outcomes.slice(50).every((o) => o === 'rejected'), outcomes.slice(50).join());
  assert.is(h3.clientSession.queuedRequests, 0);
});

test('the wait queue is bounded (maxQueuedRequests)', async () => {
  const t = memoryTransportPair();
  t.client.maxStreams = 3; // each kind: the 3 uni streams of HTTP/3 itself, 3 request streams
  const client = new H3Connection(t.client);
  const server = new H3Connection(t.server);
  const cs = new H3ClientSession(client, { maxQueuedRequests: 2 });
  const ss = new H3ServerSession(server, () => new Promise<Response>(() => {}));
  driveMemoryTransport(t.client, client, (e) => cs.handleEvents(e));
  driveMemoryTransport(t.server, server, (e) => ss.handleEvents(e));
  const settled: string[] = [];
  for (let i = 0; i < 6; i++) {
    cs.fetch(`https://x/${i}`).then(
      () => settled.push(`ok${i}`),
      (e: unknown) => settled.push(`${e instanceof TypeError ? 'rejected' : 'other'}${i}`),
    );
  }
  await sleep(10);
  assert.equal(settled, ['rejected5']); // 3 sent, 2 queued, the 6th over the bound
  assert.is(cs.queuedRequests, 2);
});

test('a response body that is not sent (HEAD, client gone) is cancelled', async () => {
  const cancelled: string[] = [];
  const fileLike = (name: string): ReadableStream<Uint8Array> =>
    new ReadableStream<Uint8Array>({
      pull: (c) => c.enqueue(new Uint8Array(10)),
      cancel: () => void cancelled.push(name),
    });
  let release!: () => void;
  const late = new Promise<void>((r) => (release = r));
  const h3 = connectInMemory(async (req) => {
    if (new URL(req.url).pathname === '/late') await late;
    return new Response(fileLike(`${req.method} ${new URL(req.url).pathname}`), { headers: { 'content-length': '1000' } });
  });
  const res = await within(h3.fetch('https://x/file', { method: 'HEAD' }), 1000, 'HEAD');
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-length'), '1000');
  assert.is(res.body, null);
  const ac = new AbortController();
  const p = h3.fetch('https://x/late', { signal: ac.signal }).catch(() => 'aborted');
  await sleep(10);
  ac.abort();
  assert.is(await p, 'aborted');
  await sleep(10);
  release(); // the handler answers after the client went away
  await sleep(20);
  assert.equal(cancelled.sort(), ['GET /late', 'HEAD /file']);
  assert.is(h3.serverSession.activeRequests, 0);
});

test.run();
