/**
 * CPU cost per packet of Petrel's QUIC send and receive paths, both crypto providers: an in-memory
 * client/server pair (two sans-I/O Endpoints, no sockets, real clock) moving one large stream
 * server → client with 1200-byte datagrams. Each side's work is timed with process.cpuUsage()
 * around its own calls:
 *
 *   send side    (server): stream write() + pollTransmit() (packetize, protect) + receive() of the
 *                client's ACKs + timers
 *   receive side (client): receive() (unprotect, parse, reassemble) + read() + pollTransmit() (ACKs)
 *
 *   cpu/send-us-per-packet [node|noble]   CPU µs of the send side / datagrams the server sent
 *   cpu/recv-us-per-packet [node|noble]   CPU µs of the receive side / datagrams the client received
 *
 * Each provider runs in its own child process (`node ... bench/cpu.ts --child PROVIDER BYTES`), one
 * warm-up transfer then REPS measured transfers. No peer column: the peers' whole-process CPU per
 * transfer is in the quic/bulk-* cpu-server / cpu-client rows (divide by size / ~1200 B).
 * No timing assertions anywhere: this is a benchmark.
 */
import { fileURLToPath } from 'node:url';
import type { Address } from '../packages/quic/src/api.js';
import { Endpoint } from '../packages/quic/src/endpoint.js';
import { getProvider } from '../packages/tls-core/src/index.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { runBounded } from '../test/support/peers.js';
import { selected, type BenchOptions, type BenchRow } from './lib/types.js';
import { NODE_FLAGS, log } from './quic-lib.js';

const C: Address = { address: '10.0.0.1', port: 50000, family: 4 };
const S: Address = { address: '10.0.0.2', port: 4433, family: 4 };
const PKT = 1200;

