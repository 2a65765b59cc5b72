/**
 * Interop over TCP loopback with OpenSSL 3 (`openssl s_server` / `openssl s_client`), both ways:
 * X25519 / P-256 (with HelloRetryRequest), AES-GCM / ChaCha20, ECDSA / RSA / Ed25519 certificates,
 * ALPN, client authentication, resumption, 0-RTT and KeyUpdate; node and noble providers.
 */
import { test } from 'uvu';
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import type { CipherSuite } from '../packages/tls-core/src/handshake/api.js';
import { freePort, makeCerts, missing, openClient, runClient, spawnPeer, startServer, type CertKind, type OpenClient, type Peer } from './interop-tls-lib.js';

const HAVE = !missing('openssl', 'OpenSSL TLS interop');
const PROVIDERS = ['node', 'noble'] as const;
type Prov = (typeof PROVIDERS)[number];

function sServer(port: number, kind: CertKind, extra: string[], www = true): Peer {
  const c = makeCerts().server[kind];
  return spawnPeer('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', c.certFile, '-key', c.keyFile, '-no_dhe', ...(www ? ['-www'] : []), ...extra]);
}

function sClient(port: number, extra: string[]): Peer {
  const certs = makeCerts();
  return spawnPeer('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', certs.caFile, '-servername', 'localhost', ...extra]);
}

const clientCases: { name: string; kind: CertKind; server: string[]; suite: CipherSuite; group: string; scheme: string; hrr?: boolean; providers: readonly Prov[] }[] = [
  { name: 'ECDSA P-256 cert, X25519, AES-128-GCM', kind: 'ecdsa', server: ['-groups', 'X25519'], suite: 'TLS_AES_128_GCM_SHA256', group: 'x25519', scheme: 'ecdsa_secp256r1_sha256', providers: PROVIDERS },
  {
    name: 'RSA cert, P-256 (HelloRetryRequest), AES-256-GCM',
    kind: 'rsa',
    server: ['-groups', 'P-256', '-ciphersuites', 'TLS_AES_256_GCM_SHA384'],
    suite: 'TLS_AES_256_GCM_SHA384',
    group: 'secp256r1',
    scheme: 'rsa_pss_rsae_sha256',
    hrr: true,
    providers: PROVIDERS,
  },
  {
    name: 'Ed25519 cert, X25519, ChaCha20-Poly1305',
    kind: 'ed25519',
    server: ['-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'],
    suite: 'TLS_CHACHA20_POLY1305_SHA256',
    group: 'x25519',
    scheme: 'ed25519',
    providers: PROVIDERS,
  },
];

for (const c of clientCases) {
  for (const prov of c.providers) {
    test(`petrel client → openssl s_server: ${c.name} [${prov}]`, async () => {
      if (!HAVE) return;
      const port = await freePort('tcp');
      const srv = sServer(port, c.kind, [...c.server, '-alpn', 'http/1.1']);
      try {
        await srv.waitFor('ACCEPT');
        const r = await runClient(
          { port, servername: 'localhost', ca: makeCerts().caPem, provider: prov, alpn: ['h2', 'http/1.1'] },
          { send: 'GET / HTTP/1.0\r\n\r\n', until: /<\/HTML>|<\/BODY>/i, timeoutMs: 8000 },
        );
        assert.is(r.error, null, String(r.error?.stack));
        const i = r.sock.info!;
        assert.is(i.suite, c.suite);
        assert.is(i.group, c.group);
        assert.is(i.signatureScheme, c.scheme);
        assert.is(i.alpn, 'http/1.1');
        assert.is(i.helloRetry, !!c.hrr);
        assert.ok(r.received.startsWith('HTTP/1.0 200 ok'), r.received.slice(0, 200));
        assert.ok(r.received.includes(c.suite), 'the page names the suite');
        assert.ok(i.peerCertificates.length >= 1);
      } finally {
        await srv.kill();
      }
    });
  }
}

test('petrel client → openssl s_server: client certificate required (with and without)', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  const port = await freePort('tcp');
  const srv = sServer(port, 'ecdsa', ['-Verify', '1', '-CAfile', certs.caFile, '-verify_return_error']);
  try {
    await srv.waitFor('ACCEPT');
    const ok = await runClient(
      { port, servername: 'localhost', ca: certs.caPem, cert: certs.client.cert, key: certs.client.key, provider: 'noble' },
      { send: 'GET / HTTP/1.0\r\n\r\n', until: /<\/HTML>|<\/BODY>/i, timeoutMs: 8000 },
    );
    assert.is(ok.error, null, String(ok.error?.stack));
    assert.ok(ok.received.includes('HTTP/1.0 200 ok'));
    const no = await runClient({ port, servername: 'localhost', ca: certs.caPem }, { send: 'GET / HTTP/1.0\r\n\r\n', until: /<\/HTML>/i, timeoutMs: 8000 });
    assert.ok(no.error, 'the server refuses a client without a certificate');
    assert.match(no.error!.message, /certificate_required|handshake_failure|ECONNRESET|closed/);
  } finally {
    await srv.kill();
  }
});

