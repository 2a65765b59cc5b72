/**
 * Helpers for the loopback load and fault tests (test/load-*.test.ts, scripts/load.ts).
 *
 *   const srv = await startLoadServer({ retry: 'auto', retryThreshold: 32, maxIdleTimeout: 2000 });
 *   const r = await runClients(srv.port, 200, { path: '/bytes/1000' });   // { ok, failures, ms, errors }
 *   const flood = makeInitials(2000);            // real client Initials, distinct DCIDs, never finished
 *   await floodSend(srv.port, flood, { sockets: 50, perTick: 200 });
 *   (await srv.stats()).maxRss; await srv.gc(); await srv.close();   // close() kills in any case
 *
 * The server runs in a child process (test/support/load-server.ts, --expose-gc) so its RSS, heap,
 * handles and timers are its own. Everything binds to 127.0.0.1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectH3, type H3Client } from '../../packages/h3/src/node.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import { Endpoint } from '../../packages/quic/src/endpoint.js';
import { makeCert, type MadeCert } from './certs.js';
import type { LoadServerConfig, LoadServerStats } from './load-server.js';

export type { LoadServerStats } from './load-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const childFlags = ['--conditions=petrel-src', '--import', 'tsx', '--expose-gc'];

let certs: { ca: MadeCert; leaf: MadeCert } | null = null;
/** One CA + leaf (ECDSA P-256, SAN localhost and 127.0.0.1) per process. */
export function loadCerts(): { ca: MadeCert; leaf: MadeCert } {
  if (!certs) {
    const ca = makeCert({ keyType: 'ec-p256', ca: true, cn: 'load test CA' });
    certs = { ca, leaf: makeCert({ keyType: 'ec-p256', sans: ['localhost', '127.0.0.1'], issuer: ca }) };
  }
  return certs;
}

export interface LoadServer {
  port: number;
  child: ChildProcess;
  stats(): Promise<LoadServerStats>;
  /** Full GC in the child (several rounds), then its stats. */
  gc(): Promise<LoadServerStats>;
  /** Stats plus a diagnostic line per remaining connection (state, timers). */
  conns(): Promise<LoadServerStats & { list: unknown[] }>;
  /** Closes the server gracefully (stats on the way out), kills the child in any case. */
  close(): Promise<LoadServerStats | null>;
}

export async function startLoadServer(opts: Omit<LoadServerConfig, 'certPem' | 'keyPem'> = {}): Promise<LoadServer> {
  const { leaf } = loadCerts();
  const cfg: LoadServerConfig = { ...opts, certPem: leaf.certPem, keyPem: leaf.keyPem };
  const child = fork(path.join(here, 'load-server.ts'), [JSON.stringify(cfg)], {
    cwd: repoRoot,
    // LOAD_SERVER_FLAGS: extra node flags for the server child (e.g. --cpu-prof --cpu-prof-dir=DIR).
    execArgv: [...childFlags, ...(process.env.LOAD_SERVER_FLAGS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map<number, (s: LoadServerStats) => void>();
  let exited = false;
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('load server did not start within 30 s')), 30_000);
    child.on('message', (m: { type?: string; port?: number; id?: number; reply?: LoadServerStats }) => {
      if (m.type === 'ready') {
        clearTimeout(t);
        resolve(m.port!);
      } else if (m.id !== undefined) {
        waiting.get(m.id)?.(m.reply!);
        waiting.delete(m.id);
      }
    });
    child.once('exit', (code) => {
      exited = true;
      clearTimeout(t);
      reject(new Error(`load server exited (${code})`));
      for (const w of waiting.values()) w(null as unknown as LoadServerStats);
      waiting.clear();
    });
  });
  const ask = (cmd: string, ms = 30_000): Promise<LoadServerStats> => {
    if (exited) return Promise.reject(new Error('load server has exited'));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`load server: no answer to ${cmd} within ${ms} ms`));
      }, ms);
      waiting.set(id, (s) => {
        clearTimeout(t);
        if (s) resolve(s);
        else reject(new Error('load server has exited'));
      });
      child.send({ id, cmd });
    });
  };
  return {
    port,
    child,
    stats: () => ask('stats'),
    gc: () => ask('gc'),
    conns: () => ask('conns') as Promise<LoadServerStats & { list: unknown[] }>,
    async close() {
      let last: LoadServerStats | null = null;
      try {
        if (!exited) last = await ask('close', 5000);
      } catch {
        /* killed below */
      }
      if (!exited) await new Promise((r) => setTimeout(r, 300)); // let it exit by itself (profiles, logs)
      if (!exited) child.kill('SIGKILL');
      return last;
    },
  };
}

