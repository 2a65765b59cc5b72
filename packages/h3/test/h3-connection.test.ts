import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { H3Error, H3_DATAGRAM_ERROR } from '../src/errors.js';
import { H3UsageError } from '../src/errors.js';
import type { H3Event } from '../src/connection.js';
import { GET, Pair, bytes, text } from './h3-support.js';

function of<T extends H3Event['type']>(evs: H3Event[], type: T): Extract<H3Event, { type: T }>[] {
  return evs.filter((e) => e.type === type) as Extract<H3Event, { type: T }>[];
}

test('settings are exchanged', () => {
  const p = new Pair({ qpackMaxTableCapacity: 1000, maxFieldSectionSize: 5000 }).pump();
  const s = of(p.takeServer(), 'settings')[0]!.settings;
  assert.is(s.qpackMaxTableCapacity, 1000);
  assert.is(s.maxFieldSectionSize, 5000);
  assert.is(s.qpackBlockedStreams, 16);
  assert.is(of(p.takeClient(), 'settings').length, 1);
});

test('GET request and response with body and trailers', () => {
  const p = new Pair().pump();
  p.takeClient();
  p.takeServer();
  const id = p.client.sendRequest([...GET, ['user-agent', 'petrel']], true);
  assert.is(id, 0);
  p.pump();
  const sev = p.takeServer();
  assert.equal(sev.map((e) => e.type), ['headers', 'end']);
  assert.equal((sev[0] as { headers: unknown }).headers, [...GET, ['user-agent', 'petrel']]);
  p.server.sendHeaders(id, [[':status', '200'], ['content-type', 'text/plain']]);
  p.server.sendData(id, bytes('hello '));
  p.server.sendData(id, bytes('world'));
  p.server.sendTrailers(id, [['x-checksum', 'abc']]);
  p.pump();
  const cev = p.takeClient();
  assert.equal(cev.map((e) => e.type), ['headers', 'data', 'data', 'trailers', 'end']);
  assert.is(of(cev, 'data').map((e) => text(e.data)).join(''), 'hello world');
  assert.equal(of(cev, 'trailers')[0]!.trailers, [['x-checksum', 'abc']]);
  assert.is(p.client.activeRequests, 0);
  assert.is(p.server.activeRequests, 0);
});

test('POST with content-length, request trailers, interim response', () => {
  const p = new Pair().pump();
  const id = p.client.sendRequest([[':method', 'POST'], [':scheme', 'https'], [':authority', 'a.example'], [':path', '/up'], ['content-length', '6']]);
  p.client.sendData(id, bytes('abc'));
  p.client.sendData(id, bytes('def'));
  p.client.sendTrailers(id, [['x-t', '1']]);
  p.pump();
  const sev = p.takeServer().filter((e) => e.type !== 'settings');
  assert.equal(sev.map((e) => e.type), ['headers', 'data', 'data', 'trailers', 'end']);
  p.server.sendHeaders(id, [[':status', '103'], ['link', '</s.css>; rel=preload']]);
  p.server.sendHeaders(id, [[':status', '201']], true);
  p.pump();
  const cev = p.takeClient().filter((e) => e.type !== 'settings');
  assert.equal(cev.map((e) => e.type), ['headers', 'headers', 'end']);
});

test('the dynamic table is used for repeated fields, both directions acknowledged', () => {
  const p = new Pair().pump();
  const headers: [string, string][] = [...GET, ['user-agent', 'petrel/1.0 (test)'], ['x-custom', 'some repeated value']];
  const sizes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = p.ct.peer.inbox.length;
    const id = p.client.sendRequest(headers, true);
    const frame = p.ct.peer.inbox.slice(before).find((e) => e.type === 'streamData' && e.id === id);
    sizes.push(frame && frame.type === 'streamData' ? frame.data.length : -1);
    p.pump();
    p.server.sendHeaders(id, [[':status', '200'], ['server', 'petrel']], true);
    p.pump();
  }
  assert.ok(p.client.encoder.insertCount >= 2, `inserts ${p.client.encoder.insertCount}`);
  assert.ok(sizes[3]! < sizes[0]! / 2, `sizes ${sizes}`);
  assert.is(p.client.encoder.knownReceivedCount, p.client.encoder.insertCount);
  assert.is(p.server.decoder.insertCount, p.client.encoder.insertCount);
  const hs = of(p.takeServer(), 'headers');
  assert.is(hs.length, 4);
  for (const h of hs) assert.equal(h.headers, headers);
});

