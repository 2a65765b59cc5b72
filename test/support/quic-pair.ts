/**
 * In-memory QUIC client/server pairs over a simulated link with a virtual clock (DESIGN.md
 * "Testing": quinn-proto's Pair, aioquic's conversations). The client is `Endpoint.connect(...)`
 * (or a bare `Connection.client` with `direct: true`), the server a full `Endpoint` (routing, Retry,
 * Version Negotiation, stateless reset), both sans-I/O: the pair delivers datagrams at their arrival
 * times, fires timers at nextTimeout() and drains events, all on virtual time.
 *
 *   const pair = new QuicPair({ provider, seed: 7, link: { delayMs: 20, loss: 0.1 } });
 *   assert.ok(pair.handshake());
 *   const r = pair.transfer(2_000_000, { streams: 4 });   // server → client, bytes verified
 *   assert.ok(r.ok, r.error);
 *   pair.stats();                                        // datagrams, bytes, virtual ms, lost packets
 *
 * Addresses: the client is 10.0.0.1:50000 (its local address, `clientLocal`), the server
 * 10.0.0.2:4433. `rebind()` changes the address the server sees (NAT rebinding: the client does not
 * know, and datagrams to the old address are lost); `migrate()` calls connection.migrate() and moves
 * the client to a new local port (active migration).
 */
import type { CryptoProvider } from '../../packages/tls-core/src/crypto/provider.js';
import { WebPkiVerifier } from '../../packages/tls-core/src/x509/verifier.js';
import { generateSelfSigned, type GeneratedCertificate } from '../../packages/tls-core/src/x509/selfsigned.js';
import type { TlsClientConfig, TlsServerConfig } from '../../packages/tls-core/src/handshake/config.js';
import type { Address, CloseInfo, ConnectionEvent, QuicConnection, StreamChunk, Transmit } from '../../packages/quic/src/api.js';
import { addressKey } from '../../packages/quic/src/api.js';
import type { ClientConnectionConfig, ConnectionHost, QlogEvent, ServerTransportConfig } from '../../packages/quic/src/config.js';
import { Connection } from '../../packages/quic/src/connection.js';
import { Endpoint, type ConnectionFactory } from '../../packages/quic/src/endpoint.js';
import { Frame, decodeFrame } from '../../packages/quic/src/frames.js';
import { PacketHeader, PacketType, parseHeader } from '../../packages/quic/src/header.js';
import { initialKeys } from '../../packages/quic/src/initial.js';
import { PacketKeys, UnprotectedPacket, type PacketCipher } from '../../packages/quic/src/protection.js';
import { decodeTransportParameters, type TransportParameters } from '../../packages/quic/src/transport-params.js';
import { writeVarintFixed } from '../../packages/quic/src/varint.js';
import { QUIC_V1 } from '../../packages/quic/src/version.js';
import { Rng } from './rng.js';
import { SimNetwork, type LinkConfig } from './simlink.js';

export const CLIENT_ADDR: Address = { address: '10.0.0.1', port: 50000, family: 4 };
export const SERVER_ADDR: Address = { address: '10.0.0.2', port: 4433, family: 4 };
export const ALPN = 'petrel-test';
/** Virtual time starts here (2026-01-01T01:00Z); test certificates are valid from an hour before. */
export const SIM_EPOCH = Date.UTC(2026, 0, 1, 1);

export type ServerOptions = Partial<Omit<ServerTransportConfig, 'tls'>> & {
  tls?: Partial<Omit<TlsServerConfig, 'provider' | 'quic'>>;
  retry?: 'always' | 'auto' | 'never';
};
export type ClientOptions = Partial<Omit<ClientConnectionConfig, 'tls'>> & {
  tls?: Partial<Omit<TlsClientConfig, 'provider' | 'quic'>>;
};

export interface PairOptions {
  provider: CryptoProvider;
  /** Seeds the link model and the transfer patterns (default 1). */
  seed?: number;
  /** Link conditions for both directions, and per-direction overrides (up: client → server). */
  link?: LinkConfig;
  up?: LinkConfig;
  down?: LinkConfig;
  client?: ClientOptions;
  server?: ServerOptions;
  /** Verify the server with a WebPkiVerifier over the test CA (default) or skip verification. */
  verify?: 'webpki' | 'insecure';
  /** Client as a bare Connection.client with a minimal host instead of Endpoint.connect. */
  direct?: boolean;
  /** Called for every datagram a side sends, before the link (recording for fuzzing). */
  tap?: (dir: 'up' | 'down', datagram: Uint8Array, now: number) => void;
  /**
   * Replaces a datagram in flight just before delivery (mutation fuzzing): return the datagram to
   * deliver, or null to drop it.
   */
  intercept?: (dir: 'up' | 'down', datagram: Uint8Array, now: number) => Uint8Array | null;
  /**
   * Start of virtual time (default SIM_EPOCH). The Connection hands its `now` to TLS as the wall
   * clock (certificate validity, ticket ages), so virtual time is epoch milliseconds.
   */
  startTime?: number;
  /**
   * Provider randomBytes from the seed (default true): connection IDs, tokens, TLS randoms, reset
   * tokens repeat for a seed. Key shares and ECDSA nonces stay random (the providers draw them
   * internally), so packet bytes differ between runs, but the link's decisions (per datagram index)
   * and the transfer patterns do not.
   */
  seededRandom?: boolean;
  /** Server token/reset keys (default: from the seed); share them to make a second server accept the first one's tokens. */
  tokenKeys?: { tokenKey: Uint8Array; resetKey: Uint8Array };
  /** Server identity (default: a cached EC P-256 certificate per provider for "localhost"). */
  identity?: TestIdentity;
}

