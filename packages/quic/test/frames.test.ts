/** Frames (RFC 9000 §19, RFC 9221): round trips for every type, boundaries, and every error case. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import {
  Frame,
  FrameType,
  ackFrameSize,
  countsInFlight,
  cryptoFrameHeaderSize,
  decodeFrame,
  encodeFrame,
  frameAllowedIn,
  frameSize,
  isAckEliciting,
  isProbingFrame,
  isFlowControlled,
  maxCryptoFrameData,
  maxStreamFrameData,
  streamFrameHeaderSize,
  writeAckFrame,
  writeCryptoFrameHeader,
  writeSimpleFrame,
  writeStreamFrameHeader,
  writeStreamValueFrame,
  writePadding,
} from '../src/frames.js';
import { PacketType } from '../src/header.js';
import { TransportError } from '../src/errors.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));
const MAXV = 2 ** 62; // MAX_VARINT as a double (encoded as 2^62-1)

function frame(init: Partial<Frame>): Frame {
  return Object.assign(new Frame(), init);
}

/** Encodes f, checks frameSize, decodes it back in a 1-RTT packet. */
function roundTrip(f: Frame, packetType: PacketType = PacketType.OneRtt): { out: Frame; bytes: Uint8Array } {
  const size = frameSize(f);
  const buf = new Uint8Array(size + 8);
  const end = encodeFrame(buf, 3, f);
  assert.is(end - 3, size, `frameSize for type 0x${f.type.toString(16)}`);
  const bytes = buf.slice(3, end);
  const out = new Frame();
  const next = decodeFrame(bytes, 0, bytes.length, packetType, out);
  assert.is(next, bytes.length);
  assert.is(out.type, f.type);
  return { out, bytes };
}

function expectError(bytes: Uint8Array, code: number, frameType: number, packetType: PacketType = PacketType.OneRtt): void {
  try {
    decodeFrame(bytes, 0, bytes.length, packetType, new Frame());
  } catch (e) {
    assert.instance(e, ProtocolViolation);
    const pv = e as ProtocolViolation;
    assert.is(pv.layer, 'quic');
    assert.is(pv.code, code, `code for ${Buffer.from(bytes).toString('hex')}: ${pv.message}`);
    assert.is(pv.frameType, frameType);
    return;
  }
  assert.unreachable(`no error for ${Buffer.from(bytes).toString('hex')}`);
}
const FEE = TransportError.FRAME_ENCODING_ERROR;
const PV = TransportError.PROTOCOL_VIOLATION;

test('PADDING runs collapse, PING, HANDSHAKE_DONE', () => {
  const buf = hex('00000000 01 1e');
  const f = new Frame();
  let o = decodeFrame(buf, 0, buf.length, PacketType.OneRtt, f);
  assert.is(f.type, FrameType.PADDING);
  assert.is(f.dataLength, 4);
  assert.is(o, 4);
  o = decodeFrame(buf, o, buf.length, PacketType.OneRtt, f);
  assert.is(f.type, FrameType.PING);
  o = decodeFrame(buf, o, buf.length, PacketType.OneRtt, f);
  assert.is(f.type, FrameType.HANDSHAKE_DONE);
  assert.is(o, buf.length);
  assert.equal(roundTrip(frame({ type: FrameType.PADDING, dataLength: 7 })).bytes, new Uint8Array(7));
  roundTrip(frame({ type: FrameType.PING }));
  const b = new Uint8Array(5).fill(9);
  assert.is(writePadding(b, 1, 3), 4);
  assert.equal(b, hex('0900000009'));
});

test('ACK and ACK_ECN round trip with several ranges', () => {
  const f = frame({
    type: FrameType.ACK,
    ackDelay: 1234,
    ackRangeCount: 3,
    ackRanges: [1000, 990, 980, 980, 10, 0],
  });
  const { out } = roundTrip(f);
  assert.is(out.largestAcked, 1000);
  assert.is(out.ackDelay, 1234);
  assert.is(out.ackRangeCount, 3);
  assert.equal(out.ackRanges.slice(0, 6), [1000, 990, 980, 980, 10, 0]);
  assert.is(out.ect0 + out.ect1 + out.ce, 0);
  const e = roundTrip(frame({ type: FrameType.ACK_ECN, ackRangeCount: 1, ackRanges: [5, 5], ect0: 7, ect1: 2 ** 40, ce: 3 })).out;
  assert.is(e.ect0, 7);
  assert.is(e.ect1, 2 ** 40);
  assert.is(e.ce, 3);
  assert.is(e.largestAcked, 5);
  assert.is(e.ackRanges[1], 5);
  // Helpers agree with the generic encoder.
  const ranges = [300, 200, 100, 50];
  const n = ackFrameSize(ranges, 2, 9, null);
  const buf = new Uint8Array(n);
  assert.is(writeAckFrame(buf, 0, ranges, 2, 9, null), n);
  const d = new Frame();
  decodeFrame(buf, 0, n, PacketType.Handshake, d);
  assert.equal(d.ackRanges.slice(0, 4), ranges);
  // Adjacent ranges need a gap of at least one missing packet.
  assert.throws(() => writeAckFrame(new Uint8Array(64), 0, [10, 5, 4, 0], 2, 0, null), (e: unknown) => e instanceof RangeError);
  // Reused Frame with a larger prior range count: count is reset.
  decodeFrame(hex('02 05 00 00 00'), 0, 5, PacketType.OneRtt, d);
  assert.is(d.ackRangeCount, 1);
});

