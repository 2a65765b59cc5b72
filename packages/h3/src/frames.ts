/**
 * HTTP/3 frames (RFC 9114 §7): types, SETTINGS identifiers, encoders, payload parsers, and a
 * streaming {@link FrameReader} that cuts a stream's bytes into frames (DATA payload is passed
 * through in chunks, other frames are buffered whole up to a limit, unknown types are skipped).
 */
import { H3Error, h3Error } from './errors.js';
import { readVarint, varintLength, writeVarint } from './varint.js';

export const FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

/** HTTP/2 frame types with no HTTP/3 equivalent (§7.2.8): receipt is H3_FRAME_UNEXPECTED. */
export function isReservedHttp2FrameType(t: number): boolean {
  return t === 0x02 || t === 0x06 || t === 0x08 || t === 0x09;
}

/** Reserved "grease" frame / setting / stream types: 0x1f * N + 0x21 (§7.2.8, §7.2.4.1, §6.2.3). */
export function isGreaseType(t: number): boolean {
  return t >= 0x21 && (t - 0x21) % 0x1f === 0;
}

export const SettingId = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
} as const;

/** HTTP/2 settings identifiers, forbidden in HTTP/3 (§7.2.4.1). */
export function isHttp2SettingId(id: number): boolean {
  return id === 0x02 || id === 0x03 || id === 0x04 || id === 0x05;
}

export const StreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
} as const;

/** Frame header + payload. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(payload.length) + payload.length);
  let o = writeVarint(out, 0, type);
  o = writeVarint(out, o, payload.length);
  out.set(payload, o);
  return out;
}

/** Only the header of a DATA frame of `length` bytes (the payload is written separately). */
export function encodeDataFrameHeader(length: number): Uint8Array {
  const out = new Uint8Array(1 + varintLength(length));
  writeVarint(out, 1, length);
  return out;
}

export function encodeSettings(settings: ReadonlyMap<number, number> | [number, number][]): Uint8Array {
  const entries = settings instanceof Map ? [...settings] : (settings as [number, number][]);
  let len = 0;
  for (const [k, v] of entries) len += varintLength(k) + varintLength(v);
  const payload = new Uint8Array(len);
  let o = 0;
  for (const [k, v] of entries) {
    o = writeVarint(payload, o, k);
    o = writeVarint(payload, o, v);
  }
  return encodeFrame(FrameType.SETTINGS, payload);
}

/** A frame whose payload is one varint: GOAWAY, MAX_PUSH_ID, CANCEL_PUSH. */
export function encodeIdFrame(type: number, id: number): Uint8Array {
  const payload = new Uint8Array(varintLength(id));
  writeVarint(payload, 0, id);
  return encodeFrame(type, payload);
}

const pos = { v: 0 };

/** SETTINGS payload → map. Duplicate ids or HTTP/2 ids → H3_SETTINGS_ERROR; truncation → H3_FRAME_ERROR. */
export function parseSettings(payload: Uint8Array): Map<number, number> {
  const out = new Map<number, number>();
  let o = 0;
  while (o < payload.length) {
    const id = readVarint(payload, o, payload.length, pos);
    if (id < 0) throw h3Error(H3Error.H3_FRAME_ERROR, 'truncated SETTINGS');
    o = pos.v;
    const value = readVarint(payload, o, payload.length, pos);
    if (value < 0) throw h3Error(H3Error.H3_FRAME_ERROR, 'truncated SETTINGS');
    o = pos.v;
    if (isHttp2SettingId(id)) throw h3Error(H3Error.H3_SETTINGS_ERROR, `HTTP/2 setting 0x${id.toString(16)}`);
    if (out.has(id)) throw h3Error(H3Error.H3_SETTINGS_ERROR, `duplicate setting 0x${id.toString(16)}`);
    out.set(id, value);
  }
  return out;
}

/** Payload that is exactly one varint (GOAWAY, MAX_PUSH_ID, CANCEL_PUSH); else H3_FRAME_ERROR. */
export function parseIdFrame(payload: Uint8Array, what: string): number {
  const v = readVarint(payload, 0, payload.length, pos);
  if (v < 0 || pos.v !== payload.length) throw h3Error(H3Error.H3_FRAME_ERROR, `malformed ${what}`);
  return v;
}

