/**
 * The node:tls compatibility layer as a drop-in: every scenario below is plain node:tls code that
 * takes its `tls` module as a parameter. It runs with node:tls on both sides (the reference), then
 * with Petrel's layer as the client, as the server, and on both sides; what the application can
 * observe (events, authorized / authorizationError, error codes, ALPN, SNI, certificate objects,
 * resumption) must equal the reference. Also: https.request through an Agent whose
 * createConnection is the layer's connect, hostile bytes against a server, and unsupported options
 * raising at the call.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import nodeTls from 'node:tls';
import petrelTls, * as named from '@petrel/tls-core/compat/node-tls';
import { Rng } from '../../../test/support/rng.js';
import { OpensslPki, hasOpenssl, type PkiCert } from './x509-openssl.js';

// A node:tls-shaped module: what the scenarios use of it.
type Tls = typeof nodeTls;
const petrel = petrelTls as unknown as Tls;

const HAVE = hasOpenssl();
const pki = HAVE ? new OpensslPki() : null;
interface Pem {
  cert: string;
  key: string;
}
let CA: PkiCert, OTHER_CA: PkiCert;
let SRV: Pem, B: Pem, CLIENT: Pem, SELF: Pem, STRANGER: Pem, SELF_CLIENT: Pem, RSA: Pem, CN_ONLY: Pem;
if (pki) {
  const caExt = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
  const leaf = (san: string, eku = 'serverAuth'): string[] => ['basicConstraints=CA:FALSE', `subjectAltName=${san}`, `extendedKeyUsage=${eku}`];
  const pem = (c: PkiCert): Pem => ({ cert: c.pem, key: pki.keyPem(`k-${c.name}`) });
  CA = pki.issue('ca', { subj: '/C=NL/O=Petrel/CN=Petrel Test CA', ext: caExt });
  OTHER_CA = pki.issue('other-ca', { subj: '/CN=Some Other CA', ext: caExt });
  SRV = pem(pki.issue('srv', { subj: '/C=NL/O=Petrel/OU=Edge/OU=TLS/CN=localhost', issuer: CA, ext: leaf('DNS:localhost,IP:127.0.0.1,DNS:*.wild.example') }));
  B = pem(pki.issue('b', { subj: '/CN=b.example', issuer: CA, ext: leaf('DNS:b.example') }));
  CLIENT = pem(pki.issue('client', { subj: '/O=Petrel/CN=client', issuer: CA, ext: leaf('DNS:client.example', 'clientAuth') }));
  SELF = pem(pki.issue('self', { subj: '/CN=localhost', ext: leaf('DNS:localhost,IP:127.0.0.1') }));
  STRANGER = pem(pki.issue('stranger', { subj: '/CN=localhost', issuer: OTHER_CA, ext: leaf('DNS:localhost') }));
  SELF_CLIENT = pem(pki.issue('self-client', { subj: '/CN=self client', ext: leaf('DNS:x.example', 'clientAuth') }));
  const cnOnly = pki.issue('cn-only', { subj: '/O=Petrel/CN=localhost', issuer: CA, ext: ['basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth'] });
  CN_ONLY = pem(cnOnly);
  pki.key('rsa-key', 'rsa');
  const rsa = pki.issue('rsa', { subj: '/CN=localhost/OU=rsa', issuer: CA, key: 'rsa-key', ext: leaf('DNS:localhost') });
  RSA = { cert: rsa.pem, key: pki.keyPem('rsa-key') };
}

const PAIRS: [string, Tls, Tls][] = [
  ['petrel client -> node server', nodeTls, petrel],
  ['node client -> petrel server', petrel, nodeTls],
  ['petrel client -> petrel server', petrel, petrel],
];

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Waits until `cond()` holds (events on the other side of a connection arrive a little later), at most 3 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let t = 0; t < 300 && !cond(); t++) await new Promise((r) => setTimeout(r, 10));
}

interface Listening {
  server: nodeTls.Server;
  port: number;
  /** Observations on the server side. */
  seen: Record<string, unknown>[];
  clientErrors: string[];
  close(): Promise<void>;
}

/** A server that answers "ping" with "pong <alpn>" and records what it saw of each connection. */
async function listen(tls: Tls, options: nodeTls.TlsOptions): Promise<Listening> {
  const seen: Record<string, unknown>[] = [];
  const clientErrors: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(options, (s) => {
    const peer = s.getPeerCertificate();
    seen.push({
      authorized: s.authorized,
      authorizationError: s.authorizationError ?? null,
      alpn: s.alpnProtocol,
      servername: (s as unknown as { servername: unknown }).servername,
      protocol: s.getProtocol(),
      peerCN: peer && 'subject' in peer && peer.subject ? peer.subject.CN : null,
      ownCN: (s.getCertificate() as nodeTls.PeerCertificate | null)?.subject?.CN ?? null,
      encrypted: s.encrypted,
    });
    s.on('error', () => {});
    s.on('data', (d: Buffer) => s.end(`pong ${d} ${s.alpnProtocol}`));
  });
  server.on('connection', (c: net.Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  server.on('tlsClientError', (e: Error & { code?: string }) => clientErrors.push(e.code ?? e.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    seen,
    clientErrors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of sockets) c.destroy();
        server.close(() => resolve());
      }),
  };
}

interface ClientResult {
  event: 'secureConnect' | 'error';
  code?: string;
  authorized?: boolean;
  authorizationError?: string | null;
  alpn?: string | false | null;
  protocol?: string | null;
  reply?: string;
  reused?: boolean;
  peerCN?: unknown;
  servername?: unknown;
  ownCN?: unknown;
  session?: Buffer;
  socket?: nodeTls.TLSSocket;
}

