// Fuzz: random and mutated QPACK inputs (encoder stream, decoder stream, field sections, Huffman)
// → only ProtocolViolation('qpack' | 'h3') escapes, and a failed input leaves usable state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { QpackDecoder, type FieldLine } from '../src/qpack/decoder.js';
import { QpackEncoder } from '../src/qpack/encoder.js';
import { huffmanDecode } from '../src/qpack/huffman.js';
import { Rng } from './support.js';

const BUDGET_MS = Number(process.env.FUZZ_MS ?? 700);

function expectViolation(e: unknown, layers: string[]): void {
  if (!(e instanceof ProtocolViolation) || !layers.includes(e.layer)) {
    throw new Error(`unexpected exception: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

function corpus(rng: Rng): { encoderStream: Uint8Array[]; sections: Uint8Array[]; decoderStream: Uint8Array[] } {
  const enc = new QpackEncoder({ insertThreshold: 1, maxTableCapacity: 512 });
  const dec = new QpackDecoder({ maxTableCapacity: 512 });
  enc.applyPeerSettings(512, 8);
  const encoderStream: Uint8Array[] = [];
  const sections: Uint8Array[] = [];
  const decoderStream: Uint8Array[] = [];
  for (let i = 0; i < 30; i++) {
    const h: FieldLine[] = [];
    for (let j = 0; j < 1 + rng.int(6); j++) h.push([rng.pick([':path', 'x-a', 'x-b', 'cookie', 'accept']), rng.pick(['/', 'v1', 'v2', 'long value '.repeat(3)])]);
    sections.push(enc.encode(i * 4, h));
    const es = enc.takeEncoderStream();
    encoderStream.push(es);
    dec.feedEncoderStream(es);
    dec.decodeSection(i * 4, sections[i]!);
    const ds = dec.takeDecoderStream();
    decoderStream.push(ds);
    enc.feedDecoderStream(ds);
  }
  return { encoderStream, sections, decoderStream };
}

function pickInput(rng: Rng, list: Uint8Array[]): Uint8Array {
  const r = rng.int(3);
  if (r === 0) return rng.bytes(rng.int(40));
  const base = rng.pick(list);
  return r === 1 ? rng.mutate(base) : base;
}

test('encoder stream and field sections into the decoder', () => {
  const rng = new Rng(0x9204);
  const c = corpus(rng);
  const end = Date.now() + BUDGET_MS;
  let n = 0;
  let errors = 0;
  while ((Date.now() < end || n < 2000) && n < 200000) {
    const dec = new QpackDecoder({ maxTableCapacity: rng.pick([0, 64, 512, 4096]), maxBlockedStreams: rng.int(3), maxFieldSectionSize: rng.pick([100, 4096]) });
    for (let k = 0; k < 8; k++, n++) {
      try {
        if (rng.int(2) === 0) {
          const input = pickInput(rng, c.encoderStream);
          const cut = rng.int(input.length + 1);
          dec.feedEncoderStream(input.subarray(0, cut));
          dec.feedEncoderStream(input.subarray(cut));
        } else {
          dec.decodeSection(rng.int(100) * 4, pickInput(rng, c.sections));
        }
        dec.takeDecoderStream();
      } catch (e) {
        expectViolation(e, ['qpack', 'h3']);
        errors++;
        break; // a connection error ends the connection: fresh decoder
      }
    }
  }
  assert.ok(n > 1000, `iterations ${n}`);
  assert.ok(errors > 100, `errors ${errors}`);
});

test('decoder stream into the encoder', () => {
  const rng = new Rng(0x202);
  const c = corpus(rng);
  const end = Date.now() + BUDGET_MS / 2;
  let n = 0;
  while ((Date.now() < end || n < 2000) && n < 200000) {
    const enc = new QpackEncoder({ insertThreshold: 1 });
    enc.applyPeerSettings(rng.pick([0, 256, 4096]), rng.int(4));
    for (let k = 0; k < 5; k++, n++) {
      try {
        enc.encode(k * 4, [['x-k', `v${rng.int(5)}`], [':path', '/']]);
        enc.feedDecoderStream(pickInput(rng, c.decoderStream));
      } catch (e) {
        expectViolation(e, ['qpack']);
        break;
      }
    }
  }
  assert.ok(n > 1000);
});

test('Huffman decoder on random bytes', () => {
  const rng = new Rng(7541);
  for (let i = 0; i < 20000; i++) {
    try {
      huffmanDecode(rng.bytes(rng.int(30)));
    } catch (e) {
      expectViolation(e, ['qpack']);
    }
  }
});

test.run();
