/**
 * A WHATWG `fetch(url, init)` over HTTP/3 with one QUIC connection per origin:
 *
 *   import { fetch } from '@petrel/h3/node';
 *   const res = await fetch('https://localhost:4433/file', { ca: caPem });   // verified against caPem
 *   const res2 = await fetch('https://example.org/');                         // Node's root store
 *   await closeIdleConnections();                                             // lets a script exit at once
 *
 * Connections live in an {@link H3Agent} (a small pool keyed by origin and trust settings):
 * concurrent requests to one origin share one connection (the connection attempt too); a
 * connection that closed or got GOAWAY is replaced by a new one on the next request; a connection
 * without requests in flight for `idleTimeoutMs` (default 5 s) is closed. A request counts as in
 * flight until its response body has been read to the end, cancelled or failed. More concurrent
 * requests than the server's stream limit wait for a stream (bounded: `connect.maxQueuedRequests`).
 *
 * Certificates are verified by default (WebPkiVerifier with Node's roots, or `ca` as the only trust
 * anchors); `insecure: true` skips verification (testing only). Request bodies (ReadableStream,
 * Blob, string, ...) are streamed with transport backpressure.
 */
import type { HandshakeInfo } from '@petrel/tls-core';
import { connectH3, type ConnectH3Options, type H3Client } from './node.js';

export interface H3AgentOptions {
  /** Trust anchors (PEM) instead of Node's root store. */
  ca?: string | Uint8Array;
  /** Testing only: accept any server certificate. */
  insecure?: boolean;
  /** Close a connection after this long without requests in flight (default 5000 ms). */
  idleTimeoutMs?: number;
  /** Further QUIC/TLS options for new connections (provider, serverName, transport settings, ...). */
  connect?: Omit<ConnectH3Options, 'ca' | 'insecureSkipVerify'>;
}

/** `RequestInit` plus the trust settings of the top-level {@link fetch}. */
export interface H3RequestInit extends RequestInit {
  /** Use this agent instead of the default one (its own ca/insecure settings apply). */
  agent?: H3Agent;
  /** Default agent: trust anchors for this request's origin (PEM). */
  ca?: string | Uint8Array;
  /** Default agent: accept any certificate (testing only). */
  insecure?: boolean;
  /** Needed by Node for a ReadableStream body; set automatically. */
  duplex?: 'half';
}

/** What the agent knows about the connection that carries an origin's requests. */
export interface H3ConnectionInfo {
  readonly client: H3Client;
  readonly origin: string;
  /** TLS details (ALPN, cipher suite, group, ...). */
  readonly handshake: HandshakeInfo;
  /** Time from the connection attempt (name lookup included) to handshake completion, ms. */
  readonly connectMs: number;
  /** Requests sent on this connection so far. */
  readonly requests: number;
}

interface PoolEntry {
  key: string;
  origin: string;
  pending: Promise<H3Client>;
  /** Gives up the connection attempt (the agent closes before the handshake completed). */
  attempt: AbortController;
  client: H3Client | null;
  connectMs: number;
  active: number;
  requests: number;
  idleTimer: NodeJS.Timeout | null;
}

const DEFAULT_IDLE_MS = 5000;

export class H3Agent {
  private readonly pool = new Map<string, PoolEntry>();
  private closedAgent = false;
  /** Connections opened so far (successfully or not). */
  connectionsOpened = 0;

  constructor(private readonly opts: H3AgentOptions = {}) {}

  /** Number of connections (open or being opened). */
  get size(): number {
    return this.pool.size;
  }

  /** The live connection for `url`'s origin, opening one if needed. */
  async connection(url: string | URL): Promise<H3ConnectionInfo> {
    const e = await this.entryFor(new URL(url));
    const client = await e.pending;
    return {
      client,
      origin: e.origin,
      handshake: client.quic.handshake!,
      connectMs: e.connectMs,
      get requests() {
        return e.requests;
      },
    };
  }

