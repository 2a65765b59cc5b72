/**
 * CRYPTO streams, one per encryption level (RFC 9000 §7.5, §19.6): handshake bytes received out of
 * order are reassembled in a bounded buffer (CRYPTO_BUFFER_EXCEEDED beyond it); handshake bytes to
 * send are pulled, retransmitted when lost and freed when acknowledged, like stream data but
 * without flow control or FIN.
 */
import { Assembler } from '../assembler.js';
import { TransportError } from '../errors.js';
import { SendStream, type StreamChunkOut } from './send.js';

/** Encryption levels that carry CRYPTO frames (0-RTT carries none). */
export const CryptoLevel = { initial: 0, handshake: 1, application: 2 } as const;
export type CryptoLevel = (typeof CryptoLevel)[keyof typeof CryptoLevel];

const FRAME_CRYPTO = 0x06;

export class CryptoStream {
  readonly recv: Assembler;
  readonly send: SendStream;

  /** @param maxBuffer how far beyond the read offset received data may reach (RFC 9000 §7.5 asks
   *  for at least 4096 bytes). Default 64 KiB. */
  constructor(readonly level: CryptoLevel, maxBuffer = 64 * 1024) {
    this.recv = new Assembler({ maxBuffer, bufferErrorCode: TransportError.CRYPTO_BUFFER_EXCEEDED, frameType: FRAME_CRYPTO });
    this.send = new SendStream(-1 - level, { initialMaxData: Infinity, maxBuffered: Infinity });
  }

  /** A CRYPTO frame arrived (data is copied). Throws CRYPTO_BUFFER_EXCEEDED / PROTOCOL_VIOLATION. */
  onCryptoFrame(offset: number, data: Uint8Array): void {
    this.recv.insert(offset, data);
  }

  /** All contiguous handshake bytes received so far (for the TLS core), or null. */
  read(): Uint8Array | null {
    return this.recv.readAll();
  }

  /** Queues handshake bytes to send. */
  write(data: Uint8Array): void {
    this.send.write(data);
  }

  /** Next CRYPTO frame range (retransmissions first); copy bytes with {@link copy}. */
  nextChunk(maxLen: number, out: StreamChunkOut): boolean {
    return this.send.nextChunk(maxLen, Infinity, out);
  }

  hasPending(): boolean {
    return this.send.hasPending();
  }

  copy(offset: number, length: number, dst: Uint8Array, at: number): void {
    this.send.copy(offset, length, dst, at);
  }

  onAcked(offset: number, length: number): void {
    this.send.onAcked(offset, length, false);
  }

  onLost(offset: number, length: number): void {
    this.send.onLost(offset, length, false);
  }
}

/** The CRYPTO streams of a connection, indexed by {@link CryptoLevel}. */
export class CryptoStreams {
  readonly levels: [CryptoStream, CryptoStream, CryptoStream];
  constructor(maxBuffer = 64 * 1024) {
    this.levels = [
      new CryptoStream(CryptoLevel.initial, maxBuffer),
      new CryptoStream(CryptoLevel.handshake, maxBuffer),
      new CryptoStream(CryptoLevel.application, maxBuffer),
    ];
  }
  get(level: CryptoLevel): CryptoStream {
    return this.levels[level];
  }

  /** The level's keys are gone (RFC 9001 §4.9): an empty stream replaces its buffered bytes. */
  discard(level: 0 | 1): void {
    this.levels[level] = new CryptoStream(level, 0);
  }
}