export interface TestIdentity {
  ca: GeneratedCertificate;
  leaf: GeneratedCertificate;
}

const identities = new Map<string, TestIdentity>();

/** A CA and a leaf for "localhost" (cached per provider). */
export function testIdentity(provider: CryptoProvider): TestIdentity {
  let id = identities.get(provider.name);
  if (!id) {
    const ca = generateSelfSigned({ provider, names: [], isCA: true, commonName: 'Petrel Sim CA', nowMs: SIM_EPOCH - 3600_000 });
    const leaf = generateSelfSigned({ provider, names: ['localhost', '10.0.0.2'], issuer: ca, nowMs: SIM_EPOCH - 3600_000 });
    id = { ca, leaf };
    identities.set(provider.name, id);
  }
  return id;
}

/** The provider with randomBytes drawn from a seeded generator (everything else unchanged). */
export function seededProvider(provider: CryptoProvider, seed: number): CryptoProvider {
  const rng = new Rng((seed ^ 0x7a11e5) >>> 0);
  return { ...provider, randomBytes: (n: number) => rng.bytes(n) };
}

/** Deterministic payload of one stream: seeded bytes, different per (seed, stream index). */
export function pattern(seed: number, index: number, length: number): Uint8Array {
  return new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b + 0x1234567) >>> 0).bytes(length);
}

export interface TransferOptions {
  /** Number of streams the bytes are split over (default 1). */
  streams?: number;
  /** 'down': server → client (default); 'up': client → server. */
  direction?: 'down' | 'up';
  /** Bidirectional streams (default false: unidirectional). */
  bidi?: boolean;
  /** Virtual-time budget (default 120 000 ms). */
  maxVirtualMs?: number;
  /** Receiver reads only while this returns true (flow-control tests); default always. */
  readWhile?: () => boolean;
  /** Called after each step while the transfer runs (e.g. migrate or key update mid-transfer). */
  during?: (pair: QuicPair, progress: TransferProgress) => void;
}

export interface TransferProgress {
  written: number;
  received: number;
  total: number;
}

export interface TransferResult {
  ok: boolean;
  error?: string;
  bytes: number;
  virtualMs: number;
  streams: number[];
}

export interface PairStats {
  upDatagrams: number;
  upBytes: number;
  downDatagrams: number;
  downBytes: number;
  virtualMs: number;
  /** Packets declared lost (Connection.stats.lost): their frames were retransmitted. */
  clientLost: number;
  serverLost: number;
}

/** A ConnectionHost for a client Connection without an Endpoint. */
export class SimpleHost implements ConnectionHost {
  readonly cids = new Set<string>();
  constructor(
    private readonly provider: CryptoProvider,
    private readonly cidLength = 8,
  ) {}
  newCid(): Uint8Array {
    return this.provider.randomBytes(this.cidLength);
  }
  resetToken(cid: Uint8Array): Uint8Array {
    return this.provider.hmac('sha256', new Uint8Array(32).fill(7), cid).subarray(0, 16);
  }
  cidChanged(cid: Uint8Array, added: boolean): void {
    const k = Buffer.from(cid).toString('hex');
    if (added) this.cids.add(k);
    else this.cids.delete(k);
  }
}

/**
 * A QuicConnection that forwards to the real one and records every exception thrown out of an
 * entry point (the Endpoint swallows them, the tests must not).
 */
export class WatchedConnection implements QuicConnection {
  constructor(
    readonly inner: QuicConnection,
    private readonly onThrow: (e: unknown, method: string) => void,
  ) {}
  private w<T>(method: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.onThrow(e, method);
      throw e;
    }
  }
  get role(): 'client' | 'server' {
    return this.inner.role;
  }
  get version(): number {
    return this.inner.version;
  }
  get remote(): Address {
    return this.inner.remote;
  }
  get isClosed(): boolean {
    return this.inner.isClosed;
  }
  get handshakeComplete(): boolean {
    return this.inner.handshakeComplete;
  }
  receive(datagram: Uint8Array, remote: Address, now: number): void {
    this.w('receive', () => this.inner.receive(datagram, remote, now));
  }
  pollTransmit(now: number): Transmit | null {
    return this.w('pollTransmit', () => this.inner.pollTransmit(now));
  }
  nextTimeout(): number | null {
    return this.w('nextTimeout', () => this.inner.nextTimeout());
  }
  handleTimeout(now: number): void {
    this.w('handleTimeout', () => this.inner.handleTimeout(now));
  }
  pollEvent(): ConnectionEvent | undefined {
    return this.w('pollEvent', () => this.inner.pollEvent());
  }
  openStream(bidi: boolean): number | null {
    return this.w('openStream', () => this.inner.openStream(bidi));
  }
  write(id: number, data: Uint8Array, fin?: boolean): number {
    return this.w('write', () => this.inner.write(id, data, fin));
  }
  read(id: number, max?: number): StreamChunk | null {
    return this.w('read', () => this.inner.read(id, max));
  }
  resetStream(id: number, code: number): void {
    this.w('resetStream', () => this.inner.resetStream(id, code));
  }
  stopSending(id: number, code: number): void {
    this.w('stopSending', () => this.inner.stopSending(id, code));
  }
  sendDatagram(data: Uint8Array): boolean {
    return this.w('sendDatagram', () => this.inner.sendDatagram(data));
  }
  exportKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array {
    // Not through w(): throwing before the handshake completes is the API, not a bug.
    if (!this.inner.exportKeyingMaterial) throw new Error('no exporter');
    return this.inner.exportKeyingMaterial(label, length, context);
  }
  updateKeys(): boolean {
    return this.w('updateKeys', () => this.inner.updateKeys());
  }
  migrate(now: number): boolean {
    return this.w('migrate', () => this.inner.migrate(now));
  }
  close(code: number, reason: string, now: number): void {
    this.w('close', () => this.inner.close(code, reason, now));
  }
}

