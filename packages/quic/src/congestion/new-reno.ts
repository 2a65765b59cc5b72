/**
 * NewReno (RFC 9002 §7.3 and Appendix B): slow start doubles per RTT, congestion avoidance adds
 * one maximum datagram per window acknowledged, loss halves the window once per recovery period.
 */
import { BaseController } from './controller.js';

/** RFC 9002 §7.3.2 kLossReductionFactor. */
export const LOSS_REDUCTION_FACTOR = 0.5;

export class NewReno extends BaseController {
  readonly name = 'newreno';
  /** Bytes acknowledged in congestion avoidance not yet turned into window growth. */
  private bytesAcked = 0;

  protected growCongestionAvoidance(_now: number, bytes: number): void {
    // cwnd += mds × bytes / cwnd, accumulated so growth is exactly one mds per cwnd acknowledged.
    this.bytesAcked += bytes;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.maxDatagramSize;
    }
  }

  protected reduce(_now: number): void {
    this.ssthresh = Math.max(Math.floor(this.cwnd * LOSS_REDUCTION_FACTOR), this.minimumWindow);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
  }

  protected override resetEpoch(): void {
    this.bytesAcked = 0;
  }
}
