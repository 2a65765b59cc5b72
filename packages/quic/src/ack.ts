/**
 * Receive-side ACK state for one packet-number space (RFC 9000 §13.2).
 *
 * `ReceivedPackets` records the packet numbers received (duplicate detection, RFC 9000 §12.3 /
 * §13.2.3), keeps them as compact ascending ranges (at most `maxRanges`; beyond that the oldest
 * range is dropped and everything below it is treated as already received), decides when an ACK
 * must be sent (§13.2.1, §13.2.2) and fills ACK frame contents into a reusable {@link AckFrameData}.
 * No allocation per packet; packet numbers are plain numbers (exact up to 2^53).
 */

/** The contents of an ACK frame in wire order (RFC 9000 §19.3). Reused between calls. */
export interface AckFrameData {
  /** Largest Acknowledged. */
  largest: number;
  /** ACK Delay in milliseconds (the Connection encodes it with its ack_delay_exponent). */
  ackDelay: number;
  /** First ACK Range: number of packets below `largest` in the first range. */
  firstRange: number;
  /** `rangeCount` (Gap, ACK Range Length) pairs, flattened: [gap0, len0, gap1, len1, ...]. */
  ranges: number[];
  rangeCount: number;
  /** ECN counts (ECT(0), ECT(1), ECN-CE) as received in this space. */
  ect0: number;
  ect1: number;
  ce: number;
}

export function newAckFrameData(): AckFrameData {
  return { largest: 0, ackDelay: 0, firstRange: 0, ranges: [], rangeCount: 0, ect0: 0, ect1: 0, ce: 0 };
}

/** IP ECN codepoints (RFC 3168), as passed to {@link ReceivedPackets.onPacketReceived}. */
export const Ecn = { notEct: 0, ect1: 1, ect0: 2, ce: 3 } as const;

export interface ReceivedPacketsOptions {
  /** Maximum ACK ranges remembered (resource limit). Default 64. */
  maxRanges?: number;
  /** Our max_ack_delay (ms) for this space; 0 acknowledges every ack-eliciting packet at once
   *  (Initial and Handshake spaces, RFC 9000 §13.2.1). Default 25. */
  maxAckDelay?: number;
  /** Send an ACK after this many ack-eliciting packets (RFC 9000 §13.2.2). Default 2. */
  ackElicitingThreshold?: number;
}

export class ReceivedPackets {
  readonly maxRanges: number;
  maxAckDelay: number;
  ackElicitingThreshold: number;

  // Ascending, disjoint, non-adjacent ranges [lo[i], hi[i]].
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  private count = 0;
  /** Packets below this are dropped as possible duplicates (below the oldest range kept after evictions). */
  private minAccepted = 0;
  /** Ranges entirely below this are no longer reported (the peer has seen an ACK of them, §13.2.4). */
  private ackFloor = 0;

  /** Largest packet number received so far (-1 if none); kept for packet-number decoding. */
  largest = -1;
  /** When `largest` was received (for ACK Delay). */
  largestTime = 0;
  private largestAckEliciting = -1;

  /** Something not yet acknowledged has been received (ack-eliciting or not). */
  private ackPending = false;
  private elicitingSinceAck = 0;
  private immediate = false;
  private deadline = -1;

  ect0 = 0;
  ect1 = 0;
  ce = 0;

  constructor(opts: ReceivedPacketsOptions = {}) {
    this.maxRanges = Math.max(1, opts.maxRanges ?? 64);
    this.maxAckDelay = opts.maxAckDelay ?? 25;
    this.ackElicitingThreshold = Math.max(1, opts.ackElicitingThreshold ?? 2);
    this.lo = new Float64Array(this.maxRanges);
    this.hi = new Float64Array(this.maxRanges);
  }

  /** Number of ranges currently remembered. */
  get rangeCount(): number {
    return this.count;
  }

  /** Range i (ascending order) as [lo, hi]; for tests and diagnostics. */
  rangeAt(i: number): [number, number] {
    return [this.lo[i]!, this.hi[i]!];
  }

  /** True if `pn` was already received, or is too old to know (must be dropped, RFC 9000 §12.3). */
  isDuplicate(pn: number): boolean {
    if (pn < this.minAccepted) return true;
    if (this.count === this.maxRanges && pn < this.lo[0]! - 1) return true; // would need a new oldest range
    const i = this.find(pn);
    return i >= 0 && pn <= this.hi[i]!;
  }

