import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { Assembler } from '../src/assembler.js';
import { CryptoStreams, CryptoLevel } from '../src/streams/crypto.js';
import { newStreamChunkOut } from '../src/streams/send.js';

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

function codeOf(f: () => void): number {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolViolation) return e.code;
    throw e;
  }
  return -1;
}

test('in-order data is readable at once', () => {
  const a = new Assembler();
  a.insert(0, new Uint8Array([1, 2, 3]));
  a.insert(3, new Uint8Array([4]));
  assert.is(a.readable, 4);
  assert.equal(a.readAll(), new Uint8Array([1, 2, 3, 4]));
  assert.is(a.read(), null);
  assert.is(a.readOffset, 4);
});

test('gap blocks reading until filled; data is copied', () => {
  const a = new Assembler();
  const buf = new Uint8Array([7, 8]);
  a.insert(2, buf);
  buf[0] = 99; // caller reuses its buffer
  assert.is(a.read(), null);
  a.insert(0, new Uint8Array([5, 6]));
  assert.equal(a.readAll(), new Uint8Array([5, 6, 7, 8]));
});

test('partial reads with max', () => {
  const a = new Assembler();
  a.insert(0, new Uint8Array([1, 2, 3, 4, 5]));
  assert.equal(a.read(2), new Uint8Array([1, 2]));
  a.insert(3, new Uint8Array([4, 5, 6])); // overlaps the unread part
  assert.equal(a.read(10), new Uint8Array([3, 4, 5]));
  assert.equal(a.read(10), new Uint8Array([6]));
  assert.is(a.buffered, 0);
});

test('inconsistent overlapping data is a PROTOCOL_VIOLATION (§2.2); state unchanged', () => {
  const a = new Assembler();
  a.insert(5, new Uint8Array([1, 2, 3]));
  assert.is(codeOf(() => a.insert(4, new Uint8Array([0, 1, 9, 3]))), 0xa);
  assert.is(a.buffered, 3);
  a.insert(4, new Uint8Array([0, 1, 2, 3, 4]));
  a.insert(0, new Uint8Array([0, 0, 0, 0]));
  assert.equal(a.readAll(), new Uint8Array([0, 0, 0, 0, 0, 1, 2, 3, 4]));
});

test('CRYPTO_BUFFER_EXCEEDED beyond the buffer limit (RFC 9000 §7.5)', () => {
  const a = new Assembler({ maxBuffer: 100 });
  a.insert(90, new Uint8Array(10));
  assert.is(codeOf(() => a.insert(95, new Uint8Array(6))), 0xd);
  a.insert(0, new Uint8Array(50));
  a.readAll();
  a.insert(140, new Uint8Array(10)); // now allowed: read offset 50 → limit 150 (data 90..100 consistent zeros)
  assert.is(codeOf(() => a.insert(150, new Uint8Array(1))), 0xd);
});

test('offsets beyond 2^62-1 are FRAME_ENCODING_ERROR', () => {
  const a = new Assembler();
  assert.is(codeOf(() => a.insert(2 ** 62 - 1, new Uint8Array(1))), 0x7);
  assert.is(codeOf(() => a.insert(-1, new Uint8Array(1))), 0x7);
});

test('property: random overlapping, duplicated, reordered chunks give exactly the original bytes', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const r = rng(seed);
    const len = 1 + Math.floor(r() * 3000);
    const src = new Uint8Array(len);
    for (let i = 0; i < len; i++) src[i] = Math.floor(r() * 256);
    // chunks covering everything, plus random overlapping extras
    const chunks: [number, number][] = [];
    for (let o = 0; o < len; ) {
      const n = 1 + Math.floor(r() * 200);
      chunks.push([o, Math.min(len, o + n)]);
      o += n;
    }
    for (let k = 0; k < 40; k++) {
      const s = Math.floor(r() * len);
      chunks.push([s, Math.min(len, s + 1 + Math.floor(r() * 300))]);
    }
    for (let i = chunks.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [chunks[i], chunks[j]] = [chunks[j]!, chunks[i]!];
    }
    const a = new Assembler();
    const out: number[] = [];
    for (const [s, e] of chunks) {
      a.insert(s, src.subarray(s, e));
      if (r() < 0.3) {
        let c: Uint8Array | null;
        while ((c = a.read(1 + Math.floor(r() * 100)))) out.push(...c);
      }
    }
    let c: Uint8Array | null;
    while ((c = a.read())) out.push(...c);
    assert.equal(new Uint8Array(out), src, `seed ${seed}`);
    assert.is(a.buffered, 0);
    assert.is(a.highest, len);
  }
});

test('fuzz: random operations only throw ProtocolViolation and never lose consistency', () => {
  const r = rng(4242);
  for (let iter = 0; iter < 300; iter++) {
    const a = new Assembler({ maxBuffer: 1 + Math.floor(r() * 2000) });
    for (let op = 0; op < 50; op++) {
      const x = r();
      try {
        if (x < 0.7) {
          const off = r() < 0.05 ? 2 ** 62 - Math.floor(r() * 4) : Math.floor(r() * 3000);
          const data = new Uint8Array(Math.floor(r() * 300));
          for (let i = 0; i < data.length; i++) data[i] = r() < 0.9 ? (off + i) & 0xff : Math.floor(r() * 256);
          a.insert(off, data);
        } else if (x < 0.95) a.read(Math.floor(r() * 500));
        else a.discard();
      } catch (e) {
        if (!(e instanceof ProtocolViolation)) throw e;
      }
      assert.ok(a.buffered >= 0);
      assert.ok(a.readable <= a.buffered);
      assert.ok(a.gapCount >= 0 && a.gapCount <= a.segmentCount);
    }
  }
});

