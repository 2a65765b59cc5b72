/**
 * The congestion-controller interface (RFC 9002 §7) shared by NewReno and CUBIC, and the common
 * window / bytes-in-flight / recovery-period bookkeeping. Sizes in bytes, times in milliseconds.
 */
import type { RttEstimator } from '../rtt.js';

export interface CongestionOptions {
  /** Maximum datagram size (bytes). Default 1200. */
  maxDatagramSize?: number;
  /** Initial window; default min(10 × mds, max(14720, 2 × mds)) (RFC 9002 §7.2). */
  initialWindow?: number;
  /** Minimum window; default 2 × mds (RFC 9002 §7.2). */
  minimumWindow?: number;
}

export interface CongestionController {
  readonly name: string;
  /** Current congestion window (bytes). */
  readonly window: number;
  /** Slow-start threshold (bytes; Infinity until the first congestion event). */
  readonly ssthresh: number;
  readonly bytesInFlight: number;
  readonly inSlowStart: boolean;
  /**
   * The sender is application- or flow-control-limited (RFC 9002 §7.8): the window does not grow
   * while set. The Connection sets it when it had nothing to send while the window allowed more.
   */
  appLimited: boolean;
  maxDatagramSize: number;
  /** True if `bytes` more can be sent (bytes in flight + bytes ≤ window). */
  canSend(bytes: number): boolean;
  /** Room left in the window (bytes, ≥ 0). */
  available(): number;
  /** An in-flight packet was sent (RFC 9002 B.4). */
  onPacketSent(now: number, bytes: number): void;
  /** An in-flight packet was acknowledged (RFC 9002 B.5). */
  onPacketAcked(now: number, sentTime: number, bytes: number): void;
  /** In-flight packets were declared lost: remove them from bytes in flight. The congestion
   *  response is {@link onCongestionEvent}. */
  onPacketsLost(bytes: number): void;
  /** In-flight packets were discarded with their keys (§6.4) or 0-RTT rejection (no congestion signal). */
  onPacketsDiscarded(bytes: number): void;
  /** Loss or ECN-CE for a packet sent at `sentTime` (RFC 9002 B.6); ignored within a recovery period. */
  onCongestionEvent(now: number, sentTime: number): void;
  /** Persistent congestion (RFC 9002 §7.6.2): window to the minimum. */
  onPersistentCongestion(now: number): void;
  /** True if a packet sent at `sentTime` was sent before the current recovery period started. */
  inRecovery(sentTime: number): boolean;
}

/** Common state and rules; subclasses implement window growth and reduction. */
export abstract class BaseController implements CongestionController {
  abstract readonly name: string;
  cwnd: number;
  ssthresh = Infinity;
  bytesInFlight = 0;
  appLimited = false;
  maxDatagramSize: number;
  readonly minimumWindow: number;
  /** Start of the current recovery period (ms); -1 if none (RFC 9002 B.2 congestion_recovery_start_time). */
  recoveryStartTime = -1;

  constructor(protected readonly rtt: RttEstimator, opts: CongestionOptions = {}) {
    const mds = opts.maxDatagramSize ?? 1200;
    this.maxDatagramSize = mds;
    this.cwnd = opts.initialWindow ?? Math.min(10 * mds, Math.max(14720, 2 * mds));
    this.minimumWindow = opts.minimumWindow ?? 2 * mds;
  }

  get window(): number {
    return Math.floor(this.cwnd);
  }

  get inSlowStart(): boolean {
    return this.cwnd < this.ssthresh;
  }

  canSend(bytes: number): boolean {
    return this.bytesInFlight + bytes <= this.window;
  }

  available(): number {
    return Math.max(0, this.window - this.bytesInFlight);
  }

  inRecovery(sentTime: number): boolean {
    return this.recoveryStartTime >= 0 && sentTime <= this.recoveryStartTime;
  }

  onPacketSent(_now: number, bytes: number): void {
    this.bytesInFlight += bytes;
  }

  onPacketAcked(now: number, sentTime: number, bytes: number): void {
    this.bytesInFlight = Math.max(0, this.bytesInFlight - bytes);
    // RFC 9002 B.5: no growth while app-limited or for packets sent during recovery.
    if (this.appLimited || this.inRecovery(sentTime)) return;
    if (this.inSlowStart) {
      this.cwnd += bytes;
      return;
    }
    this.growCongestionAvoidance(now, bytes);
  }

  onPacketsLost(bytes: number): void {
    this.bytesInFlight = Math.max(0, this.bytesInFlight - bytes);
  }

  onPacketsDiscarded(bytes: number): void {
    this.bytesInFlight = Math.max(0, this.bytesInFlight - bytes);
  }

  onCongestionEvent(now: number, sentTime: number): void {
    if (this.inRecovery(sentTime)) return; // one reduction per round trip (RFC 9002 §7.3.2)
    this.recoveryStartTime = now;
    this.reduce(now);
  }

  onPersistentCongestion(_now: number): void {
    this.cwnd = this.minimumWindow;
    this.recoveryStartTime = -1;
    this.resetEpoch();
  }

  /** Congestion-avoidance growth for `bytes` newly acknowledged. */
  protected abstract growCongestionAvoidance(now: number, bytes: number): void;
  /** Multiplicative decrease: set ssthresh and cwnd. */
  protected abstract reduce(now: number): void;
  protected resetEpoch(): void {}
}