  /**
   * Records a packet after it was successfully unprotected and processed. Returns false (and
   * changes nothing) for a duplicate or a packet too old to track, which the caller drops.
   * @param ecn the IP ECN codepoint ({@link Ecn})
   */
  onPacketReceived(pn: number, now: number, ackEliciting: boolean, ecn = 0): boolean {
    if (pn < this.minAccepted) return false;
    if (!this.insert(pn)) return false;
    if (pn > this.largest) {
      this.largest = pn;
      this.largestTime = now;
    }
    if (ecn === Ecn.ect0) this.ect0++;
    else if (ecn === Ecn.ect1) this.ect1++;
    else if (ecn === Ecn.ce) this.ce++;
    this.ackPending = true;
    if (!ackEliciting) return true;

    // RFC 9000 §13.2.1: acknowledge immediately when out of order or CE-marked.
    if (this.largestAckEliciting >= 0) {
      if (pn < this.largestAckEliciting) this.immediate = true;
      else if (pn > this.largestAckEliciting + 1 && this.lo[this.find(pn)]! > this.largestAckEliciting + 1) {
        this.immediate = true; // missing packets between the previous largest and this one
      }
    }
    if (ecn === Ecn.ce) this.immediate = true;
    if (pn > this.largestAckEliciting) this.largestAckEliciting = pn;
    this.elicitingSinceAck++;
    if (this.elicitingSinceAck >= this.ackElicitingThreshold || this.maxAckDelay <= 0) this.immediate = true;
    if (this.deadline < 0) this.deadline = now + this.maxAckDelay;
    if (this.immediate && this.deadline > now) this.deadline = now;
    return true;
  }

  /** An ACK should be sent now (RFC 9000 §13.2.1/§13.2.2): threshold reached, out of order, or the
   *  max_ack_delay timer expired. */
  wantAckNow(now: number): boolean {
    return this.ackPending && this.deadline >= 0 && now >= this.deadline;
  }

  /** Packets were received that no sent ACK covers yet (include an ACK when sending anyway). */
  get hasPendingAck(): boolean {
    return this.ackPending;
  }

  /** Ack-eliciting packets await acknowledgment. */
  get hasPendingAckEliciting(): boolean {
    return this.elicitingSinceAck > 0;
  }

  /** When the delayed-ACK timer fires (ms), or null. */
  ackTimeout(): number | null {
    return this.ackPending && this.deadline >= 0 ? this.deadline : null;
  }

  /**
   * Fills `out` with the ACK frame for the current state (most recent ranges first; at most
   * `maxRanges` additional ranges so the frame fits the packet). Returns false if there is nothing
   * to acknowledge. Does not change state: call {@link onAckSent} once the frame is in a packet.
   */
  fillAck(now: number, out: AckFrameData, maxRanges = Infinity): boolean {
    if (this.count === 0) return false;
    let i = this.count - 1;
    const top = this.hi[i]!;
    out.largest = top;
    out.ackDelay = top === this.largest ? Math.max(0, now - this.largestTime) : 0;
    out.firstRange = top - this.lo[i]!;
    let n = 0;
    let prevLo = this.lo[i]!;
    for (i--; i >= 0 && n < maxRanges; i--) {
      const hi = this.hi[i]!;
      if (hi < this.ackFloor) break;
      const lo = this.lo[i]!;
      out.ranges[2 * n] = prevLo - hi - 2; // Gap
      out.ranges[2 * n + 1] = hi - lo; // ACK Range Length
      n++;
      prevLo = lo;
    }
    out.rangeCount = n;
    out.ect0 = this.ect0;
    out.ect1 = this.ect1;
    out.ce = this.ce;
    return true;
  }

  /**
   * Writes the ranges to acknowledge as descending inclusive pairs [largest0, smallest0, largest1,
   * smallest1, ...] (the form `writeAckFrame` and `Frame.ackRanges` use), at most `maxRanges`
   * ranges, newest first. Returns the number of ranges (0: nothing to acknowledge).
   */
  fillIntervals(out: number[], maxRanges = Infinity): number {
    let n = 0;
    for (let i = this.count - 1; i >= 0 && n < maxRanges; i--) {
      if (n > 0 && this.hi[i]! < this.ackFloor) break;
      out[2 * n] = this.hi[i]!;
      out[2 * n + 1] = this.lo[i]!;
      n++;
    }
    return n;
  }

