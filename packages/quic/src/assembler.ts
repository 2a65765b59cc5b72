/**
 * Reassembly of out-of-order byte ranges (CRYPTO data per encryption level, STREAM data per
 * stream). Incoming data is copied (the datagram buffer is reused by the caller) into
 * non-overlapping segments sorted by offset; overlapping data must be identical (RFC 9000 §2.2:
 * PROTOCOL_VIOLATION otherwise). In-order data (the bulk case) is appended into a shared block
 * (4 KiB doubling up to 64 KiB once a stream keeps receiving), extending the last segment, so that
 * a packet costs a copy but no allocation of its own and a read returns everything contiguous at
 * once; block bytes are written once and never overwritten, so views handed out stay valid. `maxBuffer` bounds how far beyond the read offset data may reach
 * (CRYPTO: CRYPTO_BUFFER_EXCEEDED 0x0d, RFC 9000 §7.5).
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from './errors.js';

/** RFC 9000 §19.6/§19.8: offsets + lengths cannot exceed 2^62 − 1. */
export const MAX_STREAM_OFFSET = 2 ** 62 - 1;

export interface AssemblerOptions {
  /** Data may not extend beyond readOffset + maxBuffer (Infinity: unchecked here, e.g. flow control
   *  already bounds it). */
  maxBuffer?: number;
  /** Error code when `maxBuffer` is exceeded. Default CRYPTO_BUFFER_EXCEEDED. */
  bufferErrorCode?: number;
  /** Frame type reported in errors (CRYPTO 0x06 by default). */
  frameType?: number;
  /** Compare overlapping bytes (RFC 9000 §2.2 MAY). Default true. */
  checkConsistency?: boolean;
  /**
   * Resource limit on holes in the buffered data (default 2048): each hole costs bookkeeping, and a
   * peer sending tiny frames around holes could otherwise pin much more memory than the data.
   * Exceeding it is a PROTOCOL_VIOLATION.
   */
  maxGaps?: number;
  /**
   * A segment budget shared by several assemblers (all STREAM reassembly of one connection): the
   * per-stream `maxGaps` alone lets 100 streams × 2048 one-byte frames pin tens of MB. Every
   * buffered segment counts; beyond `max` (after merging adjacent segments) PROTOCOL_VIOLATION.
   */
  budget?: SegmentBudget;
}

/** Segments buffered across the assemblers sharing it (see {@link AssemblerOptions.budget}). */
export interface SegmentBudget {
  used: number;
  readonly max: number;
}

/** Default per-connection bound on buffered out-of-order segments (~300 bytes of heap each at worst). */
export const DEFAULT_MAX_REASSEMBLY_SEGMENTS = 16_384;

/** Append blocks: the first in-order append after the first insert gets MIN, then sizes double to MAX. */
const MIN_BLOCK = 4096;
const MAX_BLOCK = 64 * 1024;

interface Segment {
  off: number;
  data: Uint8Array;
}

export class Assembler {
  /** Bytes delivered to the reader (everything below is gone). */
  readOffset = 0;
  /** Highest end offset received. */
  highest = 0;
  /** Bytes currently buffered. */
  buffered = 0;
  readonly maxBuffer: number;
  private readonly bufferErrorCode: number;
  private readonly frameType: number;
  private readonly checkConsistency: boolean;
  private segs: Segment[] = [];
  private head = 0;
  /** Holes between readOffset and the last segment. */
  private gaps = 0;
  readonly maxGaps: number;
  /** Segment count at which adjacent segments are merged (amortized defragmentation). */
  private defragAt = 256;
  private readonly budget: SegmentBudget | null;
  /** Append block: bytes [0, blockPos) are written (and may be viewed), the rest is free. */
  private block: Uint8Array | null = null;
  private blockPos = 0;
  /** Size of the next append block (0: none yet; the first insert gets an exact-size copy). */
  private nextBlock = 0;
  /** The segment whose data ends at `blockPos` in `block` (extended by contiguous appends). */
  private blockSeg: Segment | null = null;

  constructor(opts: AssemblerOptions = {}) {
    this.maxBuffer = opts.maxBuffer ?? Infinity;
    this.bufferErrorCode = opts.bufferErrorCode ?? TransportError.CRYPTO_BUFFER_EXCEEDED;
    this.frameType = opts.frameType ?? 0x06;
    this.checkConsistency = opts.checkConsistency ?? true;
    this.maxGaps = opts.maxGaps ?? 2048;
    this.budget = opts.budget ?? null;
  }

