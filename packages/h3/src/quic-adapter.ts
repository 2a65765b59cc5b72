/**
 * Adapter from Petrel's sans-I/O QUIC connection (`QuicConnection`, @petrel/quic api.ts) to the
 * {@link H3Transport} that {@link H3Connection} uses:
 *  - QUIC's pull model (`streamReadable` + `read(id)`) becomes `streamData` events;
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

  sendDatagram(data: Uint8Array): boolean {
    return this.quic.sendDatagram(data);
  }

  resetStream(id: number, code: number): void {
    this.pending.delete(id);
    this.quic.resetStream(id, code);
  }

  stopSending(id: number, code: number): void {
    this.quic.stopSending(id, code);
  }

  close(code: number, reason: string): void {
    this.pending.clear();
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
        const out: TransportEvent[] = [];
        for (let i = 0; i < 1_000_000; i++) {
          const c = this.quic.read(ev.id);
          if (!c) break;
          out.push({ type: 'streamData', id: ev.id, data: c.data, fin: c.fin });
          if (c.fin) break;
        }
        return out;
      }
      case 'streamWritable':
        this.flush(ev.id);
        return this.pending.has(ev.id) ? [] : [{ type: 'streamWritable', id: ev.id }];
      case 'streamReset':
        return [{ type: 'streamReset', id: ev.id, code: ev.code }];
      case 'streamStopped':
        this.pending.delete(ev.id);
        return [{ type: 'streamStopped', id: ev.id, code: ev.code }];
      case 'datagram':
        return [{ type: 'datagram', data: ev.data }];
      case 'closed':
        this.pending.clear();
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
    for (let ev = this.quic.pollEvent(); ev; ev = this.quic.pollEvent()) {
      for (const t of this.transport.translate(ev)) {
        const evs = this.h3.handleEvent(t);
        for (const e of evs) out.push(e);
      }
    }
    return out;
  }
}
