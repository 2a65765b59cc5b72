/**
 * One direction of the simulated path: the decisions (blackhole, targeted drop, random loss,
 * corruption, duplication, drop-tail queue behind a rate limit, one-way delay, reordering) made
 * for each datagram at its arrival time. Pure logic with an injected clock value, so it is
 * unit-testable without sockets; relay.ts owns the sockets and the timers.
 *
 * Queue model: the link serializes one datagram at a time at `rateMbps`; a datagram waits in a
 * FIFO of at most `queuePackets` datagrams (the one being serialized included) and is dropped
 * at the tail when that is full. After serialization it takes `delayMs` (+ jitter) to arrive.
 */
import { Rng } from '../../test/support/rng.js';
import { packetType, type PacketType } from './classify.js';

export type Direction = 'up' | 'down';

export interface DatagramInfo {
  dir: Direction;
  /** 0-based index of this datagram in its direction. */
  index: number;
  /** Milliseconds since the relay started. */
  timeMs: number;
  size: number;
  type: PacketType;
  data: Uint8Array;
}

export interface TimeWindow {
  /** Milliseconds since the relay started (inclusive). */
  fromMs: number;
  /** Milliseconds since the relay started (exclusive). */
  toMs: number;
}

export interface LinkConfig {
  /** One-way delay, ms (default 15). */
  delayMs?: number;
  /** Uniform extra delay in [0, jitterMs) per datagram (reorders when > serialization gap). */
  jitterMs?: number;
  /** Bottleneck rate in Mbit/s (default 10; 0 or Infinity = unlimited). */
  rateMbps?: number;
  /** Drop-tail queue capacity in datagrams (default 25). */
  queuePackets?: number;
  /** Random loss probability, 0..1. */
  loss?: number;
  /** Drop the first N datagrams of this direction. */
  dropFirst?: number;
  /** Drop datagrams whose first packet has one of these types (e.g. ['handshake']). */
  dropTypes?: PacketType[];
  /** ...but only the first N of them (default: all). */
  dropTypesCount?: number;
  /** Drop the datagrams at these 0-based indices of this direction. */
  dropIndices?: number[];
  /** Arbitrary targeted drop. */
  drop?: (d: DatagramInfo) => boolean;
  /** Time windows in which everything is dropped. */
  blackholes?: TimeWindow[];
  /** Probability of corrupting a datagram (it is still forwarded). */
  corrupt?: number;
  /** Bytes changed per corrupted datagram (default 1). */
  corruptBytes?: number;
  /** Leave the first N bytes alone when corrupting (default 0; e.g. 1 keeps the packet type). */
  corruptSkip?: number;
  /** Probability of holding a datagram back by `reorderDelayMs` so later ones overtake it. */
  reorder?: number;
  /** Extra delay of reordered datagrams, ms (default 10). */
  reorderDelayMs?: number;
  /** Probability of sending a datagram twice. */
  duplicate?: number;
}

export const LINK_DEFAULTS = { delayMs: 15, rateMbps: 10, queuePackets: 25 } as const;

export type DropReason = 'blackhole' | 'targeted' | 'loss' | 'queue';

export interface Decision {
  info: DatagramInfo;
  fate: 'forwarded' | 'dropped' | 'corrupted';
  reason?: DropReason;
  /** Bytes to send (a copy when corrupted). */
  data: Uint8Array;
  /** Delivery times (ms since start): one, or two when duplicated; empty when dropped. */
  deliverAtMs: number[];
  duplicated: boolean;
  reordered: boolean;
  /** Queue occupancy seen by this datagram (before it joined). */
  queueLen: number;
}

export interface LinkStats {
  received: number;
  forwarded: number;
  bytesIn: number;
  bytesOut: number;
  dropped: Record<DropReason, number>;
  corrupted: number;
  duplicated: number;
  reordered: number;
  maxQueue: number;
}

export function emptyStats(): LinkStats {
  return { received: 0, forwarded: 0, bytesIn: 0, bytesOut: 0, dropped: { blackhole: 0, targeted: 0, loss: 0, queue: 0 }, corrupted: 0, duplicated: 0, reordered: 0, maxQueue: 0 };
}

