/**
 * The public, sans-I/O surface of a QUIC connection and endpoint (DESIGN.md "quic"; quinn-proto's
 * shape). Time is a number in milliseconds passed in by the caller; nothing inside reads a clock.
 */
import type { HandshakeInfo, SessionTicket } from '@petrel/tls-core';

/** A UDP peer address. `family` 4 or 6. */
export interface Address {
  address: string;
  port: number;
  family?: 4 | 6;
}

export function addressKey(a: Address): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export interface Transmit {
  datagram: Uint8Array;
  remote: Address;
}

/** Why a connection ended. */
export interface CloseInfo {
  /** QUIC transport error code, or the application's code when `application` is true. */
  code: number;
  frameType: number;
  reason: string;
  /** Application CONNECTION_CLOSE (0x1d) rather than transport (0x1c). */
  application: boolean;
  /** The peer closed (true), or we did (false). */
  remote: boolean;
  /** How it ended: a CONNECTION_CLOSE, the idle timeout, a stateless reset, or a failed handshake/version negotiation. */
  kind: 'close' | 'idle' | 'stateless-reset' | 'version-negotiation' | 'handshake-timeout';
}

export type ConnectionEvent =
  /** The handshake is complete (client: 1-RTT keys and the server's Finished; server: the client's Finished). */
  | { type: 'handshakeComplete'; info: HandshakeInfo }
  /** Server: the handshake is confirmed (HANDSHAKE_DONE sent); client: HANDSHAKE_DONE received. */
  | { type: 'handshakeConfirmed' }
  /** Client: whether the server accepted our 0-RTT data. Rejected 0-RTT stream data must be resent by the application. */
  | { type: 'earlyData'; accepted: boolean }
  /** The peer opened a stream. */
  | { type: 'streamOpened'; id: number; bidi: boolean }
  /** Data (or FIN) can be read from the stream. */
  | { type: 'streamReadable'; id: number }
  /** The stream's send buffer has room again after the application was told to wait. */
  | { type: 'streamWritable'; id: number }
  /** The peer reset its sending part (RESET_STREAM). */
  | { type: 'streamReset'; id: number; code: number; finalSize: number }
  /** The peer asked us to stop sending (STOP_SENDING); our sending part is reset with `code`. */
  | { type: 'streamStopped'; id: number; code: number }
  /** The peer raised its stream limit: more streams of this kind can be opened. */
  | { type: 'streamsAvailable'; bidi: boolean }
  /** An unreliable datagram (RFC 9221). */
  | { type: 'datagram'; data: Uint8Array }
  /** Client: a resumption ticket (with the server's transport parameters, for 0-RTT). */
  | { type: 'sessionTicket'; ticket: SessionTicket }
  /** Client: a NEW_TOKEN token for future connections to this server. */
  | { type: 'newToken'; token: Uint8Array }
  /** The path to the peer changed (migration or NAT rebinding, after validation). */
  | { type: 'pathChanged'; remote: Address }
  /** A key update happened (locally initiated or by the peer). */
  | { type: 'keyUpdate'; phase: number; initiatedBy: 'local' | 'peer' }
  /** The connection is closed (draining done or immediate). No more events follow. */
  | { type: 'closed'; info: CloseInfo }
  /** An internal error (a bug): the connection was closed with INTERNAL_ERROR. */
  | { type: 'error'; error: unknown };

/** Stream read result: data may be empty with fin true. null when nothing is available yet. */
export interface StreamChunk {
  data: Uint8Array;
  fin: boolean;
}

/**
 * One QUIC connection, sans-I/O. Implemented by `Connection` (connection.ts). Every method is safe
 * to call in any state; peer input never throws out of `receive` (it closes the connection with
 * the right code instead, and an internal bug closes with INTERNAL_ERROR and an 'error' event).
 */
export interface QuicConnection {
  readonly role: 'client' | 'server';
  /** Negotiated QUIC version (v1 0x00000001 or v2 0x6b3343cf). */
  readonly version: number;
  readonly remote: Address;
  readonly isClosed: boolean;
  readonly handshakeComplete: boolean;

  /** Feeds one UDP datagram received from `remote` at time `now` (ms). */
  receive(datagram: Uint8Array, remote: Address, now: number): void;
  /** Next datagram to send, or null (nothing to send now: poll again after input or a timeout). */
  pollTransmit(now: number): Transmit | null;
  /** Absolute time (ms) of the next timer, or null. */
  nextTimeout(): number | null;
  handleTimeout(now: number): void;
  pollEvent(): ConnectionEvent | undefined;

  /** Opens a locally-initiated stream; null when the peer's stream limit is reached (wait for 'streamsAvailable'). */
  openStream(bidi: boolean): number | null;
  /**
   * Queues bytes on a stream; returns how many were accepted (less than data.length when the send
   * buffer is full: wait for 'streamWritable'). `fin` applies only if all bytes were accepted.
   */
  write(id: number, data: Uint8Array, fin?: boolean): number;
  /** Reads up to `max` bytes in order; null when nothing is available now. */
  read(id: number, max?: number): StreamChunk | null;
  /** Abruptly ends our sending part (RESET_STREAM). */
  resetStream(id: number, code: number): void;
  /** Asks the peer to stop sending (STOP_SENDING). */
  stopSending(id: number, code: number): void;
  /** Sends an unreliable datagram (RFC 9221); false if not negotiated or too large. */
  sendDatagram(data: Uint8Array): boolean;
  /** Initiates a key update (RFC 9001 §6); false if not allowed yet. */
  updateKeys(): boolean;
  /** Client: moves to a new local path (active migration, RFC 9000 §9); the driver rebinds the socket. */
  migrate(now: number): boolean;
  /**
   * TLS exporter (RFC 8446 §7.5, which QUIC keeps: RFC 9001 §4) once the handshake is complete;
   * throws before. Optional: test doubles need not implement it.
   */
  exportKeyingMaterial?(label: string, length: number, context?: Uint8Array): Uint8Array;
  /** Closes with an application error code (CONNECTION_CLOSE 0x1d). */
  close(code: number, reason: string, now: number): void;
}
