/**
 * TLS 1.3 exporters (RFC 8446 §7.5) and Finished verify_data over TCP, checked against node:tls
 * (OpenSSL) on the same connection: our client against a node:tls server and a node:tls client
 * against our server, each crypto provider, each cipher suite (SHA-256 and SHA-384 exporters),
 * full and resumed handshakes. Both sides' exportKeyingMaterial(length, label, context) must agree
 * for several labels, lengths and contexts (none, empty, short, long); getFinished() on one side
 * must equal getPeerFinished() on the other. The EXPORTER_SECRET key-log line must equal the one
 * OpenSSL logs, and deriving TLS-Exporter from it must give node's value. The early exporter
 * (0-RTT; node:tls has none) is checked between our own client and server through their key logs,
 * and against OpenSSL (s_server / s_client with -early_data): the EARLY_EXPORTER_SECRET lines are
 * equal and exportEarlyKeyingMaterial equals TLS-Exporter from OpenSSL's logged secret.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import nodeTls from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { freePort, requirePeer, runBounded, spawnPeer, waitForPort } from '../../../test/support/peers.js';
import { providers } from '../../../test/support/providers.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { CipherSuites, type CipherSuite, type SessionTicket } from '../src/handshake/api.js';
import { TlsClient } from '../src/handshake/client.js';
import { KeySchedule } from '../src/keyschedule.js';
import { connect, type TlsConnectOptions } from '../src/tcp/client.js';
import { createServer, type TlsServerOptions } from '../src/tcp/server.js';
import type { TlsSocket } from '../src/tcp/socket.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';

const CERT = generateSelfSigned({ provider: providers[0]!, names: ['localhost', '127.0.0.1'] });
const SUITES: CipherSuite[] = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** [label, length, context]: channel binding (RFC 9266), lengths 1..1000, no / empty / short / long context, a UTF-8 label. */
const CASES: [string, number, Buffer | undefined][] = [
  ['EXPORTER-Channel-Binding', 32, undefined],
  ['EXPORTER-petrel', 1, undefined],
  ['EXPORTER-petrel', 64, Buffer.alloc(0)],
  ['EXPORTER-petrel', 64, Buffer.from('context value')],
  ['EXPORTER-petrel', 1000, Buffer.alloc(700, 0xa5)],
  ['EXPORTER-ünïcødé', 48, Buffer.from([0])],
  ['x', 17, undefined],
];

interface Exporting {
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer;
  getFinished(): Buffer | undefined;
  getPeerFinished(): Buffer | undefined;
}

function exportAll(s: Exporting): string[] {
  return CASES.map(([label, len, ctx]) => {
    const out = s.exportKeyingMaterial(len, label, ctx);
    assert.is(out.length, len);
    return out.toString('hex');
  });
}

