/**
 * Alerts on the wire (RFC 8446 §5, §6): once the client has derived the handshake traffic keys
 * (after the ServerHello), the alerts it sends are protected records (outer content type 23),
 * never plaintext alert records. Our client goes through a recording TCP relay to openssl s_server
 * (certificate from an unknown CA / a wrong name) and to our own server; both peers must still
 * see the right alert.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { freePort, makeCerts, missing, runClient, spawnPeer, startServer } from './interop-tls-lib.js';

const HAVE = !missing('openssl', 'OpenSSL TLS alert interop');

/** A TCP relay on 127.0.0.1 recording what the client sends. */
async function relay(targetPort: number): Promise<{ port: number; clientBytes: () => Buffer; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    const up = net.connect({ host: '127.0.0.1', port: targetPort });
    conns.add(up);
    c.on('data', (d) => {
      chunks.push(Buffer.from(d));
      up.write(d);
    });
    up.on('data', (d) => c.write(d));
    c.on('end', () => up.end());
    up.on('end', () => c.end());
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => conns.delete(c));
    up.on('close', () => conns.delete(up));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  return {
    port,
    clientBytes: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Outer (type, length) of each complete record in a byte stream. */
function records(b: Buffer): { type: number; len: number }[] {
  const out: { type: number; len: number }[] = [];
  let o = 0;
  while (o + 5 <= b.length) {
    const len = b.readUInt16BE(o + 3);
    if (o + 5 + len > b.length) break;
    out.push({ type: b[o]!, len });
    o += 5 + len;
  }
  return out;
}

function assertNoPlainAlert(b: Buffer, label: string): void {
  const recs = records(b);
  assert.ok(recs.length >= 2, `${label}: the client sent its ClientHello and an alert (${JSON.stringify(recs)})`);
  assert.is(recs[0]!.type, 22, `${label}: ClientHello first`);
  assert.not.ok(
    recs.some((r) => r.type === 21),
    `${label}: no plaintext alert record after the ServerHello: ${JSON.stringify(recs)}`,
  );
  const last = recs[recs.length - 1]!;
  assert.is(last.type, 23, `${label}: the alert is a protected record`);
  assert.is(last.len, 2 + 1 + 16, `${label}: protected alert = 2 bytes + content type + tag`);
}

test('petrel client → openssl s_server: unknown_ca / bad name alerts are encrypted, and openssl reads them', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  for (const provider of ['node', 'noble'] as const) {
    const port = await freePort('tcp');
    const c = certs.server.ecdsa;
    const srv = spawnPeer('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', c.certFile, '-key', c.keyFile, '-www']);
    const r = await relay(port);
    try {
      await srv.waitFor('ACCEPT');
      const bad = await runClient({ port: r.port, servername: 'localhost', ca: certs.otherCaPem, provider }, { send: 'x', timeoutMs: 5000 });
      assert.ok(bad.error, 'refused');
      assert.match(bad.error!.message, /unknown_ca/);
      await srv.waitFor(/alert unknown ca|alert number 48/i, 5000);
      await new Promise((res) => setTimeout(res, 50));
      assertNoPlainAlert(r.clientBytes(), `unknown_ca [${provider}]`);
    } finally {
      await r.close();
      await srv.kill();
    }
  }
});

test('petrel client → petrel server: the client alert after a bad certificate is encrypted and reaches the server', async () => {
  if (!HAVE) return; // certificates are made with the openssl CLI
  const certs = makeCerts();
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key });
  const r = await relay(h.port);
  try {
    const bad = await runClient({ port: r.port, servername: 'wrong.example', ca: certs.caPem }, { send: 'x', timeoutMs: 5000 });
    assert.ok(bad.error, 'refused');
    for (let i = 0; i < 100 && !h.errors.length; i++) await new Promise((res) => setTimeout(res, 20));
    assert.ok(
      h.errors.some((e) => /ERR_TLS_ALERT_RECEIVED|peer sent fatal alert (bad_certificate|certificate_unknown)/.test(`${(e as { code?: string }).code} ${e.message}`)),
      `server saw the client's alert: ${h.errors.map((e) => e.message).join('; ')}`,
    );
    assertNoPlainAlert(r.clientBytes(), 'wrong name');
  } finally {
    await r.close();
    await h.close();
  }
});

test.run();
