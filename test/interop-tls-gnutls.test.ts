/**
 * Interop over TCP loopback with GnuTLS 3.7 (`gnutls-serv --echo` / `gnutls-cli`), both ways:
 * groups, suites, certificate types, ALPN, client authentication, resumption and 0-RTT.
 * Note: gnutls-serv has no bind option; it listens on all interfaces (random port, short-lived).
 */
import { test as uvuTest } from 'uvu';

// TIMING=1 prints how long each case takes.
const test = (name: string, fn: () => Promise<void>) =>
  uvuTest(name, async () => {
    const t0 = Date.now();
    await fn();
    if (process.env.TIMING) console.log(`${Date.now() - t0} ms  ${name}`);
  });
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import type { CipherSuite } from '../packages/tls-core/src/handshake/api.js';
import { freePort, makeCerts, missing, openClient, spawnPeer, startServer, type CertKind, type OpenClient, type Peer } from './interop-tls-lib.js';

const HAVE_SERV = !missing('gnutls-serv', 'GnuTLS server interop');
const HAVE_CLI = !missing('gnutls-cli', 'GnuTLS client interop');
const PROVIDERS = ['node', 'noble'] as const;
type Prov = (typeof PROVIDERS)[number];
const TLS13 = 'NORMAL:-VERS-ALL:+VERS-TLS1.3';

async function gnutlsServ(kind: CertKind, priority: string, extra: string[] = []): Promise<{ peer: Peer; port: number }> {
  const c = makeCerts().server[kind];
  const port = await freePort('tcp');
  const peer = spawnPeer('gnutls-serv', ['--x509certfile', c.certFile, '--x509keyfile', c.keyFile, '-p', String(port), '--echo', '--priority', priority, ...extra]);
  await peer.waitFor(/listening on IPv4.*done/);
  return { peer, port };
}

function gnutlsCli(port: number, priority: string, extra: string[] = []): Peer {
  const certs = makeCerts();
  return spawnPeer('gnutls-cli', ['--x509cafile', certs.caFile, '-p', String(port), '--sni-hostname', 'localhost', '--verify-hostname', 'localhost', '--priority', priority, ...extra, '127.0.0.1']);
}

const clientCases: { name: string; kind: CertKind; priority: string; suite: CipherSuite; group: string; scheme: string; hrr?: boolean }[] = [
  { name: 'ECDSA, X25519, AES-128-GCM', kind: 'ecdsa', priority: `${TLS13}:-CIPHER-ALL:+AES-128-GCM:-GROUP-ALL:+GROUP-X25519`, suite: 'TLS_AES_128_GCM_SHA256', group: 'x25519', scheme: 'ecdsa_secp256r1_sha256' },
  {
    name: 'RSA, P-256 (HelloRetryRequest), AES-256-GCM',
    kind: 'rsa',
    priority: `${TLS13}:-CIPHER-ALL:+AES-256-GCM:-GROUP-ALL:+GROUP-SECP256R1`,
    suite: 'TLS_AES_256_GCM_SHA384',
    group: 'secp256r1',
    scheme: 'rsa_pss_rsae_sha256',
    hrr: true,
  },
  { name: 'Ed25519, ChaCha20-Poly1305', kind: 'ed25519', priority: `${TLS13}:-CIPHER-ALL:+CHACHA20-POLY1305`, suite: 'TLS_CHACHA20_POLY1305_SHA256', group: 'x25519', scheme: 'ed25519' },
];

for (const c of clientCases) {
  for (const prov of PROVIDERS) {
    test(`petrel client → gnutls-serv: ${c.name} [${prov}]`, async () => {
      if (!HAVE_SERV) return;
      const { peer, port } = await gnutlsServ(c.kind, c.priority, ['--alpn', 'http/1.1']);
      let cl: OpenClient | null = null;
      try {
        cl = openClient({ port, servername: 'localhost', ca: makeCerts().caPem, provider: prov, alpn: ['h2', 'http/1.1'] });
        await cl.secure;
        cl.sock.write('echo-me\n');
        await cl.waitFor('echo-me');
        const i = cl.sock.info!;
        assert.is(i.suite, c.suite);
        assert.is(i.group, c.group);
        assert.is(i.signatureScheme, c.scheme);
        assert.is(i.alpn, 'http/1.1');
        assert.is(i.helloRetry, !!c.hrr);
        // a larger transfer through the echo server (several records each way)
        const big = `${'x'.repeat(999)}\n`.repeat(40) + 'END\n';
        cl.sock.write(big);
        await cl.waitFor(/x{999}\nEND/, 8000);
      } finally {
        cl?.sock.destroy();
        await peer.kill();
      }
    });
  }
}

test('petrel client → gnutls-serv: client certificate required', async () => {
  if (!HAVE_SERV) return;
  const certs = makeCerts();
  const { peer, port } = await gnutlsServ('ecdsa', TLS13, ['--require-client-cert', '--verify-client-cert', '--x509cafile', certs.caFile]);
  let cl: OpenClient | null = null;
  let no: OpenClient | null = null;
  try {
    cl = openClient({ port, servername: 'localhost', ca: certs.caPem, cert: certs.client.cert, key: certs.client.key });
    await cl.secure;
    cl.sock.write('with-cert\n');
    await cl.waitFor('with-cert');
    no = openClient({ port, servername: 'localhost', ca: certs.caPem });
    no.secure.catch(() => {});
    await no.secure.then(
      () => no!.waitFor('never', 3000),
      () => {},
    ).catch(() => {});
    assert.ok(no.error(), 'refused without a certificate');
  } finally {
    cl?.sock.destroy();
    no?.sock.destroy();
    await peer.kill();
  }
});

