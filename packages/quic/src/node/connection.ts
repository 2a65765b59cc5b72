/**
 * The application-facing side of one QUIC connection in the Node driver: Web Streams over the
 * sans-I/O Connection's stream calls, events, datagrams, close and key update / migration.
 *
 * Back-pressure: a stream's ReadableStream pulls from `Connection.read` only when the consumer asks
 * for more (so unread data stays inside the QUIC receive window and flow control slows the peer);
 * a WritableStream's write() resolves once `Connection.write` accepted every byte, waiting for
 * 'streamWritable' when the send buffer is full.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { HandshakeInfo, SessionTicket } from '@petrel/tls-core';
import type { Address, CloseInfo, ConnectionEvent, QuicConnection } from '../api.js';

/** What a NodeQuicConnection needs from its driver. */
export interface DriverHooks {
  /** Monotonic time in ms. */
  now(): number;
  /** Something changed in the connection (app call): flush sends and re-arm the timer soon. */
  kick(): void;
  /** Client active migration: rebind to a new local port and tell the connection. */
  migrate?(conn: NodeQuicConnection): Promise<boolean>;
  /** Socket-level counters of the driver. */
  driverStats?(): { versionNegotiationsReceived: number; sendErrors: number };
}

/** A Web ReadableStream that is also async-iterable (as Node's are; the DOM typings lack it). */
export type AsyncReadableStream<T> = ReadableStream<T> & AsyncIterable<T>;

export interface QuicBidirectionalStream {
  readonly id: number;
  readonly readable: AsyncReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}
export interface QuicSendStream {
  readonly id: number;
  readonly writable: WritableStream<Uint8Array>;
}
export interface QuicReceiveStream {
  readonly id: number;
  readonly readable: AsyncReadableStream<Uint8Array>;
}

/** A QUIC stream error surfaced to Web Streams (peer reset or stop, or the connection closed). */
export class QuicStreamError extends Error {
  constructor(
    message: string,
    readonly kind: 'reset' | 'stopped' | 'closed',
    readonly code: number,
  ) {
    super(message);
    this.name = 'QuicStreamError';
  }
}

interface StreamState {
  id: number;
  readCtl: ReadableStreamDefaultController<Uint8Array> | null;
  readWaiter: (() => void) | null;
  readDone: boolean;
  writeWaiter: (() => void) | null;
  writeError: QuicStreamError | null;
  writeDone: boolean;
}

const READ_CHUNK = 64 * 1024;

export class NodeQuicConnection extends EventEmitter {
  /** Handshake details once complete (ALPN, suite, group, resumed, early data, ...). */
  handshake: HandshakeInfo | null = null;
  /** The most recent session ticket (client; for resumption). */
  sessionTicket: SessionTicket | null = null;
  /** The most recent NEW_TOKEN token (client). */
  newToken: Uint8Array | null = null;
  /** Client: whether the server accepted our 0-RTT data (null until known). */
  earlyDataAccepted: boolean | null = null;
  /** Key updates seen (local and peer initiated). */
  keyUpdates = { local: 0, peer: 0 };
  closeInfo: CloseInfo | null = null;
  /** Resolves when the handshake completes; rejects if the connection closes first. */
  readonly ready: Promise<HandshakeInfo>;
  /** Resolves with how the connection ended. Never rejects. */
  readonly closed: Promise<CloseInfo>;
  readonly incomingBidirectionalStreams: AsyncReadableStream<QuicBidirectionalStream>;
  readonly incomingUnidirectionalStreams: AsyncReadableStream<QuicReceiveStream>;

  private readonly streams = new Map<number, StreamState>();
  private readonly openWaiters: { bidi: boolean; wake: () => void }[] = [];
  private incomingBidiCtl!: ReadableStreamDefaultController<QuicBidirectionalStream>;
  private incomingUniCtl!: ReadableStreamDefaultController<QuicReceiveStream>;
  private resolveReady!: (i: HandshakeInfo) => void;
  private rejectReady!: (e: Error) => void;
  private resolveClosed!: (c: CloseInfo) => void;

