/**
 * QUIC versions (RFC 9000 §15, RFC 9369, RFC 8999), Version Negotiation packets (RFC 9000 §17.2.1)
 * and compatible version negotiation (RFC 9368).
 */
import { TransportError, quicError } from './errors.js';
import type { VersionInformation } from './transport-params.js';

export const QUIC_V1 = 0x00000001;
/** QUIC version 2 (RFC 9369 §3.1). */
export const QUIC_V2 = 0x6b3343cf;

/** Versions we implement, in order of preference for the wire (v1 first: the widest interop). */
export const SUPPORTED_VERSIONS: readonly number[] = [QUIC_V1, QUIC_V2];

export function isSupportedVersion(version: number): boolean {
  return version === QUIC_V1 || version === QUIC_V2;
}

/** Reserved versions of the form 0x?a?a?a?a, used to exercise version negotiation (RFC 9000 §15). */
export function isReservedVersion(version: number): boolean {
  return (version & 0x0f0f0f0f) === 0x0a0a0a0a;
}

/** A reserved (greasing) version built from `seed`'s high nibbles (RFC 9000 §15). */
export function greaseVersion(seed: number): number {
  return ((seed & 0xf0f0f0f0) | 0x0a0a0a0a) >>> 0;
}

export interface VersionNegotiation {
  /** Copies of the connection IDs (the Version Negotiation packet echoes the client's IDs swapped). */
  dcid: Uint8Array;
  scid: Uint8Array;
  versions: number[];
}

/**
 * Builds a Version Negotiation packet (RFC 9000 §17.2.1) answering a client packet whose
 * Destination/Source Connection IDs were `clientDcid`/`clientScid`: the VN packet's DCID is the
 * client's SCID and its SCID the client's DCID. `unusedBits` fills the 7 arbitrary bits of the first
 * byte (should be random). Returns a new datagram.
 */
export function buildVersionNegotiation(
  clientDcid: Uint8Array,
  clientScid: Uint8Array,
  versions: readonly number[],
  unusedBits = 0,
): Uint8Array {
  const out = new Uint8Array(7 + clientDcid.length + clientScid.length + 4 * versions.length);
  out[0] = 0x80 | (unusedBits & 0x7f);
  // version field 0
  let o = 5;
  out[o++] = clientScid.length;
  out.set(clientScid, o);
  o += clientScid.length;
  out[o++] = clientDcid.length;
  out.set(clientDcid, o);
  o += clientDcid.length;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const v of versions) {
    view.setUint32(o, v >>> 0);
    o += 4;
  }
  return out;
}

/**
 * Parses a Version Negotiation packet; null if it is not one or is malformed (drop, RFC 9000 §6.2).
 * Connection IDs up to 255 bytes are accepted (RFC 8999 §5.1 invariants).
 */
export function parseVersionNegotiation(buf: Uint8Array, offset = 0, end = buf.length): VersionNegotiation | null {
  if (end - offset < 7 || (buf[offset]! & 0x80) === 0) return null;
  if ((buf[offset + 1]! | buf[offset + 2]! | buf[offset + 3]! | buf[offset + 4]!) !== 0) return null;
  let o = offset + 5;
  const dl = buf[o++]!;
  if (o + dl + 1 > end) return null;
  const dcid = buf.slice(o, o + dl);
  o += dl;
  const sl = buf[o++]!;
  if (o + sl > end) return null;
  const scid = buf.slice(o, o + sl);
  o += sl;
  const rest = end - o;
  if (rest === 0 || rest % 4 !== 0) return null;
  const versions: number[] = [];
  for (; o < end; o += 4) {
    versions.push(((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0);
  }
  return { dcid, scid, versions };
}

// ---------------------------------------------------------------------------------------------
// Compatible version negotiation (RFC 9368)

/** Can a connection started in `from` switch to `to` (RFC 9368 §2.3)? v1 and v2 are mutually compatible (RFC 9369 §4). */
export function areCompatibleVersions(from: number, to: number): boolean {
  return from === to || (isSupportedVersion(from) && isSupportedVersion(to));
}

/**
 * Server: the Negotiated Version for a client whose first flight used `originalVersion` and carried
 * `clientInfo` (RFC 9368 §2.3): the first of `serverPreference` that the client lists in its Available
 * Versions and that is compatible with the original version; otherwise the original version.
 */
export function negotiateVersion(
  originalVersion: number,
  clientInfo: VersionInformation | null,
  serverPreference: readonly number[] = SUPPORTED_VERSIONS,
): number {
  if (clientInfo) {
    for (const v of serverPreference) {
      if (isSupportedVersion(v) && clientInfo.availableVersions.includes(v) && areCompatibleVersions(originalVersion, v)) return v;
    }
  }
  return originalVersion;
}

/**
 * Client: the version to retry with after a Version Negotiation packet listing `offered`
 * (RFC 9000 §6.2, RFC 9368 §2.1): the first of our preference the server offers; null if none, or if
 * the packet lists `originalVersion` (then it must be ignored).
 */
export function chooseVersionFromNegotiation(
  originalVersion: number,
  offered: readonly number[],
  clientPreference: readonly number[] = SUPPORTED_VERSIONS,
): number | null {
  if (offered.includes(originalVersion)) return null;
  for (const v of clientPreference) if (offered.includes(v)) return v;
  return null;
}

/**
 * Server: checks the client's version_information against the version of the long headers that
 * carried it (RFC 9368 §4). Missing information is allowed. Throws VERSION_NEGOTIATION_ERROR.
 */
export function validateClientVersionInformation(info: VersionInformation | null, packetVersion: number): void {
  if (info && info.chosenVersion !== packetVersion) {
    throw quicError(TransportError.VERSION_NEGOTIATION_ERROR, 'client Chosen Version differs from the version in use');
  }
}

/**
 * Client: checks the server's version_information (RFC 9368 §4). `negotiatedVersion` is the version of
 * the server's long headers; `clientAvailable` what we sent in Available Versions; `reactedToVn` whether
 * this connection attempt followed a Version Negotiation packet. Throws VERSION_NEGOTIATION_ERROR.
 */
export function validateServerVersionInformation(
  info: VersionInformation | null,
  negotiatedVersion: number,
  clientAvailable: readonly number[],
  reactedToVn: boolean,
  clientPreference: readonly number[] = SUPPORTED_VERSIONS,
): void {
  const fail = (m: string): never => {
    throw quicError(TransportError.VERSION_NEGOTIATION_ERROR, m);
  };
  if (!info) {
    // RFC 9368 §8: a QUIC v1 server that does not implement this extension is treated as if it had
    // sent Chosen Version 1 and Available Versions [1] (e.g. quic-go 0.29 answering after VN).
    if (negotiatedVersion === QUIC_V1) info = { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1] };
    else {
      if (reactedToVn) fail('server sent no version_information after Version Negotiation');
      return;
    }
  }
  if (info.chosenVersion !== negotiatedVersion) fail('server Chosen Version differs from the Negotiated Version');
  if (!clientAvailable.includes(info.chosenVersion)) fail('server chose a version we did not offer');
  if (reactedToVn) {
    // We must have picked the same version knowing the server's full list (downgrade protection).
    const offered = [...info.availableVersions, negotiatedVersion];
    let wouldPick: number | null = null;
    for (const v of clientPreference) {
      if (offered.includes(v)) {
        wouldPick = v;
        break;
      }
    }
    if (info.availableVersions.length === 0 || wouldPick !== negotiatedVersion) fail('version downgrade detected');
  }
}
