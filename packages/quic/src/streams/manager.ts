/**
 * All streams of a connection (RFC 9000 §2-4): stream ID allocation and validation (§2.1, §3),
 * stream limits in both directions (MAX_STREAMS / STREAMS_BLOCKED, §4.6), connection-level flow
 * control (MAX_DATA / DATA_BLOCKED, §4.1) and the per-stream send and receive parts.
 *
 * Peer-initiated streams are created implicitly, with every lower-numbered stream of the same
 * type (§3.2); when they close, MAX_STREAMS credit is returned so the peer can keep
 * `maxStreamsBidi` / `maxStreamsUni` streams open at once.
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from '../errors.js';
import { RecvWindow, SendCredit } from '../flow.js';
import { SendStream, type StreamChunkOut } from './send.js';
import { RecvStream } from './recv.js';
import { DEFAULT_MAX_REASSEMBLY_SEGMENTS, type SegmentBudget } from '../assembler.js';
import { MAX_STREAMS_LIMIT, isBidi, isLocallyInitiated, isUni, makeStreamId, streamIndex } from './ids.js';

export interface StreamManagerOptions {
  isServer: boolean;
  /** Concurrent streams the peer may open (our initial_max_streams_bidi / _uni). Default 100 / 3. */
  maxStreamsBidi?: number;
  maxStreamsUni?: number;
  /** Our initial_max_stream_data_bidi_local (streams we open) / _bidi_remote / _uni. Default 256 KiB. */
  streamWindowBidiLocal?: number;
  streamWindowBidiRemote?: number;
  streamWindowUni?: number;
  /** Auto-tuning bound for stream windows. Default 16 MiB. */
  maxStreamWindow?: number;
  /** Our initial_max_data. Default 1 MiB. */
  connWindow?: number;
  /** Auto-tuning bound for the connection window. Default 24 MiB. */
  maxConnWindow?: number;
  /** Send buffer bound per stream. Default 1 MiB. */
  sendBufferSize?: number;
  /**
   * Out-of-order STREAM segments buffered across all streams of the connection (each hole costs a
   * segment of bookkeeping; the per-stream bound is Assembler maxGaps 2048). Beyond it:
   * PROTOCOL_VIOLATION. Default {@link DEFAULT_MAX_REASSEMBLY_SEGMENTS} (16,384, a few MB at worst).
   */
  maxReassemblySegments?: number;
}

/** The peer's transport parameters that concern streams. */
export interface PeerStreamLimits {
  initialMaxData: number;
  initialMaxStreamDataBidiLocal: number;
  initialMaxStreamDataBidiRemote: number;
  initialMaxStreamDataUni: number;
  initialMaxStreamsBidi: number;
  initialMaxStreamsUni: number;
}

const FRAME_MAX_STREAMS_BIDI = 0x12;
const FRAME_MAX_STREAMS_UNI = 0x13;

/** Frames that concern a stream's receiving part (STREAM, RESET_STREAM, STREAM_DATA_BLOCKED) or its
 *  sending part (MAX_STREAM_DATA, STOP_SENDING). */
type Part = 'recv' | 'send';

export class StreamManager {
  readonly isServer: boolean;
  readonly sendStreams = new Map<number, SendStream>();
  readonly recvStreams = new Map<number, RecvStream>();
  /** Connection-level credit for what we send (the peer's MAX_DATA). */
  readonly connSend: SendCredit;
  /** Connection-level window for what we receive (our MAX_DATA). */
  readonly connRecv: RecvWindow;
  private readonly opts: Required<StreamManagerOptions>;
  /** Out-of-order segments buffered across the receiving parts (shared by their assemblers). */
  readonly reassembly: SegmentBudget;
  private peer: PeerStreamLimits = {
    initialMaxData: 0,
    initialMaxStreamDataBidiLocal: 0,
    initialMaxStreamDataBidiRemote: 0,
    initialMaxStreamDataUni: 0,
    initialMaxStreamsBidi: 0,
    initialMaxStreamsUni: 0,
  };
  // [bidi, uni]
  private readonly nextLocal = [0, 0];
  private readonly peerMaxStreams = [0, 0];
  private readonly blockedReported = [-1, -1];
  private readonly blocked = [false, false];
  private readonly nextRemote = [0, 0];
  /** The MAX_STREAMS we advertised (initially our transport parameter). */
  private readonly localMaxStreams: number[];
  private readonly sentMaxStreams: number[];
  private readonly closedRemote = [0, 0];
  private readonly opened: number[] = [];
  private openedHead = 0;
  /** Send parts in creation order, for allocation-free round-robin. */
  private sendList: SendStream[] = [];
  private rrIndex = -1;

