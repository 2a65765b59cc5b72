import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { LossRecovery, PnSpace, type RecoveryHandler } from '../src/recovery.js';
import { RttEstimator } from '../src/rtt.js';
import { NewReno } from '../src/congestion/new-reno.js';

const A = PnSpace.application;
const H = PnSpace.handshake;
const I = PnSpace.initial;

function setup(isServer = false, confirmed = true) {
  const acked: number[] = [];
  const lost: number[] = [];
  const lostInfo: unknown[] = [];
  const handler: RecoveryHandler<string> = {
    onAcked: (_s, pn) => acked.push(pn),
    onLost: (_s, pn, info) => {
      lost.push(pn);
      lostInfo.push(info);
    },
  };
  const rtt = new RttEstimator();
  const cc = new NewReno(rtt);
  const r = new LossRecovery<string>({ isServer, cc, rtt, handler, peerMaxAckDelay: 25 });
  if (confirmed) r.setHandshakeConfirmed(0);
  return { r, rtt, cc, acked, lost, lostInfo };
}

/** ACK of a single interval list given as [hi, lo] pairs. */
function ack(r: LossRecovery<string>, space: PnSpace, iv: number[], now: number, delay = 0) {
  return r.onAckReceived(space, iv, iv.length / 2, delay, now);
}

test('RTT estimator: first sample and §5.3 updates', () => {
  const e = new RttEstimator();
  assert.is(e.smoothedRtt, 333);
  assert.is(e.rttvar, 166.5);
  e.update(100, 0, false, 25);
  assert.is(e.smoothedRtt, 100);
  assert.is(e.rttvar, 50);
  assert.is(e.minRtt, 100);
  // second: latest 120, ack_delay 10 → adjusted 110 (120 ≥ 100 + 10)
  e.update(120, 10, false, 25);
  assert.is(e.rttvar, 0.75 * 50 + 0.25 * Math.abs(100 - 110));
  assert.is(e.smoothedRtt, 0.875 * 100 + 0.125 * 110);
  // ack delay not subtracted below min_rtt: latest 105, delay 10 → 105 < 110, adjusted stays 105
  const s = e.smoothedRtt;
  e.update(105, 10, false, 25);
  assert.is(e.smoothedRtt, 0.875 * s + 0.125 * 105);
  // after confirmation, ack delay is capped at max_ack_delay
  const e2 = new RttEstimator();
  e2.update(50, 0, true, 25);
  e2.update(200, 100, true, 25); // delay capped to 25 → adjusted 175
  assert.is(e2.smoothedRtt, 0.875 * 50 + 0.125 * 175);
  const e3 = new RttEstimator();
  e3.update(50, 0, false, 25);
  e3.update(200, 100, false, 25); // not confirmed: full 100 → adjusted 100
  assert.is(e3.smoothedRtt, 0.875 * 50 + 0.125 * 100);
  // min_rtt ignores ack delay
  e3.update(40, 30, false, 25);
  assert.is(e3.minRtt, 40);
});

test('newly acked packets are reported once, with bytes in flight and RTT sample', () => {
  const { r, cc, acked, rtt } = setup();
  for (let pn = 0; pn < 5; pn++) r.onPacketSent(A, pn, 0, 1000, true, true, `p${pn}`);
  assert.is(cc.bytesInFlight, 5000);
  assert.is(ack(r, A, [4, 0], 50), 5);
  assert.equal(acked, [0, 1, 2, 3, 4]);
  assert.is(cc.bytesInFlight, 0);
  assert.is(rtt.latestRtt, 50);
  assert.is(ack(r, A, [4, 0], 60), 0);
  assert.equal(acked.length, 5);
});

test('no RTT sample when the largest acknowledged was not newly acked or not ack-eliciting (§5.1)', () => {
  const { r, rtt } = setup();
  r.onPacketSent(A, 0, 0, 100, true, true);
  r.onPacketSent(A, 1, 0, 100, false, false); // ACK-only
  ack(r, A, [1, 1], 30);
  assert.not.ok(rtt.hasSample); // only a non-ack-eliciting packet acked
  ack(r, A, [1, 0], 40);
  assert.not.ok(rtt.hasSample); // largest (1) not newly acked
});

