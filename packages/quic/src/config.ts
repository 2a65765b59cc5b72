/**
 * Configuration of QUIC connections and endpoints. Validated at construction: a wrong value throws
 * ConfigError with a message that says what to fix.
 */
import type { CryptoProvider, SessionTicket, TlsClientConfig, TlsServerConfig } from '@petrel/tls-core';
import type { CongestionAlgorithm } from './congestion/index.js';
import type { Address } from './api.js';

/** Transport settings shared by both roles (our side of the transport parameters, limits). */
export interface TransportConfig {
  /** Idle timeout in ms (max_idle_timeout). Default 30 000. 0 disables. */
  maxIdleTimeout?: number;
  /** Connection-level receive window (initial_max_data). Default 1 MiB, auto-tuned up to maxConnectionWindow. */
  connectionWindow?: number;
  maxConnectionWindow?: number;
  /** Per-stream receive window. Default 256 KiB, auto-tuned up to maxStreamWindow. */
  streamWindow?: number;
  maxStreamWindow?: number;
  /** Streams the peer may open concurrently. Defaults 100 bidi / 100 uni. */
  maxStreamsBidi?: number;
  maxStreamsUni?: number;
  /** Bound on unacknowledged bytes buffered per send stream. Default 1 MiB. */
  sendBufferSize?: number;
  /** Largest UDP payload we send after the handshake (capped by the peer's max_udp_payload_size). Default 1452. */
  maxUdpPayloadSize?: number;
  /** Our max_ack_delay (ms). Default 25. */
  maxAckDelay?: number;
  /** ack_delay_exponent. Default 3. */
  ackDelayExponent?: number;
  /** active_connection_id_limit. Default 4. */
  activeConnectionIdLimit?: number;
  /** RFC 9221 max_datagram_frame_size; 0 disables DATAGRAM frames. Default 0. */
  maxDatagramFrameSize?: number;
  /** Congestion controller. Default 'cubic'. */
  congestionControl?: CongestionAlgorithm;
  /** Initial RTT estimate in ms (RFC 9002 §6.2.2). Default 333. */
  initialRtt?: number;
  /** Bound on the CRYPTO reassembly buffer per level (CRYPTO_BUFFER_EXCEEDED beyond). Default 64 KiB. */
  maxCryptoBuffer?: number;
  /** Disable active migration (disable_active_migration). Default false. */
  disableActiveMigration?: boolean;
  /**
   * Out-of-order STREAM segments buffered across all streams of a connection (resource limit; each
   * costs up to ~300 bytes of heap for a one-byte frame). PROTOCOL_VIOLATION beyond. Default 16,384
   * (streams/manager.ts DEFAULT_MAX_REASSEMBLY_SEGMENTS).
   */
  maxReassemblySegments?: number;
  /**
   * Keep-alive: after this many ms without sending an ack-eliciting packet, an established
   * connection sends a PING (it elicits an ACK, so both idle timers restart and NAT mappings stay
   * fresh; a receiver whose NAT mapping changed is heard from again). 0 (default) disables; must
   * be below the idle timeout.
   */
  keepAliveInterval?: number;
  /** Receive-side ACK range memory (resource limit). Default 64. */
  maxAckRanges?: number;
  /** Called with qlog events (JSON-SEQ records are made by the driver). */
  qlog?: (event: QlogEvent) => void;
}

/** A qlog event (draft-ietf-quic-qlog-quic-events) without the time, which the driver adds. */
export interface QlogEvent {
  time: number;
  name: string;
  data: Record<string, unknown>;
}

export interface ClientConnectionConfig extends TransportConfig {
  provider: CryptoProvider;
  /** TLS settings (serverName, alpn, verifier or insecureSkipVerify, ...). `provider` and `quic` are filled in. */
  tls: Omit<TlsClientConfig, 'provider' | 'quic'>;
  /** Version to start with. Default QUIC v1; `versions` lists what we accept (compatible version negotiation). */
  version?: number;
  versions?: number[];
  /** Resumption ticket (0-RTT when it allows early data and `earlyData` is true). */
  session?: SessionTicket;
  earlyData?: boolean;
  /** A NEW_TOKEN token from an earlier connection to this server (address validation). */
  token?: Uint8Array;
  /** Length of our connection IDs (0 or 4..20). Default 8. */
  cidLength?: number;
}

export interface ServerTransportConfig extends TransportConfig {
  provider: CryptoProvider;
  /** TLS server settings (identity/resolve, alpn, tickets, maxEarlyData, ...). `quic` is filled in per connection. */
  tls: Omit<TlsServerConfig, 'provider' | 'quic'>;
  /** Versions we accept, in preference order (compatible version negotiation picks the first the client supports). Default [v1, v2]. */
  versions?: number[];
  /** Length of our connection IDs (4..20). Default 8. */
  cidLength?: number;
}

/** What the Endpoint hands a new server-side Connection. */
export interface ServerConnectionParams {
  /** Client's address. */
  remote: Address;
  /** The version of the client's first Initial. */
  version: number;
  /** DCID of the client's first Initial (Initial keys derive from it). */
  initialDcid: Uint8Array;
  /** The client's SCID. */
  clientScid: Uint8Array;
  /** Our first CID (sequence 0). */
  localCid: Uint8Array;
  /** original_destination_connection_id: the client's very first DCID (before Retry). */
  originalDcid: Uint8Array;
  /** Set when the client's token came from our Retry: retry_source_connection_id. */
  retryScid: Uint8Array | null;
  /** The client's address was validated by a token (no anti-amplification limit). */
  addressValidated: boolean;
}

/** Endpoint services a Connection uses (CID issue/routing, reset tokens, NEW_TOKEN tokens). */
export interface ConnectionHost {
  /** A fresh random connection ID of the endpoint's length. */
  newCid(): Uint8Array;
  /** Stateless reset token for one of our CIDs. */
  resetToken(cid: Uint8Array): Uint8Array;
  /** A CID starts (true) or stops (false) routing to this connection. */
  cidChanged(cid: Uint8Array, added: boolean): void;
  /** Server: a NEW_TOKEN token for the client's IP. */
  newToken?(ip: string, now: number, version?: number): Uint8Array;
}
