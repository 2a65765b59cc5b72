/**
 * Interop over TCP loopback with Node's own TLS (node:tls, OpenSSL inside), both ways: groups,
 * suites, certificate types, ALPN, client authentication, resumption, KeyUpdate, bulk data with
 * backpressure; node and noble providers.
 */
import { test as uvuTest } from 'uvu';
const test = (name: string, fn: () => Promise<void>) => uvuTest(name, async () => { const t0 = Date.now(); await fn(); if (process.env.TIMING) console.log(`${Date.now() - t0} ms  ${name}`); });
import * as assert from 'uvu/assert';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { CipherSuite } from '../packages/tls-core/src/handshake/api.js';
import { makeCerts, openClient, startServer, type CertKind, type OpenClient } from './interop-tls-lib.js';

const PROVIDERS = ['node', 'noble'] as const;

function nodeServer(opts: tls.TlsOptions, onConn?: (s: tls.TLSSocket) => void): Promise<{ server: tls.Server; port: number; close: () => Promise<void> }> {
  const conns = new Set<tls.TLSSocket>();
  const server = tls.createServer({ minVersion: 'TLSv1.3', ...opts }, (s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    if (onConn) onConn(s);
    else s.on('data', (d) => s.write(`node-echo:${d}`));
  });
  server.on('tlsClientError', () => {});
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            for (const c of conns) c.destroy();
          }),
      }),
    ),
  );
}

const cases: { name: string; kind: CertKind; curve: string; ciphers?: string; suite: CipherSuite; group: string; scheme: string; hrr?: boolean }[] = [
  { name: 'ECDSA, X25519, AES-128-GCM', kind: 'ecdsa', curve: 'X25519', ciphers: 'TLS_AES_128_GCM_SHA256', suite: 'TLS_AES_128_GCM_SHA256', group: 'x25519', scheme: 'ecdsa_secp256r1_sha256' },
  { name: 'RSA, P-256 (HRR), AES-256-GCM', kind: 'rsa', curve: 'P-256', ciphers: 'TLS_AES_256_GCM_SHA384', suite: 'TLS_AES_256_GCM_SHA384', group: 'secp256r1', scheme: 'rsa_pss_rsae_sha256', hrr: true },
  { name: 'Ed25519, ChaCha20', kind: 'ed25519', curve: 'X25519', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', suite: 'TLS_CHACHA20_POLY1305_SHA256', group: 'x25519', scheme: 'ed25519' },
];

for (const c of cases) {
  for (const prov of PROVIDERS) {
    test(`petrel client → node tls server: ${c.name} [${prov}]`, async () => {
      const cert = makeCerts().server[c.kind];
      const srv = await nodeServer({ cert: cert.cert, key: cert.key, ecdhCurve: c.curve, ALPNProtocols: ['http/1.1'], ...(c.ciphers ? { ciphers: c.ciphers } : {}) });
      let cl: OpenClient | null = null;
      try {
        cl = openClient({ port: srv.port, servername: 'localhost', ca: makeCerts().caPem, provider: prov, alpn: ['h2', 'http/1.1'] });
        await cl.secure;
        cl.sock.write('hi');
        await cl.waitFor('node-echo:hi');
        const i = cl.sock.info!;
        assert.is(i.suite, c.suite);
        assert.is(i.group, c.group);
        assert.is(i.signatureScheme, c.scheme);
        assert.is(i.alpn, 'http/1.1');
        assert.is(i.helloRetry, !!c.hrr);
      } finally {
        cl?.sock.destroy();
        await srv.close();
      }
    });

    test(`node tls.connect → petrel server: ${c.name} [${prov}]`, async () => {
      const certs = makeCerts();
      const cert = certs.server[c.kind];
      const h = await startServer({ cert: cert.cert, key: cert.key, provider: prov, alpn: ['http/1.1'], ...(c.hrr ? { groups: ['secp256r1'] } : {}) });
      const s = tls.connect({
        port: h.port,
        host: '127.0.0.1',
        servername: 'localhost',
        ca: certs.caPem,
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.3',
        ecdhCurve: c.hrr ? 'X25519:P-256' : c.curve,
        ...(c.ciphers ? { ciphers: c.ciphers } : {}),
      });
      try {
        const got = await new Promise<string>((resolve, reject) => {
          let buf = '';
          s.on('secureConnect', () => s.write('ping'));
          s.on('data', (d) => {
            buf += d;
            if (buf.includes('pong:ping')) resolve(buf);
          });
          s.on('error', reject);
          setTimeout(() => reject(new Error('timeout')), 8000).unref();
        });
        assert.is(got, 'pong:ping');
        assert.is(s.authorized, true);
        assert.is(s.getProtocol(), 'TLSv1.3');
        assert.is(s.getCipher().standardName, c.suite);
        assert.is(s.alpnProtocol, 'http/1.1');
        const sock = h.sockets[0]!;
        assert.is(sock.info!.group, c.group);
        assert.is(sock.info!.signatureScheme, c.scheme);
        assert.is(sock.info!.helloRetry, !!c.hrr);
      } finally {
        s.destroy();
        await h.close();
      }
    });
  }
}

test('client certificates both ways (node server requires one; petrel server requires one)', async () => {
  const certs = makeCerts();
  const srv = await nodeServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, requestCert: true, rejectUnauthorized: true, ca: certs.caPem }, (s) => {
    s.write(`peer:${s.getPeerCertificate().subject?.CN}`);
  });
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, clientAuth: 'require', ca: certs.caPem });
  let cl: OpenClient | null = null;
  let bad: OpenClient | null = null;
  let s: tls.TLSSocket | null = null;
  try {
    cl = openClient({ port: srv.port, servername: 'localhost', ca: certs.caPem, cert: certs.client.cert, key: certs.client.key });
    await cl.secure;
    await cl.waitFor('peer:client');
    bad = openClient({ port: srv.port, servername: 'localhost', ca: certs.caPem });
    await bad.secure.then(() => bad!.waitFor('never', 3000)).catch(() => {});
    assert.ok(bad.error(), 'node refuses a client without a certificate');
    await new Promise<void>((resolve, reject) => {
      const c = tls.connect({ port: h.port, host: '127.0.0.1', servername: 'localhost', ca: certs.caPem, cert: certs.client.cert, key: certs.client.key });
      s = c;
      c.on('secureConnect', () => c.write('x'));
      c.on('data', (d) => (String(d) === 'pong:x' ? resolve() : undefined));
      c.on('error', reject);
      setTimeout(() => reject(new Error('timeout')), 5000).unref();
    });
    assert.ok(h.sockets[0]!.getPeerCertificates().length >= 1);
  } finally {
    cl?.sock.destroy();
    bad?.sock.destroy();
    (s as tls.TLSSocket | null)?.destroy();
    await srv.close();
    await h.close();
  }
});