export function watchedFactory(onThrow: (e: unknown, method: string) => void): ConnectionFactory {
  return {
    client: (cfg, remote, host, now) => new WatchedConnection(Connection.client(cfg, remote, host, now), onThrow),
    server: (cfg, params, host, now) => new WatchedConnection(Connection.server(cfg, params, host, now), onThrow),
  };
}

/** Max steps per runUntil: a guard against a livelock (a timer that never advances). */
const MAX_STEPS = 2_000_000;

export class QuicPair {
  readonly opts: PairOptions;
  readonly provider: CryptoProvider;
  readonly seed: number;
  readonly net: SimNetwork;
  server: Endpoint;
  readonly clientEndpoint: Endpoint | null;
  readonly client: QuicConnection;
  /** The server-side connection once the server endpoint reported it (the latest one). */
  serverConn: QuicConnection | null = null;
  readonly serverConns: QuicConnection[] = [];
  readonly clientEvents: ConnectionEvent[] = [];
  readonly serverEvents: ConnectionEvent[] = [];
  /** NSS key-log lines of the client (all secrets of both directions). */
  readonly keyLog: string[] = [];
  readonly qlogCounts = { client: new Map<string, number>(), server: new Map<string, number>() };
  /** The client's local address (its socket). */
  clientLocal: Address = { ...CLIENT_ADDR };
  /** The client's address as the server sees it (differs after a NAT rebinding). */
  clientMapped: Address = { ...CLIENT_ADDR };
  /** Exceptions thrown by a connection/endpoint entry point (always a bug). */
  readonly thrown: unknown[] = [];
  private readonly tasks: Array<() => void> = [];
  private readonly factory: ConnectionFactory;
  private nextPort = 50001;
  readonly startTime: number;

  constructor(opts: PairOptions) {
    this.opts = opts;
    this.seed = opts.seed ?? 1;
    this.provider = opts.seededRandom === false ? opts.provider : seededProvider(opts.provider, this.seed);
    this.net = new SimNetwork(this.seed, opts.link ?? {}, opts.up ?? {}, opts.down ?? {});
    this.startTime = opts.startTime ?? SIM_EPOCH;
    this.net.clock.now = this.startTime;
    this.factory = watchedFactory((e, method) => this.thrown.push(Object.assign(e instanceof Error ? e : new Error(String(e)), { method })));
    const krng = new Rng(this.seed ^ 0x5eed);
    this.tokenKeys = opts.tokenKeys ?? { tokenKey: krng.bytes(16), resetKey: krng.bytes(32) };
    this.server = this.makeServer();
    const cfg = this.clientConfig();
    const now = this.now;
    if (opts.direct) {
      this.clientEndpoint = null;
      this.client = this.factory.client(cfg, { ...SERVER_ADDR }, new SimpleHost(this.provider, cfg.cidLength ?? 8), now);
    } else {
      this.clientEndpoint = new Endpoint({ provider: this.provider, factory: this.factory, onError: (e) => this.thrown.push(e) });
      this.client = this.clientEndpoint.connect({ ...SERVER_ADDR }, cfg, now);
    }
  }

  get now(): number {
    return this.net.clock.now;
  }

  /** Virtual ms since the pair started. */
  get elapsed(): number {
    return this.now - this.startTime;
  }

  private qlog(side: 'client' | 'server'): (e: QlogEvent) => void {
    const m = this.qlogCounts[side];
    return (e) => m.set(e.name, (m.get(e.name) ?? 0) + 1);
  }

  serverConfig(): ServerTransportConfig & { retry?: 'always' | 'auto' | 'never' } {
    const id = this.opts.identity ?? testIdentity(this.provider);
    const s = this.opts.server ?? {};
    return {
      qlog: this.qlog('server'),
      ...s,
      provider: this.provider,
      tls: { identity: { chain: [id.leaf.certDer], key: id.leaf.keyDer }, alpn: [ALPN], ...(s.tls ?? {}) },
    };
  }

  clientConfig(extra: ClientOptions = {}): ClientConnectionConfig {
    const id = this.opts.identity ?? testIdentity(this.provider);
    const c = { ...(this.opts.client ?? {}), ...extra };
    const verify: Partial<TlsClientConfig> =
      this.opts.verify === 'insecure' ? { insecureSkipVerify: true } : { verifier: new WebPkiVerifier({ roots: [id.ca.certDer] }) };
    return {
      qlog: this.qlog('client'),
      ...c,
      provider: this.provider,
      tls: { serverName: 'localhost', alpn: [ALPN], keyLog: (line: string) => this.keyLog.push(line), ...verify, ...(c.tls ?? {}) },
    };
  }