test('ACK errors: range underflow, gap underflow, truncation, not in 0-RTT', () => {
  expectError(hex('02 05 00 00 06'), FEE, 0x02); // first range 6 > largest 5
  expectError(hex('02 05 00 01 00 04 00'), FEE, 0x02); // gap: 5 - 4 - 2 < 0
});

test('ACK: valid edge, lengths', () => {
  const f = new Frame();
  decodeFrame(hex('02 05 00 01 00 02 01'), 0, 7, PacketType.OneRtt, f);
  assert.equal(f.ackRanges.slice(0, 4), [5, 5, 1, 0]);
  expectError(hex('02 05 00 01 00 02 02'), FEE, 0x02); // 1 - 2 < 0
  expectError(hex('02 05 00 02 00 00 00'), FEE, 0x02); // range count 2, only one range present
  expectError(hex('03 05 00 00 00 01 02'), FEE, 0x03); // ECN counts truncated
  expectError(hex('02 05 00 00 00'), PV, 0x02, PacketType.ZeroRtt);
});

test('RESET_STREAM, STOP_SENDING round trip and truncation', () => {
  const r = roundTrip(frame({ type: FrameType.RESET_STREAM, streamId: 4, errorCode: 0x10c, finalSize: 2 ** 40 + 3 })).out;
  assert.is(r.streamId, 4);
  assert.is(r.errorCode, 0x10c);
  assert.is(r.finalSize, 2 ** 40 + 3);
  const s = roundTrip(frame({ type: FrameType.STOP_SENDING, streamId: MAXV, errorCode: 0 })).out;
  assert.is(s.streamId, MAXV);
  expectError(hex('04 04 40'), FEE, 0x04);
  expectError(hex('05 04'), FEE, 0x05);
  const b = new Uint8Array(16);
  const n = writeStreamValueFrame(b, 0, FrameType.STOP_SENDING, 8, 77);
  const d = new Frame();
  assert.is(decodeFrame(b, 0, n, PacketType.ZeroRtt, d), n);
  assert.is(d.streamId, 8);
  assert.is(d.errorCode, 77);
  expectError(hex('04 00 00 00'), PV, 0x04, PacketType.Handshake);
});

test('CRYPTO round trip, bounds and errors', () => {
  const src = hex('0102030405');
  const c = roundTrip(frame({ type: FrameType.CRYPTO, offset: 77, buf: src, dataOffset: 1, dataLength: 3 }), PacketType.Initial).out;
  assert.is(c.offset, 77);
  assert.equal(c.data(), hex('020304'));
  // Helper
  const b = new Uint8Array(32);
  const d0 = writeCryptoFrameHeader(b, 0, 1 << 20, 4);
  assert.is(d0, cryptoFrameHeaderSize(1 << 20, 4));
  b.set(hex('aabbccdd'), d0);
  const d = new Frame();
  assert.is(decodeFrame(b, 0, d0 + 4, PacketType.Handshake, d), d0 + 4);
  assert.equal(d.data(), hex('aabbccdd'));
  // offset + length = 2^62-1 exactly: fine; 2^62: error.
  const ok = hex('06 ffffffffffffffff 00'); // offset 2^62-1, length 0
  decodeFrame(ok, 0, ok.length, PacketType.OneRtt, d);
  const ok2 = hex('06 fffffffffffffffe 01 aa'); // 2^62-2 + 1
  decodeFrame(ok2, 0, ok2.length, PacketType.OneRtt, d);
  expectError(hex('06 ffffffffffffffff 01 aa'), FEE, 0x06);
  expectError(hex('06 fffffffffffffffe 02 aabb'), FEE, 0x06);
  expectError(hex('06 00 05 aabb'), FEE, 0x06); // length beyond packet
  expectError(hex('06 00'), FEE, 0x06);
  expectError(hex('06 00 00'), PV, 0x06, PacketType.ZeroRtt);
});

