/**
 * Web-standard Request/Response over a sans-I/O {@link H3Connection}:
 *  - {@link H3ServerSession}: HTTP/3 requests → `handler(request: Request) => Response | Promise<Response>`
 *    (the Deno.serve / Bun.serve / Hono shape), responses streamed back;
 *  - {@link H3ClientSession}: `fetch(input, init) → Promise<Response>` with streamed bodies.
 * Both consume the H3Events the driver gets from `conn.handleEvent(...)`; the driver passes them
 * to `handleEvents`. Writes go straight to the transport; `wake` (optional) tells the driver that
 * asynchronous code wrote something (so a QUIC driver can poll for datagrams).
 * Outgoing bodies respect transport backpressure (they pause above BODY_HIGH_WATER_MARK bytes
 * queued and resume on 'writable'); incoming bodies are demand-driven: above
 * BODY_READ_HIGH_WATER_MARK bytes queued in the body stream (not yet read by the application) the
 * stream's transport reading is paused (`H3Connection.pauseReading`) until the application reads
 * again, so QUIC flow control bounds what a peer can push into a handler that reads slowly or not at
 * all. Not yet: trailers in the web API.
 */
import { H3Error } from './errors.js';
import type { H3Connection, H3Event } from './connection.js';
import type { FieldLine } from './qpack/decoder.js';

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Body writes pause while more than this many bytes wait in the transport (per stream). */
export const BODY_HIGH_WATER_MARK = 256 * 1024;

/**
 * Incoming bodies: above this many bytes queued in the body stream and not yet read by the
 * application, reading from the transport pauses (per stream). What a peer can make us hold per
 * unread body is then this plus the QUIC stream receive window.
 */
export const BODY_READ_HIGH_WATER_MARK = 256 * 1024;

export interface SessionOptions {
  /** Called after asynchronous writes (response or request body chunks). */
  wake?: () => void;
  /** Server: errors thrown by the handler (default: ignored, a 500 is sent). */
  onError?: (error: unknown) => void;
  /**
   * Client: requests that may wait for a stream while the server's stream limit is reached
   * (default {@link DEFAULT_MAX_QUEUED_REQUESTS}); beyond it fetch() rejects at once.
   */
  maxQueuedRequests?: number;
}

/** Client: default bound on requests waiting for the server to allow more streams. */
export const DEFAULT_MAX_QUEUED_REQUESTS = 10_000;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** Headers values are ByteStrings: UTF-8 text is carried as its bytes, one char per byte. */
function toByteString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      let out = '';
      for (const b of new TextEncoder().encode(s)) out += String.fromCharCode(b);
      return out;
    }
  }
  return s;
}

function fieldsToHeaders(fields: readonly FieldLine[]): Headers {
  const h = new Headers();
  const cookies: string[] = [];
  for (const [name, value] of fields) {
    if (name.startsWith(':')) continue;
    // RFC 9114 §4.2.1: split cookie lines are joined with "; " for generic HTTP contexts.
    if (name === 'cookie') cookies.push(value);
    else h.append(name, toByteString(value));
  }
  if (cookies.length) h.set('cookie', toByteString(cookies.join('; ')));
  return h;
}

function headersToFields(h: Headers, into: FieldLine[]): FieldLine[] {
  h.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && name !== 'set-cookie') into.push([name, value]);
  });
  for (const c of h.getSetCookie()) into.push(['set-cookie', c]);
  return into;
}

interface Body {
  controller: ReadableStreamDefaultController<Uint8Array> | null;
  stream: ReadableStream<Uint8Array>;
  closed: boolean;
  /** Transport reading is paused for this body (its queue is above the high-water mark). */
  paused: boolean;
  conn: H3Connection;
  id: number;
  wake: (() => void) | undefined;
}

