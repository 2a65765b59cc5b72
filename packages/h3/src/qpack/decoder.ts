/**
 * QPACK decoder (RFC 9204 §2.2, §4.3 encoder instructions in, §4.4 decoder instructions out, §4.5
 * field sections). Sans-I/O: feed the peer's encoder stream bytes with {@link QpackDecoder.feedEncoderStream},
 * decode field sections with {@link QpackDecoder.decodeSection}, and send what
 * {@link QpackDecoder.takeDecoderStream} returns on our decoder stream.
 */
import { QpackError, qpackError } from '../errors.js';
import { ProtocolViolation } from '@petrel/tls-core';
import { DynamicTable, ENTRY_OVERHEAD, type TableEntry } from './dynamic-table.js';
import { fromUtf8, QpackReader, QpackWriter, TRUNCATED } from './primitives.js';
import { STATIC_TABLE } from './static-table.js';

export type FieldLine = [name: string, value: string];

export interface QpackDecoderOptions {
  /** SETTINGS_QPACK_MAX_TABLE_CAPACITY we advertise (default 4096). */
  maxTableCapacity?: number;
  /** SETTINGS_QPACK_BLOCKED_STREAMS we advertise (default 16). */
  maxBlockedStreams?: number;
  /** Largest field section (RFC 9114 §4.2.2 size: name + value + 32 per line) we accept. */
  maxFieldSectionSize?: number;
  /** Largest amount of unparsed encoder-stream bytes buffered (default max(64 KiB, 2 × capacity)). */
  maxEncoderStreamBuffer?: number;
}

export type SectionResult =
  | { status: 'done'; headers: FieldLine[] }
  | { status: 'blocked'; requiredInsertCount: number };

/** A field section that exceeds maxFieldSectionSize (RFC 9114 §4.2.2): a stream-level refusal. */
export class FieldSectionTooLarge extends ProtocolViolation {
  constructor(readonly size: number) {
    super('h3', 0x107, `field section larger than ${size} bytes`);
  }
}

export class QpackDecoder {
  readonly maxTableCapacity: number;
  readonly maxBlockedStreams: number;
  readonly maxFieldSectionSize: number;
  private readonly maxEncoderStreamBuffer: number;
  private readonly table = new DynamicTable();
  private pending = new Uint8Array(0);
  private out = new QpackWriter();
  /** Insert Count the encoder knows we have received (via section acks and increments). */
  private acknowledgedInsertCount = 0;
  /** Streams with a blocked field section → its Required Insert Count. */
  private readonly blocked = new Map<number, number>();

  constructor(opts: QpackDecoderOptions = {}) {
    this.maxTableCapacity = opts.maxTableCapacity ?? 4096;
    this.maxBlockedStreams = opts.maxBlockedStreams ?? 16;
    this.maxFieldSectionSize = opts.maxFieldSectionSize ?? 64 * 1024;
    this.maxEncoderStreamBuffer = opts.maxEncoderStreamBuffer ?? Math.max(64 * 1024, 2 * this.maxTableCapacity + 64);
  }

  get insertCount(): number {
    return this.table.insertCount;
  }
  get tableSize(): number {
    return this.table.size;
  }
  get tableCapacity(): number {
    return this.table.capacity;
  }
  get blockedStreamCount(): number {
    return this.blocked.size;
  }
  /** Entry by absolute index (tests, debugging). */
  entry(abs: number): TableEntry | undefined {
    return this.table.get(abs);
  }

  /**
   * Bytes from the peer's encoder stream. Complete instructions are applied; a trailing partial
   * instruction waits for more bytes. Returns the ids of streams that became unblocked (decode them
   * again with {@link decodeSection}). Errors: QPACK_ENCODER_STREAM_ERROR.
   */
  feedEncoderStream(data: Uint8Array): number[] {
    let buf: Uint8Array;
    if (this.pending.length === 0) buf = data;
    else {
      buf = new Uint8Array(this.pending.length + data.length);
      buf.set(this.pending);
      buf.set(data, this.pending.length);
    }
    const code = QpackError.QPACK_ENCODER_STREAM_ERROR;
    const r = new QpackReader(buf, 0, buf.length, code, this.maxTableCapacity);
    let done = 0;
    try {
      while (r.remaining > 0) {
        this.instruction(r);
        done = r.pos;
      }
    } catch (e) {
      if (e !== TRUNCATED) throw e;
    }
    const rest = buf.length - done;
    if (rest > this.maxEncoderStreamBuffer) throw qpackError(code, 'encoder instruction too large');
    this.pending = rest === 0 ? new Uint8Array(0) : buf.slice(done);
    const unblocked: number[] = [];
    for (const [id, ric] of this.blocked) {
      if (ric <= this.table.insertCount) {
        unblocked.push(id);
        this.blocked.delete(id);
      }
    }
    return unblocked;
  }