test('NEW_TOKEN round trip, empty token, 1-RTT only', () => {
  const t = roundTrip(frame({ type: FrameType.NEW_TOKEN, buf: hex('112233'), dataOffset: 0, dataLength: 3 })).out;
  assert.equal(t.data(), hex('112233'));
  expectError(hex('07 00'), FEE, 0x07);
  expectError(hex('07 04 112233'), FEE, 0x07);
  expectError(hex('07 01 11'), PV, 0x07, PacketType.ZeroRtt);
  expectError(hex('07 01 11'), PV, 0x07, PacketType.Initial);
});

test('STREAM 0x08-0x0f: every flag combination, bounds', () => {
  const data = hex('00112233445566778899');
  for (let t = 0x08; t <= 0x0f; t++) {
    const withOff = (t & 4) !== 0;
    const f = frame({ type: t, streamId: 2 ** 33 + 1, offset: withOff ? 1 << 20 : 0, buf: data, dataOffset: 2, dataLength: 5, fin: (t & 1) !== 0 });
    const { out } = roundTrip(f, PacketType.ZeroRtt);
    assert.is(out.streamId, 2 ** 33 + 1);
    assert.is(out.offset, withOff ? 1 << 20 : 0);
    assert.is(out.fin, (t & 1) !== 0);
    assert.equal(out.data(), data.subarray(2, 7));
  }
  // Without LEN the data runs to the end of the packet.
  const b = new Uint8Array(40);
  const d0 = writeStreamFrameHeader(b, 0, 4, 0, 0, true, false);
  assert.is(d0, streamFrameHeaderSize(4, 0, 0, false));
  b.set(hex('deadbeef'), d0);
  const f = new Frame();
  assert.is(decodeFrame(b, 0, d0 + 4, PacketType.OneRtt, f), d0 + 4);
  assert.is(f.type, 0x09);
  assert.is(f.dataLength, 4);
  assert.ok(f.fin);
  // Empty STREAM frame with FIN (valid).
  const e = hex('0b 04 00');
  decodeFrame(e, 0, 3, PacketType.OneRtt, f);
  assert.is(f.dataLength, 0);
  assert.ok(f.fin);
  // offset + length limits
  decodeFrame(hex('0e 00 ffffffffffffffff 00'), 0, 11, PacketType.OneRtt, f);
  expectError(hex('0e 00 ffffffffffffffff 01 aa'), FEE, 0x0e);
  expectError(hex('0c 00 ffffffffffffffff aa'), FEE, 0x0c); // no LEN: length 1 to end
  expectError(hex('0a 00 05 aa'), FEE, 0x0a);
  expectError(hex('0a 00'), FEE, 0x0a);
  expectError(hex('08'), FEE, 0x08);
  expectError(hex('08 00'), PV, 0x08, PacketType.Initial);
  expectError(hex('08 00'), PV, 0x08, PacketType.Handshake);
});

test('MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS, *_BLOCKED round trips and the 2^60 limit', () => {
  for (const type of [FrameType.MAX_DATA, FrameType.DATA_BLOCKED]) {
    for (const v of [0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, 2 ** 53, MAXV]) {
      assert.is(roundTrip(frame({ type, maximum: v })).out.maximum, v);
    }
  }
  for (const type of [FrameType.MAX_STREAM_DATA, FrameType.STREAM_DATA_BLOCKED]) {
    const o = roundTrip(frame({ type, streamId: 3, maximum: 99999 })).out;
    assert.is(o.streamId, 3);
    assert.is(o.maximum, 99999);
  }
  for (const type of [FrameType.MAX_STREAMS_BIDI, FrameType.MAX_STREAMS_UNI, FrameType.STREAMS_BLOCKED_BIDI, FrameType.STREAMS_BLOCKED_UNI]) {
    assert.is(roundTrip(frame({ type, maximum: 2 ** 60 })).out.maximum, 2 ** 60);
    assert.is(roundTrip(frame({ type, maximum: 100 })).out.maximum, 100);
    expectError(hex(`${type.toString(16)} d000000000000001`), FEE, type); // 2^60 + 1
    expectError(hex(`${type.toString(16)} ffffffffffffffff`), FEE, type);
    expectError(hex(`${type.toString(16)}`), FEE, type);
  }
  const b = new Uint8Array(16);
  const n = writeSimpleFrame(b, 0, FrameType.MAX_DATA, 1 << 24);
  const f = new Frame();
  assert.is(decodeFrame(b, 0, n, PacketType.OneRtt, f), n);
  assert.is(f.maximum, 1 << 24);
  expectError(hex('10 00'), PV, 0x10, PacketType.Initial);
});

