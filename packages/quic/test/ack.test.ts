import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReceivedPackets, newAckFrameData, ackToIntervals, Ecn, encodeAckDelay, decodeAckDelay } from '../src/ack.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes an ACK frame back to the set of acknowledged packet numbers. */
function ackedSet(rp: ReceivedPackets, now = 0): Set<number> {
  const f = newAckFrameData();
  const out: number[] = [];
  if (!rp.fillAck(now, f)) return new Set();
  const n = ackToIntervals(f.largest, f.firstRange, f.ranges, f.rangeCount, out);
  assert.ok(n > 0);
  const s = new Set<number>();
  for (let i = 0; i < n; i++) for (let p = out[2 * i + 1]!; p <= out[2 * i]!; p++) s.add(p);
  return s;
}

test('in-order packets form one range; duplicates rejected', () => {
  const rp = new ReceivedPackets();
  for (let pn = 0; pn < 10; pn++) assert.ok(rp.onPacketReceived(pn, pn, true));
  assert.is(rp.rangeCount, 1);
  assert.equal(rp.rangeAt(0), [0, 9]);
  assert.not.ok(rp.onPacketReceived(5, 20, true));
  assert.ok(rp.isDuplicate(9));
  assert.not.ok(rp.isDuplicate(10));
  assert.is(rp.largest, 9);
});

test('ACK frame fields in wire order (RFC 9000 §19.3.1 gaps)', () => {
  const rp = new ReceivedPackets();
  for (const pn of [0, 1, 2, 5, 6, 10]) rp.onPacketReceived(pn, 100, true);
  const f = newAckFrameData();
  assert.ok(rp.fillAck(130, f));
  assert.is(f.largest, 10);
  assert.is(f.ackDelay, 30);
  assert.is(f.firstRange, 0);
  assert.is(f.rangeCount, 2);
  // next range [5,6]: gap = 10 - 6 - 2 = 2, length = 1; then [0,2]: gap = 5 - 2 - 2 = 1, length 2
  assert.equal(f.ranges.slice(0, 4), [2, 1, 1, 2]);
  const out: number[] = [];
  assert.is(ackToIntervals(f.largest, f.firstRange, f.ranges, f.rangeCount, out), 3);
  assert.equal(out.slice(0, 6), [10, 10, 6, 5, 2, 0]);
});

test('fillIntervals gives descending inclusive pairs (Frame.ackRanges form)', () => {
  const rp = new ReceivedPackets();
  for (const pn of [0, 1, 2, 5, 6, 10]) rp.onPacketReceived(pn, 100, true);
  const out: number[] = [];
  assert.is(rp.fillIntervals(out), 3);
  assert.equal(out, [10, 10, 6, 5, 2, 0]);
  assert.is(rp.fillIntervals(out, 2), 2);
  assert.is(rp.ackDelay(112), 12);
  rp.onAckOfAckReceived(6);
  assert.is(rp.fillIntervals(out), 1);
});

test('ackToIntervals rejects ranges below zero', () => {
  assert.is(ackToIntervals(3, 4, [], 0, []), -1);
  assert.is(ackToIntervals(10, 0, [8, 0], 1, []), 2); // hi = 10 - 8 - 2 = 0, lo 0: valid
  assert.is(ackToIntervals(10, 0, [9, 0], 1, []), -1);
  assert.is(ackToIntervals(10, 0, [7, 1], 1, []), 2);
});

test('property: random arrival matches a naive set', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const rp = new ReceivedPackets({ maxRanges: 10000 });
    const naive = new Set<number>();
    for (let k = 0; k < 400; k++) {
      const pn = Math.floor(r() * 300);
      const dup = naive.has(pn);
      assert.is(rp.isDuplicate(pn), dup);
      assert.is(rp.onPacketReceived(pn, k, r() < 0.8), !dup);
      naive.add(pn);
    }
    const acked = ackedSet(rp);
    assert.equal([...acked].sort((a, b) => a - b), [...naive].sort((a, b) => a - b));
    // ranges are sorted, disjoint and non-adjacent
    for (let i = 1; i < rp.rangeCount; i++) assert.ok(rp.rangeAt(i)[0] > rp.rangeAt(i - 1)[1] + 1);
  }
});

test('range limit drops the oldest range and treats older packets as duplicates', () => {
  const rp = new ReceivedPackets({ maxRanges: 4 });
  for (const pn of [0, 2, 4, 6]) rp.onPacketReceived(pn, 0, true);
  assert.is(rp.rangeCount, 4);
  rp.onPacketReceived(8, 0, true);
  assert.is(rp.rangeCount, 4);
  assert.equal(rp.rangeAt(0), [2, 2]);
  assert.ok(rp.isDuplicate(0));
  assert.ok(rp.isDuplicate(1)); // below the oldest range kept: too old to tell, dropped
  assert.not.ok(rp.onPacketReceived(1, 0, true));
  assert.not.ok(rp.isDuplicate(3));
  // 3 joins [2,2] and [4,4] into one range
  assert.ok(rp.onPacketReceived(3, 0, true));
  assert.is(rp.rangeCount, 3);
  assert.equal(rp.rangeAt(0), [2, 4]);
  // random stress: never more than the limit, and the largest always present
  const r = rng(7);
  const big = new ReceivedPackets({ maxRanges: 8 });
  let max = -1;
  for (let k = 0; k < 2000; k++) {
    const pn = Math.floor(r() * 5000);
    big.onPacketReceived(pn, k, true);
    max = Math.max(max, pn);
    assert.ok(big.rangeCount <= 8);
  }
  assert.ok(ackedSet(big).has(max));
});

