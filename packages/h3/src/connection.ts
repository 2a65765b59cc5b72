/**
 * Sans-I/O HTTP/3 connection (RFC 9114), client or server, over an {@link H3Transport}:
 * `handleEvent(transportEvent) → H3Event[]`, plus sending operations. It opens the control and
 * QPACK encoder/decoder streams and sends SETTINGS at construction, enforces the stream and frame
 * rules, runs QPACK both ways, validates messages, and turns peer mistakes into the right stream
 * or connection error. Server push is not supported (we never send MAX_PUSH_ID). Extended CONNECT
 * (RFC 9220) and HTTP/3 datagrams (RFC 9297, QUIC DATAGRAM only, no Capsule Protocol) are opt-in.
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { H3_DATAGRAM_ERROR, H3Error, H3StreamError, H3UsageError, h3Error } from './errors.js';
import {
  encodeDataFrameHeader,
  encodeFrame,
  encodeIdFrame,
  encodeSettings,
  FrameReader,
  FrameType,
  parseIdFrame,
  parseSettings,
  SettingId,
  StreamType,
  type RawFrame,
} from './frames.js';
import { MessageError, validateRequest, validateResponse, validateTrailers } from './message.js';
import { FieldSectionTooLarge, QpackDecoder, type FieldLine } from './qpack/decoder.js';
import { QpackEncoder, type QpackEncoderOptions } from './qpack/encoder.js';
import { streamId as sid, type H3Transport, type TransportEvent } from './transport.js';
import { encodeVarint, readVarint } from './varint.js';

export interface H3Settings {
  qpackMaxTableCapacity: number;
  qpackBlockedStreams: number;
  /** Infinity when the peer sent none (the default is unlimited). */
  maxFieldSectionSize: number;
  /** SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220): extended CONNECT may be sent to this peer. */
  enableConnectProtocol: boolean;
  /** SETTINGS_H3_DATAGRAM = 1 (RFC 9297): the peer accepts HTTP/3 datagrams. */
  h3Datagram: boolean;
  /** Every setting as received, including unknown ones. */
  raw: ReadonlyMap<number, number>;
}

export interface H3ConnectionOptions {
  /** SETTINGS_QPACK_MAX_TABLE_CAPACITY we advertise for our decoder (default 4096). */
  qpackMaxTableCapacity?: number;
  /** SETTINGS_QPACK_BLOCKED_STREAMS we advertise (default 16). */
  qpackBlockedStreams?: number;
  /** SETTINGS_MAX_FIELD_SECTION_SIZE we advertise and enforce (default 64 KiB). */
  maxFieldSectionSize?: number;
  /** Our encoder: its own table limit, Huffman use, insertion threshold. */
  encoder?: QpackEncoderOptions;
  /** Largest non-DATA frame buffered (default 64 KiB + 1 KiB). */
  maxFrameSize?: number;
  /**
   * Bytes a request stream may buffer while its HEADERS waits for QPACK inserts (default 1 MiB);
   * beyond it the stream is reset with H3_EXCESSIVE_LOAD.
   */
  maxBlockedBuffer?: number;
  /** Server: accept extended CONNECT (RFC 9220; sends SETTINGS_ENABLE_CONNECT_PROTOCOL = 1). */
  enableConnectProtocol?: boolean;
  /**
   * Accept HTTP/3 datagrams (RFC 9297; sends SETTINGS_H3_DATAGRAM = 1). The QUIC connection must
   * have negotiated DATAGRAM frames (max_datagram_frame_size), which h3 cannot check.
   */
  enableDatagrams?: boolean;
  /** Send a reserved (grease) setting as RFC 9114 §7.2.4.1 recommends (default true). */
  greaseSettings?: boolean;
}