test('blocked streams: section arrives before encoder-stream inserts', () => {
  const p = new Pair({ encoder: { insertThreshold: 1 } }).pump();
  const id = p.client.sendRequest([...GET, ['x-a', '1'], ['x-b', '2']], true);
  // Deliver the request stream before the encoder stream bytes.
  const inbox = p.st.inbox;
  inbox.sort((a, b) => Number(a.type === 'streamData' && a.id === id ? -1 : 0) - Number(b.type === 'streamData' && b.id === id ? -1 : 0));
  const first = inbox.shift()!;
  assert.equal(p.server.handleEvent(first), []);
  assert.is(p.server.decoder.blockedStreamCount, 1);
  p.pump();
  const hs = of(p.takeServer(), 'headers');
  assert.equal(hs[0]!.headers, [...GET, ['x-a', '1'], ['x-b', '2']]);
  assert.is(p.server.decoder.blockedStreamCount, 0);
});

test('client cancels a request: server sees the reset, QPACK state cancelled', () => {
  const p = new Pair().pump();
  const id = p.client.sendRequest(GET, false);
  p.pump();
  p.takeServer();
  p.client.cancel(id);
  p.pump();
  const sev = p.takeServer();
  assert.equal(of(sev, 'streamReset'), [{ type: 'streamReset', streamId: id, code: H3Error.H3_REQUEST_CANCELLED }]);
  assert.ok(p.st.log.some((l) => l.op === 'reset' && l.id === id));
  assert.is(p.server.activeRequests, 0);
  assert.is(p.client.activeRequests, 0);
});

test('server refuses a request mid-way with stop sending', () => {
  const p = new Pair().pump();
  const id = p.client.sendRequest([[':method', 'POST'], [':scheme', 'https'], [':authority', 'a'], [':path', '/']]);
  p.pump();
  p.server.cancel(id, H3Error.H3_REQUEST_REJECTED);
  p.pump();
  const cev = p.takeClient();
  assert.ok(of(cev, 'streamReset').some((e) => e.code === H3Error.H3_REQUEST_REJECTED));
  assert.throws(() => p.client.sendData(id, bytes('x')), (e: unknown) => e instanceof H3UsageError);
});

test('GOAWAY: graceful shutdown rejects later requests, no new requests after it', () => {
  const p = new Pair().pump();
  const a = p.client.sendRequest(GET, true);
  p.pump();
  p.server.shutdown();
  // A request that crosses the GOAWAY in flight.
  const b = p.client.sendRequest(GET, true);
  p.pump();
  const cev = p.takeClient();
  assert.equal(of(cev, 'goaway'), [{ type: 'goaway', id: 4 }]);
  assert.ok(of(cev, 'streamReset').some((e) => e.streamId === b && e.code === H3Error.H3_REQUEST_REJECTED));
  assert.throws(() => p.client.sendRequest(GET, true), (e: unknown) => e instanceof H3UsageError);
  // Request a is still served.
  p.server.sendHeaders(a, [[':status', '204']], true);
  p.pump();
  assert.equal(p.takeClient().map((e) => e.type), ['headers', 'end']);
  assert.ok(!p.client.closed);
  p.client.close();
  p.pump();
  assert.is(of(p.takeServer(), 'closed')[0]!.code, H3Error.H3_NO_ERROR);
});

test('GOAWAY ids may not increase (shutdown API)', () => {
  const p = new Pair().pump();
  p.server.shutdown(8);
  p.server.shutdown(4);
  assert.throws(() => p.server.shutdown(8), (e: unknown) => e instanceof H3UsageError);
  p.pump();
  assert.equal(of(p.takeClient(), 'goaway').map((e) => e.id), [8, 4]);
});

test("headers larger than the peer's SETTINGS_MAX_FIELD_SECTION_SIZE are refused locally", () => {
  const p = new Pair({}, { maxFieldSectionSize: 200 }).pump();
  assert.throws(() => p.client.sendRequest([...GET, ['x-big', 'x'.repeat(300)]], true), (e: unknown) => e instanceof H3UsageError);
});