test('ack delay: ignored for Initial, used for Handshake and 1-RTT (§5.3)', () => {
  const { r, rtt } = setup(false, false);
  r.onPacketSent(I, 0, 0, 1200, true, true);
  r.onAckReceived(I, [0, 0], 1, 0, 100); // first sample 100
  r.onPacketSent(I, 1, 100, 1200, true, true);
  r.onAckReceived(I, [1, 1], 1, 30, 220); // latest 120, delay ignored
  assert.is(rtt.smoothedRtt, 0.875 * 100 + 0.125 * 120);
  const s1 = rtt.smoothedRtt;
  r.onPacketSent(H, 0, 300, 1000, true, true);
  r.onAckReceived(H, [0, 0], 1, 20, 420); // latest 120, minus 20 → 100
  assert.is(rtt.smoothedRtt, 0.875 * s1 + 0.125 * 100);
});

test('ACK of an unsent packet is a PROTOCOL_VIOLATION', () => {
  const { r } = setup();
  r.onPacketSent(A, 0, 0, 100, true, true);
  try {
    ack(r, A, [5, 0], 10);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ProtocolViolation);
    assert.is((e as ProtocolViolation).code, 0xa);
  }
});

test('packet threshold: lost when 3 newer packets are acknowledged (§6.1.1)', () => {
  const { r, lost, lostInfo } = setup();
  for (let pn = 0; pn < 5; pn++) r.onPacketSent(A, pn, 0, 1000, true, true, `p${pn}`);
  ack(r, A, [3, 3], 10); // 0 is 3 behind → lost; 1, 2 not yet
  assert.equal(lost, [0]);
  assert.equal(lostInfo, ['p0']);
  ack(r, A, [4, 4], 11); // 1 is 3 behind 4 → lost
  assert.equal(lost, [0, 1]);
  assert.is(r.outstanding(A), 1); // 2 remains, waiting for the time threshold
  assert.ok(r.nextTimeout() !== null);
});

test('time threshold: lost after 9/8 × max(srtt, latest_rtt) (§6.1.2)', () => {
  const { r, lost, rtt } = setup();
  r.onPacketSent(A, 0, 0, 1000, true, true);
  r.onPacketSent(A, 1, 10, 1000, true, true);
  ack(r, A, [1, 1], 110); // RTT 100 → loss delay 112.5, packet 0 sent at 0 → lost at 112.5
  assert.is(rtt.smoothedRtt, 100);
  assert.equal(lost, []);
  assert.is(r.nextTimeout(), 112.5);
  r.onTimeout(112);
  assert.equal(lost, []);
  r.onTimeout(112.5);
  assert.equal(lost, [0]);
  assert.is(r.nextTimeout(), null); // nothing in flight, address validated
});

test('PTO: computed from last ack-eliciting send, backs off exponentially, probes requested (§6.2)', () => {
  const { r, rtt } = setup();
  rtt.update(100, 0, true, 25); // srtt 100, rttvar 50
  r.onPacketSent(A, 0, 1000, 1000, true, true);
  // pto = 100 + max(4×50, 1) + 25 = 325
  assert.is(r.nextTimeout(), 1325);
  r.onTimeout(1325);
  assert.is(r.ptoCount, 1);
  assert.is(r.probesNeeded(A), 2);
  assert.is(r.nextTimeout(), 1000 + 2 * 325);
  r.onPacketSent(A, 1, 1325, 1000, true, true);
  assert.is(r.probesNeeded(A), 1);
  r.onPacketSent(A, 2, 1325, 1000, true, true);
  assert.is(r.probesNeeded(A), 0);
  assert.is(r.nextTimeout(), 1325 + 2 * 325);
  r.onTimeout(1975);
  assert.is(r.ptoCount, 2);
  assert.is(r.nextTimeout(), 1325 + 4 * 325);
  // an ACK resets the backoff
  ack(r, A, [2, 2], 2000);
  assert.is(r.ptoCount, 0);
});

