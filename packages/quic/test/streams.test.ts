import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, ProtocolViolation } from '@petrel/tls-core';
import { SendStream, SendState, newStreamChunkOut } from '../src/streams/send.js';
import { RecvStream, RecvState } from '../src/streams/recv.js';
import { RangeSet } from '../src/streams/ranges.js';
import { StreamManager, type PeerStreamLimits } from '../src/streams/manager.js';
import { isBidi, isServerInitiated, isUni, makeStreamId, streamIndex } from '../src/streams/ids.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function codeOf(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolViolation) return e.code;
    throw e;
  }
  return -1;
}

const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

// ---------- ids

test('stream id bits (§2.1)', () => {
  assert.ok(isBidi(0) && !isServerInitiated(0));
  assert.ok(isServerInitiated(1) && isBidi(1));
  assert.ok(isUni(2) && !isServerInitiated(2));
  assert.ok(isUni(3) && isServerInitiated(3));
  assert.is(makeStreamId(5, true, true), 23);
  assert.is(streamIndex(23), 5);
  assert.is(streamIndex(2 ** 40 * 4 + 3), 2 ** 40);
});

// ---------- RangeSet

test('RangeSet add/subtract against a naive bitmap', () => {
  const r = rng(3);
  for (let round = 0; round < 50; round++) {
    const rs = new RangeSet();
    const bits = new Uint8Array(200);
    for (let k = 0; k < 60; k++) {
      const s = Math.floor(r() * 200), e = Math.min(200, s + Math.floor(r() * 30));
      const add = r() < 0.6;
      if (add) rs.add(s, e);
      else rs.subtract(s, e);
      for (let i = s; i < e; i++) bits[i] = add ? 1 : 0;
    }
    const fromRs = new Uint8Array(200);
    for (let i = 0; i < rs.count; i++) {
      if (i > 0) assert.ok(rs.start(i) > rs.end(i - 1), 'ranges merged and sorted');
      for (let p = rs.start(i); p < rs.end(i); p++) fromRs[p] = 1;
    }
    assert.equal(fromRs, bits);
  }
});

// ---------- SendStream

test('send: chunks, FIN on the last one, flow-control credit', () => {
  const s = new SendStream(0, { initialMaxData: 1000 });
  const out = newStreamChunkOut();
  assert.is(s.write(bytes(1500)), 1500);
  s.finish();
  assert.ok(s.nextChunk(600, Infinity, out));
  assert.equal([out.offset, out.length, out.fin, out.retransmit], [0, 600, false, false]);
  assert.ok(s.nextChunk(600, Infinity, out));
  assert.equal([out.offset, out.length, out.fin], [600, 400, false]); // stream credit 1000
  assert.not.ok(s.nextChunk(600, Infinity, out));
  assert.is(s.credit.blockedFrameWanted(), 1000); // STREAM_DATA_BLOCKED wanted
  s.onMaxStreamData(5000);
  assert.ok(s.nextChunk(600, 100, out)); // connection credit limits
  assert.equal([out.offset, out.length, out.fin], [1000, 100, false]);
  assert.ok(s.nextChunk(600, Infinity, out));
  assert.equal([out.offset, out.length, out.fin], [1100, 400, true]);
  assert.is(s.state, SendState.dataSent);
  const dst = new Uint8Array(400);
  s.copy(1100, 400, dst, 0);
  assert.equal(dst, bytes(1500).subarray(1100));
});

test('send: lost ranges are retransmitted first, minus what was acknowledged; acked data freed', () => {
  const s = new SendStream(0, { initialMaxData: 1e9 });
  const out = newStreamChunkOut();
  s.write(bytes(3000));
  for (let i = 0; i < 3; i++) s.nextChunk(1000, Infinity, out);
  s.onAcked(1000, 1000, false);
  s.onLost(0, 3000, false); // 0-1000 and 2000-3000 must be resent, not 1000-2000
  s.write(bytes(10));
  assert.ok(s.nextChunk(5000, Infinity, out));
  assert.equal([out.offset, out.length, out.retransmit], [0, 1000, true]);
  assert.ok(s.nextChunk(400, Infinity, out));
  assert.equal([out.offset, out.length, out.retransmit], [2000, 400, true]);
  s.onAcked(2400, 600, false); // spurious loss: the rest arrived after all
  assert.ok(s.nextChunk(5000, Infinity, out));
  assert.equal([out.offset, out.length, out.retransmit], [3000, 10, false]);
  assert.is(s.buffered, 3010);
  s.onAcked(0, 1000, false);
  s.onAcked(2000, 400, false);
  assert.is(s.ackedPrefix, 3000);
  assert.is(s.buffered, 10);
  assert.throws(() => s.copy(0, 10, new Uint8Array(10), 0), RangeError);
});

