// HTTP/3 interop over Petrel QUIC on 127.0.0.1 with ngtcp2 + nghttp3 (gtlsserver / gtlsclient) and quic-go:
// our fetch() against their server, their client against our serve(). Both crypto providers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectH3, serve } from '../src/node.js';
import { freePort, peers, requirePeer, runBounded, spawnPeer, startQuicGoServer, waitForPort } from '../../../test/support/peers.js';
import { providers } from '../../../test/support/providers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-h3-interop-'));
const www = path.join(dir, 'www');
fs.mkdirSync(www);
const files: Record<string, Uint8Array> = {
  small: Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff),
  big: Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 31) & 0xff),
};
for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(www, n), b);

for (const provider of providers) {
  test(`[${provider.name}] our fetch() downloads from ngtcp2 gtlsserver (h3)`, async () => {
    const bin = requirePeer('gtlsserver');
    const p = peers();
    if (!bin || !p.certs) return;
    const port = await freePort('udp');
    const proc = spawnPeer(bin, ['-q', '-d', www, '127.0.0.1', String(port), p.certs.key, p.certs.cert], { lifetimeMs: 20_000 });
    try {
      await waitForPort(port, 'udp', { proc });
      const client = await connectH3({ host: '127.0.0.1', port }, { provider, ca: fs.readFileSync(p.certs.ca, 'utf8'), serverName: 'localhost' });
      try {
        for (const name of ['small', 'big', 'small']) {
          const res = await client.fetch(`https://127.0.0.1:${port}/${name}`, { headers: { 'user-agent': 'petrel-h3-test' } });
          assert.is(res.status, 200);
          assert.is(res.headers.get('content-length'), String(files[name]!.length));
          assert.equal(new Uint8Array(await res.arrayBuffer()), files[name]);
        }
        const missing = await client.fetch(`https://127.0.0.1:${port}/nope`);
        assert.is(missing.status, 404);
        await missing.arrayBuffer();
        // Our QPACK encoder used the dynamic table and nghttp3 acknowledged every insert.
        assert.ok(client.h3.encoder.insertCount > 0, `inserts ${client.h3.encoder.insertCount}`);
        for (let i = 0; i < 50 && client.h3.encoder.knownReceivedCount < client.h3.encoder.insertCount; i++) await new Promise((r) => setTimeout(r, 10));
        assert.is(client.h3.encoder.knownReceivedCount, client.h3.encoder.insertCount);
      } finally {
        await client.close();
      }
    } finally {
      await proc.kill();
    }
  });

  test(`[${provider.name}] ngtcp2 gtlsclient downloads from our serve() (h3)`, async () => {
    const bin = requirePeer('gtlsclient');
    const p = peers();
    if (!bin || !p.certs) return;
    const port = await freePort('udp');
    const seen: string[] = [];
    const server = await serve(
      { port, host: '127.0.0.1', provider, cert: fs.readFileSync(p.certs.cert, 'utf8'), key: fs.readFileSync(p.certs.key, 'utf8') },
      (req) => {
        const name = new URL(req.url).pathname.slice(1);
        seen.push(`${req.method} ${name} ${req.headers.get('user-agent')}`);
        const body = files[name];
        return body ? new Response(body as unknown as BodyInit, { headers: { 'content-length': String(body.length) } }) : new Response('no', { status: 404 });
      },
    );
    const dl = fs.mkdtempSync(path.join(dir, 'dl-'));
    try {
      const r = await runBounded(bin, ['-q', '--exit-on-all-streams-close', '--download', dl, '127.0.0.1', String(port), `https://127.0.0.1:${port}/small`, `https://127.0.0.1:${port}/big`], { timeoutMs: 20_000 });
      assert.is(r.code, 0, r.stderr);
      assert.equal(new Uint8Array(fs.readFileSync(path.join(dl, 'small'))), files.small);
      assert.equal(new Uint8Array(fs.readFileSync(path.join(dl, 'big'))), files.big);
      assert.equal(seen.sort(), ['GET big nghttp3/ngtcp2 client', 'GET small nghttp3/ngtcp2 client']);
    } finally {
      await server.close(0x100, 'done', 500);
    }
  });

  test(`[${provider.name}] our fetch() downloads from the quic-go http3 server`, async () => {
    const p = peers();
    const qg = await startQuicGoServer('http3', www, { lifetimeMs: 30_000 });
    if (!qg) return;
    try {
      const client = await connectH3({ host: '127.0.0.1', port: 443 }, { provider, ca: fs.readFileSync(p.certs.ca, 'utf8'), serverName: 'localhost' });
      try {
        for (const name of ['small', 'big']) {
          const res = await client.fetch(`https://127.0.0.1/${name}`);
          assert.is(res.status, 200);
          assert.equal(new Uint8Array(await res.arrayBuffer()), files[name]);
        }
      } finally {
        await client.close();
      }
    } finally {
      await qg.kill();
    }
  });

  test(`[${provider.name}] the quic-go http3 client downloads from our serve()`, async () => {
    const bin = requirePeer('quicGo');
    const p = peers();
    if (!bin) return;
    const port = await freePort('udp');
    const server = await serve(
      { port, host: '127.0.0.1', provider, cert: fs.readFileSync(p.certs.cert, 'utf8'), key: fs.readFileSync(p.certs.key, 'utf8') },
      (req) => {
        const body = files[new URL(req.url).pathname.slice(1)];
        return body ? new Response(body as unknown as BodyInit) : new Response('no', { status: 404 });
      },
    );
    const dl = fs.mkdtempSync(path.join(dir, 'qg-'));
    try {
      const r = await runBounded(bin, ['client', 'http3', dl, `https://127.0.0.1:${port}/small`, `https://127.0.0.1:${port}/big`], { timeoutMs: 30_000 });
      assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(new Uint8Array(fs.readFileSync(path.join(dl, 'small'))), files.small);
      assert.equal(new Uint8Array(fs.readFileSync(path.join(dl, 'big'))), files.big);
    } finally {
      await server.close(0x100, 'done', 500);
    }
  });
}

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