export type H3Event =
  /** Header section of a request (server) or response (client; interim 1xx responses too). */
  | { type: 'headers'; streamId: number; headers: FieldLine[] }
  /** A chunk of content. */
  | { type: 'data'; streamId: number; data: Uint8Array }
  /** Trailer section. */
  | { type: 'trailers'; streamId: number; trailers: FieldLine[] }
  /** The peer finished the message (FIN after a complete, valid message). */
  | { type: 'end'; streamId: number }
  /**
   * The peer reset its sending part of a request stream while we were still reading it (a reset
   * after we stopped reading or after the complete message is not reported: our side continues).
   */
  | { type: 'streamReset'; streamId: number; code: number }
  /** Data queued on a request stream has been accepted by the transport: more may be written. */
  | { type: 'writable'; streamId: number }
  /** The peer asked us to stop sending on a request stream (our sending part is reset). */
  | { type: 'stopSending'; streamId: number; code: number }
  /** We reset a request stream because the peer's message was malformed or refused. */
  | { type: 'streamError'; streamId: number; code: number; reason: string }
  /** The peer's SETTINGS arrived. */
  | { type: 'settings'; settings: H3Settings }
  /** Client: the peer allows more request streams (after a refused {@link H3Connection.trySendRequest}). */
  | { type: 'streamsAvailable' }
  /** An HTTP/3 datagram (RFC 9297) for an open request stream. */
  | { type: 'datagram'; streamId: number; data: Uint8Array }
  /** The peer started a graceful shutdown (client: stream id; server: push id). */
  | { type: 'goaway'; id: number }
  /** We closed the connection because of a peer error (or, `internal`, a bug of ours). */
  | { type: 'connectionError'; code: number; reason: string; internal?: boolean }
  /** The transport connection is closed. No events follow. */
  | { type: 'closed'; code: number; reason: string; remote: boolean };

type Phase = 'headers' | 'body' | 'trailers' | 'done';

interface RequestStream {
  id: number;
  reader: FrameReader;
  phase: Phase;
  /** Frames parsed but not yet processed (a HEADERS frame blocked on QPACK stops the queue). */
  queue: RawFrame[];
  fin: boolean;
  blocked: boolean;
  contentLength: number;
  received: number;
  /** Client: the request method (HEAD responses carry no content). */
  method: string;
  status: number;
  /** Our sending part is closed (FIN or reset). */
  localDone: boolean;
}

interface UniStream {
  id: number;
  type: number; // -1 while the type varint is incomplete
  head: Uint8Array;
  reader: FrameReader | null;
  settingsSeen: boolean;
  ignored: boolean;
}

const DEFAULT_MAX_FIELD_SECTION = 64 * 1024;

export class H3Connection {
  readonly isClient: boolean;
  readonly encoder: QpackEncoder;
  readonly decoder: QpackDecoder;
  private readonly maxFrameSize: number;
  private readonly maxBlockedBuffer: number;
  private readonly extendedConnect: boolean;
  private readonly datagrams: boolean;
  private readonly requests = new Map<number, RequestStream>();
  private readonly uni = new Map<number, UniStream>();
  private peerControl = -1;
  private peerEncoder = -1;
  private peerDecoder = -1;
  private readonly controlStream: number;
  private readonly encoderStream: number;
  private readonly decoderStream: number;
  peerSettings: H3Settings | null = null;
  /** GOAWAY id received from the peer (Infinity until one arrives). */
  private peerGoaway = Infinity;
  /** Server: largest MAX_PUSH_ID received (-1 before any). */
  private peerMaxPushId = -1;
  /** GOAWAY id we sent (Infinity until we send one). */
  private localGoaway = Infinity;
  /** Server: lowest request stream id not yet seen. */
  private nextRequestId = 0;
  /**
   * Server: request stream ids below nextRequestId that have not been seen yet (streams can arrive
   * out of order). An id below nextRequestId that is neither here nor open was finished and
   * forgotten: late data for it is ignored.
   */
  private readonly unseen = new Set<number>();
  private closedState: { code: number; reason: string } | null = null;
  private events: H3Event[] = [];

  constructor(
    readonly transport: H3Transport,
    opts: H3ConnectionOptions = {},
  ) {
    this.isClient = transport.isClient;
    const maxTable = opts.qpackMaxTableCapacity ?? 4096;
    const blocked = opts.qpackBlockedStreams ?? 16;
    const maxField = opts.maxFieldSectionSize ?? DEFAULT_MAX_FIELD_SECTION;
    this.maxFrameSize = opts.maxFrameSize ?? maxField + 1024;
    this.maxBlockedBuffer = opts.maxBlockedBuffer ?? 1 << 20;
    this.encoder = new QpackEncoder(opts.encoder);
    this.decoder = new QpackDecoder({ maxTableCapacity: maxTable, maxBlockedStreams: blocked, maxFieldSectionSize: maxField });
    const settings: [number, number][] = [
      [SettingId.QPACK_MAX_TABLE_CAPACITY, maxTable],
      [SettingId.QPACK_BLOCKED_STREAMS, blocked],
      [SettingId.MAX_FIELD_SECTION_SIZE, maxField],
    ];
    this.extendedConnect = !this.isClient && (opts.enableConnectProtocol ?? false);
    if (this.extendedConnect) settings.push([SettingId.ENABLE_CONNECT_PROTOCOL, 1]);
    this.datagrams = opts.enableDatagrams ?? false;
    if (this.datagrams) settings.push([SettingId.H3_DATAGRAM, 1]);
    if (opts.greaseSettings ?? true) settings.push([0x1f * 3 + 0x21, 0]);
    // RFC 9114 §6.2: a peer must allow at least 3 unidirectional streams, so these cannot fail.
    const uni = (): number => {
      const id = transport.openStream(false);
      if (id === null) throw new H3UsageError('the transport refused to open the HTTP/3 control streams');
      return id;
    };
    this.controlStream = uni();
    transport.write(this.controlStream, concat(encodeVarint(StreamType.CONTROL), encodeSettings(settings)), false);
    this.encoderStream = uni();
    transport.write(this.encoderStream, encodeVarint(StreamType.QPACK_ENCODER), false);
    this.decoderStream = uni();
    transport.write(this.decoderStream, encodeVarint(StreamType.QPACK_DECODER), false);
  }

