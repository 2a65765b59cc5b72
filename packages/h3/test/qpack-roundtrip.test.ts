// QPACK encoder ↔ decoder over simulated encoder/decoder streams: random header lists (seeded),
// a small dynamic table, sections delivered before their inserts (blocked streams), late
// acknowledgments, stream cancellations. The decoder would fail on any reference to an evicted
// entry or on too many blocked streams, so these also check the encoder's eviction and blocking rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QpackDecoder, type FieldLine } from '../src/qpack/decoder.js';
import { MAX_OUTSTANDING_SECTIONS, QpackEncoder } from '../src/qpack/encoder.js';
import { Rng } from './support.js';

const NAMES = [':authority', ':path', 'user-agent', 'accept', 'cookie', 'x-request-id', 'x-trace', 'content-type', 'authorization', 'x-ünïcode'];
const VALUES = ['a', 'example.com', '/index.html', 'text/html; charset=utf-8', 'petrel/0.1', 'session=abcdef0123456789', 'Bearer xyz', 'ñ✓ value', ''];

function randomHeaders(rng: Rng): FieldLine[] {
  const n = 1 + rng.int(8);
  const out: FieldLine[] = [];
  for (let i = 0; i < n; i++) {
    const name = rng.pick(NAMES);
    const value = rng.int(4) === 0 ? `v${rng.int(1000)}` : rng.pick(VALUES);
    out.push([name, value]);
  }
  return out;
}

interface Flight {
  stream: number;
  bytes: Uint8Array;
  headers: FieldLine[];
}

function simulate(seed: number, capacity: number, blocked: number, steps: number): { inserts: number; decoded: number; blockedSeen: number; duplicates: number } {
  const rng = new Rng(seed);
  const enc = new QpackEncoder({ maxTableCapacity: capacity, insertThreshold: 1 + rng.int(3), huffman: rng.pick([true, false, 'auto'] as const) });
  const dec = new QpackDecoder({ maxTableCapacity: capacity, maxBlockedStreams: blocked });
  enc.applyPeerSettings(capacity, blocked);
  let encWire = new Uint8Array(0); // encoder stream bytes in flight, in order
  let decWire = new Uint8Array(0);
  const inFlight: Flight[] = [];
  const waiting = new Map<number, Flight>(); // blocked at the decoder
  let nextStream = 0;
  let decoded = 0;
  let blockedSeen = 0;
  const append = (a: Uint8Array, b: Uint8Array) => {
    const o = new Uint8Array(a.length + b.length);
    o.set(a);
    o.set(b, a.length);
    return o;
  };
  const check = (f: Flight, headers: FieldLine[]) => {
    assert.equal(headers, f.headers, `stream ${f.stream}`);
    decoded++;
  };
  const deliverSection = (f: Flight) => {
    const r = dec.decodeSection(f.stream, f.bytes);
    if (r.status === 'done') check(f, r.headers);
    else {
      blockedSeen++;
      waiting.set(f.stream, f);
    }
  };
  const deliverEncoder = (n: number) => {
    const chunk = encWire.subarray(0, n);
    encWire = encWire.slice(n);
    for (const id of dec.feedEncoderStream(chunk)) {
      const f = waiting.get(id)!;
      waiting.delete(id);
      const r = dec.decodeSection(id, f.bytes);
      assert.is(r.status, 'done');
      if (r.status === 'done') check(f, r.headers);
    }
  };
  const deliverDecoder = (n: number) => {
    const chunk = decWire.subarray(0, n);
    decWire = decWire.slice(n);
    enc.feedDecoderStream(chunk);
  };
  for (let step = 0; step < steps; step++) {
    const a = rng.int(10);
    if (a < 3) {
      const headers = randomHeaders(rng);
      const stream = nextStream;
      nextStream += 4;
      const bytes = enc.encode(stream, headers);
      encWire = append(encWire, enc.takeEncoderStream());
      inFlight.push({ stream, bytes, headers });
      assert.ok(enc.tableSize <= enc.tableCapacity);
      assert.ok(enc.blockedStreamCount <= blocked, 'encoder blocked-stream bound');
    } else if (a < 5 && inFlight.length) {
      deliverSection(inFlight.splice(rng.int(inFlight.length), 1)[0]!);
    } else if (a < 7 && encWire.length) {
      deliverEncoder(1 + rng.int(encWire.length));
    } else if (a < 9) {
      decWire = append(decWire, dec.takeDecoderStream());
      if (decWire.length) deliverDecoder(1 + rng.int(decWire.length));
    } else if (a === 9 && rng.int(4) === 0 && capacity > 0) {
      // The encoder changes the table capacity (shrinking only if the evictions are allowed).
      try {
        enc.setCapacity(rng.int(capacity + 1));
        encWire = append(encWire, enc.takeEncoderStream());
      } catch (e) {
        assert.ok(e instanceof Error && /cannot shrink/.test(e.message), String(e));
      }
    } else if (waiting.size && rng.int(3) === 0) {
      // The request stream is reset while its section is blocked.
      const id = [...waiting.keys()][0]!;
      waiting.delete(id);
      dec.cancelStream(id);
    }
  }
  // Drain everything.
  while (inFlight.length) deliverSection(inFlight.shift()!);
  deliverEncoder(encWire.length);
  assert.is(waiting.size, 0);
  decWire = append(decWire, dec.takeDecoderStream());
  deliverDecoder(decWire.length);
  assert.is(enc.knownReceivedCount, enc.insertCount);
  assert.is(enc.blockedStreamCount, 0);
  assert.is(dec.insertCount, enc.insertCount);
  assert.is(dec.tableSize, enc.tableSize);
  return { inserts: enc.insertCount, decoded, blockedSeen, duplicates: enc.duplicates };
}

