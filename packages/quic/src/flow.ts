/**
 * Flow control (RFC 9000 §4), connection- or stream-level, both directions.
 *
 * - {@link SendCredit}: the peer's limit on what we send (MAX_DATA / MAX_STREAM_DATA); tells when
 *   we are blocked so DATA_BLOCKED / STREAM_DATA_BLOCKED can be sent once per limit.
 * - {@link RecvWindow}: our limit on what the peer sends; enforces it (FLOW_CONTROL_ERROR), decides
 *   when to send a new limit (when half the window has been consumed) and auto-tunes the window:
 *   when a window's worth is consumed in less than 2 RTT the window doubles, up to `maxWindow`.
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from './errors.js';

export class SendCredit {
  /** The peer's current limit (absolute offset / byte count). */
  limit: number;
  /** Bytes sent (counted against the limit). */
  used = 0;
  /** The limit at which we last reported being blocked (-1: none). */
  private blockedReported = -1;
  private blocked = false;

  constructor(initialLimit: number) {
    this.limit = initialLimit;
  }

  /**
   * 0-RTT was rejected (RFC 9001 §4.6.2): nothing sent under the remembered limit reached the
   * peer; start over with the limit of its new transport parameters (which may be lower).
   */
  restart(limit: number): void {
    this.limit = limit;
    this.used = 0;
    this.blocked = false;
    this.blockedReported = -1;
  }

  /** Bytes that may still be sent. */
  available(): number {
    return this.limit > this.used ? this.limit - this.used : 0;
  }

  /** Accounts `n` newly sent bytes (callers never exceed `available()`). */
  consume(n: number): void {
    this.used += n;
    if (this.used > this.limit) throw new RangeError(`flow control credit exceeded: ${this.used} > ${this.limit}`);
  }

  /** A MAX_DATA / MAX_STREAM_DATA (or transport parameter) arrived; limits never decrease (§4.1).
   *  Returns true if the limit increased. */
  update(limit: number): boolean {
    if (limit <= this.limit) return false;
    this.limit = limit;
    this.blocked = false;
    return true;
  }

  /** The sender had data to send but no credit: call this to request a *_BLOCKED frame. */
  setBlocked(): void {
    if (this.available() === 0) this.blocked = true;
  }

  /** The limit to put in a DATA_BLOCKED / STREAM_DATA_BLOCKED frame, or -1 if none is due
   *  (only once per limit value). Call {@link onBlockedSent} after sending it. */
  blockedFrameWanted(): number {
    return this.blocked && this.blockedReported !== this.limit ? this.limit : -1;
  }

  onBlockedSent(): void {
    this.blockedReported = this.limit;
  }

  /** The *_BLOCKED frame was lost: allow sending it again if still blocked at the same limit. */
  onBlockedLost(limit: number): void {
    if (this.blockedReported === limit) this.blockedReported = -1;
  }
}

export interface RecvWindowOptions {
  /** Initial window (bytes) = the initial limit advertised. */
  window: number;
  /** Upper bound for auto-tuning (default: = window, i.e. no auto-tuning). */
  maxWindow?: number;
  /** Frame type for errors (STREAM 0x08 by default; 0 for connection-level). */
  frameType?: number;
}

export class RecvWindow {
  /** Current window size. */
  window: number;
  readonly maxWindow: number;
  /** The limit advertised to the peer (absolute offset / total bytes). */
  limit: number;
  /** Highest offset / total bytes received (counted against the limit). */
  received = 0;
  /** Bytes consumed by the application (read). */
  consumed = 0;
  private frameType: number;
  /** When the last limit update was issued (ms), -1 if never. */
  private lastUpdate = -1;
  /** Set when a new limit should be advertised. */
  private updatePending = false;
  private resend = false;
  private stopped = false;

  constructor(opts: RecvWindowOptions) {
    this.window = opts.window;
    this.maxWindow = Math.max(opts.window, opts.maxWindow ?? opts.window);
    this.limit = opts.window;
    this.frameType = opts.frameType ?? 0x08;
  }

  /**
   * The peer's received total (stream: highest offset; connection: sum) rose to `total`.
   * Throws FLOW_CONTROL_ERROR past the advertised limit (RFC 9000 §4.1).
   */
  onReceived(total: number, frameType = this.frameType): void {
    if (total > this.limit) {
      throw new ProtocolViolation(
        'quic',
        TransportError.FLOW_CONTROL_ERROR,
        `flow control limit exceeded: ${total} > ${this.limit}`,
        frameType,
      );
    }
    if (total > this.received) this.received = total;
  }

  /** Checks `total` against the limit without recording it. */
  check(total: number, frameType = this.frameType): void {
    if (total > this.limit) {
      throw new ProtocolViolation('quic', TransportError.FLOW_CONTROL_ERROR, `flow control limit exceeded: ${total} > ${this.limit}`, frameType);
    }
  }

  /**
   * The application consumed `n` more bytes. Decides whether a new limit is due: when less than
   * half the window remains (§4.2 leaves the policy to us). Auto-tunes the window with `srtt`.
   */
  onConsumed(n: number, now: number, srtt: number): void {
    this.consumed += n;
    if (this.stopped || this.limit - this.consumed >= this.window / 2) return;
    // Auto-tuning: if the previous window was used up within 2 RTTs, the window limits throughput.
    if (this.lastUpdate >= 0 && now - this.lastUpdate < 2 * srtt && this.window < this.maxWindow) {
      this.window = Math.min(this.window * 2, this.maxWindow);
    }
    this.updatePending = true;
  }

  /** The new limit to advertise (MAX_DATA / MAX_STREAM_DATA), or -1 if none is due. Marks it sent. */
  pollUpdate(now: number): number {
    const next = this.consumed + this.window;
    if (this.updatePending && next > this.limit) {
      this.updatePending = false;
      this.resend = false;
      this.limit = next;
      this.lastUpdate = now;
      return next;
    }
    this.updatePending = false;
    if (this.resend) {
      this.resend = false;
      return this.limit;
    }
    return -1;
  }

  /** True if {@link pollUpdate} would return a limit. */
  get wantsUpdate(): boolean {
    return (this.updatePending && this.consumed + this.window > this.limit) || this.resend;
  }

  /** The frame carrying `limit` was lost: send the current limit again unless a newer one went out. */
  onUpdateLost(limit: number): void {
    if (limit === this.limit && !this.stopped) this.resend = true;
  }

  /** Stop sending updates (stream finished / reset). */
  stop(): void {
    this.stopped = true;
    this.updatePending = false;
    this.resend = false;
  }
}
