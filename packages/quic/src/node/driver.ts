/**
 * The node:dgram driver of one Endpoint: one UDP socket, ONE timer (re-armed to
 * endpoint.nextTimeout()), a send loop draining endpoint.pollTransmit(), and event dispatch to the
 * NodeQuicConnection wrappers.
 *
 * node:dgram limits (documented, not worked around):
 * - ECN: node:dgram can neither read the ECN bits of received datagrams nor set them on sent ones
 *   (no IP_RECVTOS / IP_TOS control messages), so Petrel never validates or reports ECN (RFC 9000
 *   §13.4 allows that: ECN is optional) and ACK frames carry no ECN counts.
 * - Batching: there is no sendmmsg/GSO in node:dgram; each datagram is one send() call (libuv tries
 *   a synchronous send first, so this costs a syscall per datagram but no queueing). Receives are
 *   one 'message' event per datagram. After SEND_BURST datagrams the loop yields (setImmediate) so
 *   that received datagrams (ACKs) are processed between bursts.
 * - The Transmit's datagram is handed to send() without a copy: Connection and Endpoint allocate a
 *   fresh buffer per datagram.
 * - Remote addresses are IP literals (from received datagrams, or resolved once at connect), so the
 *   sockets get a `lookup` that answers those synchronously: node:dgram otherwise runs every send()
 *   through dns.lookup, which defers the actual send to a process.nextTick per datagram.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { Address, QuicConnection } from '../api.js';
import type { Endpoint } from '../endpoint.js';
import { NodeQuicConnection } from './connection.js';

const SEND_BURST = 64;

export interface DriverOptions {
  /** Socket receive/send buffer sizes in bytes (default 4 MiB / 2 MiB, best effort). */
  recvBufferSize?: number;
  sendBufferSize?: number;
}

/**
 * The transport clock: milliseconds since the epoch, monotonic and sub-millisecond
 * (timeOrigin + performance.now()). Epoch-based because Connection also hands it to TLS for
 * certificate validity and ticket ages (cfg.tls.now defaults to the connection's time).
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function socketType(host: string): 'udp4' | 'udp6' {
  return host.includes(':') ? 'udp6' : 'udp4';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

let lastLookupHost = '';
let lastLookupFamily = 0;

/**
 * The sockets' `lookup`: an IP literal (every address the driver sends to) is its own answer, given
 * synchronously, so that send() goes straight to the socket; anything else goes to dns.lookup as
 * node:dgram's default would. The last literal's family is remembered (one string compare per send).
 */
function ipLiteralLookup(host: string, family: number, cb: LookupCallback): void {
  if (host === lastLookupHost) {
    cb(null, host, lastLookupFamily);
    return;
  }
  const f = net.isIP(host);
  if (f === 0) {
    dns.lookup(host, family, cb);
    return;
  }
  lastLookupHost = host;
  lastLookupFamily = f;
  cb(null, host, f);
}

export function bindSocket(host: string, port: number, opts: DriverOptions = {}): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: socketType(host), reuseAddr: false, lookup: ipLiteralLookup as unknown as dgram.SocketOptions['lookup'] });
    const onErr = (e: Error) => {
      s.close();
      reject(e);
    };
    s.once('error', onErr);
    s.bind(port, host, () => {
      s.off('error', onErr);
      try {
        s.setRecvBufferSize(opts.recvBufferSize ?? 4 * 1024 * 1024);
        s.setSendBufferSize(opts.sendBufferSize ?? 2 * 1024 * 1024);
      } catch {
        /* best effort (limited by net.core.rmem_max) */
      }
      resolve(s);
    });
  });
}

