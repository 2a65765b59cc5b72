import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { SendCredit, RecvWindow } from '../src/flow.js';

test('send credit: available, consume, limits only increase (§4.1)', () => {
  const c = new SendCredit(1000);
  assert.is(c.available(), 1000);
  c.consume(600);
  assert.is(c.available(), 400);
  assert.not.ok(c.update(900));
  assert.is(c.limit, 1000);
  assert.ok(c.update(2000));
  assert.is(c.available(), 1400);
  assert.throws(() => c.consume(1401), RangeError);
});

test('send credit: DATA_BLOCKED wanted once per limit, again after a loss', () => {
  const c = new SendCredit(100);
  c.setBlocked(); // not blocked: credit left
  assert.is(c.blockedFrameWanted(), -1);
  c.consume(100);
  c.setBlocked();
  assert.is(c.blockedFrameWanted(), 100);
  c.onBlockedSent();
  c.setBlocked();
  assert.is(c.blockedFrameWanted(), -1);
  c.onBlockedLost(100);
  assert.is(c.blockedFrameWanted(), 100);
  c.onBlockedSent();
  c.update(200);
  assert.is(c.blockedFrameWanted(), -1);
  c.consume(100);
  c.setBlocked();
  assert.is(c.blockedFrameWanted(), 200);
});

test('receive window: FLOW_CONTROL_ERROR beyond the advertised limit', () => {
  const w = new RecvWindow({ window: 1000 });
  w.onReceived(1000);
  try {
    w.onReceived(1001);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, ProtocolViolation);
    assert.is((e as ProtocolViolation).code, 0x3);
    assert.is((e as ProtocolViolation).layer, 'quic');
  }
  assert.is(w.received, 1000);
});

test('receive window: MAX_DATA when half the window is consumed', () => {
  const w = new RecvWindow({ window: 1000 });
  w.onReceived(600);
  w.onConsumed(400, 0, 100);
  assert.is(w.pollUpdate(0), -1); // 600 remaining ≥ 500
  w.onConsumed(200, 0, 100);
  assert.ok(w.wantsUpdate);
  assert.is(w.pollUpdate(0), 1600);
  assert.is(w.limit, 1600);
  assert.is(w.pollUpdate(0), -1);
  w.onReceived(1600); // now allowed
  // lost update is re-sent with the current limit
  w.onUpdateLost(1600);
  assert.is(w.pollUpdate(1), 1600);
  w.onUpdateLost(1000); // stale: a newer limit was sent already
  assert.is(w.pollUpdate(1), -1);
});

test('receive window auto-tuning: doubles when consumed within 2 RTT, up to the max', () => {
  const w = new RecvWindow({ window: 1000, maxWindow: 8000 });
  let now = 0;
  const srtt = 50;
  let total = 0;
  const windows: number[] = [];
  for (let i = 0; i < 20; i++) {
    // the application reads as fast as the peer sends: a full window per 10 ms
    total = w.limit;
    w.onReceived(total);
    w.onConsumed(total - w.consumed, now, srtt);
    w.pollUpdate(now);
    windows.push(w.window);
    now += 10;
  }
  assert.is(w.window, 8000);
  assert.ok(windows.includes(2000) && windows.includes(4000));
  // slow consumption does not grow it
  const slow = new RecvWindow({ window: 1000, maxWindow: 8000 });
  now = 0;
  for (let i = 0; i < 20; i++) {
    slow.onReceived(slow.limit);
    slow.onConsumed(slow.limit - slow.consumed, now, srtt);
    slow.pollUpdate(now);
    now += 1000;
  }
  assert.is(slow.window, 1000);
});

test('stopped window sends no more updates', () => {
  const w = new RecvWindow({ window: 100 });
  w.onReceived(100);
  w.stop();
  w.onConsumed(100, 0, 10);
  assert.is(w.pollUpdate(0), -1);
});

test.run();