  constructor(
    readonly conn: QuicConnection,
    private readonly hooks: DriverHooks,
  ) {
    super();
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => {}); // observed through connect() or by the app
    this.closed = new Promise((res) => (this.resolveClosed = res));
    this.incomingBidirectionalStreams = new ReadableStream<QuicBidirectionalStream>({
      start: (c) => void (this.incomingBidiCtl = c),
    }) as AsyncReadableStream<QuicBidirectionalStream>;
    this.incomingUnidirectionalStreams = new ReadableStream<QuicReceiveStream>({
      start: (c) => void (this.incomingUniCtl = c),
    }) as AsyncReadableStream<QuicReceiveStream>;
  }

  get role(): 'client' | 'server' {
    return this.conn.role;
  }
  get remote(): Address {
    return this.conn.remote;
  }
  get version(): number {
    return this.conn.version;
  }
  get isClosed(): boolean {
    return this.closeInfo !== null;
  }
  /** Transport counters when the Connection provides them (rtt, cwnd, keyUpdates, retry, version, ...). */
  get stats(): Record<string, unknown> | null {
    const s = (this.conn as unknown as { stats?: Record<string, unknown> }).stats;
    return s ?? null;
  }

  /**
   * Tells the driver that the connection has something new to send (for layers that call the
   * sans-I/O Connection directly, e.g. HTTP/3 writing asynchronously produced bodies).
   */
  kick(): void {
    this.hooks.kick();
  }

  /** Socket-level counters: Version Negotiation packets received, failed sends. */
  get socketStats(): { versionNegotiationsReceived: number; sendErrors: number } {
    return this.hooks.driverStats?.() ?? { versionNegotiationsReceived: 0, sendErrors: 0 };
  }

  // -------------------------------------------------------------------------------------------
  // Streams

  /** Opens a bidirectional stream, waiting for stream credit if the peer's limit is reached. */
  async openBidirectionalStream(): Promise<QuicBidirectionalStream> {
    const id = await this.openId(true);
    return this.bidiStream(id);
  }

  async openUnidirectionalStream(): Promise<QuicSendStream> {
    const id = await this.openId(false);
    const st = this.state(id);
    return { id, writable: this.writable(st) };
  }

  private async openId(bidi: boolean): Promise<number> {
    for (;;) {
      if (this.closeInfo) throw new QuicStreamError(`connection closed: ${describeClose(this.closeInfo)}`, 'closed', this.closeInfo.code);
      const id = this.conn.openStream(bidi);
      if (id !== null) {
        this.hooks.kick();
        return id;
      }
      await new Promise<void>((wake) => this.openWaiters.push({ bidi, wake }));
    }
  }

  private bidiStream(id: number): QuicBidirectionalStream {
    const st = this.state(id);
    return { id, readable: this.readable(st), writable: this.writable(st) };
  }

  private state(id: number): StreamState {
    let st = this.streams.get(id);
    if (!st) {
      st = { id, readCtl: null, readWaiter: null, readDone: false, writeWaiter: null, writeError: null, writeDone: false };
      this.streams.set(id, st);
    }
    return st;
  }

  private readable(st: StreamState): AsyncReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => void (st.readCtl = c),
        pull: async (c) => {
          for (;;) {
            if (st.readDone) return;
            const chunk = this.conn.read(st.id, READ_CHUNK);
            if (chunk) {
              this.hooks.kick(); // reading may open flow-control credit (MAX_STREAM_DATA)
              if (chunk.data.length > 0) c.enqueue(chunk.data.slice());
              if (chunk.fin) {
                st.readDone = true;
                c.close();
                this.maybeForget(st);
                return;
              }
              if (chunk.data.length > 0) return;
              continue;
            }
            if (this.closeInfo) {
              st.readDone = true;
              c.error(new QuicStreamError(`connection closed: ${describeClose(this.closeInfo)}`, 'closed', this.closeInfo.code));
              return;
            }
            await new Promise<void>((wake) => (st.readWaiter = wake));
          }
        },
        cancel: (reason) => {
          if (st.readDone) return;
          st.readDone = true;
          this.conn.stopSending(st.id, codeOf(reason));
          this.hooks.kick();
          this.maybeForget(st);
        },
      },
      { highWaterMark: 0 },
    ) as AsyncReadableStream<Uint8Array>;
  }

  private writable(st: StreamState): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: async (chunk) => {
        let data = toBytes(chunk);
        for (;;) {
          if (st.writeError) throw st.writeError;
          if (this.closeInfo) throw new QuicStreamError(`connection closed: ${describeClose(this.closeInfo)}`, 'closed', this.closeInfo.code);
          const n = data.length === 0 ? 0 : this.conn.write(st.id, data, false);
          if (n > 0) this.hooks.kick();
          if (n >= data.length) return;
          data = data.subarray(n);
          await new Promise<void>((wake) => (st.writeWaiter = wake));
        }
      },
      close: async () => {
        if (st.writeError) throw st.writeError;
        this.conn.write(st.id, new Uint8Array(0), true);
        st.writeDone = true;
        this.hooks.kick();
        this.maybeForget(st);
      },
      abort: (reason) => {
        st.writeDone = true;
        if (!this.closeInfo) this.conn.resetStream(st.id, codeOf(reason));
        this.hooks.kick();
        this.maybeForget(st);
      },
    });
  }

  private maybeForget(st: StreamState): void {
    const bidi = (st.id & 2) === 0;
    const localInitiated = (st.id & 1) === (this.role === 'server' ? 1 : 0);
    const hasRead = bidi || !localInitiated;
    const hasWrite = bidi || localInitiated;
    if ((!hasRead || st.readDone) && (!hasWrite || st.writeDone)) this.streams.delete(st.id);
  }

  // -------------------------------------------------------------------------------------------
  // Datagrams, keys, migration, close

  /** Sends an unreliable datagram (RFC 9221); false if not negotiated, too large or closed. */
  sendDatagram(data: Uint8Array): boolean {
    const ok = this.conn.sendDatagram(data);
    if (ok) this.hooks.kick();
    return ok;
  }

  /**
   * Keying material from the TLS exporter (RFC 8446 §7.5; RFC 9001 §4), with node:tls's argument
   * order (`TLSSocket.exportKeyingMaterial(length, label, context)`). Throws before the handshake
   * completes.
   */
  exportKeyingMaterial(length: number, label: string, context?: Uint8Array): Buffer {
    if (!this.conn.exportKeyingMaterial) throw new Error('exportKeyingMaterial: not supported by this connection');
    const k = this.conn.exportKeyingMaterial(label, length, context);
    return Buffer.from(k.buffer, k.byteOffset, k.length);
  }

  /** Starts a key update (RFC 9001 §6); false if not allowed yet. */
  updateKeys(): boolean {
    const ok = this.conn.updateKeys();
    if (ok) this.hooks.kick();
    return ok;
  }

  /** Client: moves to a new local UDP port (new socket) and validates the new path. */
  async migrate(): Promise<boolean> {
    if (this.role !== 'client' || !this.hooks.migrate) return false;
    return this.hooks.migrate(this);
  }

  /** Closes with an application error code; resolves when closed (draining done). */
  close(code = 0, reason = ''): Promise<CloseInfo> {
    if (!this.closeInfo) {
      this.conn.close(code, reason, this.hooks.now());
      this.hooks.kick();
    }
    return this.closed;
  }

  // -------------------------------------------------------------------------------------------
  // Driver side

  /** Set once the connection threw out of pollEvent (see fault). */
  private faulted = false;

  /** Drains the connection's events. Called by the driver after every input. */
  dispatch(): void {
    if (this.faulted) return;
    try {
      for (let i = 0; i < 100_000; i++) {
        const e = this.conn.pollEvent();
        if (!e) break;
        this.onEvent(e);
      }
    } catch (e) {
      this.fault(e);
    }
  }

  /**
   * The connection (or a layer wrapped around it by a connection factory, e.g. HTTP/3) threw:
   * a bug. It runs inside the driver's I/O step, where the exception would be uncaught and end the
   * process with every other connection; this one connection is closed instead, and the error
   * goes to 'internalError' listeners.
   */
  private fault(e: unknown): void {
    this.faulted = true;
    const reason = `internal error: ${e instanceof Error ? e.message : String(e)}`.slice(0, 200);
    this.emitSafe('internalError', e);
    try {
      this.conn.close(0, reason, this.hooks.now());
      this.hooks.kick();
    } catch {
      /* the connection cannot even close: the driver drops it once it reports closed, or at destroy */
    }
    this.finish({ code: 0x1, frameType: 0, reason, application: false, remote: false, kind: 'close' });
  }

  private onEvent(e: ConnectionEvent): void {
    switch (e.type) {
      case 'handshakeComplete':
        this.handshake = e.info;
        this.resolveReady(e.info);
        this.emitSafe('handshake', e.info);
        break;
      case 'handshakeConfirmed':
        this.emitSafe('handshakeConfirmed');
        break;
      case 'earlyData':
        this.earlyDataAccepted = e.accepted;
        this.emitSafe('earlyData', e.accepted);
        break;
      case 'streamOpened': {
        if (this.streams.has(e.id)) break;
        const st = this.state(e.id);
        if (e.bidi) this.safeEnqueue(this.incomingBidiCtl, { id: e.id, readable: this.readable(st), writable: this.writable(st) });
        else {
          st.writeDone = true;
          this.safeEnqueue(this.incomingUniCtl, { id: e.id, readable: this.readable(st) });
        }
        break;
      }
      case 'streamReadable':
        this.wakeRead(e.id);
        break;
      case 'streamWritable':
        this.wakeWrite(e.id);
        break;
      case 'streamReset': {
        const st = this.streams.get(e.id);
        if (st && !st.readDone && st.readCtl) {
          st.readDone = true;
          try {
            st.readCtl.error(new QuicStreamError(`stream ${e.id} reset by the peer (code ${e.code})`, 'reset', e.code));
          } catch {
            /* already closed */
          }
          this.maybeForget(st);
        }
        this.wakeRead(e.id);
        break;
      }
      case 'streamStopped': {
        const st = this.streams.get(e.id);
        if (st) {
          st.writeError = new QuicStreamError(`stream ${e.id} stopped by the peer (code ${e.code})`, 'stopped', e.code);
          st.writeDone = true;
          this.maybeForget(st);
        }
        this.wakeWrite(e.id);
        break;
      }
      case 'streamsAvailable': {
        const w = this.openWaiters.filter((x) => x.bidi === e.bidi);
        for (const x of w) this.openWaiters.splice(this.openWaiters.indexOf(x), 1);
        for (const x of w) x.wake();
        break;
      }
      case 'datagram':
        this.emitSafe('datagram', e.data);
        break;
      case 'sessionTicket':
        this.sessionTicket = e.ticket;
        this.emitSafe('sessionTicket', e.ticket);
        break;
      case 'newToken':
        this.newToken = e.token;
        this.emitSafe('newToken', e.token);
        break;
      case 'pathChanged':
        this.emitSafe('pathChanged', e.remote);
        break;
      case 'keyUpdate':
        this.keyUpdates[e.initiatedBy]++;
        this.emitSafe('keyUpdate', e);
        break;
      case 'error':
        this.emitSafe('internalError', e.error);
        break;
      case 'closed':
        this.finish(e.info);
        break;
    }
  }

  /** The connection ended (closed event, or the driver shut down). */
  finish(info: CloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    if (!this.handshake) this.rejectReady(new Error(`QUIC handshake failed: ${describeClose(info)}`));
    for (const st of this.streams.values()) {
      const err = new QuicStreamError(`connection closed: ${describeClose(info)}`, 'closed', info.code);
      if (!st.readDone && st.readCtl) {
        st.readDone = true;
        try {
          st.readCtl.error(err);
        } catch {
          /* closed */
        }
      }
      st.writeError ??= err;
      st.readWaiter?.();
      st.writeWaiter?.();
    }
    this.streams.clear();
    for (const w of this.openWaiters.splice(0)) w.wake();
    for (const c of [this.incomingBidiCtl, this.incomingUniCtl] as ReadableStreamDefaultController<unknown>[]) {
      try {
        c.close();
      } catch {
        /* already closed */
      }
    }
    this.resolveClosed(info);
    this.emitSafe('close', info);
  }

  private wakeRead(id: number): void {
    const st = this.streams.get(id);
    const w = st?.readWaiter;
    if (st && w) {
      st.readWaiter = null;
      w();
    }
  }

  private wakeWrite(id: number): void {
    const st = this.streams.get(id);
    const w = st?.writeWaiter;
    if (st && w) {
      st.writeWaiter = null;
      w();
    }
  }

  private safeEnqueue<T>(c: ReadableStreamDefaultController<T>, v: T): void {
    try {
      c.enqueue(v);
    } catch {
      /* the application cancelled the incoming-streams iterator */
    }
  }

  private emitSafe(name: string, ...args: unknown[]): void {
    if (this.listenerCount(name) === 0) return;
    try {
      this.emit(name, ...args);
    } catch (e) {
      reportListenerError(this, e, `a '${name}' listener of a QUIC connection`);
    }
  }
}

