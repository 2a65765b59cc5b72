/**
 * Helpers for the TLS-over-TCP interop tests (test/interop-tls-*.test.ts): certificates made with
 * the openssl CLI in a temp dir, peers spawned with a piped stdin and a bounded lifetime, and
 * promise wrappers around our client and server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type TlsConnectOptions } from '../packages/tls-core/src/tcp/client.js';
import { createServer, type TlsServerOptions, type TlsTcpServer } from '../packages/tls-core/src/tcp/server.js';
import type { TlsSocket } from '../packages/tls-core/src/tcp/socket.js';
import type { SessionTicket } from '../packages/tls-core/src/handshake/api.js';
import { freePort, which } from './support/peers.js';

export { freePort };

export type CertKind = 'ecdsa' | 'rsa' | 'ed25519';
export interface CertSet {
  dir: string;
  caPem: string;
  caFile: string;
  /** Server leaf (SAN localhost, 127.0.0.1) per key type. */
  server: Record<CertKind, { cert: string; key: string; certFile: string; keyFile: string }>;
  /** A client certificate (ECDSA) issued by the same CA. */
  client: { cert: string; key: string; certFile: string; keyFile: string };
  /** A CA that issued nothing we use (for negative tests). */
  otherCaPem: string;
}

const NEWKEY: Record<CertKind, string[]> = {
  ecdsa: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  rsa: ['-newkey', 'rsa:2048'],
  ed25519: ['-newkey', 'ed25519'],
};

function ossl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

