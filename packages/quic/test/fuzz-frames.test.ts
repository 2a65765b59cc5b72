/**
 * Fuzzing the frame decoder (RFC 9000 §19): random bytes and mutated valid encodings. Only
 * ProtocolViolation may escape; successful decodes must make progress, stay in bounds and re-encode.
 * SEED=n picks the seed, FUZZ_SCALE=k multiplies the iteration counts (default ~1 s).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { Rng } from '../../../test/support/rng.js';
import { mutate } from '../../../test/fuzz/mutate.js';
import { validFrameEncodings } from '../../../test/fuzz/targets-quic.js';
import { Frame, FrameType, decodeFrame, encodeFrame, frameSize } from '../src/frames.js';
import { PacketType } from '../src/header.js';
import { TransportError } from '../src/errors.js';

const SEED = Number(process.env.SEED ?? 0x5eed);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const PACKET_TYPES = [PacketType.Initial, PacketType.ZeroRtt, PacketType.Handshake, PacketType.OneRtt];



const HAS_DATA = new Set<number>([0x06, 0x07, 0x18, 0x1a, 0x1b, 0x1c, 0x1d, 0x30, 0x31]);

function decodeAll(buf: Uint8Array, packetType: PacketType, f: Frame, scratch: Uint8Array): number {
  let frames = 0;
  for (let o = 0; o < buf.length; ) {
    const next = decodeFrame(buf, o, buf.length, packetType, f);
    assert.ok(next > o && next <= buf.length, `progress ${o} → ${next}`);
    // Re-encoding the decoded frame is never longer than the input and decodes to the same type.
    const size = frameSize(f);
    if (f.type !== FrameType.PADDING) assert.ok(size <= next - o, `re-encoded size ${size} > ${next - o}`);
    const end = encodeFrame(scratch, 0, f);
    assert.is(end, size);
    // Start from a copy of f so that fields the type does not use compare equal.
    const g = Object.assign(new Frame(), f, { ackRanges: [] as number[] });
    assert.is(decodeFrame(scratch, 0, end, packetType, g), end);
    // STREAM with an explicit zero offset re-encodes without the OFF bit.
    const isStream = f.type >= 0x08 && f.type <= 0x0f;
    assert.is(g.type, isStream && f.offset === 0 ? f.type & ~0x04 : f.type);
    for (const k of ['streamId', 'offset', 'dataLength', 'fin', 'errorCode', 'finalSize', 'maximum', 'sequence', 'retirePriorTo', 'frameType', 'largestAcked', 'ackDelay', 'ackRangeCount', 'ect0', 'ect1', 'ce'] as const) {
      if (f.type !== FrameType.PADDING) assert.is(g[k], f[k], k);
    }
    if (f.type === FrameType.ACK || f.type === FrameType.ACK_ECN) {
      assert.equal(g.ackRanges.slice(0, 2 * g.ackRangeCount), f.ackRanges.slice(0, 2 * f.ackRangeCount));
    }
    if (HAS_DATA.has(f.type) || isStream) assert.equal(g.data(), f.data());
    o = next;
    frames++;
  }
  return frames;
}

function run(name: string, iterations: number, gen: (rng: Rng) => Uint8Array): void {
  test(name, () => {
    const rng = new Rng(SEED);
    const f = new Frame();
    const scratch = new Uint8Array(1 << 16);
    let ok = 0;
    let pv = 0;
    for (let i = 0; i < iterations * SCALE; i++) {
      const input = gen(rng);
      const pt = rng.pick(PACKET_TYPES);
      try {
        decodeAll(input, pt, f, scratch);
        ok++;
      } catch (e) {
        if (!(e instanceof ProtocolViolation)) {
          throw new Error(`seed ${SEED} iteration ${i}: ${(e as Error)?.stack ?? e} input ${Buffer.from(input).toString('hex')}`);
        }
        assert.ok(e.code === TransportError.FRAME_ENCODING_ERROR || e.code === TransportError.PROTOCOL_VIOLATION);
        pv++;
      }
    }
    // Both outcomes must occur, or the fuzzer is not exercising anything.
    assert.ok(ok > 0 && pv > 0, `ok ${ok} errors ${pv}`);
  });
}

const base = validFrameEncodings(new Rng(SEED ^ 1).bytes(64));
run('random bytes', 20000, (rng) => rng.bytes(rng.int(40)));
run('random bytes with a known frame type first', 20000, (rng) => {
  const b = rng.bytes(rng.range(1, 40));
  b[0] = rng.pick([0x02, 0x03, 0x04, 0x06, 0x07, 0x08, 0x0b, 0x0e, 0x0f, 0x12, 0x18, 0x1c, 0x1d, 0x31]);
  return b;
});
run('mutated valid frames', 30000, (rng) => mutate(rng, rng.pick(base)));
run('mutated sequences of valid frames', 5000, (rng) => {
  const parts = Array.from({ length: rng.range(2, 6) }, () => rng.pick(base));
  const b = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return rng.chance(0.2) ? b : mutate(rng, b);
});

test.run();