test('a field section over our limit is a stream error H3_EXCESSIVE_LOAD', () => {
  const p = new Pair({}, { maxFieldSectionSize: 300 });
  // Before the server's SETTINGS arrive the client does not know the limit.
  const id = p.client.sendRequest([...GET, ['x-big', 'y'.repeat(400)]], true);
  p.pump();
  const sev = p.takeServer();
  assert.equal(of(sev, 'streamError').map((e) => [e.streamId, e.code]), [[id, H3Error.H3_EXCESSIVE_LOAD]]);
  assert.ok(!p.server.closed);
});

test('extended CONNECT (RFC 9220) only when the server enabled it', () => {
  const connect: [string, string][] = [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'https'], [':authority', 'a.example'], [':path', '/chat']];
  const off = new Pair().pump();
  assert.throws(() => off.client.sendRequest(connect), (e: unknown) => e instanceof H3UsageError);
  const on = new Pair({}, { enableConnectProtocol: true }).pump();
  assert.ok(of(on.takeClient(), 'settings')[0]!.settings.enableConnectProtocol);
  const id = on.client.sendRequest(connect);
  on.client.sendData(id, bytes('tunnel bytes'));
  on.pump();
  const sev = on.takeServer();
  assert.equal(of(sev, 'headers')[0]!.headers, connect);
  assert.is(text(of(sev, 'data')[0]!.data), 'tunnel bytes');
  on.server.sendHeaders(id, [[':status', '200']]);
  on.pump();
  assert.equal(of(on.takeClient(), 'headers').length, 1);
  // A server that did not enable it treats :protocol as malformed.
  const off2 = new Pair().pump();
  (off2.client as unknown as { peerSettings: { enableConnectProtocol: boolean } }).peerSettings.enableConnectProtocol = true;
  const id2 = off2.client.sendRequest(connect);
  off2.pump();
  assert.equal(of(off2.takeServer(), 'streamError').map((e) => [e.streamId, e.code]), [[id2, H3Error.H3_MESSAGE_ERROR]]);
});

test('HTTP/3 datagrams (RFC 9297) once both sides enabled them', () => {
  const p = new Pair({ enableDatagrams: true }, { enableDatagrams: true }).pump();
  assert.ok(of(p.takeClient(), 'settings')[0]!.settings.h3Datagram);
  const id = p.client.sendRequest([[':method', 'CONNECT'], [':authority', 'a.example:443']]);
  p.pump();
  assert.ok(p.client.sendDatagram(id, bytes('ping')));
  p.pump();
  const d = of(p.takeServer(), 'datagram');
  assert.equal(d.map((e) => [e.streamId, text(e.data)]), [[id, 'ping']]);
  assert.ok(p.server.sendDatagram(id, bytes('pong')));
  p.pump();
  assert.equal(of(p.takeClient(), 'datagram').map((e) => text(e.data)), ['pong']);
  // Not on a stream that is not open; datagrams for unknown streams are dropped.
  assert.not.ok(p.client.sendDatagram(400, bytes('x')));
  p.ct.sendDatagram(Uint8Array.of(50, 1, 2));
  p.pump();
  assert.is(of(p.takeServer(), 'datagram').length, 0);
  // A truncated Quarter Stream ID is H3_DATAGRAM_ERROR.
  p.ct.sendDatagram(Uint8Array.of(0x40));
  p.pump();
  assert.is(p.st.closed?.code, H3_DATAGRAM_ERROR);
});

test('HTTP/3 datagrams are not sent or accepted unless both sides enabled them', () => {
  const p = new Pair({ enableDatagrams: true }, {}).pump();
  const id = p.client.sendRequest(GET, false);
  p.pump();
  assert.not.ok(p.client.sendDatagram(id, bytes('x')));
  assert.not.ok(p.server.sendDatagram(id, bytes('x')));
  p.ct.sendDatagram(Uint8Array.of(0, 1));
  p.pump();
  assert.is(of(p.takeServer(), 'datagram').length, 0);
  assert.not.ok(p.server.closed);
});

test.run();