export class Link {
  readonly stats = emptyStats();
  private index = 0;
  private typeDrops = 0;
  private busyUntil = 0;
  /** Serialization end times of queued datagrams (FIFO, ascending). */
  private readonly queue: number[] = [];
  private readonly cfg: Required<Pick<LinkConfig, 'delayMs' | 'rateMbps' | 'queuePackets'>> & LinkConfig;
  private readonly dropIdx: Set<number>;

  constructor(
    readonly dir: Direction,
    config: LinkConfig,
    private readonly rng: Rng,
  ) {
    this.cfg = { ...LINK_DEFAULTS, ...stripUndefined(config) };
    this.dropIdx = new Set(config.dropIndices ?? []);
  }

  /** Decides the fate of one datagram arriving at `nowMs` (ms since start, non-decreasing). */
  decide(data: Uint8Array, nowMs: number): Decision {
    const c = this.cfg;
    const info: DatagramInfo = { dir: this.dir, index: this.index++, timeMs: nowMs, size: data.length, type: packetType(data), data };
    const st = this.stats;
    st.received++;
    st.bytesIn += data.length;
    // Random draws happen in a fixed order for every datagram, whatever the outcome, so one
    // option does not shift the random sequence of another (same seed, same loss pattern).
    const rLoss = this.rng.float();
    const rCorrupt = this.rng.float();
    const rDup = this.rng.float();
    const rReorder = this.rng.float();
    const rJitter = this.rng.float();
    while (this.queue.length && this.queue[0]! <= nowMs) this.queue.shift();
    const queueLen = this.queue.length;
    const drop = (reason: DropReason): Decision => {
      st.dropped[reason]++;
      return { info, fate: 'dropped', reason, data, deliverAtMs: [], duplicated: false, reordered: false, queueLen };
    };

    if (c.blackholes?.some((w) => nowMs >= w.fromMs && nowMs < w.toMs)) return drop('blackhole');
    if (c.dropFirst !== undefined && info.index < c.dropFirst) return drop('targeted');
    if (this.dropIdx.has(info.index)) return drop('targeted');
    if (c.dropTypes?.includes(info.type) && (c.dropTypesCount === undefined || this.typeDrops < c.dropTypesCount)) {
      this.typeDrops++;
      return drop('targeted');
    }
    if (c.drop?.(info)) return drop('targeted');
    if (c.loss && rLoss < c.loss) return drop('loss');

    let out = data;
    let fate: Decision['fate'] = 'forwarded';
    if (c.corrupt && rCorrupt < c.corrupt && data.length > (c.corruptSkip ?? 0)) {
      out = data.slice();
      const skip = c.corruptSkip ?? 0;
      for (let i = 0; i < (c.corruptBytes ?? 1); i++) {
        const at = skip + this.rng.int(out.length - skip);
        out[at] = out[at]! ^ (1 + this.rng.int(255)); // always a change
      }
      fate = 'corrupted';
      st.corrupted++;
    }

    // Bottleneck: drop-tail queue in front of a serializer.
    let txDone = nowMs;
    if (c.rateMbps > 0 && Number.isFinite(c.rateMbps)) {
      if (queueLen >= c.queuePackets) return drop('queue');
      const serMs = (data.length * 8) / (c.rateMbps * 1000);
      txDone = Math.max(nowMs, this.busyUntil) + serMs;
      this.busyUntil = txDone;
      this.queue.push(txDone);
      if (this.queue.length > st.maxQueue) st.maxQueue = this.queue.length;
    }
    let at = txDone + c.delayMs + (c.jitterMs ? rJitter * c.jitterMs : 0);
    const reordered = !!c.reorder && rReorder < c.reorder;
    if (reordered) {
      at += c.reorderDelayMs ?? 10;
      st.reordered++;
    }
    const duplicated = !!c.duplicate && rDup < c.duplicate;
    const deliverAtMs = duplicated ? [at, at + 0.1] : [at];
    if (duplicated) st.duplicated++;
    st.forwarded++;
    st.bytesOut += out.length * deliverAtMs.length;
    return { info, fate, data: out, deliverAtMs, duplicated, reordered, queueLen };
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  return r;
}
