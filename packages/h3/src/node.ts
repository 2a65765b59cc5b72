/**
 * HTTP/3 over Petrel's QUIC node:dgram driver (@petrel/quic/node):
 *
 *   const server = await serve({ port: 4433, host: '127.0.0.1', cert, key }, (req) => new Response('hi'));
 *   const client = await connectH3('https://127.0.0.1:4433', { ca });
 *   const res = await client.fetch('https://127.0.0.1:4433/'); console.log(await res.text());
 *   await client.close(); await server.close();
 *
 * The QUIC driver owns the socket and timers. HTTP/3 sits between the sans-I/O QUIC connection and
 * the driver's connection wrapper: a connection factory wraps each QUIC connection so that its
 * events go through {@link QuicH3Transport} into an {@link H3Connection} (created when the
 * handshake completes; earlier events are replayed), and only lifecycle events (handshake, close)
 * reach the driver's wrapper. One client connection carries any number of fetches.
 */
import type { ConnectionEvent, QuicConnection } from '@petrel/quic/api';
import { Connection } from '@petrel/quic/connection';
import type { ConnectionFactory } from '@petrel/quic/endpoint';
import { connect, listen, type ConnectOptions, type ListenOptions, type NodeQuicConnection, type QuicServer } from '@petrel/quic/node/index';
import { H3Connection, type H3ConnectionOptions, type H3Event } from './connection.js';
import { H3Error } from './errors.js';
import { QuicH3Transport } from './quic-adapter.js';
import { H3ClientSession, H3ServerSession, type FetchHandler } from './web.js';

/** An H3Connection bound to one QUIC connection. */
export interface H3Binding {
  readonly quic: QuicConnection;
  readonly transport: QuicH3Transport;
  readonly h3: H3Connection;
  /** Receives the HTTP/3 events of this connection (set by the creator). */
  onEvents: (events: H3Event[]) => void;
}

const LIFECYCLE = new Set<ConnectionEvent['type']>(['handshakeComplete', 'handshakeConfirmed', 'earlyData', 'sessionTicket', 'newToken', 'closed', 'error', 'keyUpdate', 'pathChanged']);