/** Connects, sends "ping", collects the reply (and the first session Buffer) or the error. */
function talk(tls: Tls, options: nodeTls.ConnectionOptions, opts: { waitSession?: boolean; keep?: boolean } = {}): Promise<ClientResult> {
  return deadline(
    new Promise<ClientResult>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', ...options });
      let result: ClientResult | null = null;
      let reply = '';
      let session: Buffer | undefined;
      let ended = false;
      const finish = (): void => {
        if (!result || !ended || (opts.waitSession && !session)) return;
        if (session) result.session = session;
        if (opts.keep) result.socket = s;
        result.reply = reply;
        resolve(result);
      };
      s.on('session', (b: Buffer) => {
        session ??= b;
        finish();
      });
      s.on('secureConnect', () => {
        const peer = s.getPeerCertificate();
        result = {
          event: 'secureConnect',
          authorized: s.authorized,
          authorizationError: (s.authorizationError as unknown as string | undefined) ?? null,
          alpn: s.alpnProtocol,
          protocol: s.getProtocol(),
          reused: s.isSessionReused(),
          peerCN: peer && 'subject' in peer && peer.subject ? peer.subject.CN : null,
          servername: (s as unknown as { servername: unknown }).servername,
          ownCN: (s.getCertificate() as nodeTls.PeerCertificate | null)?.subject?.CN ?? null,
        };
        s.write('ping');
      });
      s.on('data', (d: Buffer) => (reply += d));
      s.on('end', () => {
        ended = true;
        finish();
      });
      s.on('error', (e: Error & { code?: string }) => {
        if (result) {
          // After the handshake (e.g. the server refused our certificate): keep what we saw.
          result.code = e.code ?? e.message;
          ended = true;
          if (opts.waitSession) session ??= Buffer.alloc(0);
          finish();
          return;
        }
        resolve({ event: 'error', code: e.code ?? e.message });
      });
    }),
    10_000,
    'client',
  );
}

/** Runs `scenario` with node:tls on both sides and with each pair; every result must equal node's. */
function differential(name: string, scenario: (server: Tls, client: Tls) => Promise<unknown>): void {
  test(`drop-in: ${name}`, async () => {
    if (!HAVE) return console.log('  (skipped: no openssl CLI)');
    const reference = await scenario(nodeTls, nodeTls);
    for (const [label, srv, cli] of PAIRS) {
      const got = await scenario(srv, cli);
      assert.equal(got, reference, `${label}: ${JSON.stringify(got)} != node:tls ${JSON.stringify(reference)}`);
    }
  });
}

const strip = (r: ClientResult): ClientResult => {
  const { session: _s, socket: _k, ...rest } = r;
  return rest;
};

differential('ALPN, echo, authorized with the CA, server sees servername', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, { ...SRV, ALPNProtocols: ['h2', 'http/1.1'] });
  try {
    const r = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['http/1.1'] });
    const noAlpn = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: [Buffer.from(CA.pem)] });
    // IP literal host, no servername: checked against the IP SAN, no SNI sent.
    const byIp = await talk(cliTls, { port: srv.port, ca: CA.pem });
    return { r: strip(r), noAlpn: strip(noAlpn), byIp: strip(byIp), server: srv.seen };
  } finally {
    await srv.close();
  }
});

differential('ALPN in wire format (Buffer) and no common protocol', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, { ...SRV, ALPNProtocols: Buffer.from('\x02h2\x08http/1.1') as unknown as string[] });
  try {
    const wire = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: Buffer.from('\x08http/1.1') as unknown as string[] });
    const none = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['spdy/1'] });
    return { wire: strip(wire), none: none.event, noneCode: none.code, serverErrors: srv.clientErrors };
  } finally {
    await srv.close();
  }
});

differential('SNICallback chooses between two certificates', async (srvTls, cliTls) => {
  const ctxB = srvTls.createSecureContext(B);
  const names: string[] = [];
  const srv = await listen(srvTls, {
    ...SRV,
    SNICallback: (name, cb) => {
      names.push(name);
      cb(null, name === 'b.example' ? ctxB : undefined);
    },
  });
  try {
    const b = await talk(cliTls, { port: srv.port, servername: 'b.example', ca: CA.pem });
    const a = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem });
    return { b: strip(b), a: strip(a), names, server: srv.seen.map((s) => [s.servername, s.ownCN]) };
  } finally {
    await srv.close();
  }
});

differential('rejectUnauthorized (default true): node error codes', async (srvTls, cliTls) => {
  const self = await listen(srvTls, SELF);
  const stranger = await listen(srvTls, STRANGER);
  const good = await listen(srvTls, SRV);
  const cnOnly = await listen(srvTls, CN_ONLY);
  try {
    return {
      // No subjectAltName: node:tls falls back to the subject CN.
      cnOnly: strip(await talk(cliTls, { port: cnOnly.port, servername: 'localhost', ca: CA.pem })),
      cnOnlyWrong: await talk(cliTls, { port: cnOnly.port, servername: 'other', ca: CA.pem }),
      selfSigned: await talk(cliTls, { port: self.port, servername: 'localhost', ca: CA.pem }),
      unknownIssuer: await talk(cliTls, { port: stranger.port, servername: 'localhost', ca: CA.pem }),
      wrongName: await talk(cliTls, { port: good.port, servername: 'wrong.example', ca: CA.pem }),
      wildcard: strip(await talk(cliTls, { port: good.port, servername: 'x.wild.example', ca: CA.pem })),
      wildcardTooDeep: await talk(cliTls, { port: good.port, servername: 'a.x.wild.example', ca: CA.pem }),
      defaultRoots: await talk(cliTls, { port: good.port, servername: 'localhost' }),
    };
  } finally {
    await Promise.all([self.close(), stranger.close(), good.close(), cnOnly.close()]);
  }
});

