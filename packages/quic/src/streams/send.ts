/**
 * The sending part of a stream (RFC 9000 §2, §3.1): a send buffer the application writes into and
 * the packetizer pulls (offset, length, fin) ranges from. Lost ranges are retransmitted first;
 * acknowledged data is freed; buffered bytes are bounded (backpressure); RESET_STREAM.
 *
 * Pulling is allocation-free: `nextChunk(maxLen, connCredit, out)` fills a reusable
 * {@link StreamChunkOut}, then `copy(offset, length, dst, at)` copies the bytes into the packet.
 */
import { ConfigError } from '@petrel/tls-core';
import { SendCredit } from '../flow.js';
import { RangeSet } from './ranges.js';

export const SendState = {
  ready: 'ready',
  send: 'send',
  dataSent: 'dataSent',
  dataRecvd: 'dataRecvd',
  resetSent: 'resetSent',
  resetRecvd: 'resetRecvd',
} as const;
export type SendState = (typeof SendState)[keyof typeof SendState];

/** One STREAM frame's worth of data to send. Reused between calls. */
export interface StreamChunkOut {
  offset: number;
  length: number;
  fin: boolean;
  /** A retransmission: does not consume connection flow-control credit. */
  retransmit: boolean;
}

export function newStreamChunkOut(): StreamChunkOut {
  return { offset: 0, length: 0, fin: false, retransmit: false };
}

export interface SendStreamOptions {
  /** The peer's initial MAX_STREAM_DATA for this stream. */
  initialMaxData: number;
  /** Bound on written-but-unacknowledged bytes (default 1 MiB). */
  maxBuffered?: number;
}

export class SendStream {
  state: SendState = SendState.ready;
  readonly credit: SendCredit;
  readonly maxBuffered: number;
  /** Bytes written by the application. */
  writeOffset = 0;
  /** Next byte never sent. */
  sentOffset = 0;
  /** Everything below is acknowledged and freed. */
  ackedPrefix = 0;
  finished = false;
  private finSent = false;
  private finAcked = false;
  private finLost = false;
  /** RESET_STREAM: our error code and final size, -1 when not reset. */
  resetCode = -1;
  finalSize = -1;
  private resetPending = false;
  private writeBlocked = false;

  private chunks: Uint8Array[] = [];
  private chunkStart: number[] = [];
  private head = 0;
  private readonly acked = new RangeSet();
  private readonly lost = new RangeSet();

  constructor(readonly id: number, opts: SendStreamOptions) {
    this.credit = new SendCredit(opts.initialMaxData);
    this.maxBuffered = opts.maxBuffered ?? 1 << 20;
  }

  /** Written but not yet acknowledged bytes. */
  get buffered(): number {
    return this.writeOffset - this.ackedPrefix;
  }

  get writable(): boolean {
    return !this.finished && this.resetCode < 0 && this.buffered < this.maxBuffered;
  }

  get isReset(): boolean {
    return this.state === SendState.resetSent || this.state === SendState.resetRecvd;
  }

  /** Terminal state reached (all data or the reset acknowledged). */
  get isClosed(): boolean {
    return this.state === SendState.dataRecvd || this.state === SendState.resetRecvd;
  }

  /**
   * Queues `data` (copied); returns how many bytes were accepted (less than `data.length` when
   * the buffer is full: wait for {@link pollWritable}).
   */
  write(data: Uint8Array): number {
    if (this.finished) throw new ConfigError(`stream ${this.id}: write after finish()`);
    if (this.isReset) throw new ConfigError(`stream ${this.id}: write after the stream was reset (code ${this.resetCode})`);
    const room = Math.max(0, this.maxBuffered - this.buffered);
    const n = Math.min(room, data.length);
    if (n < data.length) this.writeBlocked = true;
    if (n === 0) return 0;
    this.chunks.push(data.slice(0, n));
    this.chunkStart.push(this.writeOffset);
    this.writeOffset += n;
    return n;
  }

  /** No more data: a FIN goes out after the last byte. */
  finish(): void {
    if (this.isReset) return;
    this.finished = true;
  }

  /** True once after a short write when the buffer has room again (the `streamWritable` event). */
  pollWritable(): boolean {
    if (!this.writeBlocked || this.isReset) return false;
    if (this.buffered >= this.maxBuffered) return false;
    this.writeBlocked = false;
    return true;
  }

  /** The peer's MAX_STREAM_DATA. Returns true if new credit appeared. */
  onMaxStreamData(max: number): boolean {
    return this.credit.update(max);
  }

  /** Something is ready to go (retransmission, new data within `connCredit`, or a FIN). Notes
   *  STREAM_DATA_BLOCKED when unsent data waits for stream credit. */
  hasPending(connCredit = Infinity): boolean {
    if (this.isReset) return false;
    if (!this.lost.isEmpty) return true;
    if (this.sentOffset < this.writeOffset) {
      if (this.credit.available() === 0) this.credit.setBlocked();
      else if (connCredit > 0) return true;
      return false;
    }
    return this.finished && !this.finAcked && (!this.finSent || this.finLost) && this.sentOffset === this.writeOffset;
  }

