/**
 * RTT estimation (RFC 9002 §5). All values in milliseconds (fractions allowed).
 */

/** RFC 9002 §6.2.2: the initial RTT before any sample. */
export const INITIAL_RTT = 333;
/** RFC 9002 §6.1.2 kGranularity. */
export const GRANULARITY = 1;

export class RttEstimator {
  /** The most recent RTT sample (§5.1). */
  latestRtt = 0;
  /** §5.3; `initialRtt` until the first sample. */
  smoothedRtt: number;
  rttvar: number;
  /** §5.2; Infinity until the first sample. */
  minRtt = Infinity;
  /** True once the first sample has been taken (the time it was taken: `firstSampleTime`). */
  hasSample = false;
  firstSampleTime = 0;

  constructor(readonly initialRtt = INITIAL_RTT) {
    this.smoothedRtt = initialRtt;
    this.rttvar = initialRtt / 2;
  }

  /**
   * Takes an RTT sample (RFC 9002 §5.3).
   * @param latestRtt now − send time of the newly acknowledged largest packet
   * @param ackDelay the peer's reported ACK delay (ms), already decoded with its ack_delay_exponent
   * @param handshakeConfirmed after confirmation the ack delay is capped by `maxAckDelay`
   * @param maxAckDelay the peer's max_ack_delay
   */
  update(latestRtt: number, ackDelay: number, handshakeConfirmed: boolean, maxAckDelay: number, now = 0): void {
    this.latestRtt = latestRtt;
    if (!this.hasSample) {
      this.hasSample = true;
      this.firstSampleTime = now;
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttvar = latestRtt / 2;
      return;
    }
    // min_rtt ignores ack delay (§5.2).
    if (latestRtt < this.minRtt) this.minRtt = latestRtt;
    if (handshakeConfirmed && ackDelay > maxAckDelay) ackDelay = maxAckDelay;
    // Only subtract the ack delay if that does not take the sample below min_rtt.
    let adjusted = latestRtt;
    if (latestRtt >= this.minRtt + ackDelay) adjusted = latestRtt - ackDelay;
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.smoothedRtt - adjusted);
    this.smoothedRtt = 0.875 * this.smoothedRtt + 0.125 * adjusted;
  }

  /** PTO base duration without max_ack_delay and backoff (§6.2.1). */
  ptoBase(): number {
    return this.smoothedRtt + Math.max(4 * this.rttvar, GRANULARITY);
  }

  /** §5.2: after persistent congestion, min_rtt restarts from the latest sample. */
  resetMinRtt(): void {
    if (this.hasSample) this.minRtt = this.latestRtt;
  }

  /** Back to the initial state (e.g. a new path). */
  reset(): void {
    this.latestRtt = 0;
    this.smoothedRtt = this.initialRtt;
    this.rttvar = this.initialRtt / 2;
    this.minRtt = Infinity;
    this.hasSample = false;
    this.firstSampleTime = 0;
  }
}