function makeBody(conn: H3Connection, id: number, wake: (() => void) | undefined, onCancel: () => void): Body {
  const b: Body = { controller: null, stream: null!, closed: false, paused: false, conn, id, wake };
  b.stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        b.controller = c;
      },
      // The application read below the high-water mark: deliver what the transport holds.
      pull() {
        if (b.paused && !b.closed) {
          b.paused = false;
          conn.resumeReading(id);
          wake?.();
        }
      },
      cancel() {
        b.closed = true;
        if (b.paused) {
          b.paused = false;
          conn.resumeReading(id);
        }
        onCancel();
      },
    },
    { highWaterMark: BODY_READ_HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
  );
  return b;
}

function bodyPush(b: Body | undefined, data: Uint8Array): void {
  if (!b || b.closed) return;
  const c = b.controller!;
  c.enqueue(data.slice());
  if (!b.paused && (c.desiredSize ?? 1) <= 0) {
    b.paused = true;
    b.conn.pauseReading(b.id);
  }
}
function bodyEnd(b: Body | undefined): void {
  if (b && !b.closed) {
    b.closed = true;
    b.controller!.close();
  }
}
function bodyError(b: Body | undefined, e: Error): void {
  if (b && !b.closed) {
    b.closed = true;
    b.controller!.error(e);
  }
}

/** Resolvers waiting for 'writable' per stream (backpressure). */
class WritableWaiters {
  private readonly waiting = new Map<number, (() => void)[]>();
  wait(id: number): Promise<void> {
    return new Promise((resolve) => {
      let list = this.waiting.get(id);
      if (!list) this.waiting.set(id, (list = []));
      list.push(resolve);
    });
  }
  wake(id: number): void {
    const list = this.waiting.get(id);
    if (!list) return;
    this.waiting.delete(id);
    for (const r of list) r();
  }
  wakeAll(): void {
    for (const id of [...this.waiting.keys()]) this.wake(id);
  }
}

/** What {@link sendBody} exposes to its caller while a body is being sent. */
interface BodySending {
  /** Cancels the body's stream (the peer went away): a pending read ends, the source's cancel runs. */
  cancel?: (reason: unknown) => void;
}

/**
 * Streams a web body into an HTTP/3 request stream. Returns when done or abandoned. A body that
 * errors resets the stream with H3_INTERNAL_ERROR and is reported to `onError`.
 */
async function sendBody(
  conn: H3Connection,
  id: number,
  body: ReadableStream<Uint8Array>,
  isGone: () => boolean,
  waiters: WritableWaiters,
  wake?: () => void,
  sending: BodySending = {},
  onError?: (e: unknown) => void,
): Promise<void> {
  try {
    const reader = body.getReader(); // throws if the stream is locked
    sending.cancel = (reason) => void reader.cancel(reason).catch(() => {});
    for (;;) {
      while (!isGone() && conn.bufferedAmount(id) > BODY_HIGH_WATER_MARK) await waiters.wait(id);
      if (isGone()) {
        await reader.cancel().catch(() => {});
        return;
      }
      const { done, value } = await reader.read();
      if (isGone()) {
        await reader.cancel().catch(() => {});
        return;
      }
      if (done) {
        conn.sendData(id, new Uint8Array(0), true);
        wake?.();
        return;
      }
      if (value.length) {
        conn.sendData(id, value, false);
        wake?.();
      }
    }
  } catch (e) {
    if (!isGone()) {
      conn.cancel(id, H3Error.H3_INTERNAL_ERROR);
      onError?.(e);
    }
    wake?.();
  } finally {
    sending.cancel = undefined;
  }
}

interface ServerStream {
  body: Body | undefined;
  /** Aborts `request.signal`: the client reset the stream or the connection closed. */
  abort: AbortController;
  /** The response body being sent, if any. */
  sending: BodySending;
  gone: boolean;
  requestDone: boolean;
  responseDone: boolean;
}

export class H3ServerSession {
  private readonly streams = new Map<number, ServerStream>();
  private readonly waiters = new WritableWaiters();