differential('rejectUnauthorized: false connects with authorized=false and authorizationError', async (srvTls, cliTls) => {
  const self = await listen(srvTls, SELF);
  const good = await listen(srvTls, SRV);
  try {
    return {
      selfSigned: strip(await talk(cliTls, { port: self.port, servername: 'localhost', ca: CA.pem, rejectUnauthorized: false })),
      wrongName: strip(await talk(cliTls, { port: good.port, servername: 'wrong.example', ca: CA.pem, rejectUnauthorized: false })),
    };
  } finally {
    await Promise.all([self.close(), good.close()]);
  }
});

// Name constraints and the CN fallback: a CA constrained to example.com must not be able to issue a
// SAN-less leaf that checkServerIdentity accepts by its CN for a name outside example.com (OpenSSL
// checks the CN against the DNS constraints then: "permitted subtree violation", code UNSPECIFIED).
let NC: { evil: Pem; good: Pem; excluded: Pem; single: Pem } | null = null;
if (pki) {
  const caExt = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
  const noSan = ['basicConstraints=CA:FALSE', 'extendedKeyUsage=serverAuth'];
  const permitted = pki.issue('nc-int', { subj: '/CN=Constrained Intermediate', issuer: CA!, ext: [...caExt, 'nameConstraints=critical,permitted;DNS:example.com'] });
  const excluding = pki.issue('nc-int-x', { subj: '/CN=Excluding Intermediate', issuer: CA!, ext: [...caExt, 'nameConstraints=critical,excluded;DNS:evil.test'] });
  const withChain = (c: PkiCert, int: PkiCert): Pem => ({ cert: c.pem + int.pem, key: pki.keyPem(`k-${c.name}`) });
  NC = {
    evil: withChain(pki.issue('nc-evil', { subj: '/CN=evil.test', issuer: permitted, ext: noSan }), permitted),
    good: withChain(pki.issue('nc-good', { subj: '/CN=good.example.com', issuer: permitted, ext: noSan }), permitted),
    excluded: withChain(pki.issue('nc-excl', { subj: '/CN=www.evil.test', issuer: excluding, ext: noSan }), excluding),
    single: withChain(pki.issue('nc-single', { subj: '/CN=localhost', issuer: permitted, ext: noSan }), permitted),
  };
}

differential('name constraints apply to the subject CN when it is used as the host name (no DNS SAN)', async (srvTls, cliTls) => {
  const evil = await listen(srvTls, NC!.evil);
  const good = await listen(srvTls, NC!.good);
  const excluded = await listen(srvTls, NC!.excluded);
  try {
    return {
      evil: await talk(cliTls, { port: evil.port, servername: 'evil.test', ca: CA.pem }),
      evilLax: strip(await talk(cliTls, { port: evil.port, servername: 'evil.test', ca: CA.pem, rejectUnauthorized: false })),
      // The chain error comes first, whatever the host name (OpenSSL checks it during chain verification).
      evilOtherName: await talk(cliTls, { port: evil.port, servername: 'good.example.com', ca: CA.pem }),
      good: strip(await talk(cliTls, { port: good.port, servername: 'good.example.com', ca: CA.pem })),
      excluded: await talk(cliTls, { port: excluded.port, servername: 'www.evil.test', ca: CA.pem }),
      excludedLax: strip(await talk(cliTls, { port: excluded.port, servername: 'www.evil.test', ca: CA.pem, rejectUnauthorized: false })),
    };
  } finally {
    await Promise.all([evil.close(), good.close(), excluded.close()]);
  }
});

test('compat client: a single-label CN outside the DNS name constraints is refused (deliberately stricter than OpenSSL)', async () => {
  if (!HAVE) return;
  // OpenSSL does not treat a one-label CN ("localhost") as a DNS name for name constraints, yet
  // checkServerIdentity matches it against the host "localhost": the constraint would not hold.
  const srv = await listen(nodeTls, NC!.single);
  try {
    const r = await talk(petrel, { port: srv.port, servername: 'localhost', ca: CA.pem });
    assert.equal([r.event, r.code], ['error', 'UNSPECIFIED']);
  } finally {
    await srv.close();
  }
});

// Leaves with basicConstraints CA:TRUE: OpenSSL accepts them when a trusted CA issued them, and an
// untrusted self-signed one (what `openssl req -x509` makes) is DEPTH_ZERO_SELF_SIGNED_CERT. The
// core WebPkiVerifier refuses CA leaves (webpki's choice, kind 'ca-as-leaf'); the layer decides as node.
let CA_LEAF: { selfSigned: Pem; issued: Pem; issuedSignOnly: Pem } | null = null;
if (pki) {
  const reqX509 = ['basicConstraints=critical,CA:TRUE', 'subjectKeyIdentifier=hash', 'subjectAltName=DNS:ss.test,IP:127.0.0.1'];
  const ss = pki.issue('ca-leaf-ss', { subj: '/CN=ss.test', ext: reqX509 });
  const issued = pki.issue('ca-leaf-issued', { subj: '/CN=caleaf.test', issuer: CA!, ext: ['basicConstraints=critical,CA:TRUE', 'subjectAltName=DNS:caleaf.test'] });
  const signOnly = pki.issue('ca-leaf-signonly', {
    subj: '/CN=caleaf.test',
    issuer: CA!,
    ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectAltName=DNS:caleaf.test'],
  });
  const pem = (c: PkiCert): Pem => ({ cert: c.pem, key: pki.keyPem(`k-${c.name}`) });
  CA_LEAF = { selfSigned: pem(ss), issued: pem(issued), issuedSignOnly: pem(signOnly) };
}

