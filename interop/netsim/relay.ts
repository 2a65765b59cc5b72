/**
 * Userspace UDP relay between one client and one server on loopback, shaping each direction with
 * a {@link Link} (delay, rate + drop-tail queue, loss, targeted drops, blackholes, corruption,
 * reordering, duplication) and able to rebind its addresses mid-connection.
 *
 *   const relay = await startRelay({ listen: 0, target: { host: '127.0.0.1', port: 4433 },
 *                                    up: { loss: 0.1 }, down: {}, seed: 1, log: 'netsim.jsonl' });
 *   // client → 127.0.0.1:relay.port → relay → server; replies come back the same way.
 *   await relay.rebind();                          // server sees a new source port
 *   await relay.rebind({ side: 'server', address: '127.0.0.2' });  // ... and a new address
 *   await relay.rebind({ side: 'client' });        // client sees replies from a new port
 *   relay.stats; await relay.close();
 *
 * `up` is client → server, `down` is server → client. The client is whoever sent the last
 * datagram to the listening socket (a client that migrates is followed). Every datagram is
 * logged as one JSON line: {t, dir, n, size, type, first, fate, reason?, at?, dup?, reorder?, hex?}
 * (t and at in ms since start, first = first 8 bytes in hex), plus {t, event: 'rebind', ...}
 * and {t, event: 'client', addr} lines.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import { Rng } from '../../test/support/rng.js';
import { coalescedTypes, hexPrefix, longHeaderIds, packetVersion } from './classify.js';
import { Link, type Decision, type Direction, type LinkConfig, type LinkStats } from './link.js';

export interface Addr {
  host: string;
  port: number;
}

export type LogRecord = Record<string, unknown> & { t: number };

export interface RelayOptions {
  /** Port to listen on (0 = any free port), or a full address (default host 127.0.0.1). */
  listen: number | Addr;
  /** The server. */
  target: Addr;
  /** Client → server shaping (defaults: 15 ms, 10 Mbit/s, 25-packet queue). */
  up?: LinkConfig;
  /** Server → client shaping (same defaults). */
  down?: LinkConfig;
  /** Seed for every random decision (default 1). */
  seed?: number;
  /** JSON-lines log: a file path or a callback per record. */
  log?: string | ((rec: LogRecord) => void);
  /** Address the relay's server-facing socket binds to (default 127.0.0.1). */
  upstreamHost?: string;
  /**
   * Cross traffic: an unresponsive constant-rate UDP flow (1200-byte datagrams, Mbit/s) injected
   * into the down link's bottleneck queue, competing with the server's packets for the rate and
   * the queue, discarded after the link (logged with type "cross").
   */
  crossMbps?: number;
  /**
   * When the client's address changes (active migration, a new local port, or the next connection
   * of a client that opens one socket per connection), the relay's server-facing socket changes
   * too (a pre-bound spare takes over at once), so the server sees the new address as well; the
   * old server-facing socket stays open and keeps its client: the server's late packets for the
   * old address go to the old address, as through a NAT.
   */
  followMigration?: boolean;
  /** Log every datagram whole (hex, as delivered), for checks that decrypt with a key log. */
  logPayload?: boolean;
}

export interface RebindOptions {
  /**
   * 'server' (default): the server-facing socket moves (NAT rebinding as the server sees it).
   * 'client': replies to the client come from a new socket (the client sees the server move);
   * the old listening socket keeps accepting client datagrams.
   */
  side?: 'server' | 'client';
  /** New local address (e.g. 127.0.0.2); default: the current one. */
  address?: string;
  /** New local port (default: any free one). */
  port?: number;
}

export interface Relay {
  /** The port clients send to. */
  readonly port: number;
  readonly address: Addr;
  /** The relay's current server-facing address (what the server sees as the client). */
  readonly upstreamAddress: Addr;
  /** Current address the client receives replies from. */
  readonly downstreamAddress: Addr;
  readonly stats: { up: LinkStats; down: LinkStats; rebinds: number; clientAddresses: number };
  rebind(opts?: RebindOptions): Promise<{ from: Addr; to: Addr }>;
  close(): Promise<void>;
}

interface Pending {
  at: number;
  dir: Direction;
  data: Uint8Array;
  cross?: boolean;
  /** Down: the client address this datagram goes to (followMigration: the one mapped to the socket it came in on). */
  to?: Addr;
  /** Up (followMigration): the server-facing socket of the client address it came from, fixed when it arrived. */
  via?: dgram.Socket;
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const rng = new Rng(opts.seed ?? 1);
  const links = { up: new Link('up', opts.up ?? {}, rng.fork()), down: new Link('down', opts.down ?? {}, rng.fork()) };
  const listen: Addr = typeof opts.listen === 'number' ? { host: '127.0.0.1', port: opts.listen } : opts.listen;

