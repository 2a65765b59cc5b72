export * from './api.js';
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
} from './config.js';
export { TicketKeyring, AntiReplay } from './tickets.js';
