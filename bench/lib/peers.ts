/**
 * Peer figures measured in the same run as Petrel's (what /work/shared/peers/bench-peers.sh
 * measures, driven from Node with bounded processes), and helpers that point a peer client at
 * any server (e.g. Petrel's) so that both columns come from the same tool.
 *
 * Rows (PEER_ROWS): 'quic/bulk-<N>MB' (Gbit/s: one file over h3 / hq-interop, client wall time
 * start to exit, handshake included), 'quic/handshakes' (conn/s: sequential connections each
 * fetching 1 kB), 'tls/tcp-handshakes' (conn/s: `openssl s_time -new -tls1_3` full handshakes).
 * A case module that measures Petrel the same way returns a row with the same name.
 *
 * quic-go's endpoints bind UDP *:443, so each quic-go run gets its own network namespace
 * (`unshare -n`, root): no clash with anything else on the host.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, peers, runBounded, spawnPeer, waitForPort, type PeerProcess } from '../../test/support/peers.js';
import { selected, type BenchOptions, type BenchRow, type PeerFigure } from './types.js';

export const PEER_ROWS = {
  bulk: (mb: number) => `quic/bulk-${mb}MB`,
  handshakes: 'quic/handshakes',
  tlsTcpHandshakes: 'tls/tcp-handshakes',
} as const;

export interface PeerBenchParams {
  bulkSizesMB: number[];
  bulkReps: number;
  handshakes: number;
  tlsSeconds: number;
}

export function peerParams(quick: boolean): PeerBenchParams {
  return quick ? { bulkSizesMB: [10], bulkReps: 2, handshakes: 20, tlsSeconds: 3 } : { bulkSizesMB: [10, 100], bulkReps: 3, handshakes: 200, tlsSeconds: 10 };
}

const missing = (why: string): { missing: string } => ({ missing: why });

/** A scratch folder with www/{f<N>M, small} and dl/, removed by cleanup(). */
export function makeWww(sizesMB: number[]): { dir: string; www: string; dl: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-'));
  const www = path.join(dir, 'www');
  const dl = path.join(dir, 'dl');
  fs.mkdirSync(www);
  fs.mkdirSync(dl);
  for (const mb of sizesMB) {
    const fd = fs.openSync(path.join(www, `f${mb}M`), 'w');
    const chunk = Buffer.alloc(1 << 20);
    let x = 0x9e3779b9 ^ mb;
    const total = mb * 1_000_000;
    for (let written = 0; written < total; ) {
      // Cheap xorshift fill: incompressible enough, no crypto needed.
      for (let k = 0; k < chunk.length; k += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk.writeInt32LE(x | 0, k);
      }
      written += fs.writeSync(fd, chunk, 0, Math.min(chunk.length, total - written));
    }
    fs.closeSync(fd);
  }
  fs.writeFileSync(path.join(www, 'small'), Buffer.alloc(1000, 0x61));
  return { dir, www, dl, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    if (sa.size !== sb.size) return false;
    return fs.readFileSync(a).equals(fs.readFileSync(b));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// ngtcp2 (gtlsserver / gtlsclient, h3 only)

export function startGtlsServer(www: string, port: number, lifetimeMs = 300_000): PeerProcess | { missing: string } {
  const p = peers();
  if (!p.bins.gtlsserver) return missing(p.missing.gtlsserver ?? 'gtlsserver not found');
  if (p.missing.certs) return missing(p.missing.certs);
  return spawnPeer(p.bins.gtlsserver, ['-q', '-d', www, '127.0.0.1', String(port), p.certs.key, p.certs.cert], { lifetimeMs });
}

/**
 * Downloads https://127.0.0.1:PORT/FILE with gtlsclient (h3) into `dl`; resolves to the client's
 * wall time in ms, or throws with its output. Works against any h3 server (ngtcp2's or Petrel's).
 */
export async function gtlsclientGet(port: number, file: string, dl: string | null, timeoutMs = 120_000): Promise<number> {
  const bin = peers().bins.gtlsclient;
  if (!bin) throw new Error('gtlsclient unavailable');
  const args = ['-q', '--exit-on-all-streams-close', ...(dl ? ['--download', dl] : []), '127.0.0.1', String(port), `https://127.0.0.1:${port}/${file}`];
  const r = await runBounded(bin, args, { timeoutMs, maxOutput: 4096 });
  if (r.code !== 0 || r.timedOut) throw new Error(`gtlsclient exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${(r.stdout + r.stderr).slice(-300)}`);
  return r.ms;
}

async function ngtcp2Bulk(w: ReturnType<typeof makeWww>, mb: number, reps: number): Promise<PeerFigure> {
  const samples: number[] = [];
  const errors: string[] = [];
  for (let i = 0; i < reps; i++) {
    const port = await freePort('udp');
    const srv = startGtlsServer(w.www, port);
    if (!('pid' in srv)) return srv;
    try {
      await waitForPort(port, 'udp', { proc: srv });
      const out = path.join(w.dl, `f${mb}M`);
      fs.rmSync(out, { force: true });
      const ms = await gtlsclientGet(port, `f${mb}M`, w.dl);
      if (!sameFile(path.join(w.www, `f${mb}M`), out)) throw new Error('downloaded file differs');
      fs.rmSync(out, { force: true });
      samples.push((mb * 8) / ms); // Mbit/ms = Gbit/s
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    } finally {
      await srv.kill();
    }
  }
  return samples.length ? samples : missing(`all runs failed: ${errors[0]}`);
}

async function ngtcp2Handshakes(w: ReturnType<typeof makeWww>, n: number): Promise<PeerFigure> {
  const port = await freePort('udp');
  const srv = startGtlsServer(w.www, port);
  if (!('pid' in srv)) return srv;
  try {
    await waitForPort(port, 'udp', { proc: srv });
    // One bash loop of N client processes, as bench-peers.sh does (process start-up included).
    const script = 'f=0; for i in $(seq "$1"); do timeout 10 "$2" -q --exit-on-all-streams-close 127.0.0.1 "$3" "https://127.0.0.1:$3/small" >/dev/null 2>&1 || f=$((f+1)); done; echo "FAILS $f"';
    const r = await runBounded('bash', ['-c', script, '_', String(n), peers().bins.gtlsclient!, String(port)], { timeoutMs: n * 10_000 + 5000 });
    const fails = Number(/FAILS (\d+)/.exec(r.stdout)?.[1] ?? n);
    if (fails === n) return missing(`every connection failed`);
    return [((n - fails) * 1000) / r.ms];
  } finally {
    await srv.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// quic-go (interop endpoints through the wrapper, each run in its own network namespace)

const QG_SCRIPT = `
set -u
qg=$1 tc=$2 www=$3 dl=$4; shift 4
ip link set lo up || exit 90
"$qg" server "$tc" "$www" >/dev/null 2>&1 & srv=$!
for _ in $(seq 200); do ss -Hlun 'sport = :443' | grep -q . && break; sleep 0.025; done
s=$(date +%s%N)
timeout 300 "$qg" client "$tc" "$dl" "$@" >"$dl/.client.log" 2>&1; rc=$?
e=$(date +%s%N)
kill $srv 2>/dev/null; wait $srv 2>/dev/null
echo "WALL_NS $((e - s)) RC $rc"
tail -3 "$dl/.client.log"; rm -f "$dl/.client.log"
`;

/** Runs the quic-go client against the quic-go server (TESTCASE tc) in a fresh netns; wall ms of the client. */
async function quicGoRun(tc: string, www: string, dl: string, urls: string[], timeoutMs: number): Promise<number> {
  const qg = peers().bins.quicGo!;
  const r = await runBounded('unshare', ['-n', 'bash', '-c', QG_SCRIPT, '_', qg, tc, www, dl, ...urls], { timeoutMs, maxOutput: 8192 });
  const m = /WALL_NS (\d+) RC (\d+)/.exec(r.stdout);
  if (!m || r.timedOut) throw new Error(`quic-go ${tc}: ${r.timedOut ? 'timed out' : `exit ${r.code}`}: ${(r.stdout + r.stderr).slice(-300)}`);
  if (m[2] !== '0') throw new Error(`quic-go client ${tc} exit ${m[2]}: ${r.stdout.slice(m.index + m[0].length).trim().slice(-300)}`);
  return Number(m[1]) / 1e6;
}

function quicGoMissing(): { missing: string } | null {
  const p = peers();
  if (!p.bins.quicGo) return missing(p.missing.quicGo ?? 'quic-go unavailable');
  if (process.getuid?.() !== 0) return missing('needs root for unshare -n');
  return null;
}

async function quicGoBulk(w: ReturnType<typeof makeWww>, mb: number, reps: number): Promise<PeerFigure> {
  const m = quicGoMissing();
  if (m) return m;
  const samples: number[] = [];
  const errors: string[] = [];
  for (let i = 0; i < reps; i++) {
    const out = path.join(w.dl, `f${mb}M`);
    fs.rmSync(out, { force: true });
    try {
      const ms = await quicGoRun('transfer', w.www, w.dl, [`https://127.0.0.1:443/f${mb}M`], 180_000);
      if (!sameFile(path.join(w.www, `f${mb}M`), out)) throw new Error('downloaded file differs');
      samples.push((mb * 8) / ms);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    } finally {
      fs.rmSync(out, { force: true });
    }
  }
  return samples.length ? samples : missing(`all runs failed: ${errors[0]}`);
}

async function quicGoHandshakes(w: ReturnType<typeof makeWww>, n: number): Promise<PeerFigure> {
  const m = quicGoMissing();
  if (m) return m;
  try {
    const ms = await quicGoRun('multiconnect', w.www, w.dl, new Array(n).fill('https://127.0.0.1:443/small'), n * 1000 + 30_000);
    return [(n * 1000) / ms];
  } catch (e) {
    return missing(e instanceof Error ? e.message : String(e));
  }
}

// ---------------------------------------------------------------------------------------------
// TLS 1.3 over TCP: openssl s_time against openssl s_server and a Node tls server

/**
 * Full TLS 1.3 handshakes per second that `openssl s_time -new` achieves against 127.0.0.1:port
 * during `seconds` (connections counted by s_time / our wall time of the s_time process).
 * Works against any TLS server, Petrel's included.
 */
export async function sTimeRate(port: number, seconds: number): Promise<number> {
  const bin = peers().bins.openssl;
  if (!bin) throw new Error('openssl unavailable');
  const r = await runBounded(bin, ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-tls1_3', '-time', String(seconds)], { timeoutMs: seconds * 1000 + 30_000 });
  // "N connections in T real seconds, B bytes read per connection" (T whole seconds: use our wall clock).
  const n = Number(/(\d+) connections in \d+ real seconds/.exec(r.stdout)?.[1] ?? NaN);
  if (!Number.isFinite(n) || n === 0) throw new Error(`s_time: ${(r.stdout + r.stderr).trim().split('\n').slice(-2).join(' / ')}`);
  return (n * 1000) / r.ms;
}

const NODE_TLS_SERVER = `
const tls = require('tls'), fs = require('fs');
const [cert, key, port] = process.argv.slice(1);
tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: 'TLSv1.3' },
  (s) => { s.on('error', () => {}); s.end(); }).listen(+port, '127.0.0.1');
`;

async function tlsServerRate(kind: 'openssl' | 'node', seconds: number): Promise<PeerFigure> {
  const p = peers();
  if (!p.bins.openssl) return missing(p.missing.openssl ?? 'openssl not found (s_time is the client)');
  if (p.missing.certs) return missing(p.missing.certs);
  const port = await freePort('tcp');
  const srv =
    kind === 'openssl'
      ? spawnPeer(p.bins.openssl, ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', p.certs.selfsigned, '-key', p.certs.key, '-www', '-quiet'], { lifetimeMs: seconds * 1000 + 60_000 })
      : spawnPeer(process.execPath, ['-e', NODE_TLS_SERVER, p.certs.selfsigned, p.certs.key, String(port)], { lifetimeMs: seconds * 1000 + 60_000 });
  try {
    await waitForPort(port, 'tcp', { proc: srv });
    return [await sTimeRate(port, seconds)];
  } catch (e) {
    return missing(e instanceof Error ? e.message : String(e));
  } finally {
    await srv.kill();
  }
}

// ---------------------------------------------------------------------------------------------

/** The peer rows (no Petrel figures: those come from the case modules with the same row names). */
export async function runPeerBench(opts: BenchOptions): Promise<BenchRow[]> {
  const prm = peerParams(opts.quick);
  const rows: BenchRow[] = [];
  const bulkRows = prm.bulkSizesMB.map(PEER_ROWS.bulk).filter((n) => selected(n, opts.filter));
  const wantHs = selected(PEER_ROWS.handshakes, opts.filter);
  if (bulkRows.length || wantHs) {
    const w = makeWww(prm.bulkSizesMB.filter((mb) => bulkRows.includes(PEER_ROWS.bulk(mb))));
    try {
      for (const mb of prm.bulkSizesMB) {
        const name = PEER_ROWS.bulk(mb);
        if (!bulkRows.includes(name)) continue;
        log(`${name}: ngtcp2 x${prm.bulkReps} ...`);
        const ng = await ngtcp2Bulk(w, mb, prm.bulkReps);
        log(`${name}: quic-go x${prm.bulkReps} ...`);
        const qg = await quicGoBulk(w, mb, prm.bulkReps);
        rows.push({ name, unit: 'Gbit/s', peers: { ngtcp2: ng, 'quic-go': qg }, notes: `${mb} MB file, one connection, client wall time (h3 for ngtcp2, hq-interop for quic-go), median of ${prm.bulkReps}` });
      }
      if (wantHs) {
        log(`${PEER_ROWS.handshakes}: ngtcp2 x${prm.handshakes} ...`);
        const ng = await ngtcp2Handshakes(w, prm.handshakes);
        log(`${PEER_ROWS.handshakes}: quic-go multiconnect x${prm.handshakes} ...`);
        const qg = await quicGoHandshakes(w, prm.handshakes);
        rows.push({ name: PEER_ROWS.handshakes, unit: 'conn/s', peers: { ngtcp2: ng, 'quic-go': qg }, notes: `${prm.handshakes} sequential connections fetching 1 kB (ngtcp2: one process each; quic-go: multiconnect in one process)` });
      }
    } finally {
      w.cleanup();
    }
  }
  if (selected(PEER_ROWS.tlsTcpHandshakes, opts.filter)) {
    log(`${PEER_ROWS.tlsTcpHandshakes}: openssl s_time ${prm.tlsSeconds}s x2 ...`);
    const os_ = await tlsServerRate('openssl', prm.tlsSeconds);
    const nd = await tlsServerRate('node', prm.tlsSeconds);
    rows.push({ name: PEER_ROWS.tlsTcpHandshakes, unit: 'conn/s', peers: { 'openssl-s_server': os_, 'node-tls': nd }, notes: `openssl s_time -new -tls1_3 for ${prm.tlsSeconds}s, ECDSA P-256 self-signed; client and server share the cores` });
  }
  return rows;
}

function log(s: string): void {
  process.stderr.write(`  ${s}\n`);
}

/** Versions of the installed peers (for the results' machine info). */
export async function peerVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const r = await runBounded('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'ngtcp2-server', 'ngtcp2-client', 'golang-github-lucas-clemente-quic-go-dev', 'openssl', 'gnutls-bin'], { timeoutMs: 5000 }).catch(() => null);
  for (const line of r?.stdout.split('\n') ?? []) {
    const [k, v] = line.trim().split(' ');
    if (k && v) out[k] = v;
  }
  const bin = peers().bins.openssl;
  if (bin) {
    const v = await runBounded(bin, ['version'], { timeoutMs: 5000 }).catch(() => null);
    if (v) out['openssl version'] = v.stdout.trim();
  }
  return out;
}
