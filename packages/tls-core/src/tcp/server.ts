/**
 * `createServer(options, handler)`: a TLS 1.3 server over TCP, like node:tls `createServer`.
 * The handler gets each connection once its handshake completed ('secureConnection').
 * A misbehaving client never takes the process down: its errors go to 'tlsClientError'.
 *
 *   const srv = createServer({ cert, key, alpn: ['http/1.1'] }, (sock) => sock.end('hello'));
 *   srv.listen(8443, '127.0.0.1', () => console.log(srv.address()));
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { NamedGroup, SignatureScheme } from '../crypto/provider.js';
import { ConfigError } from '../errors.js';
import type { CertificateVerifier, CipherSuite, KeyLogger } from '../handshake/api.js';
import { normalizeServerConfig, type ClientAuthMode, type TlsServerConfig } from '../handshake/config.js';
import { TlsServer as TlsServerSession } from '../handshake/server.js';
import { WebPkiVerifier } from '../x509/verifier.js';
import { certifiedKey, keyLogSink, resolveProvider, type ProviderOption } from './options.js';
import { TlsSocket, reportListenerError, type KeyUpdateLimits } from './socket.js';

export interface TlsServerOptions {
  /** Certificate chain (PEM, leaf first) and private key (PEM). Required unless tlsConfig.resolve is given. */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  alpn?: string[];
  provider?: ProviderOption;
  /** Client certificates: 'request' or 'require', checked against `ca` (PEM) or `clientVerifier`. */
  clientAuth?: ClientAuthMode;
  ca?: string | Uint8Array;
  clientVerifier?: CertificateVerifier;
  /** Session tickets sent after each full handshake (default 1; 0 disables resumption). */
  tickets?: number;
  /** Accept up to this many bytes of 0-RTT data per connection (default 0: no 0-RTT). */
  maxEarlyData?: number;
  keylog?: string | KeyLogger;
  cipherSuites?: CipherSuite[];
  groups?: NamedGroup[];
  signatureSchemes?: SignatureScheme[];
  /** Abort handshakes that take longer (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Tests: records per key before an automatic KeyUpdate. */
  keyUpdateAfter?: number;
  /**
   * Bounds on the peer's KeyUpdates (RFC 8446 §4.6.3 sets none; each costs a key derivation and, when
   * requested, a KeyUpdate of ours): at most `withoutData` in a row without application data in
   * between (default 32), and at most `perSecond` per second (default 100). Beyond: unexpected_message.
   */
  keyUpdateLimits?: KeyUpdateLimits;
  /** Extra handshake-core options (resolver, HRR cookie, ...). */
  tlsConfig?: Partial<TlsServerConfig>;
}

export class TlsTcpServer extends EventEmitter {
  readonly server: net.Server;
  readonly config: TlsServerConfig;
  private readonly opts: TlsServerOptions;
  private readonly keyLog: KeyLogger | null;
  private readonly sockets = new Set<TlsSocket>();

  constructor(options: TlsServerOptions, handler?: (socket: TlsSocket) => void) {
    super();
    this.opts = options;
    const provider = resolveProvider(options.provider);
    if ((options.cert === undefined) !== (options.key === undefined)) throw new ConfigError('createServer: pass both cert and key (PEM)');
    const pemIdentity = options.cert !== undefined && options.key !== undefined ? certifiedKey(options.cert, options.key, 'server') : undefined;
    // Load the private key once (not per connection).
    const identity = pemIdentity ? { chain: pemIdentity.chain, key: provider.loadPrivateKey(pemIdentity.key as Uint8Array) } : undefined;
    let clientVerifier = options.clientVerifier;
    if (!clientVerifier && options.ca !== undefined) {
      clientVerifier = new WebPkiVerifier({ roots: typeof options.ca === 'string' ? options.ca : new TextDecoder().decode(options.ca) });
    }
    this.keyLog = keyLogSink(options.keylog);
    this.config = {
      provider,
      ...(identity ? { identity } : {}),
      ...(options.alpn ? { alpn: options.alpn } : {}),
      ...(options.clientAuth ? { clientAuth: options.clientAuth } : {}),
      ...(clientVerifier ? { clientVerifier } : {}),
      ...(options.tickets !== undefined ? { tickets: { count: options.tickets } } : {}),
      ...(options.maxEarlyData ? { maxEarlyData: options.maxEarlyData } : {}),
      ...(options.cipherSuites ? { cipherSuites: options.cipherSuites } : {}),
      ...(options.groups ? { groups: options.groups } : {}),
      ...(options.signatureSchemes ? { signatureSchemes: options.signatureSchemes } : {}),
      ...options.tlsConfig,
    };
    // Validates the configuration now and caches the normalized form (ticket keys, anti-replay) for all connections.
    normalizeServerConfig(this.config);
    if (handler) this.on('secureConnection', handler);
    this.server = net.createServer({ allowHalfOpen: false }, (c) => this.onConnection(c));
    this.server.on('error', (e) => this.emit('error', e));
    this.server.on('close', () => this.emit('close'));
    this.server.on('listening', () => this.emit('listening'));
  }