  /**
   * WHATWG fetch over this agent's pooled HTTP/3 connections. Redirects are followed (at most
   * 20; `redirect: 'manual'` returns them, `'error'` rejects); 303, and 301/302 after a POST, turn
   * into a GET without body; a 307/308 resends the body if it was given as bytes or text (a
   * ReadableStream body cannot be replayed: TypeError).
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    let req = new Request(input, withDuplex(init));
    const mode = req.redirect;
    const replayable = init?.body === undefined || init.body === null || !(init.body instanceof ReadableStream);
    for (let hops = 0; ; hops++) {
      const res = await this.send(req);
      const location = res.headers.get('location');
      if (!REDIRECT.has(res.status) || location === null || mode === 'manual') return hops ? withRedirected(res) : res;
      await res.body?.cancel().catch(() => {});
      if (mode === 'error') throw new TypeError(`fetch failed: redirect (${res.status}) with redirect mode "error"`);
      if (hops >= 20) throw new TypeError('fetch failed: too many redirects');
      let next: URL;
      try {
        next = new URL(location, req.url);
      } catch {
        throw new TypeError(`fetch failed: bad redirect location ${JSON.stringify(location)}`);
      }
      const toGet = res.status === 303 ? req.method !== 'GET' && req.method !== 'HEAD' : (res.status === 301 || res.status === 302) && req.method === 'POST';
      const headers = new Headers(req.headers);
      if (next.origin !== new URL(req.url).origin) headers.delete('authorization');
      if (toGet || req.body === null) {
        if (toGet) for (const h of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(h);
        req = new Request(next, { method: toGet && req.method !== 'HEAD' ? 'GET' : req.method, headers, signal: req.signal, redirect: mode });
      } else {
        if (!replayable) throw new TypeError(`fetch failed: a ${res.status} redirect needs the request body again, and a ReadableStream body cannot be replayed`);
        req = new Request(next, withDuplex({ method: req.method, headers, body: init!.body, signal: req.signal, redirect: mode }));
      }
    }
  }

  /** One request on the origin's pooled connection. */
  private async send(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.protocol !== 'https:') throw new TypeError(`fetch failed: HTTP/3 needs an https: URL, got ${url.protocol}`);
    // A connection that turned out to be unusable while we sent (GOAWAY, closed) is retried once,
    // on a new connection, if the request has no body (a streamed body cannot be replayed).
    for (let attempt = 0; ; attempt++) {
      // An aborted request opens no connection, and an abort while the connection is being set
      // up (up to the handshake timeout) rejects at once: the attempt goes on for other requests.
      req.signal.throwIfAborted();
      const e = await this.entryFor(url);
      let client: H3Client;
      try {
        client = await untilAborted(e.pending, req.signal);
      } catch (err) {
        if (req.signal.aborted && err === req.signal.reason) throw err;
        throw new TypeError(`fetch failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      e.requests++;
      this.acquire(e);
      let res: Response;
      try {
        res = await client.fetch(req);
      } catch (err) {
        this.release(e);
        if (attempt === 0 && req.body === null && !client.usable) {
          this.drop(e);
          continue;
        }
        throw err;
      }
      return this.track(e, res, req.url);
    }
  }

  /** Closes every connection now (requests in flight fail). */
  async close(): Promise<void> {
    this.closedAgent = true;
    await this.closeIdle(true);
  }

  /** Closes the connections that have no request in flight (all of them with `all`). */
  async closeIdle(all = false): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const e of [...this.pool.values()]) {
      if (!all && e.active > 0) continue;
      closing.push(this.shut(e));
    }
    await Promise.all(closing);
  }

  private async entryFor(url: URL): Promise<PoolEntry> {
    if (this.closedAgent) throw new TypeError('fetch failed: the H3Agent is closed');
    const origin = url.origin;
    const key = origin;
    let e = this.pool.get(key);
    if (e && e.client && !e.client.usable) {
      this.drop(e);
      e = undefined;
    }
    if (e) return e;
    const started = performance.now();
    this.connectionsOpened++;
    const entry: PoolEntry = { key, origin, pending: null!, attempt: new AbortController(), client: null, connectMs: 0, active: 0, requests: 0, idleTimer: null };
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port ? Number(url.port) : 443;
    const o: ConnectH3Options = { ...(this.opts.connect ?? {}) };
    if (this.opts.ca !== undefined) o.ca = this.opts.ca;
    if (this.opts.insecure) o.insecureSkipVerify = true;
    o.signal = entry.attempt.signal;
    entry.pending = connectH3({ host, port }, o).then(
      (client) => {
        entry.client = client;
        entry.connectMs = performance.now() - started;
        void client.quic.closed.then(() => {
          if (this.pool.get(key) === entry) this.drop(entry);
        });
        if (entry.active === 0) this.armIdle(entry);
        return client;
      },
      (err: unknown) => {
        if (this.pool.get(key) === entry) this.pool.delete(key);
        throw err;
      },
    );
    entry.pending.catch(() => {});
    this.pool.set(key, entry);
    return entry;
  }

  private acquire(e: PoolEntry): void {
    e.active++;
    if (e.idleTimer) {
      clearTimeout(e.idleTimer);
      e.idleTimer = null;
    }
  }

  private release(e: PoolEntry): void {
    e.active--;
    if (e.active === 0) this.armIdle(e);
  }

  private armIdle(e: PoolEntry): void {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    const ms = this.opts.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    e.idleTimer = setTimeout(() => {
      e.idleTimer = null;
      if (e.active === 0) void this.shut(e);
    }, ms);
    e.idleTimer.unref();
  }

  /** Forgets a connection (it stays open until its requests finish, then closes on idle). */
  private drop(e: PoolEntry): void {
    if (this.pool.get(e.key) === e) this.pool.delete(e.key);
  }

  private async shut(e: PoolEntry): Promise<void> {
    this.drop(e);
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = null;
    // A connection still being set up is given up now (not after its handshake or timeout).
    if (!e.client) e.attempt.abort(new Error('the H3Agent was closed while connecting'));
    let client: H3Client;
    try {
      client = await e.pending;
    } catch {
      return;
    }
    if (client.quic.isClosed) return;
    try {
      await client.close();
    } catch {
      /* already closing */
    }
  }

  /** Keeps the request counted until its body is consumed, cancelled or failed. */
  private track(e: PoolEntry, res: Response, url: string): Response {
    if (res.body === null) {
      this.release(e);
      return withUrl(res, url);
    }
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        this.release(e);
      }
    };
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          try {
            const { done: end, value } = await reader.read();
            if (end) {
              finish();
              c.close();
            } else c.enqueue(value);
          } catch (err) {
            finish();
            c.error(err);
          }
        },
        async cancel(reason) {
          finish();
          await reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return withUrl(new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers }), url);
  }
}

/** `p`, or a rejection with the signal's reason as soon as `signal` aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function withDuplex(init: RequestInit | undefined): RequestInit | undefined {
  if (!init || init.body === undefined || init.body === null) return init;
  return { ...init, duplex: 'half' } as RequestInit;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

function withRedirected(res: Response): Response {
  Object.defineProperty(res, 'redirected', { value: true });
  return res;
}

function withUrl(res: Response, url: string): Response {
  Object.defineProperty(res, 'url', { value: url });
  return res;
}

const agents = new Map<string, H3Agent>();

function defaultAgent(init: H3RequestInit | undefined): H3Agent {
  const ca = init?.ca === undefined ? '' : typeof init.ca === 'string' ? init.ca : new TextDecoder().decode(init.ca);
  const key = `${init?.insecure ? 'insecure' : 'verify'}\n${ca}`;
  let a = agents.get(key);
  if (!a) {
    a = new H3Agent({ ca: ca || undefined, insecure: init?.insecure });
    agents.set(key, a);
  }
  return a;
}

/**
 * `fetch(url, init)` over HTTP/3: a standard Response, one pooled QUIC connection per origin
 * (see {@link H3Agent}). `init.ca` / `init.insecure` select the trust settings, `init.agent` a pool.
 */
export function fetch(input: string | URL | Request, init?: H3RequestInit): Promise<Response> {
  const agent = init?.agent ?? defaultAgent(init);
  let rest: RequestInit | undefined = init;
  if (init) {
    const { agent: _a, ca: _c, insecure: _i, ...r } = init;
    rest = r;
  }
  return agent.fetch(input, rest);
}

/** Closes the default pools' idle connections (a script can then exit without waiting for the idle timeout). */
export async function closeIdleConnections(): Promise<void> {
  await Promise.all([...agents.values()].map((a) => a.closeIdle()));
}

/** Closes every connection of the default pools. */
export async function closeAllConnections(): Promise<void> {
  const all = [...agents.values()];
  agents.clear();
  await Promise.all(all.map((a) => a.close()));
}
