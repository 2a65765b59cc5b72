/**
 * The TLS 1.3 handshake core: TlsClient / TlsServer (sans-I/O; the event contract is api.ts,
 * exported from the package index), their configuration, and the server-side ticket /
 * anti-replay state shared by connections.
 *
 *   const client = new TlsClient({ provider, serverName: 'example.com', alpn: ['h3'], verifier,
 *                                  quic: { transportParameters } });      // omit quic → TCP mode
 *   client.start();
 *   for (let e = client.poll(); e; e = client.poll()) switch (e.type) {
 *     case 'send': ...        // bytes at e.level (QUIC: CRYPTO frames; TCP: handshake records)
 *     case 'secret': ...      // install keys for (e.level, e.direction) with e.suite
 *     case 'earlyData': ...   // 0-RTT accepted / rejected
 *     case 'handshakeComplete': ... case 'sessionTicket': ... case 'alert': ...
 *   }
 *   client.receive(level, bytes);   // never throws; errors come out as one 'alert' event
 *
 *   const config: TlsServerConfig = { provider, identity: { chain: [leafDer], key: keyDer }, alpn: ['h3'] };
 *   const server = new TlsServer(config, { quicTransportParameters, keyLog });  // config shared by connections
 *   server.receive('initial', clientHello); if (server.pending) await server.pending;  // async resolver
 *
 * Secret order. Client: [early/write after the ClientHello when offering 0-RTT], handshake/read and
 * handshake/write at the ServerHello (both modes: TCP alerts from then on are protected), application/read
 * at the server Finished, then (TCP: EndOfEarlyData at 'early' if 0-RTT was accepted) its flight at
 * 'handshake', application/write, handshakeComplete. A 'send' event's level names the key to write it
 * with: the record layer keeps the early write key until EndOfEarlyData went out. Server: [earlyData, early/read], ServerHello at 'initial',
 * handshake/write, handshake/read (TCP with 0-RTT: after EndOfEarlyData), its flight at 'handshake',
 * application/write; after the client Finished: application/read, handshakeComplete, tickets at
 * 'application'.
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