test('petrel client → openssl s_server: certificate from an unknown CA and a wrong name are refused', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  const port = await freePort('tcp');
  const srv = sServer(port, 'ecdsa', []);
  try {
    await srv.waitFor('ACCEPT');
    const bad = await runClient({ port, servername: 'localhost', ca: certs.otherCaPem }, { send: 'x', timeoutMs: 5000 });
    assert.ok(bad.error);
    assert.is((bad.error as Error & { code?: string }).code, 'ERR_TLS_ALERT_SENT', bad.error!.message);
    assert.is(bad.sock.info, null);
    const name = await runClient({ port, servername: 'wrong.example', ca: certs.caPem }, { send: 'x', timeoutMs: 5000 });
    assert.ok(name.error);
    assert.is((name.error as Error & { code?: string }).code, 'ERR_TLS_ALERT_SENT', name.error!.message);
  } finally {
    await srv.kill();
  }
});

for (const prov of PROVIDERS) {
  test(`petrel client → openssl s_server: resumption, 0-RTT accepted, KeyUpdate both ways [${prov}]`, async () => {
    if (!HAVE) return;
    const certs = makeCerts();
    const port = await freePort('tcp');
    const srv = sServer(port, 'ecdsa', ['-early_data'], false);
    const opts = { port, servername: 'localhost', ca: certs.caPem, provider: prov };
    const clients: OpenClient[] = [];
    try {
      await srv.waitFor('ACCEPT');
      const a = openClient(opts);
      clients.push(a);
      await a.secure;
      a.sock.write('first-ping\n');
      await srv.waitFor('first-ping');
      const ticket = await a.waitTicket();
      assert.is(ticket.maxEarlyData, 16384);
      a.sock.end();
      await srv.waitFor('DONE');

      const b = openClient({ ...opts, session: ticket, earlyData: 'early-hello\n' });
      clients.push(b);
      await b.secure;
      assert.is(b.sock.info!.resumed, true);
      assert.is(b.sock.info!.earlyData, 'accepted');
      assert.is(b.sock.info!.signatureScheme, null);
      await srv.waitFor('early-hello');
      assert.match(srv.out(), /Early data received/);
      b.sock.write('after-handshake\n');
      await srv.waitFor('after-handshake');
      // openssl sends KeyUpdate(update_requested): we switch our read key and answer with our own.
      srv.write('K\n');
      await srv.waitFor('SSL_do_handshake -> 1');
      srv.write('from-openssl-after-ku\n');
      await b.waitFor('from-openssl-after-ku');
      b.sock.write('client-after-ku\n');
      await srv.waitFor('client-after-ku');
      // our KeyUpdate, asking openssl to update as well
      b.sock.keyUpdate(true);
      b.sock.write('client-after-own-ku\n');
      await srv.waitFor('client-after-own-ku');
      srv.write('openssl-after-our-ku\n');
      await b.waitFor('openssl-after-our-ku');
      assert.is(b.error(), null);
    } finally {
      for (const c of clients) c.sock.destroy();
      await srv.kill();
    }
  });
}

// ------------------------------------------------------------------------------------------------
// openssl s_client → petrel server

const serverCases: {
  name: string;
  kind: CertKind;
  client: string[];
  server?: { groups?: ('x25519' | 'secp256r1')[] };
  suite: CipherSuite;
  group: string;
  scheme: string;
  hrr?: boolean;
  providers: readonly Prov[];
}[] = [
  { name: 'ECDSA cert, X25519, AES-128-GCM, ALPN', kind: 'ecdsa', client: ['-groups', 'X25519'], suite: 'TLS_AES_128_GCM_SHA256', group: 'x25519', scheme: 'ecdsa_secp256r1_sha256', providers: PROVIDERS },
  {
    name: 'RSA cert, P-256, AES-256-GCM',
    kind: 'rsa',
    client: ['-groups', 'P-256', '-ciphersuites', 'TLS_AES_256_GCM_SHA384'],
    suite: 'TLS_AES_256_GCM_SHA384',
    group: 'secp256r1',
    scheme: 'rsa_pss_rsae_sha256',
    providers: PROVIDERS,
  },
  {
    name: 'Ed25519 cert, ChaCha20-Poly1305',
    kind: 'ed25519',
    client: ['-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'],
    suite: 'TLS_CHACHA20_POLY1305_SHA256',
    group: 'x25519',
    scheme: 'ed25519',
    providers: PROVIDERS,
  },
  {
    name: 'HelloRetryRequest to P-256',
    kind: 'ecdsa',
    client: ['-groups', 'X25519:P-256'],
    server: { groups: ['secp256r1'] },
    suite: 'TLS_AES_128_GCM_SHA256',
    group: 'secp256r1',
    scheme: 'ecdsa_secp256r1_sha256',
    hrr: true,
    providers: ['node'],
  },
];