  constructor(opts: StreamManagerOptions) {
    this.opts = {
      isServer: opts.isServer,
      maxStreamsBidi: opts.maxStreamsBidi ?? 100,
      maxStreamsUni: opts.maxStreamsUni ?? 3,
      streamWindowBidiLocal: opts.streamWindowBidiLocal ?? 256 * 1024,
      streamWindowBidiRemote: opts.streamWindowBidiRemote ?? 256 * 1024,
      streamWindowUni: opts.streamWindowUni ?? 256 * 1024,
      maxStreamWindow: opts.maxStreamWindow ?? 16 * 1024 * 1024,
      connWindow: opts.connWindow ?? 1024 * 1024,
      maxConnWindow: opts.maxConnWindow ?? 24 * 1024 * 1024,
      sendBufferSize: opts.sendBufferSize ?? 1024 * 1024,
      maxReassemblySegments: opts.maxReassemblySegments ?? DEFAULT_MAX_REASSEMBLY_SEGMENTS,
    };
    this.reassembly = { used: 0, max: this.opts.maxReassemblySegments };
    this.isServer = opts.isServer;
    this.connSend = new SendCredit(0);
    this.connRecv = new RecvWindow({ window: this.opts.connWindow, maxWindow: this.opts.maxConnWindow, frameType: 0 });
    this.localMaxStreams = [this.opts.maxStreamsBidi, this.opts.maxStreamsUni];
    this.sentMaxStreams = [this.opts.maxStreamsBidi, this.opts.maxStreamsUni];
  }

  /** The peer's transport parameters arrived (limits only ever grow). */
  setPeerLimits(p: PeerStreamLimits): void {
    checkPeerStreamLimits(p);
    this.peer = { ...p };
    this.connSend.update(p.initialMaxData);
    if (p.initialMaxStreamsBidi > this.peerMaxStreams[0]!) this.peerMaxStreams[0] = p.initialMaxStreamsBidi;
    if (p.initialMaxStreamsUni > this.peerMaxStreams[1]!) this.peerMaxStreams[1] = p.initialMaxStreamsUni;
    for (const [id, s] of this.sendStreams) s.onMaxStreamData(this.peerStreamCredit(id));
  }

  /**
   * 0-RTT was rejected (RFC 9001 §4.6.2, RFC 9000 §7.4.1): the peer's new transport parameters
   * replace the remembered ones even where lower; streams and data sent in 0-RTT start over under
   * them (a stream beyond the new stream limit waits until MAX_STREAMS covers it).
   */
  restartAfterZeroRttRejected(p: PeerStreamLimits): void {
    checkPeerStreamLimits(p);
    this.peer = { ...p };
    this.connSend.restart(p.initialMaxData);
    this.peerMaxStreams[0] = p.initialMaxStreamsBidi;
    this.peerMaxStreams[1] = p.initialMaxStreamsUni;
    for (const [id, s] of this.sendStreams) if (isLocallyInitiated(id, this.isServer)) s.restartAfterZeroRttRejected(this.peerStreamCredit(id));
  }

  /** Our stream `id` is within the peer's current stream limit (always, except after a 0-RTT rejection lowered it). */
  private withinPeerLimit(id: number): boolean {
    return !isLocallyInitiated(id, this.isServer) || (id >> 2) < this.peerMaxStreams[isUni(id) ? 1 : 0]!;
  }

  /** The peer's initial credit for our sending part of stream `id`. */
  private peerStreamCredit(id: number): number {
    if (isUni(id)) return this.peer.initialMaxStreamDataUni;
    // The peer's bidi_local covers streams the peer opened; bidi_remote the ones we opened.
    return isLocallyInitiated(id, this.isServer) ? this.peer.initialMaxStreamDataBidiRemote : this.peer.initialMaxStreamDataBidiLocal;
  }

  private ourStreamWindow(id: number): number {
    if (isUni(id)) return this.opts.streamWindowUni;
    return isLocallyInitiated(id, this.isServer) ? this.opts.streamWindowBidiLocal : this.opts.streamWindowBidiRemote;
  }