interface Sample {
  sendUs: number;
  recvUs: number;
  sent: number;
  received: number;
  bytes: number;
  wallMs: number;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** One transfer of `bytes` over a fresh pair; CPU per side. */
function transfer(providerName: 'node' | 'noble', bytes: number): Sample {
  const provider = getProvider(providerName);
  const now0 = Date.now();
  const ca = generateSelfSigned({ provider, names: [], isCA: true, commonName: 'bench CA', nowMs: now0 - 3600_000 });
  const leaf = generateSelfSigned({ provider, names: ['localhost'], issuer: ca, nowMs: now0 - 3600_000 });
  const tp = { maxUdpPayloadSize: PKT, connectionWindow: 8 << 20, maxConnectionWindow: 32 << 20, streamWindow: 4 << 20, maxStreamWindow: 16 << 20, maxIdleTimeout: 30_000 };
  const server = new Endpoint({ provider, server: { ...tp, provider, tls: { identity: { chain: [leaf.certDer, ca.certDer], key: leaf.keyDer }, alpn: ['bench'] } } });
  const clientEp = new Endpoint({ provider });
  const now = () => Date.now();
  const client = clientEp.connect(S, { ...tp, provider, tls: { serverName: 'localhost', alpn: ['bench'], insecureSkipVerify: true } }, now());
  let sconn: ReturnType<Endpoint['connections']>[number] | null = null;
  let sid = -1;
  let measuring = false;
  let sendUs = 0;
  let recvUs = 0;
  let sent = 0;
  let received = 0;
  let got = 0;
  let written = 0;
  let fin = false;
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  const toClient: Uint8Array[] = [];
  const toServer: Uint8Array[] = [];
  const t0 = performance.now();
  for (let iter = 0; iter < 5_000_000 && !fin; iter++) {
    // ---- server (send side)
    let c0 = cpuUs();
    for (const d of toServer.splice(0)) server.receive(d, C, now());
    for (let e = server.pollEvent(); e; e = server.pollEvent()) if (e.type === 'connection') sconn = e.connection;
    if (sconn) {
      for (let e = sconn.pollEvent(); e; e = sconn.pollEvent()) {
        /* streamWritable etc.: we retry writes anyway */
      }
      if (sconn.handshakeComplete) {
        if (sid < 0) {
          sid = sconn.openStream(false) ?? -1;
          if (sid >= 0) measuring = true;
          c0 = cpuUs();
        }
        while (sid >= 0 && written < bytes) {
          const n = Math.min(chunk.length, bytes - written);
          const k = sconn.write(sid, n === chunk.length ? chunk : chunk.subarray(0, n), written + n >= bytes);
          written += k;
          if (k < n) break;
        }
      }
    }
    const ts = server.nextTimeout();
    if (ts !== null && ts <= now()) server.handleTimeout(now());
    for (let t = server.pollTransmit(now()); t; t = server.pollTransmit(now())) {
      toClient.push(t.datagram.slice());
      if (measuring) sent++;
    }
    if (measuring) sendUs += cpuUs() - c0;

    // ---- client (receive side)
    c0 = cpuUs();
    for (const d of toClient.splice(0)) {
      clientEp.receive(d, S, now());
      if (measuring) received++;
    }
    for (let e = client.pollEvent(); e; e = client.pollEvent()) {
      if (e.type === 'closed') throw new Error(`client closed: ${e.info.reason} 0x${e.info.code.toString(16)}`);
    }
    if (sid >= 0) {
      for (let r = client.read(sid); r; r = client.read(sid)) {
        got += r.data.length;
        if (r.fin) fin = true;
        if (r.fin || r.data.length === 0) break;
      }
    }
    const tc = clientEp.nextTimeout();
    if (tc !== null && tc <= now()) clientEp.handleTimeout(now());
    for (let t = clientEp.pollTransmit(now()); t; t = clientEp.pollTransmit(now())) toServer.push(t.datagram.slice());
    if (measuring) recvUs += cpuUs() - c0;
    if (toClient.length === 0 && toServer.length === 0 && !fin) {
      // Nothing in flight: wait for the earliest timer (pacing, delayed ACK) without burning CPU in the sums.
      const next = Math.min(server.nextTimeout() ?? Infinity, clientEp.nextTimeout() ?? Infinity);
      const until = Math.min(next, now() + 5);
      while (Date.now() < until) {
        /* spin a little: sub-ms timers */
      }
    }
  }
  if (!fin || got !== bytes) throw new Error(`transfer incomplete: ${got} of ${bytes} bytes`);
  return { sendUs, recvUs, sent, received, bytes, wallMs: performance.now() - t0 };
}

async function child(provider: 'node' | 'noble', bytes: number, reps: number): Promise<void> {
  transfer(provider, Math.min(bytes, 2_000_000)); // warm-up (JIT)
  const out: Sample[] = [];
  for (let i = 0; i < reps; i++) out.push(transfer(provider, bytes));
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
}

export async function runCpuBench(opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const file = fileURLToPath(import.meta.url);
  for (const provider of ['node', 'noble'] as const) {
    const sendName = `cpu/send-us-per-packet [${provider}]`;
    const recvName = `cpu/recv-us-per-packet [${provider}]`;
    if (!selected(sendName, opts.filter) && !selected(recvName, opts.filter)) continue;
    const bytes = opts.quick ? (provider === 'node' ? 10_000_000 : 2_000_000) : provider === 'node' ? 50_000_000 : 10_000_000;
    const reps = opts.quick ? 2 : 3;
    log(`cpu: ${provider} ${bytes / 1e6} MB x${reps}`);
    const r = await runBounded(process.execPath, [...NODE_FLAGS, file, '--child', provider, String(bytes), String(reps)], { timeoutMs: 240_000 });
    const m = /^RESULT (.*)$/m.exec(r.stdout);
    if (!m) {
      const why = `child failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`;
      rows.push({ name: sendName, unit: 'µs/pkt', higherIsBetter: false, petrelMissing: why }, { name: recvName, unit: 'µs/pkt', higherIsBetter: false, petrelMissing: why });
      continue;
    }
    const samples = JSON.parse(m[1]!) as Sample[];
    const notes = `${bytes / 1e6} MB server → client in memory, ${PKT}-byte datagrams, ${provider} provider, CPU of that side's calls / datagrams`;
    rows.push({ name: sendName, unit: 'µs/pkt', higherIsBetter: false, petrel: samples.map((s) => s.sendUs / s.sent), notes, extra: { samples } });
    rows.push({ name: recvName, unit: 'µs/pkt', higherIsBetter: false, petrel: samples.map((s) => s.recvUs / s.received), notes });
  }
  return rows;
}

const argv = process.argv;
if (argv[1] && fileURLToPath(import.meta.url) === argv[1] && argv[2] === '--child') {
  child(argv[3] === 'noble' ? 'noble' : 'node', Number(argv[4]), Number(argv[5] ?? 2)).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
