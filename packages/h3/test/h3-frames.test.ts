import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import {
  encodeDataFrameHeader, encodeFrame, encodeIdFrame, encodeSettings, FrameReader, FrameType,
  isGreaseType, parseIdFrame, parsePushPromise, parseSettings, type RawFrame,
} from '../src/frames.js';
import { H3Error } from '../src/errors.js';
import { encodeVarint, readVarint } from '../src/varint.js';
import { hex, Rng } from './support.js';

test('varints round trip at every length boundary', () => {
  const pos = { v: 0 };
  for (const v of [0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, 2 ** 53 - 1]) {
    const b = encodeVarint(v);
    assert.is(readVarint(b, 0, b.length, pos), v);
    assert.is(pos.v, b.length);
    assert.is(readVarint(b, 0, b.length - 1, pos), -1);
  }
  // RFC 9000 A.1 examples (the 8-byte one is exact only to double precision).
  for (const [h, v] of [['c2197c5eff14e88c', 151288809941952652], ['9d7f3e7d', 494878333], ['7bbd', 15293], ['25', 37], ['4025', 37]] as const) {
    const b = Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
    assert.is(readVarint(b, 0, b.length, pos), v);
  }
  assert.is(hex(encodeVarint(494878333)), '9d7f3e7d');
});

test('SETTINGS / GOAWAY / MAX_PUSH_ID / CANCEL_PUSH round trips', () => {
  const s = new Map([[1, 4096], [6, 16384], [7, 100], [0x21 + 0x1f * 7, 12345678]]);
  const f = encodeSettings(s);
  const frames = new FrameReader(1024).push(f);
  assert.is(frames.length, 1);
  assert.is(frames[0]!.type, FrameType.SETTINGS);
  assert.equal(parseSettings(frames[0]!.payload), s);
  for (const t of [FrameType.GOAWAY, FrameType.MAX_PUSH_ID, FrameType.CANCEL_PUSH]) {
    for (const id of [0, 4, 1000000, 2 ** 40]) {
      const fr = new FrameReader(64).push(encodeIdFrame(t, id));
      assert.equal(fr.map((x) => x.type), [t]);
      assert.is(parseIdFrame(fr[0]!.payload, 'x'), id);
    }
  }
  const pp = parsePushPromise(Uint8Array.of(0x05, 0xaa, 0xbb));
  assert.is(pp.pushId, 5);
  assert.is(hex(pp.fieldSection), 'aabb');
});

test('frame reader: any split of a stream yields the same frames; DATA streamed in chunks', () => {
  const rng = new Rng(3);
  const data = rng.bytes(3000);
  const stream = [
    encodeFrame(FrameType.HEADERS, rng.bytes(200)),
    encodeDataFrameHeader(data.length), data,
    encodeFrame(0x21, rng.bytes(50)), // grease: skipped
    encodeFrame(FrameType.DATA, new Uint8Array(0)),
    encodeFrame(FrameType.HEADERS, rng.bytes(20)),
  ];
  const all = new Uint8Array(stream.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of stream) (all.set(p, o), (o += p.length));
  for (let trial = 0; trial < 200; trial++) {
    const r = new FrameReader(1000);
    const out: RawFrame[] = [];
    let at = 0;
    while (at < all.length) {
      const n = 1 + rng.int(trial < 20 ? 3 : 700);
      r.push(all.subarray(at, at + n), out);
      at += n;
    }
    assert.ok(r.atBoundary);
    assert.equal(out.map((f) => f.type).filter((t, i, a) => t !== 0 || a[i - 1] !== 0), [1, 0, 1]);
    const body = out.filter((f) => f.type === 0);
    assert.is(body.reduce((n, f) => n + f.payload.length, 0), data.length);
    assert.equal(out[0]!.payload, stream[0]!.subarray(3));
  }
});

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ProtocolViolation);
    return (e as ProtocolViolation).code;
  }
  return -1;
}

test('frame errors', () => {
  assert.is(code(() => parseSettings(Uint8Array.of(1, 0, 1, 0))), H3Error.H3_SETTINGS_ERROR);
  assert.is(code(() => parseSettings(Uint8Array.of(2, 0))), H3Error.H3_SETTINGS_ERROR);
  assert.is(code(() => parseSettings(Uint8Array.of(1))), H3Error.H3_FRAME_ERROR);
  assert.is(code(() => parseIdFrame(Uint8Array.of(), 'GOAWAY')), H3Error.H3_FRAME_ERROR);
  assert.is(code(() => parseIdFrame(Uint8Array.of(1, 2), 'GOAWAY')), H3Error.H3_FRAME_ERROR);
  assert.is(code(() => new FrameReader(10).push(Uint8Array.of(1, 11))), H3Error.H3_EXCESSIVE_LOAD);
  assert.is(code(() => new FrameReader(10).push(Uint8Array.of(8, 0))), H3Error.H3_FRAME_UNEXPECTED);
  // Unknown frames are skipped whatever their size; DATA is never buffered.
  assert.is(code(() => new FrameReader(10).push(Uint8Array.of(0x21, 0x50, 0))), -1);
  assert.is(code(() => new FrameReader(10).push(Uint8Array.of(0, 0x50, 0))), -1);
});

test('grease types', () => {
  assert.ok(isGreaseType(0x21));
  assert.ok(isGreaseType(0x40));
  assert.ok(!isGreaseType(0x22));
  assert.ok(!isGreaseType(0x1f));
});

test.run();
