import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError } from '@petrel/tls-core';
import { RttEstimator } from '../src/rtt.js';
import { NewReno } from '../src/congestion/new-reno.js';
import { Cubic, CUBIC_BETA, CUBIC_C } from '../src/congestion/cubic.js';
import { createCongestionController } from '../src/congestion/index.js';
import { Pacer } from '../src/pacer.js';

const MDS = 1200;

function rttOf(ms: number): RttEstimator {
  const r = new RttEstimator();
  r.update(ms, 0, true, 25);
  return r;
}

test('initial window and minimum window (RFC 9002 §7.2)', () => {
  const cc = new NewReno(new RttEstimator());
  assert.is(cc.window, 12000);
  assert.is(cc.minimumWindow, 2400);
  const big = new NewReno(new RttEstimator(), { maxDatagramSize: 1500 });
  assert.is(big.window, 14720);
  assert.ok(cc.inSlowStart);
  assert.is(cc.ssthresh, Infinity);
});

test('NewReno slow start: window grows by the bytes acknowledged', () => {
  const cc = new NewReno(rttOf(100));
  for (let i = 0; i < 10; i++) cc.onPacketSent(0, MDS);
  assert.is(cc.bytesInFlight, 12000);
  assert.not.ok(cc.canSend(1));
  for (let i = 0; i < 10; i++) cc.onPacketAcked(100, 0, MDS);
  assert.is(cc.window, 24000);
  assert.is(cc.bytesInFlight, 0);
  assert.ok(cc.canSend(24000));
  assert.not.ok(cc.canSend(24001));
});

test('NewReno congestion event halves once per recovery period; no growth in recovery', () => {
  const cc = new NewReno(rttOf(100));
  cc.onPacketSent(0, MDS);
  cc.onCongestionEvent(100, 0);
  assert.is(cc.window, 6000);
  assert.is(cc.ssthresh, 6000);
  assert.not.ok(cc.inSlowStart);
  cc.onCongestionEvent(110, 50); // sent before recovery started: ignored
  assert.is(cc.window, 6000);
  cc.onPacketAcked(120, 90, MDS); // sent before recovery start: no growth
  assert.is(cc.window, 6000);
  cc.onCongestionEvent(200, 150); // sent after: new reduction
  assert.is(cc.window, 3000);
  cc.onCongestionEvent(300, 250);
  assert.is(cc.window, 2400); // floor at minimum window
});

test('NewReno congestion avoidance: one datagram per window acknowledged', () => {
  const cc = new NewReno(rttOf(100));
  cc.onCongestionEvent(10, 0); // cwnd 6000, ssthresh 6000
  let now = 100;
  for (let rtt = 0; rtt < 5; rtt++) {
    const w = cc.window;
    const n = w / MDS;
    for (let i = 0; i < n; i++) cc.onPacketSent(now, MDS);
    now += 100;
    for (let i = 0; i < n; i++) cc.onPacketAcked(now, now - 100, MDS);
    assert.is(cc.window, w + MDS);
  }
});

test('app-limited: no window growth (RFC 9002 §7.8)', () => {
  const cc = new NewReno(rttOf(100));
  cc.appLimited = true;
  cc.onPacketSent(0, MDS);
  cc.onPacketAcked(100, 0, MDS);
  assert.is(cc.window, 12000);
  assert.is(cc.bytesInFlight, 0);
});

test('persistent congestion: window to minimum, slow start again', () => {
  const cc = new NewReno(rttOf(100));
  cc.onCongestionEvent(10, 0);
  cc.onPersistentCongestion(20);
  assert.is(cc.window, 2400);
  assert.ok(cc.inSlowStart);
  cc.onPacketAcked(30, 25, MDS);
  assert.is(cc.window, 3600);
});

test('CUBIC: reduction by beta 0.7 and fast convergence', () => {
  const cc = new Cubic(rttOf(100));
  cc.cwnd = 100 * MDS;
  cc.onCongestionEvent(10, 0);
  assert.is(cc.window, Math.floor(70 * MDS));
  assert.is(cc.wMax, 100 * MDS);
  // a second loss below W_max: W_max = cwnd × (1 + β) / 2
  cc.onCongestionEvent(1000, 500);
  assert.is(cc.wMax, (70 * MDS * (1 + CUBIC_BETA)) / 2);
  assert.is(cc.window, Math.floor(70 * MDS * CUBIC_BETA));
});