export class UdpDriver {
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private timerAt = Infinity;
  private scheduled = false;
  private sending = false;
  private closed = false;
  readonly wrappers = new Map<QuicConnection, NodeQuicConnection>();
  private readonly dirty = new Set<NodeQuicConnection>();
  /** Old sockets kept open briefly after a migration (late datagrams on the old path). */
  private readonly oldSockets: dgram.Socket[] = [];
  onConnection: ((c: NodeQuicConnection) => void) | null = null;
  onSocketError: ((e: Error) => void) | null = null;
  /** Called when no connection is left (client drivers close then). */
  onIdle: (() => void) | null = null;
  sendErrors = 0;
  /** Datagrams handed to socket.send() whose completion callback has not run yet. */
  private inFlight = 0;
  /** Called once with the DCID of the first long-header datagram sent (client: the ODCID). */
  onFirstLongHeader: ((dcid: Uint8Array) => void) | null = null;
  /** Version Negotiation packets seen on the socket (interop checks; a cheap look at 5 bytes). */
  versionNegotiationsReceived = 0;

  constructor(
    readonly endpoint: Endpoint,
    public socket: dgram.Socket,
  ) {
    this.attach(socket);
  }

  private attach(s: dgram.Socket): void {
    s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    s.on('error', (e) => {
      // Receive-side errors (ICMP unreachable on some platforms) are not fatal for QUIC.
      this.onSocketError?.(e);
    });
  }