  private create(id: number): void {
    const local = isLocallyInitiated(id, this.isServer);
    if (isBidi(id) || local) {
      const s = new SendStream(id, { initialMaxData: this.peerStreamCredit(id), maxBuffered: this.opts.sendBufferSize });
      this.sendStreams.set(id, s);
      this.sendList.push(s);
    }
    if (isBidi(id) || !local) {
      this.recvStreams.set(id, new RecvStream(id, { window: this.ourStreamWindow(id), maxWindow: this.opts.maxStreamWindow, budget: this.reassembly }));
    }
  }

  /** Opens a local stream; returns its id, or -1 when the peer's MAX_STREAMS does not allow it
   *  (a STREAMS_BLOCKED frame is then wanted, see {@link streamsBlockedWanted}). */
  open(bidi: boolean): number {
    const t = bidi ? 0 : 1;
    if (this.nextLocal[t]! >= this.peerMaxStreams[t]!) {
      this.blocked[t] = true;
      return -1;
    }
    const id = makeStreamId(this.nextLocal[t]!++, this.isServer, !bidi);
    this.create(id);
    return id;
  }

  /** Streams of this kind we may still open. */
  openable(bidi: boolean): number {
    const t = bidi ? 0 : 1;
    return Math.max(0, this.peerMaxStreams[t]! - this.nextLocal[t]!);
  }

  /**
   * Validates a stream ID in a frame from the peer and creates peer-initiated streams up to it.
   * Returns false if the stream existed but is closed already (the frame is ignored).
   */
  private accept(id: number, part: Part, frameType: number): boolean {
    const local = isLocallyInitiated(id, this.isServer);
    const uni = isUni(id);
    if (uni && local && part === 'recv') {
      throw new ProtocolViolation('quic', TransportError.STREAM_STATE_ERROR, `frame for the receiving part of our unidirectional stream ${id}`, frameType);
    }
    if (uni && !local && part === 'send') {
      throw new ProtocolViolation('quic', TransportError.STREAM_STATE_ERROR, `frame for the sending part of the peer's unidirectional stream ${id}`, frameType);
    }
    const t = uni ? 1 : 0;
    const index = streamIndex(id);
    if (local) {
      if (index >= this.nextLocal[t]!) {
        throw new ProtocolViolation('quic', TransportError.STREAM_STATE_ERROR, `frame for stream ${id} that we have not opened`, frameType);
      }
      return this.sendStreams.has(id) || this.recvStreams.has(id);
    }
    if (index >= this.localMaxStreams[t]!) {
      throw new ProtocolViolation('quic', TransportError.STREAM_LIMIT_ERROR, `peer opened stream ${id} beyond its limit of ${this.localMaxStreams[t]} streams`, frameType);
    }
    if (index < this.nextRemote[t]!) return this.sendStreams.has(id) || this.recvStreams.has(id);
    for (let i = this.nextRemote[t]!; i <= index; i++) {
      const sid = makeStreamId(i, !this.isServer, uni);
      this.create(sid);
      this.opened.push(sid);
    }
    this.nextRemote[t] = index + 1;
    return true;
  }

  /** The next peer-opened stream id to announce (`streamOpened`), or -1. */
  pollOpened(): number {
    if (this.openedHead === this.opened.length) {
      this.opened.length = 0;
      this.openedHead = 0;
      return -1;
    }
    return this.opened[this.openedHead++]!;
  }

  /** A STREAM frame. Returns the stream (null if it is closed already and the frame ignored). */
  onStreamFrame(id: number, offset: number, data: Uint8Array, fin: boolean, frameType = 0x08): RecvStream | null {
    if (!this.accept(id, 'recv', frameType)) return null;
    const s = this.recvStreams.get(id);
    if (!s) return null;
    // Connection-level flow control first (§4.1), so a violation changes nothing.
    const end = offset + data.length;
    const grow = end > s.highest ? end - s.highest : 0;
    this.connRecv.check(this.connRecv.received + grow, frameType);
    const delta = s.onStreamFrame(offset, data, fin, frameType);
    this.connRecv.onReceived(this.connRecv.received + delta, frameType);
    this.release(s);
    return s;
  }

  /**
   * The application stops reading stream `id` (STOP_SENDING, §3.5): buffered data is dropped and
   * its bytes return to the connection window now; the stream is forgotten if that closes it.
   */
  stopSending(id: number, code: number): void {
    const s = this.recvStreams.get(id);
    if (!s) return;
    s.stopSending(code);
    this.release(s);
    this.maybeClose(id);
  }

