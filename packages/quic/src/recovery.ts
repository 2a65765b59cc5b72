/**
 * Loss detection and PTO (RFC 9002 §6 and Appendix A), for the three packet-number spaces of a
 * connection, driving a {@link CongestionController} and an {@link RttEstimator}.
 *
 * The Connection tells it about every packet sent (with an opaque `info` describing what the
 * packet carried) and every ACK frame received; acknowledged and lost packets come back through
 * the {@link RecoveryHandler} given at construction, with that `info`, so the Connection can free
 * or retransmit what they carried. `nextTimeout()` is the loss-detection timer; the Connection
 * calls `onTimeout(now)` when it fires, then sends `probesNeeded(space)` probe packets.
 *
 * Sent packets are kept per space in a growable ring of parallel arrays (no object per packet).
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from './errors.js';
import { GRANULARITY, RttEstimator } from './rtt.js';
import type { CongestionController } from './congestion/controller.js';

export const PnSpace = { initial: 0, handshake: 1, application: 2 } as const;
export type PnSpace = (typeof PnSpace)[keyof typeof PnSpace];

/** RFC 9002 §6.1.1 kPacketThreshold. */
export const PACKET_THRESHOLD = 3;
/** RFC 9002 §6.1.2 kTimeThreshold. */
export const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 §7.6.1 kPersistentCongestionThreshold. */
export const PERSISTENT_CONGESTION_THRESHOLD = 3;

/** Callbacks from LossRecovery. They run inside `onAckReceived` / `onTimeout` / `discard...`
 *  and must not call back into the same LossRecovery (queue work and do it afterwards). */
export interface RecoveryHandler<T> {
  /** A packet was acknowledged for the first time. */
  onAcked(space: PnSpace, pn: number, info: T | undefined): void;
  /** A packet was declared lost; its retransmittable frames must be sent again. */
  onLost(space: PnSpace, pn: number, info: T | undefined): void;
}

export interface RecoveryOptions<T> {
  isServer: boolean;
  cc: CongestionController;
  rtt: RttEstimator;
  handler: RecoveryHandler<T>;
  /** The peer's max_ack_delay (ms); default 25. Update with {@link LossRecovery.peerMaxAckDelay}. */
  peerMaxAckDelay?: number;
  packetThreshold?: number;
  timeThreshold?: number;
}

const F_ACK_ELICITING = 1;
const F_IN_FLIGHT = 2;
const F_REMOVED = 4;
const F_ZERO_RTT = 8;
/** The packet's data was already re-queued by a PTO probe (each probe then carries other data). */
const F_PROBED = 16;

/** Sent packets of one space, ascending packet numbers, in a ring of parallel arrays. */
const INITIAL_SLOTS = 64;

class SentPackets<T> {
  cap = INITIAL_SLOTS;
  pn = new Float64Array(INITIAL_SLOTS);
  time = new Float64Array(INITIAL_SLOTS);
  size = new Uint32Array(INITIAL_SLOTS);
  flags = new Uint8Array(INITIAL_SLOTS);
  info: (T | undefined)[] = new Array<T | undefined>(INITIAL_SLOTS).fill(undefined);
  /** Absolute sequence numbers of the first live slot and one past the last. */
  head = 0;
  tail = 0;
  live = 0;

  push(pn: number, time: number, size: number, flags: number, info: T | undefined): void {
    if (this.tail - this.head === this.cap) this.grow();
    const i = this.tail % this.cap;
    this.pn[i] = pn;
    this.time[i] = time;
    this.size[i] = size;
    this.flags[i] = flags;
    this.info[i] = info;
    this.tail++;
    this.live++;
  }

  private grow(): void {
    this.resize(this.cap * 2);
  }

  /** New arrays of `cap` slots holding the live range (cap >= the live range's length). */
  private resize(cap: number): void {
    const pn = new Float64Array(cap), time = new Float64Array(cap), size = new Uint32Array(cap), flags = new Uint8Array(cap);
    const info = new Array<T | undefined>(cap).fill(undefined);
    for (let s = this.head; s < this.tail; s++) {
      const a = s % this.cap, b = s % cap;
      pn[b] = this.pn[a]!;
      time[b] = this.time[a]!;
      size[b] = this.size[a]!;
      flags[b] = this.flags[a]!;
      info[b] = this.info[a];
    }
    this.cap = cap;
    this.pn = pn;
    this.time = time;
    this.size = size;
    this.flags = flags;
    this.info = info;
  }

