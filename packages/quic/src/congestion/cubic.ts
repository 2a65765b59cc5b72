/**
 * CUBIC (RFC 9438) on top of the RFC 9002 recovery-period rules.
 *
 * Window in bytes; the cubic function works in segments of `maxDatagramSize` and seconds:
 *   W_cubic(t) = C × (t − K)³ + W_max,   K = ∛((W_max − cwnd_epoch) / C)        (§4.2)
 * with C = 0.4 and β = 0.7. The Reno-friendly estimate W_est grows by
 * α = 3(1 − β)/(1 + β) segments per window acknowledged (1 once W_est ≥ cwnd_prior) (§4.3); when
 * W_cubic(t) < W_est the window follows W_est. Fast convergence lowers W_max when a loss happens
 * below the previous W_max (§4.7).
 */
import { BaseController } from './controller.js';

export const CUBIC_C = 0.4;
export const CUBIC_BETA = 0.7;
const ALPHA_AIMD = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

export class Cubic extends BaseController {
  readonly name = 'cubic';
  /** W_max in bytes (window before the last reduction, after fast convergence). */
  wMax = 0;
  /** cwnd just before the last reduction (cwnd_prior). */
  cwndPrior = 0;
  /** K in seconds. */
  k = 0;
  /** Start of the current congestion-avoidance epoch (ms), -1 before it starts. */
  epochStart = -1;
  /** Reno-friendly estimate W_est (bytes). */
  wEst = 0;
  fastConvergence = true;

  /** When the current application-limited period started (ms), -1 if not app-limited. */
  private appLimitedSince = -1;

  /**
   * No growth while application-limited (RFC 9438 §5.8, RFC 9002 §7.8), and the epoch is shifted
   * by the app-limited time so W_cubic(t) does not jump when sending resumes.
   */
  override onPacketAcked(now: number, sentTime: number, bytes: number): void {
    if (this.appLimited) {
      if (this.appLimitedSince < 0) this.appLimitedSince = now;
    } else if (this.appLimitedSince >= 0) {
      if (this.epochStart >= 0 && now > this.appLimitedSince) this.epochStart += now - this.appLimitedSince;
      this.appLimitedSince = -1;
    }
    super.onPacketAcked(now, sentTime, bytes);
  }

  /** W_cubic(t) in bytes for t seconds into the epoch. */
  wCubic(t: number): number {
    const d = t - this.k;
    return (CUBIC_C * d * d * d) * this.maxDatagramSize + this.wMax;
  }

  protected growCongestionAvoidance(now: number, bytes: number): void {
    const mds = this.maxDatagramSize;
    if (this.epochStart < 0) {
      this.epochStart = now;
      if (this.wMax <= this.cwnd) {
        // Entered congestion avoidance without a reduction below W_max: start at the plateau.
        this.wMax = this.cwnd;
        this.k = 0;
      } else {
        this.k = Math.cbrt((this.wMax - this.cwnd) / mds / CUBIC_C);
      }
      this.wEst = this.cwnd;
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = this.rtt.smoothedRtt / 1000;
    // Reno-friendly region (§4.3).
    const alpha = this.wEst >= this.cwndPrior ? 1 : ALPHA_AIMD;
    this.wEst += (alpha * mds * bytes) / this.cwnd;
    const cubic = this.wCubic(t);
    if (cubic < this.wEst) {
      if (this.wEst > this.cwnd) this.cwnd = this.wEst;
      return;
    }
    // Concave / convex regions (§4.4, §4.5): grow towards W_cubic(t + RTT), at most 1.5× per RTT.
    let target = this.wCubic(t + rtt);
    if (target < this.cwnd) target = this.cwnd;
    else if (target > 1.5 * this.cwnd) target = 1.5 * this.cwnd;
    this.cwnd += ((target - this.cwnd) * bytes) / this.cwnd;
  }

  protected reduce(_now: number): void {
    this.cwndPrior = this.cwnd;
    // Fast convergence (§4.7).
    if (this.fastConvergence && this.cwnd < this.wMax) this.wMax = (this.cwnd * (1 + CUBIC_BETA)) / 2;
    else this.wMax = this.cwnd;
    this.ssthresh = Math.max(Math.floor(this.cwnd * CUBIC_BETA), this.minimumWindow);
    this.cwnd = this.ssthresh;
    this.epochStart = -1;
  }

  protected override resetEpoch(): void {
    this.epochStart = -1;
  }
}
