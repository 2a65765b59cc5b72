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
