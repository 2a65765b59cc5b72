/**
 * QUIC over node:dgram: `listen()` and `connect()`.
 *
 *   import { listen, connect } from '@petrel/quic/node/index';
 *   const server = await listen({ port: 4433, host: '127.0.0.1', cert: pemText, key: pemText, alpn: ['hq-interop'] },
 *     async (conn) => { for await (const s of conn.incomingBidirectionalStreams) serve(s); });
 *   const conn = await connect('https://127.0.0.1:4433', { alpn: ['hq-interop'], ca: caPem });
 *   const { readable, writable } = await conn.openBidirectionalStream();
 *   await conn.close(0, 'bye'); await server.close();
 *
 * Logging: SSLKEYLOGFILE (env, or `keyLogFile`) appends NSS key log lines; QLOGDIR (env, or
 * `qlogDir`) writes one qlog JSON-SEQ file per connection (qlog.ts). ECN is not available on
 * node:dgram (see driver.ts).
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import dns from 'node:dns';
import type { CryptoProvider, HandshakeInfo, SessionTicket, TlsClientConfig, TlsServerConfig } from '@petrel/tls-core';
import { ConfigError, WebPkiVerifier, getProvider, loadPemChain, loadPemKey } from '@petrel/tls-core';
import type { Address, CloseInfo } from '../api.js';
import type { ClientConnectionConfig, TransportConfig } from '../config.js';
import { Endpoint, type ConnectionFactory, type EndpointServerConfig } from '../endpoint.js';
import { NodeQuicConnection, describeClose, reportListenerError } from './connection.js';
import { UdpDriver, bindSocket, now, type DriverOptions } from './driver.js';
import { QlogWriter } from './qlog.js';

export { NodeQuicConnection, QuicStreamError, toNodeDuplex, describeClose } from './connection.js';
export type { QuicBidirectionalStream, QuicSendStream, QuicReceiveStream, AsyncReadableStream } from './connection.js';
export { QlogWriter } from './qlog.js';

type Pem = string | Uint8Array;

interface CommonOptions extends TransportConfig, DriverOptions {
  /** Crypto provider: 'node' (default), 'noble' or an object. */
  provider?: 'node' | 'noble' | CryptoProvider;
  /** Append key log lines here (default: $SSLKEYLOGFILE). */
  keyLogFile?: string;
  /** Write qlog files here (default: $QLOGDIR). */
  qlogDir?: string;
  /** Connection ID length (default 8). */
  cidLength?: number;
  /** Connection factory (tests). */
  factory?: ConnectionFactory;
}

export interface ListenOptions extends CommonOptions, Omit<EndpointServerConfig, 'provider' | 'tls' | keyof TransportConfig> {
  port?: number;
  /** Bind address (default '::' when it supports IPv4 too, else '0.0.0.0'); '127.0.0.1' / '::1' for loopback. */
  host?: string;
  /** Certificate chain (PEM, leaf first) and private key (PEM), unless `tls.identity`/`tls.resolve` is given. */
  cert?: Pem;
  key?: Pem;
  alpn?: string[];
  /** Further TLS server settings (tickets, maxEarlyData, cipherSuites, ...). */
  tls?: Partial<Omit<TlsServerConfig, 'provider' | 'quic'>>;
}

export interface ConnectOptions extends CommonOptions {
  alpn?: string[];
  /** Server name for SNI and certificate checks (default: the URL's host). */
  serverName?: string;
  /** Trust anchors (PEM) instead of Node's root store. */
  ca?: Pem;
  /** Testing only: accept any server certificate. */
  insecureSkipVerify?: boolean;
  /** Further TLS client settings (cipherSuites, groups, ...). */
  tls?: Partial<Omit<TlsClientConfig, 'provider' | 'quic'>>;
  session?: SessionTicket;
  earlyData?: boolean;
  token?: Uint8Array;
  version?: number;
  versions?: number[];
  /** Local bind address (default: the wildcard of the server's family) and port (default ephemeral). */
  localAddress?: string;
  localPort?: number;
  /** Give up if the handshake has not completed after this many ms (default 10 000). */
  handshakeTimeoutMs?: number;
  /** Gives up the connection attempt when aborted (rejects with the signal's reason). */
  signal?: AbortSignal;
  /**
   * Resolve as soon as the connection exists instead of after the handshake: with `session` +
   * `earlyData`, streams opened at once carry their data in 0-RTT. `ready` tells when the handshake is done.
   */
  early?: boolean;
}

function providerOf(p: CommonOptions['provider']): CryptoProvider {
  if (p === undefined) return getProvider('node');
  return typeof p === 'string' ? getProvider(p) : p;
}

const text = (x: Pem): string => (typeof x === 'string' ? x : new TextDecoder().decode(x));

function keyLogger(file: string | undefined): ((line: string) => void) | undefined {
  const f = file ?? process.env.SSLKEYLOGFILE;
  if (!f) return undefined;
  return (line) => {
    try {
      fs.appendFileSync(f, `${line}\n`);
    } catch {
      /* logging must not break the connection */
    }
  };
}

