/**
 * What HTTP/3 needs from QUIC (aioquic-style): events in, stream operations out. The QUIC
 * `Connection` is adapted onto this by a thin adapter (its pull-based `streamReadable` + `read(id)`
 * becomes `streamData` events); tests use {@link MemoryTransportPair}.
 */

export type TransportEvent =
  /** The handshake completed (ALPN h3 agreed). Informational for h3. */
  | { type: 'handshakeComplete' }
  /** The peer opened a stream (optional: the first `streamData` also announces it). */
  | { type: 'streamOpened'; id: number }
  /** Bytes received in order on a stream; `fin` marks the end (data may be empty then). */
  | { type: 'streamData'; id: number; data: Uint8Array; fin: boolean }
  /** The peer reset its sending part (RESET_STREAM). */
  | { type: 'streamReset'; id: number; code: number }
  /** The stream's send buffer drained below its limit after writes were queued (backpressure). */
  | { type: 'streamWritable'; id: number }
  /** The peer sent STOP_SENDING; the transport has already reset our sending part with `code`. */
  | { type: 'streamStopped'; id: number; code: number }
  /** The peer raised its stream limit (QUIC MAX_STREAMS): `openStream` may succeed again. */
  | { type: 'streamsAvailable'; bidi: boolean }
  /** A QUIC DATAGRAM frame (RFC 9221) was received. */
  | { type: 'datagram'; data: Uint8Array }
  /** The QUIC connection is closed (by either side). */
  | { type: 'closed'; code: number; reason: string; remote: boolean };

export interface H3Transport {
  /** True for the client side of the connection. */
  readonly isClient: boolean;
  /** Opens a locally initiated stream and returns its id; null when the peer's stream limit is reached. */
  openStream(bidi: boolean): number | null;
  /** Queues bytes on a stream; `fin` closes our sending part. */
  write(id: number, data: Uint8Array, fin: boolean): void;
  /** RESET_STREAM: abandon our sending part. */
  resetStream(id: number, code: number): void;
  /** STOP_SENDING: ask the peer to stop its sending part. */
  stopSending(id: number, code: number): void;
  /** Sends a QUIC DATAGRAM frame; false if unsupported, not negotiated or too large (optional). */
  sendDatagram?(data: Uint8Array): boolean;
  /** Bytes written but not yet accepted by the transport on this stream (optional: 0 if absent). */
  bufferedAmount?(id: number): number;
  /**
   * Stops delivering `streamData` for stream `id` until {@link resumeReading} (optional): the
   * transport leaves the bytes unread so its flow control holds the peer back.
   */
  pauseReading?(id: number): void;
  /** Delivers stream `id` again (optional; see {@link pauseReading}). */
  resumeReading?(id: number): void;
  /** Close the connection with an application error code (CONNECTION_CLOSE 0x1d). */
  close(code: number, reason: string): void;
}

/** RFC 9000 §2.1 stream id helpers. */
export const streamId = {
  isBidi: (id: number): boolean => (id & 2) === 0,
  isUni: (id: number): boolean => (id & 2) !== 0,
  isClientInitiated: (id: number): boolean => (id & 1) === 0,
  isServerInitiated: (id: number): boolean => (id & 1) === 1,
  /** Whether `id` was opened by the side whose role is `isClient`. */
  isLocal: (id: number, isClient: boolean): boolean => ((id & 1) === 0) === isClient,
  /** Client-initiated bidirectional (request streams). */
  isRequest: (id: number): boolean => (id & 3) === 0,
};
