/**
 * Petrel TLS 1.3 server over TCP with a tiny HTTP/1.1 responder.
 *
 *   pnpm tls-server -- --port 8443 --cert cert.pem --key key.pem [--host 127.0.0.1] [--alpn h2,http/1.1]
 *                      [--provider node|noble] [--keylog keys.log] [--early-data 16384]
 *                      [--client-ca ca.pem [--require-client-cert]] [--once]
 *
 * Without --cert/--key a self-signed ECDSA P-256 certificate for localhost/127.0.0.1 is generated.
 * Each response says "hello from petrel" and echoes the request; each connection prints what was
 * negotiated.
 */
import fs from 'node:fs';
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { createServer } from '../packages/tls-core/src/tcp/index.js';
import type { TlsSocket } from '../packages/tls-core/src/tcp/socket.js';
import { args } from './cli-args.js';

const a = args(process.argv.slice(2));
if (a.has('help')) {
  console.log('usage: pnpm tls-server -- --port P [--cert F --key F] [--host H] [--alpn a,b] [--provider node|noble] [--keylog F] [--early-data MAX] [--client-ca F [--require-client-cert]] [--once]');
  process.exit(0);
}
const providerName = a.get('provider') ?? 'node';
const provider = getProvider(providerName);
let cert: string;
let key: string;
if (a.has('cert') || a.has('key')) {
  if (!a.has('cert') || !a.has('key')) {
    console.error('tls-server: pass both --cert and --key');
    process.exit(2);
  }
  cert = fs.readFileSync(a.get('cert')!, 'utf8');
  key = fs.readFileSync(a.get('key')!, 'utf8');
} else {
  const g = generateSelfSigned({ provider, names: ['localhost', '127.0.0.1', '::1'] });
  cert = g.certPem;
  key = g.keyPem;
  console.log('no --cert/--key: using a fresh self-signed certificate for localhost, 127.0.0.1, ::1');
}
const clientCa = a.get('client-ca');
const server = createServer(
  {
    cert,
    key,
    provider,
    ...(a.has('alpn') ? { alpn: a.get('alpn')!.split(',') } : {}),
    ...(a.has('keylog') ? { keylog: a.get('keylog')! } : {}),
    ...(a.has('early-data') ? { maxEarlyData: Number(a.get('early-data')) || 16384 } : {}),
    ...(clientCa ? { ca: fs.readFileSync(clientCa, 'utf8'), clientAuth: a.has('require-client-cert') ? 'require' : 'request' } : {}),
  },
  (sock: TlsSocket) => handle(sock),
);

function describe(sock: TlsSocket): string {
  const i = sock.info!;
  return [
    `version=${i.version}`,
    `suite=${i.suite}`,
    `group=${i.group ?? '-'}`,
    `signature=${i.signatureScheme ?? '-'}`,
    `alpn=${i.alpn ?? '-'}`,
    `sni=${i.serverName ?? '-'}`,
    `resumed=${i.resumed}`,
    `early-data=${i.earlyData}`,
    `client-certs=${i.peerCertificates.length}`,
  ].join(' ');
}

function handle(sock: TlsSocket): void {
  const peer = `${(sock.transport as import('node:net').Socket).remoteAddress}:${(sock.transport as import('node:net').Socket).remotePort}`;
  console.log(`${peer} ${describe(sock)}`);
  let req = '';
  let answered = false;
  sock.on('data', (d: Buffer) => {
    req += d.toString('latin1');
    if (answered || !req.includes('\r\n\r\n')) {
      if (req.length > 65536) sock.destroy();
      return;
    }
    answered = true;
    const body = `hello from petrel\n${describe(sock).replace(/ /g, '\n')}\n\nyou sent:\n${req}`;
    sock.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    if (a.has('once')) server.close();
  });
  sock.on('error', (e) => console.log(`${peer} error: ${e.message}`));
}

server.on('tlsClientError', (e: Error) => console.log(`handshake failed: ${e.message}`));
server.on('error', (e: Error) => {
  console.error(`tls-server: ${e.message}`);
  process.exit(1);
});
server.listen(Number(a.get('port') ?? 8443), a.get('host') ?? '127.0.0.1', () => {
  const addr = server.address();
  console.log(`petrel tls-server listening on ${addr.address}:${addr.port} (provider ${provider.name})`);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => server.close(() => process.exit(0)));
