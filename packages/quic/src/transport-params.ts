/**
 * QUIC transport parameters (RFC 9000 §18), plus max_datagram_frame_size (RFC 9221 §3),
 * version_information (RFC 9368 §3) and grease_quic_bit (RFC 9287 §3).
 *
 * `decodeTransportParameters(bytes, sender)` validates and returns a complete typed object (absent
 * parameters take their defaults); every violation is a ProtocolViolation with TRANSPORT_PARAMETER_ERROR.
 * Unknown (and reserved 31*N+27) parameters are ignored. `encodeTransportParameters(params, sender)`
 * writes the parameters that differ from the defaults (connection IDs whenever present).
 *
 * Numbers: values are varints up to 2^62-1 read as JS numbers; above 2^53 they lose precision, which
 * for limits (initial_max_data, ...) means "effectively infinite".
 */
import { ConfigError } from '@petrel/tls-core';
import { TransportError, quicError } from './errors.js';
import { readVarintChecked, varintGreaterThan, varintLength, varintSizeAt, writeVarint } from './varint.js';

export const TransportParameterId = {
  original_destination_connection_id: 0x00,
  max_idle_timeout: 0x01,
  stateless_reset_token: 0x02,
  max_udp_payload_size: 0x03,
  initial_max_data: 0x04,
  initial_max_stream_data_bidi_local: 0x05,
  initial_max_stream_data_bidi_remote: 0x06,
  initial_max_stream_data_uni: 0x07,
  initial_max_streams_bidi: 0x08,
  initial_max_streams_uni: 0x09,
  ack_delay_exponent: 0x0a,
  max_ack_delay: 0x0b,
  disable_active_migration: 0x0c,
  preferred_address: 0x0d,
  active_connection_id_limit: 0x0e,
  initial_source_connection_id: 0x0f,
  retry_source_connection_id: 0x10,
  version_information: 0x11,
  max_datagram_frame_size: 0x20,
  grease_quic_bit: 0x2ab2,
} as const;

export interface PreferredAddress {
  /** 4 bytes (0.0.0.0 with port 0 = no IPv4 address). */
  ipv4: Uint8Array;
  ipv4Port: number;
  /** 16 bytes (:: with port 0 = no IPv6 address). */
  ipv6: Uint8Array;
  ipv6Port: number;
  /** 1..20 bytes. */
  connectionId: Uint8Array;
  /** 16 bytes. */
  statelessResetToken: Uint8Array;
}

export interface VersionInformation {
  chosenVersion: number;
  availableVersions: number[];
}

export interface TransportParameters {
  /** Server only. */
  originalDestinationConnectionId: Uint8Array | null;
  /** Milliseconds; 0 = no idle timeout. */
  maxIdleTimeout: number;
  /** Server only; 16 bytes. */
  statelessResetToken: Uint8Array | null;
  maxUdpPayloadSize: number;
  initialMaxData: number;
  initialMaxStreamDataBidiLocal: number;
  initialMaxStreamDataBidiRemote: number;
  initialMaxStreamDataUni: number;
  initialMaxStreamsBidi: number;
  initialMaxStreamsUni: number;
  ackDelayExponent: number;
  /** Milliseconds. */
  maxAckDelay: number;
  disableActiveMigration: boolean;
  /** Server only. */
  preferredAddress: PreferredAddress | null;
  activeConnectionIdLimit: number;
  initialSourceConnectionId: Uint8Array | null;
  /** Server only (after a Retry). */
  retrySourceConnectionId: Uint8Array | null;
  /** null: DATAGRAM frames not supported (RFC 9221 §3). */
  maxDatagramFrameSize: number | null;
  versionInformation: VersionInformation | null;
  greaseQuicBit: boolean;
}

export function defaultTransportParameters(): TransportParameters {
  return {
    originalDestinationConnectionId: null,
    maxIdleTimeout: 0,
    statelessResetToken: null,
    maxUdpPayloadSize: 65527,
    initialMaxData: 0,
    initialMaxStreamDataBidiLocal: 0,
    initialMaxStreamDataBidiRemote: 0,
    initialMaxStreamDataUni: 0,
    initialMaxStreamsBidi: 0,
    initialMaxStreamsUni: 0,
    ackDelayExponent: 3,
    maxAckDelay: 25,
    disableActiveMigration: false,
    preferredAddress: null,
    activeConnectionIdLimit: 2,
    initialSourceConnectionId: null,
    retrySourceConnectionId: null,
    maxDatagramFrameSize: null,
    versionInformation: null,
    greaseQuicBit: false,
  };
}