test('send: FIN-only frame, lost FIN retransmitted, Data Recvd when all acked', () => {
  const s = new SendStream(4, { initialMaxData: 100 });
  const out = newStreamChunkOut();
  s.write(bytes(10));
  s.nextChunk(100, Infinity, out);
  assert.not.ok(out.fin);
  s.finish();
  assert.ok(s.nextChunk(100, Infinity, out));
  assert.equal([out.offset, out.length, out.fin, out.retransmit], [10, 0, true, false]);
  assert.not.ok(s.nextChunk(100, Infinity, out));
  s.onLost(10, 0, true);
  assert.ok(s.nextChunk(100, Infinity, out));
  assert.equal([out.offset, out.length, out.fin, out.retransmit], [10, 0, true, true]);
  s.onAcked(10, 0, true);
  assert.is(s.state, SendState.dataSent);
  s.onAcked(0, 10, false);
  assert.is(s.state, SendState.dataRecvd);
  assert.ok(s.isClosed);
  assert.throws(() => s.write(bytes(1)), (e: unknown) => e instanceof ConfigError);
});

test('send: bounded buffer gives backpressure and a writable signal', () => {
  const s = new SendStream(0, { initialMaxData: 1e9, maxBuffered: 1000 });
  const out = newStreamChunkOut();
  assert.is(s.write(bytes(800)), 800);
  assert.is(s.write(bytes(800)), 200);
  assert.not.ok(s.writable);
  assert.not.ok(s.pollWritable());
  s.nextChunk(1000, Infinity, out);
  assert.not.ok(s.pollWritable()); // sent but not acknowledged: still buffered
  s.onAcked(0, 500, false);
  assert.ok(s.pollWritable());
  assert.not.ok(s.pollWritable());
  assert.is(s.write(bytes(800)), 500);
});

test('send: reset (RESET_STREAM with the sent size), lost reset resent, Reset Recvd on ack', () => {
  const s = new SendStream(0, { initialMaxData: 1e9 });
  const out = newStreamChunkOut();
  s.write(bytes(500));
  s.nextChunk(300, Infinity, out);
  assert.ok(s.reset(7));
  assert.not.ok(s.reset(8));
  assert.is(s.finalSize, 300);
  assert.is(s.resetCode, 7);
  assert.ok(s.wantsReset);
  assert.not.ok(s.nextChunk(300, Infinity, out));
  s.onResetSent();
  assert.not.ok(s.wantsReset);
  s.onResetLost();
  assert.ok(s.wantsReset);
  s.onResetSent();
  s.onLost(0, 300, false); // ignored after reset
  assert.not.ok(s.hasPending());
  s.onResetAcked();
  assert.is(s.state, SendState.resetRecvd);
  assert.throws(() => s.write(bytes(1)), (e: unknown) => e instanceof ConfigError);
});

