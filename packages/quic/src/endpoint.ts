/**
 * The QUIC Endpoint (RFC 9000 §5.2, §6, §8.1, §10.3), sans-I/O: one UDP socket's worth of
 * connections. It routes each incoming datagram to its Connection by Destination Connection ID,
 * accepts new server connections (address validation with Retry / NEW_TOKEN tokens, limits),
 * answers unknown versions with Version Negotiation and unknown short-header packets with
 * Stateless Resets, and multiplexes the connections' outgoing datagrams.
 *
 *   const ep = new Endpoint({ provider, server: { provider, tls } });   // retry 'auto' by default
 *   ep.receive(datagram, remote, now);              // never throws on peer input
 *   for (let t; (t = ep.pollTransmit(now)); ) socket.send(t.datagram, t.remote);
 *   for (let e; (e = ep.pollEvent()); ) if (e.type === 'connection') app(e.connection);
 *   arm(ep.nextTimeout()); ... ep.handleTimeout(now);
 *
 * Routing (RFC 9000 §5.2): a table from CID bytes to connection, kept current by the
 * ConnectionHost.cidChanged callback each Connection gets (our CIDs for short headers all have
 * `cidLength` bytes; long headers carry their DCID length). While a server connection is in its
 * handshake, the client's initial Destination CID (chosen by the client, §7.2) also routes to it,
 * so retransmitted Initials and 0-RTT packets find it; that route stays until the connection is
 * removed, so that a late duplicate of the client's first Initial cannot start a second
 * connection (it reaches the existing one, which discards it). The table uses a keyed 32-bit hash of the CID bytes and byte comparison, so a lookup
 * allocates nothing.
 *
 * Decisions documented here:
 * - A client Initial is accepted only in a datagram of ≥ 1200 bytes (§14.1), with a DCID of ≥ 8
 *   bytes (§7.2) unless it carries our Retry token, and only if its first packet decrypts with the
 *   Initial keys (cheap check that keeps garbage from creating connection state).
 * - Invalid Retry token (a token whose kind byte says Retry but that fails validation): we answer
 *   with an Initial CONNECTION_CLOSE carrying INVALID_TOKEN (§8.1.2 "SHOULD immediately close").
 *   An invalid NEW_TOKEN token (or garbage) is treated as no token (§8.1.3).
 * - Limits (maxConnections, maxHandshakes): refused with an Initial CONNECTION_CLOSE carrying
 *   CONNECTION_REFUSED (§5.2.2 allows that or a silent drop; the close tells the client at once).
 *   These closes, Retry and Version Negotiation are stateless and never larger than the trigger.
 * - Stateless Resets (§10.3) are rate-limited by a token bucket (resetsPerSecond, default 100) and
 *   always smaller than the packet that triggered them (§10.3.3, so two endpoints cannot loop).
 *   Before sending one, a packet whose DCID is unknown but whose sender address is a connection's
 *   peer is offered to that connection (it may be a Stateless Reset for us, §10.3.1, or a packet
 *   to a CID we retired).
 * - Address validation: Retry is 'auto' by default: no extra round trip while at most
 *   `retryThreshold` (64) handshakes are in flight, a stateless Retry for every unvalidated new
 *   client beyond (a flood of spoofed Initials then creates no state). 'never' restores the old
 *   behaviour (maxHandshakes alone bounds a flood), 'always' validates every client.
 * - Half-open connections: a server connection whose handshake has not completed and that has
 *   heard nothing from its client for `handshakeTimeout` (default 10 s, independent of the idle
 *   timeout; a slow handshake under heavy loss that still receives datagrams goes on) is closed by the endpoint
 *   through its public `close()` (it drains and is removed like any closed connection) and stops
 *   counting as a handshake in flight at once.
 * - The endpoint's own outgoing queue is bounded (maxQueued datagrams, default 256): beyond it,
 *   responses are dropped, so a flood cannot grow memory.
 */
import type { CryptoProvider } from '@petrel/tls-core';
import { AntiReplay, ConfigError, TicketKeyring } from '@petrel/tls-core';
import type { Address, QuicConnection, Transmit } from './api.js';
import { addressKey } from './api.js';
import type { ClientConnectionConfig, ConnectionHost, QlogEvent, ServerConnectionParams, ServerTransportConfig } from './config.js';
import { Connection } from './connection.js';
import { TransportError } from './errors.js';
import { Frame, FrameType, encodeFrame } from './frames.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader } from './header.js';
import { initialKeys } from './initial.js';
import { sealPacket, statelessResetSize, writeStatelessReset } from './packet.js';
import { UnprotectedPacket } from './protection.js';
import { buildRetry } from './retry.js';
import { TokenAuthority, TokenKind, type TokenOptions, type ValidRetryToken } from './token.js';
import { SUPPORTED_VERSIONS, buildVersionNegotiation, greaseVersion, isSupportedVersion } from './version.js';