differential('leaf certificates with basicConstraints CA:TRUE: self-signed untrusted, issued by the CA, trusted directly', async (srvTls, cliTls) => {
  const ss = await listen(srvTls, CA_LEAF!.selfSigned);
  const issued = await listen(srvTls, CA_LEAF!.issued);
  const signOnly = await listen(srvTls, CA_LEAF!.issuedSignOnly);
  try {
    return {
      selfSigned: await talk(cliTls, { port: ss.port, servername: 'ss.test', ca: CA.pem }),
      selfSignedLax: strip(await talk(cliTls, { port: ss.port, servername: 'ss.test', ca: CA.pem, rejectUnauthorized: false })),
      selfSignedTrusted: strip(await talk(cliTls, { port: ss.port, ca: CA_LEAF!.selfSigned.cert })),
      issued: strip(await talk(cliTls, { port: issued.port, servername: 'caleaf.test', ca: CA.pem })),
      // keyUsage without digitalSignature: not usable for a TLS server (INVALID_PURPOSE).
      issuedSignOnly: await talk(cliTls, { port: signOnly.port, servername: 'caleaf.test', ca: CA.pem }),
    };
  } finally {
    await Promise.all([ss.close(), issued.close(), signOnly.close()]);
  }
});

differential('checkServerIdentity is called with the host name and the certificate', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, SRV);
  try {
    const calls: unknown[] = [];
    const ok = await talk(cliTls, {
      port: srv.port,
      servername: 'pinned.example',
      ca: CA.pem,
      checkServerIdentity: (host, cert) => {
        calls.push([host, cert.subject.CN, cert.subjectaltname, typeof cert.fingerprint256, Buffer.isBuffer(cert.raw)]);
        return undefined;
      },
    });
    const refused = await talk(cliTls, {
      port: srv.port,
      servername: 'localhost',
      ca: CA.pem,
      checkServerIdentity: () => Object.assign(new Error('pin mismatch'), { code: 'PIN_MISMATCH' }),
    });
    return { ok: strip(ok), refused, calls };
  } finally {
    await srv.close();
  }
});

differential('client certificates with requestCert', async (srvTls, cliTls) => {
  const strict = await listen(srvTls, { ...SRV, requestCert: true, rejectUnauthorized: true, ca: CA.pem });
  const lax = await listen(srvTls, { ...SRV, requestCert: true, rejectUnauthorized: false, ca: CA.pem });
  try {
    const withCert = strip(await talk(cliTls, { port: strict.port, servername: 'localhost', ca: CA.pem, ...CLIENT }));
    const laxNone = strip(await talk(cliTls, { port: lax.port, servername: 'localhost', ca: CA.pem }));
    const laxSelf = strip(await talk(cliTls, { port: lax.port, servername: 'localhost', ca: CA.pem, ...SELF_CLIENT }));
    const laxGood = strip(await talk(cliTls, { port: lax.port, servername: 'localhost', ca: CA.pem, ...CLIENT }));
    const strictNone = await talk(cliTls, { port: strict.port, servername: 'localhost', ca: CA.pem });
    await until(() => strict.clientErrors.length >= 1);
    return {
      withCert: withCert.reply,
      laxNone: laxNone.reply,
      laxSelf: laxSelf.reply,
      laxGood: laxGood.reply,
      // The client may finish its side of the handshake before the server refuses (TLS 1.3): only the reply matters.
      strictNoneReplied: !!strictNone.reply,
      // The server's alert, as the client reports it (node: the OpenSSL reason code).
      strictNoneCode: strictNone.code,
      strictServer: strict.seen,
      strictRefused: strict.clientErrors.length,
      strictServerErrors: strict.clientErrors,
      laxServer: lax.seen,
    };
  } finally {
    await Promise.all([strict.close(), lax.close()]);
  }
});

test('a refused client certificate: the compat server aborts the handshake and reports the node verify code', async () => {
  if (!HAVE) return;
  // node:tls finishes the handshake, then destroys the socket (its client sees a plain close, its
  // server a tlsClientError ECONNRESET); Petrel refuses in the handshake with the alert instead.
  const srv = await listen(petrel, { ...SRV, requestCert: true, rejectUnauthorized: true, ca: CA.pem });
  try {
    for (const cli of [nodeTls, petrel]) {
      const r = await talk(cli, { port: srv.port, servername: 'localhost', ca: CA.pem, ...SELF_CLIENT });
      assert.is(r.code, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
      assert.ok(!r.reply);
    }
    await until(() => srv.clientErrors.length >= 2);
    assert.equal(srv.clientErrors, ['DEPTH_ZERO_SELF_SIGNED_CERT', 'DEPTH_ZERO_SELF_SIGNED_CERT']);
    assert.is(srv.seen.length, 0);
  } finally {
    await srv.close();
  }
});

differential('session resumption with the session Buffer', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, { ...SRV, ALPNProtocols: ['http/1.1'] });
  try {
    const first = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['http/1.1'] }, { waitSession: true });
    assert.ok(Buffer.isBuffer(first.session) && first.session.length > 0, 'a session Buffer');
    const second = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['http/1.1'], session: first.session });
    return { first: strip(first), second: strip(second) };
  } finally {
    await srv.close();
  }
});

differential('getPeerCertificate() objects equal node:tls field by field', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, SRV);
  try {
    const r = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem }, { keep: true });
    const s = r.socket!;
    const flat = s.getPeerCertificate();
    const detailed = s.getPeerCertificate(true);
    const chain: unknown[] = [];
    let c: nodeTls.DetailedPeerCertificate | undefined = detailed;
    for (let i = 0; c && i < 5; i++) {
      chain.push([c.subject.CN, c.issuer.CN, c.issuerCertificate === c]);
      if (c.issuerCertificate === c) break;
      c = c.issuerCertificate;
    }
    const { issuerCertificate: _i, ...detailedLeaf } = detailed;
    const cipher = s.getCipher();
    return {
      flat: { ...flat, raw: flat.raw.toString('base64'), pubkey: flat.pubkey?.toString('base64') },
      detailedLeafEqualsFlat: JSON.stringify({ ...detailedLeaf, raw: 0, pubkey: 0 }) === JSON.stringify({ ...flat, raw: 0, pubkey: 0 }),
      chain,
      protocol: s.getProtocol(),
      cipherVersion: cipher.version,
      cipherKnown: petrelTls.getCiphers().includes(cipher.name.toLowerCase()) && cipher.name === cipher.standardName,
      ephemeral: (s.getEphemeralKeyInfo() as { type?: string }).type !== undefined,
    };
  } finally {
    await srv.close();
  }
});