test('oldest outstanding ack-eliciting packets for probe content', () => {
  const { r } = setup();
  r.onPacketSent(A, 0, 0, 100, true, true, 'a');
  r.onPacketSent(A, 1, 0, 100, false, false, 'ack-only');
  r.onPacketSent(A, 2, 0, 100, true, true, 'b');
  r.onPacketSent(A, 3, 0, 100, true, true, 'c');
  ack(r, A, [0, 0], 10);
  const out: (string | undefined)[] = [];
  assert.is(r.oldestOutstanding(A, 2, out), 2);
  assert.equal(out, ['b', 'c']);
  assert.is(r.oldestOutstanding(I, 2, out), 0);
});

test('probe candidates: the oldest packets no probe has repeated yet, then the oldest again', () => {
  const { r } = setup();
  r.onPacketSent(A, 0, 0, 100, true, true, 'a');
  r.onPacketSent(A, 1, 0, 100, false, false, 'ack-only');
  r.onPacketSent(A, 2, 0, 100, true, true, 'b');
  r.onPacketSent(A, 3, 0, 100, true, true, 'c');
  const out: (string | undefined)[] = [];
  assert.is(r.probeCandidates(A, 1, out), 1);
  assert.is(out[0], 'a');
  assert.is(r.probeCandidates(A, 1, out), 1);
  assert.is(out[0], 'b', 'the second probe carries the next packet, not a again');
  assert.is(r.probeCandidates(A, 2, out), 1);
  assert.is(out[0], 'c');
  // Every outstanding packet repeated once: back to the oldest.
  assert.is(r.probeCandidates(A, 2, out), 2);
  assert.equal(out.slice(0, 2), ['a', 'b']);
  // The probes' own packets are new outstanding packets: taken before the originals again.
  r.onPacketSent(A, 4, 5, 100, true, true, 'a2');
  assert.is(r.probeCandidates(A, 8, out), 1);
  assert.is(out[0], 'a2');
  ack(r, A, [4, 0], 10);
  assert.is(r.probeCandidates(A, 8, out), 0);
});

test('loss timer with epoch-millisecond clocks: firing at nextTimeout() declares the packet lost (no timer due forever)', () => {
  const EPOCH = Date.UTC(2026, 0, 1, 1);
  let stuck = 0;
  for (let k = 0; k < 2000; k++) {
    const { r, lost } = setup();
    const t0 = EPOCH + 1000 + k * 0.3713;
    r.onPacketSent(A, 0, t0, 1200, true, true);
    r.onPacketSent(A, 1, t0 + 1.3, 1200, true, true);
    ack(r, A, [1, 1], t0 + 1.3 + 26.1865234375); // packet 0 not lost yet: a loss timer is armed
    const t = r.nextTimeout()!;
    r.onTimeout(t);
    if (lost.length === 0) stuck++;
  }
  assert.is(stuck, 0, `${stuck} of 2000 loss timers fired without declaring the packet lost`);
});

test('PTO per space: Initial/Handshake without max_ack_delay; Application skipped until confirmed', () => {
  const { r, rtt } = setup(false, false);
  rtt.update(100, 0, false, 25);
  r.onPacketSent(I, 0, 0, 1200, true, true);
  r.onPacketSent(A, 0, 5, 1200, true, true);
  assert.is(r.nextTimeout(), 300); // Initial: 100 + 200, no max_ack_delay; Application ignored
  r.onTimeout(300);
  assert.is(r.probesNeeded(I), 2);
  assert.is(r.probesNeeded(A), 0);
  r.discardSpace(I, 301);
  assert.is(r.probesNeeded(I), 0);
  assert.is(r.ptoCount, 0);
  // only Application in flight, not confirmed: client still arms (anti-deadlock not applicable since
  // ack-eliciting is in flight) — no PTO for Application before confirmation
  assert.is(r.nextTimeout(), null);
  r.setHandshakeConfirmed(302);
  assert.is(r.nextTimeout(), 5 + 325);
});

