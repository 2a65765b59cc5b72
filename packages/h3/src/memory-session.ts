/**
 * A client and a server HTTP/3 connection joined in memory, driven asynchronously: the handy way
 * to run a fetch handler without QUIC (tests, examples, benchmarks of the h3 layer alone).
 */
import { H3Connection, type H3ConnectionOptions, type H3Event } from './connection.js';
import { memoryTransportPair, type MemoryTransport } from './memory-transport.js';
import { H3ClientSession, H3ServerSession, type FetchHandler } from './web.js';

const schedule: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void globalThis.setImmediate(fn) : (fn) => void setTimeout(fn, 0);

/** Polls `t` whenever events arrive and feeds them through `conn` to `sink`. */
export function driveMemoryTransport(t: MemoryTransport, conn: H3Connection, sink: (events: H3Event[]) => void): void {
  let scheduled = false;
  const run = (): void => {
    scheduled = false;
    for (const ev of t.poll()) sink(conn.handleEvent(ev));
  };
  t.onEvent = () => {
    if (!scheduled) {
      scheduled = true;
      schedule(run);
    }
  };
  if (t.inbox.length) t.onEvent();
}

export interface MemoryH3 {
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  client: H3Connection;
  server: H3Connection;
  clientSession: H3ClientSession;
  serverSession: H3ServerSession;
  transports: { client: MemoryTransport; server: MemoryTransport };
}

export function connectInMemory(
  handler: FetchHandler,
  opts: { client?: H3ConnectionOptions; server?: H3ConnectionOptions; onError?: (e: unknown) => void } = {},
): MemoryH3 {
  const transports = memoryTransportPair();
  const client = new H3Connection(transports.client, opts.client);
  const server = new H3Connection(transports.server, opts.server);
  const clientSession = new H3ClientSession(client);
  const serverSession = new H3ServerSession(server, handler, opts.onError ? { onError: opts.onError } : {});
  driveMemoryTransport(transports.client, client, (evs) => clientSession.handleEvents(evs));
  driveMemoryTransport(transports.server, server, (evs) => serverSession.handleEvents(evs));
  return { fetch: (i, init) => clientSession.fetch(i, init), client, server, clientSession, serverSession, transports };
}
