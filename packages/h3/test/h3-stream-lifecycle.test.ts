// Request stream lifecycles at the edges: early responses, abandoned paused bodies, leaks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { H3Connection, type H3Event } from '../src/connection.js';
import { H3Error } from '../src/errors.js';
import { connectInMemory } from '../src/memory-session.js';
import { memoryTransportPair } from '../src/memory-transport.js';

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

test.run();