test('NEW_CONNECTION_ID round trip and errors', () => {
  const src = new Uint8Array(40).map((_, i) => i);
  for (const len of [1, 8, 20]) {
    const o = roundTrip(frame({ type: FrameType.NEW_CONNECTION_ID, sequence: 7, retirePriorTo: 7, buf: src, dataOffset: 0, dataLength: len, resetTokenOffset: 20 })).out;
    assert.is(o.sequence, 7);
    assert.is(o.retirePriorTo, 7);
    assert.equal(o.data(), src.subarray(0, len));
    assert.equal(o.buf.subarray(o.resetTokenOffset, o.resetTokenOffset + 16), src.subarray(20, 36));
  }
  const token = '00112233445566778899aabbccddeeff';
  expectError(hex(`18 01 02 04 01020304 ${token}`), FEE, 0x18); // retire_prior_to > sequence
  expectError(hex(`18 01 00 00 ${token}`), FEE, 0x18); // length 0
  expectError(hex(`18 01 00 15 ${'00'.repeat(21)} ${token}`), FEE, 0x18); // length 21
  expectError(hex(`18 01 00 04 01020304 0011`), FEE, 0x18); // token truncated
  expectError(hex(`18 01 00`), FEE, 0x18);
  expectError(hex(`18 01 00 04 01020304 ${token}`), PV, 0x18, PacketType.Handshake);
});

test('RETIRE_CONNECTION_ID, PATH_CHALLENGE, PATH_RESPONSE', () => {
  assert.is(roundTrip(frame({ type: FrameType.RETIRE_CONNECTION_ID, sequence: 2 ** 35 })).out.sequence, 2 ** 35);
  const src = hex('0102030405060708');
  for (const type of [FrameType.PATH_CHALLENGE, FrameType.PATH_RESPONSE]) {
    assert.equal(roundTrip(frame({ type, buf: src, dataOffset: 0, dataLength: 8 })).out.data(), src);
    expectError(hex(`${type.toString(16)} 01020304050607`), FEE, type);
  }
  expectError(hex('1b 0102030405060708'), PV, 0x1b, PacketType.ZeroRtt);
  decodeFrame(hex('1a 0102030405060708'), 0, 9, PacketType.ZeroRtt, new Frame());
  expectError(hex('19'), FEE, 0x19);
});

test('CONNECTION_CLOSE transport and application', () => {
  const reason = new TextEncoder().encode('bad things');
  const t = roundTrip(frame({ type: FrameType.CONNECTION_CLOSE, errorCode: 0x0a, frameType: 0x08, buf: reason, dataOffset: 0, dataLength: reason.length }), PacketType.Initial).out;
  assert.is(t.errorCode, 0x0a);
  assert.is(t.frameType, 0x08);
  assert.is(new TextDecoder().decode(t.data()), 'bad things');
  const a = roundTrip(frame({ type: FrameType.CONNECTION_CLOSE_APP, errorCode: 0x100, buf: reason, dataOffset: 0, dataLength: 0 })).out;
  assert.is(a.errorCode, 0x100);
  assert.is(a.dataLength, 0);
  expectError(hex('1c 0a 08 05 6162'), FEE, 0x1c);
  expectError(hex('1d 0a'), FEE, 0x1d);
  expectError(hex('1d 00 00'), PV, 0x1d, PacketType.Initial);
  expectError(hex('1d 00 00'), PV, 0x1d, PacketType.Handshake);
  decodeFrame(hex('1c 00 00 00'), 0, 4, PacketType.Handshake, new Frame());
});

test('DATAGRAM 0x30 / 0x31 (RFC 9221)', () => {
  const src = hex('cafebabe');
  const d = roundTrip(frame({ type: FrameType.DATAGRAM_LEN, buf: src, dataOffset: 0, dataLength: 4 }), PacketType.ZeroRtt).out;
  assert.equal(d.data(), src);
  const e = roundTrip(frame({ type: FrameType.DATAGRAM, buf: src, dataOffset: 1, dataLength: 3 })).out;
  assert.equal(e.data(), src.subarray(1));
  expectError(hex('31 05 0102'), FEE, 0x31);
  expectError(hex('30 01'), PV, 0x30, PacketType.Initial);
  assert.ok(isAckEliciting(0x30) && countsInFlight(0x31) && !isFlowControlled(0x30));
});

