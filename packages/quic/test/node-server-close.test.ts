/**
 * QuicServer.close() and listen()'s options, over real UDP sockets on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { nodeProvider } from '../../tls-core/src/crypto/node.js';
import dgram from 'node:dgram';
import { connect, listen, type NodeQuicConnection } from '../src/node/index.js';
import { FrameType } from '../src/frames.js';
import { PacketType, writeLongHeader } from '../src/header.js';
import { initialKeys } from '../src/initial.js';
import { sealPacket } from '../src/packet.js';
import { t, within } from '../../../test/support/escape-guard.js';

const cert = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1'] });
const ALPN = ['petrel-server-close'];

t('QuicServer.close() with more connections than one send burst (64) sends every client its CONNECTION_CLOSE before closing the socket', async () => {
  const N = 80;
  const s = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN, retry: 'never', maxIdleTimeout: 30_000 });
  const clients: NodeQuicConnection[] = [];
  try {
    for (let i = 0; i < N; i++) {
      clients.push(await within(5000, connect({ host: '127.0.0.1', port: s.address().port }, { alpn: ALPN, insecureSkipVerify: true, maxIdleTimeout: 30_000 }), `client ${i}`));
    }
    for (const end = Date.now() + 5000; s.connections.length < N; ) {
      if (Date.now() > end) assert.unreachable(`${s.connections.length} server connections after 5 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await within(3000, s.close(7, 'bye'), 'server close');
    // Every client learns of the close from the server (not from its own 30 s idle timeout).
    await within(3000, Promise.all(clients.map((c) => c.closed)), 'every client closed by the server');
    // A connection the server has not confirmed yet gets the application close as a transport
    // APPLICATION_ERROR (RFC 9000 §10.2.3), so only `remote` is checked.
    const notRemote = clients.map((c) => c.closeInfo).filter((i) => i?.remote !== true);
    assert.equal(notRemote, []);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await s.close();
  }
});

/** A client Initial (v1) carrying only a PING, padded to 1200 bytes: opens a half-open server connection. */
function clientInitial(dcid: Uint8Array, scid: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1300);
  const keys = initialKeys(nodeProvider, 1, dcid, false).write;
  const pnOff = writeLongHeader(buf, 0, PacketType.Initial, 1, dcid, scid, null, 0, 4, 2);
  buf[pnOff + 4] = FrameType.PING;
  return buf.slice(0, sealPacket(keys, buf, 0, pnOff, 4, 2, pnOff + 5, 0, 1200));
}

t('listen({ handshakeTimeout }) reaches the Endpoint: a half-open connection is closed after it, not after the 10 s default', async () => {
  const s = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN, retry: 'never', handshakeTimeout: 300 });
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.send(clientInitial(nodeProvider.randomBytes(8), nodeProvider.randomBytes(8)), s.address().port, '127.0.0.1');
    const poll = async (ms: number, cond: () => boolean, what: string): Promise<void> => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) assert.unreachable(`no ${what} after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await poll(2000, () => s.endpoint.handshakesInFlight === 1, 'half-open connection');
    const t0 = Date.now();
    // The endpoint closes it at its handshakeTimeout (then it drains: it may stay counted a while).
    await poll(3000, () => s.endpoint.handshakesInFlight === 0, 'handshake timeout');
    assert.ok(Date.now() - t0 < 2000, `closed after ${Date.now() - t0} ms`);
  } finally {
    sock.close();
    await s.close();
  }
});

t('listen({ qlogFor }) reaches the Endpoint: the server connection logs to the sink it returns', async () => {
  const events: string[] = [];
  const s = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ALPN, qlogFor: () => (e) => events.push(e.name) });
  try {
    const c = await within(5000, connect({ host: '127.0.0.1', port: s.address().port }, { alpn: ALPN, insecureSkipVerify: true }), 'client');
    await c.close();
    assert.ok(events.length > 0, 'no qlog events');
  } finally {
    await s.close();
  }
});

test.run();