  /** Number of holes in the buffered data. */
  get gapCount(): number {
    return this.gaps;
  }

  /** Number of buffered segments. */
  get segmentCount(): number {
    return this.segs.length - this.head;
  }

  /** Bytes readable now (contiguous from readOffset). */
  get readable(): number {
    let end = this.readOffset;
    for (let i = this.head; i < this.segs.length; i++) {
      const s = this.segs[i]!;
      if (s.off > end) break;
      end = s.off + s.data.length;
    }
    return end - this.readOffset;
  }

  /**
   * Adds `data` at `offset` (copied). Data below the read offset or already buffered is ignored
   * after a consistency check. Throws ProtocolViolation on a limit or consistency violation,
   * leaving the state unchanged.
   */
  insert(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > MAX_STREAM_OFFSET) {
      throw new ProtocolViolation('quic', TransportError.FRAME_ENCODING_ERROR, `data offset ${offset}+${data.length} beyond 2^62-1`, this.frameType);
    }
    if (end > this.readOffset + this.maxBuffer) {
      throw new ProtocolViolation(
        'quic',
        this.bufferErrorCode,
        `data up to offset ${end} exceeds the ${this.maxBuffer}-byte reassembly buffer (read offset ${this.readOffset})`,
        this.frameType,
      );
    }
    const start = Math.max(offset, this.readOffset);
    if (end <= start) return;
    const segs = this.segs;
    // Fast path: appends after everything buffered.
    const last = segs.length > this.head ? segs[segs.length - 1]! : undefined;
    if (!last || last.off + last.data.length <= start) {
      this.append(last, start, data, start - offset, end - offset);
      if (end > this.highest) this.highest = end;
      this.afterInsert();
      return;
    }
    // First segment that ends after `start`.
    let a = this.head, b = segs.length;
    while (a < b) {
      const m = (a + b) >> 1;
      const s = segs[m]!;
      if (s.off + s.data.length <= start) a = m + 1;
      else b = m;
    }
    // Check consistency of all overlaps before changing anything.
    if (this.checkConsistency) {
      for (let j = a; j < segs.length; j++) {
        const s = segs[j]!;
        if (s.off >= end) break;
        const lo = Math.max(start, s.off), hi = Math.min(end, s.off + s.data.length);
        for (let p = lo; p < hi; p++) {
          if (s.data[p - s.off] !== data[p - offset]) {
            throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, `different data received at offset ${p}`, this.frameType);
          }
        }
      }
    }
    // Insert the pieces of new data that fill the gaps.
    let pos = start;
    let j = a;
    while (pos < end) {
      const s = j < segs.length ? segs[j]! : undefined;
      if (!s || s.off >= end) {
        this.add(j, pos, data.slice(pos - offset, end - offset));
        break;
      }
      if (s.off > pos) {
        this.add(j, pos, data.slice(pos - offset, s.off - offset));
        j++;
      }
      pos = Math.max(pos, s.off + s.data.length);
      j++;
    }
    if (end > this.highest) this.highest = end;
    this.afterInsert();
  }

  /**
   * Fast path of insert(): data[from, to) at stream offset `off`, after everything buffered (`last`
   * is the last buffered segment, if any). Copied into the append block; a piece contiguous with
   * the segment that ends at the block's write position extends that segment.
   */
  private append(last: Segment | undefined, off: number, data: Uint8Array, from: number, to: number): void {
    const n = to - from;
    let blk = this.block;
    if (this.nextBlock === 0) {
      // First data: an exact-size copy (a stream that gets one frame costs no more than that).
      this.nextBlock = MIN_BLOCK;
      this.add(this.segs.length, off, data.slice(from, to));
      return;
    }
    if (!blk || blk.length - this.blockPos < n) {
      const size = Math.max(n, this.nextBlock);
      if (this.nextBlock < MAX_BLOCK) this.nextBlock *= 2;
      blk = this.block = new Uint8Array(size);
      this.blockPos = 0;
      this.blockSeg = null;
    }
    const pos = this.blockPos;
    blk.set(n === data.length ? data : data.subarray(from, to), pos);
    this.blockPos = pos + n;
    const seg = this.blockSeg;
    if (seg !== null && seg === last && seg.off + seg.data.length === off) {
      // Contiguous with the last segment, whose bytes end right here in the block: extend it
      // (no new segment, no new hole: gap and budget counts are unchanged).
      seg.data = blk.subarray(pos - seg.data.length, pos + n);
      this.buffered += n;
      return;
    }
    const piece = blk.subarray(pos, pos + n);
    this.add(this.segs.length, off, piece);
    this.blockSeg = this.segs[this.segs.length - 1]!;
  }

  private add(idx: number, off: number, data: Uint8Array): void {
    // Gap bookkeeping: the piece goes between `prevEnd` and the next segment.
    const prev = idx > this.head ? this.segs[idx - 1]! : undefined;
    const prevEnd = prev ? prev.off + prev.data.length : this.readOffset;
    const next = idx < this.segs.length ? this.segs[idx]! : undefined;
    const end = off + data.length;
    const before = next && prevEnd < next.off ? 1 : 0;
    const after = (prevEnd < off ? 1 : 0) + (next && end < next.off ? 1 : 0);
    this.gaps += after - before;
    if (idx === this.segs.length) this.segs.push({ off, data });
    else this.segs.splice(idx, 0, { off, data });
    this.buffered += data.length;
    if (this.budget) this.budget.used++;
  }

  private afterInsert(): void {
    if (this.gaps > this.maxGaps) {
      throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, `more than ${this.maxGaps} holes in received data`, this.frameType);
    }
    if (this.segs.length - this.head > this.defragAt) this.defragment();
    const b = this.budget;
    if (b && b.used > b.max) {
      // Adjacent segments merge first (legitimate reordering); only holes remain after that.
      if (this.segs.length - this.head > 1) this.defragment();
      if (b.used > b.max) {
        throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, `more than ${b.max} out-of-order segments buffered on the connection`, this.frameType);
      }
    }
  }

  /** Merges runs of adjacent segments into single buffers (bounded memory for tiny frames). */
  private defragment(): void {
    const out: Segment[] = [];
    let i = this.head;
    const segs = this.segs;
    while (i < segs.length) {
      let j = i + 1;
      let end = segs[i]!.off + segs[i]!.data.length;
      while (j < segs.length && segs[j]!.off === end) {
        end += segs[j]!.data.length;
        j++;
      }
      if (j === i + 1) out.push(segs[i]!);
      else {
        const off = segs[i]!.off;
        const buf = new Uint8Array(end - off);
        for (let k = i; k < j; k++) buf.set(segs[k]!.data, segs[k]!.off - off);
        out.push({ off, data: buf });
      }
      i = j;
    }
    if (this.budget) this.budget.used -= segs.length - this.head - out.length;
    this.segs = out;
    this.head = 0;
    this.defragAt = Math.max(256, 2 * out.length);
  }

  /**
   * Returns up to `max` contiguous bytes at the read offset (a view into the buffer, valid until
   * the next call) and advances, or null if none are available.
   */
  read(max = Infinity): Uint8Array | null {
    if (this.head === this.segs.length || max <= 0) return null;
    const s = this.segs[this.head]!;
    if (s.off > this.readOffset) return null;
    const skip = this.readOffset - s.off; // 0 unless partially read before
    const n = Math.min(s.data.length - skip, max);
    const out = s.data.subarray(skip, skip + n);
    this.readOffset += n;
    this.buffered -= n;
    if (skip + n === s.data.length) {
      this.segs[this.head] = undefined as unknown as Segment;
      this.head++;
      if (this.budget) this.budget.used--;
      this.compact();
    }
    return out;
  }

  /** Copies all readable bytes into one new array (convenience for CRYPTO data), or null. */
  readAll(): Uint8Array | null {
    const n = this.readable;
    if (n === 0) return null;
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.read(n - o)!;
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  /** Drops everything buffered (STOP_SENDING / reset); the read offset moves to `highest`. */
  discard(): void {
    if (this.budget) this.budget.used -= this.segs.length - this.head;
    this.segs = [];
    this.head = 0;
    this.buffered = 0;
    this.gaps = 0;
    this.block = null;
    this.blockSeg = null;
    this.blockPos = 0;
    this.readOffset = Math.max(this.readOffset, this.highest);
  }

  private compact(): void {
    if (this.head === this.segs.length) {
      this.segs.length = 0;
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.segs.length) {
      this.segs.splice(0, this.head);
      this.head = 0;
    }
  }
}