/** PUSH_PROMISE payload: push id + encoded field section. */
export function parsePushPromise(payload: Uint8Array): { pushId: number; fieldSection: Uint8Array } {
  const v = readVarint(payload, 0, payload.length, pos);
  if (v < 0) throw h3Error(H3Error.H3_FRAME_ERROR, 'malformed PUSH_PROMISE');
  return { pushId: v, fieldSection: payload.subarray(pos.v) };
}

export interface RawFrame {
  type: number;
  /** Whole payload, or for DATA one chunk of it. */
  payload: Uint8Array;
}

/**
 * Cuts a stream into frames. `push(chunk)` returns the frames (and DATA chunks) completed by it.
 * Frames other than DATA are buffered up to `maxFrameSize` (larger → H3_EXCESSIVE_LOAD); unknown
 * and grease types are skipped without buffering.
 */
export class FrameReader {
  private header = new Uint8Array(16);
  private headerLen = 0;
  /** -1: reading a frame header; else the type of the frame whose payload is being read. */
  private type = -1;
  private remaining = 0;
  private skip = false;
  private parts: Uint8Array[] = [];
  private partsLen = 0;
  /** Type of the first frame whose header was read, skipped types included (-1 before any). */
  firstType = -1;

  constructor(
    private readonly maxFrameSize: number,
    /** Types buffered whole (and delivered); other non-DATA types are skipped. */
    private readonly known: (type: number) => boolean = isKnownFrameType,
  ) {}

  /** True between frames (a FIN here is clean; elsewhere it truncates a frame → H3_FRAME_ERROR). */
  get atBoundary(): boolean {
    return this.type === -1 && this.headerLen === 0;
  }

  push(chunk: Uint8Array, out: RawFrame[] = []): RawFrame[] {
    let o = 0;
    while (o < chunk.length) {
      if (this.type === -1) {
        // Header bytes accumulate until type and length parse (at most 16 bytes).
        while (o < chunk.length && this.headerLen < 16) {
          this.header[this.headerLen++] = chunk[o++]!;
          const t = readVarint(this.header, 0, this.headerLen, pos);
          if (t < 0) continue;
          const l = readVarint(this.header, pos.v, this.headerLen, pos);
          if (l < 0) continue;
          this.headerLen = 0;
          this.startFrame(t, l, out);
          break;
        }
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - o);
      const piece = chunk.subarray(o, o + n);
      o += n;
      this.remaining -= n;
      if (this.type === FrameType.DATA) {
        if (n > 0) out.push({ type: FrameType.DATA, payload: piece });
      } else if (!this.skip) {
        this.parts.push(piece);
        this.partsLen += n;
      }
      if (this.remaining === 0) this.endFrame(out);
    }
    return out;
  }

  private startFrame(type: number, length: number, out: RawFrame[]): void {
    if (isReservedHttp2FrameType(type)) {
      throw h3Error(H3Error.H3_FRAME_UNEXPECTED, `reserved HTTP/2 frame type 0x${type.toString(16)}`);
    }
    if (this.firstType === -1) this.firstType = type;
    this.type = type;
    this.remaining = length;
    this.skip = type !== FrameType.DATA && !this.known(type);
    if (!this.skip && type !== FrameType.DATA && length > this.maxFrameSize) {
      throw h3Error(H3Error.H3_EXCESSIVE_LOAD, `frame 0x${type.toString(16)} of ${length} bytes exceeds limit`);
    }
    if (length === 0) {
      // An empty DATA frame is still a DATA frame (it matters where it appears).
      if (type === FrameType.DATA) out.push({ type, payload: new Uint8Array(0) });
      this.endFrame(out);
    }
  }

  private endFrame(out: RawFrame[]): void {
    if (this.type !== FrameType.DATA && !this.skip) {
      let payload: Uint8Array;
      if (this.parts.length === 1) payload = this.parts[0]!.slice();
      else {
        payload = new Uint8Array(this.partsLen);
        let p = 0;
        for (const part of this.parts) {
          payload.set(part, p);
          p += part.length;
        }
      }
      out.push({ type: this.type, payload });
    }
    this.type = -1;
    this.parts = [];
    this.partsLen = 0;
    this.skip = false;
  }
}

/** Frame types this implementation interprets (others are extension/grease types: ignored). */
export function isKnownFrameType(t: number): boolean {
  return (
    t === FrameType.DATA ||
    t === FrameType.HEADERS ||
    t === FrameType.CANCEL_PUSH ||
    t === FrameType.SETTINGS ||
    t === FrameType.PUSH_PROMISE ||
    t === FrameType.GOAWAY ||
    t === FrameType.MAX_PUSH_ID
  );
}