test('discarding a space removes its bytes from flight without loss (§6.4)', () => {
  const { r, cc, lost } = setup(false, false);
  r.onPacketSent(I, 0, 0, 1200, true, true);
  r.onPacketSent(I, 1, 0, 1200, true, true);
  r.onPacketSent(H, 0, 0, 1000, true, true);
  assert.is(cc.bytesInFlight, 3400);
  r.discardSpace(I, 10);
  assert.is(cc.bytesInFlight, 1000);
  assert.equal(lost, []);
  assert.is(cc.window, 12000); // no congestion response
  r.onPacketSent(I, 2, 20, 1200, true, true); // ignored after discard
  assert.is(cc.bytesInFlight, 1000);
});

test('0-RTT rejected: 0-RTT packets leave flight without congestion response and are handed back', () => {
  const { r, cc, lost, lostInfo } = setup(false, false);
  r.onPacketSent(A, 0, 0, 1000, true, true, 'z0', true);
  r.onPacketSent(A, 1, 0, 1000, true, true, 'z1', true);
  r.onPacketSent(A, 2, 5, 500, true, true, 'one-rtt');
  r.onZeroRttRejected(10);
  assert.equal(lost, [0, 1]);
  assert.equal(lostInfo, ['z0', 'z1']);
  assert.is(cc.bytesInFlight, 500);
  assert.is(cc.window, 12000);
  assert.is(r.outstanding(A), 1);
});

test('client anti-deadlock PTO: armed with nothing in flight until the server validated us (§6.2.2.1)', () => {
  const { r } = setup(false, false);
  r.onPacketSent(I, 0, 0, 1200, true, true);
  ack(r, I, [0, 0], 100);
  // nothing in flight, but no Handshake ACK yet and not confirmed: PTO stays armed
  assert.ok(r.nextTimeout() !== null);
  r.onTimeout(r.nextTimeout()!);
  assert.is(r.probesNeeded(I), 1);
  r.setHasHandshakeKeys(500);
  r.onTimeout(r.nextTimeout()!);
  assert.is(r.probesNeeded(H), 1);
  // a Handshake ACK validates the address: timer off once nothing is in flight
  r.onPacketSent(H, 0, 2000, 500, true, true);
  ack(r, H, [0, 0], 2100);
  assert.is(r.nextTimeout(), null);
});

test('server blocked by the amplification limit does not arm the PTO (§6.2.2.1)', () => {
  const { r } = setup(true, false);
  r.onPacketSent(I, 0, 0, 1200, true, true);
  assert.ok(r.nextTimeout() !== null);
  r.setAmplificationBlocked(true, 1);
  assert.is(r.nextTimeout(), null);
  r.setAmplificationBlocked(false, 2);
  assert.ok(r.nextTimeout() !== null);
  // a server with nothing in flight arms nothing
  ack(r, I, [0, 0], 50);
  assert.is(r.nextTimeout(), null);
});

test('persistent congestion: lost ack-eliciting packets spanning > 3 × PTO collapse the window (§7.6)', () => {
  const { r, cc, rtt } = setup();
  r.onPacketSent(A, 0, 0, 1000, true, true);
  ack(r, A, [0, 0], 100); // first RTT sample at t=100: srtt 100, rttvar 50
  // duration = (100 + 200 + 25) × 3 = 975
  for (let pn = 1; pn <= 10; pn++) r.onPacketSent(A, pn, 100 + (pn - 1) * 120, 1000, true, true); // 100 .. 1180
  r.onPacketSent(A, 11, 1300, 1000, true, true);
  ack(r, A, [11, 11], 1400);
  // window to the minimum, then packet 11 (sent after that) is acked in slow start (B.5 order: losses first)
  assert.is(cc.window, cc.minimumWindow + 1000);
  assert.ok(rtt.minRtt <= 100);
});

