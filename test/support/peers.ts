/**
 * Real peers (OpenSSL, GnuTLS, ngtcp2, quic-go) for interop tests and benches, and helpers to run
 * them with a bounded lifetime on 127.0.0.1.
 *
 *   const p = peers();                       // { dir, error, certs, bins }
 *   const srv = requirePeer('gtlsserver');   // path, or null after printing "SKIPPED: ..."
 *   if (!srv) return;                        // (the runner surfaces SKIPPED: lines)
 *   const port = await freePort('udp');
 *   const proc = spawnPeer(srv, ['-q', '-d', www, '127.0.0.1', String(port), p.certs.key, p.certs.cert],
 *                          { lifetimeMs: 10_000 });
 *   try { await waitForPort(port, 'udp'); ... } finally { await proc.kill(); }
 *   // or: await withPeer(cmd, args, { lifetimeMs, port, proto }, async (proc) => { ... });
 *   const r = await runBounded('openssl', ['version'], { timeoutMs: 5000 });
 *
 * Peer processes run under coreutils `timeout` in their own process group, so they die at the
 * end of their lifetime even if the test process is SIGKILLed; kill() signals the whole group.
 * PEERS_DIR comes from the test runner (scripts/test.mjs runs ../shared/peers/setup.sh); when
 * that failed, PETREL_PEERS_ERROR says why and every requirePeer() skips with that reason.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** /work/shared/peers (setup.sh, bench-peers.sh, the quic-go wrapper). */
export const sharedPeersDir = path.resolve(repoRoot, '..', 'shared', 'peers');

export interface PeerCerts {
  /** CA certificate that signs `cert`/`leaf` (PEM). */
  ca: string;
  /** Leaf + CA chain (PEM), as QUIC servers serve it. */
  cert: string;
  /** Leaf only (PEM). */
  leaf: string;
  /** Self-signed certificate with the same key (PEM). */
  selfsigned: string;
  /** ECDSA P-256 private key of leaf/cert/selfsigned (PEM). */
  key: string;
}

export interface PeerBins {
  gtlsserver: string | null;
  gtlsclient: string | null;
  openssl: string | null;
  gnutlsServ: string | null;
  gnutlsCli: string | null;
  /** The /work/shared/peers/quic-go wrapper (needs root and the built endpoints). */
  quicGo: string | null;
}
export type PeerName = keyof PeerBins | 'certs';

export interface Peers {
  /** PEERS_DIR (certificates and built binaries), or null if unavailable. */
  dir: string | null;
  /** Why peers are unavailable as a whole (PETREL_PEERS_ERROR or a missing PEERS_DIR), else null. */
  error: string | null;
  certs: PeerCerts;
  bins: PeerBins;
  /** Per-peer reason when a binary is null. */
  missing: Partial<Record<PeerName, string>>;
}

let cached: Peers | undefined;

/** Looks up every peer once (PATH, PEERS_DIR/bin) and returns paths; missing ones are null. */
export function peers(): Peers {
  if (cached) return cached;
  const missing: Partial<Record<PeerName, string>> = {};
  let error: string | null = process.env.PETREL_PEERS_ERROR || null;
  let dir: string | null = process.env.PEERS_DIR || path.join(os.homedir(), '.cache', 'quic-peers');
  if (!fs.existsSync(dir)) {
    error ??= `PEERS_DIR ${dir} does not exist (run ../shared/peers/setup.sh or use scripts/test.mjs)`;
    dir = null;
  }
  const certDir = dir ? path.join(dir, 'certs') : '/nonexistent';
  const certs: PeerCerts = {
    ca: path.join(certDir, 'ca.pem'),
    cert: path.join(certDir, 'cert.pem'),
    leaf: path.join(certDir, 'leaf.pem'),
    selfsigned: path.join(certDir, 'selfsigned.pem'),
    key: path.join(certDir, 'priv.key'),
  };
  const badCert = Object.values(certs).find((f) => !fs.existsSync(f));
  if (badCert) missing.certs = error ?? `certificate ${badCert} not found`;

  const extra = dir ? [path.join(dir, 'bin')] : [];
  const look = (name: PeerName, exe: string): string | null => {
    const p = which(exe, extra);
    if (!p) missing[name] = error ?? `${exe} not found in PATH or PEERS_DIR/bin`;
    return p;
  };
  const bins: PeerBins = {
    gtlsserver: look('gtlsserver', 'gtlsserver'),
    gtlsclient: look('gtlsclient', 'gtlsclient'),
    openssl: look('openssl', 'openssl'),
    gnutlsServ: look('gnutlsServ', 'gnutls-serv'),
    gnutlsCli: look('gnutlsCli', 'gnutls-cli'),
    quicGo: null,
  };
  const wrapper = path.join(sharedPeersDir, 'quic-go');
  if (!fs.existsSync(wrapper)) missing.quicGo = `wrapper ${wrapper} not found`;
  else if (!dir || !fs.existsSync(path.join(dir, 'bin', 'quic-go-server')) || !fs.existsSync(path.join(dir, 'bin', 'quic-go-client')))
    missing.quicGo = error ?? 'quic-go endpoints not built (PEERS_DIR/bin/quic-go-{server,client})';
  else if (process.getuid?.() !== 0) missing.quicGo = 'the quic-go wrapper needs root (mount namespaces)';
  else bins.quicGo = wrapper;
  cached = { dir, error, certs, bins, missing };
  return cached;
}

