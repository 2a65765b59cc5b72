/**
 * Datagram classification by the first bytes, for logs and targeted drops (RFC 8999 invariants,
 * RFC 9000 §17.2 long-header types for v1, RFC 9369 §3.2 for v2). Looks only at the unprotected
 * bits: the header form bit, the type bits and the version.
 */

export type PacketType = 'initial' | '0rtt' | 'handshake' | 'retry' | 'version-negotiation' | '1rtt' | 'empty';

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;

/** Long-header type bits (first byte bits 4-5) per version. */
const V1_TYPES: PacketType[] = ['initial', '0rtt', 'handshake', 'retry'];
const V2_TYPES: PacketType[] = ['retry', 'initial', '0rtt', 'handshake'];

/** The type of the first QUIC packet in a datagram (coalesced packets are not followed). */
export function packetType(d: Uint8Array): PacketType {
  if (d.length === 0) return 'empty';
  const b = d[0]!;
  if (!(b & 0x80)) return '1rtt';
  if (d.length < 5) return 'initial'; // too short to carry a version; treat as long header
  const version = ((d[1]! << 24) | (d[2]! << 16) | (d[3]! << 8) | d[4]!) >>> 0;
  if (version === 0) return 'version-negotiation';
  const bits = (b >> 4) & 3;
  return (version === QUIC_V2 ? V2_TYPES : V1_TYPES)[bits]!;
}

/** The QUIC version of a long-header datagram, or null for short headers. */
export function packetVersion(d: Uint8Array): number | null {
  if (d.length < 5 || !(d[0]! & 0x80)) return null;
  return ((d[1]! << 24) | (d[2]! << 16) | (d[3]! << 8) | d[4]!) >>> 0;
}

export function hexPrefix(d: Uint8Array, n = 8): string {
  let s = '';
  for (let i = 0; i < Math.min(n, d.length); i++) s += d[i]!.toString(16).padStart(2, '0');
  return s;
}

/** Long-header connection IDs (RFC 8999 §5.1) in hex, or null for short headers / truncated data. */
export function longHeaderIds(d: Uint8Array): { dcid: string; scid: string } | null {
  if (d.length < 6 || !(d[0]! & 0x80)) return null;
  const dl = d[5]!;
  if (6 + dl + 1 > d.length) return null;
  const sl = d[6 + dl]!;
  if (7 + dl + sl > d.length) return null;
  return { dcid: hexPrefix(d.subarray(6, 6 + dl), dl), scid: hexPrefix(d.subarray(7 + dl, 7 + dl + sl), sl) };
}

function varint(d: Uint8Array, i: number): [number, number] | null {
  if (i >= d.length) return null;
  const len = 1 << (d[i]! >> 6);
  if (i + len > d.length) return null;
  let v = d[i]! & 0x3f;
  for (let k = 1; k < len; k++) v = v * 256 + d[i + k]!;
  return [v, i + len];
}

/**
 * Types of every packet coalesced in a datagram (RFC 9000 §12.2), walking the unprotected Length
 * fields of long-header packets; a short-header packet ends the walk. Stops at anything malformed.
 */
export function coalescedTypes(d: Uint8Array): PacketType[] {
  const out: PacketType[] = [];
  let off = 0;
  for (let guard = 0; off < d.length && guard < 16; guard++) {
    const p = d.subarray(off);
    const t = packetType(p);
    out.push(t);
    if (t !== 'initial' && t !== '0rtt' && t !== 'handshake') break;
    if (p.length < 7) break;
    let i = 6 + p[5]!;
    if (i >= p.length) break;
    i += 1 + p[i]!;
    if (t === 'initial') {
      const tl = varint(p, i);
      if (!tl) break;
      i = tl[1] + tl[0];
    }
    const len = varint(p, i);
    if (!len) break;
    off += len[1] + len[0];
  }
  return out;
}