export type TransportParameterSender = 'client' | 'server';

function tpError(message: string): never {
  throw quicError(TransportError.TRANSPORT_PARAMETER_ERROR, message);
}

const SERVER_ONLY = new Set<number>([0x00, 0x02, 0x0d, 0x10]);

/**
 * Decodes the peer's transport parameters. `sender` is the peer's role. Enforces RFC 9000 §7.3
 * presence rules that do not depend on Retry: initial_source_connection_id from both,
 * original_destination_connection_id from a server (matching the values is the connection's job).
 */
export function decodeTransportParameters(buf: Uint8Array, sender: TransportParameterSender): TransportParameters {
  const p = defaultTransportParameters();
  const seen = new Set<number>();
  let o = 0;
  const end = buf.length;
  while (o < end) {
    const id = readVarintChecked(buf, o, end);
    if (id < 0) tpError('truncated transport parameter id');
    o += varintSizeAt(buf, o);
    const len = readVarintChecked(buf, o, end);
    if (len < 0) tpError('truncated transport parameter length');
    o += varintSizeAt(buf, o);
    if (len > end - o) tpError('transport parameter longer than the extension');
    const vEnd = o + len;
    if (seen.has(id)) tpError(`duplicate transport parameter 0x${id.toString(16)}`);
    seen.add(id);
    if (sender === 'client' && SERVER_ONLY.has(id)) tpError(`server-only transport parameter 0x${id.toString(16)} sent by a client`);
    switch (id) {
      case 0x00:
        p.originalDestinationConnectionId = cid(buf, o, vEnd);
        break;
      case 0x01:
        p.maxIdleTimeout = intValue(buf, o, vEnd);
        break;
      case 0x02:
        if (len !== 16) tpError('stateless_reset_token must be 16 bytes');
        p.statelessResetToken = buf.slice(o, vEnd);
        break;
      case 0x03:
        p.maxUdpPayloadSize = intValue(buf, o, vEnd);
        if (p.maxUdpPayloadSize < 1200) tpError('max_udp_payload_size below 1200');
        break;
      case 0x04:
        p.initialMaxData = intValue(buf, o, vEnd);
        break;
      case 0x05:
        p.initialMaxStreamDataBidiLocal = intValue(buf, o, vEnd);
        break;
      case 0x06:
        p.initialMaxStreamDataBidiRemote = intValue(buf, o, vEnd);
        break;
      case 0x07:
        p.initialMaxStreamDataUni = intValue(buf, o, vEnd);
        break;
      case 0x08:
      case 0x09: {
        const v = intValue(buf, o, vEnd);
        if (varintGreaterThan(buf, o, 0x10000000, 0)) tpError('initial_max_streams above 2^60');
        if (id === 0x08) p.initialMaxStreamsBidi = v;
        else p.initialMaxStreamsUni = v;
        break;
      }
      case 0x0a:
        p.ackDelayExponent = intValue(buf, o, vEnd);
        if (p.ackDelayExponent > 20) tpError('ack_delay_exponent above 20');
        break;
      case 0x0b:
        p.maxAckDelay = intValue(buf, o, vEnd);
        if (p.maxAckDelay >= 16384) tpError('max_ack_delay of 2^14 or more');
        break;
      case 0x0c:
        if (len !== 0) tpError('disable_active_migration must be empty');
        p.disableActiveMigration = true;
        break;
      case 0x0d:
        p.preferredAddress = preferredAddress(buf, o, vEnd);
        break;
      case 0x0e:
        p.activeConnectionIdLimit = intValue(buf, o, vEnd);
        if (p.activeConnectionIdLimit < 2) tpError('active_connection_id_limit below 2');
        break;
      case 0x0f:
        p.initialSourceConnectionId = cid(buf, o, vEnd);
        break;
      case 0x10:
        p.retrySourceConnectionId = cid(buf, o, vEnd);
        break;
      case 0x11:
        p.versionInformation = versionInformation(buf, o, vEnd, sender);
        break;
      case 0x20:
        p.maxDatagramFrameSize = intValue(buf, o, vEnd);
        break;
      case 0x2ab2:
        if (len !== 0) tpError('grease_quic_bit must be empty');
        p.greaseQuicBit = true;
        break;
      default:
        break; // unknown or reserved: ignore (§18.1)
    }
    o = vEnd;
  }
  if (p.initialSourceConnectionId === null) tpError('missing initial_source_connection_id');
  if (sender === 'server' && p.originalDestinationConnectionId === null) tpError('missing original_destination_connection_id');
  return p;
}

