// Clients that vanish mid-transfer (their process is SIGKILLed: no CONNECTION_CLOSE): the server's
// connections time out and are removed, and its handles, timers and heap return to the baseline
// (server in a child process with --expose-gc). CI: 40 clients; LOAD_FULL=1: 200.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runVanish } from './support/load-vanish.js';

const full = process.env.LOAD_FULL === '1';
const N = full ? 200 : 40;

test(`${N} clients vanish mid-transfer: connections removed, no timers, handles or heap left behind`, async () => {
  const r = await runVanish(N, full ? 3000 : 1000);
  console.log(`  ${r.started}/${N} transfers started, ${r.connectionsDuring} server connections; all removed ${r.removedAfterMs} ms after the kill; ${r.summary}`);
  // On a loaded machine a client whose transfer stalled early can reach the (short) idle timeout
  // before the last one starts: that is a clean close too, but most must be running at the kill.
  for (const m of Object.keys(r.clientErrors)) assert.match(m, /connection closed \(0x0\)|idle/, `unexpected client error: ${m}`);
  assert.ok(r.started >= N * 0.8, `${r.started}/${N} started: ${JSON.stringify(r.clientErrors)}`);
  assert.ok(r.connectionsDuring >= r.started * 0.8, `server held ${r.connectionsDuring} connections for ${r.started} started transfers`);
  assert.is(r.connectionsAfter, 0);
  assert.is(r.wrappersAfter, 0);
  assert.is(r.handshakesAfter, 0);
  // Same kinds and counts of libuv handles / timers as before the clients came (one UDP socket,
  // the sampler timer, the IPC pipe).
  assert.equal(r.resourcesAfter, r.resourcesBaseline);
  // Heap back near the baseline (every connection held streams with buffered data).
  assert.ok(r.heapAfter < r.heapBaseline + 4 * 1048576, `heap after ${r.heapAfter} vs baseline ${r.heapBaseline}`);
  assert.ok(r.heapDuring > r.heapAfter, 'the connections did hold memory while alive (the check can fail)');
});

test.run();
