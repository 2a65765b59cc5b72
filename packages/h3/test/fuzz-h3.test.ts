// Fuzz: random and mutated HTTP/3 frames and stream contents into the frame parsers and into a
// whole H3Connection (both roles). Parsers: only ProtocolViolation escapes. Connection: handleEvent
// never throws and never reports an internal error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { encodeFrame, encodeIdFrame, encodeSettings, FrameReader, FrameType, parseIdFrame, parseSettings } from '../src/frames.js';
import { H3Connection } from '../src/connection.js';
import { memoryTransportPair } from '../src/memory-transport.js';
import { QpackEncoder } from '../src/qpack/encoder.js';
import { encodeVarint } from '../src/varint.js';
import { Rng } from './support.js';
import { concat, GET } from './h3-support.js';

const BUDGET_MS = Number(process.env.FUZZ_MS ?? 700);

function expectViolation(e: unknown): void {
  if (!(e instanceof ProtocolViolation) || (e.layer !== 'h3' && e.layer !== 'qpack')) {
    throw new Error(`unexpected exception: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

function seeds(rng: Rng): Uint8Array[] {
  const q = new QpackEncoder();
  return [
    encodeSettings([[1, 4096], [6, 1000], [7, 10], [0x21, 1], [0x33, 1]]),
    encodeIdFrame(FrameType.GOAWAY, 4),
    encodeIdFrame(FrameType.MAX_PUSH_ID, 7),
    encodeFrame(FrameType.HEADERS, q.encode(0, GET)),
    encodeFrame(FrameType.HEADERS, q.encode(0, [[':status', '200'], ['content-length', '3']])),
    encodeFrame(FrameType.DATA, rng.bytes(10)),
    encodeFrame(0x21, rng.bytes(4)),
    encodeFrame(FrameType.PUSH_PROMISE, concat(Uint8Array.of(0), q.encode(0, GET))),
  ];
}

test('frame parsers on random and mutated frames', () => {
  const rng = new Rng(9114);
  const base = seeds(rng);
  const end = Date.now() + BUDGET_MS / 2;
  let n = 0;
  while ((Date.now() < end || n < 2000) && n < 300000) {
    n++;
    const input = rng.int(3) === 0 ? rng.bytes(rng.int(30)) : rng.mutate(rng.pick(base));
    try {
      const frames = new FrameReader(rng.pick([8, 100, 1000])).push(input);
      for (const f of frames) {
        if (f.type === FrameType.SETTINGS) parseSettings(f.payload);
        else if (f.type === FrameType.GOAWAY) parseIdFrame(f.payload, 'GOAWAY');
      }
      parseSettings(input);
      parseIdFrame(input, 'x');
    } catch (e) {
      expectViolation(e);
    }
  }
  assert.ok(n > 1000);
});

test('whole connections fed random and mutated stream contents', () => {
  const rng = new Rng(0x3);
  const base = seeds(rng);
  const q = new QpackEncoder({ insertThreshold: 1 });
  q.applyPeerSettings(4096, 16);
  const encoderBytes = (q.encode(0, [...GET, ['x-a', 'b']]), q.takeEncoderStream());
  const end = Date.now() + BUDGET_MS;
  let runs = 0;
  const codes = new Map<number, number>();
  while ((Date.now() < end || runs < 300) && runs < 20000) {
    runs++;
    const { client, server } = memoryTransportPair();
    const asServer = rng.int(2) === 0;
    const mine = asServer ? server : client;
    const raw = asServer ? client : server;
    const conn = new H3Connection(mine, { qpackBlockedStreams: rng.int(3), enableDatagrams: rng.int(2) === 0, enableConnectProtocol: rng.int(2) === 0 });
    if (!asServer) conn.sendRequest(GET, rng.int(2) === 0);
    const streams: number[] = [];
    for (let k = 0; k < 1 + rng.int(5); k++) {
      const kind = rng.int(5);
      let id: number;
      let content: Uint8Array;
      if (kind === 0) {
        id = raw.open(false);
        content = concat(encodeVarint(0), base[0]!, rng.pick(base));
      } else if (kind === 1) {
        id = raw.open(false);
        content = concat(encodeVarint(rng.int(4)), rng.int(2) ? encoderBytes : rng.bytes(5));
      } else if (kind === 2 && asServer) {
        id = raw.open(true);
        content = concat(rng.pick(base), rng.pick(base));
      } else {
        id = asServer ? raw.open(true) : 0;
        content = concat(base[asServer ? 3 : 4]!, base[5]!);
      }
      if (rng.int(2)) content = rng.mutate(content);
      streams.push(id);
      const cut = rng.int(content.length + 1);
      mine.inbox.push({ type: 'streamData', id, data: content.subarray(0, cut), fin: false });
      mine.inbox.push({ type: 'streamData', id, data: content.subarray(cut), fin: rng.int(4) === 0 });
      if (rng.int(8) === 0) mine.inbox.push({ type: 'streamReset', id, code: rng.int(0x120) });
      if (rng.int(10) === 0) mine.inbox.push({ type: 'streamStopped', id, code: 0x10c });
      if (rng.int(4) === 0) mine.inbox.push({ type: 'datagram', data: rng.int(2) ? rng.bytes(rng.int(12)) : Uint8Array.of(0, 1, 2) });
    }
    // Shuffle delivery order across streams (per-stream order kept by pushing pairs).
    for (let guard = 0; guard < 100 && mine.inbox.length; guard++) {
      const evs = mine.poll();
      for (const ev of evs) {
        let out;
        try {
          out = conn.handleEvent(ev);
        } catch (e) {
          throw new Error(`handleEvent threw: ${e instanceof Error ? e.stack : String(e)}`);
        }
        for (const o of out) {
          if (o.type === 'connectionError') {
            assert.ok(!o.internal, `internal error: ${o.reason}`);
            codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
          }
        }
      }
      raw.poll();
    }
  }
  assert.ok(runs > 200, `runs ${runs}`);
  assert.ok(codes.size >= 5, `distinct error codes ${[...codes.keys()].map((c) => c.toString(16))}`);
});

test.run();