test('send: random loss/ack pattern eventually delivers every byte exactly as written', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const s = new SendStream(0, { initialMaxData: 1e9, maxBuffered: 1e9 });
    const src = bytes(20000, seed);
    for (let o = 0; o < src.length; ) {
      const n = 1 + Math.floor(r() * 3000);
      s.write(src.subarray(o, Math.min(src.length, o + n)));
      o += n;
    }
    s.finish();
    const recv = new RecvStream(0, { window: 1e9 });
    const out = newStreamChunkOut();
    const inflight: [number, number, boolean, boolean][] = [];
    let guard = 0;
    while (!s.isClosed && guard++ < 100000) {
      while (s.nextChunk(1 + Math.floor(r() * 1500), Infinity, out)) {
        const buf = new Uint8Array(out.length);
        s.copy(out.offset, out.length, buf, 0);
        const delivered = r() > 0.3;
        if (delivered) recv.onStreamFrame(out.offset, buf, out.fin);
        inflight.push([out.offset, out.length, out.fin, delivered]);
        if (r() < 0.1) break;
      }
      // delivered frames are acknowledged (or spuriously declared lost), the others lost; random order
      while (inflight.length) {
        const [o, l, f, d] = inflight.splice(Math.floor(r() * inflight.length), 1)[0]!;
        if (d && r() < 0.8) s.onAcked(o, l, f);
        else s.onLost(o, l, f);
      }
    }
    const got: number[] = [];
    let c: Uint8Array | null;
    while ((c = recv.read())) got.push(...c);
    assert.equal(new Uint8Array(got), src, `seed ${seed}`);
    assert.ok(recv.isFinished);
    assert.ok(s.isClosed, `seed ${seed}`);
  }
});

// ---------- RecvStream

test('recv: reassembly and read to the FIN', () => {
  const s = new RecvStream(1, { window: 1000 });
  assert.is(s.onStreamFrame(5, bytes(5).subarray(0, 5), true), 10);
  assert.is(s.state, RecvState.sizeKnown);
  assert.is(s.read(), null);
  assert.is(s.onStreamFrame(0, bytes(5), false), 0);
  assert.is(s.state, RecvState.dataRecvd);
  assert.equal(s.read(3), bytes(3));
  assert.not.ok(s.isFinished);
  assert.is(s.read()!.length, 2); // one buffered segment per call
  assert.not.ok(s.isFinished);
  assert.is(s.read()!.length, 5);
  assert.ok(s.isFinished);
  assert.is(s.state, RecvState.dataRead);
});

test('recv: final size errors (§4.5)', () => {
  const s = new RecvStream(1, { window: 1000 });
  s.onStreamFrame(0, bytes(10), true);
  assert.is(codeOf(() => s.onStreamFrame(10, bytes(1), false)), 0x6); // beyond final size
  assert.is(codeOf(() => s.onStreamFrame(0, bytes(12), true)), 0x6); // changed final size
  assert.is(codeOf(() => s.onStreamFrame(0, bytes(9), true)), 0x6);
  assert.is(codeOf(() => s.onResetStream(0, 11)), 0x6);
  s.onStreamFrame(0, bytes(10), true); // same final size again: fine
  const t = new RecvStream(1, { window: 1000 });
  t.onStreamFrame(0, bytes(20), false);
  assert.is(codeOf(() => t.onStreamFrame(0, bytes(10), true)), 0x6); // final size below received data
  assert.is(codeOf(() => t.onResetStream(0, 19)), 0x6);
});

test('recv: flow control violations (§4.1), state unchanged after the error', () => {
  const s = new RecvStream(1, { window: 100 });
  assert.is(codeOf(() => s.onStreamFrame(50, bytes(51), false)), 0x3);
  assert.is(s.highest, 0);
  assert.is(codeOf(() => s.onResetStream(0, 101)), 0x3);
  s.onStreamFrame(0, bytes(100), false);
  // after reading half, MAX_STREAM_DATA is due and the new limit allowed
  s.read(60);
  const lim = s.pollMaxStreamData(0);
  assert.is(lim, 160);
  s.onStreamFrame(100, bytes(60), false);
  assert.is(codeOf(() => s.onStreamFrame(160, bytes(1), false)), 0x3);
});

test('recv: inconsistent retransmitted data is a PROTOCOL_VIOLATION (§2.2)', () => {
  const s = new RecvStream(1, { window: 100 });
  s.onStreamFrame(10, bytes(10), false);
  const bad = bytes(10);
  bad[3] ^= 1;
  assert.is(codeOf(() => s.onStreamFrame(10, bad, false)), 0xa);
});

test('recv: RESET_STREAM discards data, releases credit, read reports nothing', () => {
  const s = new RecvStream(1, { window: 1000 });
  s.onStreamFrame(0, bytes(100), false);
  assert.is(s.takeReleased(), 0);
  assert.is(s.onResetStream(9, 300), 200);
  assert.is(s.state, RecvState.resetRecvd);
  assert.is(s.resetCode, 9);
  assert.is(s.takeReleased(), 300);
  assert.is(s.onStreamFrame(100, bytes(50), false), 0); // ignored but checked
  assert.is(codeOf(() => s.onStreamFrame(250, bytes(60), false)), 0x6);
  assert.is(s.read(), null);
  assert.is(s.state, RecvState.resetRead);
  assert.ok(s.isClosed);
});

