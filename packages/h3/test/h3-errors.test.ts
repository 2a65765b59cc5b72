// Every peer error of RFC 9114 / RFC 9204 that the connection detects yields the right code, as a
// connection close or a stream reset as the RFC says.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { H3Error, QpackError } from '../src/errors.js';
import { encodeFrame, encodeIdFrame, encodeSettings, FrameType } from '../src/frames.js';
import { encodeVarint } from '../src/varint.js';
import type { FieldLine } from '../src/qpack/decoder.js';
import { GET, RawPeer, concat, unhexed } from './h3-errors-support.js';

function connError(name: string, setup: (p: RawPeer) => void, code: number, role: 'client' | 'server' = 'client'): void {
  test(`connection error ${name}`, () => {
    const p = new RawPeer(role);
    setup(p);
    p.pump();
    assert.is(p.closeCode, code, `closed with 0x${p.closeCode?.toString(16)}`);
    const ev = p.events.find((e) => e.type === 'connectionError');
    assert.ok(ev && ev.type === 'connectionError' && ev.code === code && !ev.internal);
  });
}

function streamError(name: string, headers: FieldLine[] | Uint8Array, code: number, ...rest: Uint8Array[]): void {
  test(`stream error ${name}`, () => {
    const p = new RawPeer('client');
    p.control();
    const hf = headers instanceof Uint8Array ? headers : p.headersFrame(headers);
    const id = p.request(hf, ...rest);
    p.pump();
    assert.is(p.closeCode, null, 'connection stays open');
    const ev = p.events.find((e) => e.type === 'streamError');
    assert.ok(ev && ev.type === 'streamError' && ev.streamId === id, JSON.stringify(p.events));
    assert.is((ev as { code: number }).code, code);
    assert.equal(p.resets(id), [code]);
    assert.ok(p.stops(id).includes(code));
  });
}