test('no persistent congestion when an acknowledged packet splits the lost run', () => {
  const { r, cc } = setup();
  r.onPacketSent(A, 0, 0, 1000, true, true);
  ack(r, A, [0, 0], 100);
  for (let pn = 1; pn <= 10; pn++) r.onPacketSent(A, pn, 100 + (pn - 1) * 120, 1000, true, true);
  r.onPacketSent(A, 11, 1300, 1000, true, true);
  ack(r, A, [11, 11, 5, 5], 1400); // 5 acked: runs 1-4 (360 ms) and 6-10 (480 ms)
  assert.ok(cc.window > cc.minimumWindow);
  assert.is(cc.window, 6500); // one halving from 13000 (12000 + 1000 for packet 0)
});

test('no persistent congestion for packets sent before the first RTT sample', () => {
  const { r, cc } = setup();
  for (let pn = 0; pn < 10; pn++) r.onPacketSent(A, pn, pn * 200, 1000, true, true);
  r.onPacketSent(A, 10, 2000, 1000, true, true);
  ack(r, A, [10, 10], 2100);
  assert.is(cc.window, 6000);
});

test('lost packets cause one window reduction per recovery period', () => {
  const { r, cc } = setup();
  for (let pn = 0; pn < 10; pn++) r.onPacketSent(A, pn, 0, 1000, true, true);
  ack(r, A, [4, 4], 50); // 0, 1 lost
  assert.is(cc.window, 6000);
  ack(r, A, [9, 9], 60); // 2..6 lost, sent before recovery start → no further reduction
  assert.is(cc.window, 6000);
  r.onPacketSent(A, 10, 70, 1000, true, true);
  for (let pn = 11; pn < 14; pn++) r.onPacketSent(A, pn, 70, 1000, true, true);
  ack(r, A, [13, 11], 130); // 10 lost, sent after recovery start → reduction
  assert.is(cc.window, 3000);
});

test('ECN-CE count increase is a congestion event', () => {
  const { r, cc } = setup();
  for (let pn = 0; pn < 3; pn++) r.onPacketSent(A, pn, 0, 1000, true, true);
  r.onAckReceived(A, [2, 0], 1, 0, 50, 0);
  assert.is(cc.window, 12000 + 3000);
  r.onPacketSent(A, 3, 60, 1000, true, true);
  r.onAckReceived(A, [3, 0], 1, 0, 100, 1);
  assert.is(cc.window, Math.floor(15000 / 2));
});

test('many packets: ring grows, acks in random ranges, every packet acked or lost exactly once', () => {
  const { r, acked, lost, cc } = setup();
  let now = 0;
  let pn = 0;
  const seen = new Set<number>();
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 50; round++) {
    for (let k = 0; k < 40; k++) r.onPacketSent(A, pn++, now, 1000, true, true);
    now += 50;
    const iv: number[] = [];
    let hi = pn - 1;
    while (hi >= 0 && iv.length < 20) {
      const lo = Math.max(0, hi - Math.floor(rnd() * 10));
      iv.push(hi, lo);
      hi = lo - 2 - Math.floor(rnd() * 3);
    }
    r.onAckReceived(A, iv, iv.length / 2, 0, now);
  }
  now += 10000;
  while (r.nextTimeout() !== null && r.outstanding(A) > 0 && now < 1e7) {
    r.onTimeout(r.nextTimeout()!);
    now = r.nextTimeout() ?? now;
    if (r.probesNeeded(A) > 0) {
      r.onPacketSent(A, pn, now, 1000, true, true);
      r.onAckReceived(A, [pn, pn], 1, 0, now + 50);
      pn++;
    }
  }
  for (const p of [...acked, ...lost]) {
    assert.not.ok(seen.has(p), `packet ${p} reported twice`);
    seen.add(p);
  }
  assert.is(seen.size, pn);
  assert.is(cc.bytesInFlight, 0);
});

test.run();
