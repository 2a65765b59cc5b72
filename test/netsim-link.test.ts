// interop/netsim/link.ts without sockets: the per-datagram decisions with a virtual clock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packetType } from '../interop/netsim/classify.js';
import { Link, type LinkConfig } from '../interop/netsim/link.js';
import { Rng } from './support/rng.js';

const dgram = (first: number, size = 1200, version = 1) => {
  const d = new Uint8Array(size);
  d[0] = first;
  d[1] = version >>> 24; d[2] = (version >>> 16) & 0xff; d[3] = (version >>> 8) & 0xff; d[4] = version & 0xff;
  return d;
};
const link = (cfg: LinkConfig, seed = 1) => new Link('up', cfg, new Rng(seed));
const unlimited: LinkConfig = { rateMbps: 0, delayMs: 0 };

test('classify: v1 and v2 long header types, short header, VN', () => {
  assert.is(packetType(dgram(0xc0)), 'initial');
  assert.is(packetType(dgram(0xd0)), '0rtt');
  assert.is(packetType(dgram(0xe0)), 'handshake');
  assert.is(packetType(dgram(0xf0)), 'retry');
  assert.is(packetType(dgram(0xc0, 100, 0)), 'version-negotiation');
  assert.is(packetType(dgram(0xd0, 100, 0x6b3343cf)), 'initial');
  assert.is(packetType(dgram(0xf0, 100, 0x6b3343cf)), 'handshake');
  assert.is(packetType(dgram(0xc0, 100, 0x6b3343cf)), 'retry');
  assert.is(packetType(dgram(0x40)), '1rtt');
  assert.is(packetType(new Uint8Array(0)), 'empty');
});

test('delay and serialization: default 15 ms + size*8/rate', () => {
  const l = link({});
  const d = l.decide(dgram(0x40, 1250), 100);
  // 1250 B at 10 Mbit/s = 1 ms on the wire, then 15 ms.
  assert.equal(d.deliverAtMs, [116]);
  const d2 = l.decide(dgram(0x40, 1250), 100);
  assert.equal(d2.deliverAtMs, [117], 'queued behind the first');
});

test('drop-tail queue: a burst keeps exactly queuePackets datagrams', () => {
  const l = link({ rateMbps: 10, queuePackets: 25, delayMs: 15 });
  const fates = Array.from({ length: 100 }, () => l.decide(dgram(0x40, 1250), 0));
  assert.is(fates.filter((f) => f.fate === 'forwarded').length, 25);
  assert.is(l.stats.dropped.queue, 75);
  assert.is(l.stats.maxQueue, 25);
  // The queue drains at the link rate (1 ms per 1250 B datagram): 10 places free after 10.5 ms.
  const later = Array.from({ length: 11 }, () => l.decide(dgram(0x40, 1250), 10.5).fate);
  assert.equal(later, [...new Array(10).fill('forwarded'), 'dropped']);
});

test('rate: delivery spacing matches the configured rate', () => {
  const l = link({ rateMbps: 4, queuePackets: 1000, delayMs: 0 });
  const at = Array.from({ length: 101 }, () => l.decide(dgram(0x40, 1000), 0).deliverAtMs[0]!);
  // 100 x 1000 B x 8 / 4 Mbit/s = 200 ms
  assert.ok(Math.abs(at[100]! - at[0]! - 200) < 1e-6);
});

test('random loss: ratio within 5 standard deviations, deterministic per seed', () => {
  const n = 20_000;
  const p = 0.3;
  const run = (seed: number) => {
    const l = link({ ...unlimited, loss: p }, seed);
    return Array.from({ length: n }, () => l.decide(dgram(0x40, 100), 0).fate);
  };
  const a = run(5);
  const lost = a.filter((f) => f === 'dropped').length;
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(lost - n * p) < 5 * sd, `lost ${lost} of ${n}`);
  assert.equal(run(5), a, 'same seed, same losses');
  assert.not.equal(run(6), a, 'other seed, other losses');
});

test('targeted drops: first N, by index, by packet type (count-limited), predicate', () => {
  const l = link({ ...unlimited, dropFirst: 2, dropIndices: [5], dropTypes: ['handshake'], dropTypesCount: 2, drop: (d) => d.size === 77 });
  const seq = [0xc0, 0xc0, 0xc0, 0xe0, 0x40, 0x40, 0xe0, 0xe0, 0x40];
  const f = seq.map((b) => l.decide(dgram(b), 0).fate);
  assert.equal(f, ['dropped', 'dropped', 'forwarded', 'dropped', 'forwarded', 'dropped', 'dropped', 'forwarded', 'forwarded']);
  assert.is(l.decide(dgram(0x40, 77), 0).fate, 'dropped');
  assert.is(l.stats.dropped.targeted, 6);
});

test('blackhole windows', () => {
  const l = link({ ...unlimited, blackholes: [{ fromMs: 100, toMs: 200 }] });
  assert.equal([50, 100, 150, 199.9, 200].map((t) => l.decide(dgram(0x40), t).fate), ['forwarded', 'dropped', 'dropped', 'dropped', 'forwarded']);
  assert.is(l.stats.dropped.blackhole, 3);
});

test('corruption changes exactly corruptBytes bytes after corruptSkip, on a copy', () => {
  const l = link({ ...unlimited, corrupt: 1, corruptBytes: 1, corruptSkip: 1 });
  for (let i = 0; i < 200; i++) {
    const d = dgram(0x40, 50);
    const r = l.decide(d, 0);
    assert.is(r.fate, 'corrupted');
    let diff = 0;
    for (let k = 0; k < 50; k++) if (r.data[k] !== d[k]) diff++;
    assert.is(diff, 1);
    assert.is(r.data[0], 0x40);
    assert.is(d[1], 0, 'input untouched');
  }
});

test('duplication and reordering', () => {
  const l = link({ delayMs: 10, rateMbps: 0, duplicate: 1 });
  assert.is(l.decide(dgram(0x40), 0).deliverAtMs.length, 2);
  const r = link({ delayMs: 10, rateMbps: 0, reorder: 0.5, reorderDelayMs: 20 }, 3);
  const at = Array.from({ length: 200 }, (_, i) => r.decide(dgram(0x40), i).deliverAtMs[0]!);
  const inversions = at.filter((t, i) => i > 0 && t < at[i - 1]!).length;
  assert.ok(inversions > 20, `reordered: ${inversions} inversions`);
  assert.ok(r.stats.reordered > 60 && r.stats.reordered < 140);
});

test.run();
