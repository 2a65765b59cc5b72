/**
 * QPACK encoder (RFC 9204 §2.1, §4.3 encoder instructions out, §4.4 decoder instructions in, §4.5
 * field sections).
 *
 * Strategy (single pass, Base = Insert Count when the section starts, as in Appendix C):
 *  1. exact static match → Indexed Field Line (static);
 *  2. exact dynamic match that may be referenced → Indexed Field Line (pre- or post-Base);
 *  3. a field worth indexing (seen `insertThreshold` times, or a name that rarely changes value) is
 *     inserted when it fits by evicting only evictable entries, then referenced if allowed;
 *  4. otherwise a literal, with a static or dynamic name reference when there is one.
 * "May be referenced": the entry is acknowledged (absolute index < Known Received Count), or the
 * stream may block: it already blocks, or fewer than SETTINGS_QPACK_BLOCKED_STREAMS streams block.
 * "Evictable" (§2.1.1): acknowledged by the decoder and referenced by no unacknowledged section.
 * authorization / proxy-authorization are never indexed and are sent with the N bit (§7.1.3).
 */
import { QpackError, qpackError, H3UsageError } from '../errors.js';
import { DynamicTable, ENTRY_OVERHEAD } from './dynamic-table.js';
import type { FieldLine } from './decoder.js';
import { QpackReader, QpackWriter, TRUNCATED, utf8 } from './primitives.js';
import { staticExact, staticName } from './static-table.js';

export interface QpackEncoderOptions {
  /** Upper bound for the dynamic table we use, whatever the peer allows (default 4096). */
  maxTableCapacity?: number;
  /** Huffman-code strings: 'auto' (when shorter, default), always, or never. */
  huffman?: boolean | 'auto';
  /** Insert a field after seeing it this many times (default 2; 1 = on first sight). */
  insertThreshold?: number;
}

/** Names whose values repeat across messages: inserted on first sight. */
const STABLE_NAMES = new Set([
  ':authority', ':scheme', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'server',
  'content-type', 'cache-control', 'origin', 'referer', 'cookie', 'vary', 'alt-svc', 'via',
]);
const SENSITIVE_NAMES = new Set(['authorization', 'proxy-authorization']);

/**
 * Field sections with dynamic references that the decoder has not acknowledged yet, across all
 * streams. A decoder that never sends Section Acknowledgments (a broken or hostile peer) would
 * otherwise make this state grow with every message; beyond the bound, new sections use only the
 * static table and literals (always allowed, §2.1.2) until acknowledgments come.
 */
export const MAX_OUTSTANDING_SECTIONS = 1024;

interface Section {
  ric: number;
  refs: number[];
}

export class QpackEncoder {
  private readonly table = new DynamicTable();
  private readonly maxCapacity: number;
  private readonly huffman: boolean | 'auto';
  private readonly insertThreshold: number;
  private readonly out = new QpackWriter();
  /** Peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY and SETTINGS_QPACK_BLOCKED_STREAMS. */
  private peerMaxCapacity = 0;
  private peerBlockedStreams = 0;
  /** Known Received Count (§2.1.4). */
  private krc = 0;
  private readonly refCounts = new Map<number, number>();
  private readonly sections = new Map<number, Section[]>();
  /** Sections in `sections`, all streams together (bounded by MAX_OUTSTANDING_SECTIONS). */
  private outstanding = 0;
  private readonly seen = new Map<string, number>();
  private pending = new Uint8Array(0);

  constructor(opts: QpackEncoderOptions = {}) {
    this.maxCapacity = opts.maxTableCapacity ?? 4096;
    this.huffman = opts.huffman ?? 'auto';
    this.insertThreshold = opts.insertThreshold ?? 2;
  }

  get insertCount(): number {
    return this.table.insertCount;
  }
  get knownReceivedCount(): number {
    return this.krc;
  }
  get tableSize(): number {
    return this.table.size;
  }
  get tableCapacity(): number {
    return this.table.capacity;
  }
  /** Number of streams with an unacknowledged section that the decoder may be blocked on. */
  get blockedStreamCount(): number {
    let n = 0;
    for (const list of this.sections.values()) if (list.some((s) => s.ric > this.krc)) n++;
    return n;
  }
  /** Oldest absolute index still in the table. */
  get oldestIndex(): number {
    return this.table.dropped;
  }
  /** Unacknowledged field sections with dynamic references (all streams). */
  get outstandingSections(): number {
    return this.outstanding;
  }
  referenceCount(abs: number): number {
    return this.refCounts.get(abs) ?? 0;
  }

  /**
   * The peer's (decoder's) settings. Picks our capacity = min(ours, theirs) and, if non-zero, emits
   * Set Dynamic Table Capacity. Call once, when the peer's SETTINGS arrive.
   */
  applyPeerSettings(maxTableCapacity: number, blockedStreams: number): void {
    this.peerMaxCapacity = maxTableCapacity;
    this.peerBlockedStreams = blockedStreams;
    const cap = Math.min(this.maxCapacity, maxTableCapacity);
    if (cap > 0) this.setCapacity(cap);
  }

