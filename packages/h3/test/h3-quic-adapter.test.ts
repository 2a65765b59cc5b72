// QuicH3Transport: HTTP/3 over an object with the QuicConnection API (pull reads, partial writes).
// The fake QUIC here only moves stream bytes between two peers with a small send window.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ConnectionEvent, QuicConnection, StreamChunk } from '@petrel/quic/api';
import { H3Connection, type H3Event } from '../src/connection.js';
import { H3OverQuic, QuicH3Transport } from '../src/quic-adapter.js';
import { GET } from './h3-support.js';
import { BODY_HIGH_WATER_MARK, BODY_READ_HIGH_WATER_MARK, H3ClientSession, H3ServerSession } from '../src/web.js';

class FakeQuic {
  peer!: FakeQuic;
  events: ConnectionEvent[] = [];
  recv = new Map<number, { chunks: Uint8Array[]; fin: boolean; finRead: boolean }>();
  credit = 700; // bytes accepted per tick
  blocked = new Set<number>();
  nextBidi: number;
  nextUni: number;
  closedWith: number | null = null;
  constructor(readonly role: 'client' | 'server') {
    this.nextBidi = role === 'client' ? 0 : 1;
    this.nextUni = role === 'client' ? 2 : 3;
  }
  openStream(bidi: boolean): number | null {
    const id = bidi ? this.nextBidi : this.nextUni;
    if (bidi) this.nextBidi += 4;
    else this.nextUni += 4;
    return id;
  }
  write(id: number, data: Uint8Array, fin = false): number {
    const n = Math.min(this.credit, data.length);
    this.credit -= n;
    if (n < data.length) this.blocked.add(id);
    const all = n === data.length;
    let r = this.peer.recv.get(id);
    if (!r) {
      r = { chunks: [], fin: false, finRead: false };
      this.peer.recv.set(id, r);
      this.peer.events.push({ type: 'streamOpened', id, bidi: (id & 2) === 0 });
    }
    if (n) r.chunks.push(data.slice(0, n));
    if (fin && all) r.fin = true;
    if (n || (fin && all)) this.peer.events.push({ type: 'streamReadable', id });
    return n;
  }
  read(id: number): StreamChunk | null {
    const r = this.recv.get(id);
    if (!r || r.finRead) return null;
    const c = r.chunks.shift();
    if (c) return { data: c, fin: r.fin && r.chunks.length === 0 && (r.finRead = true) };
    if (r.fin) {
      r.finRead = true;
      return { data: new Uint8Array(0), fin: true };
    }
    return null;
  }
  resetStream(id: number, code: number): void {
    this.peer.events.push({ type: 'streamReset', id, code, finalSize: 0 });
  }
  stopSending(id: number, code: number): void {
    this.peer.events.push({ type: 'streamStopped', id, code });
  }
  close(code: number, reason: string): void {
    this.closedWith = code;
    this.peer.events.push({ type: 'closed', info: { code, reason, frameType: 0, application: true, remote: true, kind: 'close' } });
  }
  pollEvent(): ConnectionEvent | undefined {
    return this.events.shift();
  }
  tick(): void {
    this.credit = 700;
    for (const id of [...this.blocked]) {
      this.blocked.delete(id);
      this.events.push({ type: 'streamWritable', id });
    }
  }
}

