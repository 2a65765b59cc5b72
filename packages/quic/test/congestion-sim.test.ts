/**
 * A small deterministic simulation: a sender using LossRecovery + NewReno/CUBIC + the pacer over a
 * simulated bottleneck link (drop-tail queue, random loss, seeded), a receiver using
 * ReceivedPackets for ACK generation. Asserts every packet is delivered and the window stays sane.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LossRecovery, PnSpace } from '../src/recovery.js';
import { RttEstimator } from '../src/rtt.js';
import { createCongestionController, type CongestionAlgorithm } from '../src/congestion/index.js';
import { Pacer } from '../src/pacer.js';
import { ReceivedPackets, newAckFrameData, ackToIntervals } from '../src/ack.js';

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

type Ev =
  | { t: number; kind: 'arrive'; pn: number; unit: number }
  | { t: number; kind: 'ack'; iv: number[]; n: number; delay: number }
  | { t: number; kind: 'ackTimer' }
  | { t: number; kind: 'wake' };

class Queue {
  evs: Ev[] = [];
  push(e: Ev) {
    // binary insertion, stable for equal times
    let a = 0, b = this.evs.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (this.evs[m]!.t <= e.t) a = m + 1;
      else b = m;
    }
    this.evs.splice(a, 0, e);
  }
  pop(): Ev | undefined {
    return this.evs.shift();
  }
}

interface Result {
  done: boolean;
  time: number;
  sent: number;
  lostCount: number;
  maxCwnd: number;
  finalCwnd: number;
  minWindow: number;
}

function simulate(alg: CongestionAlgorithm, seed: number, lossRate: number, units: number): Result {
  const MDS = 1200;
  const oneWay = 20; // ms
  const bandwidth = 1250; // bytes per ms (10 Mbit/s)
  const queueLimit = 60000; // bytes buffered at the bottleneck
  const r = rng(seed);
  const q = new Queue();
  const rtt = new RttEstimator();
  const cc = createCongestionController(alg, rtt);
  const pacer = new Pacer(cc, rtt);
  const acked = new Uint8Array(units);
  let ackedCount = 0;
  const retransmit: number[] = [];
  let nextUnit = 0;
  let lostCount = 0;
  const rec = new LossRecovery<number>({
    isServer: false,
    cc,
    rtt,
    handler: {
      onAcked: (_s, _pn, unit) => {
        if (unit !== undefined && !acked[unit]) {
          acked[unit] = 1;
          ackedCount++;
        }
      },
      onLost: (_s, _pn, unit) => {
        lostCount++;
        if (unit !== undefined && !acked[unit]) retransmit.push(unit);
      },
    },
  });
  rec.setHandshakeConfirmed(0);
  const rp = new ReceivedPackets({ maxAckDelay: 25 });
  const frame = newAckFrameData();
  let linkFreeAt = 0;
  let pn = 0;
  let sent = 0;
  let maxCwnd = 0;
  let wakeAt = -1;
  let ackTimerAt = -1;
  let now = 0;

  const sendAck = (t: number) => {
    rp.fillAck(t, frame);
    const iv: number[] = [];
    const n = ackToIntervals(frame.largest, frame.firstRange, frame.ranges, frame.rangeCount, iv);
    rp.onAckSent();
    q.push({ t: t + oneWay, kind: 'ack', iv, n, delay: frame.ackDelay });
  };

  const trySend = () => {
    for (let guard = 0; guard < 1000; guard++) {
      const probe = rec.probesNeeded(PnSpace.application) > 0;
      let unit = -1;
      while (retransmit.length && acked[retransmit[0]!]) retransmit.shift();
      if (retransmit.length) unit = retransmit[0]!;
      else if (nextUnit < units) unit = nextUnit;
      else if (probe) {
        // probe with the oldest unacknowledged unit
        for (let u = 0; u < units; u++) if (!acked[u]) { unit = u; break; }
      }
      if (unit < 0) return;
      if (!probe) {
        if (!cc.canSend(MDS)) return;
        const w = pacer.timeUntilSend(now, MDS);
        if (w > 0) {
          if (wakeAt < now) {
            wakeAt = now + w;
            q.push({ t: wakeAt, kind: 'wake' });
          }
          return;
        }
      }
      if (retransmit.length && unit === retransmit[0]) retransmit.shift();
      else if (unit === nextUnit) nextUnit++;
      rec.onPacketSent(PnSpace.application, pn, now, MDS, true, true, unit);
      pacer.onPacketSent(now, MDS);
      sent++;
      maxCwnd = Math.max(maxCwnd, cc.window);
      // the link: drop-tail queue, then random loss
      const start = Math.max(now, linkFreeAt);
      if ((start - now) * bandwidth <= queueLimit && r() >= lossRate) {
        linkFreeAt = start + MDS / bandwidth;
        q.push({ t: linkFreeAt + oneWay, kind: 'arrive', pn, unit });
      }
      pn++;
    }
  };

  let steps = 0;
  trySend();
  while (ackedCount < units && steps++ < 2_000_000) {
    const timer = rec.nextTimeout();
    const ev = q.evs[0];
    if (timer !== null && (!ev || timer <= ev.t)) {
      now = Math.max(now, timer);
      rec.onTimeout(now);
      trySend();
      continue;
    }
    if (!ev) break;
    q.pop();
    now = Math.max(now, ev.t);
    if (now > 600_000) break;
    switch (ev.kind) {
      case 'arrive':
        rp.onPacketReceived(ev.pn, now, true);
        if (rp.wantAckNow(now)) sendAck(now);
        else {
          const at = rp.ackTimeout();
          if (at !== null && at !== ackTimerAt) {
            ackTimerAt = at;
            q.push({ t: at, kind: 'ackTimer' });
          }
        }
        break;
      case 'ackTimer':
        if (rp.wantAckNow(now)) sendAck(now);
        break;
      case 'ack':
        rec.onAckReceived(PnSpace.application, ev.iv, ev.n, ev.delay, now);
        trySend();
        break;
      case 'wake':
        trySend();
        break;
    }
  }
  return { done: ackedCount === units, time: now, sent, lostCount, maxCwnd, finalCwnd: cc.window, minWindow: 2 * MDS };
}

for (const alg of ['newreno', 'cubic'] as const) {
  for (const [seed, loss] of [[1, 0], [2, 0.01], [3, 0.05]] as const) {
    test(`${alg}: ${2000} packets over a 10 Mbit/s, 40 ms link with ${loss * 100}% loss (seed ${seed})`, () => {
      const res = simulate(alg, seed, loss, 2000);
      assert.ok(res.done, `not complete: ${JSON.stringify(res)}`);
      assert.ok(res.finalCwnd >= res.minWindow);
      // the window never runs away: bounded by BDP (50 kB) + queue (60 kB) + some slow-start overshoot
      assert.ok(res.maxCwnd < 400_000, `max cwnd ${res.maxCwnd}`);
      // retransmissions are proportionate: not more than 3× the data
      assert.ok(res.sent < 2000 * 3, `sent ${res.sent}`);
      // 2.4 MB at 10 Mbit/s is ≈ 1.9 s; with loss allow much more but not absurdly more
      const limit = loss === 0 ? 4000 : loss < 0.05 ? 20000 : 60000;
      assert.ok(res.time < limit, `took ${res.time} ms`);
      if (process.env.SIM_VERBOSE) console.log(alg, loss, JSON.stringify(res));
    });
  }
}

test('same seed, same result (deterministic)', () => {
  assert.equal(simulate('cubic', 9, 0.02, 500), simulate('cubic', 9, 0.02, 500));
});

test.run();