/** Builds Connections; the default is connection.ts's `Connection`. Tests inject fakes. */
export interface ConnectionFactory {
  client(cfg: ClientConnectionConfig, remote: Address, host: ConnectionHost, now: number): QuicConnection;
  server(cfg: ServerTransportConfig, params: ServerConnectionParams, host: ConnectionHost, now: number): QuicConnection;
}

export interface EndpointServerConfig extends ServerTransportConfig {
  /**
   * Send a Retry (address validation, RFC 9000 §8.1.2) before accepting: 'always'; 'auto' (the
   * default): only when more than `retryThreshold` handshakes are in flight, so normal load pays no
   * extra round trip and a flood of spoofed Initials creates no state; or 'never'.
   */
  retry?: 'always' | 'auto' | 'never';
  /** Handshakes in flight above which 'auto' sends Retry (default 64). */
  retryThreshold?: number;
  /**
   * Connections at once (default 10 000); beyond, new ones are refused (CONNECTION_REFUSED).
   * Memory per connection (measured in test/load, node provider): ~60-100 KiB of heap for a
   * half-open or idle connection, ~140 KiB of RSS with one small HTTP/3 request in flight; on top of
   * that, what a busy connection buffers: its receive window (connectionWindow 1 MiB, auto-tuned up
   * to maxConnectionWindow 24 MiB, only while the application keeps up), up to sendBufferSize
   * (1 MiB) per stream the application writes to, out-of-order segments up to
   * maxReassemblySegments (a few MB at worst). 10 000 idle connections ≈ 1 GB of heap: size this to
   * the memory you have (and maxHandshakes, handshakeTimeout and retry for floods).
   */
  maxConnections?: number;
  /**
   * Handshake timeout for server connections in ms (default 10 000; 0 disables): a connection whose
   * handshake has not completed and that received no datagram for this long is closed
   * (`close(0, 'handshake timeout')`), so a half-open connection (spoofed or abandoned Initial)
   * costs memory for about this long (the connection's own limit is maxIdleTimeout, 30 s by default).
   */
  handshakeTimeout?: number;
  /** Handshakes in flight at once (default 1000); beyond, new ones are refused. */
  maxHandshakes?: number;
  /** Retry / NEW_TOKEN token lifetimes. */
  tokens?: TokenOptions;
  /** A per-connection qlog sink (overrides `qlog` for that connection); the driver uses it for QLOGDIR. */
  qlogFor?: (params: ServerConnectionParams) => ((event: QlogEvent) => void) | undefined;
}

export interface EndpointOptions {
  provider: CryptoProvider;
  /** Present: this endpoint accepts connections. */
  server?: EndpointServerConfig;
  /** Length of the connection IDs we issue (4..20, default 8). */
  cidLength?: number;
  /** Shared token and reset keys (several endpoints behind one address); random by default. */
  tokenKeys?: { tokenKey: Uint8Array; resetKey: Uint8Array };
  /** Stateless Resets per second at most (default 100; 0 disables them). */
  resetsPerSecond?: number;
  /** Bound on datagrams queued by the endpoint itself (VN, Retry, resets, refusals). Default 256. */
  maxQueued?: number;
  /** Connection factory (default: connection.ts). */
  factory?: ConnectionFactory;
  /** Called with unexpected internal errors (bugs) that were contained (the datagram was dropped). */
  onError?: (error: unknown) => void;
}

export type EndpointEvent = { type: 'connection'; connection: QuicConnection };

/** Counters for tests, stats and the interop runner. */
export interface EndpointStats {
  received: number;
  dropped: number;
  accepted: number;
  refused: number;
  retriesSent: number;
  invalidTokens: number;
  versionNegotiationsSent: number;
  statelessResetsSent: number;
}

interface Entry {
  conn: QuicConnection | null;
  /** Route slots this connection owns (its CIDs and, during the handshake, the client's initial DCID). */
  slots: Set<Slot>;
  /** Client initial DCID route (server connections in the handshake). */
  initialSlot: Slot | null;
  handshaking: boolean;
  server: boolean;
  /** Server connections in the handshake: when the endpoint closes them (handshakeTimeout). */
  deadline: number;
  /** The peer address this entry is indexed under in `byPeer` (port 0 / '': not indexed). */
  peerAddress: string;
  peerPort: number;
}