/** A parameter whose value is exactly one varint. */
function intValue(buf: Uint8Array, o: number, vEnd: number): number {
  const v = readVarintChecked(buf, o, vEnd);
  if (v < 0 || o + varintSizeAt(buf, o) !== vEnd) tpError('transport parameter is not a single varint');
  return v;
}

function cid(buf: Uint8Array, o: number, vEnd: number): Uint8Array {
  if (vEnd - o > 20) tpError('connection ID longer than 20 bytes');
  return buf.slice(o, vEnd);
}

function preferredAddress(buf: Uint8Array, o: number, vEnd: number): PreferredAddress {
  if (vEnd - o < 41) tpError('preferred_address too short');
  const ipv4 = buf.slice(o, o + 4);
  const ipv4Port = (buf[o + 4]! << 8) | buf[o + 5]!;
  const ipv6 = buf.slice(o + 6, o + 22);
  const ipv6Port = (buf[o + 22]! << 8) | buf[o + 23]!;
  const cl = buf[o + 24]!;
  if (cl === 0) tpError('preferred_address with a zero-length connection ID');
  if (cl > 20) tpError('preferred_address connection ID longer than 20 bytes');
  if (vEnd - o !== 41 + cl) tpError('preferred_address has the wrong length');
  const connectionId = buf.slice(o + 25, o + 25 + cl);
  const statelessResetToken = buf.slice(o + 25 + cl, vEnd);
  return { ipv4, ipv4Port, ipv6, ipv6Port, connectionId, statelessResetToken };
}