/**
 * An application callback or listener threw. It must reach neither the protocol path (the driver
 * would be left half-way through a step) nor the process (an uncaught exception would end every
 * connection): it goes to the emitter's 'error' listeners, or, when there are none, becomes a
 * process warning (printed on stderr with its stack).
 */
export function reportListenerError(emitter: EventEmitter, e: unknown, what: string): void {
  if (emitter.listenerCount('error') > 0) {
    try {
      emitter.emit('error', e);
      return;
    } catch (e2) {
      e = e2; // the 'error' listener threw as well
    }
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.emitWarning(`${what} threw: ${err.stack ?? err.message}`, { type: 'PetrelListenerError', code: 'PETREL_LISTENER_ERROR' });
}

/** A written chunk as bytes: any BufferSource; anything else (a string, ...) is a TypeError, not silently nothing. */
function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && chunk instanceof SharedArrayBuffer)) return new Uint8Array(chunk);
  throw new TypeError(`a QUIC stream takes Uint8Array (or another BufferSource) chunks, got ${chunk === null ? 'null' : typeof chunk}: encode text with TextEncoder`);
}

function codeOf(reason: unknown): number {
  if (typeof reason === 'number' && Number.isInteger(reason) && reason >= 0) return reason;
  if (reason && typeof reason === 'object' && 'code' in reason) {
    const c = (reason as { code: unknown }).code;
    if (typeof c === 'number' && Number.isInteger(c) && c >= 0) return c;
  }
  return 0;
}

export function describeClose(i: CloseInfo): string {
  const who = i.remote ? 'peer' : 'local';
  const what = i.application ? `application code ${i.code}` : `transport code 0x${i.code.toString(16)}`;
  return `${i.kind} (${who}, ${what}${i.reason ? `: ${i.reason}` : ''})`;
}

/**
 * A node:stream Duplex over a bidirectional QUIC stream (Duplex.fromWeb). For a one-way stream pass
 * the object with only `readable` or `writable` and use Readable.fromWeb / Writable.fromWeb.
 */
export function toNodeDuplex(stream: QuicBidirectionalStream): Duplex {
  return Duplex.fromWeb({ readable: stream.readable as never, writable: stream.writable as never });
}