test('recv: STOP_SENDING drops buffered data and wants the frame until the peer resets', () => {
  const s = new RecvStream(1, { window: 1000 });
  s.onStreamFrame(0, bytes(100), false);
  s.stopSending(3);
  assert.ok(s.wantsStopSending);
  assert.is(s.readable, 0);
  assert.is(s.takeReleased(), 100);
  s.onStopSendingSent();
  assert.not.ok(s.wantsStopSending);
  s.onStopSendingLost();
  assert.ok(s.wantsStopSending);
  s.onStreamFrame(100, bytes(50), false);
  assert.is(s.takeReleased(), 50);
  s.onResetStream(3, 150);
  assert.not.ok(s.wantsStopSending);
  assert.ok(s.isClosed);
});

// ---------- StreamManager

const PEER: PeerStreamLimits = {
  initialMaxData: 10000,
  initialMaxStreamDataBidiLocal: 1000,
  initialMaxStreamDataBidiRemote: 2000,
  initialMaxStreamDataUni: 3000,
  initialMaxStreamsBidi: 2,
  initialMaxStreamsUni: 1,
};

test('manager: opening local streams within the peer limit; STREAMS_BLOCKED; credits by direction', () => {
  const m = new StreamManager({ isServer: false });
  assert.is(m.open(true), -1); // no transport parameters yet
  m.setPeerLimits(PEER);
  assert.is(m.open(true), 0);
  assert.is(m.open(true), 4);
  assert.is(m.open(true), -1);
  assert.is(m.streamsBlockedWanted(true), 2);
  assert.is(m.streamsBlockedWanted(true), -1);
  assert.is(m.open(false), 2);
  assert.is(m.open(false), -1);
  // our bidi stream: the peer's bidi_remote; our uni: the peer's uni
  assert.is(m.sendStreams.get(0)!.credit.limit, 2000);
  assert.is(m.sendStreams.get(2)!.credit.limit, 3000);
  assert.not.ok(m.recvStreams.has(2));
  assert.ok(m.onMaxStreams(true, 5));
  assert.not.ok(m.onMaxStreams(true, 4));
  assert.is(m.open(true), 8);
  assert.is(codeOf(() => m.onMaxStreams(false, 2 ** 61)), 0x7);
});

test('manager: peer streams opened implicitly in order, limits enforced (§3.2, §4.6)', () => {
  const m = new StreamManager({ isServer: true, maxStreamsBidi: 3, maxStreamsUni: 1 });
  m.setPeerLimits(PEER);
  m.onStreamFrame(8, 0, bytes(3), false); // client bidi index 2: opens 0, 4, 8
  assert.equal([m.pollOpened(), m.pollOpened(), m.pollOpened(), m.pollOpened()], [0, 4, 8, -1]);
  assert.is(codeOf(() => m.onStreamFrame(12, 0, bytes(1), false)), 0x4); // index 3 ≥ limit 3
  // a peer-opened bidi stream: our send credit is the peer's bidi_local
  assert.is(m.sendStreams.get(4)!.credit.limit, 1000);
  m.onStreamFrame(2, 0, bytes(1), false);
  assert.is(codeOf(() => m.onStreamFrame(6, 0, bytes(1), false)), 0x4);
});

test('manager: STREAM_STATE_ERROR for frames on the wrong part or unopened local streams', () => {
  const m = new StreamManager({ isServer: false });
  m.setPeerLimits(PEER);
  const uni = m.open(false); // 2
  assert.is(codeOf(() => m.onStreamFrame(uni, 0, bytes(1), false)), 0x5); // receiving on our send-only stream
  assert.is(codeOf(() => m.onResetStream(uni, 0, 0)), 0x5);
  assert.is(codeOf(() => m.onStreamFrame(0, 0, bytes(1), false)), 0x5); // our bidi stream 0 not opened yet
  assert.is(codeOf(() => m.onMaxStreamData(3, 100)), 0x5); // server uni: we only receive on it
  assert.is(codeOf(() => m.onStopSending(3, 0)), 0x5);
  m.onStreamFrame(3, 0, bytes(1), false); // fine: server-initiated uni stream
  assert.is(m.onMaxStreamData(uni, 5000), true);
});