  /** First sequence number whose packet number is ≥ pn (tail if none). */
  lowerBound(pn: number): number {
    let a = this.head, b = this.tail;
    while (a < b) {
      const m = a + Math.floor((b - a) / 2);
      if (this.pn[m % this.cap]! < pn) a = m + 1;
      else b = m;
    }
    return a;
  }

  remove(seq: number): void {
    const i = seq % this.cap;
    this.flags[i] = this.flags[i]! | F_REMOVED;
    this.info[i] = undefined;
    this.live--;
  }

  compact(): void {
    while (this.head < this.tail && (this.flags[this.head % this.cap]! & F_REMOVED) !== 0) this.head++;
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      // A drained flight gives back what a large congestion window grew (idle connections keep
      // 64 slots, not the peak: rare, so the allocation is off the per-packet path).
      if (this.cap > 4 * INITIAL_SLOTS) this.resize(INITIAL_SLOTS);
    }
  }

  /** Empties the ring; `release` (a discarded packet number space) also drops its arrays. */
  clear(release = false): void {
    for (let s = this.head; s < this.tail; s++) this.info[s % this.cap] = undefined;
    this.head = 0;
    this.tail = 0;
    this.live = 0;
    if (release) this.resize(2);
  }
}

export class LossRecovery<T = unknown> {
  readonly isServer: boolean;
  readonly cc: CongestionController;
  readonly rtt: RttEstimator;
  private readonly handler: RecoveryHandler<T>;
  peerMaxAckDelay: number;
  packetThreshold: number;
  timeThreshold: number;

  private readonly sent = [new SentPackets<T>(), new SentPackets<T>(), new SentPackets<T>()];
  /** -1 until an ACK was received in the space. */
  readonly largestAcked = [-1, -1, -1];
  readonly largestSent = [-1, -1, -1];
  private readonly lossTime = [0, 0, 0];
  private readonly timeOfLastAckEliciting = [0, 0, 0];
  private readonly ackElicitingInFlight = [0, 0, 0];
  private readonly discarded = [false, false, false];
  private readonly probes = [0, 0, 0];
  private readonly ceCount = [0, 0, 0];
  /** PTO backoff exponent (RFC 9002 §6.2.1 pto_count). */
  ptoCount = 0;
  handshakeConfirmed = false;
  hasHandshakeKeys = false;
  /** Client: the server has validated our address (a Handshake ACK or confirmation). */
  private handshakeAckReceived = false;
  /** Server: at the anti-amplification limit (RFC 9000 §8.1): no PTO is armed (§6.2.2.1). */
  private amplificationBlocked = false;
  private timer = -1;
  /** Second result of earliestLossTime / ptoTimeAndSpace (avoids a tuple per call). */
  private outSpace: PnSpace = PnSpace.initial;

  // Scratch for the current ACK: newly acknowledged in-flight packets for the congestion controller.
  private ackedTimes: number[] = [];
  private ackedSizes: number[] = [];

  constructor(opts: RecoveryOptions<T>) {
    this.isServer = opts.isServer;
    this.cc = opts.cc;
    this.rtt = opts.rtt;
    this.handler = opts.handler;
    this.peerMaxAckDelay = opts.peerMaxAckDelay ?? 25;
    this.packetThreshold = opts.packetThreshold ?? PACKET_THRESHOLD;
    this.timeThreshold = opts.timeThreshold ?? TIME_THRESHOLD;
  }

  /** Bytes in flight (all spaces). */
  get bytesInFlight(): number {
    return this.cc.bytesInFlight;
  }

  /** Ack-eliciting packets in flight in `space`. */
  ackElicitingInFlightIn(space: PnSpace): number {
    return this.ackElicitingInFlight[space]!;
  }

  /** Packets still tracked (unacknowledged, not lost) in `space`. */
  outstanding(space: PnSpace): number {
    return this.sent[space]!.live;
  }