test('CUBIC window growth after a loss follows W_cubic(t) = C(t−K)³ + W_max', () => {
  const rttMs = 100;
  const cc = new Cubic(rttOf(rttMs));
  const wMaxSeg = 1000;
  cc.cwnd = wMaxSeg * MDS;
  cc.ssthresh = 1; // force congestion avoidance
  cc.onCongestionEvent(0, -1);
  const K = Math.cbrt((wMaxSeg * (1 - CUBIC_BETA)) / CUBIC_C);
  let now = 1;
  const epoch = 1;
  let checked = 0;
  for (let round = 0; round < 200; round++) {
    // one window of acks per RTT, spread evenly
    const n = Math.floor(cc.window / MDS);
    for (let i = 0; i < n; i++) {
      cc.onPacketSent(now, MDS);
      cc.onPacketAcked(now + (i * rttMs) / n, now, MDS);
    }
    now += rttMs;
    const t = (now - epoch) / 1000;
    const expected = (CUBIC_C * (t - K) ** 3 + wMaxSeg) * MDS;
    const seg = cc.window / MDS;
    // cwnd tracks W_cubic (it aims at W_cubic(t + RTT), so it can lead by up to one RTT of growth)
    const lead = (CUBIC_C * (t + rttMs / 1000 - K) ** 3 + wMaxSeg) * MDS;
    if (t > 0.5) {
      assert.ok(cc.window >= expected * 0.97 - MDS, `t=${t.toFixed(1)} cwnd ${seg.toFixed(1)} < W_cubic ${(expected / MDS).toFixed(1)}`);
      assert.ok(cc.window <= Math.max(lead, expected) * 1.03 + MDS, `t=${t.toFixed(1)} cwnd ${seg.toFixed(1)} > W_cubic(t+RTT) ${(lead / MDS).toFixed(1)}`);
      checked++;
    }
  }
  assert.ok(checked > 100);
  // concave then convex: at t ≈ K the window is near W_max
  assert.ok(Math.abs(K - 9.09) < 0.01);
});

test('CUBIC Reno-friendly region: small windows grow like Reno (W_est)', () => {
  const rttMs = 10;
  const cc = new Cubic(rttOf(rttMs));
  cc.cwnd = 10 * MDS;
  cc.onCongestionEvent(0, -1); // cwnd 7 seg, W_max 10 seg, K = cbrt(3/0.4) ≈ 1.96 s
  let now = 1;
  for (let round = 0; round < 100; round++) {
    const n = Math.floor(cc.window / MDS);
    for (let i = 0; i < n; i++) {
      cc.onPacketSent(now, MDS);
      cc.onPacketAcked(now, now, MDS);
    }
    now += rttMs;
  }
  // In 1 s (100 RTTs) W_cubic barely leaves the plateau (≈10 seg) while W_est grew by ≥ α per RTT:
  // α = 3(1−β)/(1+β) ≈ 0.53 until W_est reaches cwnd_prior (10), then 1 → well above 60 segments.
  assert.ok(cc.window / MDS > 60, `cwnd ${cc.window / MDS}`);
  assert.ok(cc.window / MDS < 110);
});

test('CUBIC: an application-limited period neither grows the window nor makes it jump afterwards', () => {
  const run = (gap: boolean) => {
    const cc = new Cubic(rttOf(100));
    cc.cwnd = 100 * MDS;
    cc.onCongestionEvent(0, -1);
    let now = 1;
    const round = () => {
      const n = Math.floor(cc.window / MDS);
      for (let i = 0; i < n; i++) {
        cc.onPacketSent(now, MDS);
        cc.onPacketAcked(now + (i * 100) / n, now, MDS);
      }
      now += 100;
    };
    for (let i = 0; i < 10; i++) round();
    const before = cc.window;
    if (gap) {
      cc.appLimited = true;
      for (let i = 0; i < 50; i++) round(); // 5 s sending less than the window
      assert.is(cc.window, before);
      cc.appLimited = false;
    }
    for (let i = 0; i < 5; i++) round();
    return cc.window;
  };
  const w = run(false), wGap = run(true);
  assert.ok(Math.abs(w - wGap) / w < 0.02, `${w} vs ${wGap}`);
});

