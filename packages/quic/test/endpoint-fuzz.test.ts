/**
 * Endpoint fuzz with real Connections: a client and a server Endpoint complete a handshake in
 * memory (datagrams recorded), then random, mutated, replayed and truncated datagrams from many
 * addresses are fed to the server Endpoint. Nothing may escape (no exception, no contained internal
 * error through onError), the connection table stays bounded by the limits, and the endpoint's own
 * queue stays bounded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CryptoProvider } from '@petrel/tls-core';
import { generateSelfSigned } from '../../tls-core/src/x509/selfsigned.js';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import type { Address } from '../src/api.js';
import { Endpoint } from '../src/endpoint.js';

const SERVER: Address = { address: '10.0.0.2', port: 4433, family: 4 };
const CLIENT: Address = { address: '10.0.0.1', port: 5000, family: 4 };

function handshake(p: CryptoProvider, server: Endpoint, now: number): { recorded: Uint8Array[]; ok: boolean; now: number } {
  const client = new Endpoint({ provider: p });
  const conn = client.connect(SERVER, { provider: p, tls: { alpn: ['fz'], insecureSkipVerify: true, serverName: 'localhost' } }, now);
  const recorded: Uint8Array[] = [];
  for (let round = 0; round < 200 && !conn.handshakeComplete; round++) {
    let moved = false;
    for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) {
      recorded.push(t.datagram.slice());
      server.receive(t.datagram, CLIENT, now);
      moved = true;
    }
    for (let t = server.pollTransmit(now); t; t = server.pollTransmit(now)) {
      client.receive(t.datagram, SERVER, now);
      moved = true;
    }
    if (!moved) {
      now = Math.max(now + 1, Math.min(client.nextTimeout() ?? Infinity, server.nextTimeout() ?? Infinity));
      client.handleTimeout(now);
      server.handleTimeout(now);
    }
  }
  // One stream request after the handshake, so 1-RTT datagrams are in the corpus too.
  const id = conn.openStream(true);
  if (id !== null) conn.write(id, new TextEncoder().encode('hello'), true);
  for (let t = client.pollTransmit(now); t; t = client.pollTransmit(now)) {
    recorded.push(t.datagram.slice());
    server.receive(t.datagram, CLIENT, now);
  }
  return { recorded, ok: conn.handshakeComplete, now };
}

for (const p of providers) {
  test(`${p.name}: mutated and random datagrams into a server Endpoint with real connections`, () => {
    const cert = generateSelfSigned({ provider: p, names: ['localhost'] });
    const errors: unknown[] = [];
    const server = new Endpoint({
      provider: p,
      server: {
        provider: p,
        tls: { alpn: ['fz'], identity: { chain: [cert.certDer], key: cert.keyDer } },
        retry: 'auto',
        retryThreshold: 8,
        maxConnections: 40,
        maxHandshakes: 16,
        maxIdleTimeout: 2000,
      },
      maxQueued: 32,
      onError: (e) => errors.push(e),
    });
    let now = 1_000_000;
    const hs = handshake(p, server, now);
    assert.ok(hs.ok, 'in-memory handshake through the Endpoints');
    now = hs.now;
    const corpus = hs.recorded;
    assert.ok(corpus.length >= 2);
    const rng = new Rng(`endpoint-real-fuzz-${p.name}`);
    const t0 = Date.now();
    const budgetMs = p.name === 'node' ? 3000 : 2000;
    let i = 0;
    for (; i < 5000 && Date.now() - t0 < budgetMs; i++) {
      now += rng.int(20);
      let d: Uint8Array;
      const k = rng.int(10);
      if (k === 0) d = rng.bytes(rng.int(1500));
      else if (k === 1) d = rng.pick(corpus).slice(); // replay
      else {
        d = rng.pick(corpus).slice();
        const n = 1 + rng.int(6);
        for (let m = 0; m < n; m++) {
          const what = rng.int(5);
          const at = rng.int(Math.max(1, d.length));
          if (what === 0) d[at] = rng.int(256);
          else if (what === 1) d = d.subarray(0, at);
          else if (what === 2) d[Math.min(at, 60)]! ^= 1 << rng.int(8);
          else if (what === 3) d.set(rng.bytes(Math.min(8, d.length)), rng.int(Math.max(1, d.length - 8)));
          else if (d.length > 0) d[0] = rng.int(256);
        }
      }
      const from: Address = rng.chance(0.7) ? CLIENT : { address: `10.0.${rng.int(4)}.${rng.int(250)}`, port: 1000 + rng.int(50), family: 4 };
      server.receive(d, from, now);
      for (let n = 0, t = server.pollTransmit(now); t && n < 1000; n++, t = server.pollTransmit(now)) {
        /* discard */
      }
      if (rng.chance(0.1)) server.handleTimeout(now);
      assert.ok(server.connectionCount <= 40, 'maxConnections holds');
      assert.ok(server.handshakesInFlight <= 16, 'maxHandshakes holds');
    }
    assert.equal(errors, [], 'no internal error at the endpoint boundary');
    // Everything times out eventually: the table empties.
    for (let n = 0; n < 100 && server.connectionCount > 0; n++) {
      now = Math.max(now + 1000, server.nextTimeout() ?? now);
      server.handleTimeout(now);
      while (server.pollTransmit(now));
    }
    assert.is(server.connectionCount, 0, 'idle connections are removed');
    assert.is(server.handshakesInFlight, 0);
    assert.ok(i > 200, `iterations ${i}`);
    assert.ok(server.stats.accepted >= 1 && server.stats.dropped > 0, JSON.stringify(server.stats));
    if (process.env.PETREL_VERBOSE) console.log(i, server.stats);
  });
}

test.run();