/**
 * Every TransportConfig field, checked by the compiler (`satisfies`): a field added to
 * TransportConfig and not listed here is a type error, so options are never silently dropped.
 */
const TRANSPORT_KEYS = {
  maxIdleTimeout: true, connectionWindow: true, maxConnectionWindow: true, streamWindow: true, maxStreamWindow: true,
  maxStreamsBidi: true, maxStreamsUni: true, sendBufferSize: true, maxUdpPayloadSize: true, maxAckDelay: true,
  ackDelayExponent: true, activeConnectionIdLimit: true, maxDatagramFrameSize: true, congestionControl: true, initialRtt: true,
  maxCryptoBuffer: true, disableActiveMigration: true, maxAckRanges: true, maxReassemblySegments: true, keepAliveInterval: true,
  qlog: true,
} as const satisfies Record<keyof TransportConfig, true>;

/**
 * The EndpointServerConfig fields ListenOptions takes over as they are (the same check): a server
 * option added to EndpointServerConfig reaches the Endpoint without editing listen().
 * (cidLength goes to the Endpoint itself, provider and tls are built by listen().)
 */
const SERVER_KEYS = {
  retry: true, retryThreshold: true, maxConnections: true, handshakeTimeout: true, maxHandshakes: true, tokens: true,
  versions: true, qlogFor: true,
} as const satisfies Record<Exclude<keyof ListenOptions & keyof EndpointServerConfig, 'provider' | 'tls' | 'cidLength' | keyof TransportConfig>, true>;

