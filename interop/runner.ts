/**
 * Local interop runner: Petrel's interop endpoint (interop/endpoint.ts) against real peers, each
 * case in its own network namespace (`unshare -n`, loopback only) so the peer's fixed port 443
 * never touches the host, checked the way quic-interop-runner checks: the downloaded files are
 * byte-equal, and the property under test really happened (Retry followed, session resumed, 0-RTT
 * accepted, key update, ChaCha20 negotiated, QUIC v2 used, Version Negotiation seen), read from
 * our endpoint's JSON report (our connection's events and stats). Prints a markdown matrix.
 *
 *   pnpm interop -- --peer quic-go --role both --tests handshake,transfer,retry
 *   options: --peer quic-go|ngtcp2|petrel (comma-separated)  --role client|server|both  --tests a,b,c  --keep (keep work dirs)
 *            --timeout SECONDS (per case, default 60)  --provider node|noble
 * "client" = Petrel client ↔ peer server; "server" = peer client ↔ Petrel server.
 * ngtcp2's examples (gtlsserver/gtlsclient) speak only h3: against them our endpoint runs with
 * HTTP=h3 (packages/h3), the test case's transport behaviour unchanged. Needs root (namespaces)
 * and ../shared/peers (setup.sh).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sharedPeers = path.resolve(repoRoot, '..', 'shared', 'peers');
export const PEERS_DIR = process.env.PEERS_DIR ?? path.join(os.homedir(), '.cache', 'quic-peers');

export type Role = 'client' | 'server';
export type Status = 'pass' | 'fail' | 'unsupported' | 'needs-h3' | 'skipped';
export interface CaseResult {
  peer: string;
  test: string;
  role: Role;
  status: Status;
  detail: string;
  ms: number;
  dir?: string;
}

export const ALL_TESTS = [
  'handshake', 'transfer', 'multiplexing', 'retry', 'resumption', 'zerortt', 'chacha20', 'keyupdate', 'v2', 'versionnegotiation', 'multiconnect', 'http3',
];
/** Test cases we run against ngtcp2's h3-only examples (our endpoint with HTTP=h3). */
const NGTCP2_TESTS = new Set(['handshake', 'transfer', 'multiplexing', 'http3', 'retry', 'chacha20', 'keyupdate', 'resumption', 'zerortt', 'multiconnect']);
/** Test cases the quic-go 0.29 interop endpoints implement (others exit 127). */
const QUIC_GO_TESTS = new Set(['handshake', 'transfer', 'retry', 'resumption', 'zerortt', 'multiconnect', 'chacha20', 'keyupdate', 'versionnegotiation', 'http3']);

interface Report {
  connections: {
    version: number;
    suite: string | null;
    resumed: boolean;
    earlyDataAccepted: boolean | null;
    retry: boolean | null;
    keyUpdates: { local: number; peer: number };
    close: string | null;
  }[];
  server: Record<string, number> | null;
  client: { versionNegotiationReceived: number };
  errors: string[];
}

/** Files served for each test (name → size), like the official runner's choices, smaller where it does not matter. */
export function filesFor(test: string, transferMB = 3): Record<string, number> {
  const kb = 1024;
  switch (test) {
    case 'handshake':
    case 'v2':
    case 'versionnegotiation':
      return { 'hello.txt': 1 * kb };
    case 'transfer':
    case 'http3':
      return { 'f1.bin': Math.round(transferMB * 1024 * kb), 'f2.bin': 512 * kb };
    case 'multiplexing':
      return Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`m${i}.bin`, 32 + i * 37]));
    case 'retry':
      return { 'retry.bin': 10 * kb };
    case 'resumption':
      return { 'r1.bin': 5 * kb, 'r2.bin': 5 * kb, 'r3.bin': 7 * kb };
    case 'zerortt':
      return Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`z${i}.bin`, 2 * kb + i]));
    case 'chacha20':
      return { 'cc.bin': 1024 * kb };
    case 'keyupdate':
      return { 'ku.bin': Math.round(transferMB * 1024 * kb) };
    case 'multiconnect':
      return Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`c${i}.bin`, kb + i]));
    default:
      return { 'x.bin': kb };
  }
}