  get closed(): boolean {
    return this.closedState !== null;
  }

  /** Feeds one transport event; returns the resulting HTTP/3 events. Never throws on peer input. */
  handleEvent(ev: TransportEvent): H3Event[] {
    this.events = [];
    if (this.closedState && ev.type !== 'closed') return [];
    try {
      switch (ev.type) {
        case 'streamData':
          this.onStreamData(ev.id, ev.data, ev.fin);
          break;
        case 'streamReset':
          this.onStreamReset(ev.id, ev.code);
          break;
        case 'streamStopped':
          this.onStreamStopped(ev.id, ev.code);
          break;
        case 'closed':
          if (!this.closedState) this.closedState = { code: ev.code, reason: ev.reason };
          this.requests.clear();
          this.events.push({ type: 'closed', code: ev.code, reason: ev.reason, remote: ev.remote });
          break;
        case 'datagram':
          this.onDatagram(ev.data);
          break;
        case 'streamWritable':
          if (this.requests.has(ev.id)) this.events.push({ type: 'writable', streamId: ev.id });
          break;
        case 'streamsAvailable':
          if (ev.bidi && this.isClient) this.events.push({ type: 'streamsAvailable' });
          break;
        case 'streamOpened':
        case 'handshakeComplete':
          break;
      }
    } catch (e) {
      this.fail(e);
    }
    try {
      // Section acknowledgments, cancellations (also those of a stream error), insert increments.
      this.flushDecoder();
    } catch (e) {
      this.fail(e);
    }
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Closes the connection because of `e` (a ProtocolViolation, or a bug → H3_INTERNAL_ERROR). */
  private fail(e: unknown): void {
    if (e instanceof H3StreamError) {
      this.streamError(e.streamId, e.code, e.message);
      return;
    }
    if (e instanceof ProtocolViolation) {
      this.closeWith(e.code, e.message);
      this.events.push({ type: 'connectionError', code: e.code, reason: e.message });
      return;
    }
    const reason = e instanceof Error ? e.message : String(e);
    this.closeWith(H3Error.H3_INTERNAL_ERROR, 'internal error');
    this.events.push({ type: 'connectionError', code: H3Error.H3_INTERNAL_ERROR, reason, internal: true });
  }

  private closeWith(code: number, reason: string): void {
    if (this.closedState) return;
    this.closedState = { code, reason };
    this.requests.clear();
    this.transport.close(code, reason);
  }

  /** Resets a request stream in both directions because of a stream error. */
  private streamError(id: number, code: number, reason: string): void {
    const s = this.requests.get(id);
    if (s && !s.localDone) this.transport.resetStream(id, code);
    this.transport.stopSending(id, code);
    if (s && s.phase !== 'done') this.decoder.cancelStream(id);
    this.retire(id);
    this.events.push({ type: 'streamError', streamId: id, code, reason });
  }

  private retire(id: number): void {
    this.requests.delete(id);
  }

  private flushDecoder(): void {
    if (this.closedState) return;
    const d = this.decoder.takeDecoderStream();
    if (d.length) this.transport.write(this.decoderStream, d, false);
  }

  private flushEncoder(): void {
    const e = this.encoder.takeEncoderStream();
    if (e.length) this.transport.write(this.encoderStream, e, false);
  }

  // ---- receiving -------------------------------------------------------------------------------

  private onStreamData(id: number, data: Uint8Array, fin: boolean): void {
    if (sid.isUni(id)) {
      if (sid.isLocal(id, this.isClient)) throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, `data on our unidirectional stream ${id}`);
      this.onUniData(id, data, fin);
      return;
    }
    if (!sid.isRequest(id)) {
      // §6.1: server-initiated bidirectional streams are not defined without an extension.
      throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, `server-initiated bidirectional stream ${id}`);
    }
    let s = this.requests.get(id);
    if (!s) {
      if (this.isClient) return; // a request we finished or reset already: ignore
      if (id < this.nextRequestId) {
        if (!this.unseen.delete(id)) return; // finished and forgotten: ignore late data
      } else {
        // QUIC opens lower-numbered streams implicitly (RFC 9000 §2.1); they may still arrive.
        for (let g = this.nextRequestId; g < id && this.unseen.size < 100_000; g += 4) this.unseen.add(g);
        this.nextRequestId = id + 4;
      }
      if (id >= this.localGoaway) {
        // §5.2: requests on streams at or above our GOAWAY id are rejected, not processed.
        this.transport.resetStream(id, H3Error.H3_REQUEST_REJECTED);
        this.transport.stopSending(id, H3Error.H3_REQUEST_REJECTED);
        return;
      }
      s = this.newRequestStream(id);
    }
    if (s.fin) return;
    s.reader.push(data, s.queue);
    if (s.blocked) {
      let queued = 0;
      for (const f of s.queue) queued += f.payload.length;
      if (queued > this.maxBlockedBuffer) {
        throw new H3StreamError(id, H3Error.H3_EXCESSIVE_LOAD, `stream ${id} buffered ${queued} bytes while blocked on QPACK`);
      }
    }
    if (fin) {
      if (!s.reader.atBoundary) throw h3Error(H3Error.H3_FRAME_ERROR, `stream ${id} ended inside a frame`);
      s.fin = true;
    }
    this.drainRequest(s);
  }

  private newRequestStream(id: number): RequestStream {
    const s: RequestStream = {
      id,
      reader: new FrameReader(this.maxFrameSize),
      phase: 'headers',
      queue: [],
      fin: false,
      blocked: false,
      contentLength: -1,
      received: 0,
      method: '',
      status: 0,
      localDone: false,
    };
    this.requests.set(id, s);
    return s;
  }

  /** Processes queued frames of a request stream until done, blocked, or empty. */
  private drainRequest(s: RequestStream): void {
    try {
      while (s.queue.length > 0) {
        const f = s.queue[0]!;
        if (f.type === FrameType.HEADERS) {
          const r = this.decoder.decodeSection(s.id, f.payload);
          if (r.status === 'blocked') {
            s.blocked = true;
            return;
          }
          s.blocked = false;
          s.queue.shift();
          this.onHeaders(s, r.headers);
        } else {
          s.queue.shift();
          this.onRequestFrame(s, f);
        }
        if (!this.requests.has(s.id)) return;
      }
      if (s.fin && s.phase !== 'done') this.onRequestFin(s);
    } catch (e) {
      if (e instanceof MessageError) throw new H3StreamError(s.id, H3Error.H3_MESSAGE_ERROR, e.message);
      if (e instanceof FieldSectionTooLarge) throw new H3StreamError(s.id, H3Error.H3_EXCESSIVE_LOAD, e.message);
      throw e;
    }
  }

  private onHeaders(s: RequestStream, headers: FieldLine[]): void {
    const id = s.id;
    if (s.phase === 'headers') {
      if (this.isClient) {
        const v = validateResponse(headers);
        if (v.status >= 100 && v.status < 200) {
          if (v.status === 101) throw new MessageError('101 is not allowed in HTTP/3');
          this.events.push({ type: 'headers', streamId: id, headers });
          return; // interim response: the final one follows
        }
        s.status = v.status;
        s.contentLength = v.contentLength;
      } else {
        const v = validateRequest(headers, this.extendedConnect);
        s.method = v.method;
        s.contentLength = v.contentLength;
      }
      s.phase = 'body';
      this.events.push({ type: 'headers', streamId: id, headers });
    } else if (s.phase === 'body') {
      validateTrailers(headers);
      s.phase = 'trailers';
      this.events.push({ type: 'trailers', streamId: id, trailers: headers });
    } else {
      throw h3Error(H3Error.H3_FRAME_UNEXPECTED, `HEADERS after trailers on stream ${id}`);
    }
  }

  private onRequestFrame(s: RequestStream, f: RawFrame): void {
    switch (f.type) {
      case FrameType.DATA: {
        if (s.phase !== 'body') {
          throw h3Error(H3Error.H3_FRAME_UNEXPECTED, `DATA ${s.phase === 'headers' ? 'before HEADERS' : 'after trailers'} on stream ${s.id}`);
        }
        s.received += f.payload.length;
        if (s.contentLength >= 0 && s.received > s.contentLength && !this.noContentExpected(s)) {
          throw new MessageError(`more content than content-length ${s.contentLength}`);
        }
        if (f.payload.length) this.events.push({ type: 'data', streamId: s.id, data: f.payload });
        return;
      }
      case FrameType.PUSH_PROMISE:
        // We never send MAX_PUSH_ID, so any push id is above the maximum (§7.2.5).
        if (this.isClient) throw h3Error(H3Error.H3_ID_ERROR, 'PUSH_PROMISE without MAX_PUSH_ID');
        throw h3Error(H3Error.H3_FRAME_UNEXPECTED, 'PUSH_PROMISE from a client');
      default:
        // SETTINGS, GOAWAY, MAX_PUSH_ID, CANCEL_PUSH belong on the control stream (§7.2).
        throw h3Error(H3Error.H3_FRAME_UNEXPECTED, `frame 0x${f.type.toString(16)} on request stream ${s.id}`);
    }
  }

  private noContentExpected(s: RequestStream): boolean {
    return this.isClient && (s.method === 'HEAD' || s.status === 204 || s.status === 304);
  }

  private onRequestFin(s: RequestStream): void {
    if (s.phase === 'headers') {
      throw new H3StreamError(s.id, H3Error.H3_REQUEST_INCOMPLETE, `stream ${s.id} ended without a complete header section`);
    }
    if (s.contentLength >= 0 && s.received !== s.contentLength && !this.noContentExpected(s)) {
      throw new MessageError(`content-length ${s.contentLength} but ${s.received} bytes received`);
    }
    s.phase = 'done';
    this.events.push({ type: 'end', streamId: s.id });
    if (s.localDone) this.retire(s.id);
  }

  private onUniData(id: number, data: Uint8Array, fin: boolean): void {
    let u = this.uni.get(id);
    if (!u) {
      u = { id, type: -1, head: new Uint8Array(0), reader: null, settingsSeen: false, ignored: false };
      this.uni.set(id, u);
    }
    if (u.ignored) {
      if (fin) this.uni.delete(id); // an ignored stream that ended: nothing more will come
      return;
    }
    if (u.type === -1) {
      const buf = concat(u.head, data);
      const pos = { v: 0 };
      const t = readVarint(buf, 0, buf.length, pos);
      if (t < 0) {
        u.head = buf;
        if (fin) this.uni.delete(id); // a stream that ends before its type: ignore (§6.2)
        return;
      }
      u.type = t;
      u.head = new Uint8Array(0);
      data = buf.subarray(pos.v);
      this.openUni(u);
      if (u.ignored) {
        if (fin) this.uni.delete(id);
        return;
      }
    }
    switch (u.type) {
      case StreamType.CONTROL: {
        const frames = u.reader!.push(data);
        // §6.2.1: SETTINGS is the first frame; an unknown (even grease) frame before it is an error,
        // though the reader skips such frames and would otherwise hide it.
        const first = u.reader!.firstType;
        if (!u.settingsSeen && first !== -1 && first !== FrameType.SETTINGS) {
          throw h3Error(H3Error.H3_MISSING_SETTINGS, `first control frame is 0x${first.toString(16)}, not SETTINGS`);
        }
        for (const f of frames) this.onControlFrame(u, f);
        break;
      }
      case StreamType.QPACK_ENCODER: {
        const unblocked = this.decoder.feedEncoderStream(data);
        for (const rid of unblocked) {
          const s = this.requests.get(rid);
          if (s) this.runDrain(s);
        }
        break;
      }
      case StreamType.QPACK_DECODER:
        this.encoder.feedDecoderStream(data);
        break;
    }
    if (fin) throw h3Error(H3Error.H3_CLOSED_CRITICAL_STREAM, `critical stream ${id} closed`);
  }

  /** drainRequest with stream errors contained to that stream (used when unblocking). */
  private runDrain(s: RequestStream): void {
    try {
      this.drainRequest(s);
    } catch (e) {
      if (e instanceof H3StreamError) this.streamError(e.streamId, e.code, e.message);
      else throw e;
    }
  }

  private openUni(u: UniStream): void {
    switch (u.type) {
      case StreamType.CONTROL:
        if (this.peerControl >= 0) throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, 'second control stream');
        this.peerControl = u.id;
        u.reader = new FrameReader(this.maxFrameSize);
        return;
      case StreamType.QPACK_ENCODER:
        if (this.peerEncoder >= 0) throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, 'second QPACK encoder stream');
        this.peerEncoder = u.id;
        return;
      case StreamType.QPACK_DECODER:
        if (this.peerDecoder >= 0) throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, 'second QPACK decoder stream');
        this.peerDecoder = u.id;
        return;
      case StreamType.PUSH:
        // §6.2.2: only servers push; a client never allowed any push (no MAX_PUSH_ID).
        if (!this.isClient) throw h3Error(H3Error.H3_STREAM_CREATION_ERROR, 'push stream from a client');
        throw h3Error(H3Error.H3_ID_ERROR, 'push stream without MAX_PUSH_ID');
      default:
        // §6.2: unknown stream types are ignored; ask the peer to stop.
        u.ignored = true;
        this.transport.stopSending(u.id, H3Error.H3_STREAM_CREATION_ERROR);
    }
  }

  private onControlFrame(u: UniStream, f: RawFrame): void {
    if (!u.settingsSeen) {
      if (f.type !== FrameType.SETTINGS) throw h3Error(H3Error.H3_MISSING_SETTINGS, 'first control frame is not SETTINGS');
      u.settingsSeen = true;
      const raw = parseSettings(f.payload);
      const settings: H3Settings = {
        qpackMaxTableCapacity: raw.get(SettingId.QPACK_MAX_TABLE_CAPACITY) ?? 0,
        qpackBlockedStreams: raw.get(SettingId.QPACK_BLOCKED_STREAMS) ?? 0,
        maxFieldSectionSize: raw.get(SettingId.MAX_FIELD_SECTION_SIZE) ?? Infinity,
        enableConnectProtocol: raw.get(SettingId.ENABLE_CONNECT_PROTOCOL) === 1,
        h3Datagram: raw.get(SettingId.H3_DATAGRAM) === 1,
        raw,
      };
      for (const id of [SettingId.ENABLE_CONNECT_PROTOCOL, SettingId.H3_DATAGRAM]) {
        const v = raw.get(id);
        if (v !== undefined && v > 1) throw h3Error(H3Error.H3_SETTINGS_ERROR, `setting 0x${id.toString(16)} = ${v}`);
      }
      this.peerSettings = settings;
      this.encoder.applyPeerSettings(settings.qpackMaxTableCapacity, settings.qpackBlockedStreams);
      this.flushEncoder();
      this.events.push({ type: 'settings', settings });
      return;
    }
    switch (f.type) {
      case FrameType.SETTINGS:
        throw h3Error(H3Error.H3_FRAME_UNEXPECTED, 'second SETTINGS frame');
      case FrameType.GOAWAY: {
        const id = parseIdFrame(f.payload, 'GOAWAY');
        if (this.isClient && !sid.isRequest(id)) throw h3Error(H3Error.H3_ID_ERROR, `GOAWAY id ${id} is not a request stream id`);
        if (id > this.peerGoaway) throw h3Error(H3Error.H3_ID_ERROR, `GOAWAY id increased from ${this.peerGoaway} to ${id}`);
        this.peerGoaway = id;
        this.events.push({ type: 'goaway', id });
        if (this.isClient) {
          // §5.2: requests on streams >= id were not and will not be processed: safe to retry.
          for (const s of [...this.requests.values()]) {
            if (s.id < id) continue;
            if (!s.localDone) this.transport.resetStream(s.id, H3Error.H3_REQUEST_CANCELLED);
            this.transport.stopSending(s.id, H3Error.H3_REQUEST_CANCELLED);
            this.decoder.cancelStream(s.id);
            this.retire(s.id);
            this.events.push({ type: 'streamReset', streamId: s.id, code: H3Error.H3_REQUEST_REJECTED });
          }
        }
        return;
      }
      case FrameType.MAX_PUSH_ID:
        if (this.isClient) throw h3Error(H3Error.H3_FRAME_UNEXPECTED, 'MAX_PUSH_ID from a server');
      {
        // We do not push; the value is only checked: it may not decrease (§7.2.7).
        const id = parseIdFrame(f.payload, 'MAX_PUSH_ID');
        if (id < this.peerMaxPushId) throw h3Error(H3Error.H3_ID_ERROR, `MAX_PUSH_ID decreased to ${id}`);
        this.peerMaxPushId = id;
        return;
      }
      case FrameType.CANCEL_PUSH:
        parseIdFrame(f.payload, 'CANCEL_PUSH');
        // No push was ever promised or allowed, so every push id is unknown (§7.2.3).
        throw h3Error(H3Error.H3_ID_ERROR, 'CANCEL_PUSH for a push that does not exist');
      default:
        // DATA, HEADERS, PUSH_PROMISE are not allowed on the control stream (§7.2).
        throw h3Error(H3Error.H3_FRAME_UNEXPECTED, `frame 0x${f.type.toString(16)} on the control stream`);
    }
  }

  /** RFC 9297 §2.1: Quarter Stream ID, then the payload. */
  private onDatagram(data: Uint8Array): void {
    // Only once both sides sent SETTINGS_H3_DATAGRAM = 1; otherwise ignored.
    if (!this.datagrams || !this.peerSettings?.h3Datagram) return;
    const pos = { v: 0 };
    const q = readVarint(data, 0, data.length, pos);
    if (q < 0) throw h3Error(H3_DATAGRAM_ERROR, 'truncated HTTP/3 datagram');
    if (q > 2 ** 60 - 1) throw h3Error(H3_DATAGRAM_ERROR, 'Quarter Stream ID out of range');
    const id = q * 4;
    // Datagrams for streams not open (yet or any more) are dropped (§2.1 allows it).
    if (!this.requests.has(id)) return;
    this.events.push({ type: 'datagram', streamId: id, data: data.subarray(pos.v) });
  }

  /**
   * Sends an HTTP/3 datagram on request stream `id`. False when not negotiated by both sides, the
   * transport cannot send it, or the stream is not open for sending.
   */
  sendDatagram(id: number, data: Uint8Array): boolean {
    if (this.closedState || !this.datagrams || !this.peerSettings?.h3Datagram || !this.transport.sendDatagram) return false;
    const s = this.requests.get(id);
    if (!s || s.localDone) return false;
    return this.transport.sendDatagram(concat(encodeVarint(id / 4), data));
  }

  private onStreamReset(id: number, code: number): void {
    if (sid.isUni(id)) {
      if (id === this.peerControl || id === this.peerEncoder || id === this.peerDecoder) {
        throw h3Error(H3Error.H3_CLOSED_CRITICAL_STREAM, `critical stream ${id} reset`);
      }
      this.uni.delete(id);
      return;
    }
    const s = this.requests.get(id);
    if (!s) return;
    if (s.fin) {
      // We stopped reading (STOP_SENDING, §4.1.1) or already have the whole message: the peer's
      // RESET_STREAM is its transport's answer (RFC 9000 §3.5) or changes nothing we still need.
      // It is information only: our sending part (e.g. a response) keeps going and finishes.
      if (s.localDone) this.retire(id);
      return;
    }
    if (s.phase !== 'done') this.decoder.cancelStream(id);
    this.retire(id);
    if (!s.localDone && code !== H3Error.H3_NO_ERROR) this.transport.resetStream(id, H3Error.H3_REQUEST_CANCELLED);
    this.events.push({ type: 'streamReset', streamId: id, code });
  }

  private onStreamStopped(id: number, code: number): void {
    if (id === this.controlStream || id === this.encoderStream || id === this.decoderStream) {
      throw h3Error(H3Error.H3_CLOSED_CRITICAL_STREAM, `peer stopped our critical stream ${id}`);
    }
    const s = this.requests.get(id);
    if (!s) return;
    s.localDone = true;
    if (s.phase === 'done') this.retire(id);
    this.events.push({ type: 'stopSending', streamId: id, code });
  }

  // ---- sending ---------------------------------------------------------------------------------

  /** Client: opens a request stream and sends the header section. Returns the stream id. */
  sendRequest(headers: FieldLine[], end = false): number {
    const id = this.trySendRequest(headers, end);
    if (id === null) throw new H3UsageError('stream limit reached: wait for the transport to allow more streams');
    return id;
  }

  /**
   * {@link sendRequest}, but null (nothing sent) when the peer's stream limit is reached: a
   * 'streamsAvailable' event follows when the peer allows more (QUIC MAX_STREAMS).
   */
  trySendRequest(headers: FieldLine[], end = false): number | null {
    if (!this.isClient) throw new H3UsageError('only a client sends requests');
    if (this.closedState) throw new H3UsageError('connection closed');
    if (this.peerGoaway !== Infinity) throw new H3UsageError('the server sent GOAWAY: open a new connection');
    if (headers.some(([n]) => n === ':protocol') && !this.peerSettings?.enableConnectProtocol) {
      throw new H3UsageError('extended CONNECT needs the server SETTINGS_ENABLE_CONNECT_PROTOCOL = 1');
    }
    const id = this.transport.openStream(true);
    if (id === null) return null;
    const s = this.newRequestStream(id);
    for (const [n, v] of headers) if (n === ':method') s.method = v;
    this.sendHeaders(id, headers, end);
    return id;
  }

  /** Sends a header section (request, response, interim response) on a request stream. */
  sendHeaders(id: number, headers: FieldLine[], end = false): void {
    const s = this.sendable(id);
    let size = 0;
    for (const [n, v] of headers) size += n.length + v.length + 32;
    const limit = this.peerSettings?.maxFieldSectionSize ?? Infinity;
    if (size > limit) throw new H3UsageError(`field section of ${size} bytes exceeds the peer's limit of ${limit}`);
    const section = this.encoder.encode(id, headers);
    this.flushEncoder();
    this.transport.write(id, encodeFrame(FrameType.HEADERS, section), end);
    if (end) this.localEnd(s);
  }

  /** Sends content. An empty `data` with `end` just closes the stream. */
  sendData(id: number, data: Uint8Array, end = false): void {
    const s = this.sendable(id);
    if (data.length === 0) {
      if (end) {
        this.transport.write(id, data, true);
        this.localEnd(s);
      }
      return;
    }
    this.transport.write(id, concat(encodeDataFrameHeader(data.length), data), end);
    if (end) this.localEnd(s);
  }

  /** Sends a trailer section and ends the stream. */
  sendTrailers(id: number, trailers: FieldLine[]): void {
    this.sendHeaders(id, trailers, true);
  }

  private sendable(id: number): RequestStream {
    if (this.closedState) throw new H3UsageError('connection closed');
    const s = this.requests.get(id);
    if (!s) throw new H3UsageError(`stream ${id} is not an open request stream`);
    if (s.localDone) throw new H3UsageError(`stream ${id} is closed for sending`);
    return s;
  }

  private localEnd(s: RequestStream): void {
    s.localDone = true;
    if (s.phase === 'done') this.retire(s.id);
  }

  /** Abandons a request (either side): RESET_STREAM + STOP_SENDING with H3_REQUEST_CANCELLED. */
  cancel(id: number, code: number = H3Error.H3_REQUEST_CANCELLED): void {
    const s = this.requests.get(id);
    if (!s || this.closedState) return;
    if (!s.localDone) this.transport.resetStream(id, code);
    if (s.phase !== 'done') {
      this.transport.stopSending(id, code);
      this.decoder.cancelStream(id);
      this.flushDecoder();
    }
    this.retire(id);
  }

  /**
   * Stops reading a request stream without abandoning our sending side: STOP_SENDING (default
   * H3_NO_ERROR, e.g. a server that answers without needing the rest of the request, §4.1.1).
   */
  stopReading(id: number, code: number = H3Error.H3_NO_ERROR): void {
    const s = this.requests.get(id);
    if (!s || this.closedState || s.fin) return;
    this.transport.stopSending(id, code);
    if (s.phase !== 'done') {
      this.decoder.cancelStream(id);
      this.flushDecoder();
    }
    s.fin = true;
    s.queue = [];
    s.phase = 'done';
    if (s.localDone) this.retire(id);
  }

  /**
   * Graceful shutdown (§5.2): sends GOAWAY. Server: requests on streams >= the id (default: the
   * next one not yet seen) are rejected; client: push id 0 (we accept no pushes). May be called
   * again with a lower id, never a higher one.
   */
  shutdown(id?: number): void {
    if (this.closedState) return;
    const gid = id ?? (this.isClient ? 0 : this.nextRequestId);
    if (gid > this.localGoaway) throw new H3UsageError('GOAWAY id cannot increase');
    this.localGoaway = gid;
    this.transport.write(this.controlStream, encodeIdFrame(FrameType.GOAWAY, gid), false);
  }

  /**
   * Receive backpressure: stops reading request stream `id` from the transport (a body consumer is
   * above its high-water mark). The transport's flow control then holds the peer back. No-op for
   * a transport without `pauseReading` or a stream that is not an open request stream.
   */
  pauseReading(id: number): void {
    const s = this.requests.get(id);
    if (!s || s.fin || this.closedState) return;
    this.transport.pauseReading?.(id);
  }

  /** Undoes {@link pauseReading}: the transport delivers the stream's data again. */
  resumeReading(id: number): void {
    this.transport.resumeReading?.(id);
  }

  /** Bytes written on stream `id` that the transport has not accepted yet (backpressure). */
  bufferedAmount(id: number): number {
    return this.transport.bufferedAmount?.(id) ?? 0;
  }

  /** Number of request streams still open in either direction. */
  get activeRequests(): number {
    return this.requests.size;
  }

  /** Closes the connection (H3_NO_ERROR by default). */
  close(code: number = H3Error.H3_NO_ERROR, reason = ''): void {
    this.closeWith(code, reason);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
