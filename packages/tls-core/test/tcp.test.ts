/**
 * TLS over TCP, Petrel to Petrel on 127.0.0.1: the Duplex behaviour (events, info, backpressure,
 * close_notify, timeouts), error reporting (alert names), bad peers (garbage, truncation) never
 * crashing the process, 0-RTT accepted and rejected, automatic KeyUpdate, key logging.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import { ConfigError } from '../src/errors.js';
import type { SessionTicket } from '../src/handshake/api.js';
import { connect, type TlsConnectOptions } from '../src/tcp/client.js';
import { createServer, type TlsServerOptions, type TlsTcpServer } from '../src/tcp/server.js';
import { parseSession, serializeSession } from '../src/tcp/options.js';
import type { TlsSocket } from '../src/tcp/socket.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';

const P0 = providers[0]!;
const CERT = generateSelfSigned({ provider: P0, names: ['localhost', '127.0.0.1'] });

interface Srv {
  server: TlsTcpServer;
  port: number;
  errors: Error[];
  sockets: TlsSocket[];
  close(): Promise<void>;
}
async function serve(opts: Partial<TlsServerOptions>, handler?: (s: TlsSocket) => void): Promise<Srv> {
  const errors: Error[] = [];
  const sockets: TlsSocket[] = [];
  const server = createServer({ cert: CERT.certPem, key: CERT.keyPem, ...opts }, (s) => {
    sockets.push(s);
    s.on('error', (e) => errors.push(e));
    if (handler) handler(s);
    else s.on('data', (d: Buffer) => s.write(d));
  });
  server.on('tlsClientError', (e: Error) => errors.push(e));
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
  return { server, port, errors, sockets, close: () => new Promise((r) => server.close(() => r())) };
}

function client(port: number, opts: Partial<TlsConnectOptions> = {}): TlsSocket {
  return connect({ port, servername: 'localhost', ca: CERT.certPem, ...opts });
}

function until<T>(what: string, ms: number, fn: (resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    fn(
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

/** Writes `data`, collects `n` bytes of echo. */
function echo(sock: TlsSocket, data: Buffer): Promise<Buffer> {
  return until<Buffer>('echo', 10_000, (resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= data.length) {
        sock.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(data);
  });
}

const secure = (s: TlsSocket) => until<void>('secureConnect', 5000, (res, rej) => (s.once('secureConnect', () => res()), s.once('error', rej)));

test('handshake, echo and info with each provider on both sides', async () => {
  for (const sp of providers) {
    for (const cp of providers) {
      const srv = await serve({ provider: sp, alpn: ['x', 'http/1.1'] });
      const c = client(srv.port, { provider: cp, alpn: ['http/1.1'] });
      try {
        await secure(c);
        const data = Buffer.from(new Rng(`${sp.name}${cp.name}`).bytes(100_000));
        assert.ok((await echo(c, data)).equals(data));
        assert.is(c.alpnProtocol, 'http/1.1');
        assert.is(c.authorized, true);
        assert.is(c.getProtocol(), 'TLSv1.3');
        assert.is(c.getCipher()!.version, 'TLSv1.3');
        assert.is(c.info!.provider, cp.name);
        assert.is(c.info!.resumed, false);
        assert.is(c.info!.signatureScheme, 'ecdsa_secp256r1_sha256');
        assert.is(c.getPeerCertificates().length, 1);
        assert.is(srv.sockets[0]!.info!.provider, sp.name);
        assert.is(srv.sockets[0]!.info!.serverName, 'localhost');
      } finally {
        c.destroy();
        await srv.close();
      }
    }
  }
});

test('configuration errors throw at the call site', () => {
  assert.throws(() => connect({ port: 1 }), (e: Error) => e instanceof ConfigError && /insecureSkipVerify/.test(e.message));
  assert.throws(() => connect({ port: 1, insecureSkipVerify: true, provider: 'nope' as 'node' }), (e: Error) => e instanceof ConfigError);
  assert.throws(() => createServer({ cert: 'not pem', key: CERT.keyPem }), (e: Error) => e instanceof ConfigError && /CERTIFICATE/.test(e.message));
  const other = generateSelfSigned({ provider: P0, names: ['localhost'] });
  assert.throws(() => createServer({ cert: CERT.certPem, key: other.keyPem }), (e: Error) => e instanceof ConfigError && /does not match/.test(e.message));
});