function checkProperty(test: string, role: Role, r: Report | null, nFiles: number): string | null {
  if (!r) return 'no report from the Petrel endpoint';
  if (test === 'versionnegotiation' && role === 'server') {
    return (r.server?.versionNegotiationsSent ?? 0) >= 1 ? null : 'our server sent no Version Negotiation';
  }
  const conns = r.connections;
  const first = conns[0];
  if (!first) return 'no connection recorded';
  const resumedConn = conns.slice(1).find((c) => c.resumed);
  switch (test) {
    case 'handshake':
    case 'transfer':
    case 'multiplexing':
    case 'http3':
    case 'chacha20':
    case 'keyupdate':
    case 'v2':
      if (conns.length !== 1) return `expected 1 connection, saw ${conns.length}`;
  }
  switch (test) {
    case 'retry':
      if (role === 'client') return first.retry === true ? null : 'our client did not follow a Retry';
      return (r.server?.retriesSent ?? 0) >= 1 ? null : 'our server sent no Retry';
    case 'resumption':
      if (conns.length < 2) return `expected 2 connections, saw ${conns.length}`;
      return resumedConn ? null : 'second connection not resumed';
    case 'zerortt':
      if (conns.length < 2) return `expected 2 connections, saw ${conns.length}`;
      if (!resumedConn) return 'second connection not resumed';
      return resumedConn.earlyDataAccepted ? null : '0-RTT not accepted';
    case 'chacha20':
      return first.suite === 'TLS_CHACHA20_POLY1305_SHA256' ? null : `suite ${first.suite}`;
    case 'keyupdate':
      if (role === 'client') return first.keyUpdates.local >= 1 ? null : 'our client did not update keys';
      return first.keyUpdates.peer + first.keyUpdates.local >= 1 ? null : 'no key update seen';
    case 'v2':
      return first.version === 0x6b3343cf ? null : `version 0x${first.version.toString(16)}, not v2`;
    case 'versionnegotiation':
      if (role === 'client') return r.client.versionNegotiationReceived >= 1 ? null : 'no Version Negotiation packet received';
      return (r.server?.versionNegotiationsSent ?? 0) >= 1 ? null : 'our server sent no Version Negotiation';
    case 'multiconnect':
      return conns.length === nFiles ? null : `expected ${nFiles} connections, saw ${conns.length}`;
  }
  return null;
}

function readReport(file: string): Report | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
  } catch {
    return null;
  }
}

function which(exe: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const f = path.join(d, exe);
    if (d && fs.existsSync(f)) return f;
  }
  return null;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutS: number, logFile: string): Promise<number> {
  return new Promise((resolve) => {
    const out = fs.openSync(logFile, 'a');
    const child = spawn('timeout', ['-k', '3', String(timeoutS), cmd, ...args], { env, stdio: ['ignore', out, out], detached: true });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    process.once('exit', kill);
    child.on('exit', (code, signal) => {
      process.off('exit', kill);
      fs.closeSync(out);
      kill(); // stragglers in the group
      resolve(code ?? (signal ? 128 : 1));
    });
    child.on('error', () => resolve(126));
  });
}

export interface RunOptions {
  peer: string;
  tests: string[];
  roles: Role[];
  timeoutS?: number;
  keep?: boolean;
  provider?: 'node' | 'noble';
  transferMB?: number;
  log?: (line: string) => void;
}

/** Why the local interop cannot run here, or null. */
export function unavailable(peer: string): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network and mount namespaces)';
  if (peer === 'quic-go') {
    if (!fs.existsSync(path.join(sharedPeers, 'quic-go'))) return `${sharedPeers}/quic-go wrapper missing`;
    if (!fs.existsSync(path.join(PEERS_DIR, 'bin', 'quic-go-server'))) return `quic-go endpoints not built in ${PEERS_DIR}/bin (run ../shared/peers/setup.sh)`;
  }
  if (peer === 'petrel') return process.getuid?.() !== 0 ? 'needs root (network namespaces)' : null;
  if (peer === 'ngtcp2' && (!which('gtlsserver') || !which('gtlsclient'))) return 'gtlsserver/gtlsclient not found in PATH';
  if (!fs.existsSync(path.join(PEERS_DIR, 'certs', 'cert.pem'))) return `certificates missing in ${PEERS_DIR}/certs`;
  return null;
}