  /** ACK Delay (ms) for an ACK sent at `now`: time since the largest packet was received. */
  ackDelay(now: number): number {
    return this.largest >= 0 ? Math.max(0, now - this.largestTime) : 0;
  }

  /** An ACK frame was sent: resets the delayed-ACK state. */
  onAckSent(): void {
    this.ackPending = false;
    this.elicitingSinceAck = 0;
    this.immediate = false;
    this.deadline = -1;
  }

  /**
   * A packet of ours that carried an ACK frame with `largestAcked` was acknowledged: stop
   * reporting ranges at or below it (RFC 9000 §13.2.4). They stay remembered for duplicate
   * detection until the range limit evicts them.
   */
  onAckOfAckReceived(largestAcked: number): void {
    if (largestAcked + 1 > this.ackFloor) this.ackFloor = largestAcked + 1;
  }

  // Largest index i with lo[i] <= pn, or -1.
  private find(pn: number): number {
    let a = 0;
    let b = this.count - 1;
    let r = -1;
    while (a <= b) {
      const m = (a + b) >> 1;
      if (this.lo[m]! <= pn) {
        r = m;
        a = m + 1;
      } else b = m - 1;
    }
    return r;
  }

  private insert(pn: number): boolean {
    const n = this.count;
    if (n === 0) {
      this.lo[0] = pn;
      this.hi[0] = pn;
      this.count = 1;
      return true;
    }
    // Fast path: in order.
    const lastHi = this.hi[n - 1]!;
    if (pn > lastHi) {
      if (pn === lastHi + 1) this.hi[n - 1] = pn;
      else this.insertAt(n, pn);
      return true;
    }
    const i = this.find(pn);
    if (i >= 0 && pn <= this.hi[i]!) return false; // duplicate
    const left = i >= 0 && this.hi[i]! + 1 === pn;
    const right = i + 1 < n && this.lo[i + 1]! - 1 === pn;
    if (left && right) {
      this.hi[i] = this.hi[i + 1]!;
      this.lo.copyWithin(i + 1, i + 2, n);
      this.hi.copyWithin(i + 1, i + 2, n);
      this.count = n - 1;
    } else if (left) this.hi[i] = pn;
    else if (right) this.lo[i + 1] = pn;
    else {
      // A new range older than everything remembered while full: we cannot track it, drop it.
      if (i + 1 === 0 && n === this.maxRanges) return false;
      this.insertAt(i + 1, pn);
    }
    return true;
  }

  private insertAt(idx: number, pn: number): void {
    if (this.count === this.maxRanges) {
      // Evict the oldest range; everything up to it now counts as received.
      this.lo.copyWithin(0, 1, this.count);
      this.hi.copyWithin(0, 1, this.count);
      this.count--;
      idx--;
      this.minAccepted = idx === 0 ? pn : this.lo[0]!;
    }
    this.lo.copyWithin(idx + 1, idx, this.count);
    this.hi.copyWithin(idx + 1, idx, this.count);
    this.lo[idx] = pn;
    this.hi[idx] = pn;
    this.count++;
  }
}

/**
 * Converts a received ACK frame (wire order) into descending inclusive intervals
 * `[hi0, lo0, hi1, lo1, ...]` written into `out`; returns the number of intervals, or -1 if the
 * frame is malformed (a range goes below packet number 0: FRAME_ENCODING_ERROR, RFC 9000 §19.3.1).
 */
export function ackToIntervals(
  largest: number,
  firstRange: number,
  ranges: ArrayLike<number>,
  rangeCount: number,
  out: number[],
): number {
  let hi = largest;
  let lo = largest - firstRange;
  if (lo < 0) return -1;
  out[0] = hi;
  out[1] = lo;
  for (let k = 0; k < rangeCount; k++) {
    hi = lo - ranges[2 * k]! - 2;
    lo = hi - ranges[2 * k + 1]!;
    if (hi < 0 || lo < 0) return -1;
    out[2 * k + 2] = hi;
    out[2 * k + 3] = lo;
  }
  return rangeCount + 1;
}

/** ACK Delay field value for `ms` milliseconds with the sender's ack_delay_exponent (RFC 9000 §19.3). */
export function encodeAckDelay(ms: number, exponent = 3): number {
  return Math.max(0, Math.floor((ms * 1000) / 2 ** exponent));
}

/** Milliseconds for a received ACK Delay field with the peer's ack_delay_exponent. */
export function decodeAckDelay(field: number, exponent = 3): number {
  return (field * 2 ** exponent) / 1000;
}
