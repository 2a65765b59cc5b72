export { connect, type TlsConnectOptions } from './client.js';
export { createServer, TlsTcpServer, type TlsServerOptions } from './server.js';
export { TlsSocket, TlsAlertError, type TlsConnectionInfo, type TlsSocketOptions } from './socket.js';
export { serializeSession, parseSession, keyLogSink, resolveProvider, type ProviderOption } from './options.js';