  /** Set Dynamic Table Capacity (§4.3.1). Evicts only evictable entries, else throws. */
  setCapacity(cap: number): void {
    if (cap > this.peerMaxCapacity) throw new H3UsageError(`capacity ${cap} above the peer's maximum`);
    if (this.table.size > cap) {
      let need = this.table.size - cap;
      for (let abs = this.table.dropped; need > 0; abs++) {
        if (!this.evictable(abs)) throw new H3UsageError('cannot shrink: entries still referenced');
        need -= this.table.get(abs)!.size;
      }
    }
    this.out.int(5, 0x20, cap);
    this.table.setCapacity(cap);
  }

  private evictable = (abs: number): boolean => abs < this.krc && !this.refCounts.get(abs);

  /**
   * Inserts a field (§4.3.2 / §4.3.3), referencing a static name, else a dynamic name that this
   * insertion does not evict, else a literal name. Returns the absolute index, or -1 if it cannot be
   * inserted without evicting an entry that is not evictable.
   */
  insert(name: string, value: string): number {
    const nb = utf8(name);
    const vb = utf8(value);
    const size = nb.length + vb.length + ENTRY_OVERHEAD;
    if (!this.table.canMakeRoom(size, this.evictable)) return -1;
    const s = staticName(name);
    if (s >= 0) {
      this.out.int(6, 0xc0, s);
      this.out.string(7, 0, vb, this.huffman);
    } else {
      const d = this.table.find(name, value).name;
      const firstSurvivor = this.table.dropped + this.table.evictionsFor(size);
      if (d >= firstSurvivor) {
        this.out.int(6, 0x80, this.table.insertCount - 1 - d);
        this.out.string(7, 0, vb, this.huffman);
      } else {
        this.out.string(5, 0x40, nb, this.huffman);
        this.out.string(7, 0, vb, this.huffman);
      }
    }
    const abs = this.table.insertCount;
    this.table.insert({ name, value, size, nameSize: nb.length });
    return abs;
  }

  /** Duplicate (§4.3.4) of entry `abs`. Returns the new absolute index, or -1. */
  duplicate(abs: number): number {
    const e = this.table.get(abs);
    if (!e) throw new H3UsageError(`no entry ${abs}`);
    if (!this.table.canMakeRoom(e.size, this.evictable)) return -1;
    this.out.int(5, 0x00, this.table.insertCount - 1 - abs);
    this.duplicates++;
    const n = this.table.insertCount;
    this.table.insert(e);
    return n;
  }

  private streamBlocks(streamId: number): boolean {
    const list = this.sections.get(streamId);
    return list !== undefined && list.some((s) => s.ric > this.krc);
  }

  /** Encodes a field section for `streamId` (§4.5). Encoder-stream bytes may be produced too. */
  encode(streamId: number, fields: readonly FieldLine[]): Uint8Array {
    const base = this.table.insertCount;
    const dynamic = this.table.capacity > 0 && this.outstanding < MAX_OUTSTANDING_SECTIONS;
    this.canBlock = this.streamBlocks(streamId) || this.blockedStreamCount < this.peerBlockedStreams;
    const canBlock = this.canBlock;
    const w = new QpackWriter();
    const refs: number[] = [];
    this.sectionRefs = refs;
    for (const [name, value] of fields) {
      const sensitive = SENSITIVE_NAMES.has(name);
      const st = staticExact(name, value);
      if (st >= 0) {
        w.int(6, 0xc0, st);
        continue;
      }
      let abs = -1;
      if (!sensitive && dynamic) {
        const found = this.table.find(name, value);
        if (found.exact >= 0 && canBlock && this.draining(found.exact)) {
          // §2.1.1.1: refresh an entry about to be evicted with a Duplicate rather than pin it.
          const dup = this.duplicate(found.exact);
          if (dup >= 0) abs = dup;
          else if (this.usable(found.exact)) abs = found.exact;
        } else if (this.usable(found.exact)) abs = found.exact;
        else if (this.worthInserting(name, value)) {
          const ins = this.insert(name, value);
          if (this.usable(ins)) abs = ins;
        }
      }
      if (abs >= 0) {
        this.ref(abs);
        if (abs < base) w.int(6, 0x80, base - 1 - abs);
        else w.int(4, 0x10, abs - base);
        continue;
      }
      // Literal. N bit (0x20 / 0x08 / 0x10 by form) for sensitive fields.
      const vb = utf8(value);
      const sn = staticName(name);
      if (sn >= 0) {
        w.int(4, 0x50 | (sensitive ? 0x20 : 0), sn);
        w.string(7, 0, vb, this.huffman);
        continue;
      }
      const dn = dynamic ? this.table.find(name, value).name : -1;
      if (this.usable(dn)) {
        this.ref(dn);
        if (dn < base) w.int(4, 0x40 | (sensitive ? 0x20 : 0), base - 1 - dn);
        else w.int(3, sensitive ? 0x08 : 0, dn - base);
        w.string(7, 0, vb, this.huffman);
        continue;
      }
      w.string(3, 0x20 | (sensitive ? 0x10 : 0), utf8(name), this.huffman);
      w.string(7, 0, vb, this.huffman);
    }
    let ric = 0;
    for (const abs of refs) if (abs + 1 > ric) ric = abs + 1;
    const prefix = new QpackWriter();
    if (ric === 0) {
      prefix.byte(0);
      prefix.byte(0);
    } else {
      const maxEntries = Math.floor(this.peerMaxCapacity / 32);
      prefix.int(8, 0, (ric % (2 * maxEntries)) + 1);
      if (base >= ric) prefix.int(7, 0, base - ric);
      else prefix.int(7, 0x80, ric - base - 1);
      let list = this.sections.get(streamId);
      if (!list) this.sections.set(streamId, (list = []));
      list.push({ ric, refs });
      this.outstanding++;
    }
    prefix.bytes(w.take());
    return prefix.take();
  }