test('round trips with a dynamic table under a size limit (seeded, many configurations)', () => {
  let inserts = 0;
  let blockedSeen = 0;
  let decoded = 0;
  let duplicates = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const capacity = [0, 64, 128, 256, 512, 4096][seed % 6]!;
    const blocked = [0, 1, 2, 16][seed % 4]!;
    const r = simulate(seed, capacity, blocked, 300);
    inserts += r.inserts;
    blockedSeen += r.blockedSeen;
    decoded += r.decoded;
    duplicates += r.duplicates;
  }
  assert.ok(duplicates > 5, `duplicates ${duplicates}`);
  // The scenarios really exercised the dynamic table and blocking.
  assert.ok(inserts > 500, `inserts ${inserts}`);
  assert.ok(blockedSeen > 50, `blocked ${blockedSeen}`);
  assert.ok(decoded > 3000, `decoded ${decoded}`);
});

test('no dynamic table before the peer settings: static and literal only', () => {
  const enc = new QpackEncoder();
  const dec = new QpackDecoder({ maxTableCapacity: 0 });
  const rng = new Rng(99);
  for (let i = 0; i < 200; i++) {
    const h = randomHeaders(rng);
    const r = dec.decodeSection(i * 4, enc.encode(i * 4, h));
    assert.equal(r, { status: 'done', headers: h });
  }
  assert.is(enc.insertCount, 0);
  assert.is(enc.takeEncoderStream().length, 0);
});

test('sensitive fields use the never-indexed literal form and are not inserted', () => {
  const enc = new QpackEncoder({ insertThreshold: 1 });
  enc.applyPeerSettings(4096, 16);
  const s = enc.encode(0, [['authorization', 'secret'], ['x-custom-sensitive-check', 'v']]);
  assert.is(enc.insertCount, 1); // only the second
  // authorization is static index 84: literal with name ref, N=1, T=1: 0111 xxxx + int(4) 84.
  assert.is(s[2]! & 0xf0, 0x70);
});

test('an encoder never evicts an unacknowledged entry: it falls back to literals', () => {
  const enc = new QpackEncoder({ insertThreshold: 1 });
  enc.applyPeerSettings(100, 16); // room for one ~60-byte entry
  enc.encode(0, [['x-aaaa', 'value-number-one']]);
  assert.is(enc.insertCount, 1);
  // Entry 0 is referenced by stream 0 and not acknowledged: the next field cannot evict it.
  enc.encode(4, [['x-bbbb', 'value-number-two']]);
  assert.is(enc.insertCount, 1);
  assert.is(enc.oldestIndex, 0);
  // Acknowledge stream 0's section: now it can be evicted.
  enc.feedDecoderStream(Uint8Array.of(0x80));
  enc.encode(8, [['x-bbbb', 'value-number-two']]);
  assert.is(enc.insertCount, 2);
  assert.is(enc.oldestIndex, 1);
});

test('a decoder that never acknowledges sections cannot grow the encoder without bound: beyond MAX_OUTSTANDING_SECTIONS new sections use only static/literal forms, and decode', () => {
  const enc = new QpackEncoder({ maxTableCapacity: 4096, insertThreshold: 1 });
  const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 100 });
  enc.applyPeerSettings(4096, 100);
  const fields: FieldLine[] = [['x-custom', 'value'], [':authority', 'example.com']];
  let last: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 3000; i++) {
    last = enc.encode(4 * i, fields);
    const ins = enc.takeEncoderStream();
    if (ins.length > 0) {
      dec.feedEncoderStream(ins);
      // Insert Count Increments only (the decoder keeps the entries usable), never a Section Acknowledgment.
      enc.feedDecoderStream(Uint8Array.of(enc.insertCount - enc.knownReceivedCount));
    }
  }
  assert.is(enc.outstandingSections, MAX_OUTSTANDING_SECTIONS);
  // The last section references nothing dynamic and decodes on its own.
  assert.is(last[0], 0, 'Required Insert Count 0');
  const out = dec.decodeSection(4 * 2999, last);
  assert.equal(out, { status: 'done', headers: fields });
  // Acknowledgments bring the dynamic table back.
  enc.feedDecoderStream(Uint8Array.of(0x80 | 0)); // Section Acknowledgment, stream 0
  assert.is(enc.outstandingSections, MAX_OUTSTANDING_SECTIONS - 1);
  const again = enc.encode(4 * 3000, fields);
  assert.ok(again[0] !== 0, 'a dynamic reference again');
});

test.run();
