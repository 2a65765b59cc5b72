/** Conversation helpers for H3Connection tests over the in-memory transport. */
import { H3Connection, type H3ConnectionOptions, type H3Event } from '../src/connection.js';
import { encodeFrame, encodeSettings, FrameType } from '../src/frames.js';
import { memoryTransportPair, type MemoryTransport } from '../src/memory-transport.js';
import { QpackEncoder } from '../src/qpack/encoder.js';
import type { FieldLine } from '../src/qpack/decoder.js';
import { encodeVarint } from '../src/varint.js';

export class Pair {
  readonly ct: MemoryTransport;
  readonly st: MemoryTransport;
  readonly client: H3Connection;
  readonly server: H3Connection;
  clientEvents: H3Event[] = [];
  serverEvents: H3Event[] = [];

  constructor(copts: H3ConnectionOptions = {}, sopts: H3ConnectionOptions = {}) {
    const { client, server } = memoryTransportPair();
    this.ct = client;
    this.st = server;
    this.client = new H3Connection(client, copts);
    this.server = new H3Connection(server, sopts);
  }

  /** Delivers queued events both ways until both sides are quiet. */
  pump(): this {
    for (let i = 0; i < 10000; i++) {
      const c = this.ct.poll();
      const s = this.st.poll();
      if (c.length === 0 && s.length === 0) return this;
      for (const ev of c) this.clientEvents.push(...this.client.handleEvent(ev));
      for (const ev of s) this.serverEvents.push(...this.server.handleEvent(ev));
    }
    throw new Error('pump did not settle');
  }

  /** Takes the events collected so far. */
  takeClient(): H3Event[] {
    return this.clientEvents.splice(0);
  }
  takeServer(): H3Event[] {
    return this.serverEvents.splice(0);
  }
}

export const GET: FieldLine[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/'],
];

/** A hand-driven peer: raw bytes on streams, against one real H3Connection (`conn`). */
export class RawPeer {
  readonly raw: MemoryTransport;
  readonly mine: MemoryTransport;
  readonly conn: H3Connection;
  events: H3Event[] = [];
  rawEvents: import("../src/transport.js").TransportEvent[] = [];
  private readonly qpack = new QpackEncoder();

  constructor(role: 'client' | 'server' = 'client', opts: H3ConnectionOptions = {}) {
    const { client, server } = memoryTransportPair();
    this.raw = role === 'client' ? client : server;
    this.mine = role === 'client' ? server : client;
    this.conn = new H3Connection(this.mine, opts);
  }

  /** Opens the peer's control stream with SETTINGS (or `first` instead). Returns its id. */
  control(first: Uint8Array = encodeSettings([])): number {
    const id = this.raw.open(false);
    this.raw.write(id, concat(encodeVarint(0), first), false);
    return id;
  }

  uni(type: number, data: Uint8Array = new Uint8Array(0), fin = false): number {
    const id = this.raw.open(false);
    this.raw.write(id, concat(encodeVarint(type), data), fin);
    return id;
  }

  /** Encoded field section (static table and literals only). */
  section(headers: FieldLine[]): Uint8Array {
    return this.qpack.encode(0, headers);
  }

  headersFrame(headers: FieldLine[]): Uint8Array {
    return encodeFrame(FrameType.HEADERS, this.section(headers));
  }

  dataFrame(s: string | Uint8Array): Uint8Array {
    return encodeFrame(FrameType.DATA, typeof s === 'string' ? new TextEncoder().encode(s) : s);
  }

  request(...parts: Uint8Array[]): number {
    const id = this.raw.open(true);
    this.raw.write(id, concat(...parts), true);
    return id;
  }

  pump(): this {
    for (let i = 0; i < 1000; i++) {
      const evs = this.mine.poll();
      this.rawEvents.push(...this.raw.poll());
      if (evs.length === 0) return this;
      for (const ev of evs) this.events.push(...this.conn.handleEvent(ev));
    }
    throw new Error('pump did not settle');
  }

  /** The code the connection was closed with, or null. */
  get closeCode(): number | null {
    return this.mine.closed ? this.mine.closed.code : null;
  }

  resets(id: number): number[] {
    return this.mine.log.filter((l) => l.op === 'reset' && l.id === id).map((l) => l.code);
  }
  stops(id: number): number[] {
    return this.mine.log.filter((l) => l.op === 'stop' && l.id === id).map((l) => l.code);
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