  constructor(
    readonly conn: H3Connection,
    private readonly handler: FetchHandler,
    private readonly opts: SessionOptions = {},
  ) {}

  handleEvents(events: H3Event[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case 'headers':
          this.onRequest(ev.streamId, ev.headers);
          break;
        case 'data':
          bodyPush(this.streams.get(ev.streamId)?.body, ev.data);
          break;
        case 'writable':
          this.waiters.wake(ev.streamId);
          break;
        case 'end': {
          const s = this.streams.get(ev.streamId);
          if (s) {
            bodyEnd(s.body);
            s.requestDone = true;
            this.settle(ev.streamId, s);
          }
          break;
        }
        case 'streamReset':
        case 'streamError':
        case 'stopSending': {
          const s = this.streams.get(ev.streamId);
          // A reset of a request we no longer read (we stopped reading it, RFC 9114 §4.1.1, or it
          // is complete) does not concern the response: H3Connection does not report one, and a
          // response in progress must finish anyway.
          if (s && !(ev.type === 'streamReset' && s.requestDone)) {
            this.abandon(ev.streamId, s, new Error(`request stream reset (0x${ev.code.toString(16)})`));
            this.streams.delete(ev.streamId);
          }
          this.waiters.wake(ev.streamId);
          break;
        }
        case 'closed':
        case 'connectionError':
          for (const [id, s] of this.streams) this.abandon(id, s, new Error('connection closed'));
          this.streams.clear();
          this.waiters.wakeAll();
          break;
      }
    }
  }

  /**
   * The client is gone (stream reset, connection closed): the request body errors, `request.signal`
   * aborts and the response body stream is cancelled, so the application can stop its work.
   */
  private abandon(id: number, s: ServerStream, reason: Error): void {
    s.gone = true;
    bodyError(s.body, reason);
    if (!s.requestDone && !this.conn.closed) {
      // E.g. STOP_SENDING alone: the request side is still open, perhaps paused with its FIN
      // unread. Nobody reads it any more: stop it, or the stream (and its QUIC credit) stays.
      s.requestDone = true;
      this.conn.stopReading(id, H3Error.H3_REQUEST_CANCELLED);
      this.opts.wake?.();
    }
    if (s.body?.paused) {
      s.body.paused = false;
      this.conn.resumeReading(id); // what the transport held is discarded by H3Connection
    }
    const abort = s.abort;
    const cancel = s.sending.cancel;
    // Application code runs in abort listeners and cancel(): outside our event handling.
    queueMicrotask(() => {
      try {
        abort.abort(reason);
      } catch (e) {
        this.reportError(e);
      }
      cancel?.(reason);
    });
  }

  /** Hands an error to `onError`; an onError that throws is not our caller's problem. */
  private reportError(e: unknown): void {
    try {
      this.opts.onError?.(e);
    } catch {
      /* the application's error reporter failed: nothing left to tell */
    }
  }

  /** Forgets a stream once both directions are finished. */
  private settle(id: number, s: ServerStream): void {
    if (s.responseDone && !s.requestDone && s.body?.paused && !s.gone && !this.conn.closed) {
      // The response is complete and the handler left a full body buffer unread: it is not going
      // to read the rest. Stop the peer (STOP_SENDING H3_NO_ERROR, RFC 9114 §4.1.1) instead of
      // holding the stream (and its flow-control window) open until the connection ends.
      s.requestDone = true;
      bodyError(s.body, new Error('request body abandoned: the response was complete'));
      this.conn.stopReading(id);
      this.opts.wake?.();
    }
    if (s.requestDone && s.responseDone) this.streams.delete(id);
  }

  /** Number of requests in progress (tests, graceful shutdown). */
  get activeRequests(): number {
    return this.streams.size;
  }

  private onRequest(id: number, fields: FieldLine[]): void {
    const pseudo = new Map(fields.filter(([n]) => n.startsWith(':')));
    const method = pseudo.get(':method')!;
    const headers = fieldsToHeaders(fields);
    const authority = pseudo.get(':authority') ?? headers.get('host') ?? 'localhost';
    const s: ServerStream = { body: undefined, abort: new AbortController(), sending: {}, gone: false, requestDone: false, responseDone: false };
    const hasBody = method !== 'GET' && method !== 'HEAD';
    if (hasBody) {
      // The handler does not want the rest of the request body: stop reading, keep responding.
      s.body = makeBody(this.conn, id, this.opts.wake, () => {
        this.conn.stopReading(id);
        s.requestDone = true;
        this.settle(id, s);
        this.opts.wake?.();
      });
    }
    this.streams.set(id, s);
    let request: Request;
    try {
      const init: RequestInit & { duplex?: string } = { method, headers, signal: s.abort.signal };
      if (hasBody) {
        init.body = s.body!.stream;
        init.duplex = 'half';
      }
      request = new Request(`${pseudo.get(':scheme')}://${authority}${pseudo.get(':path') ?? '/'}`, init);
    } catch (e) {
      this.reportError(e);
      this.respond(id, s, new Response(null, { status: 400 }), method);
      return;
    }
    void (async () => {
      let response: Response;
      try {
        response = await this.handler(request);
        if (!(response instanceof Response)) {
          const what = response === null ? 'null' : typeof response === 'object' ? `a ${(response as object).constructor?.name ?? 'object'}` : typeof response;
          throw new TypeError(`the request handler returned ${what} instead of a Response`);
        }
      } catch (e) {
        this.reportError(e);
        response = new Response(null, { status: 500 });
      }
      this.respond(id, s, response, method);
    })();
  }

  private respond(id: number, s: ServerStream, response: Response, method: string): void {
    if (s.gone || this.conn.closed) {
      this.streams.delete(id);
      discardBody(response); // e.g. a file stream: its source learns nobody will read it
      return;
    }
    if (response.body?.locked) {
      // Someone else reads this body: it cannot be sent. Say so before any header went out.
      this.reportError(new TypeError('the response body stream is locked (already being read): it cannot be sent'));
      response = new Response(null, { status: 500 });
    }
    const fields = headersToFields(response.headers, [[':status', String(response.status)]]);
    const body = method === 'HEAD' ? null : response.body;
    // A HEAD response carries no content (RFC 9110 §9.3.2): the handler's body is not read.
    if (body === null) discardBody(response);
    try {
      this.conn.sendHeaders(id, fields, body === null);
    } catch (e) {
      discardBody(response);
      this.reportError(e);
      this.conn.cancel(id, H3Error.H3_INTERNAL_ERROR);
      this.streams.delete(id);
      this.opts.wake?.();
      return;
    }
    this.opts.wake?.();
    if (body === null) {
      s.responseDone = true;
      this.settle(id, s);
      return;
    }
    void sendBody(this.conn, id, body, () => s.gone || this.conn.closed, this.waiters, this.opts.wake, s.sending, (e) => this.reportError(e)).finally(() => {
      s.responseDone = true;
      this.settle(id, s);
    });
  }
}

