import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { QpackReader, QpackWriter, TRUNCATED } from '../src/qpack/primitives.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode } from '../src/qpack/huffman.js';
import { QpackError } from '../src/errors.js';
import { STATIC_TABLE, staticExact, staticName } from '../src/qpack/static-table.js';
import { hex, Rng, unhex } from './support.js';

test('prefixed integers: RFC 7541 C.1 examples', () => {
  const w = new QpackWriter();
  w.int(5, 0, 10);
  assert.is(hex(w.take()), '0a');
  w.int(5, 0xe0, 1337);
  assert.is(hex(w.take()), 'ff9a0a');
  w.int(8, 0, 42);
  assert.is(hex(w.take()), '2a');
  const r = new QpackReader(unhex('1f9a0a'), 0, 3, 0x200);
  assert.is(r.int(5), 1337);
  assert.is(r.pos, 3);
});

test('prefixed integers round trip at every prefix size up to 2^53-1', () => {
  const rng = new Rng(11);
  for (let n = 1; n <= 8; n++) {
    for (const v of [0, (1 << n) - 2, (1 << n) - 1, 1 << n, 127 + (1 << n), 2 ** 32, 2 ** 53 - 1, rng.int(1e9)]) {
      const w = new QpackWriter();
      w.int(n, 0, v);
      const b = w.take();
      assert.is(new QpackReader(b, 0, b.length, 0x200).int(n), v, `n=${n} v=${v}`);
      // Every proper prefix is truncated, not wrong.
      for (let k = 0; k < b.length; k++) {
        try {
          new QpackReader(b, 0, k, 0x200).int(n);
          assert.unreachable();
        } catch (e) {
          assert.is(e, TRUNCATED);
        }
      }
    }
  }
});

test('prefixed integer overflow → the context error code', () => {
  // A value above 2^53 - 1, and an endless run of zero continuation bytes.
  for (const bytes of ['1f' + 'ff'.repeat(9) + '7f', '1f' + '80'.repeat(12) + '00']) {
    try {
      const b = unhex(bytes);
      new QpackReader(b, 0, b.length, QpackError.QPACK_ENCODER_STREAM_ERROR).int(5);
      assert.unreachable();
    } catch (e) {
      assert.instance(e, ProtocolViolation);
      assert.is((e as ProtocolViolation).code, QpackError.QPACK_ENCODER_STREAM_ERROR);
    }
  }
});

test('static table: 99 entries, spot checks from RFC 9204 Appendix A', () => {
  assert.is(STATIC_TABLE.length, 99);
  assert.equal(STATIC_TABLE[0], [':authority', '']);
  assert.equal(STATIC_TABLE[17], [':method', 'GET']);
  assert.equal(STATIC_TABLE[52], ['content-type', 'text/html; charset=utf-8']);
  assert.equal(STATIC_TABLE[85], ['content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"]);
  assert.equal(STATIC_TABLE[98], ['x-frame-options', 'sameorigin']);
  assert.is(staticExact(':status', '200'), 25);
  assert.is(staticName(':status'), 24);
  assert.is(staticExact(':status', '999'), -1);
  assert.is(staticName('x-nope'), -1);
});

/** Reference decoder: bit strings in a Map (slow, obviously right). */
function referenceDecode(b: Uint8Array): number[] | 'error' {
  const codes = new Map<string, number>();
  for (let s = 0; s < 257; s++) codes.set(HUFFMAN_CODES[s]!.toString(2).padStart(HUFFMAN_LENGTHS[s]!, '0'), s);
  let bits = '';
  for (const x of b) bits += x.toString(2).padStart(8, '0');
  const out: number[] = [];
  let cur = '';
  for (const c of bits) {
    cur += c;
    const s = codes.get(cur);
    if (s === undefined) continue;
    if (s === 256) return 'error';
    out.push(s);
    cur = '';
  }
  if (cur.length > 7 || /0/.test(cur)) return 'error';
  return out;
}

test('Huffman decoder agrees with a reference decoder on random and near-valid inputs', () => {
  const rng = new Rng(2024);
  for (let i = 0; i < 3000; i++) {
    const b = rng.int(2) ? rng.bytes(rng.int(12)) : Uint8Array.from(Array.from({ length: rng.int(12) }, () => rng.pick([0xff, 0xfe, 0x1f, 0x3f, 0x7f, rng.int(256)])));
    const want = referenceDecode(b);
    let got: number[] | 'error';
    try {
      got = [...huffmanDecode(b)];
    } catch (e) {
      assert.instance(e, ProtocolViolation);
      got = 'error';
    }
    assert.equal(got, want, hex(b));
  }
});

test.run();