  /** Token and stateless-reset keys of the server, from the seed: a restarted server keeps them. */
  readonly tokenKeys: { tokenKey: Uint8Array; resetKey: Uint8Array };

  private makeServer(): Endpoint {
    return new Endpoint({
      provider: this.provider,
      server: this.serverConfig(),
      tokenKeys: this.tokenKeys,
      factory: this.factory,
      onError: (e) => this.thrown.push(e),
    });
  }

  /** Replaces the server endpoint by a fresh one (a restarted server: it forgot every connection). */
  restartServer(endpoint?: Endpoint): void {
    this.server = endpoint ?? this.makeServer();
  }

  /** Adds work run after every step (an application driving streams). */
  addTask(fn: () => void): void {
    this.tasks.push(fn);
  }

  private guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.thrown.push(e);
      return undefined;
    }
  }

  private clientPollTransmit(now: number): Transmit | null {
    if (this.clientEndpoint) return this.clientEndpoint.pollTransmit(now);
    return this.client.pollTransmit(now);
  }

  private clientReceive(d: Uint8Array, from: Address, now: number): void {
    if (this.clientEndpoint) this.clientEndpoint.receive(d, from, now);
    else this.client.receive(d, from, now);
  }

  private clientTimeout(): number | null {
    return this.clientEndpoint ? this.clientEndpoint.nextTimeout() : this.client.nextTimeout();
  }

  private clientHandleTimeout(now: number): void {
    if (this.clientEndpoint) this.clientEndpoint.handleTimeout(now);
    else this.client.handleTimeout(now);
  }

  /** Everything both sides want to send now goes onto the links. Bounded per call. */
  private flush(): void {
    const now = this.now;
    for (let i = 0; i < 10_000; i++) {
      const t = this.guard(() => this.clientPollTransmit(now));
      if (!t) break;
      this.opts.tap?.('up', t.datagram, now);
      this.net.up.send(t.datagram, { ...this.clientLocal }, t.remote, now);
    }
    for (let i = 0; i < 10_000; i++) {
      const t = this.guard(() => this.server.pollTransmit(now));
      if (!t) break;
      this.opts.tap?.('down', t.datagram, now);
      this.net.down.send(t.datagram, { ...SERVER_ADDR }, t.remote, now);
    }
  }

  /** Delivers datagrams that are due. */
  private deliver(): number {
    const now = this.now;
    let n = 0;
    for (let d = this.net.up.popDue(now); d; d = this.net.up.popDue(now)) {
      n++;
      // The NAT maps the client's socket to the address the server sees.
      const from = addressKey(d.from) === addressKey(this.clientLocal) ? { ...this.clientMapped } : d.from;
      const data = this.opts.intercept ? this.opts.intercept('up', d.datagram, now) : d.datagram;
      if (data) this.guard(() => this.server.receive(data, from, now));
    }
    for (let d = this.net.down.popDue(now); d; d = this.net.down.popDue(now)) {
      n++;
      // Datagrams to a mapping or socket that no longer exists are lost.
      if (addressKey(d.to) !== addressKey(this.clientMapped)) continue;
      const data = this.opts.intercept ? this.opts.intercept('down', d.datagram, now) : d.datagram;
      if (data) this.guard(() => this.clientReceive(data, d.from, now));
    }
    return n;
  }

  private fireTimers(): void {
    const now = this.now;
    const ct = this.guard(() => this.clientTimeout());
    if (ct !== undefined && ct !== null && ct <= now) this.guard(() => this.clientHandleTimeout(now));
    const st = this.guard(() => this.server.nextTimeout());
    if (st !== undefined && st !== null && st <= now) this.guard(() => this.server.handleTimeout(now));
  }

  private drainEvents(): void {
    for (let i = 0; i < 100_000; i++) {
      const e = this.guard(() => this.server.pollEvent());
      if (!e) break;
      if (e.type === 'connection') {
        this.serverConn = e.connection;
        this.serverConns.push(e.connection);
      }
    }
    if (this.clientEndpoint) {
      for (let i = 0; i < 1000; i++) if (!this.guard(() => this.clientEndpoint!.pollEvent())) break;
    }
    for (let i = 0; i < 100_000; i++) {
      const e = this.guard(() => this.client.pollEvent());
      if (!e) break;
      this.clientEvents.push(e);
    }
    const sc = this.serverConn;
    if (sc) {
      for (let i = 0; i < 100_000; i++) {
        const e = this.guard(() => sc.pollEvent());
        if (!e) break;
        this.serverEvents.push(e);
      }
    }
  }

  private readonly wakeups: number[] = [];

  /** Makes the loop step at virtual time `t` even if nothing else happens then (time-based test logic). */
  wakeAt(t: number): void {
    this.wakeups.push(t);
    this.wakeups.sort((a, b) => a - b);
  }

  /** Earliest of: next arrival, client timer, server timer, a requested wake-up. */
  private nextEventTime(): number | null {
    while (this.wakeups.length > 0 && this.wakeups[0]! <= this.now) this.wakeups.shift();
    let t = this.net.nextArrival();
    if (this.wakeups.length > 0 && (t === null || this.wakeups[0]! < t)) t = this.wakeups[0]!;
    const ct = this.guard(() => this.clientTimeout()) ?? null;
    const st = this.guard(() => this.server.nextTimeout()) ?? null;
    for (const x of [ct, st]) if (x !== null && (t === null || x < t)) t = x;
    return t;
  }

  /**
   * One step: send what is pending, deliver due datagrams, fire due timers, drain events, run tasks,
   * send again; then advance the clock to the next event. Returns false when nothing is left to
   * happen (no datagram in flight, no timer).
   */
  step(): boolean {
    this.process();
    return this.advance();
  }

  /** Everything due at the current time: send, deliver, timers, events, tasks, send again. */
  private process(): void {
    this.flush();
    this.deliver();
    this.fireTimers();
    this.drainEvents();
    for (const t of this.tasks) t();
    this.flush();
    this.drainEvents();
  }

  /** Moves the clock to the next event; false if there is none. */
  private advance(): boolean {
    const next = this.nextEventTime();
    if (next === null) return false;
    // A timer in the past that did not move: advance by at least a microsecond-ish step.
    this.net.clock.advance(next > this.now ? next : this.now + 0.001);
    return true;
  }

  /**
   * Steps until `pred()` holds or `maxVirtualMs` of virtual time pass. Returns whether pred held.
   * The predicate is checked right after each batch of work, before the clock moves on, so `now`
   * is the time the condition became true.
   */
  runUntil(pred: () => boolean, maxVirtualMs = 30_000): boolean {
    const deadline = this.now + maxVirtualMs;
    // Never jump past the deadline: the caller may act then (e.g. check a stall, resume reading).
    this.wakeAt(deadline);
    try {
      for (let i = 0; i < MAX_STEPS; i++) {
        if (pred()) return true;
        this.process();
        if (pred()) return true;
        if (this.now >= deadline || !this.advance()) return false;
      }
    } finally {
      const k = this.wakeups.indexOf(deadline);
      if (k >= 0) this.wakeups.splice(k, 1);
    }
    throw new Error(`runUntil: ${MAX_STEPS} steps without reaching the condition (livelock?)`);
  }

  /** Runs for `ms` of virtual time. */
  runFor(ms: number): void {
    const end = this.now + ms;
    this.runUntil(() => this.now >= end, ms + 1);
    // Jump to the end even if nothing happened.
    this.net.clock.advance(end);
  }

  /** Handshake complete on both sides and confirmed on the client (HANDSHAKE_DONE received). */
  handshake(maxVirtualMs = 20_000): boolean {
    return this.runUntil(
      () => this.client.handshakeComplete && !!this.serverConn?.handshakeComplete && this.clientEvents.some((e) => e.type === 'handshakeConfirmed'),
      maxVirtualMs,
    );
  }

  /**
   * Sends `bytes` (split over `streams` streams) from one side to the other and checks every byte
   * (a seeded pattern per stream) and the FIN. Returns a result; `error` says what went wrong.
   */
  transfer(bytes: number, o: TransferOptions = {}): TransferResult {
    const nStreams = o.streams ?? 1;
    const up = o.direction === 'up';
    const sender = up ? this.client : this.serverConn;
    const receiver = up ? this.serverConn : this.client;
    const start = this.now;
    if (!sender || !receiver) return { ok: false, error: 'no server connection', bytes: 0, virtualMs: 0, streams: [] };
    const tag = this.seed + this.transfers++ * 1000;
    const sizes = Array.from({ length: nStreams }, (_, i) => Math.floor(bytes / nStreams) + (i < bytes % nStreams ? 1 : 0));
    const payloads = sizes.map((n, i) => pattern(tag, i, n));
    const ids: number[] = [];
    const written: number[] = [];
    const finSent: boolean[] = [];
    const recvd = new Map<number, { index: number; offset: number; fin: boolean }>();
    let error: string | undefined;
    let totalWritten = 0;
    let totalReceived = 0;
    const progress = (): TransferProgress => ({ written: totalWritten, received: totalReceived, total: bytes });
    const pump = (): void => {
      // Open streams as the peer's limit allows.
      while (ids.length < nStreams) {
        const id = sender.openStream(!!o.bidi);
        if (id === null) break;
        ids.push(id);
        written.push(0);
        recvd.set(id, { index: ids.length - 1, offset: 0, fin: false });
      }
      for (let i = 0; i < ids.length; i++) {
        const p = payloads[i]!;
        for (let k = 0; k < 64 && written[i]! < p.length; k++) {
          const chunk = p.subarray(written[i]!, Math.min(p.length, written[i]! + 65536));
          const last = written[i]! + chunk.length === p.length;
          const n = sender.write(ids[i]!, chunk, last);
          written[i]! += n;
          totalWritten += n;
          if (n < chunk.length) break;
        }
        if (p.length === 0 && !finSent[i]) {
          // Empty stream: FIN only.
          sender.write(ids[i]!, new Uint8Array(0), true);
          finSent[i] = true;
        }
      }
      if (o.readWhile && !o.readWhile()) return;
      for (const [id, r] of recvd) {
        for (let k = 0; k < 10_000 && !r.fin; k++) {
          const c = receiver.read(id);
          if (!c) break;
          const p = payloads[r.index]!;
          const end = r.offset + c.data.length;
          if (end > p.length) error ??= `stream ${id}: received ${end} bytes, only ${p.length} were sent`;
          else if (Buffer.compare(Buffer.from(c.data.buffer, c.data.byteOffset, c.data.length), Buffer.from(p.buffer, p.byteOffset + r.offset, c.data.length)) !== 0) {
            let at = 0;
            while (at < c.data.length && c.data[at] === p[r.offset + at]) at++;
            error ??= `stream ${id}: byte ${r.offset + at} differs`;
          }
          r.offset = end;
          totalReceived += c.data.length;
          if (c.fin) {
            r.fin = true;
            if (r.offset !== p.length) error ??= `stream ${id}: FIN at ${r.offset}, expected ${p.length}`;
          }
        }
      }
    };
    const done = (): boolean => error !== undefined || (ids.length === nStreams && [...recvd.values()].every((r) => r.fin));
    const task = (): void => {
      if (done()) return;
      pump();
      o.during?.(this, progress());
    };
    this.tasks.push(task);
    try {
      pump();
      this.runUntil(() => done() || receiver.isClosed || sender.isClosed, o.maxVirtualMs ?? 120_000);
    } finally {
      this.tasks.splice(this.tasks.indexOf(task), 1);
    }
    if (!error && !done()) {
      const closed = receiver.isClosed || sender.isClosed ? ' (connection closed)' : '';
      error = `incomplete after ${(this.now - start).toFixed(0)} virtual ms: ${totalReceived}/${bytes} bytes received, ${totalWritten} written, ${ids.length}/${nStreams} streams${closed}`;
    }
    return { ok: !error, error, bytes: totalReceived, virtualMs: this.now - start, streams: ids };
  }

  private transfers = 0;

  /** NAT rebinding: the server sees the client at a new port; replies to the old one are lost. */
  rebind(port?: number): Address {
    this.clientMapped = { ...this.clientMapped, port: port ?? this.nextPort++ };
    return this.clientMapped;
  }

  /** Active migration: connection.migrate(now), then the client's socket moves to a new port. */
  migrate(): boolean {
    const ok = this.client.migrate(this.now);
    if (ok) {
      this.clientLocal = { ...this.clientLocal, port: this.nextPort++ };
      this.clientMapped = { ...this.clientLocal };
    }
    return ok;
  }

  /** Events of a type seen so far on one side. */
  events<T extends ConnectionEvent['type']>(side: 'client' | 'server', type: T): Extract<ConnectionEvent, { type: T }>[] {
    const list = side === 'client' ? this.clientEvents : this.serverEvents;
    return list.filter((e): e is Extract<ConnectionEvent, { type: T }> => e.type === type);
  }

  /** The real Connection behind one side (for its stats and internals), or null. */
  inner(side: 'client' | 'server'): Connection | null {
    const c = side === 'client' ? this.client : this.serverConn;
    const inner = c instanceof WatchedConnection ? c.inner : c;
    return inner instanceof Connection ? inner : null;
  }

  connStats(side: 'client' | 'server'): Connection['stats'] | null {
    return this.inner(side)?.stats ?? null;
  }

  stats(): PairStats {
    return {
      upDatagrams: this.net.up.stats.offered,
      upBytes: this.net.up.stats.offeredBytes,
      downDatagrams: this.net.down.stats.offered,
      downBytes: this.net.down.stats.offeredBytes,
      virtualMs: this.elapsed,
      clientLost: this.connStats('client')?.lost ?? 0,
      serverLost: this.connStats('server')?.lost ?? 0,
    };
  }

  /** Fails loudly if an entry point threw or a connection reported an internal error. */
  assertNoBugs(): void {
    if (this.thrown.length > 0) throw new Error(`an entry point threw: ${String((this.thrown[0] as Error)?.stack ?? this.thrown[0])}`);
    const err = [...this.clientEvents, ...this.serverEvents].find((e) => e.type === 'error');
    if (err && err.type === 'error') throw new Error(`internal error event: ${String((err.error as Error)?.stack ?? err.error)}`);
  }
}