test('unknown and non-minimal frame types', () => {
  expectError(hex('1f'), FEE, 0x1f);
  expectError(hex('20'), FEE, 0x20);
  expectError(hex('4020'), FEE, 0x20);
  expectError(hex('7fff'), FEE, 0x3fff);
  expectError(hex('4001'), PV, 0x01); // PING in two bytes
  expectError(hex('80000008 00'), PV, 0x08);
  expectError(hex('40'), FEE, 0); // truncated type
  expectError(new Uint8Array(0), FEE, 0);
});

test('frame table (RFC 9000 Table 3)', () => {
  const I = PacketType.Initial,
    Z = PacketType.ZeroRtt,
    H = PacketType.Handshake,
    O = PacketType.OneRtt;
  const allowed = (t: number) => [I, Z, H, O].map((p) => (frameAllowedIn(t, p) ? 1 : 0)).join('');
  assert.is(allowed(0x00), '1111');
  assert.is(allowed(0x01), '1111');
  assert.is(allowed(0x02), '1011');
  assert.is(allowed(0x03), '1011');
  assert.is(allowed(0x04), '0101');
  assert.is(allowed(0x06), '1011');
  assert.is(allowed(0x07), '0001');
  for (let t = 0x08; t <= 0x19; t++) assert.is(allowed(t), '0101', `0x${t.toString(16)}`);
  assert.is(allowed(0x1a), '0101');
  assert.is(allowed(0x1b), '0001');
  assert.is(allowed(0x1c), '1111');
  assert.is(allowed(0x1d), '0101');
  assert.is(allowed(0x1e), '0001');
  assert.is(allowed(0x30), '0101');
  assert.is(allowed(0x1f), '0000');
  assert.ok(!frameAllowedIn(0x01, PacketType.Retry));
  // Not ack-eliciting: ACK, PADDING, CONNECTION_CLOSE
  for (const t of [0x00, 0x02, 0x03, 0x1c, 0x1d]) assert.ok(!isAckEliciting(t));
  for (const t of [0x01, 0x04, 0x06, 0x08, 0x10, 0x18, 0x1a, 0x1b, 0x1e, 0x30]) assert.ok(isAckEliciting(t));
  assert.ok(!countsInFlight(0x02) && !countsInFlight(0x03) && countsInFlight(0x00) && countsInFlight(0x01));
  for (const t of [0x00, 0x18, 0x1a, 0x1b]) assert.ok(isProbingFrame(t));
  assert.ok(!isProbingFrame(0x01));
  assert.ok(isFlowControlled(0x0a) && !isFlowControlled(0x06));
});

test('several frames in one payload', () => {
  const parts = [
    frame({ type: FrameType.PING }),
    frame({ type: FrameType.MAX_DATA, maximum: 5000 }),
    frame({ type: 0x0a, streamId: 0, buf: hex('0102'), dataOffset: 0, dataLength: 2 }),
    frame({ type: FrameType.PADDING, dataLength: 3 }),
  ];
  const buf = new Uint8Array(parts.reduce((n, f) => n + frameSize(f), 0));
  let o = 0;
  for (const f of parts) o = encodeFrame(buf, o, f);
  assert.is(o, buf.length);
  const f = new Frame();
  const types: number[] = [];
  for (let p = 0; p < buf.length; ) {
    p = decodeFrame(buf, p, buf.length, PacketType.OneRtt, f);
    types.push(f.type);
  }
  assert.equal(types, [0x01, 0x10, 0x0a, 0x00]);
});

test('max data per STREAM/CRYPTO frame fits exactly', () => {
  for (const space of [0, 1, 2, 3, 4, 5, 10, 66, 67, 68, 69, 70, 1000, 16386, 16387, 16388, 16389, 16390, 20000]) {
    for (const [id, off] of [[0, 0], [4, 1 << 20], [2 ** 40, 2 ** 50]] as const) {
      for (const withLength of [true, false]) {
        const n = maxStreamFrameData(id, off, space, withLength);
        if (n > 0) assert.ok(streamFrameHeaderSize(id, off, n, withLength) + n <= space, `fits ${space} ${n}`);
        // One more byte would not fit (maximality), unless a Length-size step makes n+1 impossible anyway.
        assert.ok(streamFrameHeaderSize(id, off, n + 1, withLength) + n + 1 > space, `maximal ${space} ${n} ${withLength}`);
      }
    }
    const c = maxCryptoFrameData(5000, space);
    if (c > 0) assert.ok(cryptoFrameHeaderSize(5000, c) + c <= space);
    assert.ok(cryptoFrameHeaderSize(5000, c + 1) + c + 1 > space);
  }
});

test.run();
