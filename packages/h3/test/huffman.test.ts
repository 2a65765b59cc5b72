import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode, huffmanEncode } from '../src/qpack/huffman.js';
import { QpackError } from '../src/errors.js';
import { hex, unhex, Rng } from './support.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

test('code values printed in RFC 7541 Appendix B', () => {
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [9, 0xffffea, 24], [10, 0x3ffffffc, 30], [32, 0x14, 6],
    [48, 0x0, 5], [58, 0x5c, 7], [92, 0x7fff0, 19], [97, 0x3, 5], [122, 0x7b, 7], [127, 0xffffffc, 28],
    [128, 0xfffe6, 20], [153, 0x1fffdc, 21], [199, 0x1ffffec, 25], [211, 0x7ffffe0, 27],
    [220, 0xffffffd, 28], [249, 0xffffffe, 28], [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of rows) {
    assert.is(HUFFMAN_LENGTHS[sym], len, `length of ${sym}`);
    assert.is(HUFFMAN_CODES[sym], code, `code of ${sym}`);
  }
});

test('the code is complete (Kraft sum = 1) and prefix-free', () => {
  let sum = 0;
  for (const l of HUFFMAN_LENGTHS) sum += 2 ** -l;
  assert.is(sum, 1);
  assert.is(HUFFMAN_LENGTHS.length, 257);
});

test('RFC 7541 C.4 / C.6 known encodings', () => {
  const cases: [string, string][] = [
    ['www.example.com', 'f1e3c2e5f23a6ba0ab90f4ff'],
    ['no-cache', 'a8eb10649cbf'],
    ['custom-key', '25a849e95ba97d7f'],
    ['custom-value', '25a849e95bb8e8b4bf'],
    ['302', '6402'],
    ['private', 'aec3771a4b'],
    ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07abe941054d444a8200595040b8166e082a62d1bff'],
    ['https://www.example.com', '9d29ad171863c78f0b97c8e9ae82ae43d3'],
    ['gzip', '9bd9ab'],
  ];
  for (const [s, h] of cases) {
    assert.is(hex(huffmanEncode(enc.encode(s))), h, s);
    assert.is(dec.decode(huffmanDecode(unhex(h))), s, s);
  }
});

test('round trips of random byte strings', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 2000; i++) {
    const b = rng.bytes(rng.int(40));
    assert.equal(huffmanDecode(huffmanEncode(b)), b);
  }
});

function fails(bytes: Uint8Array): void {
  try {
    huffmanDecode(bytes);
  } catch (e) {
    assert.instance(e, ProtocolViolation);
    assert.is((e as ProtocolViolation).code, QpackError.QPACK_DECOMPRESSION_FAILED);
    return;
  }
  assert.unreachable(`decoded ${hex(bytes)}`);
}

test('decode errors: EOS, long padding, padding with zeros', () => {
  fails(unhex('ffffffff')); // 30 ones = EOS (plus 2 bits)
  fails(unhex('ff')); // 8 bits of padding
  fails(unhex('1e')); // 'a' (00011) then padding 110
  assert.equal(huffmanDecode(unhex('1f')), enc.encode('a')); // 'a' then padding 111
  fails(unhex('1fffffffff')); // 'a' then 35 ones: EOS inside

});

test.run();
