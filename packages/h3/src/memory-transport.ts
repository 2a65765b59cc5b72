/**
 * An in-memory pair of {@link H3Transport}s for tests and examples: a write on one side becomes a
 * `streamData` event on the other. Events are queued until {@link MemoryTransport.poll} takes them,
 * so conversations can be stepped, reordered or dropped deterministically.
 */
import type { H3Transport, TransportEvent } from './transport.js';

export class MemoryTransport implements H3Transport {
  peer!: MemoryTransport;
  /** Events waiting for this side. */
  readonly inbox: TransportEvent[] = [];
  /** Called (synchronously) whenever an event is queued for this side: drivers schedule a poll. */
  onEvent: (() => void) | null = null;
  /** Operations this side performed (for assertions). */
  readonly log: { op: 'reset' | 'stop' | 'close'; id?: number; code: number; reason?: string }[] = [];
  closed: { code: number; reason: string } | null = null;
  private nextBidi: number;
  private nextUni: number;
  private readonly finished = new Set<number>();
  /** Streams whose sending part the peer stopped (STOP_SENDING): writes are dropped, as in QUIC. */
  private readonly stopped = new Set<number>();
  /** Max streams of each kind this side may open (like a QUIC stream limit). */
  maxStreams = 1000;
  private opened = { bidi: 0, uni: 0 };

  constructor(readonly isClient: boolean) {
    this.nextBidi = isClient ? 0 : 1;
    this.nextUni = isClient ? 2 : 3;
  }

  openStream(bidi: boolean): number | null {
    if (this.closed) throw new Error('connection closed');
    if (bidi ? this.opened.bidi >= this.maxStreams : this.opened.uni >= this.maxStreams) {
      return null; // like a QUIC stream limit
    }
    if (bidi) {
      this.opened.bidi++;
      const id = this.nextBidi;
      this.nextBidi += 4;
      return id;
    }
    this.opened.uni++;
    const id = this.nextUni;
    this.nextUni += 4;
    return id;
  }

  /** Raises {@link maxStreams} to `n` (like a peer's QUIC MAX_STREAMS) and reports it. */
  allowStreams(n: number): void {
    if (n <= this.maxStreams || this.closed) return;
    this.maxStreams = n;
    this.deliver({ type: 'streamsAvailable', bidi: true });
    this.deliver({ type: 'streamsAvailable', bidi: false });
  }

  /** openStream for tests: throws instead of returning null. */
  open(bidi: boolean): number {
    const id = this.openStream(bidi);
    if (id === null) throw new Error('stream limit reached');
    return id;
  }

  write(id: number, data: Uint8Array, fin: boolean): void {
    if (this.closed) return;
    // A write racing the peer's STOP_SENDING (not yet seen as 'streamStopped') is discarded.
    if (this.stopped.has(id)) return;
    if (this.finished.has(id)) throw new Error(`stream ${id} already finished`);
    if (fin) this.finished.add(id);
    this.peer.deliver({ type: 'streamData', id, data: data.slice(), fin });
  }

  /** Datagrams are delivered reliably and in order here. */
  sendDatagram(data: Uint8Array): boolean {
    if (this.closed) return false;
    this.peer.deliver({ type: 'datagram', data: data.slice() });
    return true;
  }

  resetStream(id: number, code: number): void {
    if (this.closed) return;
    this.log.push({ op: 'reset', id, code });
    if (this.finished.has(id)) return;
    this.finished.add(id);
    this.peer.deliver({ type: 'streamReset', id, code });
  }

  stopSending(id: number, code: number): void {
    if (this.closed) return;
    this.log.push({ op: 'stop', id, code });
    // The peer's transport answers STOP_SENDING by resetting its sending part (RFC 9000 §3.5).
    if (this.peer.finished.has(id)) return;
    this.peer.finished.add(id);
    this.peer.stopped.add(id);
    this.peer.deliver({ type: 'streamStopped', id, code });
    this.deliver({ type: 'streamReset', id, code });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.log.push({ op: 'close', code, reason });
    this.closed = { code, reason };
    this.peer.closed ??= { code, reason };
    this.inbox.length = 0;
    this.peer.deliver({ type: 'closed', code, reason, remote: true });
    this.deliver({ type: 'closed', code, reason, remote: false });
  }

  private deliver(ev: TransportEvent): void {
    this.inbox.push(ev);
    this.onEvent?.();
  }

  /** Takes the pending events. */
  poll(): TransportEvent[] {
    return this.inbox.splice(0, this.inbox.length);
  }
}

export function memoryTransportPair(): { client: MemoryTransport; server: MemoryTransport } {
  const client = new MemoryTransport(true);
  const server = new MemoryTransport(false);
  client.peer = server;
  server.peer = client;
  return { client, server };
}