interface Slot {
  hash: number;
  cid: Uint8Array;
  entry: Entry;
}

const MIN_INITIAL_DATAGRAM = 1200;
/** Client DCIDs answered with Retry that 'auto' remembers (answers with Retry again). */
const RETRIED_MEMORY = 4096;
/** Connections with one peer address that an unknown short-header packet is offered to (§10.3.1). */
const MAX_PEER_OFFERS = 64;
/** Default EndpointServerConfig.handshakeTimeout (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const MIN_CLIENT_DCID = 8;

/** The real Connection (connection.ts). */
export const defaultConnectionFactory: ConnectionFactory = {
  client: (cfg, remote, host, now) => Connection.client(cfg, remote, host, now),
  server: (cfg, params, host, now) => Connection.server(cfg, params, host, now),
};

export class Endpoint {
  readonly provider: CryptoProvider;
  readonly cidLength: number;
  readonly tokens: TokenAuthority;
  readonly stats: EndpointStats = {
    received: 0,
    dropped: 0,
    accepted: 0,
    refused: 0,
    retriesSent: 0,
    invalidTokens: 0,
    versionNegotiationsSent: 0,
    statelessResetsSent: 0,
  };
  private readonly server: EndpointServerConfig | null;
  private readonly serverVersions: readonly number[];
  private readonly factory: ConnectionFactory | null;
  private readonly routes = new Map<number, Slot | Slot[]>();
  private readonly entries: Entry[] = [];
  /**
   * Entries by their connection's current peer address (addressKey), for datagrams that route by
   * no CID (a Stateless Reset, §10.3.1). Kept current after every input and timer of a connection
   * (that is where a peer address changes: migration, preferred address).
   */
  private readonly byPeer = new Map<string, Entry[]>();
  private rr = 0;
  private readonly queue: Transmit[] = [];
  private readonly maxQueued: number;
  private readonly events: EndpointEvent[] = [];
  private readonly hashKey: number;
  private readonly header = new PacketHeader();
  private readonly unprotected = new UnprotectedPacket();
  private scratch = new Uint8Array(1500);
  private resetBudget: number;
  private resetBudgetAt = -Infinity;
  private readonly resetsPerSecond: number;
  private handshakes = 0;
  private readonly handshakeTimeout: number;
  private readonly onError: ((error: unknown) => void) | undefined;

