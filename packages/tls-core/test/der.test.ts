import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DerReader, DerError, derEncode, oidToString, pemDecode, pemEncode } from '../src/util/der.js';

test('reads nested DER and rejects overruns', () => {
  const inner = derEncode(0x02, new Uint8Array([1, 2, 3]));
  const seq = derEncode(0x30, inner);
  const r = new DerReader(seq).enter(0x30);
  assert.equal([...r.read(0x02).value], [1, 2, 3]);
  r.end();
  assert.throws(() => new DerReader(new Uint8Array([0x30, 0x05, 0x02])).read(), (e: unknown) => e instanceof DerError);
  assert.throws(() => new DerReader(new Uint8Array([0x30, 0x81, 0x05, 0, 0, 0, 0, 0])).read(), /non-minimal/);
});

test('long lengths round-trip', () => {
  const big = new Uint8Array(70000).fill(7);
  const enc = derEncode(0x04, big);
  assert.is(new DerReader(enc).read(0x04).value.length, 70000);
});

test('OIDs', () => {
  assert.is(oidToString(new Uint8Array([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])), '1.2.840.10045.2.1');
  assert.throws(() => oidToString(new Uint8Array([0x2a, 0x86])), (e: unknown) => e instanceof DerError);
});

test('PEM round-trip', () => {
  const der = new Uint8Array(100).map((_, i) => i);
  const [b] = pemDecode(pemEncode('CERTIFICATE', der));
  assert.is(b!.label, 'CERTIFICATE');
  assert.equal([...b!.der], [...der]);
});

test.run();