// ---- packet inspection (decrypt / re-protect captured datagrams with the key log) -------------

export interface OpenedPacket {
  type: PacketType;
  /** Long-header version (0 for short headers). */
  version: number;
  pn: number;
  keyPhase: boolean;
  /** Plaintext frames (a copy). */
  payload: Uint8Array;
  /** Where the packet sits in the datagram. */
  start: number;
  end: number;
  /** Unprotected header bytes (first byte and packet number in clear), a copy. */
  header: Uint8Array;
  /** Offset of the Length field inside `header` and its size (long headers; 0/0 for short). */
  lengthOffset: number;
  lengthSize: number;
  pnLength: number;
  keys: PacketKeys;
}

const CIPHERS_32: PacketCipher[] = [
  { aead: 'aes-128-gcm', hash: 'sha256' },
  { aead: 'chacha20-poly1305', hash: 'sha256' },
];
const CIPHERS_48: PacketCipher[] = [{ aead: 'aes-256-gcm', hash: 'sha384' }];

/**
 * Opens the packets of captured datagrams with the secrets of the client's key log (both
 * directions' secrets are in it) and re-protects modified payloads, so that mutations reach the
 * frame parser (fuzzing) and tests can look at the frames on the wire (PATH_CHALLENGE after a
 * migration). Tracks 1-RTT key updates by trying the neighbouring key generations.
 */