  let logFd: number | undefined;
  let logFn: ((r: LogRecord) => void) | undefined;
  if (typeof opts.log === 'string') logFd = fs.openSync(opts.log, 'w');
  else logFn = opts.log;
  const logging = logFd !== undefined || logFn !== undefined;
  const log = (rec: LogRecord) => {
    if (logFn) logFn(rec);
    if (logFd !== undefined) fs.writeSync(logFd, JSON.stringify(rec) + '\n');
  };

  const family = (h: string) => (h.includes(':') ? 'udp6' : 'udp4') as dgram.SocketType;
  const bind = (host: string, port: number, onMsg: (m: Buffer, r: dgram.RemoteInfo) => void): Promise<dgram.Socket> =>
    new Promise((resolve, reject) => {
      // Large buffers: the relay, not the kernel, should decide what is dropped (bursts of a
      // fast sender would otherwise overflow the default ~200 kB; capped by net.core.rmem_max).
      const s = dgram.createSocket({ type: family(host), recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      s.once('error', reject);
      s.bind(port, host, () => {
        s.off('error', reject);
        s.on('error', () => {}); // ICMP unreachable etc. on a relay: ignore
        s.on('message', onMsg);
        resolve(s);
      });
    });

  let closed = false;
  let client: Addr | undefined;
  let clientCount = 0;
  let rebinds = 0;

  const fromClient = (m: Buffer, r: dgram.RemoteInfo) => {
    if (closed) return;
    const data = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    if (opts.followMigration && (!client || client.port !== r.port || client.host !== r.address)) {
      // A NAT keeps a mapping per client address: a datagram from an address seen before (say, a
      // previous connection's socket sending late) leaves through that address's own socket and
      // moves nothing (the current client stays the current client).
      const known = clientSocks.get(`${r.address}:${r.port}`);
      if (known) {
        handle('up', data, false, undefined, known);
        return;
      }
    }
    if (!client || client.port !== r.port || client.host !== r.address) {
      client = { host: r.address, port: r.port };
      clientCount++;
      if (logging) log({ t: round(now()), event: 'client', addr: `${r.address}:${r.port}` });
      if (clientCount === 1) {
        sockClient.set(upSock, client);
        clientSocks.set(`${client.host}:${client.port}`, upSock);
      }
      if (clientCount > 1 && spareUp) {
        const from = addrOf(upSock);
        retiredUp.push(upSock);
        upSock = spareUp;
        spareUp = undefined;
        sockClient.set(upSock, client);
        clientSocks.set(`${client.host}:${client.port}`, upSock);
        rebinds++;
        if (logging) log({ t: round(now()), event: 'rebind', side: 'server', follow: true, from: `${from.host}:${from.port}`, to: `${addrOf(upSock).host}:${addrOf(upSock).port}` });
        void bind(opts.upstreamHost ?? '127.0.0.1', 0, upHandler).then((s) => {
          if (closed) s.close();
          else spareUp = s;
        });
      }
    }
    // followMigration: the datagram leaves through its client's socket even if another client
    // address takes over before it is delivered (it was sent from this address).
    handle('up', data, false, undefined, opts.followMigration ? upSock : undefined);
  };
  // followMigration: each server-facing socket belongs to one client address, like a NAT mapping
  // (late server packets for a client's previous address go there, not to its current one).
  const sockClient = new Map<dgram.Socket, Addr>();
  const clientSocks = new Map<string, dgram.Socket>();
  /** Server-facing sockets closed by a NAT rebinding: what was still on its way to them takes the new one. */
  const rebound = new WeakSet<dgram.Socket>();
  const upHandler = function (this: dgram.Socket, m: Buffer, r: dgram.RemoteInfo) {
    if (closed || r.port !== opts.target.port) return; // only the server talks to the upstream socket
    handle('down', new Uint8Array(m.buffer, m.byteOffset, m.byteLength), false, opts.followMigration ? sockClient.get(this) : undefined);
  };

  const listenSock = await bind(listen.host, listen.port, fromClient);
  let downSock = listenSock; // socket used to send to the client
  const extraDownSocks: dgram.Socket[] = [];
  let upSock = await bind(opts.upstreamHost ?? '127.0.0.1', 0, upHandler);
  const retiredUp: dgram.Socket[] = [];
  let spareUp: dgram.Socket | undefined = opts.followMigration ? await bind(opts.upstreamHost ?? '127.0.0.1', 0, upHandler) : undefined;

  // Delivery queue, sorted by time; one timer for the earliest entry.
  const pending: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  const arm = () => {
    if (closed || pending.length === 0) return;
    const at = pending[0]!.at;
    if (timer && at >= timerAt) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(flush, Math.max(0, at - now()));
  };
  const flush = () => {
    timer = undefined;
    timerAt = Infinity;
    const n = now() + 0.5;
    while (pending.length && pending[0]!.at <= n) {
      const p = pending.shift()!;
      if (p.cross) continue;
      if (p.dir === 'up') (p.via && !rebound.has(p.via) ? p.via : upSock).send(p.data, opts.target.port, opts.target.host);
      else {
        const dest = p.to ?? client;
        if (dest) downSock.send(p.data, dest.port, dest.host);
      }
    }
    arm();
  };
  const enqueue = (p: Pending) => {
    let lo = 0;
    let hi = pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pending[mid]!.at <= p.at) lo = mid + 1;
      else hi = mid;
    }
    pending.splice(lo, 0, p);
    arm();
  };