let certCache: CertSet | null = null;
/** Makes (once per process) a CA and leaves for every key type. Needs the openssl CLI. */
export function makeCerts(): CertSet {
  if (certCache) return certCache;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-tls-interop-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  ossl(['req', '-x509', ...NEWKEY.ecdsa, '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', '/CN=Petrel Interop CA', ...caExt], dir);
  ossl(['req', '-x509', ...NEWKEY.ecdsa, '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '3', '-subj', '/CN=Other CA', ...caExt], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(path.join(dir, 'client.ext'), 'subjectAltName=DNS:client.petrel.test\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const leaf = (name: string, kind: CertKind, ext: string) => {
    ossl(['req', '-new', ...NEWKEY[kind], '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '3', '-extfile', ext], dir);
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, keyFile };
  };
  certCache = {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    otherCaPem: fs.readFileSync(path.join(dir, 'other.pem'), 'utf8'),
    server: { ecdsa: leaf('server-ecdsa', 'ecdsa', 'server.ext'), rsa: leaf('server-rsa', 'rsa', 'server.ext'), ed25519: leaf('server-ed25519', 'ed25519', 'server.ext') },
    client: leaf('client', 'ecdsa', 'client.ext'),
  };
  return certCache;
}

/** A peer process with piped stdin, killed (process group) in `kill()`, bounded by coreutils timeout. */
export interface Peer {
  proc: ChildProcess;
  out: () => string;
  write(s: string | Buffer): void;
  endInput(): void;
  waitFor(re: RegExp | string, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

export function spawnPeer(cmd: string, args: string[], opts: { lifetimeMs?: number; cwd?: string } = {}): Peer {
  const secs = Math.ceil((opts.lifetimeMs ?? 20_000) / 1000);
  const timeoutBin = which('timeout');
  const [file, argv] = timeoutBin ? [timeoutBin, ['-k', '1', String(secs), cmd, ...args]] : [cmd, args];
  const proc = spawn(file, argv, { cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString('latin1');
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.stdin!.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => {
      live.delete(proc);
      for (const w of waiters.splice(0)) w();
      resolve(code);
    });
    proc.on('error', (e) => {
      out += `spawn error: ${e.message}\n`;
      live.delete(proc);
      resolve(null);
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  return {
    proc,
    out: () => out,
    write: (s) => {
      if (!done) proc.stdin!.write(s);
    },
    endInput: () => proc.stdin!.end(),
    exited,
    waitFor(re, timeoutMs = 5000) {
      const test = () => (typeof re === 'string' ? out.includes(re) : re.test(out));
      return new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${String(re)} from ${cmd}; output:\n${out.slice(-3000)}`)), timeoutMs);
        const check = () => {
          if (test()) {
            clearTimeout(t);
            resolve(out);
          } else if (done) {
            clearTimeout(t);
            reject(new Error(`${cmd} exited before ${String(re)}; output:\n${out.slice(-3000)}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async kill() {
      if (done) return;
      try {
        process.kill(-proc.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 1000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface ClientRun {
  sock: TlsSocket;
  received: string;
  ticket: SessionTicket | null;
  error: Error | null;
}

export interface RunOptions {
  /** Written after the handshake completes. */
  send?: string;
  /** Finish once the received text matches. */
  until?: RegExp;
  /** Also wait for a session ticket before finishing. */
  waitTicket?: boolean;
  timeoutMs?: number;
  onSecure?: (sock: TlsSocket) => void;
  onData?: (sock: TlsSocket, received: string) => void;
}

/**
 * Connects our client, writes `send` after the handshake, collects data until `until` matches
 * (and a ticket arrived, with waitTicket) or the peer closes. Resolves (never rejects) within timeoutMs.
 */
export function runClient(options: TlsConnectOptions, run: RunOptions = {}): Promise<ClientRun> {
  const timeoutMs = run.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const r: ClientRun = { sock: null as unknown as TlsSocket, received: '', ticket: null, error: null };
    let sock: TlsSocket;
    try {
      sock = connect(options);
    } catch (e) {
      r.error = e as Error;
      resolve(r);
      return;
    }
    r.sock = sock;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      r.error ??= new Error(`client timed out after ${timeoutMs} ms; received ${JSON.stringify(r.received.slice(-500))}`);
      finish();
    }, timeoutMs);
    const check = () => {
      if (run.until && run.until.test(r.received) && (!run.waitTicket || r.ticket)) finish();
    };
    sock.on('session', (t: SessionTicket) => {
      r.ticket = t;
      check();
    });
    sock.on('secureConnect', () => {
      if (run.send !== undefined) sock.write(run.send);
      run.onSecure?.(sock);
    });
    sock.on('data', (d: Buffer) => {
      r.received += d.toString('latin1');
      run.onData?.(sock, r.received);
      check();
    });
    sock.on('error', (e) => {
      r.error ??= e;
      finish();
    });
    sock.on('close', finish);
  });
}

/** A step-by-step client: await secure, write, wait for text. */
export interface OpenClient {
  sock: TlsSocket;
  received: () => string;
  ticket: () => SessionTicket | null;
  secure: Promise<void>;
  waitFor(re: RegExp | string, timeoutMs?: number): Promise<void>;
  waitTicket(timeoutMs?: number): Promise<SessionTicket>;
  error: () => Error | null;
}

export function openClient(options: TlsConnectOptions): OpenClient {
  const sock = connect(options);
  let got = '';
  let ticket: SessionTicket | null = null;
  let error: Error | null = null;
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  sock.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    poke();
  });
  sock.on('session', (t: SessionTicket) => {
    ticket = t;
    poke();
  });
  sock.on('error', (e) => {
    error ??= e;
    poke();
  });
  sock.on('close', poke);
  const until = (cond: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(got.slice(-300))}; error ${String(error)}`));
      }, timeoutMs);
      const check = () => {
        if (cond()) {
          clearTimeout(t);
          waiters.delete(check);
          resolve();
        } else if (error || sock.destroyed) {
          clearTimeout(t);
          waiters.delete(check);
          reject(new Error(`connection ended while waiting for ${what}: ${String(error)}; received ${JSON.stringify(got.slice(-300))}`));
        }
      };
      waiters.add(check);
      check();
    });
  const secure = new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
    sock.once('close', () => reject(new Error(`closed before the handshake: ${String(error)}`)));
  });
  secure.catch(() => {});
  return {
    sock,
    received: () => got,
    ticket: () => ticket,
    secure,
    error: () => error,
    waitFor: (re, timeoutMs = 5000) => until(() => (typeof re === 'string' ? got.includes(re) : re.test(got)), String(re), timeoutMs),
    waitTicket: async (timeoutMs = 5000) => {
      await until(() => ticket !== null, 'a session ticket', timeoutMs);
      return ticket!;
    },
  };
}

export interface ServerHandle {
  server: TlsTcpServer;
  port: number;
  sockets: TlsSocket[];
  errors: Error[];
  /** Resolves with the next socket that completes a handshake. */
  nextSecure(timeoutMs?: number): Promise<TlsSocket>;
  close(): Promise<void>;
}

/** Our server on 127.0.0.1:ephemeral; each connection answers "pong:<data>" per chunk received. */
export async function startServer(options: TlsServerOptions, handler?: (sock: TlsSocket) => void): Promise<ServerHandle> {
  const sockets: TlsSocket[] = [];
  const errors: Error[] = [];
  const waiters: ((s: TlsSocket) => void)[] = [];
  const server = createServer(options, (sock) => {
    sockets.push(sock);
    sock.on('error', (e) => errors.push(e));
    if (handler) handler(sock);
    else sock.on('data', (d: Buffer) => sock.write(`pong:${d.toString('latin1')}`));
    const w = waiters.shift();
    if (w) w(sock);
  });
  server.on('tlsClientError', (e: Error) => errors.push(e));
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
  return {
    server,
    port,
    sockets,
    errors,
    nextSecure(timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no secure connection within ${timeoutMs} ms; errors: ${errors.map((e) => e.message).join('; ')}`)), timeoutMs);
        waiters.push((s) => {
          clearTimeout(t);
          resolve(s);
        });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Prints the loud skip line the runner surfaces, and returns true if `bin` is missing. */
export function missing(bin: string, what: string): boolean {
  if (which(bin)) return false;
  console.log(`SKIPPED: ${what}: ${bin} not found in PATH`);
  return true;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
