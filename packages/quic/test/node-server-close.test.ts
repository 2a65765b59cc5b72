/**
 * QuicServer.close() and listen()'s options, over real UDP sockets on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { nodeProvider } from '../../tls-core/src/crypto/node.js';
import { connect, listen, type NodeQuicConnection } from '../src/node/index.js';
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
    await within(5000, (async () => {
      while (s.connections.length < N) await new Promise((r) => setTimeout(r, 10));
    })(), 'all server connections');
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

test.run();