  /** Parses and applies one encoder instruction (all reads happen before any state change). */
  private instruction(r: QpackReader): void {
    const code = QpackError.QPACK_ENCODER_STREAM_ERROR;
    const b = r.peek();
    if (b & 0x80) {
      // Insert With Name Reference: 1 T index(6), value string H + 7-bit length.
      const isStatic = (b & 0x40) !== 0;
      const idx = r.int(6);
      const value = r.string(7);
      let name: string;
      let nameSize: number;
      if (isStatic) {
        const e = STATIC_TABLE[idx];
        if (!e) throw qpackError(code, `static index ${idx} out of range`);
        name = e[0];
        nameSize = name.length; // static names are ASCII
      } else {
        // Relative index: Insert Count - 1 - index (§3.2.5). The name is copied before any
        // eviction this insertion causes (§4.3.2).
        const e = this.table.get(this.table.insertCount - 1 - idx);
        if (!e) throw qpackError(code, `dynamic relative index ${idx} invalid`);
        name = e.name;
        nameSize = e.nameSize;
      }
      this.insert(name, fromUtf8(value), nameSize, value.length);
    } else if (b & 0x40) {
      // Insert With Literal Name: 01 H len(5) name, value H + len(7).
      const name = r.string(5);
      const value = r.string(7);
      this.insert(fromUtf8(name), fromUtf8(value), name.length, value.length);
    } else if (b & 0x20) {
      // Set Dynamic Table Capacity: 001 capacity(5).
      const cap = r.int(5);
      if (cap > this.maxTableCapacity) throw qpackError(code, `capacity ${cap} exceeds our maximum`);
      this.table.setCapacity(cap);
    } else {
      // Duplicate: 000 index(5).
      const idx = r.int(5);
      const e = this.table.get(this.table.insertCount - 1 - idx);
      if (!e) throw qpackError(code, `duplicate of invalid relative index ${idx}`);
      this.insert(e.name, e.value, e.nameSize, e.size - e.nameSize - ENTRY_OVERHEAD);
    }
  }

  private insert(name: string, value: string, nameSize: number, valueSize: number): void {
    const size = nameSize + valueSize + ENTRY_OVERHEAD;
    if (size > this.table.capacity) {
      throw qpackError(QpackError.QPACK_ENCODER_STREAM_ERROR, 'entry larger than the table capacity');
    }
    this.table.insert({ name, value, size, nameSize });
  }

  /**
   * Decodes an encoded field section for `streamId`. If it references entries not yet received,
   * returns 'blocked' (call again with the same bytes after feedEncoderStream reports the stream).
   * Errors: QPACK_DECOMPRESSION_FAILED (connection), {@link FieldSectionTooLarge} (stream).
   */
  decodeSection(streamId: number, data: Uint8Array): SectionResult {
    const code = QpackError.QPACK_DECOMPRESSION_FAILED;
    const max = this.maxFieldSectionSize;
    const r = new QpackReader(data, 0, data.length, code, max, () => new FieldSectionTooLarge(max));
    try {
      const ric = this.requiredInsertCount(r.int(8));
      const signNeg = (r.peek() & 0x80) !== 0;
      const delta = r.int(7);
      let base: number;
      if (!signNeg) base = ric + delta;
      else {
        base = ric - delta - 1;
        if (base < 0) throw qpackError(code, 'negative Base');
      }
      if (ric > this.table.insertCount) {
        if (!this.blocked.has(streamId) && this.blocked.size >= this.maxBlockedStreams) {
          throw qpackError(code, 'too many blocked streams');
        }
        this.blocked.set(streamId, ric);
        return { status: 'blocked', requiredInsertCount: ric };
      }
      this.blocked.delete(streamId);
      const headers: FieldLine[] = [];
      let total = 0;
      this.sectionRic = ric;
      this.maxRef = -1;
      while (r.remaining > 0) {
        const b = r.peek();
        let name: string;
        let value: string;
        let size: number;
        if (b & 0x80) {
          // Indexed Field Line: 1 T index(6).
          const idx = r.int(6);
          if (b & 0x40) {
            [name, value] = staticRef(idx);
            size = byteLen(name) + byteLen(value);
          } else {
            const e = this.dynamicRef(base - 1 - idx);
            name = e.name;
            value = e.value;
            size = e.size - ENTRY_OVERHEAD;
          }
        } else if (b & 0x40) {
          // Literal With Name Reference: 01 N T index(4), value.
          const idx = r.int(4);
          const v = r.string(7);
          if (b & 0x10) name = staticRef(idx)[0];
          else name = this.dynamicRef(base - 1 - idx).name;
          value = fromUtf8(v);
          size = byteLen(name) + v.length;
        } else if (b & 0x20) {
          // Literal With Literal Name: 001 N H len(3) name, value.
          const n = r.string(3);
          const v = r.string(7);
          name = fromUtf8(n);
          value = fromUtf8(v);
          size = n.length + v.length;
        } else if (b & 0x10) {
          // Indexed Field Line With Post-Base Index: 0001 index(4).
          const e = this.dynamicRef(base + r.int(4));
          name = e.name;
          value = e.value;
          size = e.size - ENTRY_OVERHEAD;
        } else {
          // Literal With Post-Base Name Reference: 0000 N index(3), value.
          const idx = r.int(3);
          const v = r.string(7);
          name = this.dynamicRef(base + idx).name;
          value = fromUtf8(v);
          size = byteLen(name) + v.length;
        }
        total += size + ENTRY_OVERHEAD;
        if (total > this.maxFieldSectionSize) throw new FieldSectionTooLarge(this.maxFieldSectionSize);
        headers.push([name, value]);
      }
      // §2.2.3 / §4.5.1.1: the Required Insert Count must be exactly what the references need.
      if (ric !== this.maxRef + 1) throw qpackError(code, `Required Insert Count ${ric} but largest reference ${this.maxRef}`);
      if (ric > 0) {
        // Section Acknowledgment (§4.4.1): 1 stream(7).
        this.out.int(7, 0x80, streamId);
        if (ric > this.acknowledgedInsertCount) this.acknowledgedInsertCount = ric;
      }
      return { status: 'done', headers };
    } catch (e) {
      if (e === TRUNCATED) throw qpackError(code, 'truncated field section');
      throw e;
    }
  }