  constructor(opts: EndpointOptions) {
    if (!opts || !opts.provider) throw new ConfigError('Endpoint: options.provider is required (nodeProvider or nobleProvider)');
    this.provider = opts.provider;
    const cl = opts.cidLength ?? opts.server?.cidLength ?? 8;
    if (!Number.isInteger(cl) || cl < 4 || cl > 20) throw new ConfigError(`Endpoint: cidLength must be an integer 4..20 (got ${cl})`);
    if (opts.server?.cidLength !== undefined && opts.server.cidLength !== cl)
      throw new ConfigError(`Endpoint: server.cidLength (${opts.server.cidLength}) differs from cidLength (${cl}); set one`);
    this.cidLength = cl;
    this.server = opts.server ? withSharedTlsState(opts.server) : null;
    const s = this.server;
    if (s) {
      if (s.retry !== undefined && s.retry !== 'always' && s.retry !== 'auto' && s.retry !== 'never')
        throw new ConfigError(`Endpoint: server.retry must be 'always', 'auto' or 'never' (got ${String(s.retry)})`);
      for (const k of ['maxConnections', 'maxHandshakes', 'retryThreshold', 'handshakeTimeout'] as const) {
        const v = s[k];
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new ConfigError(`Endpoint: server.${k} must be a non-negative integer (got ${v})`);
      }
      const vs = s.versions ?? SUPPORTED_VERSIONS;
      if (vs.length === 0 || vs.some((v) => !isSupportedVersion(v)))
        throw new ConfigError(`Endpoint: server.versions must list QUIC_V1 (1) and/or QUIC_V2 (0x6b3343cf)`);
      this.serverVersions = vs;
    } else this.serverVersions = SUPPORTED_VERSIONS;
    this.handshakeTimeout = s?.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    this.tokens = new TokenAuthority(this.provider, s?.tokens ?? {}, opts.tokenKeys);
    this.factory = opts.factory ?? null;
    this.onError = opts.onError;
    this.maxQueued = opts.maxQueued ?? 256;
    this.resetsPerSecond = opts.resetsPerSecond ?? 100;
    this.resetBudget = this.resetsPerSecond;
    const r = this.provider.randomBytes(4);
    this.hashKey = ((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0;
  }

  /** Live connections (closed ones are removed as they are noticed). */
  get connectionCount(): number {
    return this.entries.length;
  }

  /** Server connections whose handshake is not complete. */
  get handshakesInFlight(): number {
    return this.handshakes;
  }

  connections(): QuicConnection[] {
    const out: QuicConnection[] = [];
    for (const e of this.entries) if (e.conn) out.push(e.conn);
    return out;
  }

  /** Starts a client connection to `remote`. Throws ConfigError on a bad configuration. */
  connect(remote: Address, cfg: ClientConnectionConfig, now: number): QuicConnection {
    if (cfg.cidLength !== undefined && cfg.cidLength !== this.cidLength)
      throw new ConfigError(`connect: cidLength ${cfg.cidLength} differs from the endpoint's (${this.cidLength}); leave it unset`);
    const entry = this.newEntry(false);
    try {
      entry.conn = this.getFactory().client({ ...cfg, cidLength: this.cidLength }, remote, this.makeHost(entry), now);
    } catch (e) {
      this.unrouteAll(entry);
      throw e;
    }
    this.entries.push(entry);
    this.indexPeer(entry);
    return entry.conn;
  }

  /**
   * Feeds one UDP datagram from `remote`. Never throws on peer input. Returns the connection the
   * datagram went to (a new one included), or null (answered statelessly or dropped).
   */
  receive(datagram: Uint8Array, remote: Address, now: number): QuicConnection | null {
    this.stats.received++;
    try {
      return this.route(datagram, remote, now);
    } catch (e) {
      // Only a bug can land here (the connection catches its own); drop the datagram.
      this.stats.dropped++;
      this.onError?.(e);
      return null;
    }
  }

  pollTransmit(now: number): Transmit | null {
    const q = this.queue.shift();
    if (q) return q;
    const n = this.entries.length;
    for (let i = 0; i < n && this.entries.length > 0; i++) {
      if (this.rr >= this.entries.length) this.rr = 0;
      const entry = this.entries[this.rr]!;
      const conn = entry.conn!;
      let t: Transmit | null = null;
      try {
        t = conn.pollTransmit(now);
      } catch {
        t = null;
      }
      if (conn.isClosed) {
        this.remove(entry);
        if (t) return t;
        continue;
      }
      this.rr++;
      if (t) return t;
    }
    return null;
  }

  /** Earliest connection timer (the endpoint's own queue is drained by pollTransmit after each input). */
  nextTimeout(): number | null {
    let best: number | null = null;
    for (const e of this.entries) {
      const t = e.conn!.nextTimeout();
      if (t !== null && (best === null || t < best)) best = t;
      if (e.handshaking && e.deadline < Infinity && (best === null || e.deadline < best)) best = e.deadline;
    }
    return best;
  }

  handleTimeout(now: number): void {
    for (const e of [...this.entries]) {
      const c = e.conn!;
      if (e.handshaking && now >= e.deadline) this.expireHandshake(e, now);
      const t = c.nextTimeout();
      if (t !== null && t <= now) {
        try {
          c.handleTimeout(now);
        } catch {
          /* a Connection never throws; a bug is its to report */
        }
      }
      this.checkEntry(e);
    }
  }

  pollEvent(): EndpointEvent | undefined {
    return this.events.shift();
  }

  /** Closes every connection with an application close (the driver then drains and stops). */
  close(code: number, reason: string, now: number): void {
    for (const e of this.entries) e.conn!.close(code, reason, now);
  }

  // -------------------------------------------------------------------------------------------
  // Receive path

  private route(d: Uint8Array, remote: Address, now: number): QuicConnection | null {
    const h = this.header;
    if (!parseHeader(d, 0, d.length, this.cidLength, h, true)) {
      this.stats.dropped++;
      return null;
    }
    const slot = this.lookup(d, h.dcidOffset, h.dcidLength);
    if (slot) {
      const entry = slot.entry;
      const conn = entry.conn!;
      // A handshake that still hears from its client is slow, not half-open (heavy loss, PTO backoff).
      if (entry.handshaking && entry.deadline < Infinity) entry.deadline = now + this.handshakeTimeout;
      conn.receive(d, remote, now);
      this.checkEntry(entry);
      return conn;
    }
    if (!h.long) return this.unknownShort(d, remote, now);
    if (h.type === PacketType.VersionNegotiation || !this.server) {
      // A VN packet for no connection (ours route by our SCID above), or a client endpoint: drop.
      this.stats.dropped++;
      return null;
    }
    if (h.type === PacketType.UnknownVersion || !this.serverVersions.includes(h.version)) {
      this.versionNegotiation(d, h, remote);
      return null;
    }
    if (h.type !== PacketType.Initial || d.length < MIN_INITIAL_DATAGRAM) {
      // 0-RTT/Handshake for an unknown connection, or a too-small Initial (§14.1): drop.
      this.stats.dropped++;
      return null;
    }
    return this.accept(d, remote, now);
  }

  private unknownShort(d: Uint8Array, remote: Address, now: number): QuicConnection | null {
    // Possibly a Stateless Reset for one of our connections, or a packet to a retired CID (§10.3.1):
    // offer it to the connections with this peer (found through the peer index, whatever the number
    // of connections; at most MAX_PEER_OFFERS of them, as many peers may share one address only
    // through our own client endpoints).
    const list = this.byPeer.get(addressKey(remote));
    let offered: QuicConnection | null = null;
    if (list) {
      // A copy: an offer may move a connection to another address or close it (both edit the list).
      const cands = list.slice(0, MAX_PEER_OFFERS);
      for (const e of cands) {
        const c = e.conn!;
        if (c.isClosed || c.remote.port !== remote.port || c.remote.address !== remote.address) continue;
        offered = c;
        c.receive(d, remote, now);
        this.checkEntry(e);
      }
    }
    if (!offered) this.statelessReset(d, remote, now);
    return offered;
  }

  private statelessReset(d: Uint8Array, remote: Address, now: number): void {
    if (this.resetsPerSecond <= 0) return this.drop();
    // Token bucket: refill at resetsPerSecond, capacity resetsPerSecond.
    if (this.resetBudgetAt === -Infinity) this.resetBudgetAt = now;
    const elapsed = now - this.resetBudgetAt;
    if (elapsed > 0) {
      this.resetBudget = Math.min(this.resetsPerSecond, this.resetBudget + (elapsed * this.resetsPerSecond) / 1000);
      this.resetBudgetAt = now;
    }
    if (this.resetBudget < 1) return this.drop();
    const size = statelessResetSize(d.length);
    if (size === 0) return this.drop(); // too small to answer without risking a loop (§10.3.3)
    const token = this.tokens.resetToken(d.subarray(1, 1 + this.cidLength));
    const out = writeStatelessReset(new Uint8Array(size), token, this.provider.randomBytes(size - 16));
    if (this.enqueue(out, remote)) {
      this.resetBudget -= 1;
      this.stats.statelessResetsSent++;
    }
  }

  private versionNegotiation(d: Uint8Array, h: PacketHeader, remote: Address): void {
    // §6.1/§5.2.2: answer only datagrams large enough to be a client's first Initial (anti-amplification).
    if (d.length < MIN_INITIAL_DATAGRAM) return this.drop();
    const dcid = d.subarray(h.dcidOffset, h.dcidOffset + h.dcidLength);
    const scid = d.subarray(h.scidOffset, h.scidOffset + h.scidLength);
    const r = this.provider.randomBytes(5);
    const grease = greaseVersion(((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0);
    // RFC 9000 §6.1: the list includes a greased version (§15) to keep clients honest.
    const vn = buildVersionNegotiation(dcid, scid, [...this.serverVersions, grease], r[4]! & 0x7f);
    if (this.enqueue(vn, remote)) this.stats.versionNegotiationsSent++;
  }

  private accept(d: Uint8Array, remote: Address, now: number): QuicConnection | null {
    const s = this.server!;
    const h = this.header;
    const version = h.version;
    const dcid = d.slice(h.dcidOffset, h.dcidOffset + h.dcidLength);
    const scid = d.slice(h.scidOffset, h.scidOffset + h.scidLength);
    let retryToken: ValidRetryToken | null = null;
    let validated = false;
    // A NEW_TOKEN token that validates this address; recorded as used once it opens a connection.
    let newToken: Uint8Array | null = null;
    if (h.tokenLength > 0) {
      const token = d.subarray(h.tokenOffset, h.tokenOffset + h.tokenLength);
      const key = addressKey(remote);
      // A NEW_TOKEN token already used (§8.1.4: no replay) is invalid here: as no token at all.
      const v = this.tokens.validate(token, key, remote.address, now, version);
      if (v === 'new-token') {
        validated = true;
        newToken = token;
      }
      else if (v && v.retryScid.length === dcid.length && bytesEq(v.retryScid, dcid)) {
        retryToken = v;
        validated = true;
      } else if (token[0] === TokenKind.retry) {
        // §8.1.2: the client will not accept another Retry; close at once with INVALID_TOKEN.
        this.stats.invalidTokens++;
        if (!this.decrypts(d, version, dcid)) { this.drop(); return null; }
        this.closeInitial(version, dcid, scid, TransportError.INVALID_TOKEN, 'invalid Retry token', remote);
        return null;
      }
    }
    if (!retryToken && dcid.length < MIN_CLIENT_DCID) { this.drop(); return null; } // §7.2
    const maxConns = s.maxConnections ?? 10_000;
    const maxHs = s.maxHandshakes ?? 1000;
    if (this.entries.length >= maxConns || this.handshakes >= maxHs) {
      if (!this.decrypts(d, version, dcid)) { this.drop(); return null; }
      this.stats.refused++;
      this.closeInitial(version, dcid, scid, TransportError.CONNECTION_REFUSED, 'server busy', remote);
      return null;
    }
    const policy = s.retry ?? 'auto';
    // 'auto': a client we sent a Retry gets one again for a retransmission of its first Initial
    // (same DCID) even if the load dropped meanwhile: otherwise that stray copy would start a
    // second, orphaned connection next to the one the client makes with the token.
    if (!validated && (policy === 'always' || (policy === 'auto' && (this.handshakes > (s.retryThreshold ?? 64) || this.wasRetried(dcid))))) {
      this.sendRetry(version, dcid, scid, remote, now);
      return null;
    }
    if (!this.decrypts(d, version, dcid)) { this.drop(); return null; }
    const localCid = this.newCid();
    const params: ServerConnectionParams = {
      remote: { ...remote },
      version,
      initialDcid: dcid,
      clientScid: scid,
      localCid,
      originalDcid: retryToken ? retryToken.originalDcid : dcid,
      retryScid: retryToken ? retryToken.retryScid : null,
      addressValidated: validated,
    };
    const entry = this.newEntry(true);
    const host = this.makeHost(entry);
    let conn: QuicConnection;
    try {
      const cfg: ServerTransportConfig = { ...s, cidLength: this.cidLength };
      const qlog = s.qlogFor?.(params);
      if (qlog) cfg.qlog = qlog;
      conn = this.getFactory().server(cfg, params, host, now);
    } catch (e) {
      // Misconfiguration surfaces at the first connection; do not take the endpoint down on input.
      this.unrouteAll(entry);
      this.stats.dropped++;
      this.onError?.(e);
      return null;
    }
    entry.conn = conn;
    if (newToken) this.tokens.useNewToken(newToken, now);
    // The connection may or may not have announced its first CID through cidChanged; make sure.
    if (!this.hasSlot(entry, localCid)) host.cidChanged(localCid, true);
    entry.initialSlot = this.addSlot(entry, dcid);
    entry.handshaking = true;
    if (this.handshakeTimeout > 0) entry.deadline = now + this.handshakeTimeout;
    this.handshakes++;
    this.entries.push(entry);
    this.indexPeer(entry);
    this.stats.accepted++;
    this.events.push({ type: 'connection', connection: conn });
    conn.receive(d, remote, now);
    this.checkEntry(entry);
    return conn;
  }

  /** Does the first packet of `d` (a client Initial) decrypt with the Initial keys of `dcid`? Works on a copy. */
  private decrypts(d: Uint8Array, version: number, dcid: Uint8Array): boolean {
    const h = this.header;
    const end = h.packetEnd;
    if (this.scratch.length < end) this.scratch = new Uint8Array(end);
    const buf = this.scratch;
    buf.set(d.subarray(0, end), 0);
    try {
      const keys = initialKeys(this.provider, version, dcid, true).read;
      return keys.unprotect(buf, 0, h.pnOffset, end, -1, this.unprotected);
    } catch {
      return false;
    }
  }

  private sendRetry(version: number, odcid: Uint8Array, clientScid: Uint8Array, remote: Address, now: number): void {
    const retryScid = this.newCid();
    const token = this.tokens.retryToken(addressKey(remote), odcid, retryScid, now, version);
    const bits = this.provider.randomBytes(1)[0]! & 0x0f;
    const pkt = buildRetry(this.provider, version, clientScid, retryScid, token, odcid, bits);
    if (this.enqueue(pkt, remote)) this.stats.retriesSent++;
    this.noteRetried(odcid);
  }

  /** Recently retried client DCIDs (keyed hashes; a collision costs at most an extra Retry). */
  private readonly retriedRing = new Uint32Array(RETRIED_MEMORY);
  private readonly retriedSet = new Set<number>();
  private retriedPos = 0;
  private retriedFill = 0;

  private noteRetried(dcid: Uint8Array): void {
    const h = this.hash(dcid, 0, dcid.length);
    if (this.retriedSet.has(h)) return;
    if (this.retriedFill === RETRIED_MEMORY) this.retriedSet.delete(this.retriedRing[this.retriedPos]!);
    else this.retriedFill++;
    this.retriedRing[this.retriedPos] = h;
    this.retriedPos = (this.retriedPos + 1) % RETRIED_MEMORY;
    this.retriedSet.add(h);
  }

  private wasRetried(dcid: Uint8Array): boolean {
    return this.retriedFill > 0 && this.retriedSet.has(this.hash(dcid, 0, dcid.length));
  }

  /** An Initial packet with CONNECTION_CLOSE (transport `code`), protected with the client's Initial keys (§10.2.3). */
  private closeInitial(version: number, clientDcid: Uint8Array, clientScid: Uint8Array, code: number, reason: string, remote: Address): void {
    const keys = initialKeys(this.provider, version, clientDcid, true).write;
    const ourScid = this.provider.randomBytes(this.cidLength);
    const reasonBytes = new TextEncoder().encode(reason);
    const buf = new Uint8Array(64 + clientScid.length + ourScid.length + reasonBytes.length + 32);
    const pnOffset = writeLongHeader(buf, 0, PacketType.Initial, version, clientScid, ourScid, null, 0, 1, 2);
    const f = new Frame();
    f.type = FrameType.CONNECTION_CLOSE;
    f.errorCode = code;
    f.frameType = 0;
    f.buf = reasonBytes;
    f.dataOffset = 0;
    f.dataLength = reasonBytes.length;
    const payloadEnd = encodeFrame(buf, pnOffset + 1, f);
    const end = sealPacket(keys, buf, 0, pnOffset, 1, 2, payloadEnd, 0);
    this.enqueue(buf.slice(0, end), remote);
  }

  private enqueue(datagram: Uint8Array, remote: Address): boolean {
    if (this.queue.length >= this.maxQueued) {
      this.stats.dropped++;
      return false;
    }
    this.queue.push({ datagram, remote: { ...remote } });
    return true;
  }

  private drop(): void {
    this.stats.dropped++;
  }

  // -------------------------------------------------------------------------------------------
  // Connections and routes

  private getFactory(): ConnectionFactory {
    return this.factory ?? defaultConnectionFactory;
  }

  private newEntry(server: boolean): Entry {
    return { conn: null, slots: new Set(), initialSlot: null, handshaking: false, server, deadline: Infinity, peerAddress: '', peerPort: 0 };
  }

  /** (Re)indexes a live entry under its connection's current peer address; two compares when unchanged. */
  private indexPeer(entry: Entry): void {
    const c = entry.conn;
    if (!c || c.isClosed) return;
    const r = c.remote;
    if (r.port === entry.peerPort && r.address === entry.peerAddress) return;
    this.unindexPeer(entry);
    const key = addressKey(r);
    const list = this.byPeer.get(key);
    if (list) list.push(entry);
    else this.byPeer.set(key, [entry]);
    entry.peerAddress = r.address;
    entry.peerPort = r.port;
  }

  private unindexPeer(entry: Entry): void {
    if (entry.peerPort === 0 && entry.peerAddress === '') return;
    const key = addressKey({ address: entry.peerAddress, port: entry.peerPort, family: 4 });
    const list = this.byPeer.get(key);
    if (list) {
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byPeer.delete(key);
    }
    entry.peerAddress = '';
    entry.peerPort = 0;
  }

  private makeHost(entry: Entry): ConnectionHost {
    const host: ConnectionHost = {
      newCid: () => this.newCid(),
      resetToken: (cid) => this.tokens.resetToken(cid),
      cidChanged: (cid, added) => {
        if (added) {
          if (!this.hasSlot(entry, cid)) this.addSlot(entry, cid.slice());
        } else {
          for (const s of entry.slots) if (bytesEq(s.cid, cid)) this.removeSlot(s);
        }
      },
    };
    if (this.server) host.newToken = (ip, now, version) => this.tokens.newToken(ip, now, version);
    return host;
  }

  /** A fresh random CID that routes nowhere yet. */
  newCid(): Uint8Array {
    for (let i = 0; ; i++) {
      const cid = this.provider.randomBytes(this.cidLength);
      if (i >= 3 || !this.lookup(cid, 0, cid.length)) return cid;
    }
  }

  private hash(buf: Uint8Array, off: number, len: number): number {
    // Keyed FNV-1a variant over the CID bytes (the key makes collisions unpredictable to peers).
    let x = (0x811c9dc5 ^ this.hashKey) >>> 0;
    for (let i = 0; i < len; i++) {
      x ^= buf[off + i]!;
      x = Math.imul(x, 0x01000193);
    }
    x ^= len;
    return Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0;
  }

  private lookup(buf: Uint8Array, off: number, len: number): Slot | null {
    const v = this.routes.get(this.hash(buf, off, len));
    if (v === undefined) return null;
    if (!Array.isArray(v)) return slotMatches(v, buf, off, len) ? v : null;
    for (const s of v) if (slotMatches(s, buf, off, len)) return s;
    return null;
  }

  private hasSlot(entry: Entry, cid: Uint8Array): boolean {
    const s = this.lookup(cid, 0, cid.length);
    return s !== null && s.entry === entry;
  }

  private addSlot(entry: Entry, cid: Uint8Array): Slot {
    const existing = this.lookup(cid, 0, cid.length);
    if (existing) this.removeSlot(existing); // a CID routes to one connection only (newest wins)
    const slot: Slot = { hash: this.hash(cid, 0, cid.length), cid, entry };
    const v = this.routes.get(slot.hash);
    if (v === undefined) this.routes.set(slot.hash, slot);
    else if (Array.isArray(v)) v.push(slot);
    else this.routes.set(slot.hash, [v, slot]);
    entry.slots.add(slot);
    return slot;
  }

  private removeSlot(slot: Slot): void {
    slot.entry.slots.delete(slot);
    if (slot.entry.initialSlot === slot) slot.entry.initialSlot = null;
    const v = this.routes.get(slot.hash);
    if (v === slot) this.routes.delete(slot.hash);
    else if (Array.isArray(v)) {
      const i = v.indexOf(slot);
      if (i >= 0) v.splice(i, 1);
      if (v.length === 1) this.routes.set(slot.hash, v[0]!);
      else if (v.length === 0) this.routes.delete(slot.hash);
    }
  }

  private unrouteAll(entry: Entry): void {
    for (const s of [...entry.slots]) this.removeSlot(s);
  }

  /**
   * handshakeTimeout passed: close the half-open connection through its public API (it sends
   * CONNECTION_CLOSE within its amplification budget, drains, and is removed once closed, so drivers
   * see the usual 'closed' event); it no longer counts as a handshake in flight.
   */
  private expireHandshake(entry: Entry, now: number): void {
    entry.deadline = Infinity;
    entry.handshaking = false;
    this.handshakes--;
    try {
      entry.conn!.close(0, 'handshake timeout', now);
    } catch (e) {
      this.onError?.(e);
    }
  }

  /**
   * After any input to a connection: end its handshake bookkeeping, remove it once closed, follow
   * a change of its peer address (the peer index).
   */
  private checkEntry(entry: Entry): void {
    const c = entry.conn;
    if (!c) return;
    if (entry.handshaking && (c.handshakeComplete || c.isClosed)) {
      entry.handshaking = false;
      this.handshakes--;
    }
    if (c.isClosed) this.remove(entry);
    else this.indexPeer(entry);
  }

  private remove(entry: Entry): void {
    const i = this.entries.indexOf(entry);
    if (i < 0) return;
    this.entries.splice(i, 1);
    this.unindexPeer(entry);
    if (i < this.rr) this.rr--;
    if (entry.handshaking) {
      entry.handshaking = false;
      this.handshakes--;
    }
    this.unrouteAll(entry);
  }
}

/**
 * Session-ticket keys and the 0-RTT anti-replay store must be shared by every connection of the
 * endpoint; tls-core makes one per TlsServerConfig object, and each Connection builds its own
 * config object, so without this a ticket would never be accepted by a later connection.
 */
function withSharedTlsState(s: EndpointServerConfig): EndpointServerConfig {
  const tls = s.tls ?? {};
  if (tls.tickets?.keys && tls.antiReplay) return s;
  return {
    ...s,
    tls: {
      ...tls,
      tickets: { ...(tls.tickets ?? {}), keys: tls.tickets?.keys ?? new TicketKeyring(s.provider) },
      antiReplay: tls.antiReplay ?? new AntiReplay(),
    },
  };
}

function slotMatches(s: Slot, buf: Uint8Array, off: number, len: number): boolean {
  const c = s.cid;
  if (c.length !== len) return false;
  for (let i = 0; i < len; i++) if (c[i] !== buf[off + i]) return false;
  return true;
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