for (const c of serverCases) {
  for (const prov of c.providers) {
    test(`openssl s_client → petrel server: ${c.name} [${prov}]`, async () => {
      if (!HAVE) return;
      const cert = makeCerts().server[c.kind];
      const h = await startServer({ cert: cert.cert, key: cert.key, provider: prov, alpn: ['http/1.1'], ...(c.server?.groups ? { groups: c.server.groups } : {}) });
      const cl = sClient(h.port, [...c.client, '-alpn', 'h2,http/1.1']);
      try {
        const sock = await h.nextSecure(8000);
        cl.write('ping\n');
        await cl.waitFor('pong:ping');
        const out = cl.out();
        assert.match(out, /Verify return code: 0 \(ok\)/);
        assert.match(out, new RegExp(`New, TLSv1.3, Cipher is ${c.suite}`));
        assert.match(out, /ALPN protocol: http\/1.1/);
        const i = sock.info!;
        assert.is(i.suite, c.suite);
        assert.is(i.group, c.group);
        assert.is(i.signatureScheme, c.scheme);
        assert.is(i.alpn, 'http/1.1');
        assert.is(i.serverName, 'localhost');
        assert.is(i.helloRetry, !!c.hrr);
      } finally {
        await cl.kill();
        await h.close();
      }
    });
  }
}

test('openssl s_client → petrel server: client certificate required (present / absent)', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, clientAuth: 'require', ca: certs.caPem });
  const ok = sClient(h.port, ['-cert', certs.client.certFile, '-key', certs.client.keyFile]);
  let no: Peer | null = null;
  try {
    const sock = await h.nextSecure(8000);
    ok.write('ping\n');
    await ok.waitFor('pong:ping');
    assert.ok(sock.getPeerCertificates().length >= 1);
    no = sClient(h.port, []);
    no.write('ping\n');
    await no.waitFor(/alert|error/i, 5000);
    await no.exited;
    assert.ok(h.errors.some((e) => /certificate_required/.test(e.message)), h.errors.map((e) => e.message).join('; '));
  } finally {
    await ok.kill();
    await no?.kill();
    await h.close();
  }
});

for (const prov of PROVIDERS) {
  test(`openssl s_client → petrel server: resumption (-sess_out/-sess_in) and 0-RTT (-early_data) [${prov}]`, async () => {
    if (!HAVE) return;
    const certs = makeCerts();
    const sess = path.join(certs.dir, `sess-${prov}.pem`);
    const early = path.join(certs.dir, `early-${prov}.txt`);
    fs.writeFileSync(early, 'zero-rtt-hello\n');
    const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, provider: prov, maxEarlyData: 16384 });
    const peers: Peer[] = [];
    try {
      const a = sClient(h.port, ['-sess_out', sess]);
      peers.push(a);
      await h.nextSecure(8000);
      a.write('ping\n');
      await a.waitFor('pong:ping');
      a.endInput();
      await a.exited;
      assert.ok(fs.existsSync(sess), 'openssl saved the session');

      const b = sClient(h.port, ['-sess_in', sess, '-early_data', early]);
      peers.push(b);
      const sock = await h.nextSecure(8000);
      await b.waitFor('pong:zero-rtt-hello');
      assert.match(b.out(), /Reused, TLSv1.3/);
      assert.match(b.out(), /Early data was accepted/);
      assert.is(sock.info!.resumed, true);
      assert.is(sock.info!.earlyData, 'accepted');
      // KeyUpdate from openssl (requesting ours), then data both ways
      b.write('K\n');
      await b.waitFor('KEYUPDATE');
      b.write('after-ku\n');
      await b.waitFor('pong:after-ku');
      sock.keyUpdate(true);
      sock.write('server-after-own-ku\n');
      await b.waitFor('server-after-own-ku');
      b.write('again\n');
      await b.waitFor('pong:again');
    } finally {
      for (const p of peers) await p.kill();
      await h.close();
    }
  });
}

