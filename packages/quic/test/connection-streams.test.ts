import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

for (const provider of providers) {
  test(`[${provider.name}] read(): data in order, fin reported exactly once after the last byte, then null`, () => {
    const p = new Pair({ provider, delay: 5 });
    assert.ok(p.handshake());
    const id = p.client.openStream(true)!;
    p.client.write(id, enc('hello '));
    p.client.write(id, enc('world'), true);
    assert.ok(p.runUntil(() => p.events('server', 'streamReadable').length > 0, 1000));
    p.runFor(100);
    const chunks: { s: string; fin: boolean }[] = [];
    for (let i = 0; i < 10; i++) {
      const c = p.server!.read(id, 4);
      if (!c) break;
      chunks.push({ s: new TextDecoder().decode(c.data), fin: c.fin });
    }
    assert.is(chunks.map((c) => c.s).join(''), 'hello world');
    assert.is(chunks.filter((c) => c.fin).length, 1, JSON.stringify(chunks));
    assert.ok(chunks[chunks.length - 1]!.fin);
    assert.is(p.server!.read(id), null);
    assert.is(p.server!.read(id), null);
  });

  test(`[${provider.name}] a stream with only a FIN: one empty chunk with fin, then null`, () => {
    const p = new Pair({ provider, delay: 5 });
    assert.ok(p.handshake());
    const id = p.client.openStream(false)!;
    p.client.write(id, new Uint8Array(0), true);
    assert.ok(p.runUntil(() => p.events('server', 'streamReadable').length > 0, 1000));
    const c = p.server!.read(id);
    assert.ok(c && c.fin && c.data.length === 0);
    assert.is(p.server!.read(id), null);
  });

  test(`[${provider.name}] RESET_STREAM reaches the reader with code and final size; STOP_SENDING makes the writer reset with the code`, () => {
    const p = new Pair({ provider, delay: 5 });
    assert.ok(p.handshake());
    const a = p.client.openStream(true)!;
    p.client.write(a, new Uint8Array(1000));
    p.runFor(50);
    p.client.resetStream(a, 5);
    p.runFor(50);
    const r = p.events('server', 'streamReset');
    assert.equal(r.map((e) => [e.id, e.code, e.finalSize]), [[a, 5, 1000]]);
    assert.is(p.client.write(a, new Uint8Array(10)), 0, 'no writes after reset');

    const b = p.client.openStream(true)!;
    p.client.write(b, new Uint8Array(100));
    p.runFor(50);
    p.server!.stopSending(b, 6);
    p.runFor(50);
    assert.equal(p.events('client', 'streamStopped').map((e) => [e.id, e.code]), [[b, 6]]);
    assert.ok(p.events('server', 'streamReset').some((e) => e.id === b && e.code === 6), 'RESET_STREAM in answer (§3.5)');
    assert.is(p.client.write(b, new Uint8Array(10)), 0);
    assert.not.ok(p.client.isClosed || p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] MAX_STREAMS credit returns when streams end on both sides`, () => {
    const p = new Pair({ provider, delay: 5, server: { maxStreamsBidi: 2 } });
    assert.ok(p.handshake());
    const ids = [p.client.openStream(true), p.client.openStream(true), p.client.openStream(true)];
    assert.equal(ids, [0, 4, null]);
    for (const id of [0, 4]) p.client.write(id, enc('x'), true);
    p.runFor(50);
    for (const id of [0, 4]) {
      readAll(p.server!, id);
      p.server!.write(id, enc('y'), true);
    }
    p.runFor(50);
    for (const id of [0, 4]) readAll(p.client, id);
    assert.ok(p.runUntil(() => p.events('client', 'streamsAvailable').some((e) => e.bidi), 1000));
    assert.is(p.client.openStream(true), 8);
  });

  test(`[${provider.name}] DATAGRAM frames both ways when negotiated; refused when too large or not negotiated`, () => {
    const p = new Pair({ provider, delay: 5, client: { maxDatagramFrameSize: 1000 }, server: { maxDatagramFrameSize: 1000 } });
    assert.ok(p.handshake());
    assert.ok(p.client.sendDatagram(enc('ping')));
    assert.ok(p.server!.sendDatagram(enc('pong')));
    assert.not.ok(p.client.sendDatagram(new Uint8Array(1200)));
    p.runFor(50);
    assert.equal(p.events('server', 'datagram').map((e) => new TextDecoder().decode(e.data)), ['ping']);
    assert.equal(p.events('client', 'datagram').map((e) => new TextDecoder().decode(e.data)), ['pong']);
    const q = new Pair({ provider, delay: 5, client: { maxDatagramFrameSize: 1000 } });
    assert.ok(q.handshake());
    assert.not.ok(q.client.sendDatagram(enc('x')), 'the server did not offer datagrams');
  });
}

test('maxReassemblySegments reaches the stream manager; a nonsensical value is a ConfigError', () => {
  const provider = providers[0]!;
  const p = new Pair({ provider, delay: 5, client: { maxReassemblySegments: 7 }, server: { maxReassemblySegments: 9 } });
  assert.ok(p.handshake());
  const budget = (c: unknown): number => (c as { streams: { reassembly: { max: number } } }).streams.reassembly.max;
  assert.is(budget(p.client), 7);
  assert.is(budget(p.server), 9);
  assert.throws(() => new Pair({ provider, client: { maxReassemblySegments: 0 } }), /maxReassemblySegments/);
});

test('stopSending on a stream whose data and FIN all arrived unread (Data Recvd): the data is dropped, the connection window and the stream credit come back', () => {
  for (const provider of providers) {
    // The server allows 2 unidirectional streams and a 64 kB connection window; each stream brings
    // 40 kB + FIN that the application never reads but stops. Ten of them in a row must get through.
    const p = new Pair({ provider, delay: 5, server: { maxStreamsUni: 2, connectionWindow: 64 * 1024, maxConnectionWindow: 64 * 1024 } });
    assert.ok(p.handshake());
    let delivered = 0;
    for (let i = 0; i < 10; i++) {
      let id: number | null = null;
      assert.ok(p.runUntil(() => (id = p.client.openStream(false)) !== null, 2000), `stream ${i} could be opened (stream credit back)`);
      p.client.write(id!, new Uint8Array(40_000).fill(i), true);
      p.runFor(300); // everything arrives (Data Recvd), nothing is read
      const sid = id!;
      p.server!.stopSending(sid, 0x10c);
      delivered++;
      p.runFor(100);
    }
    assert.is(delivered, 10);
    const open = (p.server as unknown as { streams: { recvStreams: Map<number, unknown> } }).streams.recvStreams.size;
    assert.is(open, 0, `${open} receive streams still held by the server`);
    assert.equal(p.bugs(), []);
  }
});

test.run();