for (const prov of PROVIDERS) {
  test(`petrel client → gnutls-serv: resumption and 0-RTT [${prov}]`, async () => {
    if (!HAVE_SERV) return;
    const certs = makeCerts();
    const { peer, port } = await gnutlsServ('ecdsa', TLS13, ['--earlydata', '--maxearlydata', '16384']);
    const clients: OpenClient[] = [];
    try {
      const a = openClient({ port, servername: 'localhost', ca: certs.caPem, provider: prov });
      clients.push(a);
      await a.secure;
      a.sock.write('one\n');
      await a.waitFor('one');
      const ticket = await a.waitTicket();
      a.sock.end();
      const b = openClient({ port, servername: 'localhost', ca: certs.caPem, provider: prov, session: ticket, earlyData: 'early-data-line\n' });
      clients.push(b);
      await b.secure;
      assert.is(b.sock.info!.resumed, true);
      assert.ok(['accepted', 'rejected'].includes(b.sock.info!.earlyData));
      b.sock.write('two\n');
      await b.waitFor('two');
      // whether accepted or resent, gnutls-serv received the early line (it echoes application data)
      // gnutls-serv does not echo 0-RTT data, but it accepted it and the handshake went on under the right keys
      assert.is(b.sock.info!.earlyData, 'accepted');
    } finally {
      for (const c of clients) c.sock.destroy();
      await peer.kill();
    }
  });
}

// ------------------------------------------------------------------------------------------------
// gnutls-cli → petrel server

const serverCases: { name: string; kind: CertKind; priority: string; suite: CipherSuite; group: string; providers: readonly Prov[] }[] = [
  { name: 'ECDSA, X25519, AES-128-GCM', kind: 'ecdsa', priority: `${TLS13}:-CIPHER-ALL:+AES-128-GCM:-GROUP-ALL:+GROUP-X25519`, suite: 'TLS_AES_128_GCM_SHA256', group: 'x25519', providers: PROVIDERS },
  { name: 'RSA, P-256, AES-256-GCM', kind: 'rsa', priority: `${TLS13}:-CIPHER-ALL:+AES-256-GCM:-GROUP-ALL:+GROUP-SECP256R1`, suite: 'TLS_AES_256_GCM_SHA384', group: 'secp256r1', providers: PROVIDERS },
  { name: 'Ed25519, ChaCha20-Poly1305', kind: 'ed25519', priority: `${TLS13}:-CIPHER-ALL:+CHACHA20-POLY1305`, suite: 'TLS_CHACHA20_POLY1305_SHA256', group: 'x25519', providers: PROVIDERS },
];

for (const c of serverCases) {
  for (const prov of c.providers) {
    test(`gnutls-cli → petrel server: ${c.name} [${prov}]`, async () => {
      if (!HAVE_CLI) return;
      const cert = makeCerts().server[c.kind];
      const h = await startServer({ cert: cert.cert, key: cert.key, provider: prov, alpn: ['http/1.1'] });
      const cl = gnutlsCli(h.port, c.priority, ['--alpn', 'http/1.1']);
      try {
        const sock = await h.nextSecure(8000);
        cl.write('ping\n');
        await cl.waitFor('pong:ping');
        assert.match(cl.out(), /Status: The certificate is trusted/);
        assert.match(cl.out(), /TLS1\.3/);
        const i = sock.info!;
        assert.is(i.suite, c.suite);
        assert.is(i.group, c.group);
        assert.is(i.alpn, 'http/1.1');
        assert.is(i.serverName, 'localhost');
      } finally {
        await cl.kill();
        await h.close();
      }
    });
  }
}

test('gnutls-cli → petrel server: client certificate', async () => {
  if (!HAVE_CLI) return;
  const certs = makeCerts();
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, clientAuth: 'require', ca: certs.caPem });
  const cl = gnutlsCli(h.port, TLS13, ['--x509certfile', certs.client.certFile, '--x509keyfile', certs.client.keyFile]);
  try {
    const sock = await h.nextSecure(8000);
    cl.write('ping\n');
    await cl.waitFor('pong:ping');
    assert.ok(sock.getPeerCertificates().length >= 1);
  } finally {
    await cl.kill();
    await h.close();
  }
});

for (const prov of PROVIDERS) {
  test(`gnutls-cli --resume --earlydata → petrel server [${prov}]`, async () => {
    if (!HAVE_CLI) return;
    const certs = makeCerts();
    const early = path.join(certs.dir, `gnutls-early-${prov}.txt`);
    fs.writeFileSync(early, 'gnutls-zero-rtt\n');
    const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, provider: prov, maxEarlyData: 16384 });
    const cl = gnutlsCli(h.port, TLS13, ['--resume', '--earlydata', early]);
    try {
      await h.nextSecure(8000);
      const second = await h.nextSecure(8000);
      await cl.waitFor(/This is a resumed session/);
      assert.is(second.info!.resumed, true);
      assert.is(second.info!.earlyData, 'accepted');
      cl.write('ping2\n');
      await cl.waitFor('pong:ping2');
      // the early data reached our application and was answered
      await cl.waitFor('pong:gnutls-zero-rtt');
    } finally {
      await cl.kill();
      await h.close();
    }
  });
}

uvuTest.run();