test('the client refuses an unverified server (wrong CA, wrong name) with an alert; insecure mode connects', async () => {
  const srv = await serve({});
  try {
    const other = generateSelfSigned({ provider: P0, names: ['localhost'] });
    const c = client(srv.port, { ca: other.certPem });
    const err = await until<Error & { code?: string; alert?: string }>('error', 5000, (res) => c.on('error', res));
    assert.is(err.code, 'ERR_TLS_ALERT_SENT');
    assert.ok(err.alert === 'bad_certificate' || err.alert === 'unknown_ca', err.message);
    const c2 = client(srv.port, { servername: 'other.example' });
    const err2 = await until<Error & { code?: string }>('error', 5000, (res) => c2.on('error', res));
    assert.is(err2.code, 'ERR_TLS_ALERT_SENT');
    const c3 = client(srv.port, { ca: undefined, insecureSkipVerify: true });
    await secure(c3);
    assert.is(c3.authorized, false, 'not verified');
    c3.destroy();
    // the server saw the client's alerts as errors with the alert name
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(srv.errors.some((e) => /peer sent fatal alert (bad_certificate|unknown_ca)/.test(e.message)), srv.errors.map((e) => e.message).join(' | '));
  } finally {
    await srv.close();
  }
});

test('a peer alert becomes an error named after the alert (no_application_protocol)', async () => {
  const srv = await serve({ alpn: ['h2'], tlsConfig: { requireAlpn: true } });
  try {
    const c = client(srv.port, { alpn: ['http/1.1'] });
    const err = await until<Error & { code?: string; alert?: string }>('error', 5000, (res) => c.on('error', res));
    assert.is(err.code, 'ERR_TLS_ALERT_RECEIVED');
    assert.is(err.alert, 'no_application_protocol');
    assert.match(err.message, /no_application_protocol \(120\)/);
  } finally {
    await srv.close();
  }
});

test('bad peers: garbage, plaintext HTTP, truncated handshakes never crash; they get an alert or a close', async () => {
  const srv = await serve({ handshakeTimeoutMs: 500 });
  const rng = new Rng('tcp-garbage');
  try {
    const inputs: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'),
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0]),
      Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...rng.bytes(32)]),
      Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01]),
    ];
    for (let i = 0; i < 30; i++) inputs.push(Buffer.from(rng.bytes(rng.range(1, 3000))));
    // a real ClientHello prefix, then garbage
    const hello = await captureClientHello();
    for (let i = 0; i < 20; i++) {
      const m = Buffer.from(hello);
      for (let k = 0; k < 3; k++) m[rng.int(m.length)] = rng.int(256);
      inputs.push(m);
    }
    inputs.push(hello.subarray(0, 50)); // truncated, then the peer closes
    const replies = await Promise.all(
      inputs.map(
        (input) =>
          new Promise<Buffer>((resolve) => {
            const s = net.connect(srv.port, '127.0.0.1', () => s.end(input));
            const parts: Buffer[] = [];
            s.on('data', (d) => parts.push(d));
            s.on('error', () => {});
            s.on('close', () => resolve(Buffer.concat(parts)));
            setTimeout(() => s.destroy(), 3000).unref();
          }),
      ),
    );
    // every connection ended; replies (if any) start with a handshake (ServerHello for mutations
    // that still parse) or an alert record
    for (const r of replies) if (r.length > 0) assert.ok(r[0] === 0x15 || r[0] === 0x16, `reply starts with ${r[0]}`);
    assert.ok(replies.filter((r) => r.length > 0 && r[0] === 0x15).length >= 3, 'alerts were sent');
    assert.ok(srv.errors.length >= inputs.length - 5, `errors reported: ${srv.errors.length}`);
    // and the server still works
    const c = client(srv.port);
    await secure(c);
    c.destroy();
  } finally {
    await srv.close();
  }
});

/** The bytes our client sends first (a ClientHello record), captured by a raw TCP server. */
function captureClientHello(): Promise<Buffer> {
  return until<Buffer>('ClientHello', 5000, (resolve) => {
    const raw = net.createServer((s) => {
      s.once('data', (d) => {
        resolve(d);
        s.destroy();
        raw.close();
      });
    });
    raw.listen(0, '127.0.0.1', () => {
      const c = client((raw.address() as net.AddressInfo).port);
      c.on('error', () => {});
    });
  });
}

