/**
 * The contract of the TLS 1.3 handshake core, as consumed by QUIC (RFC 9001: handshake bytes per
 * encryption level, secrets out, no records) and by the TCP record layer. Both TlsClient and
 * TlsServer implement {@link TlsSession}. Sans-I/O: no sockets, no timers, no clock reads (the
 * current time comes in through config `now()` for ticket ages and certificate validity).
 */
import type { AeadAlg, CryptoProvider, HashAlg, NamedGroup, SignatureScheme } from '../crypto/provider.js';
import type { ProtocolViolation } from '../errors.js';

export type CipherSuite = 'TLS_AES_128_GCM_SHA256' | 'TLS_AES_256_GCM_SHA384' | 'TLS_CHACHA20_POLY1305_SHA256';

export const CipherSuites: Record<CipherSuite, { code: number; aead: AeadAlg; hash: HashAlg }> = {
  TLS_AES_128_GCM_SHA256: { code: 0x1301, aead: 'aes-128-gcm', hash: 'sha256' },
  TLS_AES_256_GCM_SHA384: { code: 0x1302, aead: 'aes-256-gcm', hash: 'sha384' },
  TLS_CHACHA20_POLY1305_SHA256: { code: 0x1303, aead: 'chacha20-poly1305', hash: 'sha256' },
};

/**
 * Encryption levels (RFC 9001 §4): QUIC maps them to packet types; the record layer to keys.
 * 'early' is 0-RTT (client write / server read only).
 */
export type EncryptionLevel = 'initial' | 'early' | 'handshake' | 'application';

export type Direction = 'read' | 'write';

/** What a finished handshake negotiated. */
export interface HandshakeInfo {
  version: 'TLSv1.3';
  suite: CipherSuite;
  /** Key exchange group; null for a PSK-only (psk_ke) resumption. */
  group: NamedGroup | null;
  /** Scheme of the server's CertificateVerify (null when resumed). */
  signatureScheme: SignatureScheme | null;
  alpn: string | null;
  serverName: string | null;
  /** DER, leaf first. Empty when resumed or when the peer sent none. */
  peerCertificates: Uint8Array[];
  resumed: boolean;
  earlyDataAccepted: boolean;
  helloRetry: boolean;
  /** QUIC: the peer's quic_transport_parameters extension body (opaque to TLS). */
  peerTransportParameters: Uint8Array | null;
}

/** A resumption ticket kept by a client (opaque to applications; serializable). */
export interface SessionTicket {
  serverName: string;
  suite: CipherSuite;
  ticket: Uint8Array;
  /** The resumption PSK derived for this ticket (RFC 8446 §4.6.1). */
  psk: Uint8Array;
  ageAdd: number;
  /** Milliseconds since the epoch (from config now()) when it was received. */
  receivedAt: number;
  lifetimeSeconds: number;
  maxEarlyData: number;
  alpn: string | null;
  /** QUIC: server transport parameters remembered for 0-RTT (RFC 9000 §7.4.1). */
  transportParameters: Uint8Array | null;
}

export type TlsEvent =
  /** Handshake-message bytes to send at `level` (QUIC: CRYPTO frames; TCP: handshake records). */
  | { type: 'send'; level: EncryptionLevel; data: Uint8Array }
  /** A new traffic secret. QUIC derives packet keys from it; the record layer, record keys. */
  | { type: 'secret'; level: Exclude<EncryptionLevel, 'initial'>; direction: Direction; suite: CipherSuite; secret: Uint8Array }
  /**
   * Server: whether it accepts the client's 0-RTT. Client: whether the server accepted it (after EncryptedExtensions).
   * Server only, `maxEarlyData`: accepted → the max_early_data_size of the accepted ticket, the most
   * 0-RTT application data the server may receive (RFC 8446 §4.2.10; the record layer's limit);
   * rejected → the most the client may have been allowed to send (what the server skips).
   */
  | { type: 'earlyData'; accepted: boolean; maxEarlyData?: number }
  /** The handshake finished (client: after sending Finished; server: after verifying the client's Finished). */
  | { type: 'handshakeComplete'; info: HandshakeInfo }
  /** Client: a NewSessionTicket arrived, ready for resumption. */
  | { type: 'sessionTicket'; ticket: SessionTicket }
  /**
   * A fatal error. `alert` is what to send (TCP: an alert record; QUIC: CONNECTION_CLOSE with
   * CRYPTO_ERROR 0x100 + alert). After this event the session accepts no more input.
   * `remote` is true if the peer sent the alert (TCP only).
   * If `error.layer` is 'quic' (a QUIC rule checked by TLS, e.g. RFC 9001 §4.6.1 / §8.4), QUIC closes
   * with that transport error code (PROTOCOL_VIOLATION) instead of CRYPTO_ERROR; `alert` is then illegal_parameter.
   */
  | { type: 'alert'; alert: number; remote: boolean; error: ProtocolViolation };

export interface TlsSession {
  readonly role: 'client' | 'server';
  /** Client: builds the ClientHello (poll for it). Server: nothing. Call once. */
  start(): void;
  /** Feeds handshake-message bytes received at `level` (may be fragmented arbitrarily). Never throws. */
  receive(level: EncryptionLevel, data: Uint8Array): void;
  /** Next event, or undefined when there is nothing to do until more input arrives (or `pending` settles). */
  poll(): TlsEvent | undefined;
  /**
   * Non-null while the server waits for an asynchronous config resolver (or certificate
   * verification): await it, then poll() again. Never rejects.
   */
  readonly pending: Promise<void> | null;
  readonly handshakeComplete: boolean;
  /** The negotiated parameters once known (complete after 'handshakeComplete'). */
  readonly info: Partial<HandshakeInfo>;
  /**
   * TCP mode only: send a KeyUpdate (RFC 8446 §4.6.3) and switch the write key; with
   * `requestPeer` the peer is asked to update too. Emits 'send' then 'secret' (application/write).
   */
  updateKeys(requestPeer: boolean): void;
  /**
   * TLS-Exporter(label, context, length) (RFC 8446 §7.5) from exporter_master_secret; throws until
   * the handshake completed. Without `context` the result equals that of an empty context (§7.5).
   */
  exportKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array;
  /** The same from early_exporter_master_secret: only with 0-RTT (client: offered and not rejected; server: accepted). */
  exportEarlyKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array;
  /** Our Finished verify_data (RFC 8446 §4.4.4) once sent, else null. */
  readonly finished: Uint8Array | null;
  /** The peer's Finished verify_data once verified, else null. */
  readonly peerFinished: Uint8Array | null;
}

/** A certificate chain presented by a peer, checked by the configured verifier. */
export interface CertificateVerifier {
  /**
   * Server certificates: `chain` is DER, leaf first, as received; `serverName` is the name the
   * client asked for (DNS name or IP literal) or null. Returns null if acceptable, or the error
   * (a ProtocolViolation with the alert to send: bad_certificate, certificate_expired, unknown_ca, ...).
   */
  verifyServer(chain: Uint8Array[], serverName: string | null, nowMs: number, provider: CryptoProvider): ProtocolViolation | null;
  /** Client certificates (server side). */
  verifyClient(chain: Uint8Array[], nowMs: number, provider: CryptoProvider): ProtocolViolation | null;
}

/** Key log lines in SSLKEYLOGFILE (NSS) format: `LABEL <client_random hex> <secret hex>`. */
export type KeyLogger = (line: string) => void;
