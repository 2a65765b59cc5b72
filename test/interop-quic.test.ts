/**
 * QUIC interop, fast subset: Petrel's interop endpoint against quic-go's (hq-interop), both roles,
 * each case in its own network namespace (interop/runner.ts does the work and the checks: files
 * byte-equal, and the property under test happened: Retry followed, ChaCha20 negotiated, session
 * resumed, key update). The full matrix: `pnpm interop -- --peer quic-go --role both`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { matrix, runInterop, unavailable, type CaseResult } from '../interop/runner.js';

const TESTS = ['handshake', 'transfer', 'retry', 'chacha20', 'resumption', 'keyupdate'];

test('Petrel ↔ quic-go (hq-interop): handshake, transfer, retry, chacha20, resumption, keyupdate, both roles', async () => {
  const why = unavailable('quic-go');
  if (why) {
    console.log(`SKIPPED: quic-go interop unavailable: ${why}`);
    return;
  }
  const results: CaseResult[] = await runInterop({ peer: 'quic-go', tests: TESTS, roles: ['client', 'server'], timeoutS: 15, transferMB: 1.5 });
  console.log(matrix(results));
  const failed = results.filter((r) => r.status === 'fail' || r.status === 'skipped');
  assert.equal(
    failed.map((r) => `${r.test}/${r.role}: ${r.detail}${r.dir ? ` (${r.dir})` : ''}`),
    [],
    'every case passes (or is unsupported by the peer)',
  );
  // quic-go's server has no keyupdate case; everything else must really have run.
  const passed = results.filter((r) => r.status === 'pass').length;
  assert.ok(passed >= TESTS.length * 2 - 1, `passed ${passed}`);
});

test('Petrel ↔ ngtcp2 (h3): handshake, transfer, retry, both roles', async () => {
  const why = unavailable('ngtcp2');
  if (why) {
    console.log(`SKIPPED: ngtcp2 interop unavailable: ${why}`);
    return;
  }
  const results = await runInterop({ peer: 'ngtcp2', tests: ['handshake', 'transfer', 'retry'], roles: ['client', 'server'], timeoutS: 15, transferMB: 1.5 });
  console.log(matrix(results));
  assert.equal(
    results.filter((r) => r.status !== 'pass').map((r) => `${r.test}/${r.role}: ${r.status} ${r.detail}${r.dir ? ` (${r.dir})` : ''}`),
    [],
  );
});

test.run();
