/**
 * A simulated network for in-memory QUIC tests: a virtual clock and one-way links, deterministic
 * from a seed. Nothing here reads a real clock or touches a socket.
 *
 *   const clock = new VirtualClock();
 *   const link = new SimLink({ delayMs: 20, loss: 0.1, bandwidthBps: 50e6, queueBytes: 64_000 }, new Rng(7));
 *   link.send(datagram, from, to, clock.now);      // schedules 0, 1 or 2 (duplicate) deliveries
 *   link.nextArrival();                            // earliest arrival time or null
 *   link.popDue(clock.now);                        // next delivery due at or before now, or null
 *
 * Per direction the model applies, in this order: blackhole windows, targeted drops (a predicate
 * over the datagram and its index on this link), random loss, the drop-tail bottleneck queue
 * (bandwidth + queue capacity in bytes), then delay + jitter, reordering (an extra delay for some
 * datagrams), duplication and corruption (byte flips in a copy). Each stage counts what it did.
 */
import type { Address } from '../../packages/quic/src/api.js';
import { Rng } from './rng.js';

export class VirtualClock {
  now = 0;
  /** Moves time forward (never backward). */
  advance(to: number): void {
    if (to > this.now) this.now = to;
  }
}

export interface LinkConfig {
  /** One-way propagation delay in ms (default 10). */
  delayMs?: number;
  /**
   * Uniform extra delay in [0, jitterMs) per datagram. FIFO: a datagram never overtakes an earlier
   * one because of jitter (as on a real path); reordering is the `reorder` option.
   */
  jitterMs?: number;
  /** Bottleneck rate in bits per second; 0 or absent: unlimited. */
  bandwidthBps?: number;
  /** Drop-tail queue capacity in bytes in front of the bottleneck (default 256 KiB). */
  queueBytes?: number;
  /** Probability that a datagram is lost. */
  loss?: number;
  /** Probability that a datagram is delivered twice (the copy a little later). */
  duplicate?: number;
  /** Probability that a datagram is held back by `reorderDelayMs` (default 2 x delay + 5), so later ones overtake it. */
  reorder?: number;
  reorderDelayMs?: number;
  /** Probability that a delivered datagram has 1..3 bytes flipped. */
  corrupt?: number;
  /** Targeted drop: `index` counts datagrams offered to this link, from 0. */
  drop?: (datagram: Uint8Array, index: number) => boolean;
  /** [start, end) windows (virtual ms) in which everything offered to the link is lost. */
  blackholes?: Array<[number, number]>;
}

export interface Delivery {
  datagram: Uint8Array;
  from: Address;
  to: Address;
  /** Arrival time (virtual ms). */
  at: number;
  /** Sequence of the send that produced it (ties broken by it, so the order is deterministic). */
  seq: number;
}

export interface LinkStats {
  offered: number;
  offeredBytes: number;
  delivered: number;
  deliveredBytes: number;
  lost: number;
  targeted: number;
  blackholed: number;
  queueDrops: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
}

/** Upper bound of datagrams in flight on one link: a guard against a runaway sender. */
const MAX_IN_FLIGHT = 100_000;

export class SimLink {
  readonly cfg: LinkConfig;
  private readonly rng: Rng;
  private readonly queue: Delivery[] = [];
  private busyUntil = 0;
  /** Arrival time of the last in-order datagram (jitter keeps FIFO order). */
  private lastArrival = 0;
  private index = 0;
  private seq = 0;
  readonly stats: LinkStats = {
    offered: 0,
    offeredBytes: 0,
    delivered: 0,
    deliveredBytes: 0,
    lost: 0,
    targeted: 0,
    blackholed: 0,
    queueDrops: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
  };

  constructor(cfg: LinkConfig, rng: Rng) {
    this.cfg = { ...cfg };
    this.rng = rng;
  }