function versionInformation(buf: Uint8Array, o: number, vEnd: number, sender: TransportParameterSender): VersionInformation {
  const len = vEnd - o;
  if (len < 4 || len % 4 !== 0) tpError('version_information length must be a non-zero multiple of 4');
  const u32 = (at: number) => ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  const chosenVersion = u32(o);
  if (chosenVersion === 0) tpError('version_information Chosen Version is 0');
  const availableVersions: number[] = [];
  for (let a = o + 4; a < vEnd; a += 4) {
    const v = u32(a);
    if (v === 0) tpError('version_information Available Version is 0');
    availableVersions.push(v);
  }
  // RFC 9368 §4: a server must find the client's Chosen Version in its Available Versions.
  if (sender === 'client' && !availableVersions.includes(chosenVersion)) {
    tpError('version_information Chosen Version not in Available Versions');
  }
  return { chosenVersion, availableVersions };
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface EncodeTransportParametersOptions {
  /**
   * Adds one reserved parameter (id 31*N+27, RFC 9000 §18.1) with this N and an empty value,
   * to keep peers tolerant of unknown parameters.
   */
  greaseN?: number;
}

/**
 * Encodes `params` (missing fields = defaults) as sent by `sender`. Writes only values that differ
 * from the defaults, and connection IDs / tokens whenever present. Throws ConfigError for values we
 * must not send (server-only parameters from a client, out-of-range values).
 */
export function encodeTransportParameters(
  params: Partial<TransportParameters>,
  sender: TransportParameterSender,
  options: EncodeTransportParametersOptions = {},
): Uint8Array {
  const d = defaultTransportParameters();
  const p: TransportParameters = { ...d };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) (p as unknown as Record<string, unknown>)[k] = v;
  if (sender === 'client') {
    if (p.originalDestinationConnectionId || p.statelessResetToken || p.preferredAddress || p.retrySourceConnectionId) {
      throw new ConfigError('a client must not send original_destination_connection_id, stateless_reset_token, preferred_address or retry_source_connection_id');
    }
  }
  if (p.maxUdpPayloadSize < 1200) throw new ConfigError('max_udp_payload_size must be at least 1200');
  if (p.ackDelayExponent > 20) throw new ConfigError('ack_delay_exponent must be at most 20');
  if (p.maxAckDelay >= 16384) throw new ConfigError('max_ack_delay must be below 2^14 ms');
  if (p.activeConnectionIdLimit < 2) throw new ConfigError('active_connection_id_limit must be at least 2');
  if (p.initialMaxStreamsBidi > 2 ** 60 || p.initialMaxStreamsUni > 2 ** 60) throw new ConfigError('initial_max_streams must be at most 2^60');
  if (p.statelessResetToken && p.statelessResetToken.length !== 16) throw new ConfigError('stateless_reset_token must be 16 bytes');

  const parts: number[] = [];
  const chunks: Uint8Array[] = [];
  let size = 0;
  const put = (id: number, value: Uint8Array) => {
    parts.push(id);
    chunks.push(value);
    size += varintLength(id) + varintLength(value.length) + value.length;
  };
  const int = (id: number, v: number, def: number) => {
    if (v === def) return;
    const b = new Uint8Array(varintLength(v));
    writeVarint(b, 0, v);
    put(id, b);
  };
  const I = TransportParameterId;
  if (p.originalDestinationConnectionId) put(I.original_destination_connection_id, checkCid(p.originalDestinationConnectionId));
  int(I.max_idle_timeout, p.maxIdleTimeout, d.maxIdleTimeout);
  if (p.statelessResetToken) put(I.stateless_reset_token, p.statelessResetToken);
  int(I.max_udp_payload_size, p.maxUdpPayloadSize, d.maxUdpPayloadSize);
  int(I.initial_max_data, p.initialMaxData, 0);
  int(I.initial_max_stream_data_bidi_local, p.initialMaxStreamDataBidiLocal, 0);
  int(I.initial_max_stream_data_bidi_remote, p.initialMaxStreamDataBidiRemote, 0);
  int(I.initial_max_stream_data_uni, p.initialMaxStreamDataUni, 0);
  int(I.initial_max_streams_bidi, p.initialMaxStreamsBidi, 0);
  int(I.initial_max_streams_uni, p.initialMaxStreamsUni, 0);
  int(I.ack_delay_exponent, p.ackDelayExponent, d.ackDelayExponent);
  int(I.max_ack_delay, p.maxAckDelay, d.maxAckDelay);
  if (p.disableActiveMigration) put(I.disable_active_migration, new Uint8Array(0));
  if (p.preferredAddress) put(I.preferred_address, encodePreferredAddress(p.preferredAddress));
  int(I.active_connection_id_limit, p.activeConnectionIdLimit, d.activeConnectionIdLimit);
  if (p.initialSourceConnectionId) put(I.initial_source_connection_id, checkCid(p.initialSourceConnectionId));
  if (p.retrySourceConnectionId) put(I.retry_source_connection_id, checkCid(p.retrySourceConnectionId));
  if (p.versionInformation) {
    const vi = p.versionInformation;
    const b = new Uint8Array(4 + 4 * vi.availableVersions.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, vi.chosenVersion >>> 0);
    vi.availableVersions.forEach((v, i) => dv.setUint32(4 + 4 * i, v >>> 0));
    put(I.version_information, b);
  }
  if (p.maxDatagramFrameSize !== null) {
    const b = new Uint8Array(varintLength(p.maxDatagramFrameSize));
    writeVarint(b, 0, p.maxDatagramFrameSize);
    put(I.max_datagram_frame_size, b);
  }
  if (p.greaseQuicBit) put(I.grease_quic_bit, new Uint8Array(0));
  if (options.greaseN !== undefined) put(31 * options.greaseN + 27, new Uint8Array(0));

  const out = new Uint8Array(size);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    o = writeVarint(out, o, parts[i]!);
    o = writeVarint(out, o, chunks[i]!.length);
    out.set(chunks[i]!, o);
    o += chunks[i]!.length;
  }
  return out;
}

function checkCid(c: Uint8Array): Uint8Array {
  if (c.length > 20) throw new ConfigError('connection IDs are at most 20 bytes');
  return c;
}

function encodePreferredAddress(a: PreferredAddress): Uint8Array {
  if (a.ipv4.length !== 4 || a.ipv6.length !== 16 || a.statelessResetToken.length !== 16) {
    throw new ConfigError('preferred_address needs a 4-byte IPv4, a 16-byte IPv6 address and a 16-byte token');
  }
  if (a.connectionId.length < 1 || a.connectionId.length > 20) {
    throw new ConfigError('preferred_address needs a connection ID of 1..20 bytes');
  }
  const b = new Uint8Array(41 + a.connectionId.length);
  b.set(a.ipv4, 0);
  b[4] = a.ipv4Port >> 8;
  b[5] = a.ipv4Port & 0xff;
  b.set(a.ipv6, 6);
  b[22] = a.ipv6Port >> 8;
  b[23] = a.ipv6Port & 0xff;
  b[24] = a.connectionId.length;
  b.set(a.connectionId, 25);
  b.set(a.statelessResetToken, 25 + a.connectionId.length);
  return b;
}