// --- control stream and SETTINGS (§6.2.1, §7.2.4) ---
connError('control stream not starting with SETTINGS → H3_MISSING_SETTINGS', (p) => p.control(encodeIdFrame(FrameType.GOAWAY, 0)), H3Error.H3_MISSING_SETTINGS);
connError('grease frame before SETTINGS → H3_MISSING_SETTINGS', (p) => p.control(concat(encodeFrame(0x21 + 0x1f * 7, unhexed('0102')), encodeSettings([]))), H3Error.H3_MISSING_SETTINGS);
connError('unknown empty frame before SETTINGS → H3_MISSING_SETTINGS', (p) => p.control(concat(encodeFrame(0x2f00, new Uint8Array(0)), encodeSettings([]))), H3Error.H3_MISSING_SETTINGS);
test('a grease frame after SETTINGS on the control stream is ignored', () => {
  const p = new RawPeer('client');
  p.control(concat(encodeSettings([]), encodeFrame(0x21 + 0x1f * 7, unhexed('0102'))));
  p.pump();
  assert.is(p.closeCode, null);
  assert.ok(p.events.some((e) => e.type === 'settings'));
});
connError('second SETTINGS → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), encodeSettings([]))), H3Error.H3_FRAME_UNEXPECTED);
connError('duplicate setting → H3_SETTINGS_ERROR', (p) => p.control(encodeSettings([[1, 0], [1, 0]])), H3Error.H3_SETTINGS_ERROR);
for (const id of [2, 3, 4, 5]) {
  connError(`HTTP/2 setting 0x0${id} → H3_SETTINGS_ERROR`, (p) => p.control(encodeSettings([[id, 1]])), H3Error.H3_SETTINGS_ERROR);
}
connError('truncated SETTINGS payload → H3_FRAME_ERROR', (p) => p.control(encodeFrame(FrameType.SETTINGS, unhexed('4001'))), H3Error.H3_FRAME_ERROR);
connError('second control stream → H3_STREAM_CREATION_ERROR', (p) => (p.control(), p.control()), H3Error.H3_STREAM_CREATION_ERROR);
connError('second encoder stream → H3_STREAM_CREATION_ERROR', (p) => (p.uni(2), p.uni(2)), H3Error.H3_STREAM_CREATION_ERROR);
connError('second decoder stream → H3_STREAM_CREATION_ERROR', (p) => (p.uni(3), p.uni(3)), H3Error.H3_STREAM_CREATION_ERROR);
connError('control stream FIN → H3_CLOSED_CRITICAL_STREAM', (p) => p.raw.write(p.control(), new Uint8Array(0), true), H3Error.H3_CLOSED_CRITICAL_STREAM);
connError('control stream reset → H3_CLOSED_CRITICAL_STREAM', (p) => p.raw.resetStream(p.control(), 0x100), H3Error.H3_CLOSED_CRITICAL_STREAM);
connError('encoder stream FIN → H3_CLOSED_CRITICAL_STREAM', (p) => p.uni(2, new Uint8Array(0), true), H3Error.H3_CLOSED_CRITICAL_STREAM);
connError('decoder stream reset → H3_CLOSED_CRITICAL_STREAM', (p) => p.raw.resetStream(p.uni(3), 0x100), H3Error.H3_CLOSED_CRITICAL_STREAM);
connError('STOP_SENDING on our control stream → H3_CLOSED_CRITICAL_STREAM', (p) => p.raw.stopSending(3, 0x100), H3Error.H3_CLOSED_CRITICAL_STREAM);
connError('DATA on the control stream → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), encodeFrame(0, unhexed('00')))), H3Error.H3_FRAME_UNEXPECTED);
connError('HEADERS on the control stream → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), p.headersFrame(GET))), H3Error.H3_FRAME_UNEXPECTED);
connError('malformed GOAWAY → H3_FRAME_ERROR', (p) => p.control(concat(encodeSettings([]), encodeFrame(FrameType.GOAWAY, unhexed('0000')))), H3Error.H3_FRAME_ERROR);
connError('MAX_PUSH_ID from a server → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), encodeIdFrame(FrameType.MAX_PUSH_ID, 1))), H3Error.H3_FRAME_UNEXPECTED, 'server');
connError('empty DATA on the control stream → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), encodeFrame(0, new Uint8Array(0)))), H3Error.H3_FRAME_UNEXPECTED);
connError('empty DATA before HEADERS → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(encodeFrame(0, new Uint8Array(0)), p.headersFrame(GET))), H3Error.H3_FRAME_UNEXPECTED);
connError('MAX_PUSH_ID decreasing → H3_ID_ERROR', (p) => p.control(concat(encodeSettings([]), encodeIdFrame(FrameType.MAX_PUSH_ID, 5), encodeIdFrame(FrameType.MAX_PUSH_ID, 4))), H3Error.H3_ID_ERROR);
connError('CANCEL_PUSH for an unknown push → H3_ID_ERROR', (p) => p.control(concat(encodeSettings([]), encodeIdFrame(FrameType.CANCEL_PUSH, 0))), H3Error.H3_ID_ERROR);
connError('GOAWAY with a non-request stream id → H3_ID_ERROR', (p) => p.control(concat(encodeSettings([]), encodeIdFrame(FrameType.GOAWAY, 2))), H3Error.H3_ID_ERROR, 'server');
connError('GOAWAY id increasing → H3_ID_ERROR', (p) => p.control(concat(encodeSettings([]), encodeIdFrame(FrameType.GOAWAY, 4), encodeIdFrame(FrameType.GOAWAY, 8))), H3Error.H3_ID_ERROR, 'server');
connError('reserved HTTP/2 frame type on control → H3_FRAME_UNEXPECTED', (p) => p.control(concat(encodeSettings([]), encodeFrame(0x06, new Uint8Array(8)))), H3Error.H3_FRAME_UNEXPECTED);

// --- stream types (§6.2) ---
connError('push stream from a client → H3_STREAM_CREATION_ERROR', (p) => p.uni(1, unhexed('00')), H3Error.H3_STREAM_CREATION_ERROR);
connError('push stream without MAX_PUSH_ID → H3_ID_ERROR', (p) => p.uni(1, unhexed('00')), H3Error.H3_ID_ERROR, 'server');
connError('server-initiated bidirectional stream → H3_STREAM_CREATION_ERROR', (p) => p.raw.write(p.raw.open(true), unhexed('00'), false), H3Error.H3_STREAM_CREATION_ERROR, 'server');

test('unknown unidirectional stream type: STOP_SENDING H3_STREAM_CREATION_ERROR, connection lives', () => {
  const p = new RawPeer('client');
  p.control();
  const id = p.uni(0x21, unhexed('0102030405'));
  p.raw.write(id, unhexed('ff'), true);
  p.pump();
  assert.is(p.closeCode, null);
  assert.equal(p.stops(id), [H3Error.H3_STREAM_CREATION_ERROR]);
});

test('unknown and grease frame types are ignored on control and request streams', () => {
  const p = new RawPeer('client');
  p.control(concat(encodeSettings([[0x21, 5]]), encodeFrame(0x21, unhexed('aabb')), encodeFrame(0x1234, new Uint8Array(100))));
  const id = p.request(encodeFrame(0x40, unhexed('00')), p.headersFrame(GET), encodeFrame(0x5f, unhexed('00')));
  p.pump();
  assert.is(p.closeCode, null);
  assert.equal(p.events.filter((e) => e.type !== 'settings').map((e) => e.type), ['headers', 'end']);
  assert.is(id, 0);
});

// --- request streams: frame sequence (§4.1) ---
connError('DATA before HEADERS → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(p.dataFrame('x'))), H3Error.H3_FRAME_UNEXPECTED);
connError('HEADERS after trailers → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(p.headersFrame(GET), p.headersFrame([['x', '1']]), p.headersFrame([['y', '1']]))), H3Error.H3_FRAME_UNEXPECTED);
connError('DATA after trailers → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(p.headersFrame(GET), p.headersFrame([['x', '1']]), p.dataFrame('z'))), H3Error.H3_FRAME_UNEXPECTED);
connError('SETTINGS on a request stream → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(encodeSettings([]))), H3Error.H3_FRAME_UNEXPECTED);
connError('GOAWAY on a request stream → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(p.headersFrame(GET), encodeIdFrame(FrameType.GOAWAY, 0))), H3Error.H3_FRAME_UNEXPECTED);
connError('PUSH_PROMISE from a client → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(p.headersFrame(GET), encodeFrame(FrameType.PUSH_PROMISE, unhexed('000000')))), H3Error.H3_FRAME_UNEXPECTED);
connError('reserved HTTP/2 frame type on a request stream → H3_FRAME_UNEXPECTED', (p) => (p.control(), p.request(encodeFrame(0x02, unhexed('00')))), H3Error.H3_FRAME_UNEXPECTED);
connError('stream ends inside a frame → H3_FRAME_ERROR', (p) => (p.control(), p.request(p.headersFrame(GET).subarray(0, 4))), H3Error.H3_FRAME_ERROR);
connError('HEADERS frame beyond the frame size limit → H3_EXCESSIVE_LOAD', (p) => (p.control(), p.request(concat(unhexed('01'), encodeVarint(1 << 20)))), H3Error.H3_EXCESSIVE_LOAD);

// --- QPACK errors ---
connError('undecodable field section → QPACK_DECOMPRESSION_FAILED', (p) => (p.control(), p.request(encodeFrame(1, unhexed('0000ff')))), QpackError.QPACK_DECOMPRESSION_FAILED);
connError('bad Huffman in a field section → QPACK_DECOMPRESSION_FAILED', (p) => (p.control(), p.request(encodeFrame(1, unhexed('00005f0d84ffffffff')))), QpackError.QPACK_DECOMPRESSION_FAILED);
connError('reference to a dynamic entry never inserted → QPACK_DECOMPRESSION_FAILED', (p) => (p.control(), p.request(encodeFrame(1, unhexed('0000 80')))), QpackError.QPACK_DECOMPRESSION_FAILED);
connError('insert beyond capacity on the encoder stream → QPACK_ENCODER_STREAM_ERROR', (p) => p.uni(2, unhexed('c00f7777772e6578616d706c652e636f6d')), QpackError.QPACK_ENCODER_STREAM_ERROR);
connError('capacity above our maximum → QPACK_ENCODER_STREAM_ERROR', (p) => p.uni(2, unhexed('3fe21f')), QpackError.QPACK_ENCODER_STREAM_ERROR);
connError('Section Acknowledgment for nothing → QPACK_DECODER_STREAM_ERROR', (p) => p.uni(3, unhexed('84')), QpackError.QPACK_DECODER_STREAM_ERROR);
connError('Insert Count Increment beyond inserts → QPACK_DECODER_STREAM_ERROR', (p) => p.uni(3, unhexed('01')), QpackError.QPACK_DECODER_STREAM_ERROR);
test('blocked streams beyond SETTINGS_QPACK_BLOCKED_STREAMS → QPACK_DECOMPRESSION_FAILED', () => {
  const p = new RawPeer('client', { qpackBlockedStreams: 1 });
  p.control();
  // Required Insert Count 1 with Base 1 (MaxEntries = 4096/32 = 128): blocks until an insert.
  p.request(encodeFrame(1, unhexed('0200 80')));
  p.pump();
  assert.is(p.closeCode, null);
  p.request(encodeFrame(1, unhexed('0200 80')));
  p.pump();
  assert.is(p.closeCode, QpackError.QPACK_DECOMPRESSION_FAILED);
});
test('blocked stream is decoded once the insert arrives', () => {
  const p = new RawPeer('client', { qpackBlockedStreams: 1 });
  p.control();
  const id = p.request(encodeFrame(1, unhexed('0200 80 d1 c1 d7')));
  p.pump();
  assert.is(p.events.filter((e) => e.type === 'headers').length, 0);
  p.uni(2, unhexed('3fe10f' + 'c00b6578616d706c652e636f6d'));
  p.pump();
  assert.is(p.closeCode, null);
  const h = p.events.find((e) => e.type === 'headers');
  assert.ok(h && h.type === 'headers' && h.streamId === id);
  assert.equal((h as { headers: unknown }).headers, [[':authority', 'example.com'], [':method', 'GET'], [':path', '/'], [':scheme', 'https']]);
});

// --- malformed messages → stream error H3_MESSAGE_ERROR (§4.1.2) ---
const M = H3Error.H3_MESSAGE_ERROR;
streamError('uppercase field name', [...GET, ['X-Up', '1']], M);
streamError('pseudo-header after a regular field', [[':method', 'GET'], ['x', '1'], [':scheme', 'https'], [':authority', 'a'], [':path', '/']], M);
streamError('duplicate pseudo-header', [...GET, [':path', '/2']].sort((a, b) => Number(b[0].startsWith(':')) - Number(a[0].startsWith(':'))) as FieldLine[], M);
streamError('missing :method', GET.slice(1), M);
streamError('missing :path', GET.filter(([n]) => n !== ':path'), M);
streamError('missing :scheme', GET.filter(([n]) => n !== ':scheme'), M);
streamError('missing :authority and host', GET.filter(([n]) => n !== ':authority'), M);
streamError('unknown pseudo-header', [...GET.slice(0, 2), [':protocol', 'websocket'], ...GET.slice(2)], M);
streamError(':authority with userinfo', [[':method', 'GET'], [':scheme', 'https'], [':authority', 'user@a.example'], [':path', '/']], M);
streamError(':authority and host differ', [...GET, ['host', 'other.example']], M);
streamError('CONNECT with :path', [[':method', 'CONNECT'], [':authority', 'a:443'], [':path', '/']], M);
streamError(':status in a request', [[':status', '200'], ...GET], M);
for (const h of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']) {
  streamError(`connection-specific field ${h}`, [...GET, [h, 'x']], M);
}
streamError('te other than trailers', [...GET, ['te', 'gzip']], M);
streamError('field value with CR LF', [...GET, ['x-a', 'a\r\nb']], M);
streamError('content-length larger than the content', [...GET, ['content-length', '10']], M, encodeFrame(0, unhexed('0102')));
streamError('content-length smaller than the content', [...GET, ['content-length', '1']], M, encodeFrame(0, unhexed('0102')));
streamError('invalid content-length', [...GET, ['content-length', '1x']], M);
streamError('pseudo-header in trailers', concat(new RawPeer().headersFrame(GET), new RawPeer().headersFrame([[':path', '/']])), M);
streamError('no HEADERS before FIN → H3_REQUEST_INCOMPLETE', new Uint8Array(0), H3Error.H3_REQUEST_INCOMPLETE);

test('a stream error with a blocked section sends Stream Cancellation on the decoder stream', () => {
  const p = new RawPeer('client');
  p.control();
  const id = p.raw.open(true);
  // Blocked section (Required Insert Count 1), then the stream is reset by the peer.
  p.raw.write(id, encodeFrame(1, unhexed('0200 80')), false);
  p.pump();
  assert.is(p.conn.decoder.blockedStreamCount, 1);
  p.raw.resetStream(id, H3Error.H3_REQUEST_CANCELLED);
  p.pump();
  assert.is(p.conn.decoder.blockedStreamCount, 0);
  const dec = p.rawEvents.filter((e) => e.type === 'streamData' && e.id === 11);
  const bytes = dec.map((e) => [...(e as { data: Uint8Array }).data]).flat();
  assert.equal(bytes.slice(-1), [0x40 | id]); // decoder stream: type 0x03, then Stream Cancellation
  assert.is(p.closeCode, null);
});

test('data buffered behind a blocked HEADERS is bounded → stream error H3_EXCESSIVE_LOAD', () => {
  const p = new RawPeer('client', { maxBlockedBuffer: 1000 });
  p.control();
  const id = p.raw.open(true);
  p.raw.write(id, encodeFrame(1, unhexed('0200 80')), false);
  for (let i = 0; i < 5; i++) p.raw.write(id, encodeFrame(0, new Uint8Array(300)), false);
  p.pump();
  assert.is(p.closeCode, null);
  assert.equal(p.resets(id), [H3Error.H3_EXCESSIVE_LOAD]);
  assert.is(p.conn.decoder.blockedStreamCount, 0);
});

test('request streams arriving out of order are all served; late data for finished ones ignored', () => {
  const p = new RawPeer('client');
  p.control();
  const ids = [p.raw.open(true), p.raw.open(true), p.raw.open(true)];
  for (const id of [ids[2]!, ids[0]!, ids[1]!]) p.raw.write(id, p.headersFrame(GET), true);
  p.pump();
  assert.equal(p.events.filter((e) => e.type === 'end').map((e) => (e as { streamId: number }).streamId), [ids[2], ids[0], ids[1]]);
  for (const id of ids) p.conn.sendHeaders(id, [[':status', '204']], true);
  // Stale data on a finished stream (e.g. after a reset crossed it) is ignored, not a new request.
  p.mine.inbox.push({ type: 'streamData', id: ids[0]!, data: p.dataFrame('late'), fin: false });
  p.pump();
  assert.is(p.closeCode, null);
  assert.is(p.conn.activeRequests, 0);
});

test('te: trailers and matching content-length are accepted', () => {
  const p = new RawPeer('client');
  p.control();
  p.request(p.headersFrame([...GET, ['te', 'trailers'], ['content-length', '2']]), encodeFrame(0, unhexed('0102')));
  p.pump();
  assert.equal(p.events.filter((e) => e.type !== 'settings').map((e) => e.type), ['headers', 'data', 'end']);
});

test('malformed response (client side) → stream error, 101 refused', () => {
  const p = new RawPeer('server');
  p.control();
  const id = p.conn.sendRequest(GET, true);
  p.raw.write(id, p.headersFrame([[':status', '101']]), true);
  p.pump();
  const ev = p.events.find((e) => e.type === 'streamError');
  assert.ok(ev && ev.type === 'streamError' && ev.code === M);
  assert.is(p.closeCode, null);
});

test('GOAWAY received by a client: requests at or above the id are rejected locally', () => {
  const p = new RawPeer('server');
  p.control();
  const a = p.conn.sendRequest(GET, true);
  const b = p.conn.sendRequest(GET, true);
  const c = p.conn.sendRequest(GET, false);
  p.pump();
  p.raw.write(3, encodeIdFrame(FrameType.GOAWAY, 4), false);
  p.pump();
  assert.is(p.closeCode, null);
  const resets = p.events.filter((e) => e.type === 'streamReset').map((e) => (e as { streamId: number }).streamId);
  assert.equal(resets, [b, c]);
  assert.equal(p.resets(c), [H3Error.H3_REQUEST_CANCELLED]);
  assert.is(p.conn.activeRequests, 1);
  p.raw.write(a, p.headersFrame([[':status', '200']]), true);
  p.pump();
  assert.ok(p.events.some((e) => e.type === 'end' && e.streamId === a));
});

test('response to HEAD may carry content-length without content', () => {
  const p = new RawPeer('server');
  p.control();
  const id = p.conn.sendRequest([[':method', 'HEAD'], ...GET.slice(1)], true);
  p.raw.write(id, p.headersFrame([[':status', '200'], ['content-length', '1000']]), true);
  p.pump();
  assert.equal(p.events.filter((e) => e.type !== 'settings').map((e) => e.type), ['headers', 'end']);
});

test.run();