test('HyStart++ (RFC 9406): RTT increase enters Conservative Slow Start, then leaves slow start', () => {
  const rtt = rttOf(100);
  const cc = new NewReno(rtt);
  let now = 0;
  const round = (rttMs: number) => {
    const n = Math.floor(cc.window / MDS);
    const t0 = now;
    for (let i = 0; i < n; i++) cc.onPacketSent(t0, MDS);
    now = t0 + rttMs;
    for (let i = 0; i < n; i++) {
      const at = now + i * 0.01;
      rtt.update(rttMs, 0, true, 25);
      cc.onRttSample(at, rttMs, t0);
      cc.onPacketAcked(at, t0, MDS);
    }
    now += n * 0.01;
  };
  round(100);
  round(100);
  assert.is(cc.window, 48000); // plain doubling
  assert.is(cc.cssBaselineMinRtt, Infinity);
  round(120); // ≥ 100 + clamp(100/8, 4, 16) = 112.5: CSS from the 8th sample of this round
  assert.is(cc.cssBaselineMinRtt, 120);
  const w = cc.window;
  assert.ok(w < 96000 && w > 48000 + 8 * MDS, `cwnd ${w}`);
  round(120);
  assert.is(cc.window, Math.floor(w + (Math.floor(w / MDS) * MDS) / 4)); // CSS: a quarter of the acked bytes
  assert.ok(cc.inSlowStart);
  for (let i = 0; i < 5 && cc.inSlowStart; i++) round(120);
  assert.not.ok(cc.inSlowStart); // left slow start after CSS_ROUNDS without loss
  assert.is(cc.ssthresh, cc.window);
  // without HyStart the same RTT increase keeps doubling
  const plain = new NewReno(rttOf(100), { hystart: false });
  plain.onRttSample(0, 200, 0);
  assert.is(plain.cssBaselineMinRtt, Infinity);
});

test('HyStart++: RTT back below the baseline returns to slow start', () => {
  const rtt = rttOf(100);
  const cc = new Cubic(rtt);
  let now = 0;
  const round = (rttMs: number) => {
    const n = Math.floor(cc.window / MDS);
    const t0 = now;
    for (let i = 0; i < n; i++) cc.onPacketSent(t0, MDS);
    now = t0 + rttMs;
    for (let i = 0; i < n; i++) {
      cc.onRttSample(now, rttMs, t0);
      cc.onPacketAcked(now, t0, MDS);
    }
  };
  round(100);
  round(120);
  assert.is(cc.cssBaselineMinRtt, 120);
  round(100);
  assert.is(cc.cssBaselineMinRtt, Infinity);
  const w = cc.window;
  round(100);
  assert.is(cc.window, 2 * w);
});

test('controllers selectable by name', () => {
  assert.is(createCongestionController('newreno', new RttEstimator()).name, 'newreno');
  assert.is(createCongestionController('cubic', new RttEstimator()).name, 'cubic');
  assert.throws(() => createCongestionController('bbr' as 'cubic', new RttEstimator()), (e: unknown) => e instanceof ConfigError);
});

test('pacer: rate = 1.25 × cwnd / srtt, burst of 10 datagrams', () => {
  const rtt = rttOf(100);
  const cc = new NewReno(rtt);
  cc.cwnd = 120000;
  const p = new Pacer(cc, rtt);
  assert.is(p.rate(), (1.25 * 120000) / 100); // 1500 bytes/ms
  // burst: 10 packets immediately
  let now = 0;
  for (let i = 0; i < 10; i++) {
    assert.is(p.timeUntilSend(now, MDS), 0);
    p.onPacketSent(now, MDS);
  }
  const d = p.timeUntilSend(now, MDS);
  assert.ok(Math.abs(d - MDS / 1500) < 1e-9, `delay ${d}`);
  // steady state: sending whenever allowed gives the configured rate
  let sent = 0;
  now = 1000;
  p.timeUntilSend(now, MDS);
  const start = now;
  let guard = 0;
  while (now < start + 100 && guard++ < 100000) {
    const w = p.timeUntilSend(now, MDS);
    if (w === 0) {
      p.onPacketSent(now, MDS);
      sent += MDS;
    } else now += w;
  }
  const rate = sent / (now - start);
  assert.ok(rate > 1500 * 0.95 && rate < 1500 * 1.15, `rate ${rate}`);
});

test('pacer: burst never exceeds the window; slow rate before an RTT sample', () => {
  const rtt = new RttEstimator(); // srtt 333
  const cc = new NewReno(rtt, { initialWindow: 3 * MDS });
  const p = new Pacer(cc, rtt);
  assert.is(p.capacity(), 3 * MDS);
  for (let i = 0; i < 3; i++) p.onPacketSent(0, MDS);
  const d = p.timeUntilSend(0, MDS);
  assert.ok(Math.abs(d - MDS / ((1.25 * 3 * MDS) / 333)) < 1e-9);
});

test.run();