/** Cancels a response body that will not be sent (its source can release what it holds). */
function discardBody(response: Response): void {
  if (response.body && !response.body.locked) void response.body.cancel().catch(() => {});
}

interface ClientStream {
  resolve: (r: Response) => void;
  reject: (e: unknown) => void;
  body: Body | undefined;
  method: string;
  gone: boolean;
  /** The server sent STOP_SENDING: stop sending the request body, keep reading the response. */
  sendStopped: boolean;
  /** The request body being sent, if any. */
  sending: BodySending;
  /** Removes our listener from the request's AbortSignal (it may outlive the request). */
  detach: () => void;
}

/** A request waiting for a stream (the server's stream limit is reached). */
interface QueuedRequest {
  /** Sends the request if a stream can be opened now; false if not (still at the limit). */
  start: () => boolean;
  /** Rejects the fetch (connection closed, GOAWAY) and forgets the abort listener. */
  fail: (e: unknown) => void;
}

export class H3ClientSession {
  private readonly streams = new Map<number, ClientStream>();
  private readonly waiters = new WritableWaiters();
  /**
   * Requests waiting, in order, for the server to raise its stream limit (QUIC MAX_STREAMS):
   * like browsers and undici, more concurrent fetches than the limit wait instead of failing.
   */
  private readonly queue: QueuedRequest[] = [];