  /** The loss-detection timer (ms), or null when not armed. */
  nextTimeout(): number | null {
    return this.timer >= 0 ? this.timer : null;
  }

  /** Probe packets the Connection should send now in `space` (PTO fired; RFC 9002 §6.2.4). Sending
   *  ack-eliciting packets in the space consumes them; probes are not blocked by the congestion window. */
  probesNeeded(space: PnSpace): number {
    return this.probes[space]!;
  }

  /** PTO period for the space, without backoff (§6.2.1). */
  ptoPeriod(space: PnSpace = PnSpace.application): number {
    return this.rtt.ptoBase() + (space === PnSpace.application ? this.peerMaxAckDelay : 0);
  }

  /** RFC 9002 A.5 OnPacketSent. `info` is handed back in onAcked/onLost. */
  onPacketSent(
    space: PnSpace,
    pn: number,
    now: number,
    size: number,
    ackEliciting: boolean,
    inFlight: boolean,
    info?: T,
    zeroRtt = false,
  ): void {
    if (this.discarded[space]) return;
    const sp = this.sent[space]!;
    if (pn <= this.largestSent[space]!) throw new RangeError(`packet number ${pn} not increasing in space ${space}`);
    this.largestSent[space] = pn;
    sp.push(pn, now, size, (ackEliciting ? F_ACK_ELICITING : 0) | (inFlight ? F_IN_FLIGHT : 0) | (zeroRtt ? F_ZERO_RTT : 0), info);
    if (ackEliciting && this.probes[space]! > 0) this.probes[space]!--;
    if (inFlight) {
      if (ackEliciting) {
        this.timeOfLastAckEliciting[space] = now;
        this.ackElicitingInFlight[space]!++;
      }
      this.cc.onPacketSent(now, size);
      this.setLossDetectionTimer(now);
    }
  }

  /**
   * RFC 9002 A.7 OnAckReceived. `intervals` holds `count` descending inclusive ranges
   * [hi0, lo0, hi1, lo1, ...] (see `ackToIntervals`); `ackDelay` in ms (decoded); `ceCount` the
   * ECN-CE count from an ACK_ECN frame, or -1. Returns the number of newly acknowledged packets.
   * Throws PROTOCOL_VIOLATION for an acknowledgment of a packet number never sent (RFC 9000 §13.1).
   */
  onAckReceived(
    space: PnSpace,
    intervals: ArrayLike<number>,
    count: number,
    ackDelay: number,
    now: number,
    ceCount = -1,
  ): number {
    if (count <= 0 || this.discarded[space]) return 0;
    const largest = intervals[0]!;
    if (largest > this.largestSent[space]!) {
      throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, `ACK of unsent packet ${largest}`, 0x02);
    }
    if (largest > this.largestAcked[space]!) this.largestAcked[space] = largest;
    if (space === PnSpace.handshake) this.handshakeAckReceived = true;

    const sp = this.sent[space]!;
    const cap = sp.cap;
    let nAcked = 0;
    let nCc = 0;
    let largestNewlyAcked = -1;
    let largestNewlyAckedTime = 0;
    let includesAckEliciting = false;
    for (let r = 0; r < count; r++) {
      const hi = intervals[2 * r]!;
      const lo = intervals[2 * r + 1]!;
      for (let s = sp.lowerBound(lo); s < sp.tail; s++) {
        const i = s % cap;
        const pn = sp.pn[i]!;
        if (pn > hi) break;
        const f = sp.flags[i]!;
        if (f & F_REMOVED) continue;
        const info = sp.info[i];
        if (pn > largestNewlyAcked) {
          largestNewlyAcked = pn;
          largestNewlyAckedTime = sp.time[i]!;
        }
        if (f & F_ACK_ELICITING) {
          includesAckEliciting = true;
          if (f & F_IN_FLIGHT) this.ackElicitingInFlight[space]!--;
        }
        if (f & F_IN_FLIGHT) {
          this.ackedTimes[nCc] = sp.time[i]!;
          this.ackedSizes[nCc] = sp.size[i]!;
          nCc++;
        }
        sp.remove(s);
        nAcked++;
        this.handler.onAcked(space, pn, info);
      }
    }
    sp.compact();
    if (nAcked === 0) return 0;