/** Both sides agree; the outputs are not trivially equal to each other (different label/context/length differ). */
function checkAgree(ours: Exporting, theirs: Exporting, what: string): void {
  const a = exportAll(ours);
  const b = exportAll(theirs);
  assert.equal(a, b, `${what}: exporter outputs differ from node:tls`);
  // RFC 8446 §7.5: no context and an empty context are the same in TLS 1.3.
  assert.is(ours.exportKeyingMaterial(64, 'EXPORTER-petrel').toString('hex'), a[2], `${what}: no context != empty context`);
  assert.is(new Set(a).size, a.length, `${what}: distinct inputs give distinct outputs`);
  const f = ours.getFinished();
  const pf = ours.getPeerFinished();
  assert.ok(f && pf, `${what}: Finished available`);
  assert.is(f!.length, pf!.length);
  assert.ok(f!.equals(theirs.getPeerFinished()!), `${what}: our getFinished() = node's getPeerFinished()`);
  assert.ok(pf!.equals(theirs.getFinished()!), `${what}: our getPeerFinished() = node's getFinished()`);
  assert.not.ok(f!.equals(pf!));
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/** Collects server-side sockets (node:tls or ours) as they complete handshakes. */
class Accepted<S> {
  private queue: S[] = [];
  private waiters: ((s: S) => void)[] = [];
  push(s: S): void {
    const w = this.waiters.shift();
    if (w) w(s);
    else this.queue.push(s);
  }
  next(): Promise<S> {
    const s = this.queue.shift();
    return timeout(s ? Promise.resolve(s) : new Promise<S>((r) => this.waiters.push(r)), 10_000, 'server handshake');
  }
}

function hexField(lines: string[], label: string, clientRandom?: string): { random: string; secret: string } {
  const l = lines.find((x) => x.startsWith(`${label} `) && (!clientRandom || x.split(' ')[1] === clientRandom));
  assert.ok(l, `key log has ${label}`);
  const [, random, secret] = l!.trim().split(' ');
  return { random: random!, secret: secret! };
}

/** TLS-Exporter computed from a logged (early_)exporter_master_secret, independently of the session. */
function fromSecret(p: CryptoProvider, suite: CipherSuite, secretHex: string, label: string, len: number, ctx?: Uint8Array): string {
  const ks = new KeySchedule(p, CipherSuites[suite].hash);
  return Buffer.from(ks.exporter(Buffer.from(secretHex, 'hex'), label, ctx ?? new Uint8Array(0), len)).toString('hex');
}

async function nodeServer(extra: nodeTls.TlsOptions = {}) {
  const accepted = new Accepted<nodeTls.TLSSocket>();
  const keylog: string[] = [];
  const server = nodeTls.createServer({ cert: CERT.certPem, key: CERT.keyPem, minVersion: 'TLSv1.3', ...extra }, (s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  server.on('keylog', (line: Buffer) => keylog.push(line.toString()));
  const sockets = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => (sockets.add(c), c.on('close', () => sockets.delete(c))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted,
    keylog,
    close: () =>
      new Promise<void>((r) => {
        for (const c of sockets) c.destroy();
        server.close(() => r());
      }),
  };
}

async function ourServer(extra: Partial<TlsServerOptions>) {
  const accepted = new Accepted<TlsSocket>();
  const keylog: string[] = [];
  const server = createServer({ cert: CERT.certPem, key: CERT.keyPem, keylog: (l) => keylog.push(l), ...extra }, (s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
  return { port, accepted, keylog, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * Resolves with the socket's first 'session' value once it is connected (and that value came, if
 * `wantSession`); rejects on 'error' or after 10 s. Our TlsSocket and node's TLSSocket alike.
 */
function connected<T>(s: NodeJS.EventEmitter, wantSession: boolean, who: string): Promise<T | null> {
  return timeout(
    new Promise((resolve, reject) => {
      let secure = false;
      let session: T | null = null;
      const done = (): void => {
        if (secure && (!wantSession || session)) resolve(session);
      };
      s.on('session', (t: T) => {
        session ??= t;
        done();
      });
      s.once('secureConnect', () => {
        secure = true;
        done();
      });
      s.on('error', reject);
    }),
    10_000,
    who,
  );
}

/** Our client, connected (and with its first ticket if `wantTicket`). */
async function ourClient(opts: TlsConnectOptions, wantTicket = false): Promise<{ s: TlsSocket; ticket: SessionTicket | null }> {
  const s = connect({ servername: 'localhost', ca: CERT.certPem, ...opts });
  const ticket = await connected<SessionTicket>(s, wantTicket, 'petrel client');
  return { s, ticket };
}

async function nodeClient(opts: nodeTls.ConnectionOptions, wantSession = false): Promise<{ s: nodeTls.TLSSocket; session: Buffer | null; keylog: string[] }> {
  const keylog: string[] = [];
  const s = nodeTls.connect({ host: '127.0.0.1', servername: 'localhost', ca: CERT.certPem, minVersion: 'TLSv1.3', ...opts });
  s.on('keylog', (l: Buffer) => keylog.push(l.toString()));
  const session = await connected<Buffer>(s, wantSession, 'node client');
  return { s, session, keylog };
}

for (const p of providers) {
  test(`${p.name}: petrel client -> node:tls server: exporters, Finished and EXPORTER_SECRET equal OpenSSL's, full and resumed`, async () => {
    for (const suite of SUITES) {
      const srv = await nodeServer({ ciphers: suite });
      try {
        const keylog: string[] = [];
        const { s, ticket } = await ourClient({ port: srv.port, provider: p, cipherSuites: [suite], keylog: (l) => keylog.push(l) }, true);
        const peer = await srv.accepted.next();
        assert.is(s.getCipher()?.name, suite);
        checkAgree(s, peer, `${suite} full`);
        // The key-log lines are the same as OpenSSL's, and TLS-Exporter from the logged secret is node's value.
        const ours = hexField(keylog, 'EXPORTER_SECRET');
        const theirs = hexField(srv.keylog, 'EXPORTER_SECRET', ours.random);
        assert.is(ours.secret, theirs.secret, 'EXPORTER_SECRET equals OpenSSL');
        assert.is(ours.secret.length, 2 * (suite === 'TLS_AES_256_GCM_SHA384' ? 48 : 32));
        const ctx = Buffer.from('ctx');
        assert.is(fromSecret(p, suite, ours.secret, 'EXPORTER-keylog', 42, ctx), peer.exportKeyingMaterial(42, 'EXPORTER-keylog', ctx).toString('hex'));
        s.destroy();

        const r = await ourClient({ port: srv.port, provider: p, cipherSuites: [suite], session: ticket });
        const peer2 = await srv.accepted.next();
        assert.ok(r.s.isSessionReused() && peer2.isSessionReused(), 'resumed');
        checkAgree(r.s, peer2, `${suite} resumed`);
        assert.not.equal(exportAll(r.s), exportAll(s), 'a new connection has new exporter values');
        r.s.destroy();
      } finally {
        await srv.close();
      }
    }
  });

  test(`${p.name}: node:tls client -> petrel server: exporters, Finished and EXPORTER_SECRET equal OpenSSL's, full and resumed`, async () => {
    for (const suite of SUITES) {
      const srv = await ourServer({ provider: p, cipherSuites: [suite] });
      try {
        const c = await nodeClient({ port: srv.port }, true);
        const ours = await srv.accepted.next();
        assert.is(ours.getCipher()?.name, suite);
        checkAgree(ours, c.s, `${suite} full`);
        const mine = hexField(srv.keylog, 'EXPORTER_SECRET');
        const theirs = hexField(c.keylog, 'EXPORTER_SECRET', mine.random);
        assert.is(mine.secret, theirs.secret, 'EXPORTER_SECRET equals OpenSSL');
        assert.is(fromSecret(p, suite, mine.secret, 'EXPORTER-keylog', 42), (c.s as Exporting).exportKeyingMaterial(42, 'EXPORTER-keylog').toString('hex'));
        c.s.destroy();

        const r = await nodeClient({ port: srv.port, session: c.session! });
        const ours2 = await srv.accepted.next();
        assert.ok(r.s.isSessionReused() && ours2.isSessionReused(), 'resumed');
        checkAgree(ours2, r.s, `${suite} resumed`);
        r.s.destroy();
      } finally {
        await srv.close();
      }
    }
  });
}

test('before the handshake: exportKeyingMaterial throws ERR_TLS_INVALID_STATE, Finished undefined; argument errors as node:tls', async () => {
  const srv = await nodeServer();
  try {
    const s = connect({ port: srv.port, servername: 'localhost', ca: CERT.certPem });
    const nodeRef = new nodeTls.TLSSocket(new net.Socket());
    const code = (f: () => unknown): string => {
      try {
        f();
        return 'no error';
      } catch (e) {
        return (e as { code?: string }).code ?? String(e);
      }
    };
    const calls: [number, unknown, unknown][] = [
      [32, 'EXPORTER-x', undefined],
      [32, 5, undefined],
      [0, 'EXPORTER-x', undefined],
      [-1, 'EXPORTER-x', undefined],
      [32, 'EXPORTER-x', 'not bytes'],
    ];
    for (const [len, label, ctx] of calls) {
      const call = (t: { exportKeyingMaterial: (...a: never[]) => unknown }) => () => (t.exportKeyingMaterial as (...a: unknown[]) => unknown)(len, label, ctx);
      assert.is(code(call(s)), code(call(nodeRef)), `exportKeyingMaterial(${len}, ${String(label)}, ${String(ctx)})`);
    }
    assert.is(code(() => s.exportKeyingMaterial(32, 'EXPORTER-x')), 'ERR_TLS_INVALID_STATE');
    assert.is(s.getFinished(), nodeRef.getFinished());
    assert.is(s.getPeerFinished(), undefined);
    await timeout(new Promise((r) => s.once('secureConnect', r)), 10_000, 'secureConnect');
    const peer = await srv.accepted.next();
    checkAgree(s, peer, 'after secureConnect');
    // Still available after the connection closed (the secret is kept; as node:tls until its handle goes).
    s.destroy();
    assert.is(s.exportKeyingMaterial(32, 'EXPORTER-x').toString('hex'), (peer as Exporting).exportKeyingMaterial(32, 'EXPORTER-x').toString('hex'));
    // A length beyond HKDF's 255 * HashLen is refused (OpenSSL fails it too).
    const hashLen = s.getCipher()!.name === 'TLS_AES_256_GCM_SHA384' ? 48 : 32;
    assert.is(s.exportKeyingMaterial(255 * hashLen, 'EXPORTER-x').length, 255 * hashLen);
    assert.throws(() => s.exportKeyingMaterial(255 * hashLen + 1, 'EXPORTER-x'), /length/);
    assert.throws(() => peer.exportKeyingMaterial(255 * hashLen + 1, 'EXPORTER-x', Buffer.alloc(0)));
  } finally {
    await srv.close();
  }
});

test('sans-I/O core: exportKeyingMaterial before the handshake throws; the old secrets are not needed', () => {
  const c = new TlsClient({ provider: providers[0]!, serverName: 'localhost', insecureSkipVerify: true });
  c.start();
  assert.throws(() => c.exportKeyingMaterial('EXPORTER-x', 32), /handshake has not completed/);
  assert.throws(() => c.exportEarlyKeyingMaterial('EXPORTER-x', 32), /0-RTT/);
  assert.is(c.finished, null);
  assert.is(c.peerFinished, null);
});

for (const p of providers) {
  test(`${p.name}: early exporter with 0-RTT over TCP: both sides agree, EARLY_EXPORTER_SECRET logged on both; refused without 0-RTT`, async () => {
    const srv = await ourServer({ provider: p, maxEarlyData: 1024 });
    try {
      const first = await ourClient({ port: srv.port, provider: p }, true);
      await srv.accepted.next();
      assert.throws(() => first.s.exportEarlyKeyingMaterial(32, 'EXPORTER-early'), (e: Error & { code?: string }) => e.code === 'ERR_TLS_INVALID_STATE');
      first.s.destroy();
      const keylog: string[] = [];
      const { s } = await ourClient({ port: srv.port, provider: p, session: first.ticket, earlyData: 'hello', keylog: (l) => keylog.push(l) });
      const peer = await srv.accepted.next();
      assert.is(s.info?.earlyData, 'accepted');
      const ctx = Buffer.from('early ctx');
      const a = s.exportEarlyKeyingMaterial(40, 'EXPORTER-early', ctx).toString('hex');
      assert.is(a, peer.exportEarlyKeyingMaterial(40, 'EXPORTER-early', ctx).toString('hex'));
      assert.is.not(a, s.exportKeyingMaterial(40, 'EXPORTER-early', ctx).toString('hex'), 'early and main exporters differ');
      const mine = hexField(keylog, 'EARLY_EXPORTER_SECRET');
      assert.is(hexField(srv.keylog, 'EARLY_EXPORTER_SECRET', mine.random).secret, mine.secret);
      assert.is(fromSecret(p, s.getCipher()!.name as CipherSuite, mine.secret, 'EXPORTER-early', 40, ctx), a);
      checkAgree(s, peer, '0-RTT');
      s.destroy();
    } finally {
      await srv.close();
    }
  });

  test(`${p.name}: early exporter is withdrawn when the server rejects 0-RTT`, async () => {
    const srv = await ourServer({ provider: p, maxEarlyData: 1024 });
    try {
      const first = await ourClient({ port: srv.port, provider: p }, true);
      await srv.accepted.next();
      first.s.destroy();
      await ourClient({ port: srv.port, provider: p, session: first.ticket, earlyData: 'once' }).then((r) => r.s.destroy());
      await srv.accepted.next();
      // The same ticket again: the anti-replay cache refuses its 0-RTT (RFC 8446 §8).
      const { s } = await ourClient({ port: srv.port, provider: p, session: first.ticket, earlyData: 'twice' });
      const peer = await srv.accepted.next();
      assert.is(s.info?.earlyData, 'rejected');
      assert.throws(() => s.exportEarlyKeyingMaterial(32, 'EXPORTER-early'));
      assert.throws(() => peer.exportEarlyKeyingMaterial(32, 'EXPORTER-early'));
      checkAgree(s, peer, 'rejected 0-RTT');
      s.destroy();
    } finally {
      await srv.close();
    }
  });
}

test('early exporter against OpenSSL: our 0-RTT client -> s_server, s_client 0-RTT -> our server', async () => {
  const openssl = requirePeer('openssl');
  if (!openssl) return;
  const p = providers[0]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-ekm-'));
  try {
    const [certFile, keyFile, klFile, sessFile, edFile] = ['c.pem', 'k.pem', 'kl.txt', 'sess.pem', 'ed.txt'].map((f) => path.join(dir, f)) as [string, string, string, string, string];
    fs.writeFileSync(certFile, CERT.certPem);
    fs.writeFileSync(keyFile, CERT.keyPem);
    const logged = (label: string): { random: string; secret: string } => hexField(fs.readFileSync(klFile, 'utf8').split('\n'), label);

    // Our client, 0-RTT on a ticket from s_server.
    const port = await freePort('tcp');
    const proc = spawnPeer(openssl, ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', certFile, '-key', keyFile, '-early_data', '-keylogfile', klFile, '-quiet'], { lifetimeMs: 20_000 });
    try {
      await waitForPort(port, 'tcp', { proc });
      const first = await ourClient({ port, provider: p }, true);
      first.s.destroy();
      const keylog: string[] = [];
      const { s } = await ourClient({ port, provider: p, session: first.ticket, earlyData: 'early hello', keylog: (l) => keylog.push(l) });
      assert.is(s.info?.earlyData, 'accepted', 's_server accepted 0-RTT');
      const mine = hexField(keylog, 'EARLY_EXPORTER_SECRET');
      const theirs = logged('EARLY_EXPORTER_SECRET');
      assert.is(theirs.random, mine.random);
      assert.is(theirs.secret, mine.secret, 'EARLY_EXPORTER_SECRET equals OpenSSL');
      const suite = s.getCipher()!.name as CipherSuite;
      assert.is(s.exportEarlyKeyingMaterial(48, 'EXPORTER-early', Buffer.from('c')).toString('hex'), fromSecret(p, suite, theirs.secret, 'EXPORTER-early', 48, Buffer.from('c')));
      s.destroy();
    } finally {
      await proc.kill();
    }

    // s_client: a ticket from our server, then 0-RTT with it (-ign_eof: it stays until we close).
    fs.rmSync(klFile, { force: true });
    fs.writeFileSync(edFile, 'early from openssl');
    const srv = await ourServer({ provider: p, maxEarlyData: 1024 });
    try {
      const common = ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-servername', 'localhost', '-tls1_3', '-ign_eof'];
      const closeSoon = (sock: TlsSocket): void => void setTimeout(() => sock.end(), 300);
      const run1 = runBounded(openssl, [...common, '-sess_out', sessFile], { timeoutMs: 8000 });
      closeSoon(await srv.accepted.next());
      await run1;
      assert.ok(fs.existsSync(sessFile), 's_client saved the session');
      const run2 = runBounded(openssl, [...common, '-sess_in', sessFile, '-early_data', edFile, '-keylogfile', klFile], { timeoutMs: 8000 });
      const peer = await srv.accepted.next();
      assert.is(peer.info?.earlyData, 'accepted', 'we accepted s_client 0-RTT');
      const fromUs = peer.exportEarlyKeyingMaterial(40, 'EXPORTER-early').toString('hex');
      closeSoon(peer);
      const r = await run2;
      assert.match(r.stdout, /Early data was accepted/);
      const theirs = logged('EARLY_EXPORTER_SECRET');
      assert.is(hexField(srv.keylog, 'EARLY_EXPORTER_SECRET', theirs.random).secret, theirs.secret, 'EARLY_EXPORTER_SECRET equals OpenSSL');
      assert.is(fromUs, fromSecret(p, peer.getCipher()!.name as CipherSuite, theirs.secret, 'EXPORTER-early', 40));
    } finally {
      await srv.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