  constructor(
    readonly conn: H3Connection,
    private readonly opts: SessionOptions = {},
  ) {}

  /** The WHATWG fetch shape over this connection. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    let req: Request;
    try {
      req = new Request(input, init);
    } catch (e) {
      return Promise.reject(e);
    }
    const url = new URL(req.url);
    const fields: FieldLine[] = [
      [':method', req.method],
      [':scheme', url.protocol.slice(0, -1)],
      [':authority', url.host],
      [':path', url.pathname + url.search],
    ];
    headersToFields(req.headers, fields);
    if (req.signal.aborted) return Promise.reject(req.signal.reason);
    return new Promise<Response>((resolve, reject) => {
      let queued: QueuedRequest | null = null;
      const leaveQueue = (): void => {
        req.signal.removeEventListener('abort', onQueuedAbort);
        const i = queued ? this.queue.indexOf(queued) : -1;
        if (i >= 0) this.queue.splice(i, 1);
        queued = null;
      };
      const onQueuedAbort = (): void => {
        leaveQueue();
        reject(req.signal.reason);
      };
      const start = (): boolean => {
        let id: number | null;
        try {
          id = this.conn.trySendRequest(fields, req.body === null);
        } catch (e) {
          leaveQueue();
          reject(new TypeError(`fetch failed: ${e instanceof Error ? e.message : String(e)}`));
          return true;
        }
        if (id === null) return false;
        leaveQueue();
        this.started(id, req, resolve, reject);
        return true;
      };
      // Requests already waiting go first (FIFO), so a new one does not overtake them.
      if (this.queue.length === 0 && start()) return;
      const max = this.opts.maxQueuedRequests ?? DEFAULT_MAX_QUEUED_REQUESTS;
      if (this.queue.length >= max) {
        reject(new TypeError(`fetch failed: stream limit reached and ${this.queue.length} requests already wait for a stream`));
        return;
      }
      queued = {
        start,
        fail: (e) => {
          leaveQueue();
          reject(e);
        },
      };
      this.queue.push(queued);
      req.signal.addEventListener('abort', onQueuedAbort);
    });
  }

  /** Number of requests waiting for a stream (the server's stream limit is reached). */
  get queuedRequests(): number {
    return this.queue.length;
  }

  /** Sends queued requests while the transport gives streams. */
  private drainQueue(): void {
    while (this.queue.length > 0) {
      if (!this.queue[0]!.start()) return;
    }
  }

  /** Rejects every queued request (no stream will come on this connection). */
  private failQueue(why: string): void {
    for (const q of [...this.queue]) q.fail(new TypeError(`fetch failed: ${why}`));
  }

