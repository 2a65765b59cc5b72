/**
 * `pnpm tls-demo`: a Petrel TLS 1.3 server and client talking over TCP on 127.0.0.1 (the HTTP/3 demo is `pnpm demo`).
 *
 * Makes a fresh self-signed certificate, serves a tiny HTTP/1.1 reply on an ephemeral port,
 * connects the Petrel client verifying that certificate as its trust anchor, sends a request
 * and prints what was negotiated and how long it took. Exits 0 on success.
 *
 *   pnpm tls-demo [-- --provider noble]
 */
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { connect, createServer } from '../packages/tls-core/src/tcp/index.js';

const argv = process.argv.slice(2);
const providerName = argv.includes('--provider') ? argv[argv.indexOf('--provider') + 1]! : 'node';
const provider = getProvider(providerName);

const t0 = performance.now();
const cert = generateSelfSigned({ provider, names: ['localhost', '127.0.0.1'] });
const tCert = performance.now();

const server = createServer({ cert: cert.certPem, key: cert.keyPem, alpn: ['http/1.1'], provider }, (sock) => {
  let req = '';
  sock.on('data', (d: Buffer) => {
    req += d.toString('latin1');
    if (!req.includes('\r\n\r\n')) return;
    const body = 'hello from petrel\n';
    sock.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });
  sock.on('error', () => {});
});
server.on('tlsClientError', (e: Error) => console.error(`server: handshake failed: ${e.message}`));

const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));

const fail = (msg: string): never => {
  console.error(`demo failed: ${msg}`);
  server.close();
  process.exit(1);
};
const watchdog = setTimeout(() => fail('timed out after 10 s'), 10_000);

const tConnect = performance.now();
const result = await new Promise<{ response: string; handshakeMs: number; totalMs: number; info: NonNullable<ReturnType<typeof connect>['info']> }>((resolve, reject) => {
  const sock = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.certPem, alpn: ['http/1.1'], provider });
  let handshakeMs = 0;
  let response = '';
  sock.on('secureConnect', () => {
    handshakeMs = performance.now() - tConnect;
    sock.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
  });
  sock.on('data', (d: Buffer) => (response += d.toString('utf8')));
  sock.on('end', () => sock.end());
  sock.on('close', () => (sock.info ? resolve({ response, handshakeMs, totalMs: performance.now() - tConnect, info: sock.info }) : reject(new Error('closed before the handshake'))));
  sock.on('error', reject);
}).catch((e: Error) => fail(e.message));
clearTimeout(watchdog);

const status = result.response.split('\r\n')[0] ?? '';
const body = result.response.split('\r\n\r\n')[1] ?? '';
console.log('Petrel TLS 1.3 over TCP, 127.0.0.1:' + port);
console.log(`  status:            ${status}`);
console.log(`  body:              ${JSON.stringify(body)}`);
console.log(`  protocol:          ${result.info.version}`);
console.log(`  ALPN:              ${result.info.alpn ?? '(none)'}`);
console.log(`  cipher suite:      ${result.info.suite}`);
console.log(`  group:             ${result.info.group}`);
console.log(`  signature scheme:  ${result.info.signatureScheme}`);
console.log(`  certificate:       verified against the demo's own self-signed CA (${result.info.peerCertificates.length} cert)`);
console.log(`  crypto provider:   ${result.info.provider}`);
console.log(`  certificate gen:   ${(tCert - t0).toFixed(1)} ms`);
console.log(`  handshake:         ${result.handshakeMs.toFixed(1)} ms`);
console.log(`  request total:     ${result.totalMs.toFixed(1)} ms`);
server.close();
if (!status.startsWith('HTTP/1.1 200') || body !== 'hello from petrel\n') fail('unexpected response');
process.exit(0);
