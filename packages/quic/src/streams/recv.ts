/**
 * The receiving part of a stream (RFC 9000 §2, §3.2, §4.5): reassembly, final size rules
 * (FINAL_SIZE_ERROR), stream flow control (FLOW_CONTROL_ERROR), RESET_STREAM, STOP_SENDING and the
 * read API. Connection-level flow control is the caller's: every frame returns how much the
 * highest received offset grew, and {@link RecvStream.takeReleased} how many bytes were consumed.
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from '../errors.js';
import { Assembler, MAX_STREAM_OFFSET, type SegmentBudget } from '../assembler.js';
import { RecvWindow } from '../flow.js';

export const RecvState = {
  recv: 'recv',
  sizeKnown: 'sizeKnown',
  dataRecvd: 'dataRecvd',
  resetRecvd: 'resetRecvd',
  dataRead: 'dataRead',
  resetRead: 'resetRead',
} as const;
export type RecvState = (typeof RecvState)[keyof typeof RecvState];

const FRAME_STREAM = 0x08;
const FRAME_RESET_STREAM = 0x04;

export interface RecvStreamOptions {
  /** Initial stream receive window (our initial_max_stream_data_*). */
  window: number;
  /** Auto-tuning bound (default = window). */
  maxWindow?: number;
  /** Out-of-order segment budget shared by the connection's streams (see AssemblerOptions.budget). */
  budget?: SegmentBudget;
}

export class RecvStream {
  state: RecvState = RecvState.recv;
  readonly flow: RecvWindow;
  private readonly asm: Assembler;
  /** Highest offset received (counted against flow control). */
  highest = 0;
  finalSize = -1;
  /** The peer's RESET_STREAM code, -1 if none. */
  resetCode = -1;
  /** Our STOP_SENDING code, -1 if not requested. */
  stopSendingCode = -1;
  private stopSendingPending = false;
  private consumed = 0;
  private released = 0;

  constructor(readonly id: number, opts: RecvStreamOptions) {
    this.asm = new Assembler({ checkConsistency: true, frameType: FRAME_STREAM, budget: opts.budget });
    this.flow = new RecvWindow({ window: opts.window, maxWindow: opts.maxWindow, frameType: FRAME_STREAM });
  }

  private get discarding(): boolean {
    return this.stopSendingCode >= 0 || this.state === RecvState.resetRecvd || this.state === RecvState.resetRead;
  }

  /**
   * A STREAM frame. Returns the growth of the highest received offset (to add to the
   * connection-level flow control). Throws FINAL_SIZE_ERROR, FLOW_CONTROL_ERROR,
   * FRAME_ENCODING_ERROR or PROTOCOL_VIOLATION (inconsistent data) without changing state.
   */
  onStreamFrame(offset: number, data: Uint8Array, fin: boolean, frameType = FRAME_STREAM): number {
    const end = offset + data.length;
    if (end > MAX_STREAM_OFFSET) {
      throw new ProtocolViolation('quic', TransportError.FRAME_ENCODING_ERROR, `stream ${this.id}: offset ${end} beyond 2^62-1`, frameType);
    }
    this.checkFinalSize(end, fin, frameType);
    this.flow.check(end, frameType);
    if (!this.discarding && this.state !== RecvState.dataRead) this.asm.insert(offset, data);
    const delta = end > this.highest ? end - this.highest : 0;
    this.highest += delta;
    this.flow.onReceived(end, frameType);
    if (fin && this.finalSize < 0) {
      this.finalSize = end;
      if (this.state === RecvState.recv) this.state = RecvState.sizeKnown;
      this.flow.stop(); // no more MAX_STREAM_DATA needed (§3.2 Size Known)
    }
    if (this.discarding) this.consumed = this.highest;
    else if (this.state === RecvState.sizeKnown && this.asm.readOffset + this.asm.readable === this.finalSize) {
      this.state = RecvState.dataRecvd;
    }
    return delta;
  }

  private checkFinalSize(end: number, fin: boolean, frameType: number): void {
    if (this.finalSize >= 0) {
      if (end > this.finalSize || (fin && end !== this.finalSize)) {
        throw new ProtocolViolation(
          'quic',
          TransportError.FINAL_SIZE_ERROR,
          `stream ${this.id}: data up to ${end}${fin ? ' with FIN' : ''} after final size ${this.finalSize}`,
          frameType,
        );
      }
    } else if (fin && end < this.highest) {
      throw new ProtocolViolation('quic', TransportError.FINAL_SIZE_ERROR, `stream ${this.id}: final size ${end} below data received up to ${this.highest}`, frameType);
    }
  }