    // RTT sample only if the largest acknowledged is newly acknowledged and something
    // ack-eliciting was newly acknowledged (RFC 9002 §5.1).
    if (largestNewlyAcked === largest && includesAckEliciting) {
      // §5.3: the ack delay MAY be ignored for Initial packets (they are acknowledged immediately).
      const delay = space === PnSpace.initial ? 0 : ackDelay;
      this.rtt.update(now - largestNewlyAckedTime, delay, this.handshakeConfirmed, this.peerMaxAckDelay, now);
      this.cc.onRttSample(now, this.rtt.latestRtt, largestNewlyAckedTime);
    }
    // ECN-CE (RFC 9002 B.7).
    if (ceCount > this.ceCount[space]!) {
      this.ceCount[space] = ceCount;
      this.cc.onCongestionEvent(now, largestNewlyAckedTime);
    }
    this.detectAndRemoveLostPackets(space, now);
    for (let k = 0; k < nCc; k++) this.cc.onPacketAcked(now, this.ackedTimes[k]!, this.ackedSizes[k]!);

    if (this.peerCompletedAddressValidation()) this.ptoCount = 0;
    this.setLossDetectionTimer(now);
    return nAcked;
  }

  /** RFC 9002 A.9 OnLossDetectionTimeout: call when `nextTimeout()` has passed. */
  onTimeout(now: number): void {
    if (this.timer < 0 || now < this.timer) return;
    const lossTime = this.earliestLossTime();
    if (lossTime > 0) {
      this.detectAndRemoveLostPackets(this.outSpace, now);
      this.setLossDetectionTimer(now);
      return;
    }
    if (this.noAckElicitingInFlight()) {
      // Client anti-deadlock (§6.2.2.1): nothing in flight but the server may be amplification-blocked.
      this.probes[this.hasHandshakeKeys ? PnSpace.handshake : PnSpace.initial] = 1;
    } else {
      this.ptoTimeAndSpace(now);
      this.probes[this.outSpace] = 2;
    }
    this.ptoCount++;
    this.setLossDetectionTimer(now);
  }

  /**
   * The `info` of up to `max` oldest outstanding ack-eliciting packets in `space`, written to `out`
   * (nothing is removed). For PTO probes, which SHOULD carry data sent before (RFC 9002 §6.2.4)
   * when there is nothing new. Returns the count.
   */
  oldestOutstanding(space: PnSpace, max: number, out: (T | undefined)[]): number {
    const sp = this.sent[space]!;
    let n = 0;
    for (let s = sp.head; s < sp.tail && n < max; s++) {
      const i = s % sp.cap;
      const f = sp.flags[i]!;
      if ((f & F_REMOVED) === 0 && (f & F_ACK_ELICITING) !== 0) out[n++] = sp.info[i];
    }
    return n;
  }

  /**
   * Up to `max` of the oldest outstanding ack-eliciting packets whose data no PTO probe has carried
   * again yet (marking them as carried), or, when every outstanding packet has been, the oldest
   * ones: successive probes (two per PTO, and each backed-off PTO) carry successive packets' data
   * instead of repeating the same packets while a later one, perhaps the lost one, waits (as
   * ngtcp2 reclaims packets on PTO).
   */
  probeCandidates(space: PnSpace, max: number, out: (T | undefined)[]): number {
    const sp = this.sent[space]!;
    let n = 0;
    for (let s = sp.head; s < sp.tail && n < max; s++) {
      const i = s % sp.cap;
      const f = sp.flags[i]!;
      if ((f & (F_REMOVED | F_ACK_ELICITING | F_PROBED)) !== F_ACK_ELICITING) continue;
      sp.flags[i] = f | F_PROBED;
      out[n++] = sp.info[i];
    }
    return n > 0 ? n : this.oldestOutstanding(space, max, out);
  }

  /** Which space a PTO probe is for, when probes are pending (the first with probes), or -1. */
  probeSpace(): PnSpace | -1 {
    for (let s = 0; s < 3; s++) if (this.probes[s]! > 0) return s as PnSpace;
    return -1;
  }

  /** RFC 9002 A.10 / §6.4: keys for the space were discarded. */
  discardSpace(space: PnSpace, now: number): void {
    if (this.discarded[space]) return;
    const sp = this.sent[space]!;
    let bytes = 0;
    for (let s = sp.head; s < sp.tail; s++) {
      const i = s % sp.cap;
      const f = sp.flags[i]!;
      if ((f & (F_REMOVED | F_IN_FLIGHT)) === F_IN_FLIGHT) bytes += sp.size[i]!;
    }
    sp.clear(true);
    if (bytes > 0) this.cc.onPacketsDiscarded(bytes);
    this.discarded[space] = true;
    this.timeOfLastAckEliciting[space] = 0;
    this.lossTime[space] = 0;
    this.ackElicitingInFlight[space] = 0;
    this.probes[space] = 0;
    this.ptoCount = 0;
    this.setLossDetectionTimer(now);
  }

  /**
   * The server rejected 0-RTT: 0-RTT packets (sent with `zeroRtt`) leave bytes in flight without a
   * congestion signal and are reported through `onLost` so their frames can be sent again in 1-RTT
   * packets (RFC 9001 §4.6.2; RFC 9002 §A.6 semantics of discarding).
   */
  onZeroRttRejected(now: number): void {
    const sp = this.sent[PnSpace.application]!;
    let bytes = 0;
    for (let s = sp.head; s < sp.tail; s++) {
      const i = s % sp.cap;
      const f = sp.flags[i]!;
      if ((f & F_REMOVED) !== 0 || (f & F_ZERO_RTT) === 0) continue;
      if (f & F_IN_FLIGHT) {
        bytes += sp.size[i]!;
        if (f & F_ACK_ELICITING) this.ackElicitingInFlight[PnSpace.application]!--;
      }
      const pn = sp.pn[i]!;
      const info = sp.info[i];
      sp.remove(s);
      this.handler.onLost(PnSpace.application, pn, info);
    }
    sp.compact();
    if (bytes > 0) this.cc.onPacketsDiscarded(bytes);
    this.setLossDetectionTimer(now);
  }

  isDiscarded(space: PnSpace): boolean {
    return this.discarded[space]!;
  }

  /** The handshake is confirmed (RFC 9001 §4.1.2). */
  setHandshakeConfirmed(now: number): void {
    this.handshakeConfirmed = true;
    this.setLossDetectionTimer(now);
  }

  /** Handshake keys are available (client PTO then probes in the Handshake space). */
  setHasHandshakeKeys(now: number): void {
    this.hasHandshakeKeys = true;
    this.setLossDetectionTimer(now);
  }

  /** Server: whether the anti-amplification limit currently blocks sending (RFC 9000 §8.1). */
  setAmplificationBlocked(blocked: boolean, now: number): void {
    if (blocked === this.amplificationBlocked) return;
    this.amplificationBlocked = blocked;
    this.setLossDetectionTimer(now);
  }

  /** RFC 9002 A.6: servers assume the client validated them; clients until Handshake ACK/confirmation. */
  peerCompletedAddressValidation(): boolean {
    return this.isServer || this.handshakeAckReceived || this.handshakeConfirmed;
  }

  private noAckElicitingInFlight(): boolean {
    return this.ackElicitingInFlight[0] === 0 && this.ackElicitingInFlight[1] === 0 && this.ackElicitingInFlight[2] === 0;
  }

  /** Earliest loss time (0 if none); its space in `outSpace`. */
  private earliestLossTime(): number {
    let time = 0;
    let space: PnSpace = PnSpace.initial;
    for (let s = 0; s < 3; s++) {
      const t = this.lossTime[s]!;
      if (t > 0 && (time === 0 || t < time)) {
        time = t;
        space = s as PnSpace;
      }
    }
    this.outSpace = space;
    return time;
  }

  /** RFC 9002 A.8 GetPtoTimeAndSpace: the PTO time (-1 when none applies); its space in `outSpace`. */
  private ptoTimeAndSpace(now: number): number {
    const backoff = 2 ** this.ptoCount;
    let duration = this.rtt.ptoBase() * backoff;
    if (this.noAckElicitingInFlight()) {
      // Anti-deadlock: arm from now in the space the client would probe.
      this.outSpace = this.hasHandshakeKeys ? PnSpace.handshake : PnSpace.initial;
      return now + duration;
    }
    let timeout = -1;
    let space: PnSpace = PnSpace.initial;
    for (let s = 0; s < 3; s++) {
      if (this.ackElicitingInFlight[s] === 0) continue;
      if (s === PnSpace.application) {
        // Skip Application Data until the handshake is confirmed (§6.2.1).
        if (!this.handshakeConfirmed) break;
        duration += this.peerMaxAckDelay * backoff;
      }
      const t = this.timeOfLastAckEliciting[s]! + duration;
      if (timeout < 0 || t < timeout) {
        timeout = t;
        space = s as PnSpace;
      }
    }
    this.outSpace = space;
    return timeout;
  }

  /** RFC 9002 A.8 SetLossDetectionTimer. */
  private setLossDetectionTimer(now: number): void {
    const lossTime = this.earliestLossTime();
    if (lossTime > 0) {
      this.timer = lossTime;
      return;
    }
    if (this.isServer && this.amplificationBlocked) {
      this.timer = -1; // sending is blocked anyway; the timer is rearmed when data arrives
      return;
    }
    if (this.noAckElicitingInFlight() && this.peerCompletedAddressValidation()) {
      this.timer = -1;
      return;
    }
    this.timer = this.ptoTimeAndSpace(now);
  }

  /** RFC 9002 A.10 DetectAndRemoveLostPackets, with persistent-congestion detection (§7.6). */
  private detectAndRemoveLostPackets(space: PnSpace, now: number): void {
    const largestAcked = this.largestAcked[space]!;
    this.lossTime[space] = 0;
    if (largestAcked < 0) return;
    const rtt = this.rtt;
    const lossDelay = Math.max(this.timeThreshold * Math.max(rtt.latestRtt, rtt.smoothedRtt), GRANULARITY);
    const sp = this.sent[space]!;
    const cap = sp.cap;

    // Persistent congestion (§7.6.1): a run of contiguous lost packets whose ack-eliciting ones,
    // sent after the first RTT sample, span more than the persistent-congestion duration.
    const pcDuration =
      (rtt.smoothedRtt + Math.max(4 * rtt.rttvar, GRANULARITY) + this.peerMaxAckDelay) * PERSISTENT_CONGESTION_THRESHOLD;
    let persistent = false;
    let runLastSeq = -2;
    let runStart = -1;

    let lostBytes = 0;
    let lastLostSentTime = -1;
    for (let s = sp.head; s < sp.tail; s++) {
      const i = s % cap;
      const f = sp.flags[i]!;
      if (f & F_REMOVED) continue;
      const pn = sp.pn[i]!;
      if (pn > largestAcked) break;
      const time = sp.time[i]!;
      // Compared as the timer is armed below (time + lossDelay), not as now - lossDelay: with
      // epoch-millisecond floats the two can round apart, and a timer due at `now` would then
      // declare nothing lost and re-arm itself at the same instant.
      if (time + lossDelay <= now || largestAcked >= pn + this.packetThreshold) {
        if (f & F_IN_FLIGHT) {
          lostBytes += sp.size[i]!;
          if (time > lastLostSentTime) lastLostSentTime = time;
          if (f & F_ACK_ELICITING) this.ackElicitingInFlight[space]!--;
        }
        if (s !== runLastSeq + 1) runStart = -1;
        runLastSeq = s;
        if ((f & F_ACK_ELICITING) !== 0 && rtt.hasSample && time > rtt.firstSampleTime) {
          if (runStart < 0) runStart = time;
          else if (time - runStart > pcDuration) persistent = true;
        }
        const info = sp.info[i];
        sp.remove(s);
        this.handler.onLost(space, pn, info);
      } else {
        const t = time + lossDelay;
        if (this.lossTime[space] === 0 || t < this.lossTime[space]!) this.lossTime[space] = t;
      }
    }
    sp.compact();
    if (lostBytes > 0) {
      this.cc.onPacketsLost(lostBytes);
      this.cc.onCongestionEvent(now, lastLostSentTime);
    }
    if (persistent) {
      this.cc.onPersistentCongestion(now);
      this.rtt.resetMinRtt();
    }
  }
}
