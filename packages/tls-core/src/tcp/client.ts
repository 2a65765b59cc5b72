/**
 * `connect(options)`: a TLS 1.3 client over TCP, like node:tls `connect`.
 *
 *   const s = connect({ host: 'example.com', port: 443, ca: fs.readFileSync('ca.pem', 'utf8'), alpn: ['http/1.1'] });
 *   s.on('secureConnect', () => { console.log(s.info); s.end('GET / HTTP/1.1\r\n\r\n'); });
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { NamedGroup, SignatureScheme } from '../crypto/provider.js';
import { ConfigError } from '../errors.js';
import type { CertificateVerifier, CipherSuite, KeyLogger, SessionTicket } from '../handshake/api.js';
import { TlsClient } from '../handshake/client.js';
import { normalizeClientConfig, type TlsClientConfig } from '../handshake/config.js';
import { WebPkiVerifier } from '../x509/verifier.js';
import { certifiedKey, keyLogSink, resolveProvider, type ProviderOption } from './options.js';
import { TlsSocket, type KeyUpdateLimits } from './socket.js';

export interface TlsConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port?: number;
  /** Name to verify and send as SNI (default: host). IP literals are verified against IP SANs and not sent as SNI. */
  servername?: string;
  /** Trust anchors (PEM). Without ca, verifier or insecureSkipVerify the client refuses to connect. */
  ca?: string | Uint8Array;
  /** A custom certificate verifier (overrides ca). */
  verifier?: CertificateVerifier;
  /** Testing only: accept any server certificate. */
  insecureSkipVerify?: boolean;
  alpn?: string[];
  provider?: ProviderOption;
  /** Client certificate chain and key (PEM), sent when the server asks. */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  /** A ticket from an earlier connection ('session' event / getSession()). */
  session?: SessionTicket | null;
  /** Bytes to send as 0-RTT with `session` (resent as ordinary data if the server rejects them). */
  earlyData?: Uint8Array | string;
  /** Key log: a file path or a callback; default $SSLKEYLOGFILE. */
  keylog?: string | KeyLogger;
  cipherSuites?: CipherSuite[];
  groups?: NamedGroup[];
  keyShares?: NamedGroup[];
  signatureSchemes?: SignatureScheme[];
  /** Run over an existing connected stream instead of opening a TCP connection. */
  socket?: Duplex;
  handshakeTimeoutMs?: number;
  /** Tests: records per key before an automatic KeyUpdate. */
  keyUpdateAfter?: number;
  /**
   * Bounds on the peer's KeyUpdates (RFC 8446 §4.6.3 sets none; each costs a key derivation and, when
   * requested, a KeyUpdate of ours): at most `withoutData` in a row without application data in
   * between (default 32), and at most `perSecond` per second (default 100). Beyond: unexpected_message.
   */
  keyUpdateLimits?: KeyUpdateLimits;
  /** Extra handshake-core options (tests). */
  tlsConfig?: Partial<TlsClientConfig>;
}

let readBuffer: Uint8Array | null = null;
/** The read buffer of every client socket created by {@link connect} (see there). */
function sharedReadBuffer(): Uint8Array {
  return (readBuffer ??= new Uint8Array(READ_BUFFER_SIZE));
}
/** Bytes per socket read (Node's default allocates 64 KiB per read). */
const READ_BUFFER_SIZE = 128 * 1024;

export function connect(options: TlsConnectOptions, onSecureConnect?: () => void): TlsSocket {
  const provider = resolveProvider(options.provider);
  const host = options.host ?? '127.0.0.1';
  const serverName = options.servername ?? host;
  let verifier = options.verifier;
  if (!verifier && options.ca !== undefined) {
    const roots = typeof options.ca === 'string' ? options.ca : new TextDecoder().decode(options.ca);
    verifier = new WebPkiVerifier({ roots });
  }
  if (!verifier && !options.insecureSkipVerify) {
    throw new ConfigError('connect: no way to verify the server; pass ca (PEM trust anchors), verifier, or insecureSkipVerify: true (testing only)');
  }
  if ((options.cert === undefined) !== (options.key === undefined)) throw new ConfigError('connect: pass both cert and key for a client certificate');
  const clientCertificate = options.cert !== undefined && options.key !== undefined ? certifiedKey(options.cert, options.key, 'client certificate') : undefined;
  const early = typeof options.earlyData === 'string' ? new TextEncoder().encode(options.earlyData) : options.earlyData;
  const session = options.session ?? undefined;
  const config: TlsClientConfig = {
    provider,
    serverName,
    ...(options.alpn ? { alpn: options.alpn } : {}),
    ...(verifier ? { verifier } : {}),
    ...(options.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
    ...(clientCertificate ? { clientCertificate } : {}),
    ...(session ? { resumption: session } : {}),
    ...(early && early.length > 0 && session ? { earlyData: true } : {}),
    ...(options.cipherSuites ? { cipherSuites: options.cipherSuites } : {}),
    ...(options.groups ? { groups: options.groups } : {}),
    ...(options.keyShares ? { keyShares: options.keyShares } : {}),
    ...(options.signatureSchemes ? { signatureSchemes: options.signatureSchemes } : {}),
    ...options.tlsConfig,
  };
  // Validate now (ConfigError at the call site, not later as an 'error' event).
  normalizeClientConfig(config);
  // Our own TCP socket reads into one buffer shared by all client sockets (`onread`): no buffer is
  // allocated per read. Safe because each read is handled synchronously and TlsSocket copies what
  // it keeps (onBorrowedRead) before the next read, of any socket, reuses the buffer.
  let sock: TlsSocket | null = null;
  const transport =
    options.socket ??
    net.connect({
      host,
      port: options.port ?? 443,
      onread: {
        buffer: sharedReadBuffer,
        callback: (n: number, buf: Uint8Array) => {
          sock?.onBorrowedRead(buf.subarray(0, n));
          return true; // TlsSocket pauses the transport itself when its reader is blocked
        },
      },
    });
  if (transport instanceof net.Socket) transport.setNoDelay(true);
  sock = new TlsSocket(transport, {
    role: 'client',
    provider,
    session: (keyLog) => new TlsClient({ ...config, ...(keyLog ? { keyLog } : {}) }),
    keyLog: keyLogSink(options.keylog),
    authorizedOnSecure: !!verifier,
    ...(early && early.length > 0 && session ? { earlyData: early, maxEarlyData: session.maxEarlyData } : {}),
    ...(early && early.length > 0 && !session ? { earlyData: early } : {}),
    ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
    ...(options.keyUpdateAfter !== undefined ? { keyUpdateAfter: options.keyUpdateAfter } : {}),
    ...(options.keyUpdateLimits ? { keyUpdateLimits: options.keyUpdateLimits } : {}),
  });
  if (onSecureConnect) sock.once('secureConnect', onSecureConnect);
  return sock;
}
