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
  // A failure with the exact signature of a reported bug outside the interop code is printed loudly
  // and not counted here (its unit repro is a skipped test); any other failure fails this test.
  for (const r of results) if (r.knownBug) console.log(`KNOWN BUG (${r.test}/${r.role}): ${r.knownBug}`);
  const failed = results.filter((r) => (r.status === 'fail' && !r.knownBug) || r.status === 'skipped');
  assert.equal(
    failed.map((r) => `${r.test}/${r.role}: ${r.detail}${r.dir ? ` (${r.dir})` : ''}`),
    [],
    'every case passes (or is unsupported by the peer)',
  );
  // quic-go's server has no keyupdate case; everything else must really have run.
  const passed = results.filter((r) => r.status === 'pass').length;
  const known = results.filter((r) => r.knownBug).length;
  assert.ok(passed + known >= TESTS.length * 2 - 1, `passed ${passed}`);
  assert.ok(passed >= TESTS.length, `at least the server role and some client cases pass (${passed})`);
});

test.run();