export async function runCase(peer: string, test: string, role: Role, o: RunOptions): Promise<CaseResult> {
  const t0 = Date.now();
  const res = (status: Status, detail: string, dir?: string): CaseResult => ({ peer, test, role, status, detail, ms: Date.now() - t0, dir });
  if (peer !== 'quic-go' && peer !== 'ngtcp2' && peer !== 'petrel') return res('skipped', `unknown peer ${peer}`);
  if (peer === 'petrel' && role === 'server') return res('unsupported', 'Petrel ↔ Petrel: see the client column');
  if (peer === 'quic-go' && !QUIC_GO_TESTS.has(test)) return res('unsupported', `quic-go 0.29 has no "${test}" test case`);
  if (peer === 'ngtcp2' && !NGTCP2_TESTS.has(test)) return res('unsupported', `ngtcp2 0.12 examples: no RFC 9369 v2, no VN test mode`);
  const why = unavailable(peer);
  if (why) return res('skipped', why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `petrel-interop-${test}-${role}-`));
  const www = path.join(dir, 'www');
  const dl = path.join(dir, 'downloads');
  const logs = path.join(dir, 'logs');
  for (const d of [www, dl, logs, path.join(logs, 'qlog')]) fs.mkdirSync(d, { recursive: true });
  const files = filesFor(test, o.transferMB);
  for (const [name, size] of Object.entries(files)) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i += 65536) b.set(crypto.getRandomValues(new Uint8Array(Math.min(65536, size - i))), i);
    fs.writeFileSync(path.join(www, name), b);
  }
  const urls = Object.keys(files).map((f) => `https://127.0.0.1:443/${f}`);
  const report = path.join(dir, 'petrel-report.json');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PEERS_DIR,
    TESTCASE: test,
    PETREL_PROVIDER: o.provider ?? 'node',
    REPORT: report,
    SSLKEYLOGFILE: path.join(logs, 'petrel-keys.log'),
    QLOGDIR: path.join(logs, 'qlog'),
    NO_SIM_WAIT: '1',
  };
  if (peer === 'ngtcp2') env.HTTP = 'h3';
  const quicGo = path.join(sharedPeers, 'quic-go');
  const endpoint = path.join(repoRoot, 'interop', 'run_endpoint.sh');
  // Wait for UDP 443 to be bound, or for the background server ($srv) to have exited (e.g. 127).
  const waitPort = 'for i in $(seq 200); do ss -Hlun "sport = :443" | grep -q . && break; kill -0 $srv 2>/dev/null || break; sleep 0.05; done';
  const certs = path.join(PEERS_DIR, 'certs');
  let peerServer: string;
  let peerClient: string;
  if (peer === 'petrel') {
    // Self-interop (v2, multiplexing, versionnegotiation have no other peer here): our server as the peer.
    peerServer = `ROLE=server WWW=${sh(www)} CERTS=${sh(certs)} PORT=443 HOST=127.0.0.1 REPORT=${sh(path.join(logs, 'peer-report.json'))} ${sh(endpoint)}`;
    peerClient = '';
  } else if (peer === 'quic-go') {
    peerServer = `${sh(quicGo)} server ${sh(test)} ${sh(www)} ${sh(logs)}`;
    peerClient = `QUIC_GO_LOGS=${sh(logs)} ${sh(quicGo)} client ${sh(test)} ${sh(dl)} ${urls.map(sh).join(' ')}`;
  } else {
    // ngtcp2 0.12 examples (h3 only): flags per test case.
    peerServer = `gtlsserver -q ${test === 'retry' ? '-V ' : ''}-d ${sh(www)} 127.0.0.1 443 ${sh(path.join(certs, 'priv.key'))} ${sh(path.join(certs, 'cert.pem'))}`;
    const base = `gtlsclient -q --exit-on-all-streams-close --download ${sh(dl)}`;
    const extra =
      test === 'chacha20'
        ? ' --ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305'
        : test === 'keyupdate'
          ? ' --key-update=10ms'
          : '';
    const one = (u: string[], more = '') => `${base}${extra}${more} 127.0.0.1 443 ${u.map(sh).join(' ')}`;
    if (test === 'resumption' || test === 'zerortt') {
      const sess = ` --session-file=${sh(path.join(logs, 'session.pem'))} --tp-file=${sh(path.join(logs, 'tp.txt'))}${test === 'resumption' ? ' --disable-early-data' : ''}`;
      peerClient = `${one([urls[0]!], sess)} && ${one(urls.slice(1), sess)}`;
    } else if (test === 'multiconnect') peerClient = urls.map((u) => one([u])).join(' && ');
    else peerClient = one(urls);
  }
  let script: string;
  if (role === 'client') {
    // peer server in the background, our client in the foreground.
    script = [
      'ip link set lo up',
      `${peerServer} > ${sh(path.join(logs, 'peer.log'))} 2>&1 & srv=$!`,
      waitPort,
      `if ! kill -0 $srv 2>/dev/null; then wait $srv; rc=$?; [ $rc = 127 ] && exit 127; echo "peer server exited $rc"; exit 200; fi`,
      `ROLE=client DOWNLOADS=${sh(dl)} REQUESTS=${sh(urls.join(' '))} ${sh(endpoint)}; rc=$?`,
      'kill $srv 2>/dev/null; wait $srv 2>/dev/null',
      'exit $rc',
    ].join('\n');
  } else {
    script = [
      'ip link set lo up',
      `ROLE=server WWW=${sh(www)} CERTS=${sh(certs)} PORT=443 HOST=127.0.0.1 ${sh(endpoint)} > ${sh(path.join(logs, 'petrel-server.log'))} 2>&1 & srv=$!`,
      waitPort,
      `if ! kill -0 $srv 2>/dev/null; then wait $srv; rc=$?; [ $rc = 127 ] && exit 127; echo "petrel server exited $rc"; exit 201; fi`,
      `(${peerClient}) > ${sh(path.join(logs, 'peer.log'))} 2>&1; rc=$?`,
      'kill -TERM $srv 2>/dev/null; wait $srv 2>/dev/null',
      'exit $rc',
    ].join('\n');
  }
  const code = await run('unshare', ['-n', 'bash', '-c', script], env, o.timeoutS ?? 60, path.join(logs, 'run.log'));
  const finish = (r: CaseResult): CaseResult => {
    if (!o.keep && r.status !== 'fail') fs.rmSync(dir, { recursive: true, force: true });
    return r;
  };
  const tail = (f: string) => {
    try {
      const lines = fs.readFileSync(path.join(logs, f), 'utf8').trim().split('\n');
      const err = lines.filter((l) => /failed|error|Error/.test(l) && !/^\s+at /.test(l));
      return (err.length ? err.slice(0, 2) : lines.slice(-3)).join(' | ').slice(0, 300);
    } catch {
      return '';
    }
  };
  // quic-go's client versionnegotiation case only starts with a reserved version and expects to fail
  // with a version negotiation error after a VN listing v1 (it never retries): a VN from us that it
  // parsed is the pass criterion here (plus our server's counter, checked below); no files expected.
  if (test === 'versionnegotiation' && role === 'server') {
    let peerLog = '';
    try {
      peerLog = fs.readFileSync(path.join(logs, 'peer.log'), 'utf8');
    } catch {
      /* none */
    }
    if (!/server offered \[v1/.test(peerLog)) return finish(res('fail', `the quic-go client did not report our Version Negotiation: ${tail('peer.log')}`, dir));
    const why3 = checkProperty(test, role, readReport(report), 0);
    return finish(why3 ? res('fail', why3, dir) : res('pass', 'quic-go client saw our VN (it does not retry with v1)', dir));
  }
  if (code === 127) return finish(res('unsupported', role === 'client' ? 'unsupported by one side (exit 127)' : 'unsupported (exit 127)', dir));
  if (code === 124 || code === 137) return finish(res('fail', `timed out after ${o.timeoutS ?? 60} s; ${tail('run.log')} ${tail('peer.log')}`, dir));
  if (code !== 0) return finish(res('fail', `exit ${code}: ${tail('run.log')} ${tail('peer.log')} ${tail('petrel-server.log')}`, dir));
  for (const name of Object.keys(files)) {
    const a = path.join(www, name);
    const b = path.join(dl, name);
    if (!fs.existsSync(b)) return finish(res('fail', `${name} not downloaded`, dir));
    if (!fs.readFileSync(a).equals(fs.readFileSync(b))) return finish(res('fail', `${name} differs (${fs.statSync(b).size} of ${fs.statSync(a).size} bytes)`, dir));
  }
  const why2 = checkProperty(test, role, readReport(report), Object.keys(files).length);
  if (why2) return finish(res('fail', why2, dir));
  // 0-RTT really carried data: our qlog shows 0-RTT packets sent (our hq client) or received (our server).
  if (test === 'zerortt' && !(peer === 'ngtcp2' && role === 'client')) {
    const q = path.join(logs, 'qlog');
    const want = role === 'client' ? 'transport:packet_sent' : 'transport:packet_received';
    const seen = fs.readdirSync(q).some((f) => fs.readFileSync(path.join(q, f), 'utf8').split('\x1e').some((rec) => rec.includes(want) && rec.includes('"0RTT"')));
    if (!seen) return finish(res('fail', `no 0-RTT packet ${role === 'client' ? 'sent' : 'received'} in our qlog`, dir));
  }
  return finish(res('pass', '', dir));
}

