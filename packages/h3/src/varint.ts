/**
 * QUIC variable-length integers (RFC 9000 §16) as HTTP/3 frames use them. Values are JS numbers:
 * exact up to 2^53; larger 62-bit values (only legal for ids we never compare exactly) lose
 * precision but never throw.
 */

/** Bytes needed for `v`. */
export function varintLength(v: number): number {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x40000000) return 4;
  return 8;
}

/** Writes `v` at `off`, returns the new offset. */
export function writeVarint(buf: Uint8Array, off: number, v: number): number {
  if (v < 0x40) {
    buf[off] = v;
    return off + 1;
  }
  if (v < 0x4000) {
    buf[off] = 0x40 | (v >>> 8);
    buf[off + 1] = v & 0xff;
    return off + 2;
  }
  if (v < 0x40000000) {
    buf[off] = 0x80 | (v >>> 24);
    buf[off + 1] = (v >>> 16) & 0xff;
    buf[off + 2] = (v >>> 8) & 0xff;
    buf[off + 3] = v & 0xff;
    return off + 4;
  }
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  buf[off] = 0xc0 | ((hi >>> 24) & 0x3f);
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
  return off + 8;
}

export function encodeVarint(v: number): Uint8Array {
  const out = new Uint8Array(varintLength(v));
  writeVarint(out, 0, v);
  return out;
}

/**
 * Reads a varint at `off` from `buf[.. end]`. Returns the value and sets `pos.v` to the new offset,
 * or returns -1 when the bytes end before the integer does.
 */
export function readVarint(buf: Uint8Array, off: number, end: number, pos: { v: number }): number {
  if (off >= end) return -1;
  const first = buf[off]!;
  const len = 1 << (first >>> 6);
  if (off + len > end) return -1;
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + buf[off + i]!;
  pos.v = off + len;
  return v;
}
