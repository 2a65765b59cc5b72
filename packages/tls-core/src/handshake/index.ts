/**
 * The TLS 1.3 handshake core: TlsClient / TlsServer (sans-I/O, see api.ts for the event
 * contract), their configuration, and the shared server-side ticket/anti-replay state.
 * (api.ts itself is exported from the package index.)
 */
export { TlsClient } from './client.js';
export { TlsServer } from './server.js';
export type {
  TlsClientConfig,
  TlsServerConfig,
  ServerIdentity,
  ClientHelloInfo,
  CertifiedKey,
  ClientAuthMode,
  TicketOptions,
  QuicTlsConfig,
  ServerConnectionOptions,
} from './config.js';
export { TicketKeyring, AntiReplay } from './tickets.js';
export { KeyLogLabel, keyLogLine } from './keylog.js';
