/**
 * How connections end, over the simulated link: stateless reset after a server restart, idle
 * timeout, CONNECTION_CLOSE of both kinds (application and transport), and draining.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { PacketType } from '../src/header.js';
import { PacketInspector, QuicPair, closedInfo } from '../../../test/support/quic-pair.js';

for (const provider of providers) {
  test(`[${provider.name}] stateless reset: a restarted server resets the connection, the client closes with 'stateless-reset'`, () => {
    const pair = new QuicPair({ provider, seed: 21, link: { delayMs: 10 } });
    assert.ok(pair.handshake());
    assert.ok(pair.transfer(10_000).ok);
    // The server forgets everything (same reset key: a restart behind the same address).
    pair.restartServer();
    // The client has something to say.
    const id = pair.client.openStream(true)!;
    pair.client.write(id, new Uint8Array(2000), true);
    assert.ok(pair.runUntil(() => pair.client.isClosed, 10_000), 'the client closed');
    pair.assertNoBugs();
    assert.ok(pair.server.stats.statelessResetsSent >= 1);
    const info = closedInfo(pair, 'client')!;
    assert.is(info.kind, 'stateless-reset');
    assert.ok(info.remote);
  });

  test(`[${provider.name}] a stateless reset from a server with another key is not accepted`, () => {
    const pair = new QuicPair({ provider, seed: 22, link: { delayMs: 10 }, client: { maxIdleTimeout: 3000 }, server: { maxIdleTimeout: 3000 } });
    assert.ok(pair.handshake());
    // A server with different reset keys: its resets do not match the client's tokens.
    const restarted = new QuicPair({ provider, seed: 999 });
    pair.restartServer(restarted.server);
    pair.client.write(pair.client.openStream(true)!, new Uint8Array(100), true);
    assert.ok(pair.runUntil(() => pair.client.isClosed, 20_000));
    pair.assertNoBugs();
    assert.ok(pair.server.stats.statelessResetsSent >= 1, 'resets were sent');
    assert.is(closedInfo(pair, 'client')!.kind, 'idle', 'the client ended by idle timeout, not by the foreign reset');
  });

  test(`[${provider.name}] idle timeout: both sides close after max_idle_timeout without traffic`, () => {
    const pair = new QuicPair({ provider, seed: 23, link: { delayMs: 10 }, client: { maxIdleTimeout: 5000 }, server: { maxIdleTimeout: 8000 } });
    assert.ok(pair.handshake());
    const t0 = pair.now;
    assert.ok(pair.runUntil(() => pair.client.isClosed && pair.serverConn!.isClosed, 30_000));
    pair.assertNoBugs();
    const ci = closedInfo(pair, 'client')!;
    const si = closedInfo(pair, 'server')!;
    assert.is(ci.kind, 'idle');
    assert.is(si.kind, 'idle');
    // The effective timeout is the minimum of both (RFC 9000 §10.1): about 5 s, not 8 s.
    const dt = pair.now - t0;
    assert.ok(dt >= 4900 && dt < 7000, `closed after ${dt} ms`);
  });

  test(`[${provider.name}] idle timeout does not fire while data flows`, () => {
    const pair = new QuicPair({ provider, seed: 24, link: { delayMs: 10, bandwidthBps: 2e6 }, client: { maxIdleTimeout: 1000 }, server: { maxIdleTimeout: 1000 } });
    assert.ok(pair.handshake());
    const r = pair.transfer(1 << 20); // ~4 s at 2 Mbit/s
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.ok(r.virtualMs > 3000);
  });

  test(`[${provider.name}] application CONNECTION_CLOSE: code and reason reach the peer`, () => {
    const pair = new QuicPair({ provider, seed: 25, link: { delayMs: 10 } });
    assert.ok(pair.handshake());
    pair.client.close(0x42, 'bye now', pair.now);
    assert.ok(pair.runUntil(() => pair.client.isClosed && pair.serverConn!.isClosed, 10_000));
    pair.assertNoBugs();
    const si = closedInfo(pair, 'server')!;
    assert.equal({ code: si.code, reason: si.reason, application: si.application, remote: si.remote, kind: si.kind }, { code: 0x42, reason: 'bye now', application: true, remote: true, kind: 'close' });
    const ci = closedInfo(pair, 'client')!;
    assert.is(ci.remote, false);
    assert.is(ci.code, 0x42);
  });

  test(`[${provider.name}] transport CONNECTION_CLOSE: a STREAM frame on a stream the peer may not send on → STREAM_STATE_ERROR`, () => {
    let inspector: PacketInspector | null = null;
    let armed = false;
    let injected = 0;
    const pair = new QuicPair({
      provider,
      seed: 26,
      link: { delayMs: 10 },
      intercept: (dir, d) => {
        if (!armed || dir !== 'down' || injected > 0 || !inspector) return d;
        const p = inspector.open(dir, d).find((x) => x.type === PacketType.OneRtt);
        if (!p) return d;
        injected++;
        // STREAM (0x0a: LEN bit) on stream 2, a client-initiated unidirectional stream: the server cannot send on it (RFC 9000 §19.8).
        const payload = new Uint8Array([...p.payload, 0x0a, 0x02, 0x03, 1, 2, 3]);
        return inspector.reseal(d, p, payload);
      },
    });
    inspector = new PacketInspector(provider, pair.keyLog);
    assert.ok(pair.handshake());
    armed = true;
    const id = pair.client.openStream(true)!;
    pair.client.write(id, new Uint8Array(100), true);
    assert.ok(pair.runUntil(() => pair.client.isClosed && pair.serverConn!.isClosed, 10_000));
    pair.assertNoBugs();
    assert.is(injected, 1);
    const ci = closedInfo(pair, 'client')!;
    assert.equal({ code: ci.code, application: ci.application, remote: ci.remote }, { code: 0x05, application: false, remote: false });
    const si = closedInfo(pair, 'server')!;
    assert.equal({ code: si.code, application: si.application, remote: si.remote, kind: si.kind }, { code: 0x05, application: false, remote: true, kind: 'close' });
    assert.is(si.frameType & ~7, 0x08, 'frame type of the offending STREAM frame');
  });
}

for (const provider of providers) {
  test(`[${provider.name}] stateless reset after a migration (the new CID's token from NEW_CONNECTION_ID is honoured)`, () => {
    const pair = new QuicPair({ provider, seed: 27, link: { delayMs: 10 } });
    assert.ok(pair.handshake());
    assert.ok(pair.transfer(100_000).ok);
    assert.ok(pair.migrate());
    assert.ok(pair.transfer(100_000).ok);
    pair.restartServer();
    pair.client.write(pair.client.openStream(true)!, new Uint8Array(500), true);
    assert.ok(pair.runUntil(() => pair.client.isClosed, 20_000));
    pair.assertNoBugs();
    assert.is(closedInfo(pair, 'client')!.kind, 'stateless-reset');
  });
}

test.run();