export class PacketInspector {
  private initialDcid: Uint8Array | null = null;
  private readonly largest = new Map<string, number>();
  private readonly gens = new Map<string, { keys: PacketKeys[]; current: number }>();
  private readonly fixed = new Map<string, PacketKeys>();
  private readonly header = new PacketHeader();
  private readonly out = new UnprotectedPacket();

  constructor(
    readonly provider: CryptoProvider,
    readonly keyLog: string[],
    readonly cidLength = 8,
  ) {}

  private secret(label: string): Uint8Array | null {
    for (let i = this.keyLog.length - 1; i >= 0; i--) {
      const parts = this.keyLog[i]!.split(' ');
      if (parts[0] === label && parts[2]) return new Uint8Array(Buffer.from(parts[2], 'hex'));
    }
    return null;
  }

  private keysFromSecret(tag: string, secret: Uint8Array, version: number): PacketKeys[] {
    const ciphers = secret.length === 48 ? CIPHERS_48 : CIPHERS_32;
    const out: PacketKeys[] = [];
    for (const c of ciphers) {
      const k = `${tag}/${c.aead}/${Buffer.from(secret).toString('hex')}/${version}`;
      let keys = this.fixed.get(k);
      if (!keys) {
        keys = PacketKeys.fromSecret(this.provider, c, version, secret);
        this.fixed.set(k, keys);
      }
      out.push(keys);
    }
    return out;
  }