  /** Changes the link's behaviour from now on (e.g. loss starts mid-transfer). */
  set(cfg: Partial<LinkConfig>): void {
    Object.assign(this.cfg, cfg);
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /** Offers a datagram to the link at time `now`. The datagram is copied. */
  send(datagram: Uint8Array, from: Address, to: Address, now: number): void {
    const c = this.cfg;
    const i = this.index++;
    this.stats.offered++;
    this.stats.offeredBytes += datagram.length;
    if (c.blackholes?.some(([s, e]) => now >= s && now < e)) {
      this.stats.blackholed++;
      return;
    }
    if (c.drop && c.drop(datagram, i)) {
      this.stats.targeted++;
      return;
    }
    if (this.rng.chance(c.loss ?? 0)) {
      this.stats.lost++;
      return;
    }
    // Drop-tail bottleneck: bytes still waiting to be serialized are the queue.
    let departure = now;
    const bps = c.bandwidthBps ?? 0;
    if (bps > 0) {
      const start = Math.max(now, this.busyUntil);
      const queued = ((start - now) * bps) / 8000;
      if (queued + datagram.length > (c.queueBytes ?? 256 * 1024)) {
        this.stats.queueDrops++;
        return;
      }
      departure = start + (datagram.length * 8000) / bps;
      this.busyUntil = departure;
    }
    if (this.queue.length >= MAX_IN_FLIGHT) throw new Error(`SimLink: more than ${MAX_IN_FLIGHT} datagrams in flight (runaway sender?)`);
    const delay = c.delayMs ?? 10;
    let at = departure + delay + (c.jitterMs ? this.rng.float() * c.jitterMs : 0);
    if (at < this.lastArrival) at = this.lastArrival;
    this.lastArrival = at;
    if (this.rng.chance(c.reorder ?? 0)) {
      at += c.reorderDelayMs ?? 2 * delay + 5;
      this.stats.reordered++;
    }
    this.push(this.maybeCorrupt(datagram), from, to, at);
    if (this.rng.chance(c.duplicate ?? 0)) {
      this.stats.duplicated++;
      this.push(this.maybeCorrupt(datagram), from, to, at + 1 + this.rng.float() * (delay + 1));
    }
  }

  private maybeCorrupt(d: Uint8Array): Uint8Array {
    const copy = d.slice();
    if (copy.length > 0 && this.rng.chance(this.cfg.corrupt ?? 0)) {
      this.stats.corrupted++;
      const n = this.rng.range(1, 3);
      for (let k = 0; k < n; k++) copy[this.rng.int(copy.length)]! ^= 1 << this.rng.int(8);
    }
    return copy;
  }

  private push(datagram: Uint8Array, from: Address, to: Address, at: number): void {
    const d: Delivery = { datagram, from, to, at, seq: this.seq++ };
    // Binary insertion by (at, seq): the queue stays sorted.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.queue[mid]!;
      if (q.at < at || (q.at === at && q.seq < d.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, d);
  }

  /** Earliest pending arrival, or null. */
  nextArrival(): number | null {
    return this.queue.length > 0 ? this.queue[0]!.at : null;
  }

  /** The next delivery due at or before `now`, removed from the link; null if none. */
  popDue(now: number): Delivery | null {
    const d = this.queue[0];
    if (!d || d.at > now) return null;
    this.queue.shift();
    this.stats.delivered++;
    this.stats.deliveredBytes += d.datagram.length;
    return d;
  }

  /** Drops everything in flight (e.g. a path that goes away). Returns how many were dropped. */
  flush(): number {
    const n = this.queue.length;
    this.queue.length = 0;
    return n;
  }
}

/** Two links, one per direction, over one RNG (forked per direction so each is independent). */
export class SimNetwork {
  readonly clock = new VirtualClock();
  readonly up: SimLink;
  readonly down: SimLink;

  /** `up` carries client → server, `down` server → client. `both` applies to both directions. */
  constructor(seed: number, both: LinkConfig = {}, up: LinkConfig = {}, down: LinkConfig = {}) {
    const rng = new Rng(seed);
    this.up = new SimLink({ ...both, ...up }, rng.fork());
    this.down = new SimLink({ ...both, ...down }, rng.fork());
  }

  nextArrival(): number | null {
    const a = this.up.nextArrival();
    const b = this.down.nextArrival();
    if (a === null) return b;
    if (b === null) return a;
    return Math.min(a, b);
  }
}