/** Absolute path of an executable found in `extraDirs` or $PATH, else null. */
export function which(exe: string, extraDirs: string[] = []): string | null {
  if (exe.includes('/')) return isExecutable(exe) ? exe : null;
  const dirs = [...extraDirs, ...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, exe);
    if (isExecutable(p)) return p;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Prints the loud skip line the test runner surfaces. */
export function skipLoud(what: string, reason: string): void {
  console.log(`SKIPPED: ${what} unavailable: ${reason}`);
}

/**
 * The path of peer `name` (for 'certs': the certificate folder), or null after printing
 * `SKIPPED: <name> unavailable: <reason>`. Use it at the top of every peer test.
 */
export function requirePeer(name: PeerName): string | null {
  const p = peers();
  if (name === 'certs') {
    if (p.missing.certs) {
      skipLoud('certs', p.missing.certs);
      return null;
    }
    return path.dirname(p.certs.ca);
  }
  const bin = p.bins[name];
  if (!bin) {
    skipLoud(name, p.missing[name] ?? p.error ?? 'not found');
    return null;
  }
  return bin;
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A port that was free on 127.0.0.1 a moment ago (bound to port 0, then released). */
export function freePort(proto: 'udp' | 'tcp' = 'udp', host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    if (proto === 'udp') {
      const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', reject);
      s.bind(0, host, () => {
        const port = s.address().port;
        s.close(() => resolve(port));
      });
    } else {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const port = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(port));
      });
    }
  });
}

const hasSs = which('ss') !== null;

/** True if some process listens on (proto, port) (any local address). Uses `ss`; TCP falls back to connect. */
export async function isListening(port: number, proto: 'udp' | 'tcp' = 'udp', host = '127.0.0.1'): Promise<boolean> {
  if (hasSs) {
    const r = spawnSync('ss', [proto === 'udp' ? '-Hlun' : '-Hltn', `sport = :${port}`], { encoding: 'utf8', timeout: 2000 });
    if (r.status === 0) return r.stdout.trim() !== '';
  }
  if (proto === 'tcp') {
    return new Promise((resolve) => {
      const s = net.connect({ port, host });
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      s.setTimeout(500, () => done(false));
    });
  }
  // UDP without ss: probe by binding (only safe once the server has had time to bind).
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(true));
    s.bind(port, host, () => s.close(() => resolve(false)));
  });
}