function pick<T extends object>(o: object, keys: Record<string, true>): T {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(keys)) {
    const v = (o as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

function transportOf(o: TransportConfig): TransportConfig {
  return pick<TransportConfig>(o, TRANSPORT_KEYS);
}

// ---------------------------------------------------------------------------------------------
// Server

export class QuicServer extends EventEmitter {
  private closing: Promise<void> | null = null;
  private readonly qlogs = new Set<QlogWriter>();

  constructor(
    readonly driver: UdpDriver,
    readonly endpoint: Endpoint,
  ) {
    super();
  }

  address(): Address {
    const a = this.driver.socket.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 6 : 4 };
  }

  /** Live connections. */
  get connections(): NodeQuicConnection[] {
    return [...this.driver.wrappers.values()];
  }

  /** @internal */
  trackQlog(w: QlogWriter): void {
    this.qlogs.add(w);
  }

  /**
   * Closes every connection (application code `code`), waits for them to finish (at most
   * `graceMs`, default 2 s), then closes the socket.
   */
  close(code = 0, reason = 'server closing', graceMs = 2000): Promise<void> {
    this.closing ??= (async () => {
      const deadline = now() + graceMs;
      const conns = this.connections;
      for (const c of conns) void c.close(code, reason);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(conns.map((c) => c.closed)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      // `closed` resolves when a connection enters the closing state; its CONNECTION_CLOSE may
      // still wait behind the driver's send bursts. Send them all before closing the socket.
      await this.driver.drain(deadline);
      this.driver.destroy();
      for (const q of this.qlogs) q.close();
      this.emit('close');
    })();
    return this.closing;
  }
}

/** Starts a QUIC server; resolves once the socket is bound. `onConnection` is also the 'connection' event. */
export async function listen(opts: ListenOptions, onConnection?: (c: NodeQuicConnection) => void): Promise<QuicServer> {
  const provider = providerOf(opts.provider);
  const tls: Omit<TlsServerConfig, 'provider' | 'quic'> = { ...(opts.tls ?? {}) };
  if (opts.alpn) tls.alpn = opts.alpn;
  if (!tls.alpn || tls.alpn.length === 0) throw new ConfigError('listen: alpn is required for QUIC (e.g. ["h3"] or ["hq-interop"])');
  if (!tls.identity && !tls.resolve) {
    if (!opts.cert || !opts.key) throw new ConfigError('listen: pass cert and key (PEM text), or tls.identity / tls.resolve');
    tls.identity = { chain: loadPemChain(text(opts.cert)), key: loadPemKey(text(opts.key)) };
  }
  const kl = keyLogger(opts.keyLogFile);
  if (kl && !tls.keyLog) tls.keyLog = kl;
  const qlogDir = opts.qlogDir ?? process.env.QLOGDIR;
  let server: QuicServer | null = null;
  const scfg: EndpointServerConfig = {
    ...transportOf(opts),
    ...pick<Partial<EndpointServerConfig>>(opts, SERVER_KEYS),
    provider,
    tls,
  };
  // An explicit qlogFor wins over QLOGDIR / qlogDir.
  if (qlogDir && !opts.qlogFor) {
    const t0 = now();
    scfg.qlogFor = (params) => {
      const w = new QlogWriter(qlogDir, 'server', params.originalDcid, t0);
      server?.trackQlog(w);
      return w.sink;
    };
  }
  const endpoint = new Endpoint({ provider, server: scfg, cidLength: opts.cidLength, factory: opts.factory });
  let socket;
  if (opts.host !== undefined) socket = await bindSocket(opts.host, opts.port ?? 0, opts);
  else {
    // Dual-stack '::' where IPv6 exists, else IPv4 only.
    try {
      socket = await bindSocket('::', opts.port ?? 0, opts);
    } catch {
      socket = await bindSocket('0.0.0.0', opts.port ?? 0, opts);
    }
  }
  const driver = new UdpDriver(endpoint, socket);
  server = new QuicServer(driver, endpoint);
  const srv = server;
  driver.onSocketError = (e) => {
    if (srv.listenerCount('error') > 0) srv.emit('error', e);
  };
  // Application code runs here inside the driver's receive path: whatever it throws goes to the
  // server's 'error' listeners (or a process warning), never into the driver or the process.
  driver.onConnection = (c) => {
    if (onConnection) {
      try {
        onConnection(c);
      } catch (e) {
        reportListenerError(srv, e, 'the QUIC server connection callback');
      }
    }
    try {
      srv.emit('connection', c);
    } catch (e) {
      reportListenerError(srv, e, "a QUIC server 'connection' listener");
    }
  };
  return server;
}

// ---------------------------------------------------------------------------------------------
// Client

export interface ClientConnection extends NodeQuicConnection {}

/**
 * Connects to a QUIC server; resolves with the connection once the handshake completes (or at
 * once with `early`). Rejects with a clear error when the handshake fails or times out. Each
 * connection has its own UDP socket, closed when the connection ends.
 */
export async function connect(target: string | URL | { host: string; port: number }, opts: ConnectOptions = {}): Promise<NodeQuicConnection> {
  let host: string;
  let port: number;
  if (typeof target === 'string' || target instanceof URL) {
    const u = typeof target === 'string' ? new URL(target.includes('://') ? target : `https://${target}`) : target;
    host = u.hostname.replace(/^\[|\]$/g, '');
    port = u.port ? Number(u.port) : 443;
  } else {
    host = target.host.replace(/^\[|\]$/g, '');
    port = target.port;
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new ConfigError(`connect: bad port ${port}`);
  const signal = opts.signal;
  signal?.throwIfAborted();
  const { address, family } = await dns.promises.lookup(host);
  signal?.throwIfAborted();
  const remote: Address = { address, port, family: family === 6 ? 6 : 4 };
  const provider = providerOf(opts.provider);
  const tls: Omit<TlsClientConfig, 'provider' | 'quic'> = { ...(opts.tls ?? {}) };
  if (opts.alpn) tls.alpn = opts.alpn;
  if (!tls.alpn) tls.alpn = ['h3'];
  tls.serverName ??= opts.serverName ?? host;
  if (opts.insecureSkipVerify) tls.insecureSkipVerify = true;
  if (!tls.verifier && !tls.insecureSkipVerify) tls.verifier = new WebPkiVerifier(opts.ca ? { roots: text(opts.ca) } : {});
  const kl = keyLogger(opts.keyLogFile);
  if (kl && !tls.keyLog) tls.keyLog = kl;
  const t0 = now();
  const qlogDir = opts.qlogDir ?? process.env.QLOGDIR;
  const qlog = qlogDir ? new QlogWriter(qlogDir, 'client', null, t0) : null;
  const cfg: ClientConnectionConfig = { ...transportOf(opts), provider, tls };
  if (qlog) cfg.qlog = qlog.sink;
  if (opts.session) cfg.session = opts.session;
  if (opts.earlyData) cfg.earlyData = true;
  if (opts.token) cfg.token = opts.token;
  if (opts.version !== undefined) cfg.version = opts.version;
  if (opts.versions) cfg.versions = opts.versions;

  const endpoint = new Endpoint({ provider, cidLength: opts.cidLength, factory: opts.factory });
  const localHost = opts.localAddress ?? (family === 6 ? '::' : '0.0.0.0');
  const socket = await bindSocket(localHost, opts.localPort ?? 0, opts);
  if (signal?.aborted) {
    socket.close();
    throw signal.reason;
  }
  const driver = new UdpDriver(endpoint, socket);
  if (qlog) driver.onFirstLongHeader = (odcid) => qlog.setOdcid(odcid);
  let wrapper: NodeQuicConnection;
  try {
    wrapper = driver.wrap(endpoint.connect(remote, cfg, now()));
  } catch (e) {
    driver.destroy();
    throw e;
  }
  driver.onIdle = () => {
    qlog?.close();
    driver.destroy();
  };
  void wrapper.closed.then(() => {
    qlog?.close();
    setImmediate(() => driver.destroy());
  });
  driver.step();
  if (opts.early) return wrapper;
  const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    await Promise.race([
      wrapper.ready,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`QUIC handshake with ${host}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
        if (signal) {
          onAbort = () => rej(signal.reason);
          signal.addEventListener('abort', onAbort, { once: true });
        }
      }),
    ]);
  } catch (e) {
    wrapper.close(0, signal?.aborted ? 'aborted' : 'handshake timeout').catch(() => {});
    setTimeout(() => driver.destroy(), 100).unref();
    throw e;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal!.removeEventListener('abort', onAbort);
  }
  return wrapper;
}

export type { HandshakeInfo, CloseInfo };
export { describeClose as describeCloseInfo };