test('manager: connection-level flow control and MAX_DATA', () => {
  const m = new StreamManager({ isServer: true, connWindow: 1000, streamWindowBidiRemote: 800, maxStreamsBidi: 10 });
  m.setPeerLimits(PEER);
  m.onStreamFrame(0, 0, bytes(800), false);
  assert.is(codeOf(() => m.onStreamFrame(4, 0, bytes(201), false)), 0x3);
  assert.is(m.connRecv.received, 800);
  m.onStreamFrame(4, 0, bytes(200), false);
  assert.is(codeOf(() => m.onResetStream(8, 0, 1)), 0x3);
  // retransmitted data does not count twice
  m.onStreamFrame(0, 0, bytes(800), false);
  assert.is(m.connRecv.received, 1000);
  assert.is(m.read(0)!.length, 800);
  assert.is(m.pollMaxData(0), 1800);
  m.onStreamFrame(8, 0, bytes(800), false);
});

test('manager: send side consumes connection credit once, DATA_BLOCKED wanted', () => {
  const m = new StreamManager({ isServer: false });
  m.setPeerLimits({ ...PEER, initialMaxData: 1500 });
  const a = m.open(true), b = m.open(true);
  m.sendStreams.get(a)!.write(bytes(1000));
  m.sendStreams.get(b)!.write(bytes(1000));
  const out = newStreamChunkOut();
  assert.ok(m.nextChunk(a, 2000, out));
  assert.is(out.length, 1000);
  assert.ok(m.nextChunk(b, 2000, out));
  assert.is(out.length, 500);
  assert.not.ok(m.nextChunk(b, 2000, out));
  assert.is(m.connSend.blockedFrameWanted(), 1500);
  m.sendStreams.get(a)!.onLost(0, 1000, false);
  assert.ok(m.nextChunk(a, 2000, out)); // retransmission needs no connection credit
  assert.ok(out.retransmit);
  assert.is(m.connSend.used, 1500);
});

test('manager: round-robin over streams with pending data; blocked signals', () => {
  const m = new StreamManager({ isServer: false });
  m.setPeerLimits({ ...PEER, initialMaxStreamsBidi: 3, initialMaxData: 2500, initialMaxStreamDataBidiRemote: 1000 });
  const ids = [m.open(true), m.open(true), m.open(true)];
  assert.is(m.nextSendable(), -1);
  m.sendStreams.get(ids[0]!)!.write(bytes(3000));
  m.sendStreams.get(ids[2]!)!.write(bytes(3000));
  const order: number[] = [];
  const out = newStreamChunkOut();
  for (let k = 0; k < 10; k++) {
    const id = m.nextSendable();
    if (id < 0) break;
    order.push(id);
    assert.ok(m.nextChunk(id, 400, out));
  }
  // 0 and 8 alternate until each used its 1000-byte stream credit (400 + 400 + 200)
  assert.equal(order, [0, 8, 0, 8, 0, 8]);
  assert.is(m.sendStreams.get(0)!.credit.blockedFrameWanted(), 1000); // STREAM_DATA_BLOCKED
  assert.is(m.connSend.blockedFrameWanted(), -1);
  m.onMaxStreamData(0, 5000);
  m.onMaxStreamData(8, 5000);
  let guard = 0;
  for (let id = m.nextSendable(); id >= 0 && guard++ < 100; id = m.nextSendable()) m.nextChunk(id, 400, out);
  assert.is(m.connSend.used, 2500);
  assert.is(m.connSend.blockedFrameWanted(), 2500); // DATA_BLOCKED
});

