/**
 * Retry packets (RFC 9000 §17.2.5) and the Retry Integrity Tag (RFC 9001 §5.8; v2 key and nonce
 * from RFC 9369 §3.3.3). Retry is rare: these functions allocate freely.
 */
import type { Aead, CryptoProvider } from '@petrel/tls-core';
import { ConfigError } from '@petrel/tls-core';
import { MAX_CID_LENGTH, PacketType, longTypeBits } from './header.js';
import { QUIC_V1, QUIC_V2 } from './version.js';

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const RETRY_KEY_V1 = hex('be0c690b9f66575a1d766b54e368c84e');
const RETRY_NONCE_V1 = hex('461599d35d632bf2239825bb');
const RETRY_KEY_V2 = hex('8fb4b01b56ac48e260fbcbcead7ccc92');
const RETRY_NONCE_V2 = hex('d86969bc2d7c6d9990efb04a');
const EMPTY = new Uint8Array(0);

const aeadCache = new WeakMap<CryptoProvider, { v1?: Aead; v2?: Aead }>();

function retryAead(provider: CryptoProvider, version: number): { aead: Aead; nonce: Uint8Array } {
  let c = aeadCache.get(provider);
  if (!c) aeadCache.set(provider, (c = {}));
  if (version === QUIC_V1) return { aead: (c.v1 ??= provider.aead('aes-128-gcm', RETRY_KEY_V1)), nonce: RETRY_NONCE_V1 };
  if (version === QUIC_V2) return { aead: (c.v2 ??= provider.aead('aes-128-gcm', RETRY_KEY_V2)), nonce: RETRY_NONCE_V2 };
  throw new ConfigError(`Retry is only defined here for QUIC v1 and v2, not 0x${version.toString(16)}`);
}

/**
 * The 16-byte Retry Integrity Tag over the Retry pseudo-packet: ODCID Length, ODCID, then the Retry
 * packet `retryWithoutTag` (everything before the tag). RFC 9001 §5.8.
 */
export function retryIntegrityTag(
  provider: CryptoProvider,
  version: number,
  odcid: Uint8Array,
  retryWithoutTag: Uint8Array,
): Uint8Array {
  const pseudo = new Uint8Array(1 + odcid.length + retryWithoutTag.length);
  pseudo[0] = odcid.length;
  pseudo.set(odcid, 1);
  pseudo.set(retryWithoutTag, 1 + odcid.length);
  const { aead, nonce } = retryAead(provider, version);
  return aead.seal(nonce, pseudo, EMPTY);
}

/**
 * Builds a Retry packet. `dcid` is the client's Source Connection ID, `scid` the connection ID the
 * server chose, `odcid` the Destination Connection ID of the client's Initial (for the tag).
 * `unusedBits` are the 4 low bits of the first byte (arbitrary; pass random).
 */
export function buildRetry(
  provider: CryptoProvider,
  version: number,
  dcid: Uint8Array,
  scid: Uint8Array,
  token: Uint8Array,
  odcid: Uint8Array,
  unusedBits = 0,
): Uint8Array {
  if (token.length === 0) throw new ConfigError('a Retry token must not be empty (RFC 9000 §17.2.5)');
  if (dcid.length > MAX_CID_LENGTH || scid.length > MAX_CID_LENGTH || odcid.length > MAX_CID_LENGTH) {
    throw new ConfigError('connection IDs are at most 20 bytes');
  }
  const n = 7 + dcid.length + scid.length + token.length;
  const out = new Uint8Array(n + 16);
  out[0] = 0xc0 | (longTypeBits(version, PacketType.Retry) << 4) | (unusedBits & 0x0f);
  out[1] = version >>> 24;
  out[2] = (version >>> 16) & 0xff;
  out[3] = (version >>> 8) & 0xff;
  out[4] = version & 0xff;
  let o = 5;
  out[o++] = dcid.length;
  out.set(dcid, o);
  o += dcid.length;
  out[o++] = scid.length;
  out.set(scid, o);
  o += scid.length;
  out.set(token, o);
  out.set(retryIntegrityTag(provider, version, odcid, out.subarray(0, n)), n);
  return out;
}

export interface RetryPacket {
  version: number;
  dcid: Uint8Array;
  /** The server's new connection ID: the client's next Destination Connection ID. */
  scid: Uint8Array;
  token: Uint8Array;
}

/**
 * Parses a Retry packet that occupies buf[offset, end) (a Retry is never coalesced: it extends to the
 * end of the datagram) and verifies its integrity tag against `odcid` (the Destination Connection ID
 * the client used in its first Initial). Returns null if it is not a valid v1/v2 Retry, if the tag does
 * not verify, or if the token is empty: the client drops it (RFC 9000 §17.2.5.2).
 */
export function parseRetry(
  provider: CryptoProvider,
  buf: Uint8Array,
  odcid: Uint8Array,
  offset = 0,
  end = buf.length,
): RetryPacket | null {
  if (end - offset < 7 + 16 || end > buf.length) return null;
  const b0 = buf[offset]!;
  if ((b0 & 0xc0) !== 0xc0) return null;
  const version = ((buf[offset + 1]! << 24) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 8) | buf[offset + 4]!) >>> 0;
  if (version !== QUIC_V1 && version !== QUIC_V2) return null;
  if (((b0 >> 4) & 3) !== longTypeBits(version, PacketType.Retry)) return null;
  let o = offset + 5;
  const dl = buf[o++]!;
  if (dl > MAX_CID_LENGTH || o + dl + 1 > end) return null;
  const dcid = buf.slice(o, o + dl);
  o += dl;
  const sl = buf[o++]!;
  if (sl > MAX_CID_LENGTH || o + sl > end) return null;
  const scid = buf.slice(o, o + sl);
  o += sl;
  const tagOffset = end - 16;
  if (tagOffset <= o) return null; // empty token (or no room for the tag)
  const token = buf.slice(o, tagOffset);
  const expected = retryIntegrityTag(provider, version, odcid, buf.subarray(offset, tagOffset));
  let diff = 0;
  for (let i = 0; i < 16; i++) diff |= expected[i]! ^ buf[tagOffset + i]!;
  if (diff !== 0) return null;
  return { version, dcid, scid, token };
}