for (const prov of PROVIDERS) {
  test(`resumption both ways with node (tickets) [${prov}]`, async () => {
    const certs = makeCerts();
    // petrel client → node server
    const srv = await nodeServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key });
    const clients: OpenClient[] = [];
    try {
      const a = openClient({ port: srv.port, servername: 'localhost', ca: certs.caPem, provider: prov });
      clients.push(a);
      await a.secure;
      const ticket = await a.waitTicket();
      a.sock.end();
      const b = openClient({ port: srv.port, servername: 'localhost', ca: certs.caPem, provider: prov, session: ticket });
      clients.push(b);
      await b.secure;
      assert.is(b.sock.info!.resumed, true);
      assert.is(b.sock.isSessionReused(), true);
      b.sock.write('resumed');
      await b.waitFor('node-echo:resumed');
    } finally {
      for (const c of clients) c.sock.destroy();
      await srv.close();
    }

    // node client → petrel server
    const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, provider: prov });
    try {
      const one = (session?: Buffer) =>
        new Promise<{ reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
          const s = tls.connect({ port: h.port, host: '127.0.0.1', servername: 'localhost', ca: certs.caPem, ...(session ? { session } : {}) });
          let sess: Buffer | undefined;
          s.on('session', (x) => (sess = x));
          s.on('secureConnect', () => s.write('q'));
          s.on('data', () => {
            const reused = s.isSessionReused();
            setTimeout(() => {
              s.end();
              resolve({ reused, session: sess });
            }, 20);
          });
          s.on('error', reject);
          setTimeout(() => reject(new Error('timeout')), 5000).unref();
        });
      const first = await one();
      assert.is(first.reused, false);
      assert.ok(first.session, 'node got a ticket from us');
      const second = await one(first.session);
      assert.is(second.reused, true);
    } finally {
      await h.close();
    }
  });
}

test('KeyUpdate with node both ways, and bulk data with backpressure', async () => {
  const certs = makeCerts();
  const srv = await nodeServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key });
  let cl: OpenClient | null = null;
  try {
    cl = openClient({ port: srv.port, servername: 'localhost', ca: certs.caPem, provider: 'node' });
    await cl.secure;
    cl.sock.keyUpdate(true);
    cl.sock.write('after-ku');
    await cl.waitFor('node-echo:after-ku');
    // several updates in a row, data interleaved
    for (let i = 0; i < 5; i++) {
      cl.sock.keyUpdate(i % 2 === 0);
      cl.sock.write(`k${i};`);
    }
    await cl.waitFor('node-echo:k4;');
  } finally {
    cl?.sock.destroy();
    await srv.close();
  }

  // bulk: node server sends 8 MB; our client reads slowly at first (paused), then drains
  const size = 8 * 1024 * 1024;
  const srv2 = await nodeServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key }, (s) => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  try {
    const cl2 = openClient({ port: srv2.port, servername: 'localhost', ca: certs.caPem });
    await cl2.secure;
    cl2.sock.pause();
    await new Promise((r) => setTimeout(r, 100));
    // paused: the readable side holds at most about one high-water mark plus a record
    assert.ok(cl2.sock.readableLength < 1024 * 1024, `buffered ${cl2.sock.readableLength} bytes while paused`);
    let total = 0;
    let bad = 0;
    await new Promise<void>((resolve, reject) => {
      cl2.sock.on('data', (d: Buffer) => {
        total += d.length;
        for (let i = 0; i < d.length; i += 997) if (d[i] !== 7) bad++;
      });
      cl2.sock.on('end', () => resolve());
      cl2.sock.on('error', reject);
      cl2.sock.resume();
      setTimeout(() => reject(new Error(`timeout after ${total} bytes`)), 15000).unref();
    });
    assert.is(total, size);
    assert.is(bad, 0);
    cl2.sock.destroy();
  } finally {
    await srv2.close();
  }
});

uvuTest.run();