  /** The request went out on stream `id`: wire its response, abort and body. */
  private started(id: number, req: Request, resolve: (r: Response) => void, reject: (e: unknown) => void): void {
    this.opts.wake?.();
    const onAbort = (): void => {
      if (s.gone) return;
      this.fail(id, s, req.signal.reason);
      this.conn.cancel(id);
      this.opts.wake?.();
    };
    const s: ClientStream = {
      resolve,
      reject,
      body: undefined,
      method: req.method,
      gone: false,
      sendStopped: false,
      sending: {},
      detach: () => req.signal.removeEventListener('abort', onAbort),
    };
    this.streams.set(id, s);
    req.signal.addEventListener('abort', onAbort);
    if (req.body) {
      const bodyFailed = (e: unknown): void => {
        if (!s.gone) this.fail(id, s, new TypeError(`fetch failed: the request body stream errored: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
      };
      void sendBody(this.conn, id, req.body, () => s.gone || s.sendStopped || this.conn.closed, this.waiters, this.opts.wake, s.sending, bodyFailed);
    }
  }

  private fail(id: number, s: ClientStream, e: unknown): void {
    s.gone = true;
    this.streams.delete(id);
    s.detach();
    this.stopUpload(s, e);
    this.waiters.wake(id); // an upload waiting for 'writable' sees that it is gone
    if (s.body) bodyError(s.body, e instanceof Error ? e : new Error(String(e)));
    else s.reject(e);
  }

  /**
   * The request body is no longer wanted (abort, reset, STOP_SENDING, connection closed): its
   * source is cancelled, so a body that waits for data (a pending pull) learns it at once.
   */
  private stopUpload(s: ClientStream, reason: unknown): void {
    const cancel = s.sending.cancel;
    if (cancel) queueMicrotask(() => cancel(reason));
  }

  handleEvents(events: H3Event[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case 'headers': {
          const s = this.streams.get(ev.streamId);
          if (!s || s.body) break;
          const status = Number(ev.headers.find(([n]) => n === ':status')![1]);
          if (status < 200) break; // interim response
          const headers = fieldsToHeaders(ev.headers);
          const id = ev.streamId;
          s.body = makeBody(this.conn, id, this.opts.wake, () => {
            if (!s.gone) {
              s.gone = true;
              this.streams.delete(id);
              s.detach();
              this.waiters.wake(id);
              this.conn.cancel(id);
              this.opts.wake?.();
            }
          });
          const nullBody = NULL_BODY_STATUS.has(status) || s.method === 'HEAD';
          let res: Response;
          try {
            res = new Response(nullBody ? null : s.body.stream, { status, headers });
          } catch (e) {
            // E.g. a status outside 200..599, which a Response cannot carry (RFC 9110 §15: invalid).
            s.body = undefined; // no Response was handed out: the fetch promise itself rejects
            this.fail(id, s, new TypeError(`fetch failed: unusable response (status ${status}): ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
            this.conn.cancel(id, H3Error.H3_MESSAGE_ERROR);
            this.opts.wake?.();
            break;
          }
          s.resolve(res);
          if (nullBody) bodyEnd(s.body);
          break;
        }
        case 'data':
          bodyPush(this.streams.get(ev.streamId)?.body, ev.data);
          break;
        case 'end': {
          const s = this.streams.get(ev.streamId);
          if (s) {
            bodyEnd(s.body);
            this.streams.delete(ev.streamId);
            s.detach();
          }
          break;
        }
        case 'writable':
          this.waiters.wake(ev.streamId);
          break;
        case 'stopSending': {
          const s = this.streams.get(ev.streamId);
          if (s) {
            s.sendStopped = true;
            this.stopUpload(s, new Error(`the server stopped the request body (0x${ev.code.toString(16)})`));
          }
          this.waiters.wake(ev.streamId);
          break;
        }
        case 'streamReset':
        case 'streamError': {
          const s = this.streams.get(ev.streamId);
          if (s) this.fail(ev.streamId, s, new TypeError(`fetch failed: stream reset with 0x${ev.code.toString(16)}`));
          this.waiters.wake(ev.streamId);
          break;
        }
        case 'streamsAvailable':
          this.drainQueue();
          break;
        case 'goaway':
          // §5.2: no new request may be sent on this connection (a pool retries elsewhere).
          this.failQueue('the server sent GOAWAY before the request could be sent');
          break;
        case 'closed':
        case 'connectionError':
          this.failQueue(`connection closed (0x${ev.code.toString(16)}) before the request could be sent`);
          for (const [id, s] of [...this.streams]) this.fail(id, s, new TypeError(`fetch failed: connection closed (0x${ev.code.toString(16)})`));
          this.waiters.wakeAll();
          break;
      }
    }
  }
}