  /** RESET_STREAM (§3.2, §4.5). Returns the growth of the highest received offset. */
  onResetStream(code: number, finalSize: number): number {
    this.checkFinalSize(finalSize, true, FRAME_RESET_STREAM);
    this.flow.check(finalSize, FRAME_RESET_STREAM);
    if (this.state === RecvState.resetRecvd || this.state === RecvState.resetRead) return 0;
    const delta = finalSize > this.highest ? finalSize - this.highest : 0;
    this.highest = finalSize;
    this.finalSize = finalSize;
    this.flow.onReceived(finalSize, FRAME_RESET_STREAM);
    if (this.state === RecvState.dataRead) return delta; // everything was read already: nothing to interrupt
    this.resetCode = code;
    this.state = RecvState.resetRecvd;
    this.asm.discard();
    this.consumed = this.highest;
    this.flow.stop();
    return delta;
  }

  /**
   * Reads up to `max` bytes (a view; valid until the next call), or null if nothing is readable.
   * `now` and `srtt` feed flow-control auto-tuning.
   */
  read(max = Infinity, now = 0, srtt = 0): Uint8Array | null {
    if (this.state === RecvState.resetRecvd) {
      this.state = RecvState.resetRead;
      return null;
    }
    if (this.discarding) return null;
    const c = this.asm.read(max);
    if (!c) {
      // The FIN may arrive after every byte was read already: reading nothing then ends the stream.
      if (this.finalSize >= 0 && this.asm.readOffset === this.finalSize) this.state = RecvState.dataRead;
      return null;
    }
    this.consumed += c.length;
    this.flow.onConsumed(c.length, now, srtt);
    if (this.finalSize >= 0 && this.asm.readOffset === this.finalSize) this.state = RecvState.dataRead;
    return c;
  }

  /** Bytes readable now. */
  get readable(): number {
    return this.discarding ? 0 : this.asm.readable;
  }

  /** All data up to the FIN was read. */
  get isFinished(): boolean {
    return this.state === RecvState.dataRead;
  }

  /** The peer reset the stream (RESET_STREAM received). */
  get isReset(): boolean {
    return this.state === RecvState.resetRecvd || this.state === RecvState.resetRead;
  }

  /** Terminal for stream-limit accounting: all data read, or the peer reset the stream (its data
   *  is gone; the reset is reported to the application as an event), or we asked it to stop
   *  sending and its final size is known. */
  get isClosed(): boolean {
    return this.state === RecvState.dataRead || this.isReset || (this.stopSendingCode >= 0 && this.finalSize >= 0);
  }

  /** Ask the peer to stop sending (STOP_SENDING, §3.5); buffered data is dropped. */
  /** Returns what is still buffered (the stream is being forgotten): frees its budget share. */
  dispose(): void {
    this.asm.discard();
  }

  stopSending(code: number): void {
    if (this.stopSendingCode >= 0 || this.isReset || this.state === RecvState.dataRead) return;
    this.stopSendingCode = code;
    // In Data Recvd everything has arrived and the peer sends nothing more: no frame is needed
    // (§3.5), but the unread data is still dropped, its bytes go back to the connection window
    // and the stream counts as closed (its stream credit comes back).
    this.stopSendingPending = this.state !== RecvState.dataRecvd;
    this.asm.discard();
    this.consumed = this.highest;
    this.flow.stop();
  }

  get wantsStopSending(): boolean {
    return this.stopSendingPending && this.state !== RecvState.resetRecvd && this.state !== RecvState.resetRead && this.finalSize < 0;
  }
  onStopSendingSent(): void {
    this.stopSendingPending = false;
  }
  onStopSendingLost(): void {
    if (this.stopSendingCode >= 0) this.stopSendingPending = true;
  }

  /** Bytes consumed (read or discarded) since the last call: return them to the connection window. */
  takeReleased(): number {
    const n = this.consumed - this.released;
    this.released = this.consumed;
    return n;
  }

  /** A MAX_STREAM_DATA limit to send, or -1. */
  pollMaxStreamData(now: number): number {
    return this.flow.pollUpdate(now);
  }
}