export interface ClientRunResult {
  ok: number;
  failures: number;
  ms: number;
  /** Distinct error messages with counts. */
  errors: Record<string, number>;
  /** Connections that went through a Retry (client side). */
  retried: number;
}

export interface ClientRunOptions {
  path?: string;
  /** Expected response body length (checked); default: not checked. */
  expectBytes?: number;
  handshakeTimeoutMs?: number;
  /** Per-client deadline for the request after the handshake (ms, default 60 000). */
  requestTimeoutMs?: number;
  provider?: 'node' | 'noble';
  /** Diagnostics: called for each client whose request failed after the handshake. */
  onFailure?: (client: H3Client, error: unknown) => void;
}

/** `n` concurrent clients (own UDP socket each), one HTTP/3 request each, then a clean close. */
export async function runClients(port: number, n: number, opts: ClientRunOptions = {}): Promise<ClientRunResult> {
  const { ca } = loadCerts();
  const errors: Record<string, number> = {};
  let ok = 0;
  let retried = 0;
  const t0 = performance.now();
  const one = async (): Promise<void> => {
    let client: H3Client | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      client = await connectH3(
        { host: '127.0.0.1', port },
        { ca: ca.certPem, serverName: 'localhost', handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 60_000, provider: opts.provider },
      );
      const c = client;
      const body = await Promise.race([
        (async () => {
          const res = await c.fetch(`https://localhost:${port}${opts.path ?? '/'}`);
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          return new Uint8Array(await res.arrayBuffer());
        })(),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('request timed out')), opts.requestTimeoutMs ?? 60_000))),
      ]);
      if (opts.expectBytes !== undefined && body.length !== opts.expectBytes) throw new Error(`body of ${body.length} bytes, expected ${opts.expectBytes}`);
      ok++;
    } catch (e) {
      const m = e instanceof Error ? e.message.replace(/\d+/g, 'N') : String(e);
      errors[m] = (errors[m] ?? 0) + 1;
      if (client && opts.onFailure) opts.onFailure(client, e);
    } finally {
      clearTimeout(timer);
      if (client) {
        if (client.quic.stats?.['retry'] === true) retried++;
        await client.close().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: n }, one));
  return { ok, failures: n - ok, ms: performance.now() - t0, errors, retried };
}

/**
 * `n` real client Initial datagrams (our client: a fresh Endpoint.connect per datagram, so each has
 * its own random DCID and key share), ready to be sent from anywhere and never followed up.
 */
export function makeInitials(n: number, alpn = 'h3'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const remote = { address: '127.0.0.1', port: 443, family: 4 as const };
  for (let i = 0; i < n; i++) {
    const ep = new Endpoint({ provider: nodeProvider });
    ep.connect(remote, { provider: nodeProvider, tls: { serverName: 'localhost', alpn: [alpn], insecureSkipVerify: true } }, 0);
    const t = ep.pollTransmit(0);
    if (!t || t.datagram.length < 1200) throw new Error('makeInitials: no padded client Initial');
    out.push(t.datagram);
  }
  return out;
}

export interface FloodOptions {
  /** Source sockets (distinct source ports), default 32. */
  sockets?: number;
  /** Datagrams sent per event-loop turn (pacing so the loopback buffers are not the bottleneck), default 100. */
  perTick?: number;
  /** Stop early when this resolves to true (checked between bursts). */
  stop?: () => boolean;
}

/** Sends every datagram once, spread over `sockets` source ports; answers are read and discarded. */
export async function floodSend(port: number, datagrams: Uint8Array[], opts: FloodOptions = {}): Promise<{ sent: number; answers: number; answerBytes: number }> {
  const nSockets = opts.sockets ?? 32;
  const perTick = opts.perTick ?? 100;
  const socks: dgram.Socket[] = [];
  let answers = 0;
  let answerBytes = 0;
  let sent = 0;
  try {
    for (let i = 0; i < nSockets; i++) {
      const s = dgram.createSocket('udp4');
      s.on('message', (m) => {
        answers++;
        answerBytes += m.length;
      });
      s.on('error', () => {});
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      socks.push(s);
    }
    for (let i = 0; i < datagrams.length; i++) {
      if (opts.stop?.()) break;
      const s = socks[i % nSockets]!;
      await new Promise<void>((r) => s.send(datagrams[i]!, port, '127.0.0.1', () => r()));
      sent++;
      if (i % perTick === perTick - 1) await new Promise((r) => setTimeout(r, 1));
    }
    // Let answers arrive (they are only counted).
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    for (const s of socks) s.close();
  }
  return { sent, answers, answerBytes };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every `everyMs` until it returns true or `ms` pass; returns whether it did. */
export async function waitFor(f: () => Promise<boolean> | boolean, ms: number, everyMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}

export const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;
