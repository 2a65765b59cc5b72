/**
 * `pnpm demo`: Petrel's main job, HTTP/3 over QUIC + TLS 1.3, server and client on 127.0.0.1.
 *
 * Makes a fresh self-signed certificate (localhost, 127.0.0.1, ::1), starts the HTTP/3 server on
 * an ephemeral UDP port of 127.0.0.1, then the client fetches from it over one QUIC connection,
 * verifying the server certificate against that certificate as its only trust anchor (not
 * insecure): a small page, then 4 MB to show throughput. Prints the status, the negotiated ALPN,
 * cipher suite, group and the timings, and exits 0 (1 on any failure, after at most 20 s).
 *
 *   pnpm demo [-- --provider noble]
 *
 * The TLS-over-TCP demo is `pnpm tls-demo`.
 */
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { H3Agent, serve } from '../packages/h3/src/node.js';

const argv = process.argv.slice(2);
const providerName = argv.includes('--provider') ? argv[argv.indexOf('--provider') + 1]! : 'node';
const provider = getProvider(providerName);

const PAGE = 'hello from petrel over HTTP/3\n';
const BIG = 4_000_000;

const t0 = performance.now();
const cert = generateSelfSigned({ provider, names: ['localhost', '127.0.0.1', '::1'] });
const tCert = performance.now();

const server = await serve({ port: 0, host: '127.0.0.1', cert: cert.certPem, key: cert.keyPem, provider }, (req) => {
  const { pathname } = new URL(req.url);
  if (pathname === '/') return new Response(PAGE, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  if (pathname === '/big') {
    const chunk = new Uint8Array(64 * 1024).fill(0x70);
    let left = BIG;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const n = Math.min(left, chunk.length);
        left -= n;
        c.enqueue(chunk.subarray(0, n));
        if (left === 0) c.close();
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(BIG) } });
  }
  return new Response('not found\n', { status: 404 });
});
const port = server.address().port;
const agent = new H3Agent({ ca: cert.certPem, connect: { provider } });

const fail = (msg: string): never => {
  console.error(`demo failed: ${msg}`);
  process.exit(1);
};
const watchdog = setTimeout(() => fail('timed out after 20 s'), 20_000);

try {
  const origin = `https://127.0.0.1:${port}`;
  const conn = await agent.connection(origin);
  const tReq = performance.now();
  const res = await agent.fetch(`${origin}/`);
  const ttfb = performance.now() - tReq;
  const text = await res.text();
  const total = performance.now() - tReq;

  const tBig = performance.now();
  const big = await agent.fetch(`${origin}/big`);
  let bytes = 0;
  for await (const c of big.body as unknown as AsyncIterable<Uint8Array>) bytes += c.length;
  const bigMs = performance.now() - tBig;

  const h = conn.handshake;
  console.log(`Petrel HTTP/3 over QUIC, UDP 127.0.0.1:${port}`);
  console.log(`  status:            ${res.status}`);
  console.log(`  body:              ${JSON.stringify(text)}`);
  console.log(`  ALPN:              ${h.alpn ?? '(none)'}`);
  console.log(`  cipher suite:      ${h.suite}`);
  console.log(`  group:             ${h.group ?? '(none)'}`);
  console.log(`  signature scheme:  ${h.signatureScheme}`);
  console.log(`  QUIC version:      0x${conn.client.quic.version.toString(16).padStart(8, '0')}`);
  console.log(`  certificate:       verified against the demo's own self-signed certificate (${h.peerCertificates.length} cert, not insecure)`);
  console.log(`  crypto provider:   ${provider.name}`);
  console.log(`  certificate gen:   ${(tCert - t0).toFixed(1)} ms`);
  console.log(`  connect+handshake: ${conn.connectMs.toFixed(1)} ms`);
  console.log(`  TTFB:              ${ttfb.toFixed(1)} ms`);
  console.log(`  request total:     ${total.toFixed(1)} ms`);
  console.log(`  4 MB download:     ${big.status}, ${bytes} bytes in ${bigMs.toFixed(1)} ms (${((bytes * 8) / 1e6 / (bigMs / 1000)).toFixed(1)} Mbit/s), same connection (${conn.requests} requests, ${agent.connectionsOpened} connection)`);
  if (res.status !== 200 || text !== PAGE || h.alpn !== 'h3' || big.status !== 200 || bytes !== BIG || agent.connectionsOpened !== 1) fail('unexpected result');
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
clearTimeout(watchdog);
await agent.close();
await server.close(0x100, 'demo done', 500);
process.exit(0);
