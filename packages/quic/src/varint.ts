/**
 * QUIC variable-length integers (RFC 9000 §16), read and written at an offset in a Uint8Array.
 *
 * Values are JS numbers. A varint holds up to 2^62-1; values above 2^53 lose precision when read
 * (the low bits are rounded). Packet numbers never get there; for limits such as a peer's max_data
 * near 2^62 the rounded value is still far beyond anything that can be sent, so it is treated as
 * effectively infinite. Where an exact comparison against a bound above 2^53 matters (STREAM offset +
 * length ≤ 2^62-1, MAX_STREAMS ≤ 2^60), use {@link varintGreaterThan}, which compares the encoded bytes.
 *
 * No allocation: readers return the value; the encoded size follows from the first byte
 * ({@link varintSizeAt}). Functions never throw on truncated input: {@link readVarintChecked}
 * returns -1 when the varint does not fit before `end`.
 */

/**
 * Largest value a varint can carry, 2^62-1. As a JS number this literal rounds to 2^62; the writers
 * therefore accept exactly 2^62 and encode it as 2^62-1 (all ones), so `writeVarint(buf, o, MAX_VARINT)`
 * works. For exact comparisons near this bound see {@link varintGreaterThan}.
 */
export const MAX_VARINT = 4611686018427387903;
/** 2^62: any number >= this cannot be encoded. */
const TWO_62 = 2 ** 62;
const TWO_32 = 2 ** 32;

/** Encoded size (1, 2, 4 or 8) of the varint whose first byte is `first`. */
export function varintSizeFromFirstByte(first: number): number {
  return 1 << (first >> 6);
}

/** Encoded size of the varint starting at `buf[off]` (off must be in range). */
export function varintSizeAt(buf: Uint8Array, off: number): number {
  return 1 << (buf[off]! >> 6);
}

/** Minimal encoded size of `value` (1, 2, 4 or 8). Throws RangeError for values that cannot be encoded (local bug). */
export function varintLength(value: number): number {
  if (value < 64) {
    if (value >= 0) return 1;
  } else if (value < 16384) return 2;
  else if (value < 1073741824) return 4;
  else if (value <= TWO_62) return 8;
  throw new RangeError(`varint out of range: ${value}`);
}

/**
 * Reads the varint at `off`; the caller has checked that `off + varintSizeAt(buf, off) <= buf.length`
 * (or the end of the region). See {@link readVarintChecked} for a bounds-checked read.
 */
export function readVarint(buf: Uint8Array, off: number): number {
  const b0 = buf[off]!;
  switch (b0 >> 6) {
    case 0:
      return b0;
    case 1:
      return ((b0 & 0x3f) << 8) | buf[off + 1]!;
    case 2:
      return (
        (b0 & 0x3f) * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!)
      );
    default: {
      const hi = (b0 & 0x3f) * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
      const lo = buf[off + 4]! * 0x1000000 + ((buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!);
      return hi * TWO_32 + lo;
    }
  }
}

/** Reads the varint at `off` if it ends at or before `end`; -1 if truncated (or off >= end). */
export function readVarintChecked(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  if (off + (1 << (buf[off]! >> 6)) > end) return -1;
  return readVarint(buf, off);
}

/**
 * Exact comparison of the varint at `off` (already bounds-checked) with `hi * 2^32 + lo`
 * (0 <= hi < 2^30, 0 <= lo < 2^32), independent of double precision.
 */
export function varintGreaterThan(buf: Uint8Array, off: number, hi: number, lo: number): boolean {
  const b0 = buf[off]!;
  let vHi = 0;
  let vLo: number;
  switch (b0 >> 6) {
    case 0:
      vLo = b0;
      break;
    case 1:
      vLo = ((b0 & 0x3f) << 8) | buf[off + 1]!;
      break;
    case 2:
      vLo = (b0 & 0x3f) * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
      break;
    default:
      vHi = (b0 & 0x3f) * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
      vLo = buf[off + 4]! * 0x1000000 + ((buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!);
  }
  return vHi > hi || (vHi === hi && vLo > lo);
}

/** Writes `value` with its minimal length at `off`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, off: number, value: number): number {
  return writeVarintFixed(buf, off, value, varintLength(value));
}

/**
 * Writes `value` in exactly `size` bytes (1, 2, 4 or 8), e.g. a Length field reserved before the
 * payload is known and patched afterwards. Returns the offset after it. Throws RangeError if the
 * value does not fit (a local bug, never peer input).
 */
export function writeVarintFixed(buf: Uint8Array, off: number, value: number, size: number): number {
  if (!(value >= 0) || !Number.isInteger(value)) throw new RangeError(`varint out of range: ${value}`);
  switch (size) {
    case 1:
      if (value >= 64) break;
      buf[off] = value;
      return off + 1;
    case 2:
      if (value >= 16384) break;
      buf[off] = 0x40 | (value >> 8);
      buf[off + 1] = value & 0xff;
      return off + 2;
    case 4:
      if (value >= 1073741824) break;
      buf[off] = 0x80 | (value >>> 24);
      buf[off + 1] = (value >>> 16) & 0xff;
      buf[off + 2] = (value >>> 8) & 0xff;
      buf[off + 3] = value & 0xff;
      return off + 4;
    case 8: {
      if (value > TWO_62) break;
      let hi = Math.floor(value / TWO_32);
      let lo = value - hi * TWO_32;
      if (value === TWO_62) {
        hi = 0x3fffffff; // MAX_VARINT rounded up by the double: encode 2^62-1
        lo = 0xffffffff;
      }
      buf[off] = 0xc0 | (hi >>> 24);
      buf[off + 1] = (hi >>> 16) & 0xff;
      buf[off + 2] = (hi >>> 8) & 0xff;
      buf[off + 3] = hi & 0xff;
      buf[off + 4] = lo >>> 24;
      buf[off + 5] = (lo >>> 16) & 0xff;
      buf[off + 6] = (lo >>> 8) & 0xff;
      buf[off + 7] = lo & 0xff;
      return off + 8;
    }
  }
  throw new RangeError(`varint ${value} does not fit in ${size} bytes`);
}