  const handle = (dir: Direction, data: Uint8Array, cross = false, to?: Addr, via?: dgram.Socket) => {
    const d: Decision = links[dir].decide(data.slice(), now());
    if (logging) {
      const rec: LogRecord = { t: round(d.info.timeMs), dir, n: d.info.index, size: d.info.size, type: cross ? 'cross' : d.info.type, first: hexPrefix(data), fate: d.fate };
      const ids = cross ? null : longHeaderIds(data);
      if (ids) {
        rec.v = packetVersion(data)!.toString(16);
        rec.dcid = ids.dcid;
        rec.scid = ids.scid;
        const types = coalescedTypes(data);
        if (types.length > 1) rec.types = types;
      }
      if (d.reason) rec.reason = d.reason;
      if (d.deliverAtMs.length) rec.at = round(d.deliverAtMs[0]!);
      if (d.duplicated) rec.dup = true;
      if (d.reordered) rec.reorder = true;
      if (d.fate !== 'dropped') rec.q = d.queueLen;
      if (opts.logPayload && !cross) rec.hex = Buffer.from(d.data).toString('hex');
      log(rec);
    }
    for (const at of d.deliverAtMs) enqueue({ at, dir, data: d.data, cross, to, via });
  };

  // Constant-rate cross traffic through the down bottleneck (short-header-looking 1200-byte datagrams).
  let crossTimer: NodeJS.Timeout | undefined;
  if (opts.crossMbps && opts.crossMbps > 0) {
    const size = 1200;
    const perMs = (opts.crossMbps * 1e6) / 8 / size / 1000;
    const blob = new Uint8Array(size).fill(0x40);
    let sent = 0;
    const tc = now();
    crossTimer = setInterval(() => {
      const due = Math.floor((now() - tc) * perMs);
      for (let i = 0; sent < due && i < 1000; i++, sent++) handle('down', blob, true);
    }, 2);
  }

  const addrOf = (s: dgram.Socket): Addr => {
    const a = s.address();
    return { host: a.address, port: a.port };
  };

  const relay: Relay = {
    get port() {
      return addrOf(listenSock).port;
    },
    get address() {
      return addrOf(listenSock);
    },
    get upstreamAddress() {
      return addrOf(upSock);
    },
    get downstreamAddress() {
      return addrOf(downSock);
    },
    get stats() {
      return { up: links.up.stats, down: links.down.stats, rebinds, clientAddresses: clientCount };
    },
    async rebind(ro: RebindOptions = {}) {
      if (closed) throw new Error('relay closed');
      const side = ro.side ?? 'server';
      let from: Addr;
      let to: Addr;
      if (side === 'server') {
        from = addrOf(upSock);
        const next = await bind(ro.address ?? from.host, ro.port ?? 0, upHandler);
        const old = upSock;
        upSock = next;
        if (client) sockClient.set(next, client);
        sockClient.delete(old);
        rebound.add(old);
        for (const [k, v] of clientSocks) if (v === old) clientSocks.set(k, next);
        // The old mapping is gone: datagrams still addressed to it are lost, as after a NAT rebinding.
        old.close();
        to = addrOf(next);
      } else {
        from = addrOf(downSock);
        const next = await bind(ro.address ?? from.host, ro.port ?? 0, fromClient);
        extraDownSocks.push(next);
        downSock = next;
        to = addrOf(next);
      }
      rebinds++;
      if (logging) log({ t: round(now()), event: 'rebind', side, from: `${from.host}:${from.port}`, to: `${to.host}:${to.port}` });
      return { from, to };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      if (crossTimer) clearInterval(crossTimer);
      pending.length = 0;
      const socks = [listenSock, upSock, ...extraDownSocks, ...retiredUp, ...(spareUp ? [spareUp] : [])];
      await Promise.all(socks.map((s) => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } })));
      if (logFd !== undefined) fs.closeSync(logFd);
    },
  };
  return relay;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