test('manager: MAX_STREAMS credit returned as peer streams close', () => {
  const m = new StreamManager({ isServer: true, maxStreamsUni: 2 });
  m.setPeerLimits(PEER);
  m.onStreamFrame(2, 0, bytes(5), true);
  m.onStreamFrame(6, 0, bytes(5), false);
  assert.is(m.pollMaxStreams(false), -1);
  assert.is(m.read(2)!.length, 5); // fully read: closed
  assert.not.ok(m.recvStreams.has(2));
  assert.is(m.pollMaxStreams(false), 3);
  assert.is(m.pollMaxStreams(false), -1);
  m.onMaxStreamsLost(false, 3);
  assert.is(m.pollMaxStreams(false), 3);
  m.onStreamFrame(10, 0, bytes(1), false); // index 2 < 3: allowed now
  // a reset peer uni stream is closed at once (its data is gone): credit returned
  assert.ok(m.onResetStream(10, 4, 1));
  assert.not.ok(m.recvStreams.has(10));
  assert.is(m.pollMaxStreams(false), 4);
  assert.is(m.onStreamFrame(2, 0, bytes(5), true), null); // closed stream: ignored
  // a peer bidi stream closes only when our sending part is done too
  const out = newStreamChunkOut();
  m.onStreamFrame(0, 0, bytes(1), true);
  m.read(0);
  assert.ok(m.recvStreams.has(0));
  const s = m.sendStreams.get(0)!;
  s.write(bytes(3));
  s.finish();
  m.nextChunk(0, 100, out);
  s.onAcked(0, 3, true);
  assert.ok(m.maybeClose(0));
  assert.is(m.pollMaxStreams(true), 101);
});

test('fuzz: random frames into the stream manager only throw ProtocolViolation', () => {
  const r = rng(99);
  let violations = 0;
  for (let iter = 0; iter < 200; iter++) {
    const m = new StreamManager({ isServer: r() < 0.5, maxStreamsBidi: 4, maxStreamsUni: 2, connWindow: 5000, streamWindowBidiLocal: 2000, streamWindowBidiRemote: 2000, streamWindowUni: 2000 });
    m.setPeerLimits(PEER);
    const out = newStreamChunkOut();
    for (let op = 0; op < 60; op++) {
      const id = Math.floor(r() * 40);
      const x = r();
      try {
        if (x < 0.4) {
          const off = r() < 0.05 ? 2 ** 62 - 2 : Math.floor(r() * 3000);
          m.onStreamFrame(id, off, bytes(Math.floor(r() * 500), off), r() < 0.2);
        } else if (x < 0.5) m.onResetStream(id, 1, Math.floor(r() * 3000));
        else if (x < 0.55) m.onStopSending(id, 2);
        else if (x < 0.6) m.onMaxStreamData(id, Math.floor(r() * 10000));
        else if (x < 0.65) m.onMaxStreams(r() < 0.5, Math.floor(r() * 10));
        else if (x < 0.7) m.onStreamDataBlocked(id);
        else if (x < 0.8) m.read(id, Math.floor(r() * 1000), op, 10);
        else if (x < 0.9) {
          const sid = m.open(r() < 0.5);
          if (sid >= 0) m.sendStreams.get(sid)!.write(bytes(Math.floor(r() * 3000)));
        } else {
          const next = m.nextSendable();
          if (next >= 0) assert.ok(m.sendStreams.get(next)!.hasPending(Infinity));
          for (const sid of [...m.sendStreams.keys()]) {
            if (m.nextChunk(sid, 1000, out)) {
              const s = m.sendStreams.get(sid)!;
              if (r() < 0.5) s.onAcked(out.offset, out.length, out.fin);
              else s.onLost(out.offset, out.length, out.fin);
            }
            m.maybeClose(sid);
          }
        }
      } catch (e) {
        if (!(e instanceof ProtocolViolation)) throw e;
        assert.is(e.layer, 'quic');
        violations++;
      }
    }
  }
  assert.ok(violations > 0);
});

test('recv: a FIN that arrives after all data was read finishes the stream on the next read', () => {
  const s = new RecvStream(1, { window: 1000 });
  s.onStreamFrame(0, new Uint8Array([1, 2, 3]), false);
  assert.equal([...s.read()!], [1, 2, 3]);
  assert.is(s.isFinished, false);
  s.onStreamFrame(3, new Uint8Array(0), true); // FIN-only frame, later
  assert.is(s.read(), null);
  assert.is(s.isFinished, true);
  assert.is(s.state, RecvState.dataRead);
});

test.run();