test('request/response with a 100 kB body through partial writes and pull reads', () => {
  const cq = new FakeQuic('client');
  const sq = new FakeQuic('server');
  cq.peer = sq;
  sq.peer = cq;
  const ct = new QuicH3Transport(cq as unknown as QuicConnection, () => 0);
  const st = new QuicH3Transport(sq as unknown as QuicConnection, () => 0);
  const client = new H3Connection(ct);
  const server = new H3Connection(st);
  const cev: H3Event[] = [];
  const sev: H3Event[] = [];
  const body = new Uint8Array(100_000).map((_, i) => i % 251);
  const id = client.sendRequest([...GET, ['x-big', 'yes']], true);
  let responded = false;
  for (let round = 0; round < 2000; round++) {
    cq.tick();
    sq.tick();
    for (let ev; (ev = cq.pollEvent()); ) for (const t of ct.translate(ev)) cev.push(...client.handleEvent(t));
    for (let ev; (ev = sq.pollEvent()); ) for (const t of st.translate(ev)) sev.push(...server.handleEvent(t));
    if (!responded && sev.some((e) => e.type === 'end')) {
      responded = true;
      server.sendHeaders(id, [[':status', '200'], ['content-length', String(body.length)]]);
      server.sendData(id, body, true);
      assert.ok(st.bufferedAmount(id) > 0, 'the send window forced queueing');
    }
    if (cev.some((e) => e.type === 'end')) break;
  }
  assert.equal(sev.filter((e) => e.type !== 'settings').map((e) => e.type), ['headers', 'end']);
  const data = cev.filter((e): e is Extract<H3Event, { type: 'data' }> => e.type === 'data');
  const got = new Uint8Array(data.reduce((n, d) => n + d.data.length, 0));
  let o = 0;
  for (const d of data) (got.set(d.data, o), (o += d.data.length));
  assert.equal(got, body);
  assert.ok(cev.some((e) => e.type === 'end'));
  assert.is(st.bufferedAmount(id), 0);
  client.close();
  assert.is(cq.closedWith, 0x100);
});

test('H3OverQuic bundles adapter and connection', () => {
  const cq = new FakeQuic('client');
  const sq = new FakeQuic('server');
  cq.peer = sq;
  sq.peer = cq;
  const c = new H3OverQuic(cq as unknown as QuicConnection, () => 0);
  const s = new H3OverQuic(sq as unknown as QuicConnection, () => 0);
  const id = c.h3.sendRequest(GET, true);
  const sev: H3Event[] = [];
  const cev: H3Event[] = [];
  for (let i = 0; i < 50; i++) {
    cq.tick();
    sq.tick();
    sev.push(...s.poll());
    if (sev.some((e) => e.type === 'end') && s.h3.activeRequests === 1) s.h3.sendHeaders(id, [[':status', '204']], true);
    cev.push(...c.poll());
  }
  assert.equal(cev.filter((e) => e.type !== 'settings').map((e) => e.type), ['headers', 'end']);
});

test('web sessions over the adapter: a 4 MB streamed response respects backpressure', async () => {
  const cq = new FakeQuic('client');
  const sq = new FakeQuic('server');
  cq.peer = sq;
  sq.peer = cq;
  const c = new H3OverQuic(cq as unknown as QuicConnection, () => 0);
  const s = new H3OverQuic(sq as unknown as QuicConnection, () => 0);
  const chunk = new Uint8Array(64 * 1024).fill(9);
  let produced = 0;
  const server = new H3ServerSession(s.h3, () =>
    new Response(new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (produced >= 4 * 1024 * 1024) ctl.close();
        else {
          produced += chunk.length;
          ctl.enqueue(chunk);
        }
      },
    })),
  );
  const client = new H3ClientSession(c.h3);
  let maxBuffered = 0;
  let done = false;
  const fetched = client.fetch('https://a.example/big').then(async (r) => {
    const n = (await r.arrayBuffer()).byteLength;
    done = true;
    return n;
  });
  for (let round = 0; round < 20000 && !done; round++) {
    cq.credit = sq.credit = 0;
    cq.tick();
    sq.tick();
    sq.credit = 64 * 1024; // the server's link: 64 kB per round
    server.handleEvents(s.poll());
    client.handleEvents(c.poll());
    maxBuffered = Math.max(maxBuffered, s.transport.bufferedAmount(0));
    await new Promise((r) => setImmediate(r));
  }
  assert.is(await fetched, 4 * 1024 * 1024);
  assert.ok(maxBuffered <= BODY_HIGH_WATER_MARK + chunk.length + 1024, `max buffered ${maxBuffered}`);
  assert.ok(maxBuffered > 0);
});