  private sectionRic = 0;
  private maxRef = -1;

  /** A dynamic-table reference inside the section being decoded. */
  private dynamicRef(abs: number): TableEntry {
    const code = QpackError.QPACK_DECOMPRESSION_FAILED;
    if (abs >= this.sectionRic) throw qpackError(code, `reference ${abs} beyond Required Insert Count`);
    const e = this.table.get(abs);
    if (!e) throw qpackError(code, `reference to evicted or unknown entry ${abs}`);
    if (abs > this.maxRef) this.maxRef = abs;
    return e;
  }

  /** §4.5.1.1: decode the encoded Required Insert Count. */
  private requiredInsertCount(encoded: number): number {
    if (encoded === 0) return 0;
    const code = QpackError.QPACK_DECOMPRESSION_FAILED;
    const maxEntries = Math.floor(this.maxTableCapacity / 32);
    const fullRange = 2 * maxEntries;
    if (encoded > fullRange) throw qpackError(code, 'invalid encoded Required Insert Count');
    const maxValue = this.table.insertCount + maxEntries;
    const maxWrapped = Math.floor(maxValue / fullRange) * fullRange;
    let ric = maxWrapped + encoded - 1;
    if (ric > maxValue) {
      if (ric <= fullRange) throw qpackError(code, 'invalid encoded Required Insert Count');
      ric -= fullRange;
    }
    if (ric === 0) throw qpackError(code, 'invalid encoded Required Insert Count');
    return ric;
  }

  /**
   * The request stream was reset or its reading abandoned (§4.4.2): forget a blocked section and
   * tell the encoder with a Stream Cancellation (omitted when our table capacity is 0).
   */
  cancelStream(streamId: number): void {
    this.blocked.delete(streamId);
    if (this.maxTableCapacity > 0) this.out.int(6, 0x40, streamId);
  }

  /**
   * Bytes to send on our decoder stream: pending acknowledgments and cancellations, then an Insert
   * Count Increment (§4.4.3) for insertions no acknowledgment covered.
   */
  takeDecoderStream(): Uint8Array {
    const inc = this.table.insertCount - this.acknowledgedInsertCount;
    if (inc > 0) {
      this.out.int(6, 0x00, inc);
      this.acknowledgedInsertCount = this.table.insertCount;
    }
    return this.out.take();
  }
}

function staticRef(idx: number): readonly [string, string] {
  const e = STATIC_TABLE[idx];
  if (!e) throw qpackError(QpackError.QPACK_DECOMPRESSION_FAILED, `static index ${idx} out of range`);
  return e;
}

const enc = new TextEncoder();
function byteLen(s: string): number {
  // Fast path for ASCII (almost every field).
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return enc.encode(s).length;
  return s.length;
}
