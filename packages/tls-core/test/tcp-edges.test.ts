/**
 * The application-facing edges of TLS over TCP (tcp/) and of the node:tls compatibility layer:
 * a 'secureConnection' listener that throws, a socket destroyed mid-handshake, write after end.
 * Nothing may escape to the process (uncaught exception / unhandled rejection), the server keeps
 * serving, and the errors say what happened.
 */
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import petrelTls from '@petrel/tls-core/compat/node-tls';
import { connect } from '../src/tcp/client.js';
import { createServer } from '../src/tcp/server.js';
import type { TlsSocket } from '../src/tcp/socket.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';
import { nodeProvider } from '../src/crypto/node.js';
import { t, tick, warnings, within } from '../../../test/support/escape-guard.js';

const CERT = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1'] });

/** One client exchange: connects, sends `msg`, resolves with everything the server sent back. */
function exchange(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, insecureSkipVerify: true }, () => s.end(msg));
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

t('tcp: a throwing secureConnection handler neither kills the process nor the server; later writes still flow', async () => {
  warnings.length = 0;
  let n = 0;
  const srv = createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock: TlsSocket) => {
    n++;
    sock.on('data', (d: Buffer) => sock.end(`echo:${d.toString()}`));
    if (n === 1) throw new Error('handler bug');
  });
  const errors: unknown[] = [];
  srv.on('error', (e) => errors.push(e));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = srv.address().port;
  try {
    // The handler threw after attaching its data listener: that connection still works.
    assert.is(await within(3000, exchange(port, 'a')), 'echo:a');
    assert.is(await within(3000, exchange(port, 'b')), 'echo:b');
    assert.is(n, 2);
    assert.equal(errors, [], "a handler bug is not a server failure: no 'error' event");
    assert.ok(warnings.some((w) => /secureConnection' handler threw: Error: handler bug/.test(w.message)), warnings.map((w) => w.message).join('; '));
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t('tcp: a throwing secureConnect listener on the client is a warning; data written before it still goes out', async () => {
  warnings.length = 0;
  const srv = createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock: TlsSocket) => {
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'queued') sock.end('thanks');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const reply = await within(
      3000,
      new Promise<string>((resolve, reject) => {
        const s = connect({ port: srv.address().port, insecureSkipVerify: true }, () => {
          throw new Error('client listener bug');
        });
        s.write('queued'); // before the handshake: queued until 'secureConnect'
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      }),
    );
    assert.is(reply, 'thanks');
    assert.ok(warnings.some((w) => /client listener bug/.test(w.message)), warnings.map((w) => w.message).join('; '));
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t('tcp: a socket destroyed mid-handshake gives clear errors on both sides; the server keeps serving', async () => {
  const clientErrors: unknown[] = [];
  const srv = createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock: TlsSocket) => {
    sock.on('data', (d: Buffer) => sock.end(`echo:${d.toString()}`));
  });
  srv.on('tlsClientError', (e: unknown) => clientErrors.push(e));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = srv.address().port;
  try {
    // A raw TCP client that sends half a ClientHello then goes away.
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.write(Buffer.from([22, 3, 1, 0, 200, 1, 0, 0]));
        setTimeout(() => c.destroy(), 20);
      });
      c.on('close', () => resolve());
    });
    await tick(50);
    assert.is(clientErrors.length, 1);
    assert.match(String((clientErrors[0] as Error).message), /before the TLS handshake completed/);
    // Our client whose transport is destroyed before the handshake finishes.
    const err = await within(
      3000,
      new Promise<Error>((resolve) => {
        const s = connect({ port, insecureSkipVerify: true });
        s.on('error', resolve);
        s.on('secureConnect', () => resolve(new Error('handshake completed unexpectedly')));
        process.nextTick(() => (s.transport as net.Socket).destroy());
      }),
    );
    assert.match(err.message, /before the TLS handshake completed/);
    assert.is(await within(3000, exchange(port, 'still')), 'echo:still');
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t('tcp: write after end fails the write (callback and error event), nothing escapes', async () => {
  const srv = createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock: TlsSocket) => {
    sock.on('data', () => {});
    sock.on('end', () => sock.end());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const s = connect({ port: srv.address().port, insecureSkipVerify: true });
    await within(3000, new Promise((r) => s.once('secureConnect', r)));
    const errorEvent = new Promise<Error>((r) => s.once('error', r));
    s.end('bye');
    const cbErr = await within(1000, new Promise<Error | null | undefined>((r) => s.write('late', (e) => r(e))));
    assert.ok(cbErr instanceof Error);
    assert.is((cbErr as NodeJS.ErrnoException).code, 'ERR_STREAM_WRITE_AFTER_END');
    assert.is((await within(1000, errorEvent)).message, cbErr.message);
    s.destroy();
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t('node:tls compat: a throwing secureConnection listener does not kill the server', async () => {
  warnings.length = 0;
  let n = 0;
  const srv = petrelTls.createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock) => {
    n++;
    sock.on('data', (d: Buffer) => sock.end(`echo:${d.toString()}`));
    if (n === 1) throw new Error('compat handler bug');
  });
  const errors: unknown[] = [];
  srv.on('error', (e) => errors.push(e));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  const one = (msg: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = petrelTls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => s.end(msg));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
  try {
    assert.is(await within(3000, one('x')), 'echo:x');
    assert.is(await within(3000, one('y')), 'echo:y');
    assert.equal(errors, []);
    assert.ok(warnings.some((w) => /compat handler bug/.test(w.message)), warnings.map((w) => w.message).join('; '));
    // Write after end on the compat socket: an error to the callback, nothing thrown.
    const s = petrelTls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await within(3000, new Promise((r) => s.once('secureConnect', r)));
    s.on('error', () => {});
    s.end();
    const cbErr = await within(1000, new Promise<Error | null | undefined>((r) => s.write('late', (e) => r(e))));
    assert.ok(cbErr instanceof Error);
    s.destroy();
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t('tcp: throwing session / keylog listeners and a throwing keylog callback do not break the connection', async () => {
  warnings.length = 0;
  const srv = createServer(
    {
      cert: CERT.certPem,
      key: CERT.keyPem,
      keylog: () => {
        throw new Error('server keylog callback bug');
      },
    },
    (sock: TlsSocket) => sock.on('data', (d: Buffer) => sock.end(`echo:${d.toString()}`)),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const reply = await within(
      3000,
      new Promise<string>((resolve, reject) => {
        const s = connect({ port: srv.address().port, insecureSkipVerify: true }, () => s.write('hi'));
        s.on('session', () => {
          throw new Error('session listener bug');
        });
        s.on('keylog', () => {
          throw new Error('keylog listener bug');
        });
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString();
          if (got === 'echo:hi') s.end();
        });
        s.on('end', () => resolve(got));
        s.on('error', reject);
      }),
    );
    assert.is(reply, 'echo:hi');
    const all = warnings.map((w) => w.message).join('; ');
    for (const m of ['session listener bug', 'keylog listener bug', 'server keylog callback bug']) assert.ok(all.includes(m), `${m} not reported: ${all}`);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

t("tcp: a throwing 'data' listener ends that connection with the application's own error (not a TLS internal error)", async () => {
  const peerErrors: Error[] = [];
  const srv = createServer({ cert: CERT.certPem, key: CERT.keyPem }, (sock: TlsSocket) => {
    sock.on('error', (e: Error) => peerErrors.push(e));
    sock.on('data', (d: Buffer) => sock.write(d));
    sock.write('hello');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = srv.address().port;
  try {
    const bug = new Error('data listener bug');
    const err = await within(
      3000,
      new Promise<Error>((resolve) => {
        const s = connect({ port, insecureSkipVerify: true });
        s.on('data', () => {
          throw bug;
        });
        s.on('error', resolve);
      }),
    );
    assert.is(err, bug);
    await tick(50);
    assert.ok(peerErrors.some((e) => /internal_error/.test(e.message)), peerErrors.map((e) => e.message).join('; '));
    assert.is(await within(3000, exchange(port, 'next')), 'hellonext');
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test.run();