  /** Candidate keys for a packet of `type` in direction `dir`. */
  private candidates(dir: 'up' | 'down', type: PacketType, version: number, keyPhase: boolean): PacketKeys[] {
    const client = dir === 'up';
    if (type === PacketType.Initial) {
      if (!this.initialDcid) return [];
      const k = initialKeys(this.provider, version, this.initialDcid, false);
      return [client ? k.write : k.read];
    }
    if (type === PacketType.Handshake) {
      const s = this.secret(client ? 'CLIENT_HANDSHAKE_TRAFFIC_SECRET' : 'SERVER_HANDSHAKE_TRAFFIC_SECRET');
      return s ? this.keysFromSecret('hs', s, version) : [];
    }
    if (type === PacketType.ZeroRtt) {
      const s = this.secret('CLIENT_EARLY_TRAFFIC_SECRET');
      return s ? this.keysFromSecret('0rtt', s, version) : [];
    }
    if (type === PacketType.OneRtt) {
      const s = this.secret(client ? 'CLIENT_TRAFFIC_SECRET_0' : 'SERVER_TRAFFIC_SECRET_0');
      if (!s) return [];
      const out: PacketKeys[] = [];
      for (const base of this.keysFromSecret('1rtt', s, version)) {
        const key = `${dir}/${base.cipher.aead}/${Buffer.from(s).toString('hex')}`;
        let g = this.gens.get(key);
        if (!g) {
          g = { keys: [base], current: 0 };
          this.gens.set(key, g);
        }
        for (const n of [g.current, g.current + 1, g.current - 1]) {
          if (n < 0 || (n % 2 === 1) !== keyPhase) continue;
          while (g.keys.length <= n) g.keys.push(g.keys[g.keys.length - 1]!.next());
          out.push(g.keys[n]!);
        }
      }
      return out;
    }
    return [];
  }

  private noteGeneration(dir: 'up' | 'down', keys: PacketKeys): void {
    for (const g of this.gens.values()) {
      const i = g.keys.indexOf(keys);
      if (i > g.current) g.current = i;
    }
    void dir;
  }

  /** The version of the connection's 1-RTT packets (short headers carry none): the last long-header version seen. */
  private lastVersion = QUIC_V1;

  /** Opens every packet of the datagram that the known secrets can open. Never throws. */
  open(dir: 'up' | 'down', datagram: Uint8Array): OpenedPacket[] {
    const res: OpenedPacket[] = [];
    const h = this.header;
    let off = 0;
    for (let guard = 0; guard < 16 && off < datagram.length; guard++) {
      if (!parseHeader(datagram, off, datagram.length, this.cidLength, h)) break;
      const start = off;
      const end = h.packetEnd;
      off = end;
      // Initial keys come from the client's first DCID, or after a Retry from the Retry's SCID.
      if (h.type === PacketType.Retry && dir === 'down') this.initialDcid = datagram.slice(h.scidOffset, h.scidOffset + h.scidLength);
      if (h.type === PacketType.Retry || h.type === PacketType.VersionNegotiation || h.type === PacketType.UnknownVersion) break;
      const version = h.long ? h.version : this.lastVersion;
      if (h.long) this.lastVersion = h.version;
      if (h.type === PacketType.Initial && dir === 'up' && !this.initialDcid) this.initialDcid = datagram.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
      let lengthOffset = 0;
      let lengthSize = 0;
      if (h.long) {
        lengthOffset = h.type === PacketType.Initial ? h.tokenOffset + h.tokenLength : h.scidOffset + h.scidLength;
        lengthSize = h.pnOffset - lengthOffset;
        lengthOffset -= start;
      }
      const keyPhaseGuess = !h.long; // refined after header protection removal
      const space = `${dir}/${h.type === PacketType.ZeroRtt ? PacketType.OneRtt : h.type}`;
      const largest = this.largest.get(space) ?? -1;
      let opened: OpenedPacket | null = null;
      for (const phase of h.long ? [false] : [false, true]) {
        for (const keys of this.candidates(dir, h.type, version, phase)) {
          const buf = datagram.slice(start, end);
          const o = this.out;
          try {
            if (!keys.removeHeaderProtection(buf, 0, h.pnOffset - start, buf.length, largest, o)) continue;
            if (o.keyPhase !== phase && !h.long) continue;
            if (!keys.decrypt(buf, o)) continue;
          } catch {
            continue;
          }
          keys.openFailures = 0;
          opened = {
            type: h.type,
            version: h.long ? h.version : 0,
            pn: o.pn,
            keyPhase: o.keyPhase,
            payload: buf.slice(o.payloadOffset, o.payloadEnd),
            start,
            end,
            header: buf.slice(0, o.payloadOffset),
            lengthOffset,
            lengthSize,
            pnLength: o.pnLength,
            keys,
          };
          break;
        }
        if (opened) break;
      }
      void keyPhaseGuess;
      if (opened) {
        if (opened.pn > largest) this.largest.set(space, opened.pn);
        if (h.type === PacketType.OneRtt) this.noteGeneration(dir, opened.keys);
        res.push(opened);
      }
    }
    return res;
  }

