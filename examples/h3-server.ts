/**
 * `pnpm h3-server`: serves a directory over HTTP/3 (Petrel QUIC + TLS 1.3 + HTTP/3 on UDP).
 *
 *   pnpm h3-server -- --root DIR [--port 4433] [--host 127.0.0.1] [--cert F --key F]
 *                     [--cert-out F] [--provider node|noble] [--quiet]
 *
 * Without --cert/--key it makes a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and
 * ::1, writes it (PEM) to --cert-out (default: a new file in the temp folder) and prints its path
 * and SHA-256 fingerprint, so a client can trust it: `pnpm h3-get -- --ca THAT_FILE URL`.
 * GET/HEAD only, content types by extension, index.html for directories, no path traversal
 * (examples/h3-static.ts). Logs each connection and request (not with --quiet). Ends cleanly on SIGINT/SIGTERM. SSLKEYLOGFILE and QLOGDIR are honoured.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { pemDecode } from '../packages/tls-core/src/util/der.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { serve } from '../packages/h3/src/node.js';
import type { NodeQuicConnection } from '../packages/quic/src/node/index.js';
import { staticFiles } from './h3-static.js';
import { args } from './cli-args.js';

const usage = 'usage: pnpm h3-server -- --root DIR [--port 4433] [--host 127.0.0.1] [--cert F --key F] [--cert-out F] [--provider node|noble] [--quiet]';
const a = args(process.argv.slice(2));
if (a.has('help')) {
  console.log(usage);
  process.exit(0);
}
const die = (msg: string): never => {
  console.error(`h3-server: ${msg}`);
  process.exit(2);
};
const root = a.get('root') ?? die(`--root is required\n${usage}`);
if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) die(`--root ${root} is not a directory`);
const port = Number(a.get('port') ?? 4433);
if (!Number.isInteger(port) || port < 0 || port > 65535) die(`bad --port ${a.get('port')}`);
const host = a.get('host') ?? '127.0.0.1';
const provider = getProvider(a.get('provider') ?? 'node');

const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');

let cert: string;
let key: string;
if (a.has('cert') || a.has('key')) {
  if (!a.has('cert') || !a.has('key')) die('pass both --cert and --key');
  cert = fs.readFileSync(a.get('cert')!, 'utf8');
  key = fs.readFileSync(a.get('key')!, 'utf8');
} else {
  const g = generateSelfSigned({ provider, names: ['localhost', '127.0.0.1', '::1'] });
  cert = g.certPem;
  key = g.keyPem;
  const out = a.get('cert-out') ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-h3-server-')), 'cert.pem');
  fs.writeFileSync(out, cert);
  console.log(`self-signed certificate (localhost, 127.0.0.1, ::1) written to ${out}`);
  console.log(`  SHA-256 fingerprint: ${hex(provider.digest('sha256', g.certDer))}`);
  console.log(`  trust it with: pnpm h3-get -- --ca ${out} https://localhost:${port === 0 ? 'PORT' : port}/`);
}
const fingerprintOf = (pem: string): string => hex(provider.digest('sha256', pemDecode(pem).find((b) => b.label === 'CERTIFICATE')!.der));
if (a.has('cert')) console.log(`certificate ${a.get('cert')}, SHA-256 fingerprint: ${fingerprintOf(cert)}`);

const quiet = a.has('quiet');
const server = await serve(
  { port, host, cert, key, provider, onError: (e) => console.error(`h3-server: handler error: ${e instanceof Error ? e.message : String(e)}`) },
  staticFiles(root, quiet ? {} : { log: (line) => console.log(line) }),
);
const addr = server.address();
const shown = addr.family === 6 ? `[${addr.address}]` : addr.address;
if (!quiet) {
  server.on('connection', (c: NodeQuicConnection) => {
    const who = `${c.remote.family === 6 ? `[${c.remote.address}]` : c.remote.address}:${c.remote.port}`;
    c.ready.then(
      (h) => console.log(`connection from ${who}: ${h.alpn}, ${h.suite}, ${h.group ?? 'PSK'}${h.resumed ? ', resumed' : ''}`),
      () => console.log(`connection from ${who}: handshake failed`),
    );
  });
}
console.log(`h3-server: listening on https://${shown}:${addr.port}/ (UDP, ALPN h3), serving ${path.resolve(root)}`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void server.close(0x100, 'server shutting down', 1000).then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