  private onConnection(c: net.Socket): void {
    c.setNoDelay(true);
    const config = this.config;
    const keyLogSinkFn = this.keyLog;
    let sock: TlsSocket;
    try {
      sock = new TlsSocket(c, {
        role: 'server',
        provider: config.provider,
        session: (keyLog) => {
          // Share the base config (and its cached normalized settings) unless keys are logged.
          if (!keyLog || (!keyLogSinkFn && this.listenerCount('keylog') === 0)) return new TlsServerSession(config);
          return new TlsServerSession(withKeyLog(config, keyLog));
        },
        keyLog: keyLogSinkFn,
        handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 10_000,
        ...(this.opts.keyUpdateAfter !== undefined ? { keyUpdateAfter: this.opts.keyUpdateAfter } : {}),
        ...(this.opts.keyUpdateLimits ? { keyUpdateLimits: this.opts.keyUpdateLimits } : {}),
      });
    } catch (e) {
      c.destroy();
      this.emit('tlsClientError', e, null);
      return;
    }
    this.sockets.add(sock);
    if (this.listenerCount('keylog') > 0) sock.on('keylog', (line: Buffer) => this.emit('keylog', line, sock));
    let secure = false;
    sock.on('error', (err) => {
      // Always handled here, so a bad peer cannot crash the process; the application may listen too.
      if (!secure || sock.listenerCount('error') === 1) {
        if (this.listenerCount('tlsClientError') > 0) this.emit('tlsClientError', err, sock);
      }
    });
    sock.on('close', () => this.sockets.delete(sock));
    sock.once('secure', () => {
      secure = true;
      try {
        this.emit('secureConnection', sock);
      } catch (e) {
        // The application's handler threw: a process warning tells (not the server's 'error' event,
        // which means "the server failed" and often ends the program); the process, the server
        // and this connection go on.
        reportListenerError(e, "the TLS server's 'secureConnection' handler");
      }
    });
  }

  listen(port = 0, host = '127.0.0.1', cb?: () => void): this {
    this.server.listen(port, host, cb);
    return this;
  }
  address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }
  /** Stops accepting; with `destroyConnections` also closes open connections. */
  close(cb?: (err?: Error) => void, destroyConnections = true): this {
    this.server.close(cb);
    if (destroyConnections) for (const s of this.sockets) s.destroy();
    return this;
  }
}

/**
 * A per-connection config with its own key logger. Normalized settings are cached per config
 * object, so the ticket keys and anti-replay state of the base config are passed explicitly to
 * keep resumption working across connections.
 */
function withKeyLog(base: TlsServerConfig, keyLog: KeyLogger): TlsServerConfig {
  const settings = normalizeServerConfig(base);
  return {
    ...base,
    tickets: { ...(base.tickets ?? {}), keys: settings.ticketKeys },
    antiReplay: settings.antiReplay,
    keyLog,
  };
}

export function createServer(options: TlsServerOptions, handler?: (socket: TlsSocket) => void): TlsTcpServer {
  return new TlsTcpServer(options, handler);
}