differential('ALPNCallback picks the protocol; undefined refuses the connection', async (srvTls, cliTls) => {
  const offers: unknown[] = [];
  const srv = await listen(srvTls, {
    ...SRV,
    ALPNCallback: ({ servername, protocols }) => {
      offers.push([servername, protocols]);
      return protocols.includes('b') ? 'b' : undefined;
    },
  });
  try {
    const ok = strip(await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['a', 'b'] }));
    const refused = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['c'] });
    return { ok, refused: refused.event, offers };
  } finally {
    await srv.close();
  }
});

differential('cert/key arrays (RSA + ECDSA): the certificate follows the client\'s signature algorithms', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, { cert: [RSA.cert, SRV.cert], key: [SRV.key, RSA.key] });
  try {
    const kind = async (sigalgs?: string): Promise<unknown> => {
      const r = await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem, ...(sigalgs ? { sigalgs } : {}) }, { keep: true });
      const c = r.socket!.getPeerCertificate();
      return [r.event, c.subject?.OU ?? null, c.bits, c.asn1Curve ?? null];
    };
    return { rsa: await kind('rsa_pss_rsae_sha256'), ec: await kind('ecdsa_secp256r1_sha256') };
  } finally {
    await srv.close();
  }
});

differential('encrypted private keys with passphrase (top level and per key)', async (srvTls, cliTls) => {
  const encrypted = crypto.createPrivateKey(SRV.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string;
  const a = await listen(srvTls, { cert: SRV.cert, key: encrypted, passphrase: 'secret' });
  const b = await listen(srvTls, { cert: SRV.cert, key: [{ pem: encrypted, passphrase: 'secret' }] });
  let wrong: string | undefined;
  try {
    srvTls.createServer({ cert: SRV.cert, key: encrypted, passphrase: 'wrong' });
  } catch (e) {
    wrong = (e as { code?: string }).code;
  }
  try {
    return {
      a: strip(await talk(cliTls, { port: a.port, servername: 'localhost', ca: CA.pem })),
      b: strip(await talk(cliTls, { port: b.port, servername: 'localhost', ca: CA.pem })),
      wrong,
    };
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

differential('server.addContext (wildcard) and the server keylog event', async (srvTls, cliTls) => {
  const srv = await listen(srvTls, SRV);
  srv.server.addContext('*.example', { ...B });
  const labels = new Set<string>();
  let sameSocket = true;
  srv.server.on('keylog', (line: Buffer, s: nodeTls.TLSSocket) => {
    labels.add(line.toString().split(' ')[0]!);
    sameSocket &&= typeof s.getProtocol === 'function' && line.toString().endsWith('\n');
  });
  try {
    const b = strip(await talk(cliTls, { port: srv.port, servername: 'b.example', ca: CA.pem }));
    const a = strip(await talk(cliTls, { port: srv.port, servername: 'localhost', ca: CA.pem }));
    return { b: b.peerCN, a: a.peerCN, labels: [...labels].sort(), sameSocket };
  } finally {
    await srv.close();
  }
});

differential('connect({ socket }) over an existing connection, and STARTTLS with new TLSSocket', async (srvTls, cliTls) => {
  // A plaintext greeting, then TLS on the same TCP connection (both sides upgrade a net.Socket).
  const ctx = srvTls.createSecureContext(SRV);
  const seen: unknown[] = [];
  const plain = net.createServer((c) => {
    c.once('data', () => {
      const t = new srvTls.TLSSocket(c, { isServer: true, secureContext: ctx, ALPNProtocols: ['x'] });
      t.on('secure', () => seen.push(['secure', t.alpnProtocol, t.getProtocol()]));
      t.on('error', () => {});
      t.on('data', (d: Buffer) => t.end(`tls ${d}`));
      c.write('go\n');
    });
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  try {
    const c = net.connect((plain.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise<void>((r) => c.once('connect', () => r()));
    c.write('STARTTLS\n');
    await new Promise<void>((r) => c.once('data', () => r()));
    const r = strip(await talk(cliTls, { socket: c, servername: 'localhost', ca: CA.pem, ALPNProtocols: ['x'] }));
    await until(() => seen.length >= 1);
    return { r, seen };
  } finally {
    plain.close();
  }
});

test('hostile servers: garbage answers to the compat client end in an error event, never an exception', async () => {
  const rng = new Rng(11);
  const answers: Buffer[] = [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 2, 40]), Buffer.alloc(0)];
  for (let i = 0; i < 12; i++) answers.push(Buffer.from(rng.bytes(1 + rng.int(400))));
  for (const answer of answers) {
    const srv = net.createServer((c) => {
      c.on('error', () => {});
      c.once('data', () => c.end(answer));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const code = await deadline(
        new Promise<string>((resolve) => {
          const s = petrelTls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
          s.on('secureConnect', () => resolve('connected?!'));
          s.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'no code'));
        }),
        5000,
        'hostile server',
      );
      assert.is.not(code, 'connected?!');
      assert.ok(/^(ERR_|ECONN)/.test(code), code);
    } finally {
      srv.close();
    }
  }
});

differential('8 MiB each way with backpressure (pipe through an echo server)', async (srvTls, cliTls) => {
  const srv = srvTls.createServer({ ...SRV }, (s) => s.pipe(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const data = crypto.createHash('sha256');
    const payload = Buffer.alloc(8 << 20);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    const s = cliTls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: CA.pem });
    let n = 0;
    s.on('data', (d: Buffer) => {
      n += d.length;
      data.update(d);
    });
    s.once('secureConnect', () => {
      // Many writes, honouring write() === false.
      let off = 0;
      const pump = (): void => {
        while (off < payload.length) {
          const chunk = payload.subarray(off, off + 100_000);
          off += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    await deadline(new Promise((r) => s.once('end', r)), 20_000, 'bulk echo');
    return { n, same: data.digest('hex') === crypto.createHash('sha256').update(payload).digest('hex') };
  } finally {
    srv.close();
  }
});

differential('exportKeyingMaterial and getFinished/getPeerFinished agree across the connection, full and resumed', async (srvTls, cliTls) => {
  const accepted: nodeTls.TLSSocket[] = [];
  const server = srvTls.createServer({ ...SRV }, (s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  const conns = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => (conns.add(c), c.on('close', () => conns.delete(c))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const codeOf = (f: () => unknown): string => {
    try {
      f();
      return 'no error';
    } catch (e) {
      return (e as { code?: string }).code ?? 'no code';
    }
  };
  // node's typings make context mandatory; node:tls itself accepts it omitted.
  type Ekm = (length: number, label: string, context?: Buffer) => Buffer;
  const ekm = (s: nodeTls.TLSSocket): Ekm => s.exportKeyingMaterial.bind(s) as Ekm;
  const cases: [string, number, Buffer | undefined][] = [
    ['EXPORTER-Channel-Binding', 32, undefined],
    ['EXPORTER-compat', 64, Buffer.alloc(0)],
    ['EXPORTER-compat', 100, Buffer.from('some context')],
  ];
  const one = async (session?: Buffer): Promise<{ obs: Record<string, unknown>; session: Buffer | undefined }> => {
    const n0 = accepted.length;
    const c = cliTls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: CA.pem, ...(session ? { session } : {}) });
    c.on('error', () => {});
    let got: Buffer | undefined;
    c.on('session', (b: Buffer) => (got ??= b));
    const before = { ekm: codeOf(() => ekm(c)(32, 'EXPORTER-x')), badLength: codeOf(() => ekm(c)(0, 'EXPORTER-x')), finished: c.getFinished(), peerFinished: c.getPeerFinished() };
    await deadline(new Promise((r) => c.once('secureConnect', r)), 10_000, 'secureConnect');
    await until(() => accepted.length > n0);
    const s = accepted[n0]!;
    if (!session) await until(() => got !== undefined);
    const cOut = cases.map(([l, n2, ctx]) => ekm(c)(n2, l, ctx).toString('hex'));
    const sOut = cases.map(([l, n2, ctx]) => ekm(s)(n2, l, ctx).toString('hex'));
    const obs = {
      reused: c.isSessionReused(),
      before,
      agree: cOut.map((x, i) => x === sOut[i]),
      lengths: cOut.map((x) => x.length / 2),
      distinct: new Set(cOut).size,
      noContextIsEmpty: ekm(c)(64, 'EXPORTER-compat').toString('hex') === cOut[1],
      finishedCross: c.getFinished()!.equals(s.getPeerFinished()!) && c.getPeerFinished()!.equals(s.getFinished()!),
      finishedDiffer: !c.getFinished()!.equals(c.getPeerFinished()!),
    };
    c.destroy();
    return { obs, session: got };
  };
  try {
    const full = await one();
    const resumed = await one(full.session);
    return { full: full.obs, resumed: resumed.obs };
  } finally {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('ticket lifetime: sessionTimeout, and the same default as node:tls servers', async () => {
  if (!HAVE) return;
  const lifetime = async (srvTls: Tls, o: nodeTls.TlsOptions): Promise<number> => {
    const srv = await listen(srvTls, { ...SRV, ...o });
    try {
      const r = await talk(petrel, { port: srv.port, servername: 'localhost', ca: CA.pem }, { waitSession: true });
      const env = JSON.parse(r.session!.toString()) as { ticket: string };
      return (JSON.parse(env.ticket) as { lifetimeSeconds: number }).lifetimeSeconds;
    } finally {
      await srv.close();
    }
  };
  assert.is(await lifetime(petrel, {}), await lifetime(nodeTls, {}));
  assert.is(await lifetime(nodeTls, { sessionTimeout: 60 }), 60);
  assert.is(await lifetime(petrel, { sessionTimeout: 60 }), 60);
});

test('typical node:tls code compiles and runs against the layer without casts', async () => {
  if (!HAVE) return;
  // Typed as a node:tls user writes it (types from node:tls, module from Petrel).
  const contexts = new Map<string, nodeTls.SecureContext>([['b.example', petrelTls.createSecureContext({ cert: B.cert, key: B.key })]]);
  const options: nodeTls.TlsOptions = {
    cert: SRV.cert,
    key: SRV.key,
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['http/1.1'],
    SNICallback: (name, cb) => cb(null, contexts.get(name)),
  };
  const server = petrelTls.createServer(options, (socket) => {
    const peer: nodeTls.PeerCertificate = socket.getPeerCertificate();
    socket.end(`${socket.servername} ${socket.alpnProtocol} ${Object.keys(peer).length}`);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  try {
    const connectOptions: nodeTls.ConnectionOptions = { host: '127.0.0.1', port, servername: 'b.example', ca: [CA.pem], ALPNProtocols: ['http/1.1'] };
    const socket = petrelTls.connect(connectOptions, () => {
      const cert: nodeTls.DetailedPeerCertificate = socket.getPeerCertificate(true);
      const cipher: nodeTls.CipherNameAndProtocol = socket.getCipher();
      lines.push(`${socket.authorized} ${cert.subject.CN} ${cert.issuerCertificate.subject.CN} ${cipher.version} ${socket.getProtocol()}`);
    });
    const lines: string[] = [];
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (reply += d));
    await deadline(new Promise((r) => socket.on('end', r)), 5000, 'typed client');
    assert.equal(lines, ['true b.example Petrel Test CA TLSv1.3 TLSv1.3']);
    assert.is(reply, 'b.example http/1.1 0');
  } finally {
    server.close();
  }
});

test('named exports and constants match node:tls where they apply', () => {
  assert.is(named.DEFAULT_MIN_VERSION, 'TLSv1.3');
  assert.is(named.DEFAULT_MAX_VERSION, 'TLSv1.3');
  assert.is(petrelTls.connect, named.connect);
  assert.is(petrelTls.createServer, named.createServer);
  assert.is(petrelTls.TLSSocket, named.TLSSocket);
  assert.equal([...named.rootCertificates], [...nodeTls.rootCertificates]);
  // Everything node:tls exports is there (parseCertString: deprecated and removed from node since).
  const missing = Object.keys(nodeTls).filter((k) => k !== 'parseCertString' && !(k in petrelTls) && !(k in named));
  assert.equal(missing, []);
  const mine: { ALPNProtocols?: Buffer } = {};
  const theirs: { ALPNProtocols?: Buffer } = {};
  named.convertALPNProtocols(['h2', 'http/1.1'], mine);
  (nodeTls as unknown as { convertALPNProtocols: typeof named.convertALPNProtocols }).convertALPNProtocols(['h2', 'http/1.1'], theirs);
  assert.equal(mine.ALPNProtocols, theirs.ALPNProtocols);
  for (const c of named.getCiphers()) assert.ok(nodeTls.getCiphers().includes(c), c);
  // checkServerIdentity on node's own certificate objects, same verdicts as node's.
  const cert = { subject: { CN: 'localhost' }, subjectaltname: 'DNS:localhost, DNS:*.a.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1' } as unknown as nodeTls.PeerCertificate;
  for (const host of ['localhost', 'x.a.example', 'y.x.a.example', 'a.example', '127.0.0.1', '::1', '127.0.0.2', 'LOCALHOST.', 'other']) {
    const mine = named.checkServerIdentity(host, cert as never);
    const theirs = nodeTls.checkServerIdentity(host, cert);
    assert.is(mine?.code, (theirs as { code?: string } | undefined)?.code, host);
    assert.is(mine?.message, theirs?.message, host);
  }
});

test('checkServerIdentity lowercases only A-Z, as node:tls (the Kelvin sign U+212A is not "k")', () => {
  const certs = [
    { subject: {}, subjectaltname: 'DNS:key.example.com' },
    { subject: {}, subjectaltname: 'DNS:*.example.com' },
    { subject: { CN: 'key.example.com' } },
    { subject: {}, subjectaltname: 'DNS:i.example.com, DNS:s.example.com' },
  ] as unknown as nodeTls.PeerCertificate[];
  const hosts = ['\u212Aey.example.com', 'KEY.Example.COM', '\u0130.example.com', '\u017F.example.com', 'x.\u212Aey.example.com'];
  for (const cert of certs)
    for (const host of hosts) {
      const mine = named.checkServerIdentity(host, cert as never);
      const theirs = nodeTls.checkServerIdentity(host, cert);
      const what = `${JSON.stringify(host)} vs ${JSON.stringify(cert)}`;
      assert.is(mine?.code, (theirs as { code?: string } | undefined)?.code, what);
      assert.is(mine?.message, theirs?.message, what);
    }
});

test('options Petrel cannot honour throw at the call; TLS 1.3-compatible ones are accepted', async () => {
  if (!HAVE) return;
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ maxVersion: 'TLSv1.2' }, /maxVersion "TLSv1.2"/],
    [{ minVersion: 'SSLv3' }, /Invalid minVersion/],
    [{ pfx: Buffer.alloc(10) }, /pfx/],
    [{ secureProtocol: 'TLSv1_2_method' }, /secureProtocol/],
    [{ ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }, /ciphers/],
    [{ ciphersuites: 'TLS_AES_128_CCM_SHA256' }, /TLS_AES_128_CCM_SHA256/],
    [{ ecdhCurve: 'X448' }, /ecdhCurve/],
    [{ ticketKeys: Buffer.alloc(48) }, /ticketKeys/],
    [{ secureContext: nodeTls.createSecureContext({}) }, /secureContext/],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => petrelTls.connect({ port: 1, ...o }), re, JSON.stringify(Object.keys(o)));
    assert.throws(() => petrelTls.createServer({ ...SRV, ...o }), re);
  }
  assert.throws(() => petrelTls.createServer({ ...SRV, ALPNProtocols: ['h2'], ALPNCallback: () => 'h2' }), (e: Error & { code?: string }) => e.code === 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS');
  const s = petrelTls.createSecureContext({ ...SRV, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphersuites: 'TLS_AES_256_GCM_SHA384', ecdhCurve: 'X25519:P-256', ciphers: 'TLS_AES_256_GCM_SHA384' } as nodeTls.SecureContextOptions);
  assert.equal(s.cipherSuites, ['TLS_AES_256_GCM_SHA384']);
  assert.equal(s.groups, ['x25519', 'secp256r1']);
  // And the restricted settings are what gets negotiated, against node:tls.
  const srv = await listen(nodeTls, SRV);
  try {
    const sock = petrelTls.connect({ port: srv.port, host: '127.0.0.1', servername: 'localhost', ca: CA.pem, ciphersuites: 'TLS_CHACHA20_POLY1305_SHA256', ecdhCurve: 'P-384', minVersion: 'TLSv1.2' } as nodeTls.ConnectionOptions);
    await deadline(new Promise((r, j) => (sock.once('secureConnect', r), sock.once('error', j))), 5000, 'connect');
    assert.is(sock.getCipher().name, 'TLS_CHACHA20_POLY1305_SHA256');
    assert.equal(sock.getEphemeralKeyInfo(), { type: 'ECDH', name: 'secp384r1', size: 384 });
    sock.destroy();
  } finally {
    await srv.close();
  }
  const sock = petrelTls.connect(1, '127.0.0.1', { rejectUnauthorized: false });
  await new Promise<void>((resolve) => sock.on('error', (e: Error & { code?: string }) => (assert.is(e.code, 'ECONNREFUSED'), resolve())));
});

test('keylog (Buffer lines) and timeout on the compat client', async () => {
  if (!HAVE) return;
  const srv = await listen(nodeTls, SRV);
  try {
    const lines: string[] = [];
    const s = petrelTls.connect(srv.port, '127.0.0.1', { servername: 'localhost', ca: CA.pem, timeout: 200 });
    s.on('keylog', (b: Buffer) => {
      assert.ok(Buffer.isBuffer(b));
      lines.push(b.toString());
    });
    await deadline(new Promise<void>((resolve) => s.once('timeout', () => resolve())), 3000, 'timeout event');
    assert.ok(s.authorized);
    assert.ok(lines.some((l) => /^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]+\n$/.test(l)), lines.join(''));
    assert.ok(lines.some((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 ')));
    s.destroy();
  } finally {
    await srv.close();
  }
});

test('https.request through an https.Agent whose createConnection is the compat connect', async () => {
  if (!HAVE) return;
  const server = https.createServer({ ...SRV }, (req, res) => res.end(`hello ${req.method} ${req.url} over ${(req.socket as nodeTls.TLSSocket).getProtocol()}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  class PetrelAgent extends https.Agent {
    sockets2 = 0;
    override createConnection(options: nodeTls.ConnectionOptions, cb?: unknown): net.Socket {
      this.sockets2++;
      void cb;
      return petrelTls.connect(options as never) as unknown as net.Socket;
    }
  }
  const agent = new PetrelAgent({ keepAlive: true, ca: CA.pem });
  const get = (path: string): Promise<string> =>
    deadline(
      new Promise<string>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path, servername: 'localhost', agent }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
        });
        req.on('error', reject);
        req.end();
      }),
      5000,
      'https.request',
    );
  try {
    assert.is(await get('/a'), '200 hello GET /a over TLSv1.3');
    assert.is(await get('/b'), '200 hello GET /b over TLSv1.3');
    assert.is(agent.sockets2, 1, 'the keep-alive socket is reused');
    // The same with https.get and a compat server: node's https client against the layer's Server.
    const srv = petrelTls.createServer({ ...SRV }, (s) => {
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const body = await deadline(
      new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, servername: 'localhost', ca: CA.pem, agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      }),
      5000,
      'https.get',
    );
    assert.is(body, 'ok');
    srv.close();
  } finally {
    agent.destroy();
    server.close();
  }
});

test('http2.connect with createConnection = compat connect; node:http serving compat server sockets', async () => {
  if (!HAVE) return;
  const h2 = http2.createSecureServer({ ...SRV }, (req, res) => res.end(`h2 ${req.url} ${(req.socket as unknown as nodeTls.TLSSocket).alpnProtocol}`));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()));
  const h2port = (h2.address() as net.AddressInfo).port;
  // HTTPS served by node:http on the layer's TLS sockets: the usual way to put a TLS server under http.
  const web = http.createServer((req, res) => res.end(`http ${req.url}`));
  const srv = petrelTls.createServer({ ...SRV, ALPNProtocols: ['http/1.1'] }, (s) => web.emit('connection', s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const session = http2.connect(`https://localhost:${h2port}`, {
      createConnection: () => petrelTls.connect({ port: h2port, host: '127.0.0.1', servername: 'localhost', ca: CA.pem, ALPNProtocols: ['h2'] }) as unknown as net.Socket,
    });
    const body = await deadline(
      new Promise<string>((resolve, reject) => {
        session.on('error', reject);
        const req = session.request({ ':path': '/h2' });
        let b = '';
        req.on('data', (d: Buffer) => (b += d));
        req.on('end', () => resolve(b));
        req.on('error', reject);
      }),
      5000,
      'http2',
    );
    session.close();
    assert.is(body, 'h2 /h2 h2');
    const got = await deadline(
      new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, path: '/x', servername: 'localhost', ca: CA.pem, agent: false }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve(`${res.statusCode} ${b}`));
          })
          .on('error', reject);
      }),
      5000,
      'https over node:http on compat sockets',
    );
    assert.is(got, '200 http /x');
  } finally {
    h2.close();
    srv.close();
    web.close();
  }
});

test('hostile peers: garbage and truncated handshakes end in tlsClientError, never an exception', async () => {
  if (!HAVE) return;
  const errors: string[] = [];
  const srv = petrelTls.createServer({ ...SRV, handshakeTimeout: 1000 }, () => assert.unreachable('no secure connection'));
  srv.on('tlsClientError', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  const rng = new Rng(7);
  const inputs: Buffer[] = [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0])];
  for (let i = 0; i < 20; i++) inputs.push(Buffer.from(rng.bytes(1 + rng.int(600))));
  // Real ClientHello prefixes, cut and flipped.
  const hello = await captureClientHello();
  for (let i = 0; i < 10; i++) {
    const b = Buffer.from(hello.subarray(0, 5 + rng.int(hello.length - 5)));
    b[5 + rng.int(b.length - 5)] ^= 1 + rng.int(255);
    inputs.push(b);
  }
  try {
    for (const bytes of inputs) {
      await deadline(
        new Promise<void>((resolve) => {
          const c = net.connect(port, '127.0.0.1', () => c.end(bytes));
          c.on('error', () => resolve());
          c.on('close', () => resolve());
          c.resume();
        }),
        5000,
        'garbage connection',
      );
    }
    await until(() => errors.length >= inputs.length);
    assert.is(errors.length, inputs.length, `one tlsClientError per bad connection: ${errors.join(', ')}`);
  } finally {
    srv.close();
  }
});

/** The first flight of a node:tls client (a real ClientHello). */
function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.createServer((c) => {
      c.once('data', (d: Buffer) => {
        resolve(d);
        c.destroy();
        s.close();
      });
    });
    s.listen(0, '127.0.0.1', () => {
      const t = nodeTls.connect({ port: (s.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
      t.on('error', () => {});
    });
  });
}

test.after(() => pki?.cleanup());
test.run();