  /** The sender of the last datagram (the same object while it does not change: no Address per datagram). */
  private lastRemote: Address = { address: '', port: 0, family: 4 };

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    let remote = this.lastRemote;
    if (rinfo.port !== remote.port || rinfo.address !== remote.address) {
      remote = this.lastRemote = { address: rinfo.address, port: rinfo.port, family: rinfo.family === 'IPv6' ? 6 : 4 };
    }
    const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    if (data.length >= 7 && (data[0]! & 0x80) !== 0 && (data[1]! | data[2]! | data[3]! | data[4]!) === 0) this.versionNegotiationsReceived++;
    const conn = this.endpoint.receive(data, remote, now());
    this.takeNewConnections();
    if (conn) {
      const w = this.wrappers.get(conn);
      if (w) this.dirty.add(w);
    }
    this.schedule();
  }

  /** Wraps connections the endpoint accepted and announces them. */
  private takeNewConnections(): void {
    for (let e = this.endpoint.pollEvent(); e; e = this.endpoint.pollEvent()) {
      if (e.type !== 'connection') continue;
      const w = this.wrap(e.connection);
      this.dirty.add(w);
      this.onConnection?.(w);
    }
  }

  wrap(conn: QuicConnection): NodeQuicConnection {
    let w = this.wrappers.get(conn);
    if (w) return w;
    w = new NodeQuicConnection(conn, {
      now,
      kick: () => {
        this.dirty.add(w!);
        this.schedule();
      },
      migrate: (c) => this.migrate(c),
      driverStats: () => ({ versionNegotiationsReceived: this.versionNegotiationsReceived, sendErrors: this.sendErrors }),
    });
    this.wrappers.set(conn, w);
    return w;
  }

  /** Runs the I/O step soon (coalesces many app calls / datagrams into one pass). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.step();
    });
  }

  /** Flush sends, dispatch events, re-arm the timer. */
  step(): void {
    if (this.closed) return;
    for (const w of this.dirty) w.dispatch();
    this.dirty.clear();
    this.flush();
    // Events may have triggered app calls that queued more data: those call kick() → schedule().
    this.reap();
    this.arm();
  }

  /** Sends up to SEND_BURST datagrams; true when more may be ready (the burst was used up). */
  private flush(): boolean {
    if (this.sending) return true;
    this.sending = true;
    try {
      const t = now();
      for (let i = 0; i < SEND_BURST; i++) {
        const tx = this.endpoint.pollTransmit(t);
        if (!tx) return false;
        this.send(tx.datagram, tx.remote);
      }
      this.schedule(); // more may be ready: continue after I/O
      return true;
    } finally {
      this.sending = false;
    }
  }

  /**
   * Sends everything the endpoint has ready now, in bursts with I/O in between, and waits until
   * the socket has taken every datagram (send() completions), or until `deadline` (ms, now()
   * clock). QuicServer.close() runs it before destroy(): connections report `closed` as soon as
   * they enter the closing state, but their CONNECTION_CLOSE may still be queued behind earlier
   * bursts (RFC 9000 §10.2: the close is what tells the peer), and closing the socket would drop it.
   */
  async drain(deadline: number): Promise<void> {
    do {
      if (this.closed) return;
      const more = this.flush();
      if (!more && this.inFlight === 0) return;
      await new Promise<void>((r) => setImmediate(r));
    } while (now() < deadline);
  }

  private send(d: Uint8Array, remote: Address): void {
    if (this.onFirstLongHeader && d.length > 6 && (d[0]! & 0x80) !== 0 && d[5]! <= 20 && 6 + d[5]! <= d.length) {
      // A client's first Initial: its DCID is the Original Destination Connection ID (qlog file name).
      const f = this.onFirstLongHeader;
      this.onFirstLongHeader = null;
      f(d.slice(6, 6 + d[5]!));
    }
    try {
      this.socket.send(d, remote.port, remote.address, this.onSent);
      this.inFlight++;
    } catch {
      this.sendErrors++; // e.g. an IPv6 address on a udp4 socket: the datagram is lost, QUIC recovers or times out
    }
  }

  /** send() completion (one function for every datagram). */
  private readonly onSent = (err: Error | null): void => {
    this.inFlight--;
    if (err) this.sendErrors++;
  };

  private reap(): void {
    for (const [conn, w] of this.wrappers) {
      if (conn.isClosed) {
        w.dispatch(); // the 'closed' event
        if (!w.isClosed) w.finish({ code: 0, frameType: 0, reason: '', application: false, remote: false, kind: 'close' });
        this.wrappers.delete(conn);
      }
    }
    if (this.wrappers.size === 0) this.onIdle?.();
  }

  /**
   * Re-arms the single timer to endpoint.nextTimeout(). Deadlines less than 1 ms away (pacing at
   * high rates) use setImmediate: setTimeout cannot wait less than 1 ms and would cap the rate.
   */
  private arm(): void {
    const t = this.endpoint.nextTimeout();
    if (t === null) {
      this.disarm();
      return;
    }
    if ((this.timer || this.immediate) && t === this.timerAt) return;
    this.disarm();
    this.timerAt = t;
    const fire = (): void => {
      this.timer = null;
      this.immediate = null;
      this.timerAt = Infinity;
      this.onTimer();
    };
    const delay = t - now();
    if (delay < 1) this.immediate = setImmediate(fire);
    else this.timer = setTimeout(fire, Math.floor(delay));
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    this.timerAt = Infinity;
  }

  private onTimer(): void {
    if (this.closed) return;
    this.endpoint.handleTimeout(now());
    for (const w of this.wrappers.values()) this.dirty.add(w);
    this.step();
  }

  /** Client migration: a new socket on a new ephemeral port becomes the send socket. */
  private async migrate(c: NodeQuicConnection): Promise<boolean> {
    const old = this.socket;
    const addr = old.address();
    const fresh = await bindSocket(addr.address, 0);
    this.attach(fresh);
    this.socket = fresh;
    this.oldSockets.push(old);
    setTimeout(() => {
      const i = this.oldSockets.indexOf(old);
      if (i >= 0) this.oldSockets.splice(i, 1);
      try {
        old.close();
      } catch {
        /* closed by destroy() */
      }
    }, 3000).unref();
    const ok = c.conn.migrate(now());
    this.dirty.add(c);
    this.schedule();
    return ok;
  }

  /** Stops everything now (no draining). Wrappers still open get a local close. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.disarm();
    for (const w of this.wrappers.values()) {
      w.dispatch();
      if (!w.isClosed) w.finish({ code: 0, frameType: 0, reason: 'endpoint destroyed', application: false, remote: false, kind: 'close' });
    }
    this.wrappers.clear();
    for (const s of [this.socket, ...this.oldSockets.splice(0)]) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
  }
}
