/**
 * HTTP/3 and QPACK fuzz targets (packages/h3):
 * - qpack-decoder: [u16 n][n bytes of encoder stream][field section] into a fresh decoder.
 * - h3-frames: FrameReader over a stream, SETTINGS / GOAWAY / MAX_PUSH_ID / PUSH_PROMISE payloads.
 * - h3-server-conn: a whole server H3Connection: [u16 n][n bytes on the client's control
 *   stream][rest on request stream 0, FIN]; handleEvent must not throw and must not report an
 *   internal error (strict target with an invariant check).
 */
import { H3Connection, type H3Event } from '../../packages/h3/src/connection.js';
import { encodeFrame, encodeIdFrame, encodeSettings, FrameReader, FrameType, parseIdFrame, parsePushPromise, parseSettings } from '../../packages/h3/src/frames.js';
import { memoryTransportPair } from '../../packages/h3/src/memory-transport.js';
import type { FieldLine } from '../../packages/h3/src/qpack/decoder.js';
import { QpackDecoder } from '../../packages/h3/src/qpack/decoder.js';
import { QpackEncoder } from '../../packages/h3/src/qpack/encoder.js';
import { encodeVarint } from '../../packages/h3/src/varint.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { concat } from './mutate.js';

const GET: FieldLine[] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/index.html'],
  ['user-agent', 'petrel-fuzz'],
];
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const invariant = (ok: boolean, msg: string): void => {
  if (!ok) throw new Error(`invariant: ${msg}`);
};

export const qpackDecoderTarget = defineTarget({
  name: 'qpack-decoder',
  description: 'QpackDecoder: encoder-stream instructions then a field section (dynamic table refs, Huffman)',
  seeds: () => {
    const out: Uint8Array[] = [];
    const enc = new QpackEncoder({ insertThreshold: 1, maxTableCapacity: 4096 });
    enc.applyPeerSettings(4096, 16);
    const lists: FieldLine[][] = [GET, [...GET, ['cookie', 'a=b; c=d'], ['x-long', 'v'.repeat(80)]], [[':status', '200'], ['content-type', 'text/html'], ['x-a', 'b']]];
    for (const [i, h] of lists.entries()) {
      const section = enc.encode(i * 4, h);
      const es = enc.takeEncoderStream();
      out.push(concat(u16(es.length), es, section));
    }
    return out;
  },
  run: (input) => {
    if (input.length < 2) return;
    const n = Math.min(input.length - 2, (input[0]! << 8) | input[1]!);
    const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 2, maxFieldSectionSize: 16384 });
    dec.feedEncoderStream(input.subarray(2, 2 + n));
    dec.decodeSection(0, input.subarray(2 + n));
    dec.takeDecoderStream();
  },
});

export const h3FramesTarget = defineTarget({
  name: 'h3-frames',
  description: 'FrameReader over stream bytes; SETTINGS, GOAWAY, MAX_PUSH_ID, PUSH_PROMISE payload parsers',
  seeds: () => {
    const q = new QpackEncoder();
    return [
      concat(encodeSettings([[1, 4096], [6, 1000], [7, 10], [0x21, 1]]), encodeIdFrame(FrameType.GOAWAY, 4), encodeIdFrame(FrameType.MAX_PUSH_ID, 7)),
      concat(encodeFrame(FrameType.HEADERS, q.encode(0, GET)), encodeFrame(FrameType.DATA, new Uint8Array(10).fill(0x61)), encodeFrame(0x21, Uint8Array.of(1, 2, 3, 4))),
      encodeFrame(FrameType.PUSH_PROMISE, concat(Uint8Array.of(0), q.encode(0, GET))),
    ];
  },
  run: (input) => {
    const frames = new FrameReader(1024).push(input);
    for (const f of frames) {
      if (f.type === FrameType.SETTINGS) parseSettings(f.payload);
      else if (f.type === FrameType.GOAWAY || f.type === FrameType.MAX_PUSH_ID) parseIdFrame(f.payload, 'id frame');
      else if (f.type === FrameType.PUSH_PROMISE) parsePushPromise(f.payload);
    }
  },
});

interface ConnState {
  events: H3Event[];
}

export const h3ServerConnTarget = defineTarget<ConnState>({
  name: 'h3-server-conn',
  description: 'server H3Connection fed a client control stream and a request stream',
  strict: true,
  seeds: () => {
    const q = new QpackEncoder();
    const control = concat(encodeVarint(0), encodeSettings([[1, 0], [7, 0], [6, 16384]]));
    const request = concat(encodeFrame(FrameType.HEADERS, q.encode(0, GET)), encodeFrame(FrameType.DATA, Uint8Array.of(1, 2, 3)));
    return [concat(u16(control.length), control, request), concat(u16(control.length), control, encodeFrame(FrameType.HEADERS, q.encode(0, [[':method', 'POST'], ...GET.slice(1)])))];
  },
  run: (input) => {
    const st: ConnState = { events: [] };
    if (input.length < 2) return st;
    const n = Math.min(input.length - 2, (input[0]! << 8) | input[1]!);
    const { client, server } = memoryTransportPair();
    const conn = new H3Connection(server, {});
    const ctl = client.open(false);
    const req = client.open(true);
    server.inbox.push({ type: 'streamData', id: ctl, data: input.subarray(2, 2 + n), fin: false });
    server.inbox.push({ type: 'streamData', id: req, data: input.subarray(2 + n), fin: true });
    for (let guard = 0; guard < 20 && server.inbox.length; guard++) {
      for (const ev of server.poll()) st.events.push(...conn.handleEvent(ev));
      client.poll();
    }
    return st;
  },
  check: (st) => {
    for (const e of st.events) if (e.type === 'connectionError') invariant(!e.internal, `internal error: ${e.reason}`);
  },
  signature: (st) => st.events.map((e) => (e.type === 'connectionError' ? `E${e.code}` : e.type)).join(',').slice(0, 80),
});

export const h3Targets: FuzzTarget[] = [qpackDecoderTarget, h3FramesTarget, h3ServerConnTarget];