export async function runInterop(o: RunOptions): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const test of o.tests) {
    for (const role of o.roles) {
      const r = await runCase(o.peer, test, role, o);
      o.log?.(`${r.status.padEnd(11)} ${o.peer} ${role.padEnd(6)} ${test.padEnd(18)} ${(r.ms / 1000).toFixed(1)} s ${r.detail}${r.status === 'fail' && r.dir ? ` (logs: ${r.dir})` : ''}`);
      out.push(r);
    }
  }
  return out;
}

const ICON: Record<Status, string> = { pass: '✅ pass', fail: '❌ fail', unsupported: '➖ unsupported', 'needs-h3': '⏳ needs h3', skipped: '⏭ skipped' };

export function matrix(results: CaseResult[]): string {
  const cols: { peer: string; role: Role }[] = [];
  for (const r of results) if (!cols.some((c) => c.peer === r.peer && c.role === r.role)) cols.push({ peer: r.peer, role: r.role });
  const tests = [...new Set(results.map((r) => r.test))];
  const head = cols.map((c) => (c.role === 'client' ? `Petrel client → ${c.peer} server` : `${c.peer} client → Petrel server`));
  const lines = [`| test | ${head.join(' | ')} |`, `|---|${cols.map(() => '---').join('|')}|`];
  for (const t of tests) {
    const cells = cols.map((c) => {
      const r = results.find((x) => x.test === t && x.peer === c.peer && x.role === c.role);
      if (!r) return '';
      return `${ICON[r.status]}${r.status === 'pass' ? ` (${(r.ms / 1000).toFixed(1)} s)` : r.detail ? ` — ${r.detail.replace(/\|/g, '/')}` : ''}`;
    });
    lines.push(`| ${t} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const peers = (get('peer') ?? 'quic-go').split(',');
  const roleArg = get('role') ?? 'both';
  const roles: Role[] = roleArg === 'both' ? ['client', 'server'] : [roleArg as Role];
  if (!roles.every((r) => r === 'client' || r === 'server')) throw new Error('--role must be client, server or both');
  const tests = (get('tests') ?? ALL_TESTS.join(',')).split(',').filter(Boolean);
  const all: CaseResult[] = [];
  for (const peer of peers) {
    const why = peer === 'ngtcp2' ? null : unavailable(peer);
    if (why) console.log(`SKIPPED: ${peer}: ${why}`);
    all.push(
      ...(await runInterop({
        peer,
        tests,
        roles,
        timeoutS: Number(get('timeout') ?? 60),
        keep: argv.includes('--keep'),
        provider: (get('provider') as 'node' | 'noble' | undefined) ?? 'node',
        transferMB: Number(get('size-mb') ?? 3),
        log: (l) => console.log(l),
      })),
    );
  }
  console.log('');
  console.log(matrix(all));
  process.exitCode = all.some((r) => r.status === 'fail') ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
