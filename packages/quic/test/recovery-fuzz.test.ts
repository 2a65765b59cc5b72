/**
 * Fuzz-style: random sends, random (possibly bogus) ACK frames, timeouts and key discards into
 * LossRecovery. Only ProtocolViolation may escape; every packet is reported at most once; bytes in
 * flight always equal the in-flight packets still outstanding (shadow model).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { LossRecovery, PnSpace } from '../src/recovery.js';
import { RttEstimator } from '../src/rtt.js';
import { createCongestionController } from '../src/congestion/index.js';

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

test('random operations keep LossRecovery consistent', () => {
  const r = rng(2024);
  let violations = 0;
  for (let iter = 0; iter < 150; iter++) {
    const rtt = new RttEstimator();
    const cc = createCongestionController(r() < 0.5 ? 'newreno' : 'cubic', rtt);
    const outstanding = [new Map<number, { size: number; inFlight: boolean }>(), new Map(), new Map()] as Map<number, { size: number; inFlight: boolean }>[];
    const reported = new Set<string>();
    const discarded = [false, false, false];
    const report = (space: number, pn: number) => {
      const key = `${space}:${pn}`;
      assert.not.ok(reported.has(key), `packet ${key} reported twice`);
      reported.add(key);
      assert.ok(outstanding[space]!.delete(pn), `unknown packet ${key} reported`);
    };
    const rec = new LossRecovery<number>({
      isServer: r() < 0.5,
      cc,
      rtt,
      handler: { onAcked: (s, pn) => report(s, pn), onLost: (s, pn) => report(s, pn) },
    });
    const nextPn = [0, 0, 0];
    let now = 0;
    for (let op = 0; op < 300; op++) {
      const space = Math.floor(r() * 3) as PnSpace;
      const x = r();
      try {
        if (x < 0.45) {
          const pn = nextPn[space]! + (r() < 0.1 ? 1 : 0); // occasional skipped packet number
          nextPn[space] = pn + 1;
          const size = 50 + Math.floor(r() * 1200);
          const ackEliciting = r() < 0.8;
          const inFlight = ackEliciting || r() < 0.3;
          rec.onPacketSent(space, pn, now, size, ackEliciting, inFlight, pn, space === PnSpace.application && r() < 0.1);
          if (!discarded[space]) outstanding[space]!.set(pn, { size, inFlight });
        } else if (x < 0.8) {
          const iv: number[] = [];
          let hi = Math.floor(r() * (nextPn[space]! + 3));
          const n = 1 + Math.floor(r() * 4);
          for (let k = 0; k < n && hi >= 0; k++) {
            const lo = Math.max(0, hi - Math.floor(r() * 5));
            iv.push(hi, lo);
            hi = lo - 2 - Math.floor(r() * 4);
          }
          if (iv.length) rec.onAckReceived(space, iv, iv.length / 2, Math.floor(r() * 50), now, r() < 0.1 ? Math.floor(r() * 3) : -1);
        } else if (x < 0.9) {
          const t = rec.nextTimeout();
          if (t !== null) {
            now = Math.max(now, t);
            rec.onTimeout(now);
          }
        } else if (x < 0.93 && space !== PnSpace.application) {
          rec.discardSpace(space, now);
          discarded[space] = true;
          outstanding[space]!.clear();
        } else if (x < 0.95) rec.setHandshakeConfirmed(now);
        else if (x < 0.97) rec.setAmplificationBlocked(r() < 0.5, now);
        else if (x < 0.98) {
          rec.onZeroRttRejected(now);
        }
      } catch (e) {
        if (!(e instanceof ProtocolViolation)) throw e;
        assert.is(e.code, 0xa);
        violations++;
      }
      now += r() * 30;
      let inFlight = 0;
      for (const m of outstanding) for (const p of m.values()) if (p.inFlight) inFlight += p.size;
      assert.is(cc.bytesInFlight, inFlight, `iteration ${iter} op ${op}`);
      assert.ok(cc.window >= 2400);
      const t = rec.nextTimeout();
      assert.ok(t === null || Number.isFinite(t));
    }
  }
  assert.ok(violations > 0);
});

test.run();
