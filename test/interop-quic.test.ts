/**
 * QUIC interop: Petrel's interop endpoint against quic-go (hq-interop) and ngtcp2 (h3), both roles,
 * every case of the QUIC transport issue, each in its own network namespace (interop/runner.ts does
 * the work and the checks: files byte-equal, and the property under test happened: Retry followed,
 * session resumed, 0-RTT accepted, ChaCha20 negotiated, key update, VN seen). A case a peer cannot
 * play is 'unsupported' with the reason from runner.ts `lacks()`; anything else must pass.
 * The same matrix by hand: `pnpm interop -- --peer quic-go,ngtcp2 --role both`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { matrix, runInterop, unavailable, type CaseResult } from '../interop/runner.js';

const TESTS = ['handshake', 'transfer', 'multiplexing', 'retry', 'resumption', 'zerortt', 'chacha20', 'keyupdate', 'versionnegotiation', 'v2', 'http3'];

function check(results: CaseResult[]): void {
  console.log(matrix(results));
  assert.equal(
    results.filter((r) => r.status !== 'pass' && r.status !== 'unsupported').map((r) => `${r.test}/${r.role}: ${r.status} ${r.detail}${r.dir ? ` (${r.dir})` : ''}`),
    [],
    'every case passes, or the peer lacks it',
  );
  // Not vacuous: most cells really ran.
  const passed = results.filter((r) => r.status === 'pass').length;
  assert.ok(passed >= results.length - 4, `only ${passed} of ${results.length} cases passed`);
}

test('Petrel ↔ quic-go (hq-interop; http3 over h3), both roles', async () => {
  const why = unavailable('quic-go');
  if (why) {
    console.log(`SKIPPED: quic-go interop unavailable: ${why}`);
    return;
  }
  check(await runInterop({ peer: 'quic-go', tests: TESTS, roles: ['client', 'server'], timeoutS: 15, transferMB: 1.5 }));
});

test('Petrel ↔ ngtcp2 (h3), both roles', async () => {
  const why = unavailable('ngtcp2');
  if (why) {
    console.log(`SKIPPED: ngtcp2 interop unavailable: ${why}`);
    return;
  }
  check(await runInterop({ peer: 'ngtcp2', tests: TESTS, roles: ['client', 'server'], timeoutS: 15, transferMB: 1.5 }));
});

test.run();
