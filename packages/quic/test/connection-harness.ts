/**
 * A small client/server Connection pair for the connection tests: a hand-rolled link with a fixed
 * one-way delay, loss by predicate, optional reordering (hold a datagram back), a virtual clock,
 * and an event log per side. No Endpoint: every datagram to the server goes to the one server
 * Connection (created from the client's first Initial, like the Endpoint does).
 */
import type { CryptoProvider } from '../../tls-core/src/crypto/provider.js';
import { generateSelfSigned, type GeneratedCertificate } from '../../tls-core/src/x509/selfsigned.js';
import type { Address, ConnectionEvent } from '../src/api.js';
import type { ClientConnectionConfig, ConnectionHost, ServerTransportConfig } from '../src/config.js';
import { Connection } from '../src/connection.js';
import { PacketHeader, PacketType, parseHeader } from '../src/header.js';
import { TokenAuthority } from '../src/token.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';

export const C_ADDR: Address = { address: '10.0.0.1', port: 5000, family: 4 };
export const S_ADDR: Address = { address: '10.0.0.2', port: 443, family: 4 };
export const EPOCH = Date.UTC(2026, 0, 1, 1);

const identities = new Map<string, GeneratedCertificate>();
export function identity(provider: CryptoProvider): GeneratedCertificate {
  let id = identities.get(provider.name);
  if (!id) {
    id = generateSelfSigned({ provider, names: ['localhost'], nowMs: EPOCH - 3600_000 });
    identities.set(provider.name, id);
  }
  return id;
}

export type Dir = 'up' | 'down';
export interface Sent {
  dir: Dir;
  at: number;
  data: Uint8Array;
  from: Address;
  to: Address;
}

export class TestHost implements ConnectionHost {
  readonly routes = new Set<string>();
  constructor(
    readonly provider: CryptoProvider,
    readonly ta: TokenAuthority,
  ) {}
  newCid(): Uint8Array {
    return this.provider.randomBytes(8);
  }
  resetToken(cid: Uint8Array): Uint8Array {
    return this.ta.resetToken(cid);
  }
  cidChanged(cid: Uint8Array, added: boolean): void {
    const k = Buffer.from(cid).toString('hex');
    if (added) this.routes.add(k);
    else this.routes.delete(k);
  }
  newToken(ip: string, now: number, version?: number): Uint8Array {
    return this.ta.newToken(ip, now, version);
  }
}

export interface PairOpts {
  provider: CryptoProvider;
  delay?: number;
  client?: Partial<Omit<ClientConnectionConfig, 'provider'>>;
  server?: Partial<Omit<ServerTransportConfig, 'provider'>>;
  /** Return true to drop a datagram (n: index of datagrams in that direction, from 0). */
  drop?: (dir: Dir, data: Uint8Array, n: number, now: number) => boolean;
  /** Replace a datagram before delivery (null: drop). */
  mutate?: (dir: Dir, data: Uint8Array, n: number) => Uint8Array | null;
  /** Extra delay per datagram (reordering). */
  extraDelay?: (dir: Dir, n: number) => number;
  serverParams?: { retryScid?: Uint8Array; addressValidated?: boolean; originalDcid?: Uint8Array; clientScid?: Uint8Array };
  /** Server created by the test from the first Initial (e.g. with Retry); default: direct. */
}

export class Pair {
  now = EPOCH;
  readonly client: Connection;
  server: Connection | null = null;
  readonly log: Sent[] = [];
  readonly clientEvents: ConnectionEvent[] = [];
  readonly serverEvents: ConnectionEvent[] = [];
  readonly keyLog: string[] = [];
  readonly inspector: PacketInspector;
  readonly ta: TokenAuthority;
  readonly clientHost: TestHost;
  readonly serverHost: TestHost;
  /** Where the client's datagrams appear to come from (NAT rebinding changes it). */
  clientAddr: Address = C_ADDR;
  private queue: { at: number; dir: Dir; data: Uint8Array; from: Address; to: Address }[] = [];
  private counts = { up: 0, down: 0 };
  readonly opts: PairOpts;
  /** Called on every event (before it is logged). */
  onEvent: ((side: 'client' | 'server', e: ConnectionEvent) => void) | null = null;

