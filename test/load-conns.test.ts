// Many concurrent HTTP/3 connections on one server process over loopback: each client has its own
// UDP socket, does one GET and closes; the server (a child process) must answer every one.
// CI: 200 concurrent. LOAD_FULL=1: 1,000 concurrent (the figure in test/load/README.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mb, runClients, startLoadServer } from './support/load.js';

const full = process.env.LOAD_FULL === '1';
const N = full ? 1000 : 200;

test(`${N} concurrent connections, one request each, 0 failures`, async () => {
  const srv = await startLoadServer({});
  try {
    const r = await runClients(srv.port, N, { path: '/bytes/1000', expectBytes: 1000 });
    const s = await srv.stats();
    console.log(`  ${N} connections: ${r.ok} ok, ${r.failures} failed in ${(r.ms / 1000).toFixed(1)} s; server peak RSS ${mb(s.maxRss)}, peak ${s.peakConnections} connections / ${s.peakHandshakes} handshakes`);
    assert.equal(r.errors, {});
    assert.is(r.ok, N);
    assert.is(s.requests, N);
    assert.is(s.endpoint['accepted'], N);
    assert.is(s.endpoint['refused'], 0);
    assert.is(s.requestErrors, 0);
  } finally {
    await srv.close();
  }
});

test.run();