  /**
   * Next range to put in a STREAM frame: at most `maxLen` bytes; new data also limited by the
   * stream credit and `connCredit`. Returns false if nothing can be sent. New data is consumed from
   * the stream credit; the caller consumes `out.length` connection credit when `!out.retransmit`.
   */
  nextChunk(maxLen: number, connCredit: number, out: StreamChunkOut): boolean {
    if (this.isReset) return false;
    if (!this.lost.isEmpty && maxLen > 0) {
      const s = this.lost.start(0);
      const len = Math.min(this.lost.end(0) - s, maxLen);
      this.lost.subtract(s, s + len);
      out.offset = s;
      out.length = len;
      out.retransmit = true;
      out.fin = this.finished && !this.finAcked && s + len === this.writeOffset;
      if (out.fin) {
        this.finSent = true;
        this.finLost = false;
      }
      return true;
    }
    if (this.sentOffset < this.writeOffset) {
      const credit = this.credit.available();
      const n = Math.min(this.writeOffset - this.sentOffset, credit, connCredit, maxLen);
      if (credit === 0) this.credit.setBlocked();
      if (n > 0) {
        out.offset = this.sentOffset;
        out.length = n;
        out.retransmit = false;
        this.sentOffset += n;
        this.credit.consume(n);
        out.fin = this.finished && this.sentOffset === this.writeOffset;
        if (out.fin) this.finSent = true;
        this.state = out.fin ? SendState.dataSent : SendState.send;
        return true;
      }
      return false;
    }
    if (this.finished && !this.finAcked && (!this.finSent || this.finLost)) {
      out.offset = this.writeOffset;
      out.length = 0;
      out.fin = true;
      out.retransmit = this.finSent;
      this.finSent = true;
      this.finLost = false;
      this.state = SendState.dataSent;
      return true;
    }
    return false;
  }

  /**
   * 0-RTT was rejected (RFC 9001 §4.6.2): none of what was sent reached the peer. Everything goes
   * out again as new data, under `limit` (the stream credit of the peer's new transport
   * parameters), and counts against the new connection credit as it does.
   */
  restartAfterZeroRttRejected(limit: number): void {
    this.credit.restart(limit);
    this.sentOffset = this.ackedPrefix;
    this.lost.clear();
    this.finSent = false;
    this.finLost = false;
    if (this.state === SendState.send || this.state === SendState.dataSent) this.state = SendState.ready;
  }

  /** Copies stream bytes [offset, offset + length) into `dst` at `at`. */
  copy(offset: number, length: number, dst: Uint8Array, at: number): void {
    if (offset < this.ackedPrefix || offset + length > this.writeOffset) {
      throw new RangeError(`stream ${this.id}: bytes ${offset}+${length} not buffered`);
    }
    // Last chunk starting at or before `offset`.
    let a = this.head, b = this.chunks.length - 1;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (this.chunkStart[m]! <= offset) a = m;
      else b = m - 1;
    }
    let i = a;
    let o = offset;
    let left = length;
    while (left > 0) {
      const c = this.chunks[i]!;
      const from = o - this.chunkStart[i]!;
      const n = Math.min(c.length - from, left);
      dst.set(c.subarray(from, from + n), at);
      at += n;
      o += n;
      left -= n;
      i++;
    }
  }

  /** A STREAM frame (offset, length, fin) was acknowledged. */
  onAcked(offset: number, length: number, fin: boolean): void {
    if (this.isReset) return;
    const end = offset + length;
    if (length > 0 && offset <= this.ackedPrefix && this.acked.isEmpty) {
      // In-order fast path: the acknowledged prefix just grows.
      if (end > this.ackedPrefix) {
        this.ackedPrefix = end;
        if (!this.lost.isEmpty) this.lost.subtract(offset, end);
        this.free();
      }
    } else if (length > 0) {
      this.acked.add(offset, end);
      this.lost.subtract(offset, end);
      if (!this.acked.isEmpty && this.acked.start(0) <= this.ackedPrefix) {
        this.ackedPrefix = this.acked.end(0);
        this.acked.dropBelow(this.ackedPrefix);
        this.free();
      }
    }
    if (fin) {
      this.finAcked = true;
      this.finLost = false;
    }
    if (this.finished && this.finAcked && this.ackedPrefix === this.writeOffset) {
      this.state = SendState.dataRecvd;
      this.chunks = [];
      this.chunkStart = [];
      this.head = 0;
    }
  }

  /** A STREAM frame (offset, length, fin) was lost: queue what is not acknowledged for retransmission. */
  onLost(offset: number, length: number, fin: boolean): void {
    if (this.isReset || this.state === SendState.dataRecvd) return;
    const start = Math.max(offset, this.ackedPrefix);
    const end = offset + length;
    if (end > start) {
      this.lost.add(start, end);
      for (let i = 0; i < this.acked.count; i++) {
        const s = this.acked.start(i);
        if (s >= end) break;
        const e = this.acked.end(i);
        if (e > start) this.lost.subtract(s, e);
      }
    }
    if (fin && !this.finAcked) this.finLost = true;
  }

  /**
   * Abandons the stream with RESET_STREAM (local decision or the peer's STOP_SENDING, §3.5).
   * Returns false if it is already reset or all data was acknowledged.
   */
  reset(code: number): boolean {
    if (this.isReset || this.state === SendState.dataRecvd) return false;
    this.resetCode = code;
    this.finalSize = this.sentOffset;
    this.state = SendState.resetSent;
    this.resetPending = true;
    this.chunks = [];
    this.chunkStart = [];
    this.head = 0;
    this.acked.clear();
    this.lost.clear();
    return true;
  }

  /** A RESET_STREAM frame (code `resetCode`, size `finalSize`) should be sent now. */
  get wantsReset(): boolean {
    return this.resetPending;
  }
  onResetSent(): void {
    this.resetPending = false;
  }
  onResetLost(): void {
    if (this.state === SendState.resetSent) this.resetPending = true;
  }
  onResetAcked(): void {
    if (this.state === SendState.resetSent) this.state = SendState.resetRecvd;
  }

  private free(): void {
    while (this.head < this.chunks.length) {
      const end = this.chunkStart[this.head]! + this.chunks[this.head]!.length;
      if (end > this.ackedPrefix) break;
      this.chunks[this.head] = EMPTY;
      this.head++;
    }
    if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.chunkStart.splice(0, this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
