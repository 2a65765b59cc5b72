/**
 * Keep-alive (TransportConfig.keepAliveInterval): an established connection with nothing to say
 * sends a PING after the interval without ack-eliciting packets, so that neither side's idle
 * timeout ends it and a receiver behind a NAT that rebinds is heard from again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';
import { listen, connect } from '../src/node/index.js';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { nodeProvider } from '../../tls-core/src/crypto/node.js';

for (const provider of providers) {
  test(`[${provider.name}] an idle connection with keep-alive outlives the idle timeout; without it, it closes`, () => {
    for (const keepAlive of [0, 300]) {
      const p = new Pair({ provider, delay: 10, client: { maxIdleTimeout: 1000, keepAliveInterval: keepAlive }, server: { maxIdleTimeout: 1000 } });
      assert.ok(p.handshake());
      const mark = p.log.length;
      p.runFor(5000);
      if (keepAlive === 0) {
        assert.ok(p.client.isClosed && p.server!.isClosed, 'closed by the idle timeout');
        continue;
      }
      assert.not.ok(p.client.isClosed || p.server!.isClosed, 'kept alive');
      const pings = p.packets(mark).filter((x) => x.dir === 'up' && x.frames.includes(FrameType.PING));
      // One PING per interval (plus the ACK that answers it), not a flood.
      assert.ok(pings.length >= 12 && pings.length <= 20, `${pings.length} PINGs in 5 s at a 300 ms interval`);
      assert.equal(p.bugs(), []);
    }
  });

  test(`[${provider.name}] keep-alive waits while data flows: no PING while the connection sends ack-eliciting packets anyway`, () => {
    const p = new Pair({ provider, delay: 10, client: { keepAliveInterval: 200 } });
    assert.ok(p.handshake());
    const id = p.client.openStream(false)!;
    const mark = p.log.length;
    for (let i = 0; i < 20; i++) {
      p.client.write(id, new Uint8Array(100).fill(i), false); // every 100 ms: more often than the interval
      p.runFor(100);
      readAll(p.server!, id);
    }
    const pings = p.packets(mark).filter((x) => x.dir === 'up' && x.frames.includes(FrameType.PING));
    assert.is(pings.length, 0, `${pings.length} keep-alive PINGs while data was being sent`);
    assert.equal(p.bugs(), []);
  });
}

test('keepAliveInterval is validated: negative, or not below the idle timeout, is a ConfigError that says what to fix', () => {
  const provider = providers[0]!;
  assert.throws(() => new Pair({ provider, client: { keepAliveInterval: -1 } }), /keepAliveInterval must be a number >= 0/);
  assert.throws(() => new Pair({ provider, client: { keepAliveInterval: 30_000 } }), /keepAliveInterval \(30000 ms\) must be below maxIdleTimeout \(30000 ms\)/);
  assert.throws(() => new Pair({ provider, client: { keepAliveInterval: 5000, maxIdleTimeout: 2000 } }), /below maxIdleTimeout/);
  new Pair({ provider, client: { keepAliveInterval: 5000, maxIdleTimeout: 0 } }); // no idle timeout: any interval
});

test('the node driver passes keepAliveInterval through: a loopback connection idle past both idle timeouts stays open', async () => {
  const cert = generateSelfSigned({ provider: nodeProvider, names: ['localhost', '127.0.0.1'] });
  const server = await listen({ host: '127.0.0.1', port: 0, cert: cert.certPem, key: cert.keyPem, alpn: ['ka'], maxIdleTimeout: 600 }, () => {});
  try {
    const conn = await connect({ host: '127.0.0.1', port: server.address().port }, { alpn: ['ka'], ca: cert.certPem, maxIdleTimeout: 600, keepAliveInterval: 150 });
    let closed = false;
    void conn.closed.then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 1500)); // 2.5 idle timeouts
    assert.not.ok(closed, 'the connection is still open');
    await conn.close(0, 'done');
  } finally {
    await server.close();
  }
});

test.run();
