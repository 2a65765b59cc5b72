/**
 * TlsSocket: a Node `Duplex` carrying TLS 1.3 over a TCP socket (or any byte Duplex), driving a
 * sans-I/O handshake core (`TlsSession`) through the record layer. Shaped like node:tls
 * (`secureConnect` / `secure` events, `alpnProtocol`, `getCipher()`, `getProtocol()`,
 * `getPeerCertificates()`, `session` events) so that it is easy to swap in.
 *
 * Error model: everything the peer does wrong ends in an alert sent (when we detect it) and an
 * 'error' event carrying a {@link TlsAlertError}; nothing throws out of a transport callback.
 */
import { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import { Alert, ProtocolViolation, alertName } from '../errors.js';
import type { NamedGroup, SignatureScheme } from '../crypto/provider.js';
import type { CipherSuite, HandshakeInfo, SessionTicket, TlsSession } from '../handshake/api.js';
import { RecordLayer } from '../record/record-layer.js';
import type { CryptoProvider } from '../crypto/provider.js';

/** A TLS failure: an alert we sent (remote false) or one the peer sent (remote true). */
export class TlsAlertError extends Error {
  override readonly name = 'TlsAlertError';
  /** 'ERR_TLS_ALERT_RECEIVED' or 'ERR_TLS_ALERT_SENT'. */
  readonly code: string;
  /** Alert name, e.g. 'handshake_failure'. */
  readonly alert: string;
  constructor(
    readonly alertCode: number,
    readonly remote: boolean,
    detail: string,
    readonly protocolError?: ProtocolViolation,
  ) {
    const name = alertName(alertCode);
    super(remote ? `peer sent fatal alert ${name} (${alertCode})${detail ? `: ${detail}` : ''}` : `TLS error, sent alert ${name} (${alertCode}): ${detail}`);
    this.alert = name;
    this.code = remote ? 'ERR_TLS_ALERT_RECEIVED' : 'ERR_TLS_ALERT_SENT';
  }
}

/** What a finished handshake negotiated, as printed by the CLIs. */
export interface TlsConnectionInfo {
  version: 'TLSv1.3';
  suite: CipherSuite;
  group: NamedGroup | null;
  signatureScheme: SignatureScheme | null;
  alpn: string | null;
  serverName: string | null;
  resumed: boolean;
  /** 0-RTT: 'accepted', 'rejected' (client: the data was resent after the handshake), or 'none'. */
  earlyData: 'accepted' | 'rejected' | 'none';
  helloRetry: boolean;
  peerCertificates: Uint8Array[];
  provider: string;
}

export interface TlsSocketOptions {
  role: 'client' | 'server';
  provider: CryptoProvider;
  /** Builds the handshake core; receives the key-log callback bound to this socket. */
  session: (keyLog: ((line: string) => void) | undefined) => TlsSession;
  /** Key-log sink (besides the 'keylog' event). */
  keyLog?: ((line: string) => void) | null;
  /** Client: 0-RTT bytes to send with the ClientHello (if the session allows it). */
  earlyData?: Uint8Array;
  /** Client: the ticket's max_early_data_size (bytes of earlyData actually sent as 0-RTT). */
  maxEarlyData?: number;
  /** Abort the handshake after this many ms (default: none for clients, 10 s for servers). */
  handshakeTimeoutMs?: number;
  /** Records per key before an automatic KeyUpdate (tests; default per suite, RFC 8446 §5.5). */
  keyUpdateAfter?: number;
  /** Plaintext bytes per record (default 2^14). */
  maxFragment?: number;
  /**
   * Bounds on the peer's KeyUpdates (RFC 8446 §4.6.3 sets none; each costs a key derivation and, when
   * requested, a KeyUpdate of ours): at most `withoutData` in a row without application data in
   * between (default 32), and at most `perSecond` per second (default 100). Beyond: unexpected_message.
   */
  keyUpdateLimits?: KeyUpdateLimits;
  /** Value of `authorized` once the handshake completes (false for a client with insecureSkipVerify). Default true. */
  authorizedOnSecure?: boolean;
}

export interface KeyUpdateLimits {
  withoutData?: number;
  perSecond?: number;
}

/** Default for {@link KeyUpdateLimits.perSecond}. */
export const MAX_KEY_UPDATES_PER_SECOND = 100;

/**
 * Staging buffer: four full records, sealed together in one transport write when full and at the
 * end of the tick.
 */
const STAGE_SIZE = 4 * 16384;
/**
 * Writes smaller than one full record are staged; larger ones already make mostly full records
 * and are sealed at once (together with what is staged) rather than copied.
 */
const STAGE_BELOW = 16384;
/**
 * Output buffers for sealed application data (see sendApp): room for one full stage as records.
 * Only for a net.Socket transport, whose writableLength tells whether it still holds the chunk.
 */
const OUT_BUFFER_SIZE = STAGE_SIZE + 4 * (5 + 1 + 16) + 6;
const outPool: Uint8Array[] = [];
const OUT_POOL_MAX = 4;
/**
 * Staging buffers are lent to a socket only while it has staged data (until its end-of-tick
 * flush): idle connections hold none. A few are kept for reuse, shared by all sockets.
 */
const stagePool: Uint8Array[] = [];
const STAGE_POOL_MAX = 16;
/** Application writes complete at once while the transport buffers less than this. */
const TRANSPORT_BUFFER = 256 * 1024;

type PendingWrite = { data: Uint8Array; cb: (err?: Error | null) => void };

/**
 * An application callback or listener threw. It must not end the process (an uncaught exception
 * would take every connection with it), and it is not a failure of the socket or server (their
 * 'error' events often end the program): it becomes a process warning, printed on stderr with
 * its stack.
 */
export function reportListenerError(e: unknown, what: string): void {
  const err = e instanceof Error ? e : new Error(String(e));
  process.emitWarning(`${what} threw: ${err.stack ?? err.message}`, { type: 'PetrelListenerError', code: 'PETREL_LISTENER_ERROR' });
}

function codedError(message: string, code: string, Ctor: new (m: string) => Error = Error): Error {
  return Object.assign(new Ctor(message), { code });
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Argument checks as node:tls's exportKeyingMaterial (same codes; length 1 .. 2^32-1); returns the context as bytes. */
function checkExporterArgs(length: unknown, label: unknown, context: unknown): Uint8Array | undefined {
  if (typeof length !== 'number') throw codedError(`The "length" argument must be of type number. Received type ${typeof length}`, 'ERR_INVALID_ARG_TYPE', TypeError);
  if (!Number.isInteger(length) || length < 1 || length > 0xffffffff)
    throw codedError(`The value of "length" is out of range. It must be >= 1 && <= 4294967295. Received ${length}`, 'ERR_OUT_OF_RANGE', RangeError);
  if (typeof label !== 'string') throw codedError(`The "label" argument must be of type string. Received type ${typeof label}`, 'ERR_INVALID_ARG_TYPE', TypeError);
  if (context !== undefined && !ArrayBuffer.isView(context))
    throw codedError('The "context" argument must be an instance of Buffer, TypedArray, or DataView.', 'ERR_INVALID_ARG_TYPE', TypeError);
  return context === undefined ? undefined : new Uint8Array(context.buffer, context.byteOffset, context.byteLength);
}

export class TlsSocket extends Duplex {
  readonly role: 'client' | 'server';
  readonly encrypted = true;
  /** The transport (usually a net.Socket). */
  readonly transport: Socket | Duplex;
  /** Negotiated ALPN protocol; false if none, null before the handshake completes (as node:tls). */
  alpnProtocol: string | false | null = null;
  /** True once the peer's certificate was verified (client) or the handshake completed (server). */
  authorized = false;
  /** The latest session ticket received (client). */
  session: SessionTicket | null = null;
  info: TlsConnectionInfo | null = null;
  /** performance.now() stamps: when the socket was created, and when the handshake completed. */
  readonly timings: { start: number; secure: number | null } = { start: performance.now(), secure: null };
  /** KeyUpdates sent (on request, automatic at the key usage limit, or in answer to the peer). */
  keyUpdatesSent = 0;

  private readonly provider: CryptoProvider;
  private readonly record: RecordLayer;
  private readonly tls: TlsSession;
  private readonly opts: TlsSocketOptions;
  private secure = false;
  private dead = false;
  private readBlocked = false;
  private peerClosed = false;
  private closeNotifySent = false;
  private queued: PendingWrite[] = [];
  private finalCb: ((err?: Error | null) => void) | null = null;
  private earlyState: 'none' | 'sent' | 'accepted' | 'rejected' = 'none';
  private earlySent: Uint8Array | null = null;
  private earlyRest: Uint8Array | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private waitingPending = false;
  private drainCb: (() => void) | null = null;
  private transportEnded = false;
  /** Small application writes waiting to be sealed together (see writeApp). */
  private staged: Uint8Array | null = null;
  private stagedLen = 0;
  private flushScheduled = false;
  /** The last transport write returned false and no 'drain' came yet. */
  private transportFull = false;
  /** Whether sealed output may go through the shared output buffers (see sendApp). */
  private readonly recycleOut: boolean;
  private readonly keyUpdatesPerSecond: number;
  private keyUpdatesSeen = 0;
  private keyUpdateWindowStart = 0;
  private keyUpdatesInWindow = 0;

  constructor(transport: Socket | Duplex, opts: TlsSocketOptions) {
    super({ allowHalfOpen: false });
    this.role = opts.role;
    this.transport = transport;
    this.recycleOut = transport instanceof Socket;
    this.provider = opts.provider;
    this.opts = opts;
    this.record = new RecordLayer({
      provider: opts.provider,
      role: opts.role,
      ...(opts.keyUpdateAfter !== undefined ? { keyUpdateAfter: opts.keyUpdateAfter } : {}),
      ...(opts.maxFragment !== undefined ? { maxFragment: opts.maxFragment } : {}),
      ...(opts.keyUpdateLimits?.withoutData !== undefined ? { maxKeyUpdatesWithoutData: opts.keyUpdateLimits.withoutData } : {}),
    });
    this.keyUpdatesPerSecond = Math.max(1, opts.keyUpdateLimits?.perSecond ?? MAX_KEY_UPDATES_PER_SECOND);
    const sink = opts.keyLog ?? null;
    // Application code, called from inside the handshake: what it throws is reported, and must not
    // become a handshake failure (an internal_error alert) of a healthy connection.
    const keyLog = (line: string): void => {
      try {
        if (sink) sink(line);
      } catch (e) {
        reportListenerError(e, 'the key log callback');
      }
      try {
        if (this.listenerCount('keylog') > 0) this.emit('keylog', Buffer.from(`${line}\n`));
      } catch (e) {
        reportListenerError(e, "a 'keylog' listener");
      }
    };
    this.tls = opts.session(keyLog);

    transport.on('data', (chunk: Buffer) => this.onTransportData(chunk));
    transport.on('end', () => this.onTransportEnd());
    transport.on('error', (err: Error) => this.failWith(err));
    transport.on('close', () => {
      if (this.dead || this.destroyed) return;
      if (!this.secure) {
        this.failWith(connectionClosed('the connection closed before the TLS handshake completed'));
        return;
      }
      // Deliver what is still buffered, then end the readable side (the stream closes itself after 'end').
      this.transportEnded = true;
      this.guard(() => this.pump());
      if (this.peerClosed && this.readableEnded) this.destroy();
    });
    transport.on('drain', () => {
      this.transportFull = false;
      const cb = this.drainCb;
      this.drainCb = null;
      if (cb) cb();
    });
    const timeout = opts.handshakeTimeoutMs ?? (opts.role === 'server' ? 10_000 : 0);
    if (timeout > 0) {
      this.handshakeTimer = setTimeout(() => this.failWith(connectionClosed(`TLS handshake timed out after ${timeout} ms`, 'ETIMEDOUT')), timeout);
      this.handshakeTimer.unref?.();
    }
    if (opts.role === 'client') {
      // Defer so that callers can attach listeners first; transports buffer writes until connected.
      process.nextTick(() => this.guard(() => this.startClient()));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // node:tls-like accessors

  getProtocol(): string | null {
    return this.secure ? 'TLSv1.3' : null;
  }
  getCipher(): { name: string; standardName: string; version: string } | null {
    if (!this.info) return null;
    return { name: this.info.suite, standardName: this.info.suite, version: 'TLSv1.3' };
  }
  /** DER certificates of the peer, leaf first (empty when resumed or none). */
  getPeerCertificates(): Uint8Array[] {
    return this.info?.peerCertificates ?? [];
  }
  getSession(): SessionTicket | null {
    return this.session;
  }
  isSessionReused(): boolean {
    return !!this.info?.resumed;
  }
  /**
   * Keying material exported from the connection (RFC 8446 §7.5 TLS-Exporter; RFC 5705 use), with
   * node:tls's argument order: the same bytes as node:tls / OpenSSL give for the same connection.
   * Throws ERR_TLS_INVALID_STATE until the handshake completed. In TLS 1.3 an omitted and an empty
   * `context` give the same output.
   */
  exportKeyingMaterial(length: number, label: string, context?: ArrayBufferView): Buffer {
    const ctx = checkExporterArgs(length, label, context);
    if (!this.secure) throw codedError('TLS socket connection must be securely established', 'ERR_TLS_INVALID_STATE');
    return toBuffer(this.tls.exportKeyingMaterial(label, length, ctx));
  }
  /**
   * The early exporter (RFC 8446 §7.5, early_exporter_master_secret): only on a connection with 0-RTT
   * (client: offered and not rejected; server: accepted), from the moment 0-RTT keys exist.
   */
  exportEarlyKeyingMaterial(length: number, label: string, context?: ArrayBufferView): Buffer {
    const ctx = checkExporterArgs(length, label, context);
    try {
      return toBuffer(this.tls.exportEarlyKeyingMaterial(label, length, ctx));
    } catch (e) {
      throw codedError((e as Error).message, 'ERR_TLS_INVALID_STATE');
    }
  }
  /** Our Finished message's verify_data (RFC 8446 §4.4.4), undefined until sent (as node:tls). */
  getFinished(): Buffer | undefined {
    const f = this.tls.finished;
    return f ? toBuffer(f) : undefined;
  }
  /** The peer's Finished verify_data, undefined until received and verified (as node:tls). */
  getPeerFinished(): Buffer | undefined {
    const f = this.tls.peerFinished;
    return f ? toBuffer(f) : undefined;
  }
  /** Sends a KeyUpdate (RFC 8446 §4.6.3); with requestPeer the peer updates its keys too. */
  keyUpdate(requestPeer = true): void {
    if (!this.secure || this.dead) throw new Error('keyUpdate: the handshake has not completed or the socket is closed');
    this.guard(() => {
      this.tls.updateKeys(requestPeer);
      this.drainSession();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Driving the handshake core

  private startClient(): void {
    this.tls.start();
    this.drainSession();
    const early = this.opts.earlyData;
    if (early && early.length > 0 && this.record.appWriteLevel === 'early') {
      const n = Math.min(early.length, this.opts.maxEarlyData ?? early.length);
      this.earlySent = early.subarray(0, n);
      this.earlyRest = n < early.length ? early.subarray(n) : null;
      this.earlyState = 'sent';
      this.transport.write(this.record.writeAppData(this.earlySent));
    } else if (early && early.length > 0) {
      this.earlyRest = early;
    }
  }

  /**
   * push() of received application data: in flowing mode it runs the application's 'data'
   * listeners synchronously, and what they throw is marked as theirs (see guard).
   */
  private pushApp(chunk: Buffer): boolean {
    try {
      return this.push(chunk);
    } catch (e) {
      throw new ListenerThrew(e);
    }
  }

  /** Runs `fn` and turns any exception into a connection failure (never throws). */
  private guard(fn: () => void): void {
    if (this.dead) return;
    try {
      fn();
    } catch (e) {
      if (e instanceof ListenerThrew) this.failApp(e.error);
      else if (e instanceof ProtocolViolation) this.failLocal(e);
      else this.failLocal(new ProtocolViolation('tls', Alert.internal_error, `internal error: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  /**
   * Bytes read into a buffer that the caller reuses after this returns (net.Socket `onread`, see
   * client.ts): processed in place, and what is left unparsed is copied (RecordLayer.detachInput).
   * Spares the allocation of a buffer per socket read.
   */
  onBorrowedRead(view: Uint8Array): void {
    if (this.dead) return;
    this.record.receive(view, true);
    this.guard(() => this.pump());
    this.record.detachInput();
  }

  private onTransportData(chunk: Buffer): void {
    if (this.dead) return;
    // A socket chunk is a fresh buffer nobody writes to again: the record layer reads it in place.
    this.record.receive(chunk, true);
    this.guard(() => this.pump());
  }

  private onTransportEnd(): void {
    if (this.dead) return;
    this.transportEnded = true;
    // Records still buffered (a blocked reader) are delivered first; pump() ends the stream after them.
    this.guard(() => this.pump());
  }

  /** The transport sent FIN and every buffered record was processed. */
  private onInputExhausted(): void {
    if (!this.secure) {
      this.failWith(connectionClosed('the peer closed the connection before the TLS handshake completed'));
      return;
    }
    // A TCP FIN without close_notify is a truncation; like node:tls we end the stream.
    if (!this.peerClosed) {
      this.peerClosed = true;
      this.push(null);
    }
  }

  /** Moves records → handshake core / application, and core events → records, until stalled. */
  private pump(): void {
    const cork = 'cork' in this.transport && typeof this.transport.cork === 'function';
    if (cork) this.transport.cork();
    try {
      for (let guard = 0; guard < 1_000_000; guard++) {
        this.drainSession();
        if (this.dead) return;
        if (this.tls.pending) {
          this.waitPending();
          return;
        }
        if (this.readBlocked) return;
        const ev = this.record.poll();
        if (!ev) {
          if (this.transportEnded && !this.waitingPending) this.onInputExhausted();
          return;
        }
        switch (ev.type) {
          case 'handshake':
            if (ev.level === 'application' && this.record.keyUpdatesRead !== this.keyUpdatesSeen) this.onPeerKeyUpdate();
            this.tls.receive(ev.level, ev.data);
            break;
          case 'appData':
            if (this.peerClosed) break;
            if (ev.data.length > 0 && !this.pushApp(Buffer.from(ev.data.buffer, ev.data.byteOffset, ev.data.length))) {
              this.readBlocked = true;
              if ('pause' in this.transport) this.transport.pause();
            }
            break;
          case 'alert':
            this.onAlert(ev.description, ev.fatal);
            break;
        }
      }
    } finally {
      if (cork) (this.transport as Socket).uncork();
    }
  }

  /** Rate limit on the peer's KeyUpdates (the record layer bounds them relative to application data). */
  private onPeerKeyUpdate(): void {
    this.keyUpdatesSeen = this.record.keyUpdatesRead;
    const now = performance.now();
    if (now - this.keyUpdateWindowStart >= 1000) {
      this.keyUpdateWindowStart = now;
      this.keyUpdatesInWindow = 0;
    }
    if (++this.keyUpdatesInWindow > this.keyUpdatesPerSecond)
      throw new ProtocolViolation('tls', Alert.unexpected_message, `more than ${this.keyUpdatesPerSecond} KeyUpdates within a second`);
  }

  private waitPending(): void {
    if (this.waitingPending || !this.tls.pending) return;
    this.waitingPending = true;
    this.tls.pending.then(() => {
      this.waitingPending = false;
      this.guard(() => this.pump());
    });
  }

  private onAlert(description: number, fatal: boolean): void {
    if (description === Alert.close_notify) {
      if (!this.secure) {
        this.failWith(new TlsAlertError(description, true, 'close_notify before the handshake completed'));
        return;
      }
      if (!this.peerClosed) {
        this.peerClosed = true;
        this.push(null);
      }
      return;
    }
    if (!fatal) return; // user_canceled: a close_notify follows
    this.failWith(new TlsAlertError(description, true, ''));
  }

  private drainSession(): void {
    for (let ev = this.tls.poll(); ev && !this.dead; ev = this.tls.poll()) {
      switch (ev.type) {
        case 'send':
          this.flushStaged(); // application data accepted earlier goes first
          if (ev.level === 'application' && ev.data[0] === 24) this.keyUpdatesSent++;
          this.transport.write(this.record.writeHandshake(ev.level, ev.data));
          break;
        case 'secret':
          this.record.installSecret(ev.level, ev.direction, ev.suite, ev.secret);
          break;
        case 'earlyData':
          if (this.role === 'server') {
            // The handshake core's figure (the accepted ticket's max_early_data_size): the one source of truth.
            const max = ev.maxEarlyData ?? 0;
            if (ev.accepted) this.record.acceptEarlyData(max);
            else this.record.rejectEarlyData(Math.max(max, 16384));
          } else {
            this.earlyState = ev.accepted ? 'accepted' : 'rejected';
            if (!ev.accepted) this.record.dropEarlyWriteKey();
          }
          break;
        case 'sessionTicket':
          this.session = ev.ticket;
          try {
            this.emit('session', ev.ticket);
          } catch (e) {
            reportListenerError(e, "a 'session' listener");
          }
          break;
        case 'handshakeComplete':
          this.onSecure(ev.info);
          break;
        case 'alert':
          if (ev.remote) this.failWith(new TlsAlertError(ev.alert, true, ev.error.message, ev.error));
          else this.failLocal(ev.error, ev.alert);
          break;
      }
    }
  }

  private onSecure(info: HandshakeInfo): void {
    this.secure = true;
    this.authorized = this.opts.authorizedOnSecure ?? true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.timings.secure = performance.now();
    this.alpnProtocol = info.alpn ?? false;
    const earlyData: TlsConnectionInfo['earlyData'] =
      this.role === 'server' ? (info.earlyDataAccepted ? 'accepted' : 'none') : this.earlyState === 'sent' ? 'none' : this.earlyState === 'none' ? 'none' : this.earlyState;
    this.info = {
      version: 'TLSv1.3',
      suite: info.suite,
      group: info.group,
      signatureScheme: info.signatureScheme,
      alpn: info.alpn,
      serverName: info.serverName,
      resumed: info.resumed,
      earlyData,
      helloRetry: info.helloRetry,
      peerCertificates: info.peerCertificates,
      provider: this.provider.name,
    };
    // 0-RTT data the server did not take, and whatever did not fit, goes out as 1-RTT data first.
    const resend: Uint8Array[] = [];
    if (this.earlyState === 'rejected' && this.earlySent) resend.push(this.earlySent);
    if (this.earlyRest) resend.push(this.earlyRest);
    this.earlySent = this.earlyRest = null;
    for (const d of resend) this.transport.write(this.record.writeAppData(d));
    process.nextTick(() => {
      if (this.dead) return;
      try {
        this.emit(this.role === 'client' ? 'secureConnect' : 'secure');
      } catch (e) {
        // An application listener threw: the connection goes on (writes queued during the
        // handshake still go out); the error is reported, never thrown into the process.
        reportListenerError(e, `a '${this.role === 'client' ? 'secureConnect' : 'secure'}' listener`);
      }
      this.flushQueued();
    });
  }

  private flushQueued(): void {
    const q = this.queued;
    this.queued = [];
    for (const w of q) this.writeApp(w.data, w.cb);
    if (this.finalCb) {
      const cb = this.finalCb;
      this.finalCb = null;
      this._final(cb);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Duplex

  override _read(): void {
    if (this.readBlocked) {
      this.readBlocked = false;
      if ('resume' in this.transport) this.transport.resume();
      this.guard(() => this.pump());
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.dead) return cb(new Error('TLS socket is closed'));
    if (!this.secure) {
      this.queued.push({ data: chunk, cb });
      return;
    }
    this.writeApp(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (chunks.length === 1 || this.dead || !this.secure) {
      const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
      this._write(data, 'binary', cb);
      return;
    }
    // Several buffered writes: sealed as one stream of full-size records in one transport write.
    this.writeApp(null, cb, chunks.map((c) => c.chunk));
  }

  /**
   * Application data out. Writes smaller than {@link STAGE_BELOW} are copied into a staging buffer;
   * each time it fills up it is sealed as four full records in one transport write, and the rest is
   * sealed at the end of the tick (full records instead of one record per write, whatever the
   * application's write size). A large write is sealed at once, together with what is staged. The
   * write completes while the transport holds less than {@link TRANSPORT_BUFFER} bytes, else at its
   * 'drain'.
   */
  private writeApp(data: Uint8Array | null, cb: (err?: Error | null) => void, parts?: Uint8Array[]): void {
    if (this.dead) return cb(new Error('TLS socket is closed'));
    try {
      if (data && data.length < STAGE_BELOW) {
        const stage = (this.staged ??= stagePool.pop() ?? new Uint8Array(STAGE_SIZE));
        for (let off = 0; off < data.length; ) {
          const k = Math.min(STAGE_SIZE - this.stagedLen, data.length - off);
          stage.set(k === data.length ? data : data.subarray(off, off + k), this.stagedLen);
          this.stagedLen += k;
          off += k;
          if (this.stagedLen === STAGE_SIZE) this.sealStage(false);
          if (this.dead) break;
        }
        if (this.stagedLen > 0 && !this.flushScheduled) {
          this.flushScheduled = true;
          process.nextTick(() => {
            this.flushScheduled = false;
            this.guard(() => this.flushStaged());
          });
        }
      } else {
        const all: Uint8Array[] = [];
        if (this.stagedLen > 0) all.push(this.staged!.subarray(0, this.stagedLen));
        if (data) all.push(data);
        if (parts) for (const p of parts) all.push(p);
        this.stagedLen = 0;
        this.sendApp(all);
        this.returnStage();
      }
    } catch (e) {
      this.guard(() => {
        throw e;
      });
      return cb(e instanceof Error ? e : new Error(String(e)));
    }
    if (!this.transportFull || this.transport.writableLength < TRANSPORT_BUFFER) cb();
    else this.drainCb = () => cb();
  }

  /** Seals and writes what is staged (before any other record goes out, and at the end of a tick). */
  private flushStaged(): void {
    this.sealStage(true);
  }

  /** Seals and writes the staged bytes; `release`: give the staging buffer back to the pool afterwards. */
  private sealStage(release: boolean): void {
    if (this.stagedLen > 0) {
      const n = this.stagedLen;
      this.stagedLen = 0; // a KeyUpdate sent from sendApp() must not flush it again
      // Sealing copies the bytes into a new buffer: the stage is free again once sendApp returns.
      if (!this.dead) this.sendApp([this.staged!.subarray(0, n)]);
    }
    if (release) this.returnStage();
  }

  private returnStage(): void {
    const stage = this.staged;
    if (!stage || this.stagedLen > 0) return;
    this.staged = null;
    if (stagePool.length < STAGE_POOL_MAX) stagePool.push(stage);
  }

  private sendApp(parts: Uint8Array[]): void {
    if (this.record.needsKeyUpdate) {
      this.tls.updateKeys(false);
      this.drainSession();
    }
    let total = 0;
    for (const p of parts) total += p.length;
    if (!this.recycleOut || this.record.appDataSize(total) > OUT_BUFFER_SIZE) {
      if (!this.transport.write(this.record.writeAppDataV(parts))) this.transportFull = true;
      return;
    }
    // Sealed into a shared scratch buffer. When the socket hands the bytes to the kernel within
    // write() (nothing left queued: writableLength 0), it keeps no reference and the buffer is
    // reused at once: a bulk sender then allocates no output buffer per write, which keeps Node's
    // external-memory-driven GCs off the write path. Otherwise the socket owns it (a new one next time).
    const buf = outPool.pop() ?? new Uint8Array(OUT_BUFFER_SIZE);
    const ok = this.transport.write(this.record.writeAppDataV(parts, buf));
    if (!ok) this.transportFull = true;
    if (this.transport.writableLength === 0 && outPool.length < OUT_POOL_MAX) outPool.push(buf);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.dead) return cb();
    if (!this.secure) {
      this.finalCb = cb;
      return;
    }
    if (!this.closeNotifySent && this.transport.writable && !this.transport.destroyed) {
      this.closeNotifySent = true;
      try {
        this.flushStaged();
        this.transport.write(this.record.writeAlert(Alert.close_notify));
      } catch {
        // closing anyway
      }
      this.transport.end();
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.dead = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    for (const w of this.queued) w.cb(err ?? new Error('TLS socket destroyed'));
    this.queued = [];
    if (this.finalCb) this.finalCb(err);
    this.finalCb = null;
    if (this.drainCb) this.drainCb();
    this.drainCb = null;
    this.transport.destroy();
    cb(err);
  }

  // ---------------------------------------------------------------------------------------------
  // Failures

  /** We detected a protocol error: send the alert, close, and report it. */
  private failLocal(err: ProtocolViolation, alert = err.layer === 'tls' ? err.code : Alert.internal_error): void {
    if (this.dead) return;
    try {
      if (this.transport.writable) {
        this.transport.write(this.record.writeAlert(alert));
        this.transport.end();
      }
    } catch {
      // the alert is best effort
    }
    this.failWith(new TlsAlertError(alert, false, err.message, err));
  }

  /**
   * An application listener threw while we delivered data: the stream's state is unknown, so the
   * connection ends (internal_error to the peer, which did nothing wrong), and the 'error' event
   * carries the application's own error (its stack points at the listener), not a TLS error.
   */
  private failApp(error: unknown): void {
    if (this.dead) return;
    try {
      if (this.transport.writable) {
        this.transport.write(this.record.writeAlert(Alert.internal_error));
        this.transport.end();
      }
    } catch {
      // the alert is best effort
    }
    this.failWith(error instanceof Error ? error : new Error(`a 'data' listener threw ${String(error)}`));
  }

  private failWith(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.destroy(err);
  }
}

/** Wraps what an application listener threw out of push(), to tell it from our own failures. */
class ListenerThrew {
  constructor(readonly error: unknown) {}
}

function connectionClosed(message: string, code = 'ECONNRESET'): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}