/** Wraps `inner` so that its stream events feed an HTTP/3 layer created at handshake completion. */
function bindH3(inner: QuicConnection, opts: H3ConnectionOptions, onBound: (b: H3Binding) => void): QuicConnection {
  const lifecycle: ConnectionEvent[] = [];
  const early: ConnectionEvent[] = [];
  let binding: H3Binding | null = null;
  /** HTTP/3 could not start on this connection (it is being closed): its stream events are dropped. */
  let failed = false;
  // This runs inside the QUIC driver's I/O step: an exception here would be an uncaught exception
  // (the process and every connection gone). A failure closes this one connection instead.
  const abandon = (code: number, e: unknown): void => {
    failed = true;
    binding = null;
    early.length = 0;
    const reason = e instanceof Error ? e.message : String(e);
    try {
      inner.close(code, reason.slice(0, 200), performance.timeOrigin + performance.now());
    } catch {
      /* already closed */
    }
  };
  const feed = (e: ConnectionEvent): void => {
    const b = binding!;
    const out: H3Event[] = [];
    try {
      for (const t of b.transport.translate(e)) for (const x of b.h3.handleEvent(t)) out.push(x);
      if (out.length) b.onEvents(out);
    } catch (err) {
      abandon(H3Error.H3_INTERNAL_ERROR, err);
    }
  };
  // Streams resumed by a body consumer (receive backpressure): read them outside the caller's
  // stack (the consumer's pull), then the session's wake lets the driver send the credit.
  let resumeQueued = false;
  const feedResumed = (): void => {
    resumeQueued = false;
    const b = binding;
    if (!b) return;
    const out: H3Event[] = [];
    try {
      for (const t of b.transport.takeResumed()) for (const x of b.h3.handleEvent(t)) out.push(x);
      if (out.length) b.onEvents(out);
    } catch (err) {
      abandon(H3Error.H3_INTERNAL_ERROR, err);
    }
  };
  const pollEvent = (): ConnectionEvent | undefined => {
    if (binding) feedResumed();
    for (let e = inner.pollEvent(); e; e = inner.pollEvent()) {
      if (failed) {
        // HTTP/3 never started: only the lifecycle events (the close) go on to the driver.
      } else if (e.type === 'handshakeComplete' && !binding) {
        const transport = new QuicH3Transport(inner, () => performance.now());
        transport.onResume = () => {
          if (resumeQueued) return;
          resumeQueued = true;
          queueMicrotask(feedResumed);
        };
        try {
          binding = { quic: inner, transport, h3: new H3Connection(transport, opts), onEvents: () => {} };
          onBound(binding);
        } catch (err) {
          // E.g. the peer's initial_max_streams_uni is below 3 (RFC 9114 §6.2 asks for at least 3;
          // we open the control and both QPACK streams at once and do not wait for more credit).
          abandon(H3Error.H3_GENERAL_PROTOCOL_ERROR, err);
        }
        if (binding) for (const x of early.splice(0)) feed(x);
      } else if (binding) feed(e);
      else if (!LIFECYCLE.has(e.type)) early.push(e);
      if (LIFECYCLE.has(e.type)) lifecycle.push(e);
    }
    return lifecycle.shift();
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'pollEvent') return pollEvent;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A QUIC connection factory whose connections carry HTTP/3. */
export function h3ConnectionFactory(opts: H3ConnectionOptions, onBound: (b: H3Binding) => void): ConnectionFactory {
  return {
    client: (cfg, remote, host, now) => bindH3(Connection.client(cfg, remote, host, now), opts, onBound),
    server: (cfg, params, host, now) => bindH3(Connection.server(cfg, params, host, now), opts, onBound),
  };
}

export interface ServeOptions extends Omit<ListenOptions, 'alpn' | 'factory'> {
  h3?: H3ConnectionOptions;
  onError?: (e: unknown) => void;
}

/** An HTTP/3 server: every request goes to `handler(Request) → Response`. */
export async function serve(opts: ServeOptions, handler: FetchHandler): Promise<QuicServer> {
  let server: QuicServer | null = null;
  const wake = (): void => server?.driver.schedule();
  const factory = h3ConnectionFactory(opts.h3 ?? {}, (b) => {
    const session = new H3ServerSession(b.h3, handler, { wake, onError: opts.onError });
    b.onEvents = (evs) => session.handleEvents(evs);
  });
  const { h3: _h3, onError: _e, ...rest } = opts;
  server = await listen({ ...rest, alpn: ['h3'], factory });
  return server;
}

export interface H3Client {
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  readonly h3: H3Connection;
  readonly quic: NodeQuicConnection;
  /** False once the server sent GOAWAY or the connection closed: open a new one for new requests. */
  readonly usable: boolean;
  /** Sends GOAWAY, then closes the QUIC connection with H3_NO_ERROR. */
  close(): Promise<void>;
}

export interface ConnectH3Options extends Omit<ConnectOptions, 'alpn' | 'factory'> {
  h3?: H3ConnectionOptions;
  /**
   * Requests that may wait for a stream while the server's stream limit (QUIC MAX_STREAMS) is
   * reached; beyond it fetch() rejects at once (default 10 000, see H3ClientSession).
   */
  maxQueuedRequests?: number;
}

/** Connects to an HTTP/3 server; `fetch` sends requests over this one connection. */
export async function connectH3(target: string | URL | { host: string; port: number }, opts: ConnectH3Options = {}): Promise<H3Client> {
  let binding: H3Binding | null = null;
  let session: H3ClientSession | null = null;
  let quic: NodeQuicConnection | null = null;
  // The driver flushes after every input; writes made later (async bodies) need a nudge.
  // NodeQuicConnection has no public "kick": sendDatagram/updateKeys kick only on success.
  const wake = (): void => (quic as unknown as { hooks?: { kick(): void } } | null)?.hooks?.kick();
  let ended = false;
  const factory = h3ConnectionFactory(opts.h3 ?? {}, (b) => {
    binding = b;
    session = new H3ClientSession(b.h3, opts.maxQueuedRequests === undefined ? { wake } : { wake, maxQueuedRequests: opts.maxQueuedRequests });
    b.onEvents = (evs) => {
      for (const e of evs) if (e.type === 'goaway' || e.type === 'closed' || e.type === 'connectionError') ended = true;
      session!.handleEvents(evs);
    };
  });
  const { h3: _h3, maxQueuedRequests: _q, ...rest } = opts;
  quic = await connect(target, { ...rest, alpn: ['h3'], factory });
  const b = binding as H3Binding | null;
  if (!b || !session) {
    // The HTTP/3 layer could not start (bindH3 closed the connection and says why).
    const why = quic.closeInfo?.reason ?? (await Promise.race([quic.closed, new Promise<null>((r) => setTimeout(() => r(null), 50))]))?.reason;
    void quic.close(H3Error.H3_GENERAL_PROTOCOL_ERROR, '').catch(() => {});
    throw new Error(`HTTP/3 could not start on the connection${why ? `: ${why}` : ''}`);
  }
  const s = session as H3ClientSession;
  const q = quic;
  return {
    fetch: (input, init) => {
      const p = s.fetch(input, init);
      wake();
      return p;
    },
    h3: b.h3,
    quic: q,
    get usable() {
      return !ended && !q.isClosed && !b.h3.closed;
    },
    async close() {
      b.h3.shutdown();
      await q.close(0x100, '');
    },
  };
}

export { fetch, H3Agent, closeIdleConnections, closeAllConnections, type H3AgentOptions, type H3RequestInit, type H3ConnectionInfo } from './fetch.js';
