/**
 * Petrel TLS 1.3 client over TCP: connects, sends an HTTP/1.1 GET, prints what was negotiated and
 * the response.
 *
 *   pnpm tls-client -- --host H --port P [--servername N] [--ca F | --insecure] [--alpn a,b]
 *                      [--provider node|noble] [--resume] [--early-data STR] [--keylog F]
 *                      [--sess-out F] [--sess-in F] [--path /] [--cert F --key F]
 *
 * --resume makes a second connection with the ticket from the first (with --early-data: as 0-RTT).
 */
import fs from 'node:fs';
import { connect, parseSession, serializeSession, type TlsSocket } from '../packages/tls-core/src/tcp/index.js';
import type { SessionTicket } from '../packages/tls-core/src/handshake/api.js';
import { args } from './cli-args.js';

const a = args(process.argv.slice(2));
if (a.has('help') || !a.has('port')) {
  console.log('usage: pnpm tls-client -- --host H --port P [--servername N] [--ca F | --insecure] [--alpn a,b] [--provider node|noble] [--resume] [--early-data STR] [--keylog F] [--sess-out F] [--sess-in F] [--path /] [--cert F --key F]');
  process.exit(a.has('help') ? 0 : 2);
}
const host = a.get('host') ?? '127.0.0.1';
const port = Number(a.get('port'));
const servername = a.get('servername') ?? host;
const path = a.get('path') ?? '/';

interface Result {
  sock: TlsSocket;
  ticket: SessionTicket | null;
  response: string;
  handshakeMs: number;
  totalMs: number;
}

function once(session: SessionTicket | null, early: string | undefined): Promise<Result> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const request = `GET ${path} HTTP/1.1\r\nhost: ${servername}\r\nuser-agent: petrel-tls-client\r\nconnection: close\r\n\r\n`;
    const sock = connect({
      host,
      port,
      servername,
      provider: (a.get('provider') ?? 'node') as 'node' | 'noble',
      ...(a.has('ca') ? { ca: fs.readFileSync(a.get('ca')!, 'utf8') } : {}),
      ...(a.has('insecure') ? { insecureSkipVerify: true } : {}),
      ...(a.has('alpn') ? { alpn: a.get('alpn')!.split(',') } : {}),
      ...(a.has('keylog') ? { keylog: a.get('keylog')! } : {}),
      ...(a.has('cert') ? { cert: fs.readFileSync(a.get('cert')!, 'utf8'), key: fs.readFileSync(a.get('key')!, 'utf8') } : {}),
      ...(session ? { session } : {}),
      // With 0-RTT the request itself is the early data when --early-data is "request".
      ...(session && early !== undefined ? { earlyData: early === 'request' ? request : early } : {}),
      handshakeTimeoutMs: 10_000,
    });
    let hs = 0;
    let response = '';
    let ticket: SessionTicket | null = null;
    sock.on('session', (t: SessionTicket) => (ticket = t));
    sock.on('secureConnect', () => {
      hs = performance.now() - t0;
      if (!(session && early === 'request')) sock.write(request);
    });
    sock.on('data', (d: Buffer) => (response += d.toString('utf8')));
    sock.on('end', () => sock.end());
    sock.on('close', () => resolve({ sock, ticket, response, handshakeMs: hs, totalMs: performance.now() - t0 }));
    sock.on('error', (e) => reject(e));
  });
}

function report(label: string, r: Result): void {
  const i = r.sock.info;
  if (!i) {
    console.log(`${label}: no handshake`);
    return;
  }
  console.log(`${label}:`);
  console.log(`  version:    ${i.version}`);
  console.log(`  suite:      ${i.suite}`);
  console.log(`  group:      ${i.group ?? '(none, PSK only)'}`);
  console.log(`  signature:  ${i.signatureScheme ?? '(none, resumed)'}`);
  console.log(`  alpn:       ${i.alpn ?? '(none)'}`);
  console.log(`  resumed:    ${i.resumed}`);
  console.log(`  early data: ${i.earlyData}`);
  console.log(`  provider:   ${i.provider}`);
  console.log(`  handshake:  ${r.handshakeMs.toFixed(1)} ms, total ${r.totalMs.toFixed(1)} ms`);
  const status = r.response.split('\r\n')[0] ?? '';
  console.log(`  response:   ${status || '(empty)'} (${Buffer.byteLength(r.response)} bytes)`);
  const body = r.response.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  if (body && a.has('verbose')) console.log(body);
}

try {
  let session: SessionTicket | null = a.has('sess-in') ? parseSession(fs.readFileSync(a.get('sess-in')!, 'utf8')) : null;
  const early = a.get('early-data');
  if (a.has('resume') && !session) {
    const first = await once(null, undefined);
    report('connection 1 (full handshake)', first);
    session = first.ticket;
    if (!session) console.log('  (the server sent no session ticket: cannot resume)');
  }
  const r = await once(session, early);
  report(session ? 'connection (resumption)' : 'connection', r);
  if (a.has('sess-out') && (r.ticket ?? session)) fs.writeFileSync(a.get('sess-out')!, serializeSession((r.ticket ?? session)!), { mode: 0o600 });
  process.exit(0);
} catch (e) {
  const err = e as Error & { code?: string };
  console.error(`tls-client: ${err.message}${err.code ? ` [${err.code}]` : ''}`);
  process.exit(1);
}