test('in-order appends share a block: one segment, one read; earlier views and copies stay intact', () => {
  const a = new Assembler();
  const pkt = new Uint8Array(1150);
  const views: Uint8Array[] = [];
  let off = 0;
  for (let k = 0; k < 200; k++) {
    pkt.fill(k & 0xff);
    a.insert(off, pkt); // the caller reuses its buffer: the assembler must have copied
    off += pkt.length;
    if (k % 7 === 6) {
      views.push(a.read()!);
    }
    assert.ok(a.segmentCount <= 3, `segments ${a.segmentCount}`); // one per block crossed since the last read
  }
  let c: Uint8Array | null;
  while ((c = a.read())) views.push(c);
  // One read per segment: a segment per 1150-byte packet before; now one per block (<= 64 KiB).
  assert.ok(views.length < 60, `reads ${views.length}`);
  assert.is(a.readOffset, off);
  assert.is(a.buffered, 0);
  // Every view handed out still holds its bytes after all later appends (block bytes are never rewritten).
  let pos = 0;
  for (const v of views) {
    for (let i = 0; i < v.length; i += 97) assert.is(v[i], Math.floor((pos + i) / 1150) & 0xff, `offset ${pos + i}`);
    pos += v.length;
  }
  assert.is(pos, off);
  // A gap: data after it is buffered in the block, the hole is filled out of order.
  const b = new Assembler();
  b.insert(0, new Uint8Array([0, 1]));
  b.insert(2, new Uint8Array([2, 3]));
  b.insert(6, new Uint8Array([6, 7]));
  b.insert(8, new Uint8Array([8]));
  assert.is(b.gapCount, 1);
  assert.is(b.segmentCount, 3);
  b.insert(4, new Uint8Array([4, 5]));
  assert.is(b.gapCount, 0);
  assert.equal(b.readAll(), new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8]));
});

test('gap accounting and limit; tiny adjacent frames are defragmented', () => {
  const a = new Assembler({ maxGaps: 10 });
  a.insert(2, new Uint8Array([2]));
  assert.is(a.gapCount, 1); // [0,2) missing
  a.insert(5, new Uint8Array([5]));
  assert.is(a.gapCount, 2);
  a.insert(3, new Uint8Array([3, 4])); // bridges [2] and [5]
  assert.is(a.gapCount, 1);
  a.insert(0, new Uint8Array([0, 1]));
  assert.is(a.gapCount, 0);
  for (let k = 0; k < 10; k++) a.insert(10 + 2 * k, new Uint8Array([1]));
  assert.is(a.gapCount, 10);
  assert.is(codeOf(() => a.insert(40, new Uint8Array([1]))), 0xa);
  // one hole, then 100 000 one-byte frames in reverse order: memory stays bounded by merging
  const b = new Assembler();
  for (let off = 100_000; off >= 1; off--) b.insert(off, new Uint8Array([off & 0xff]));
  assert.is(b.gapCount, 1);
  assert.ok(b.segmentCount < 1000, `segments ${b.segmentCount}`);
  b.insert(0, new Uint8Array([0]));
  const all = b.readAll()!;
  assert.is(all.length, 100_001);
  assert.ok(all.every((x, i) => x === (i & 0xff)));
});

test('CRYPTO streams: per-level reassembly, buffer limit, retransmission of lost handshake bytes', () => {
  const cs = new CryptoStreams(4096);
  const hs = cs.get(CryptoLevel.handshake);
  hs.onCryptoFrame(3, new Uint8Array([4, 5]));
  assert.is(hs.read(), null);
  assert.is(cs.get(CryptoLevel.initial).read(), null);
  hs.onCryptoFrame(0, new Uint8Array([1, 2, 3]));
  assert.equal(hs.read(), new Uint8Array([1, 2, 3, 4, 5]));
  assert.is(codeOf(() => hs.onCryptoFrame(5 + 4096, new Uint8Array(1))), 0xd);
  const ini = cs.get(CryptoLevel.initial);
  ini.write(new Uint8Array(3000).fill(7));
  const out = newStreamChunkOut();
  assert.ok(ini.nextChunk(1000, out));
  assert.ok(ini.nextChunk(5000, out));
  assert.equal([out.offset, out.length], [1000, 2000]);
  assert.not.ok(ini.nextChunk(5000, out));
  ini.onLost(0, 1000);
  ini.onAcked(1000, 2000);
  assert.ok(ini.hasPending());
  assert.ok(ini.nextChunk(5000, out));
  assert.equal([out.offset, out.length, out.retransmit, out.fin], [0, 1000, true, false]);
  const dst = new Uint8Array(1000);
  ini.copy(0, 1000, dst, 0);
  assert.ok(dst.every((b) => b === 7));
  ini.onAcked(0, 1000);
  assert.is(ini.send.buffered, 0);
});

test.run();
