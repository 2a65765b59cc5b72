/**
 * Adapter from Petrel's sans-I/O QUIC connection (`QuicConnection`, @petrel/quic api.ts) to the
 * {@link H3Transport} that {@link H3Connection} uses:
 *  - QUIC's pull model (`streamReadable` + `read(id)`) becomes `streamData` events; a stream whose
 *    reading is paused (`pauseReading`, a body consumer above its high-water mark) is left unread,
 *    so QUIC flow control holds the peer back; `resumeReading` + `takeResumed()` deliver it later;
 *  - partial writes (a full send buffer) are queued per stream and flushed on `streamWritable`,
 *    so h3 can write whole frames; `bufferedAmount(id)` lets an application apply backpressure.
 * Usage (driver loop): `for (let ev; (ev = quic.pollEvent()); ) for (const t of adapter.translate(ev)) sink(h3.handleEvent(t));`
 */
import type { ConnectionEvent, QuicConnection } from '@petrel/quic/api';
import { H3Connection, type H3ConnectionOptions, type H3Event } from './connection.js';
import type { H3Transport, TransportEvent } from './transport.js';

interface Pending {
  chunks: Uint8Array[];
  bytes: number;
  fin: boolean;
}

export class QuicH3Transport implements H3Transport {
  readonly isClient: boolean;
  private readonly pending = new Map<number, Pending>();
  /** Streams whose reading the application paused (a body consumer above its high-water mark). */
  private readonly paused = new Set<number>();
  /** Paused streams resumed since the last {@link takeResumed}: their data waits in QUIC. */
  private readonly resumed = new Set<number>();
  /**
   * Called when a paused stream is resumed (its data must be read outside the caller's stack: the
   * driver calls {@link takeResumed} and feeds the events to h3). Set by the driver glue.
   */
  onResume: (() => void) | null = null;

  constructor(
    readonly quic: QuicConnection,
    /** Current time in ms (the driver's clock), for `close`. */
    private readonly now: () => number,
  ) {
    this.isClient = quic.role === 'client';
  }

  openStream(bidi: boolean): number | null {
    return this.quic.openStream(bidi);
  }

  write(id: number, data: Uint8Array, fin: boolean): void {
    const p = this.pending.get(id);
    if (p) {
      if (data.length) p.chunks.push(data.slice());
      p.bytes += data.length;
      p.fin ||= fin;
      return;
    }
    const n = this.quic.write(id, data, fin);
    if (n < data.length) {
      this.pending.set(id, { chunks: [data.slice(n)], bytes: data.length - n, fin });
    }
  }

  /** Bytes accepted by h3 but not yet by QUIC on this stream. */
  bufferedAmount(id: number): number {
    return this.pending.get(id)?.bytes ?? 0;
  }

  private flush(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    while (p.chunks.length) {
      const c = p.chunks[0]!;
      const last = p.chunks.length === 1;
      const n = this.quic.write(id, c, last && p.fin);
      p.bytes -= n;
      if (n < c.length) {
        p.chunks[0] = c.subarray(n);
        return;
      }
      p.chunks.shift();
    }
    this.pending.delete(id);
  }

  /**
   * Stops reading stream `id` from QUIC: its data stays in the QUIC receive buffer, so QUIC flow
   * control (the stream window, MAX_STREAM_DATA) bounds what the peer can send meanwhile.
   */
  pauseReading(id: number): void {
    this.paused.add(id);
  }

  /** Reads stream `id` again: the data QUIC holds is delivered by the next {@link takeResumed}. */
  resumeReading(id: number): void {
    if (!this.paused.delete(id)) return;
    this.resumed.add(id);
    this.onResume?.();
  }

  /** The events of resumed streams (their data buffered in QUIC meanwhile). */
  takeResumed(): TransportEvent[] {
    if (this.resumed.size === 0) return [];
    const out: TransportEvent[] = [];
    for (const id of [...this.resumed]) {
      this.resumed.delete(id);
      if (!this.paused.has(id)) this.readInto(id, out);
    }
    return out;
  }