  constructor(opts: PairOpts) {
    this.opts = opts;
    const provider = opts.provider;
    this.ta = new TokenAuthority(provider);
    this.clientHost = new TestHost(provider, this.ta);
    this.serverHost = new TestHost(provider, this.ta);
    this.inspector = new PacketInspector(provider, this.keyLog);
    const ctls = opts.client?.tls ?? {};
    this.client = Connection.client(
      {
        ...opts.client,
        provider,
        tls: { serverName: 'localhost', alpn: ['t'], insecureSkipVerify: true, keyLog: (l: string) => this.keyLog.push(l), ...ctls },
      } as ClientConnectionConfig,
      S_ADDR,
      this.clientHost,
      this.now,
    );
  }

  private makeServer(first: Uint8Array): void {
    const h = new PacketHeader();
    if (!parseHeader(first, 0, first.length, 8, h) || h.type !== PacketType.Initial) return;
    const dcid = first.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
    const scid = first.slice(h.scidOffset, h.scidOffset + h.scidLength);
    const id = identity(this.opts.provider);
    const stls = this.opts.server?.tls ?? {};
    this.server = Connection.server(
      { ...this.opts.server, provider: this.opts.provider, tls: { identity: { chain: [id.certDer], key: id.keyDer }, alpn: ['t'], ...stls } } as ServerTransportConfig,
      {
        remote: this.clientAddr,
        version: h.version,
        initialDcid: dcid,
        clientScid: this.opts.serverParams?.clientScid ?? scid,
        localCid: this.opts.provider.randomBytes(8),
        originalDcid: this.opts.serverParams?.originalDcid ?? dcid,
        retryScid: this.opts.serverParams?.retryScid ?? null,
        addressValidated: this.opts.serverParams?.addressValidated ?? false,
      },
      this.serverHost,
      this.now,
    );
  }

  /** Sends everything both sides have now onto the link. */
  flush(): number {
    let n = 0;
    for (let t = this.client.pollTransmit(this.now); t; t = this.client.pollTransmit(this.now)) {
      this.emit('up', t.datagram.slice(), this.clientAddr, t.remote);
      if (++n > 10000) throw new Error('client send loop');
    }
    if (this.server) {
      for (let t = this.server.pollTransmit(this.now); t; t = this.server.pollTransmit(this.now)) {
        this.emit('down', t.datagram.slice(), S_ADDR, t.remote);
        if (++n > 20000) throw new Error('server send loop');
      }
    }
    this.drainEvents();
    return n;
  }

