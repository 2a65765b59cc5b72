// The bench table logic (no timing): merging rows across modules, ratio orientation, missing
// peers shown as MISSING with their reason, foreign row shapes normalized.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTable, jsonRow, mergeRows, normalizeRow, ratio } from './report.js';
import { summarize, type BenchRow } from './types.js';

test('summarize: median / min / max', () => {
  assert.equal(summarize([3, 1, 2]), { samples: [3, 1, 2], median: 2, min: 1, max: 3 });
  assert.is(summarize([4, 1, 3, 2]).median, 2.5);
  assert.is(summarize(7).median, 7);
});

test('ratio: > 1 means Petrel better, inverted for lower-is-better units', () => {
  assert.is(ratio({ name: 'a', unit: 'ops/s', petrel: [200] }, [100]), 2);
  assert.is(ratio({ name: 'a', unit: 'ms', petrel: [200], higherIsBetter: false }, [100]), 0.5);
  assert.is(ratio({ name: 'a', unit: 'ops/s' }, [100]), undefined);
  assert.is(ratio({ name: 'a', unit: 'ops/s', petrel: 1 }, { missing: 'x' }), undefined);
});

test('merge: Petrel from one module, peers from another; a real figure beats "missing"', () => {
  const fromTls: BenchRow[] = [{ name: 'tls/tcp-handshakes', unit: 'conn/s', petrel: [300, 310], peers: { 'node-tls': [400] } }];
  const fromPeers: BenchRow[] = [
    { name: 'tls/tcp-handshakes', unit: 'conn/s', peers: { 'openssl-s_server': [500], 'node-tls': { missing: 'port busy' } } },
    { name: 'quic/bulk-10MB', unit: 'Gbit/s', peers: { ngtcp2: [0.8, 0.9], 'quic-go': { missing: 'needs root for unshare -n' } } },
  ];
  const m = mergeRows([fromTls, fromPeers]);
  const tcp = m.get('tls/tcp-handshakes')!;
  assert.equal(tcp.petrel, [300, 310]);
  assert.equal(tcp.peers, { 'node-tls': [400], 'openssl-s_server': [500] });
  const table = formatTable([...m.values()]);
  assert.match(table, /tls\/tcp-handshakes\s+conn\/s\s+305 \[300-310\]\s+node-tls\s+400\s+0\.76x/);
  assert.match(table, /quic\/bulk-10MB\s+Gbit\/s\s+n\/a \(not implemented yet\)\s+ngtcp2/);
  assert.match(table, /quic-go\s+MISSING \[1\]/);
  assert.match(table, /\[1\] quic\/bulk-10MB \/ quic-go: needs root for unshare -n/);
  const j = jsonRow(m.get('quic/bulk-10MB')!);
  assert.equal(j.petrel, { missing: 'not implemented yet' });
  assert.equal(j.peers['quic-go'], { missing: 'needs root for unshare -n' });
  assert.ok(Math.abs((j.peers.ngtcp2 as { median: number }).median - 0.85) < 1e-12);
});

test('normalizeRow: benchmark.js-style results become ops/s rows; junk is rejected', () => {
  const r = normalizeRow('crypto')({ case: 'aead seal', provider: 'node', opsPerSec: 1000, rme: 1, samples: [0.001, 0.002] });
  assert.is(r.name, 'crypto/aead seal [node]');
  assert.is(r.unit, 'ops/s');
  assert.equal(r.petrel, [1000, 500]);
  assert.throws(() => normalizeRow('x')({ foo: 1 }), /without name\/unit/);
});

test.run();