  /** Reads what QUIC holds for `id` (bounded loop; a chunk with fin ends it). */
  private readInto(id: number, out: TransportEvent[]): void {
    for (let i = 0; i < 1_000_000; i++) {
      const c = this.quic.read(id);
      if (!c) break;
      out.push({ type: 'streamData', id, data: c.data, fin: c.fin });
      if (c.fin) break;
    }
  }

  private forget(id: number): void {
    this.paused.delete(id);
    this.resumed.delete(id);
  }

  sendDatagram(data: Uint8Array): boolean {
    return this.quic.sendDatagram(data);
  }

  resetStream(id: number, code: number): void {
    this.pending.delete(id);
    this.quic.resetStream(id, code);
  }

  stopSending(id: number, code: number): void {
    // QUIC discards what it holds for the stream: nothing left to pause for.
    this.forget(id);
    this.quic.stopSending(id, code);
    // Except when the whole stream (FIN included) already arrived unread, e.g. a paused request
    // body: QUIC then ignores STOP_SENDING and keeps the data, and the stream (its MAX_STREAMS
    // credit, its connection-window share) never closes. Reading it to the end closes it.
    for (let i = 0; i < 1_000_000; i++) {
      const c = this.quic.read(id);
      if (!c || c.fin) break;
    }
  }

  close(code: number, reason: string): void {
    this.pending.clear();
    this.paused.clear();
    this.resumed.clear();
    this.quic.close(code, reason, this.now());
  }

  /** Maps one QUIC event to the transport events h3 consumes (reading readable streams). */
  translate(ev: ConnectionEvent): TransportEvent[] {
    switch (ev.type) {
      case 'handshakeComplete':
        return [{ type: 'handshakeComplete' }];
      case 'streamOpened':
        return [{ type: 'streamOpened', id: ev.id }];
      case 'streamReadable': {
        // Paused: leave the data in QUIC (resumeReading delivers it; QUIC notifies only once
        // until the next read, so nothing is lost).
        if (this.paused.has(ev.id)) return [];
        const out: TransportEvent[] = [];
        this.readInto(ev.id, out);
        return out;
      }
      case 'streamWritable':
        this.flush(ev.id);
        return this.pending.has(ev.id) ? [] : [{ type: 'streamWritable', id: ev.id }];
      case 'streamReset':
        this.forget(ev.id);
        return [{ type: 'streamReset', id: ev.id, code: ev.code }];
      case 'streamStopped':
        this.pending.delete(ev.id);
        return [{ type: 'streamStopped', id: ev.id, code: ev.code }];
      case 'streamsAvailable':
        return [{ type: 'streamsAvailable', bidi: ev.bidi }];
      case 'datagram':
        return [{ type: 'datagram', data: ev.data }];
      case 'closed':
        this.pending.clear();
        this.paused.clear();
        this.resumed.clear();
        return [{ type: 'closed', code: ev.info.code, reason: ev.info.reason, remote: ev.info.remote }];
      default:
        return [];
    }
  }
}

/**
 * An HTTP/3 connection bound to a QUIC connection: `poll()` drains the QUIC events through the
 * adapter into HTTP/3 events. A driver calls it after `receive()` / `handleTimeout()` and then
 * sends what `quic.pollTransmit()` yields.
 */
export class H3OverQuic {
  readonly transport: QuicH3Transport;
  readonly h3: H3Connection;

  constructor(
    readonly quic: QuicConnection,
    now: () => number,
    opts: H3ConnectionOptions = {},
  ) {
    this.transport = new QuicH3Transport(quic, now);
    this.h3 = new H3Connection(this.transport, opts);
  }

  poll(): H3Event[] {
    const out: H3Event[] = [];
    for (const t of this.transport.takeResumed()) for (const e of this.h3.handleEvent(t)) out.push(e);
    for (let ev = this.quic.pollEvent(); ev; ev = this.quic.pollEvent()) {
      for (const t of this.transport.translate(ev)) {
        const evs = this.h3.handleEvent(t);
        for (const e of evs) out.push(e);
      }
    }
    return out;
  }
}