  /** RESET_STREAM. Returns the stream or null if ignored. */
  onResetStream(id: number, code: number, finalSize: number): RecvStream | null {
    if (!this.accept(id, 'recv', 0x04)) return null;
    const s = this.recvStreams.get(id);
    if (!s) return null;
    const grow = finalSize > s.highest ? finalSize - s.highest : 0;
    this.connRecv.check(this.connRecv.received + grow, 0x04);
    const delta = s.onResetStream(code, finalSize);
    this.connRecv.onReceived(this.connRecv.received + delta, 0x04);
    this.release(s);
    this.maybeClose(id);
    return s;
  }

  /** STOP_SENDING: our sending part is reset with the peer's code (§3.5). Returns the stream, or
   *  null if ignored; `stream.wantsReset` tells whether a RESET_STREAM is due. */
  onStopSending(id: number, code: number): SendStream | null {
    if (!this.accept(id, 'send', 0x05)) return null;
    const s = this.sendStreams.get(id);
    if (!s) return null;
    s.reset(code);
    return s;
  }

  /** MAX_STREAM_DATA. Returns true if the stream got new credit. */
  onMaxStreamData(id: number, max: number): boolean {
    if (!this.accept(id, 'send', 0x11)) return false;
    return this.sendStreams.get(id)?.onMaxStreamData(max) ?? false;
  }

  /** STREAM_DATA_BLOCKED: only validated (our MAX_STREAM_DATA policy does not depend on it). */
  onStreamDataBlocked(id: number): void {
    this.accept(id, 'recv', 0x15);
  }

  /** MAX_DATA. Returns true if the credit grew. */
  onMaxData(max: number): boolean {
    return this.connSend.update(max);
  }

  /** MAX_STREAMS (§4.6, §19.11). Returns true if more streams can be opened. */
  onMaxStreams(bidi: boolean, max: number): boolean {
    if (max > MAX_STREAMS_LIMIT) {
      throw new ProtocolViolation('quic', TransportError.FRAME_ENCODING_ERROR, `MAX_STREAMS ${max} above 2^60`, bidi ? FRAME_MAX_STREAMS_BIDI : FRAME_MAX_STREAMS_UNI);
    }
    const t = bidi ? 0 : 1;
    if (max <= this.peerMaxStreams[t]!) return false;
    this.peerMaxStreams[t] = max;
    this.blocked[t] = false;
    return true;
  }

  /** STREAMS_BLOCKED from the peer: values above 2^60 are FRAME_ENCODING_ERROR (§19.14). */
  onStreamsBlocked(bidi: boolean, max: number): void {
    if (max > MAX_STREAMS_LIMIT) {
      throw new ProtocolViolation('quic', TransportError.FRAME_ENCODING_ERROR, `STREAMS_BLOCKED ${max} above 2^60`, bidi ? 0x16 : 0x17);
    }
  }

  /**
   * A STREAMS_BLOCKED frame for `limit` was lost: sent again if we are still blocked at that same
   * limit (a higher MAX_STREAMS since then makes it stale; RFC 9000 §13.3).
   */
  onStreamsBlockedLost(bidi: boolean, limit: number): void {
    const t = bidi ? 0 : 1;
    if (this.blocked[t] && this.peerMaxStreams[t] === limit && this.blockedReported[t] === limit) this.blockedReported[t] = -1;
  }

  /** The limit for a STREAMS_BLOCKED frame we should send, or -1 (once per limit). */
  streamsBlockedWanted(bidi: boolean): number {
    const t = bidi ? 0 : 1;
    if (!this.blocked[t] || this.blockedReported[t] === this.peerMaxStreams[t]) return -1;
    this.blockedReported[t] = this.peerMaxStreams[t]!;
    return this.peerMaxStreams[t]!;
  }

  /**
   * Pulls the next STREAM frame's range from stream `id` (see {@link SendStream.nextChunk}) and
   * accounts connection-level credit for new data; notes DATA_BLOCKED when the connection credit
   * is what stops it. Copy the bytes with `sendStreams.get(id).copy(...)`.
   */
  nextChunk(id: number, maxLen: number, out: StreamChunkOut): boolean {
    const s = this.sendStreams.get(id);
    if (!s) return false;
    const avail = this.connSend.available();
    if (s.nextChunk(maxLen, avail, out)) {
      if (!out.retransmit && out.length > 0) this.connSend.consume(out.length);
      return true;
    }
    if (avail === 0 && s.sentOffset < s.writeOffset && !s.isReset) this.connSend.setBlocked();
    return false;
  }