  /** The frames of an opened packet, decoded (a failed decode ends the list). */
  static frames(p: OpenedPacket): Frame[] {
    const out: Frame[] = [];
    let o = 0;
    for (let guard = 0; guard < 4096 && o < p.payload.length; guard++) {
      const f = new Frame();
      try {
        o = decodeFrame(p.payload, o, p.payload.length, p.type, f);
      } catch {
        break;
      }
      out.push(f);
    }
    return out;
  }

  /**
   * Re-protects packet `p` of `datagram` with `payload` as its plaintext (same keys, same packet
   * number) and returns the new datagram (the other packets unchanged). The payload is padded to
   * the header-protection sample size and cut to what the Length field can carry.
   */
  reseal(datagram: Uint8Array, p: OpenedPacket, payload: Uint8Array): Uint8Array {
    const maxPayload = p.lengthSize === 1 ? 63 - p.pnLength - 16 : p.lengthSize === 2 ? 16383 - p.pnLength - 16 : 1 << 20;
    let body = payload.length > maxPayload ? payload.subarray(0, Math.max(0, maxPayload)) : payload;
    const minBody = Math.max(0, 4 - p.pnLength);
    if (body.length < minBody) {
      const padded = new Uint8Array(minBody);
      padded.set(body);
      body = padded;
    }
    const pkt = new Uint8Array(p.header.length + body.length + 16);
    pkt.set(p.header);
    pkt.set(body, p.header.length);
    if (p.lengthSize > 0) writeVarintFixed(pkt, p.lengthOffset, p.pnLength + body.length + 16, p.lengthSize);
    const pnOffset = p.header.length - p.pnLength;
    p.keys.protect(pkt, 0, pnOffset, p.pnLength, p.header.length + body.length, p.pn);
    const out = new Uint8Array(p.start + pkt.length + (datagram.length - p.end));
    out.set(datagram.subarray(0, p.start));
    out.set(pkt, p.start);
    out.set(datagram.subarray(p.end), p.start + pkt.length);
    return out;
  }
}

/** Decodes the server's transport parameters from the client's handshakeComplete info. */
export function serverTransportParameters(pair: QuicPair): TransportParameters | null {
  const hc = pair.events('client', 'handshakeComplete')[0];
  const raw = hc?.info.peerTransportParameters;
  return raw ? decodeTransportParameters(raw, 'server') : null;
}

/** The 'closed' event of one side, if any. */
export function closedInfo(pair: QuicPair, side: 'client' | 'server'): CloseInfo | null {
  const e = pair.events(side, 'closed')[0];
  return e ? e.info : null;
}

/**
 * A test for a known bug in code we do not own: registered only with SIM_KNOWN_BUGS=1, otherwise
 * announced with a "SKIPPED:" line (scripts/test.mjs prints those). `register` is uvu's `test`.
 */
export function knownBug(register: (name: string, fn: () => void) => void, name: string, why: string, fn: () => void): void {
  if (process.env.SIM_KNOWN_BUGS === '1') register(name, fn);
  else console.log(`SKIPPED: ${name}: ${why} (SIM_KNOWN_BUGS=1 runs it)`);
}

/**
 * Plaintext payloads (frames) of the Initial packets of a real handshake, per direction: seeds for
 * the connection fuzz targets.
 */
export function captureInitialPayloads(provider: CryptoProvider, seed = 1): { up: Uint8Array[]; down: Uint8Array[]; clientDcid: Uint8Array; clientScid: Uint8Array } {
  const res = { up: [] as Uint8Array[], down: [] as Uint8Array[], clientDcid: new Uint8Array(0), clientScid: new Uint8Array(0) };
  const h = new PacketHeader();
  let inspector: PacketInspector | null = null;
  const pair = new QuicPair({
    provider,
    seed,
    link: { delayMs: 5 },
    tap: (dir, d) => {
      if (dir === 'up' && res.clientScid.length === 0 && parseHeader(d, 0, d.length, 8, h) && h.type === PacketType.Initial) {
        res.clientDcid = d.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
        res.clientScid = d.slice(h.scidOffset, h.scidOffset + h.scidLength);
      }
      for (const p of inspector?.open(dir, d) ?? []) if (p.type === PacketType.Initial) res[dir].push(p.payload);
    },
  });
  inspector = new PacketInspector(provider, pair.keyLog);
  if (!pair.handshake()) throw new Error('captureInitialPayloads: the handshake did not complete');
  return res;
}
