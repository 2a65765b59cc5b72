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
  /** HyStart++ (RFC 9406) slow-start exit on RTT increase. Default true. */
  hystart?: boolean;
}

/** RFC 9406 §4.3 constants. */
export const HYSTART = {
  MIN_RTT_THRESH: 4,
  MAX_RTT_THRESH: 16,
  MIN_RTT_DIVISOR: 8,
  N_RTT_SAMPLE: 8,
  CSS_GROWTH_DIVISOR: 4,
  CSS_ROUNDS: 5,
} as const;

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
  /** An RTT sample was taken from an ACK whose largest newly acknowledged packet was sent at
   *  `sentTime` (called after the RTT estimator was updated, before onPacketAcked); drives HyStart++. */
  onRttSample(now: number, latestRtt: number, sentTime: number): void;
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

  // HyStart++ (RFC 9406) state. Rounds are delimited by send time: a round ends when a packet sent
  // after the round started is acknowledged (equivalent to the RFC's windowEnd packet number).
  readonly hystart: boolean;
  private roundStart = -1;
  private lastRoundMinRtt = Infinity;
  private currentRoundMinRtt = Infinity;
  private rttSampleCount = 0;
  /** In Conservative Slow Start: the baseline min RTT (Infinity when not in CSS). */
  cssBaselineMinRtt = Infinity;
  private cssRounds = 0;

  constructor(protected readonly rtt: RttEstimator, opts: CongestionOptions = {}) {
    this.hystart = opts.hystart ?? true;
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
      if (!this.hystart) {
        this.cwnd += bytes;
        return;
      }
      if (this.roundStart < 0 || sentTime >= this.roundStart) this.newRound(now);
      if (this.cssBaselineMinRtt === Infinity) this.cwnd += bytes;
      else {
        this.cwnd += bytes / HYSTART.CSS_GROWTH_DIVISOR;
        if (this.cssRounds >= HYSTART.CSS_ROUNDS) {
          // RFC 9406 §4.2: enough CSS rounds: leave slow start.
          this.ssthresh = this.cwnd;
          this.cssBaselineMinRtt = Infinity;
        }
      }
      return;
    }
    this.growCongestionAvoidance(now, bytes);
  }

  private newRound(now: number): void {
    if (this.roundStart >= 0 && this.cssBaselineMinRtt !== Infinity) this.cssRounds++;
    this.roundStart = now;
    this.lastRoundMinRtt = this.currentRoundMinRtt;
    this.currentRoundMinRtt = Infinity;
    this.rttSampleCount = 0;
  }

  onRttSample(now: number, latestRtt: number, sentTime: number): void {
    if (!this.hystart || !this.inSlowStart) return;
    if (this.roundStart < 0 || sentTime >= this.roundStart) this.newRound(now);
    if (latestRtt < this.currentRoundMinRtt) this.currentRoundMinRtt = latestRtt;
    this.rttSampleCount++;
    if (this.rttSampleCount < HYSTART.N_RTT_SAMPLE) return;
    if (this.cssBaselineMinRtt === Infinity) {
      if (this.currentRoundMinRtt === Infinity || this.lastRoundMinRtt === Infinity) return;
      const thresh = Math.min(
        HYSTART.MAX_RTT_THRESH,
        Math.max(HYSTART.MIN_RTT_THRESH, this.lastRoundMinRtt / HYSTART.MIN_RTT_DIVISOR),
      );
      if (this.currentRoundMinRtt >= this.lastRoundMinRtt + thresh) {
        this.cssBaselineMinRtt = this.currentRoundMinRtt; // enter Conservative Slow Start
        this.cssRounds = 0;
      }
    } else if (this.currentRoundMinRtt < this.cssBaselineMinRtt) {
      this.cssBaselineMinRtt = Infinity; // spurious: back to slow start
    }
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
    this.cssBaselineMinRtt = Infinity;
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