test('ACK every second ack-eliciting packet, else after max_ack_delay (§13.2.2)', () => {
  const rp = new ReceivedPackets({ maxAckDelay: 25 });
  rp.onPacketReceived(0, 1000, true);
  assert.not.ok(rp.wantAckNow(1000));
  assert.is(rp.ackTimeout(), 1025);
  assert.not.ok(rp.wantAckNow(1024));
  assert.ok(rp.wantAckNow(1025));
  rp.onPacketReceived(1, 1005, true);
  assert.ok(rp.wantAckNow(1005));
  rp.onAckSent();
  assert.not.ok(rp.wantAckNow(5000));
  assert.is(rp.ackTimeout(), null);
});

test('non-ack-eliciting packets never trigger an ACK by themselves (§13.2.1)', () => {
  const rp = new ReceivedPackets();
  for (let pn = 0; pn < 10; pn += 2) rp.onPacketReceived(pn, 0, false); // gaps too
  assert.not.ok(rp.wantAckNow(1e9));
  assert.is(rp.ackTimeout(), null);
  assert.ok(rp.hasPendingAck);
  assert.not.ok(rp.hasPendingAckEliciting);
});

test('out-of-order ack-eliciting packets are acknowledged immediately (§13.2.1)', () => {
  const rp = new ReceivedPackets();
  rp.onPacketReceived(0, 0, true);
  rp.onAckSent();
  rp.onPacketReceived(2, 1, true); // gap: 1 missing
  assert.ok(rp.wantAckNow(1));
  rp.onAckSent();
  rp.onPacketReceived(1, 2, true); // lower than the largest ack-eliciting
  assert.ok(rp.wantAckNow(2));
  rp.onAckSent();
  rp.onPacketReceived(3, 3, true); // in order
  assert.not.ok(rp.wantAckNow(3));
  // a non-eliciting packet fills the gap: no immediacy
  const rp2 = new ReceivedPackets();
  rp2.onPacketReceived(0, 0, true);
  rp2.onAckSent();
  rp2.onPacketReceived(1, 0, false);
  rp2.onPacketReceived(2, 0, true);
  assert.not.ok(rp2.wantAckNow(0));
});

test('CE-marked packets are acknowledged immediately; ECN counts reported', () => {
  const rp = new ReceivedPackets();
  rp.onPacketReceived(0, 0, true, Ecn.ect0);
  assert.not.ok(rp.wantAckNow(0));
  rp.onAckSent();
  rp.onPacketReceived(1, 0, true, Ecn.ce);
  assert.ok(rp.wantAckNow(0));
  const f = newAckFrameData();
  rp.fillAck(0, f);
  assert.is(f.ect0, 1);
  assert.is(f.ce, 1);
  assert.is(f.ect1, 0);
});

test('Initial/Handshake (max_ack_delay 0): every ack-eliciting packet immediately', () => {
  const rp = new ReceivedPackets({ maxAckDelay: 0 });
  rp.onPacketReceived(0, 10, true);
  assert.ok(rp.wantAckNow(10));
});

test('ACK of ACK stops reporting old ranges but keeps duplicate detection (§13.2.4)', () => {
  const rp = new ReceivedPackets();
  for (const pn of [0, 1, 3, 4, 6, 8]) rp.onPacketReceived(pn, 0, true);
  rp.onAckOfAckReceived(4);
  assert.equal([...ackedSet(rp)].sort((a, b) => a - b), [6, 8]);
  assert.ok(rp.isDuplicate(3));
  assert.ok(rp.isDuplicate(0));
  rp.onPacketReceived(9, 0, true);
  assert.equal([...ackedSet(rp)].sort((a, b) => a - b), [6, 8, 9]);
});

test('fillAck limits the number of ranges, keeping the newest', () => {
  const rp = new ReceivedPackets();
  for (let pn = 0; pn < 40; pn += 2) rp.onPacketReceived(pn, 0, true);
  const f = newAckFrameData();
  rp.fillAck(0, f, 3);
  assert.is(f.rangeCount, 3);
  assert.is(f.largest, 38);
  assert.not.ok(new ReceivedPackets().fillAck(0, f));
});

test('ACK Delay field scaling by ack_delay_exponent (§19.3, §18.2 default 3)', () => {
  assert.is(encodeAckDelay(25), 3125); // 25 000 µs / 8
  assert.is(decodeAckDelay(3125), 25);
  assert.is(encodeAckDelay(1, 0), 1000);
  assert.is(decodeAckDelay(1, 20), 1048.576);
  assert.is(encodeAckDelay(-1), 0);
});

test.run();
