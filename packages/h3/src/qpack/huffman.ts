/**
 * The HPACK Huffman code (RFC 7541 Appendix B), used unchanged by QPACK (RFC 9204 §4.1.2).
 *
 * The code is canonical: within one code length, codes are consecutive in symbol order, and each
 * length starts where the previous one ended, shifted left. So the table is fully described by the
 * code length of each of the 257 symbols (256 = EOS); the codes are rebuilt from the lengths and
 * checked in the tests against code values printed in RFC 7541.
 */
import { QpackError, qpackError } from '../errors.js';

// prettier-ignore
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32-47 ' '..'/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48-63 '0'..'?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64-79 '@'..'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80-95 'P'..'_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96-111 '`'..'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112-127 'p'..DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, // EOS
];

const MAX_LEN = 30;

/** Code length per symbol (0..256). */
export const HUFFMAN_LENGTHS: readonly number[] = LENGTHS;
/** Code value per symbol, right-aligned (as the "code as hex" column of RFC 7541). */
export const HUFFMAN_CODES: readonly number[] = buildCodes();

// Canonical decoding tables: for each length, the first code and the index of its first symbol in
// SORTED (symbols ordered by (length, symbol)), and how many codes have that length.
const FIRST_CODE = new Array<number>(MAX_LEN + 1).fill(0);
const FIRST_INDEX = new Array<number>(MAX_LEN + 1).fill(0);
const COUNT = new Array<number>(MAX_LEN + 1).fill(0);
const SORTED: number[] = [];
{
  for (let len = 1; len <= MAX_LEN; len++) {
    FIRST_INDEX[len] = SORTED.length;
    for (let s = 0; s < 257; s++) if (LENGTHS[s] === len) SORTED.push(s);
    COUNT[len] = SORTED.length - FIRST_INDEX[len]!;
    const first = SORTED[FIRST_INDEX[len]!];
    FIRST_CODE[len] = COUNT[len]! > 0 ? HUFFMAN_CODES[first!]! : 0;
  }
}

function buildCodes(): number[] {
  const codes = new Array<number>(257).fill(0);
  let code = 0;
  let prevLen = 0;
  for (let len = 1; len <= MAX_LEN; len++) {
    for (let s = 0; s < 257; s++) {
      if (LENGTHS[s] !== len) continue;
      if (prevLen !== 0) code = (code + 1) * 2 ** (len - prevLen);
      prevLen = len;
      codes[s] = code;
    }
  }
  return codes;
}

/** Length in bytes of the Huffman encoding of `bytes`. */
export function huffmanEncodedLength(bytes: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) bits += LENGTHS[bytes[i]!]!;
  return (bits + 7) >>> 3;
}

/** Huffman-encodes `bytes`, padding the last byte with the most significant bits of EOS (ones). */
export function huffmanEncode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(bytes));
  let o = 0;
  let cur = 0; // byte being filled
  let free = 8; // bits still free in cur
  for (let i = 0; i < bytes.length; i++) {
    const s = bytes[i]!;
    const code = HUFFMAN_CODES[s]!; // at most 30 bits: int32 arithmetic is exact
    let len = LENGTHS[s]!;
    while (len >= free) {
      len -= free;
      out[o++] = cur | ((code >>> len) & ((1 << free) - 1));
      cur = 0;
      free = 8;
    }
    if (len > 0) {
      free -= len;
      cur |= (code & ((1 << len) - 1)) << free;
    }
  }
  // Pad with the most significant bits of EOS (all ones).
  if (free < 8) out[o++] = cur | ((1 << free) - 1);
  return out;
}

/**
 * Decodes a Huffman-encoded string. Padding longer than 7 bits, padding that is not a prefix of EOS
 * (all ones), or an EOS symbol inside the string is an error (RFC 7541 §5.2) →
 * QPACK_DECOMPRESSION_FAILED (or `errorCode` when decoding on the encoder stream).
 */
export function huffmanDecode(
  data: Uint8Array,
  start = 0,
  end = data.length,
  errorCode: number = QpackError.QPACK_DECOMPRESSION_FAILED,
): Uint8Array {
  // Shortest code is 5 bits: at most 8/5 symbols per byte.
  const out = new Uint8Array(Math.ceil(((end - start) * 8) / 5));
  let o = 0;
  const total = (end - start) * 8;
  let bit = 0;
  while (bit < total) {
    if (total - bit >= 8) {
      // Fast path: codes of at most 8 bits, looked up from the next 8 bits.
      const k = start + (bit >>> 3);
      const off = bit & 7;
      const next8 = off === 0 ? data[k]! : ((data[k]! << off) | (data[k + 1]! >>> (8 - off))) & 0xff;
      const e = FAST[next8]!;
      if (e !== 0) {
        out[o++] = e >>> 8;
        bit += e & 0xff;
        continue;
      }
    }
    // Slow path: bit by bit, canonical decoding.
    let code = 0;
    let len = 0;
    let allOnes = true;
    for (;;) {
      if (bit >= total) {
        // Input ended inside a code: that must be padding (≤ 7 bits, all ones) (RFC 7541 §5.2).
        if (len > 7) throw qpackError(errorCode, 'Huffman: padding longer than 7 bits');
        if (!allOnes) throw qpackError(errorCode, 'Huffman: padding is not EOS prefix');
        return out.subarray(0, o);
      }
      const v = (data[start + (bit >>> 3)]! >>> (7 - (bit & 7))) & 1;
      bit++;
      code = code * 2 + v;
      len++;
      if (v === 0) allOnes = false;
      const rel = code - FIRST_CODE[len]!;
      if (rel >= 0 && rel < COUNT[len]!) {
        const sym = SORTED[FIRST_INDEX[len]! + rel]!;
        if (sym === 256) throw qpackError(errorCode, 'Huffman: EOS symbol in string');
        out[o++] = sym;
        break;
      }
      if (len >= MAX_LEN) throw qpackError(errorCode, 'Huffman: invalid code');
    }
  }
  return out.subarray(0, o);
}

/** FAST[next 8 bits] = symbol << 8 | code length, for codes of at most 8 bits; 0 otherwise. */
const FAST = new Uint16Array(256);
for (let sym = 0; sym < 256; sym++) {
  const len = LENGTHS[sym]!;
  if (len > 8) continue;
  const first = HUFFMAN_CODES[sym]! << (8 - len);
  for (let j = 0; j < 1 << (8 - len); j++) FAST[first | j] = (sym << 8) | len;
}
