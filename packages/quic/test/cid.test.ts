import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { LocalCids, RemoteCids, cidEquals } from '../src/cid.js';

const tok = (n: number) => new Uint8Array(16).fill(n);
const cid = (n: number) => new Uint8Array(8).fill(n);
const code = (f: () => void): number => {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolViolation) return e.code;
    throw e;
  }
  return -1;
};

test('remote: accepts new IDs up to the limit, then CONNECTION_ID_LIMIT_ERROR', () => {
  const r = new RemoteCids(cid(0), 3);
  r.onNewCid(1, 0, cid(1), tok(1));
  r.onNewCid(2, 0, cid(2), tok(2));
  assert.is(r.spare, 2);
  assert.is(code(() => r.onNewCid(3, 0, cid(3), tok(3))), 0x09);
});

test('remote: duplicate frame is fine, conflicting reuse is PROTOCOL_VIOLATION', () => {
  const r = new RemoteCids(cid(0), 4);
  r.onNewCid(1, 0, cid(1), tok(1));
  r.onNewCid(1, 0, cid(1), tok(1));
  assert.is(code(() => r.onNewCid(1, 0, cid(9), tok(1))), 0x0a);
  assert.is(code(() => r.onNewCid(2, 0, cid(1), tok(2))), 0x0a);
});

test('remote: retire_prior_to retires older IDs and moves off the current one', () => {
  const r = new RemoteCids(cid(0), 4);
  r.onNewCid(1, 0, cid(1), tok(1));
  r.onNewCid(2, 2, cid(2), tok(2));
  assert.ok(cidEquals(r.cid, cid(2)));
  assert.equal(r.pendingRetire.sort(), [0, 1]);
  // A late frame below retire_prior_to is retired at once (§5.1.2).
  r.onNewCid(1, 0, cid(1), tok(1));
  assert.equal(r.pendingRetire.filter((s) => s === 1).length, 1);
});

test('remote: rotate uses an unused ID and retires the old', () => {
  const r = new RemoteCids(cid(0), 4);
  assert.is(r.rotate(), false);
  r.onNewCid(1, 0, cid(1), tok(1));
  assert.is(r.rotate(), true);
  assert.ok(cidEquals(r.cid, cid(1)));
  assert.equal(r.pendingRetire, [0]);
});

test('remote: stateless reset token detection', () => {
  const r = new RemoteCids(cid(0), 4, tok(7));
  const dgram = new Uint8Array(40).fill(1);
  assert.is(r.isResetToken(dgram), false);
  dgram.set(tok(7), 24);
  assert.is(r.isResetToken(dgram), true);
  // §10.3.1: not the tokens of IDs we have not used, nor of retired ones.
  r.onNewCid(1, 0, cid(1), tok(8));
  const unused = new Uint8Array(40).fill(1);
  unused.set(tok(8), 24);
  assert.is(r.isResetToken(unused), false, 'token of a connection ID never used');
  assert.is(r.rotate(), true);
  assert.is(r.isResetToken(unused), true, 'now in use');
  assert.is(r.isResetToken(dgram), false, 'token of the retired connection ID');
});

test('remote: zero-length CIDs forbid NEW_CONNECTION_ID', () => {
  const r = new RemoteCids(new Uint8Array(0), 4);
  assert.is(code(() => r.onNewCid(1, 0, cid(1), tok(1))), 0x0a);
});

test('local: issues up to the limit, retirement rules', () => {
  let n = 0;
  const routed = new Set<string>();
  const l = new LocalCids(
    () => cid(++n),
    (c) => tok(c[0]!),
    (c, added) => (added ? routed.add(String(c)) : routed.delete(String(c))),
  );
  l.initial(cid(100));
  l.topUp(4, 8);
  assert.is(l.size, 4);
  assert.is(l.pendingNew.length, 3);
  assert.is(routed.size, 4);
  assert.is(code(() => l.onRetire(99, cid(100))), 0x0a);
  assert.is(code(() => l.onRetire(0, cid(100))), 0x0a); // retiring the ID the packet was sent to
  l.onRetire(0, cid(1));
  assert.is(l.size, 3);
  assert.is(routed.size, 3);
  l.onRetire(0, cid(1)); // duplicate: ignored
  l.topUp(4, 8);
  assert.is(l.size, 4);
  l.clear();
  assert.is(routed.size, 0);
});

test.run();