test('openssl s_client → petrel server: 0-RTT rejected (server without early data) falls back to 1-RTT', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  const sess = path.join(certs.dir, 'sess-reject.pem');
  const early = path.join(certs.dir, 'early-reject.txt');
  fs.writeFileSync(early, 'lost-early\n');
  // The ticket comes from a server that allows 0-RTT; the second server shares its ticket keys but not 0-RTT.
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, maxEarlyData: 16384 });
  const peers: Peer[] = [];
  try {
    const a = sClient(h.port, ['-sess_out', sess]);
    peers.push(a);
    await h.nextSecure(8000);
    a.write('ping\n');
    await a.waitFor('pong:ping');
    a.endInput();
    await a.exited;
    const keys = (h.server.config.tickets ?? {}).keys;
    const { normalizeServerConfig } = await import('../packages/tls-core/src/handshake/config.js');
    const h2 = await startServer({
      cert: certs.server.ecdsa.cert,
      key: certs.server.ecdsa.key,
      maxEarlyData: 0,
      tlsConfig: { tickets: { keys: keys ?? normalizeServerConfig(h.server.config).ticketKeys } },
    });
    try {
      const b = sClient(h2.port, ['-sess_in', sess, '-early_data', early]);
      peers.push(b);
      const sock = await h2.nextSecure(8000);
      await b.waitFor(/Early data was rejected/);
      assert.is(sock.info!.earlyData, 'none');
      b.write('one-rtt\n');
      await b.waitFor('pong:one-rtt');
      assert.ok(!b.out().includes('pong:lost-early'), 'rejected early data must not reach the application');
    } finally {
      await h2.close();
    }
  } finally {
    for (const p of peers) await p.kill();
    await h.close();
  }
});

test('0-RTT across a HelloRetryRequest: both sides skip/resend correctly (petrel client and petrel server)', async () => {
  if (!HAVE) return;
  const certs = makeCerts();
  // petrel client → s_server that only does P-256: our ClientHello (X25519MLKEM768 + X25519 shares) gets an HRR,
  // the 0-RTT records we already sent are skipped by openssl, and we resend the data after the handshake.
  const clients: OpenClient[] = [];
  try {
    const opts = { servername: 'localhost', ca: certs.caPem };
    const port2 = await freePort('tcp');
    // -no_anti_replay: with anti-replay on, openssl consumes the ticket on the first ClientHello and refuses it in the second
    const srv2 = sServer(port2, 'ecdsa', ['-early_data', '-no_anti_replay', '-groups', 'P-256'], false);
    try {
      await srv2.waitFor('ACCEPT');
      const b0 = openClient({ ...opts, port: port2 });
      clients.push(b0);
      await b0.secure;
      assert.is(b0.sock.info!.helloRetry, true);
      const t2 = await b0.waitTicket();
      b0.sock.end();
      await srv2.waitFor('DONE');
      // the ticket's group is irrelevant to the PSK, but our key shares still force an HRR
      const b = openClient({ ...opts, port: port2, session: t2, earlyData: 'resent-after-hrr\n' });
      clients.push(b);
      await b.secure;
      assert.is(b.sock.info!.helloRetry, true);
      assert.is(b.sock.info!.earlyData, 'rejected');
      assert.is(b.sock.info!.resumed, true);
      await srv2.waitFor('resent-after-hrr');
    } finally {
      await srv2.kill();
    }
  } finally {
    for (const c of clients) c.sock.destroy();
  }

  // s_client → petrel server that only does P-256, with 0-RTT: we send an HRR and skip the early records
  const sess = path.join(certs.dir, 'sess-hrr.pem');
  const early = path.join(certs.dir, 'early-hrr.txt');
  fs.writeFileSync(early, 'skipped-early\n');
  const h = await startServer({ cert: certs.server.ecdsa.cert, key: certs.server.ecdsa.key, maxEarlyData: 16384, groups: ['secp256r1'] });
  const peers: Peer[] = [];
  try {
    const a = sClient(h.port, ['-groups', 'P-256', '-sess_out', sess]);
    peers.push(a);
    await h.nextSecure(8000);
    a.write('ping\n');
    await a.waitFor('pong:ping');
    a.endInput();
    await a.exited;
    const b = sClient(h.port, ['-groups', 'X25519:P-256', '-sess_in', sess, '-early_data', early]);
    peers.push(b);
    const sock = await h.nextSecure(8000);
    await b.waitFor(/Early data was rejected/);
    assert.is(sock.info!.helloRetry, true);
    assert.is(sock.info!.resumed, true);
    assert.is(sock.info!.earlyData, 'none');
    b.write('after-hrr\n');
    await b.waitFor('pong:after-hrr');
    assert.ok(!b.out().includes('pong:skipped-early'));
  } finally {
    for (const p of peers) await p.kill();
    await h.close();
  }
});

test.run();