test('receive backpressure: an unread response body stays in QUIC (reading pauses above the high-water mark), all of it arrives once read', async () => {
  const cq = new FakeQuic('client');
  const sq = new FakeQuic('server');
  cq.peer = sq;
  sq.peer = cq;
  const c = new H3OverQuic(cq as unknown as QuicConnection, () => 0);
  const s = new H3OverQuic(sq as unknown as QuicConnection, () => 0);
  // Count what the adapter takes out of the client's QUIC on the request stream.
  let taken = 0;
  const read = cq.read.bind(cq);
  cq.read = (id: number) => {
    const ch = read(id);
    if (id === 0 && ch) taken += ch.data.length;
    return ch;
  };
  const total = 2 * 1024 * 1024;
  const server = new H3ServerSession(s.h3, () => new Response(new Uint8Array(total).fill(7)));
  const client = new H3ClientSession(c.h3);
  const res = client.fetch('https://a.example/big');
  const step = async (): Promise<void> => {
    cq.credit = sq.credit = 0;
    cq.tick();
    sq.tick();
    sq.credit = 64 * 1024;
    server.handleEvents(s.poll());
    client.handleEvents(c.poll());
    await new Promise((r) => setImmediate(r));
  };
  for (let i = 0; i < 100; i++) await step();
  const r = await res;
  const held = cq.recv.get(0)!.chunks.reduce((n, ch) => n + ch.length, 0);
  assert.ok(taken <= BODY_READ_HIGH_WATER_MARK + 2 * 64 * 1024, `the adapter read ${taken} bytes of an unread body`);
  assert.ok(held > total / 2, `${held} bytes wait in QUIC`);
  // Reading resumes the stream: everything arrives, in order.
  let got = 0;
  let done = false;
  const reading = (async () => {
    const rd = r.body!.getReader();
    for (;;) {
      const { done: d, value } = await rd.read();
      if (d) break;
      for (const b of value) assert.is(b, 7);
      got += value.length;
    }
    done = true;
  })();
  for (let i = 0; i < 2000 && !done; i++) await step();
  await reading;
  assert.is(got, total);
});

test('receive backpressure: a handler that responds without reading a large upload stops the upload (STOP_SENDING H3_NO_ERROR) once its response is complete', async () => {
  const cq = new FakeQuic('client');
  const sq = new FakeQuic('server');
  cq.peer = sq;
  sq.peer = cq;
  const c = new H3OverQuic(cq as unknown as QuicConnection, () => 0);
  const s = new H3OverQuic(sq as unknown as QuicConnection, () => 0);
  const stopped: number[] = [];
  const stop = sq.stopSending.bind(sq);
  sq.stopSending = (id: number, code: number) => {
    stopped.push(code);
    stop(id, code);
  };
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = new H3ServerSession(s.h3, async () => {
    await gate; // responds later, never reads the body
    return new Response('no thanks');
  });
  const client = new H3ClientSession(c.h3);
  const total = 4 * 1024 * 1024;
  const res = client.fetch('https://a.example/upload', { method: 'POST', body: new Uint8Array(total) });
  let text: string | null = null;
  void res.then(async (r) => (text = await r.text()));
  for (let i = 0; i < 3000 && text === null; i++) {
    cq.credit = sq.credit = 0;
    cq.tick();
    sq.tick();
    cq.credit = 64 * 1024;
    server.handleEvents(s.poll());
    client.handleEvents(c.poll());
    if (i === 200) release();
    await new Promise((r) => setImmediate(r));
  }
  assert.is(text, 'no thanks');
  assert.equal(stopped, [0x100], 'STOP_SENDING with H3_NO_ERROR');
  assert.is(server.activeRequests, 0, 'the request is forgotten');
});

test.run();
