/**
 * QPACK primitives (RFC 9204 §4.1): prefixed integers (RFC 7541 §5.1) and string literals with an
 * optional Huffman encoding. Reading is over one Uint8Array with an offset; a read that runs past
 * the end throws {@link TRUNCATED} (a sentinel, caught inside qpack: a field section must be
 * complete, an instruction on the encoder/decoder stream waits for more bytes).
 */
import { qpackError } from '../errors.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';

/** Thrown when the input ends in the middle of a representation. Never escapes qpack. */
export const TRUNCATED: unique symbol = Symbol('qpack-truncated');

/** Integers above this are refused (they could not index anything or describe a real length). */
export const MAX_INT = 2 ** 53 - 1;

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 bytes of `s` (ASCII fast path: header fields almost always are). */
export function utf8(s: string): Uint8Array {
  const n = s.length;
  if (n > 256) return utf8enc.encode(s);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return utf8enc.encode(s);
    out[i] = c;
  }
  return out;
}

/** Text of UTF-8 bytes (invalid sequences become U+FFFD; ASCII fast path). */
export function fromUtf8(b: Uint8Array): string {
  const n = b.length;
  if (n > 256) return utf8dec.decode(b);
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c > 0x7f) return utf8dec.decode(b);
    s += String.fromCharCode(c);
  }
  return s;
}

export class QpackReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    /** The QPACK error code for malformed input in this context. */
    readonly errorCode: number,
    /** Longest string literal accepted (bytes, after Huffman decoding). */
    readonly maxString: number = 1 << 20,
    /** Error for a string longer than maxString (default: `errorCode`). */
    private readonly tooLong: () => Error = () => qpackError(errorCode, 'string literal too long'),
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  peek(): number {
    if (this.pos >= this.end) throw TRUNCATED;
    return this.buf[this.pos]!;
  }

  /** Prefixed integer with an N-bit prefix in the current byte (RFC 7541 §5.1). */
  int(n: number): number {
    if (this.pos >= this.end) throw TRUNCATED;
    const mask = (1 << n) - 1;
    let v = this.buf[this.pos++]! & mask;
    if (v < mask) return v;
    let m = 1;
    for (;;) {
      if (this.pos >= this.end) throw TRUNCATED;
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * m;
      m *= 128;
      if (v > MAX_INT) throw qpackError(this.errorCode, 'integer overflow');
      if ((b & 0x80) === 0) return v;
      // 2^53 needs at most 8 continuation bytes; more (e.g. endless 0x80 padding) is an overflow.
      if (m > 2 ** 63) throw qpackError(this.errorCode, 'integer encoding too long');
    }
  }

  /** String literal whose H bit is bit `n` of the current byte and whose length has an n-bit prefix. */
  string(n: number): Uint8Array {
    const huffman = (this.peek() & (1 << n)) !== 0;
    const len = this.int(n);
    if (len > this.end - this.pos) {
      // A length that cannot fit any sane limit is an error even before the bytes arrive.
      if (len > this.maxString * 2) throw this.tooLong();
      throw TRUNCATED;
    }
    const start = this.pos;
    this.pos += len;
    if (!huffman) {
      if (len > this.maxString) throw this.tooLong();
      return this.buf.subarray(start, start + len);
    }
    if (len > this.maxString) throw this.tooLong();
    const out = huffmanDecode(this.buf, start, start + len, this.errorCode);
    if (out.length > this.maxString) throw this.tooLong();
    return out;
  }
}

/** Growable output buffer. */
export class QpackWriter {
  private buf = new Uint8Array(64);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.length));
    this.buf = nb;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Prefixed integer: `flags` are the bits above the n-bit prefix in the first byte. */
  int(n: number, flags: number, v: number): void {
    const mask = (1 << n) - 1;
    if (v < mask) {
      this.byte(flags | v);
      return;
    }
    this.byte(flags | mask);
    v -= mask;
    while (v >= 128) {
      this.byte((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.byte(v);
  }

  /**
   * String literal: H bit at bit `n` of the first byte, length with an n-bit prefix. Huffman is used
   * when `huffman` is 'auto' and it is shorter, or when it is true.
   */
  string(n: number, flags: number, s: Uint8Array, huffman: boolean | 'auto'): void {
    const hl = huffman === false ? Infinity : huffmanEncodedLength(s);
    if (huffman === true || hl < s.length) {
      this.int(n, flags | (1 << n), hl);
      this.bytes(huffmanEncode(s));
    } else {
      this.int(n, flags, s.length);
      this.bytes(s);
    }
  }

  take(): Uint8Array {
    const out = this.buf.slice(0, this.length);
    this.length = 0;
    return out;
  }
}