/** Waits until something listens on the port; rejects after timeoutMs (default 5 s). */
export async function waitForPort(port: number, proto: 'udp' | 'tcp' = 'udp', opts: { timeoutMs?: number; host?: string; proc?: PeerProcess } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  while (Date.now() < deadline) {
    if (opts.proc && opts.proc.exited) throw new Error(`peer exited (${opts.proc.exitCode ?? opts.proc.signal}) before opening ${proto} port ${port}: ${opts.proc.output().slice(-500)}`);
    if (await isListening(port, proto, opts.host)) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${proto} port ${port} after ${opts.timeoutMs ?? 5000} ms`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Processes

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  timeoutMs: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (default: stdin closed at once). */
  input?: string | Uint8Array;
  /** Keep at most this many characters of stdout/stderr each (default 1 MB). */
  maxOutput?: number;
}

/** Runs a command to completion, killing its process group after timeoutMs. Never rejects for exit codes. */
export function runBounded(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const max = opts.maxOutput ?? 1 << 20;
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(e);
      return;
    }
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < max) stdout += d.toString('utf8');
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < max) stderr += d.toString('utf8');
    });
    child.stdin!.on('error', () => {});
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      killGroup(child, 'SIGKILL'); // stragglers left in the group
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - t0 });
    });
  });
}

export interface SpawnPeerOptions {
  /** Hard upper bound on the process's life (enforced by coreutils `timeout`, even if we die). */
  lifetimeMs: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Mirror the peer's output to our stderr (debugging). */
  echo?: boolean;
}

export interface PeerProcess {
  readonly pid: number;
  readonly exited: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Resolves when the process has exited. */
  readonly done: Promise<void>;
  /** stdout+stderr so far (bounded to the last 256 kB). */
  output(): string;
  /** SIGTERM to the process group, SIGKILL after graceMs (default 1000); resolves when gone. */
  kill(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) killGroup(c, 'SIGKILL');
});

function killGroup(c: ChildProcess, sig: NodeJS.Signals): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, sig);
  } catch {
    try {
      c.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

const timeoutBin = which('timeout');

/** Starts a long-running peer (server) in its own process group with a bounded lifetime. */
export function spawnPeer(cmd: string, args: string[], opts: SpawnPeerOptions): PeerProcess {
  const secs = Math.max(1, Math.ceil(opts.lifetimeMs / 1000));
  const [file, argv] = timeoutBin ? [timeoutBin, ['-k', '2', String(secs), cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 512 * 1024) out = out.slice(-256 * 1024);
    if (opts.echo) process.stderr.write(d);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited = false;
  let exitCode: number | null = null;
  let signal: NodeJS.Signals | null = null;
  // Without coreutils timeout, enforce the lifetime from here.
  const guard = timeoutBin ? undefined : setTimeout(() => killGroup(child, 'SIGKILL'), opts.lifetimeMs);
  guard?.unref();
  const done = new Promise<void>((resolve) => {
    const fin = (code: number | null, sig: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      exitCode = code;
      signal = sig;
      if (guard) clearTimeout(guard);
      live.delete(child);
      resolve();
    };
    child.once('exit', fin);
    child.once('error', (e) => {
      out += `spawn error: ${e.message}\n`;
      fin(null, null);
    });
  });
  return {
    get pid() {
      return child.pid ?? -1;
    },
    get exited() {
      return exited;
    },
    get exitCode() {
      return exitCode;
    },
    get signal() {
      return signal;
    },
    done,
    output: () => out,
    async kill(graceMs = 1000) {
      if (!exited) {
        killGroup(child, 'SIGTERM');
        const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
        await done;
        clearTimeout(t);
      }
      killGroup(child, 'SIGKILL'); // anything else left in the group
    },
  };
}

/**
 * Runs `fn` with a peer process started (and, if `port` is given, listening), then kills the
 * peer's process group whatever happens.
 */
export async function withPeer<T>(
  cmd: string,
  args: string[],
  opts: SpawnPeerOptions & { port?: number; proto?: 'udp' | 'tcp'; readyTimeoutMs?: number },
  fn: (proc: PeerProcess) => Promise<T>,
): Promise<T> {
  const proc = spawnPeer(cmd, args, opts);
  try {
    if (opts.port !== undefined) await waitForPort(opts.port, opts.proto ?? 'udp', { timeoutMs: opts.readyTimeoutMs ?? 5000, proc });
    return await fn(proc);
  } finally {
    await proc.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-process locks (e.g. the quic-go server's fixed UDP port 443 while test files run in parallel)

export interface HeldLock {
  release(): void;
}

/**
 * An exclusive lock named `name` shared by every process on this host (a file in the temp
 * folder holding the owner's pid; a lock whose owner died is taken over). Waits up to timeoutMs.
 */
export async function acquireLock(name: string, timeoutMs = 60_000): Promise<HeldLock> {
  const file = path.join(os.tmpdir(), `petrel-lock-${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        process.off('exit', release);
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
      process.on('exit', release);
      return { release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(file, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (!(owner > 0) || !pidAlive(owner)) {
      try {
        fs.unlinkSync(file); // stale
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`lock ${name} held by pid ${owner} for more than ${timeoutMs} ms`);
    await sleep(50);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie (PID 1 here may not reap) counts as dead.
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/**
 * Starts the quic-go interop server (`TESTCASE` = handshake, transfer, http3, retry, ...) serving
 * `www` on UDP *:443 (fixed by quic-go), holding the host-wide 'udp-443' lock until kill(), and
 * waits until it listens. Returns null after a SKIPPED line if quic-go is unavailable.
 *   const qg = await startQuicGoServer('http3', www); if (!qg) return;
 *   try { ... connect to 127.0.0.1:443 ... } finally { await qg.kill(); }
 */
export async function startQuicGoServer(testcase: string, www: string, opts: { lifetimeMs?: number; lockTimeoutMs?: number } = {}): Promise<(PeerProcess & { port: number }) | null> {
  const bin = requirePeer('quicGo');
  if (!bin) return null;
  const lock = await acquireLock('udp-443', opts.lockTimeoutMs ?? 120_000);
  let proc: PeerProcess | undefined;
  try {
    if (await isListening(443, 'udp')) throw new Error('UDP port 443 is in use by a process that does not hold the udp-443 lock');
    proc = spawnPeer(bin, ['server', testcase, www], { lifetimeMs: opts.lifetimeMs ?? 60_000 });
    await waitForPort(443, 'udp', { proc, timeoutMs: 10_000 });
  } catch (e) {
    if (proc) await proc.kill();
    lock.release();
    throw e;
  }
  const p = proc;
  return Object.assign(Object.create(null) as object, {
    get pid() {
      return p.pid;
    },
    get exited() {
      return p.exited;
    },
    get exitCode() {
      return p.exitCode;
    },
    get signal() {
      return p.signal;
    },
    done: p.done,
    output: () => p.output(),
    port: 443,
    async kill(graceMs?: number) {
      try {
        await p.kill(graceMs);
      } finally {
        lock.release();
      }
    },
  }) as PeerProcess & { port: number };
}

/** First line of `<bin> <versionArgs>` output, or null (bounded to 5 s). */
export async function peerVersion(bin: string, args: string[] = ['--version']): Promise<string | null> {
  try {
    const r = await runBounded(bin, args, { timeoutMs: 5000 });
    const line = (r.stdout + r.stderr).split('\n').find((l) => l.trim() !== '');
    return line?.trim() ?? null;
  } catch {
    return null;
  }
}
