/**
 * Token-bucket pacer (RFC 9002 §7.7): rate = N × cwnd / smoothed_rtt with N = 1.25, and a burst
 * allowance of `burstPackets` maximum-size datagrams. Sans-I/O: the caller asks
 * `timeUntilSend(now, bytes)` and arms its timer for that delay, then reports `onPacketSent`.
 */
import type { CongestionController } from './congestion/controller.js';
import type { RttEstimator } from './rtt.js';

/** RFC 9002 §7.7: pacing gain N. */
export const PACING_GAIN = 1.25;

export interface PacerOptions {
  /** Burst allowance in maximum-size datagrams. Default 10. */
  burstPackets?: number;
  gain?: number;
}

export class Pacer {
  readonly burstPackets: number;
  readonly gain: number;
  /** Available tokens (bytes). */
  private tokens: number;
  private last = -1;

  constructor(
    private readonly cc: Pick<CongestionController, 'window' | 'maxDatagramSize'>,
    private readonly rtt: Pick<RttEstimator, 'smoothedRtt'>,
    opts: PacerOptions = {},
  ) {
    this.burstPackets = opts.burstPackets ?? 10;
    this.gain = opts.gain ?? PACING_GAIN;
    this.tokens = this.capacity();
  }

  /** Pacing rate in bytes per millisecond. */
  rate(): number {
    const srtt = Math.max(this.rtt.smoothedRtt, 0.001);
    return (this.gain * this.cc.window) / srtt;
  }

  /** Bucket size: the burst allowance, but never more than the window. */
  capacity(): number {
    return Math.max(this.cc.maxDatagramSize, Math.min(this.burstPackets * this.cc.maxDatagramSize, this.cc.window));
  }

  private refill(now: number): void {
    const cap = this.capacity();
    if (this.last >= 0 && now > this.last) this.tokens = Math.min(cap, this.tokens + (now - this.last) * this.rate());
    else if (this.tokens > cap) this.tokens = cap;
    if (this.last < 0 || now > this.last) this.last = now;
  }

  /** 0 if a packet of `bytes` may be sent now, else the delay in ms until it may. */
  timeUntilSend(now: number, bytes: number): number {
    this.refill(now);
    const need = Math.min(bytes, this.capacity()) - this.tokens;
    return need <= 0.001 ? 0 : need / this.rate(); // tolerance for float rounding of refills
  }

  /** A packet of `bytes` was sent at `now`. */
  onPacketSent(now: number, bytes: number): void {
    this.refill(now);
    this.tokens = Math.max(0, this.tokens - bytes);
  }

  /** Available tokens (bytes), for diagnostics and tests. */
  get available(): number {
    return this.tokens;
  }
}