  private canBlock = false;
  private sectionRefs: number[] = [];

  /** Whether entry `abs` may be referenced by the section being encoded. */
  private usable(abs: number): boolean {
    return abs >= 0 && (abs < this.krc || this.canBlock);
  }

  /** Records a reference of the section being encoded (it pins the entry until acknowledged). */
  private ref(abs: number): void {
    this.sectionRefs.push(abs);
    this.refCounts.set(abs, (this.refCounts.get(abs) ?? 0) + 1);
  }

  /**
   * Whether `abs` is among the oldest entries (the first quarter of the capacity) of a table that
   * is at least three quarters full, i.e. likely to be needed for eviction soon.
   */
  private draining(abs: number): boolean {
    const cap = this.table.capacity;
    if (this.table.size < cap * 0.75) return false;
    let older = 0;
    for (let i = this.table.dropped; i <= abs; i++) older += this.table.get(i)!.size;
    return older <= cap * 0.25;
  }

  /** Number of Duplicate instructions emitted by the strategy (statistics). */
  duplicates = 0;

  private worthInserting(name: string, value: string): boolean {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.table.capacity * 0.75) return false;
    if (this.insertThreshold <= 1 || STABLE_NAMES.has(name)) return true;
    const k = `${name}\0${value}`;
    const n = (this.seen.get(k) ?? 0) + 1;
    if (this.seen.size > 1000) this.seen.clear();
    this.seen.set(k, n);
    return n >= this.insertThreshold;
  }

  /** Bytes to send on our encoder stream. */
  takeEncoderStream(): Uint8Array {
    return this.out.take();
  }

  /** Bytes from the peer's decoder stream (§4.4). Errors: QPACK_DECODER_STREAM_ERROR. */
  feedDecoderStream(data: Uint8Array): void {
    let buf: Uint8Array;
    if (this.pending.length === 0) buf = data;
    else {
      buf = new Uint8Array(this.pending.length + data.length);
      buf.set(this.pending);
      buf.set(data, this.pending.length);
    }
    const code = QpackError.QPACK_DECODER_STREAM_ERROR;
    const r = new QpackReader(buf, 0, buf.length, code);
    let done = 0;
    try {
      while (r.remaining > 0) {
        const b = r.peek();
        if (b & 0x80) this.sectionAck(r.int(7));
        else if (b & 0x40) this.streamCancel(r.int(6));
        else {
          const inc = r.int(6);
          if (inc === 0 || this.krc + inc > this.table.insertCount) {
            throw qpackError(code, `invalid Insert Count Increment ${inc}`);
          }
          this.krc += inc;
        }
        done = r.pos;
      }
    } catch (e) {
      if (e !== TRUNCATED) throw e;
    }
    // A decoder instruction is at most a few bytes: a longer partial one is garbage.
    if (buf.length - done > 16) throw qpackError(code, 'decoder instruction too long');
    this.pending = done === buf.length ? new Uint8Array(0) : buf.slice(done);
  }

  private release(s: Section): void {
    for (const abs of s.refs) {
      const n = (this.refCounts.get(abs) ?? 0) - 1;
      if (n <= 0) this.refCounts.delete(abs);
      else this.refCounts.set(abs, n);
    }
  }

  /** §4.4.1: acknowledges the oldest unacknowledged section of the stream. */
  private sectionAck(streamId: number): void {
    const list = this.sections.get(streamId);
    const s = list?.shift();
    if (!s) {
      throw qpackError(QpackError.QPACK_DECODER_STREAM_ERROR, `Section Acknowledgment for stream ${streamId} with nothing outstanding`);
    }
    if (list!.length === 0) this.sections.delete(streamId);
    this.outstanding--;
    this.release(s);
    if (s.ric > this.krc) this.krc = s.ric;
  }

  /** §4.4.2 */
  private streamCancel(streamId: number): void {
    const list = this.sections.get(streamId);
    if (!list) return;
    for (const s of list) this.release(s);
    this.outstanding -= list.length;
    this.sections.delete(streamId);
  }
}