  /**
   * The next stream with something to send (retransmissions, new data within the stream and
   * connection credit, a FIN), round-robin after the stream served last; -1 if none. Notes
   * DATA_BLOCKED when only connection credit is missing.
   */
  nextSendable(): number {
    const avail = this.connSend.available();
    const list = this.sendList;
    const n = list.length;
    let starved = false;
    // Scan once around the ring starting after the stream served last (no allocation).
    for (let k = 1; k <= n; k++) {
      const idx = (this.rrIndex + k) % n;
      const s = list[idx]!;
      if (s.hasPending(avail) && this.withinPeerLimit(s.id)) {
        this.rrIndex = idx;
        return s.id;
      }
      if (avail === 0 && s.sentOffset < s.writeOffset && !s.isReset && s.credit.available() > 0) starved = true;
    }
    if (starved) this.connSend.setBlocked();
    return -1;
  }

  /** Reads from stream `id` (null if nothing readable or no such stream); returns the bytes to the
   *  connection window. */
  read(id: number, max = Infinity, now = 0, srtt = 0): Uint8Array | null {
    const s = this.recvStreams.get(id);
    if (!s) return null;
    const c = s.read(max, now, srtt);
    this.release(s, now, srtt);
    this.maybeClose(id);
    return c;
  }

  private release(s: RecvStream, now = 0, srtt = 0): void {
    const n = s.takeReleased();
    if (n > 0) this.connRecv.onConsumed(n, now, srtt);
  }

  /** A MAX_DATA limit to send now, or -1. */
  pollMaxData(now: number): number {
    return this.connRecv.pollUpdate(now);
  }

  /** A MAX_STREAMS limit to send now, or -1 (credit returned as peer streams closed). */
  pollMaxStreams(bidi: boolean): number {
    const t = bidi ? 0 : 1;
    if (this.localMaxStreams[t]! <= this.sentMaxStreams[t]!) return -1;
    this.sentMaxStreams[t] = this.localMaxStreams[t]!;
    return this.localMaxStreams[t]!;
  }

  /** The MAX_STREAMS frame carrying `max` was lost: send the current limit again. */
  onMaxStreamsLost(bidi: boolean, max: number): void {
    const t = bidi ? 0 : 1;
    if (max === this.sentMaxStreams[t]) this.sentMaxStreams[t] = max - 1;
  }

  /**
   * Forgets stream `id` once both its parts are in a terminal state; a peer-initiated stream then
   * returns one unit of MAX_STREAMS credit. Call after acks/resets/reads that may finish a stream.
   * Returns true if the stream was removed.
   */
  maybeClose(id: number): boolean {
    const snd = this.sendStreams.get(id);
    const rcv = this.recvStreams.get(id);
    if (!snd && !rcv) return false;
    if (snd && !snd.isClosed) return false;
    if (rcv && !rcv.isClosed) return false;
    if (snd) {
      const k = this.sendList.indexOf(snd);
      if (k >= 0) {
        this.sendList.splice(k, 1);
        if (this.rrIndex >= k) this.rrIndex--;
      }
    }
    this.sendStreams.delete(id);
    rcv?.dispose();
    this.recvStreams.delete(id);
    if (!isLocallyInitiated(id, this.isServer)) {
      const t = isUni(id) ? 1 : 0;
      this.closedRemote[t]!++;
      const base = t === 0 ? this.opts.maxStreamsBidi : this.opts.maxStreamsUni;
      this.localMaxStreams[t] = this.closedRemote[t]! + base;
    }
    return true;
  }

  /** Opened-and-not-closed streams (either part alive). */
  get activeCount(): number {
    let n = this.recvStreams.size;
    for (const id of this.sendStreams.keys()) if (!this.recvStreams.has(id)) n++;
    return n;
  }
}

/** The peer's initial_max_streams may not exceed 2^60 (RFC 9000 §4.6, §18.2). */
function checkPeerStreamLimits(p: PeerStreamLimits): void {
  if (p.initialMaxStreamsBidi > MAX_STREAMS_LIMIT || p.initialMaxStreamsUni > MAX_STREAMS_LIMIT) {
    throw new ProtocolViolation('quic', TransportError.TRANSPORT_PARAMETER_ERROR, 'initial_max_streams above 2^60');
  }
}