  /** Puts a datagram on the link as if `dir`'s sender sent it. */
  emit(dir: Dir, data: Uint8Array, from: Address, to: Address): void {
    const n = this.counts[dir]++;
    this.log.push({ dir, at: this.now, data: data.slice(), from, to }); // receive() decrypts in place
    if (this.opts.drop?.(dir, data, n, this.now)) return;
    let d: Uint8Array | null = data;
    if (this.opts.mutate) d = this.opts.mutate(dir, data, n);
    if (!d) return;
    const at = this.now + (this.opts.delay ?? 10) + (this.opts.extraDelay?.(dir, n) ?? 0);
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > at) i--;
    this.queue.splice(i, 0, { at, dir, data: d, from, to });
  }

  drainEvents(): void {
    for (let e = this.client.pollEvent(); e; e = this.client.pollEvent()) {
      this.onEvent?.('client', e);
      this.clientEvents.push(e);
    }
    if (this.server)
      for (let e = this.server.pollEvent(); e; e = this.server.pollEvent()) {
        this.onEvent?.('server', e);
        this.serverEvents.push(e);
      }
  }

  /** Advances virtual time to the next delivery or timer; false when nothing is left. */
  step(limit = Infinity): boolean {
    this.flush();
    const q = this.queue[0];
    let t = q ? q.at : Infinity;
    const ct = this.client.nextTimeout();
    if (ct !== null && ct < t) t = ct;
    const st = this.server?.nextTimeout() ?? null;
    if (st !== null && st < t) t = st;
    if (t === Infinity || t > limit) return false;
    this.now = Math.max(this.now, t);
    while (this.queue.length > 0 && this.queue[0]!.at <= this.now) {
      const d = this.queue.shift()!;
      if (d.dir === 'up') {
        if (!this.server) this.makeServer(d.data);
        this.server?.receive(d.data, { ...d.from }, this.now);
      } else if (d.to.address === this.clientAddr.address && d.to.port === this.clientAddr.port) {
        this.client.receive(d.data, S_ADDR, this.now);
      } // else: sent to an address the client no longer has (NAT rebinding / migration): lost

    }
    const ct2 = this.client.nextTimeout();
    if (ct2 !== null && ct2 <= this.now) this.client.handleTimeout(this.now);
    const st2 = this.server?.nextTimeout() ?? null;
    if (st2 !== null && st2 <= this.now) this.server!.handleTimeout(this.now);
    this.flush();
    return true;
  }

  /** Runs until `cond` holds or `ms` of virtual time pass; returns cond(). */
  runUntil(cond: () => boolean, ms = 10_000): boolean {
    const end = this.now + ms;
    for (let i = 0; i < 200_000; i++) {
      if (cond()) return true;
      if (!this.step(end)) break;
    }
    return cond();
  }

  runFor(ms: number): void {
    const end = this.now + ms;
    for (let i = 0; i < 200_000; i++) if (!this.step(end)) break;
    this.now = Math.max(this.now, end);
  }

  handshake(ms = 5000): boolean {
    return this.runUntil(() => this.client.handshakeComplete && !!this.server?.handshakeComplete && this.events('client', 'handshakeConfirmed').length > 0, ms);
  }

  events<T extends ConnectionEvent['type']>(side: 'client' | 'server', type: T): Extract<ConnectionEvent, { type: T }>[] {
    return (side === 'client' ? this.clientEvents : this.serverEvents).filter((e) => e.type === type) as Extract<ConnectionEvent, { type: T }>[];
  }

  /** No 'error' events (bugs) on either side. */
  bugs(): unknown[] {
    return [...this.clientEvents, ...this.serverEvents].filter((e) => e.type === 'error').map((e) => (e as { error: unknown }).error);
  }

  /** Opens every packet in the log (in order) and returns [dir, type, frames] rows. */
  packets(from = 0): { dir: Dir; at: number; type: PacketType; pn: number; keyPhase: boolean; frames: number[]; size: number; dgram: number }[] {
    const out: { dir: Dir; at: number; type: PacketType; pn: number; keyPhase: boolean; frames: number[]; size: number; dgram: number }[] = [];
    const insp = new PacketInspector(this.opts.provider, this.keyLog);
    for (let i = 0; i < this.log.length; i++) {
      const s = this.log[i]!;
      const opened = insp.open(s.dir, s.data);
      if (i < from) continue;
      for (const p of opened) {
        out.push({ dir: s.dir, at: s.at, type: p.type, pn: p.pn, keyPhase: p.keyPhase, frames: PacketInspector.frames(p).map((f) => f.type), size: s.data.length, dgram: i });
      }
    }
    return out;
  }
}

/** Reads a stream to the end; returns the bytes and how many chunks had fin set. */
export function readAll(c: Connection, id: number): { data: Uint8Array; fins: number } {
  const parts: Uint8Array[] = [];
  let fins = 0;
  for (let i = 0; i < 100_000; i++) {
    const ch = c.read(id);
    if (!ch) break;
    parts.push(ch.data);
    if (ch.fin) fins++;
    if (ch.fin && ch.data.length === 0) break;
  }
  const len = parts.reduce((a, b) => a + b.length, 0);
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return { data: out, fins };
}