test('our client against garbage servers: errors, never a crash; handshake timeout', async () => {
  const rng = new Rng('tcp-bad-server');
  const replies: Buffer[] = [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'), Buffer.from([0x15, 3, 3, 0, 2, 2, 40]), Buffer.from([0x16, 3, 3, 0, 4, 2, 0, 0, 0])];
  for (let i = 0; i < 10; i++) replies.push(Buffer.from(rng.bytes(rng.range(1, 600))));
  let idx = 0;
  const raw = net.createServer((s) => {
    const r = replies[idx++ % replies.length]!;
    s.on('error', () => {});
    s.once('data', () => s.end(r));
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
  const port = (raw.address() as net.AddressInfo).port;
  try {
    for (let i = 0; i < replies.length; i++) {
      const c = client(port);
      const err = await until<Error & { code?: string }>('error', 5000, (res) => c.on('error', res));
      assert.ok(err.code === 'ERR_TLS_ALERT_SENT' || err.code === 'ERR_TLS_ALERT_RECEIVED' || err.code === 'ECONNRESET', `${err.code} ${err.message}`);
      if (i === 1) assert.is(err.code, 'ERR_TLS_ALERT_RECEIVED');
    }
  } finally {
    await new Promise((r) => raw.close(r));
  }
  // a server that accepts and says nothing
  const silent = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  try {
    const c = client((silent.address() as net.AddressInfo).port, { handshakeTimeoutMs: 200 });
    const err = await until<Error & { code?: string }>('timeout error', 3000, (res) => c.on('error', res));
    assert.is(err.code, 'ETIMEDOUT');
  } finally {
    silent.close();
  }
});

test('close_notify: end() on one side ends the other; writes before the handshake are queued', async () => {
  const srv = await serve({}, (s) => {
    let got = '';
    s.on('data', (d: Buffer) => (got += d));
    s.on('end', () => s.end(`bye:${got}`));
  });
  try {
    const c = client(srv.port);
    c.write('queued-before-handshake;');
    c.end('and-end');
    const text = await until<string>('end', 5000, (res, rej) => {
      let t = '';
      c.on('data', (d: Buffer) => (t += d));
      c.on('end', () => res(t));
      c.on('error', rej);
    });
    assert.is(text, 'bye:queued-before-handshake;and-end');
  } finally {
    await srv.close();
  }
});

test('backpressure: a slow reader stops the writer; all data arrives in order', async () => {
  let serverSock: TlsSocket | null = null;
  const srv = await serve({}, (s) => {
    serverSock = s;
    s.pause();
  });
  try {
    const c = client(srv.port);
    await secure(c);
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    let blocked = false;
    for (let i = 0; i < 2000 && !blocked; i++) {
      chunk.writeUInt32BE(i, 0);
      written += chunk.length;
      blocked = !c.write(Buffer.from(chunk));
    }
    assert.ok(blocked, 'write() eventually returned false');
    assert.ok(written < 64 * 1024 * 1024, `wrote ${written} bytes before blocking`);
    await new Promise((r) => setTimeout(r, 50));
    const s = serverSock! as TlsSocket;
    const total = await until<number>('drain', 10_000, (res) => {
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got === written) res(got);
      });
      s.resume();
    });
    assert.is(total, written);
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('a TCP FIN (no close_notify) while the reader is paused: every buffered record is delivered before end', async () => {
  const size = 3 * 1024 * 1024;
  const srv = await serve({}, (s) => {
    s.on('data', () => {
      const buf = Buffer.alloc(size, 5);
      s.write(buf, () => (s.transport as net.Socket).end()); // FIN without close_notify
    });
  });
  try {
    const c = client(srv.port);
    await secure(c);
    c.pause();
    c.write('go');
    await new Promise((r) => setTimeout(r, 300));
    // a slow reader: small reads in paused mode keep the readable side full
    const total = await until<number>('end', 15_000, (res, rej) => {
      let got = 0;
      let ended = false;
      c.on('end', () => {
        ended = true;
        res(got);
      });
      c.on('error', rej);
      const tick = () => {
        for (let k = 0; k < 4; k++) {
          const d = c.read(8192) as Buffer | null;
          if (!d) break;
          got += d.length;
        }
        if (!ended) setTimeout(tick, 1);
      };
      tick();
    });
    assert.is(total, size);
    c.destroy();
  } finally {
    await srv.close();
  }
});

test('automatic KeyUpdate at the key usage limit, both directions, data intact', async () => {
  for (const p of providers) {
    const srv = await serve({ provider: p, keyUpdateAfter: 4 });
    const c = client(srv.port, { provider: p, keyUpdateAfter: 3 });
    try {
      await secure(c);
      for (let i = 0; i < 20; i++) {
        const data = Buffer.from(`record-${i}-${'z'.repeat(i * 100)}`);
        assert.ok((await echo(c, data)).equals(data));
      }
      assert.ok(c.keyUpdatesSent >= 5, `client KeyUpdates: ${c.keyUpdatesSent}`);
      assert.ok(srv.sockets[0]!.keyUpdatesSent >= 4, `server KeyUpdates: ${srv.sockets[0]!.keyUpdatesSent}`);
      // explicit, asking the peer to update too
      const before = srv.sockets[0]!.keyUpdatesSent;
      c.keyUpdate(true);
      assert.ok((await echo(c, Buffer.from('after'))).equals(Buffer.from('after')));
      assert.ok(srv.sockets[0]!.keyUpdatesSent > before, 'the server answered update_requested');
    } finally {
      c.destroy();
      await srv.close();
    }
  }
});

test('resumption and 0-RTT: accepted, rejected (resent as 1-RTT, delivered once), session serialization', async () => {
  for (const p of providers) {
    const got: string[] = [];
    const srv = await serve({ provider: p, maxEarlyData: 1000 }, (s) => {
      let t = '';
      s.on('data', (d: Buffer) => {
        t += d;
        if (t.endsWith('!')) {
          got.push(t);
          s.end(`ok:${t}`);
        }
      });
    });
    try {
      const ticket = await getTicket(srv.port, { provider: p });
      const t2 = parseSession(serializeSession(ticket));
      assert.equal(t2, ticket);
      assert.is(ticket.maxEarlyData, 1000);
      const c = client(srv.port, { provider: p, session: t2, earlyData: 'early,' });
      const reply = await until<string>('reply', 5000, (res, rej) => {
        let t = '';
        c.on('secureConnect', () => c.write('late!'));
        c.on('data', (d: Buffer) => (t += d));
        c.on('end', () => res(t));
        c.on('error', rej);
      });
      assert.is(reply, 'ok:early,late!');
      assert.is(c.info!.earlyData, 'accepted');
      assert.is(c.info!.resumed, true);
      assert.is(srv.sockets.at(-1)!.info!.earlyData, 'accepted');

      // a second server with the same ticket keys but no 0-RTT: rejected, data resent once
      const { normalizeServerConfig } = await import('../src/handshake/config.js');
      const keys = normalizeServerConfig(srv.server.config).ticketKeys;
      const srv2 = await serve({ provider: p, maxEarlyData: 0, tlsConfig: { tickets: { keys } } }, (s) => {
        let t = '';
        s.on('data', (d: Buffer) => {
          t += d;
          if (t.endsWith('!')) s.end(`ok:${t}`);
        });
      });
      try {
        const c2 = client(srv2.port, { provider: p, session: t2, earlyData: 'early,' });
        const reply2 = await until<string>('reply', 5000, (res, rej) => {
          let t = '';
          c2.on('secureConnect', () => c2.write('late!'));
          c2.on('data', (d: Buffer) => (t += d));
          c2.on('end', () => res(t));
          c2.on('error', rej);
        });
        assert.is(c2.info!.earlyData, 'rejected');
        assert.is(c2.info!.resumed, true);
        assert.is(reply2, 'ok:early,late!');
      } finally {
        await srv2.close();
      }
      // more early data than the ticket allows: the rest goes after the handshake
      const big = 'e'.repeat(1500) + ',';
      const c3 = client(srv.port, { provider: p, session: await getTicket(srv.port, { provider: p }), earlyData: big });
      const reply3 = await until<string>('reply', 5000, (res, rej) => {
        let t = '';
        c3.on('secureConnect', () => c3.write('x!'));
        c3.on('data', (d: Buffer) => (t += d));
        c3.on('end', () => res(t));
        c3.on('error', rej);
      });
      assert.is(reply3, `ok:${big}x!`);
    } finally {
      await srv.close();
    }
  }
});

test("0-RTT: the record layer's limit is the accepted ticket's max_early_data_size (tlsConfig.maxEarlyData; a config changed since the ticket)", async () => {
  const p = providers[0]!;
  const echo = (s: TlsSocket): void => {
    let t = '';
    s.on('data', (d: Buffer) => {
      t += d;
      if (t.endsWith('!')) s.end(`ok:${t}`);
    });
  };
  const early = (port: number, ticket: SessionTicket, data: string): Promise<{ reply: string; early: string | undefined }> => {
    const c = client(port, { provider: p, session: ticket, earlyData: data });
    return until('reply', 5000, (res, rej) => {
      let t = '';
      c.on('secureConnect', () => c.write('late!'));
      c.on('data', (d: Buffer) => (t += d));
      c.on('end', () => res({ reply: t, early: c.info?.earlyData }));
      c.on('error', rej);
    });
  };
  // maxEarlyData given only through tlsConfig (the handshake-core options): accepted, not a connection failure.
  const srv = await serve({ provider: p, tlsConfig: { maxEarlyData: 2000 } }, echo);
  try {
    const ticket = await getTicket(srv.port, { provider: p });
    assert.is(ticket.maxEarlyData, 2000);
    const data = 'e'.repeat(1500) + ',';
    const r = await early(srv.port, ticket, data);
    assert.equal(r, { reply: `ok:${data}late!`, early: 'accepted' });
    // Same ticket keys, max_early_data_size lowered to 500 since the ticket (2000) was issued: the
    // client may send up to the ticket's 2000 bytes (RFC 8446 §4.2.10) and the server takes them.
    const keys = (await import('../src/handshake/config.js')).normalizeServerConfig(srv.server.config).ticketKeys;
    const srv2 = await serve({ provider: p, maxEarlyData: 500, tlsConfig: { tickets: { keys } } }, echo);
    try {
      const r2 = await early(srv2.port, await getTicket(srv.port, { provider: p }), data);
      assert.equal(r2, { reply: `ok:${data}late!`, early: 'accepted' });
      assert.equal(srv2.errors.map((e) => e.message), []);
    } finally {
      await srv2.close();
    }
    assert.equal(srv.errors.map((e) => e.message), []);
  } finally {
    await srv.close();
  }
});

function getTicket(port: number, opts: Partial<TlsConnectOptions>): Promise<SessionTicket> {
  return until<SessionTicket>('ticket', 5000, (res, rej) => {
    const c = client(port, opts);
    c.on('session', (t: SessionTicket) => {
      res(t);
      c.end('x!');
    });
    c.on('data', () => {});
    c.on('error', rej);
  });
}

test('key logging: callback, file and SSLKEYLOGFILE; one line per secret', async () => {
  const srv = await serve({});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-keylog-'));
  try {
    const lines: string[] = [];
    const c = client(srv.port, { keylog: (l) => lines.push(l) });
    const events: string[] = [];
    c.on('keylog', (b: Buffer) => events.push(String(b)));
    await secure(c);
    c.destroy();
    const labels = lines.map((l) => l.split(' ')[0]).sort();
    assert.equal(labels, ['CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'EXPORTER_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_TRAFFIC_SECRET_0']);
    for (const l of lines) assert.match(l, /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,96}$/);
    assert.is(events.length, 5);
    const file = path.join(dir, 'env.log');
    process.env.SSLKEYLOGFILE = file;
    try {
      const c2 = client(srv.port);
      await secure(c2);
      c2.destroy();
    } finally {
      delete process.env.SSLKEYLOGFILE;
    }
    assert.is(fs.readFileSync(file, 'utf8').trim().split('\n').length, 5);
    const sfile = path.join(dir, 'server.log');
    const srv2 = await serve({ keylog: sfile });
    try {
      const c3 = client(srv2.port);
      await secure(c3);
      c3.destroy();
      await new Promise((r) => setTimeout(r, 20));
      assert.is(fs.readFileSync(sfile, 'utf8').trim().split('\n').length, 5);
    } finally {
      await srv2.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await srv.close();
  }
});

test('KeyUpdate flood: the server ends the connection with unexpected_message (in a row without data; per second)', async () => {
  const closedWith = (c: TlsSocket) =>
    until<Error>('client error', 5000, (res) => {
      c.once('error', (e) => res(e));
      c.once('close', () => res(new Error('closed without error')));
    });
  // 33 KeyUpdates without data in between (default limit 32)
  let srv = await serve({});
  let c = client(srv.port);
  try {
    await secure(c);
    assert.ok((await echo(c, Buffer.from('hi'))).equals(Buffer.from('hi')));
    const err = closedWith(c);
    for (let i = 0; i < 33; i++) c.keyUpdate(false);
    const e = await err;
    assert.match(e.message, /unexpected_message/, e.message);
    for (let i = 0; i < 100 && srv.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(srv.errors.some((x) => /KeyUpdates without application data/.test(x.message)), srv.errors.map((x) => x.message).join('; '));
  } finally {
    c.destroy();
    await srv.close();
  }
  // 32 in a row is fine, and data resets the count
  srv = await serve({});
  c = client(srv.port);
  try {
    await secure(c);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 32; i++) c.keyUpdate(i === 0);
      assert.ok((await echo(c, Buffer.from(`r${round}`))).equals(Buffer.from(`r${round}`)));
    }
    assert.equal(srv.errors, []);
  } finally {
    c.destroy();
    await srv.close();
  }
  // with data in between, the per-second bound applies
  srv = await serve({ keyUpdateLimits: { perSecond: 10 } });
  c = client(srv.port);
  try {
    await secure(c);
    const err = closedWith(c);
    for (let i = 0; i < 11; i++) {
      c.keyUpdate(false);
      c.write('x');
    }
    const e = await err;
    assert.match(e.message, /unexpected_message/, e.message);
    for (let i = 0; i < 100 && srv.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(srv.errors.some((x) => /KeyUpdates within a second/.test(x.message)), srv.errors.map((x) => x.message).join('; '));
  } finally {
    c.destroy();
    await srv.close();
  }
});

/** Collects `n` bytes of data from `sock`. */
function collect(sock: TlsSocket, n: number): Promise<Buffer> {
  return until<Buffer>('collect', 10_000, (resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        sock.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

test('small writes are coalesced into full records; order kept across small, large, corked (writev) writes', async () => {
  for (const p of providers) {
    const srv = await serve({ provider: p });
    // relay counting client → server bytes
    let up = 0;
    const relay = net.createServer((c) => {
      const t = net.connect({ host: '127.0.0.1', port: srv.port });
      c.on('data', (d) => {
        up += d.length;
        t.write(d);
      });
      t.on('data', (d) => c.write(d));
      c.on('error', () => t.destroy());
      t.on('error', () => c.destroy());
      c.on('close', () => t.destroy());
      t.on('close', () => c.destroy());
    });
    const rport = await new Promise<number>((r) => relay.listen(0, '127.0.0.1', () => r((relay.address() as net.AddressInfo).port)));
    const c = client(rport, { provider: p });
    try {
      await secure(c);
      assert.ok((await echo(c, Buffer.from('warm'))).equals(Buffer.from('warm')));
      await new Promise((r) => setTimeout(r, 20));
      const before = up;
      const parts: Buffer[] = [];
      for (let i = 0; i < 1000; i++) parts.push(Buffer.from(`m${String(i).padStart(9, '0')}`)); // 10 bytes each
      const got = collect(c, 10_000);
      for (const b of parts) c.write(b);
      const echoed = await got;
      assert.ok(echoed.equals(Buffer.concat(parts)), 'data intact and in order');
      const wire = up - before;
      // one record per write would be 1000 × (10 + 22) bytes; coalesced: one record (+ a few)
      assert.ok(wire < 10_000 + 5 * 22, `client sent ${wire} bytes for 10000 bytes of data`);
      // small, then large, then corked small writes: order preserved
      const seq: Buffer[] = [Buffer.from('a'.repeat(100)), Buffer.alloc(50_000, 0x62), Buffer.from('c'.repeat(10))];
      const got2 = collect(c, 50_110 + 3 * 1000);
      for (const b of seq) c.write(b);
      c.cork();
      const corked = [Buffer.alloc(1000, 0x64), Buffer.alloc(1000, 0x65), Buffer.alloc(1000, 0x66)];
      for (const b of corked) c.write(b);
      c.uncork();
      assert.ok((await got2).equals(Buffer.concat([...seq, ...corked])), 'mixed writes in order');
    } finally {
      c.destroy();
      relay.close();
      await srv.close();
    }
  }
});

test.run();
