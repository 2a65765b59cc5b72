/**
 * `fetch(url, init)` / H3Agent from @petrel/h3/node against serve() over UDP on 127.0.0.1, both
 * crypto providers: one connection per origin (shared by concurrent requests, also while it is
 * being opened), dead connections replaced, idle ones closed, certificates verified by default,
 * request bodies streamed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { H3Agent, closeAllConnections, fetch, serve } from '../packages/h3/src/node.js';
import { makeCert } from './support/certs.js';
import { providers } from './support/providers.js';

const ca = makeCert({ keyType: 'ec-p256', ca: true, cn: 'fetch test CA' });
const leaf = makeCert({ keyType: 'ec-p256', sans: ['localhost', '127.0.0.1'], issuer: ca });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  assert.instance(e, TypeError);
  assert.match(String((e as Error).message), re);
}

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`no result after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

for (const provider of providers) {
  test(`[${provider.name}] fetch/H3Agent: pooling, reuse, replacement, idle close, streamed uploads, verification`, async () => {
    let uploads = 0;
    const server = await serve({ port: 0, host: '127.0.0.1', provider, cert: leaf.certPem, key: leaf.keyPem }, async (req) => {
      const { pathname } = new URL(req.url);
      if (pathname === '/upload') {
        let n = 0;
        let sum = 0;
        for await (const c of req.body as unknown as AsyncIterable<Uint8Array>) {
          n += c.length;
          for (const b of c) sum = (sum + b) % 65521;
        }
        uploads++;
        return new Response(`${n} ${sum}`);
      }
      if (pathname === '/go') return new Response(null, { status: 302, headers: { location: '/there?x=1' } });
      if (pathname === '/see-other') return new Response(null, { status: 303, headers: { location: `/method-was-${req.method}` } });
      if (pathname === '/temp') return new Response(null, { status: 307, headers: { location: '/upload' } });
      if (pathname === '/loop') return new Response(null, { status: 308, headers: { location: '/loop' } });
      return new Response(`you asked for ${pathname}${new URL(req.url).search} with ${req.method}`.replace(/ with GET$/, ''), { headers: { 'x-path': pathname } });
    });
    const port = server.address().port;
    const base = `https://127.0.0.1:${port}`;
    const agent = new H3Agent({ ca: ca.certPem, idleTimeoutMs: 300, connect: { provider } });
    try {
    try {
      // 12 concurrent requests before any connection exists: one connection attempt, one connection.
      const rs = await within(10_000, Promise.all(Array.from({ length: 12 }, (_, i) => agent.fetch(`${base}/r${i}`))));
      const texts = await Promise.all(rs.map((r) => r.text()));
      assert.equal(texts, Array.from({ length: 12 }, (_, i) => `you asked for /r${i}`));
      assert.is(rs[3]!.url, `${base}/r3`);
      assert.is(agent.connectionsOpened, 1);
      assert.is(server.connections.length, 1);
      const info = await agent.connection(base);
      assert.is(info.requests, 12);
      assert.is(info.handshake.alpn, 'h3');

      // A streamed request body (ReadableStream, written as produced).
      let k = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          await sleep(1);
          if (k === 40) c.close();
          else c.enqueue(new Uint8Array(25_000).fill(k++));
        },
      });
      const up = await within(10_000, agent.fetch(`${base}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit));
      let expect = 0;
      for (let i = 0; i < 40; i++) expect = (expect + i * 25_000) % 65521;
      assert.is(await up.text(), `1000000 ${expect}`);
      assert.is(uploads, 1);
      assert.is(agent.connectionsOpened, 1);

      // Redirects: followed by default (302, 303 POST → GET, 307 replays a byte body), manual, error, loops.
      const go = await agent.fetch(`${base}/go`);
      assert.equal([go.status, go.redirected, go.url, await go.text()], [200, true, `${base}/there?x=1`, 'you asked for /there?x=1']);
      const manual = await agent.fetch(`${base}/go`, { redirect: 'manual' });
      assert.equal([manual.status, manual.headers.get('location'), manual.redirected], [302, '/there?x=1', false]);
      await manual.arrayBuffer();
      const seeOther = await agent.fetch(`${base}/see-other`, { method: 'POST', body: 'abc' });
      assert.is(await seeOther.text(), 'you asked for /method-was-POST');
      const temp = await agent.fetch(`${base}/temp`, { method: 'POST', body: 'abc' });
      assert.is(await temp.text(), `3 ${(97 + 98 + 99) % 65521}`);
      const streamBody = new ReadableStream<Uint8Array>({ pull: (c) => (c.enqueue(Uint8Array.of(1)), c.close()) });
      await rejects(agent.fetch(`${base}/temp`, { method: 'POST', body: streamBody, duplex: 'half' } as RequestInit), /cannot be replayed/);
      await rejects(agent.fetch(`${base}/go`, { redirect: 'error' }), /redirect mode "error"/);
      await rejects(agent.fetch(`${base}/loop`), /too many redirects/);
      assert.is(agent.connectionsOpened, 1);

      // The server closes the connection: the next request opens a new one.
      await server.connections[0]!.close(0x100, 'bye');
      await sleep(50);
      const again = await within(10_000, agent.fetch(`${base}/after-close`));
      assert.is(await again.text(), 'you asked for /after-close');
      assert.is(agent.connectionsOpened, 2);

      // Idle: closed after idleTimeoutMs without requests in flight; a body still being read keeps it.
      const held = await agent.fetch(`${base}/held`);
      const second = (await agent.connection(base)).client;
      await sleep(600);
      assert.is(agent.size, 1, 'a response whose body is unread keeps its connection');
      await held.text();
      await sleep(600);
      assert.is(agent.size, 0, 'closed when idle');
      assert.ok(second.quic.isClosed, 'the idle connection was closed');
      const third = await within(10_000, agent.fetch(`${base}/third`));
      assert.is(await third.text(), 'you asked for /third');
      assert.is(agent.connectionsOpened, 3);
    } finally {
      await agent.close();
    }

    try {
      // Top-level fetch: verified by default (refused without the CA), `ca` and `insecure` work.
      const bad = await fetch(`${base}/x`).then(
        () => null,
        (e: unknown) => e,
      );
      assert.instance(bad, TypeError);
      assert.match(String((bad as Error).message), /unknown issuer|not a trusted root/);
      const good = await within(10_000, fetch(`${base}/top`, { ca: ca.certPem }));
      assert.is(await good.text(), 'you asked for /top');
      const insecure = await within(10_000, fetch(`https://localhost:${port}/insecure`, { insecure: true }));
      assert.is(insecure.headers.get('x-path'), '/insecure');
      assert.is(insecure.url, `https://localhost:${port}/insecure`);
    } finally {
      await closeAllConnections();
    }
    } finally {
      await agent.close();
      await server.close(0x100, 'done', 500);
    }
  });
}

test('fetch refuses non-https URLs', async () => {
  const e = await fetch('http://127.0.0.1:1/').then(
    () => null,
    (x: unknown) => x,
  );
  assert.instance(e, TypeError);
  assert.match(String((e as Error).message), /https/);
});

test.run();
