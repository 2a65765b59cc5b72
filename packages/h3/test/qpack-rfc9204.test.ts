// RFC 9204 Appendix B: the examples, byte for byte, through both our encoder and our decoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QpackDecoder } from '../src/qpack/decoder.js';
import { QpackEncoder } from '../src/qpack/encoder.js';
import { hex, unhex } from './support.js';

function setup() {
  const encoder = new QpackEncoder({ maxTableCapacity: 220, huffman: false, insertThreshold: 1 });
  const decoder = new QpackDecoder({ maxTableCapacity: 220, maxBlockedStreams: 4 });
  encoder.applyPeerSettings(220, 4);
  return { encoder, decoder };
}

function decodeDone(d: QpackDecoder, stream: number, bytes: Uint8Array) {
  const r = d.decodeSection(stream, bytes);
  if (r.status !== 'done') throw new Error('blocked');
  return r.headers;
}

test('B.1 literal field line with static name reference', () => {
  const encoder = new QpackEncoder({ huffman: false });
  const decoder = new QpackDecoder({ maxTableCapacity: 0 });
  encoder.applyPeerSettings(0, 0);
  const section = encoder.encode(0, [[':path', '/index.html']]);
  assert.is(hex(section), '0000510b2f696e6465782e68746d6c');
  assert.is(hex(encoder.takeEncoderStream()), '');
  assert.equal(decodeDone(decoder, 0, section), [[':path', '/index.html']]);
  assert.is(hex(decoder.takeDecoderStream()), '');
});

test('B.2-B.5 dynamic table: encoder and decoder streams, sections, eviction', () => {
  const { encoder, decoder } = setup();
  // B.2: Set Capacity, two inserts with static name reference, then a blocking section.
  const s4 = encoder.encode(4, [[':authority', 'www.example.com'], [':path', '/sample/path']]);
  const encStream = encoder.takeEncoderStream();
  assert.is(hex(encStream), '3fbd01' + 'c00f7777772e6578616d706c652e636f6d' + 'c10c2f73616d706c652f70617468');
  assert.is(hex(s4), '0381' + '10' + '11');
  assert.is(encoder.blockedStreamCount, 1);
  assert.is(encoder.referenceCount(0), 1);
  // Decoder receives the section first: blocked, then unblocked by the encoder stream.
  assert.equal(decoder.decodeSection(4, s4), { status: 'blocked', requiredInsertCount: 2 });
  assert.equal(decoder.feedEncoderStream(encStream), [4]);
  assert.is(decoder.tableSize, 106);
  assert.equal(decodeDone(decoder, 4, s4), [[':authority', 'www.example.com'], [':path', '/sample/path']]);
  const ack = decoder.takeDecoderStream();
  assert.is(hex(ack), '84');
  encoder.feedDecoderStream(ack);
  assert.is(encoder.knownReceivedCount, 2);
  assert.is(encoder.referenceCount(0), 0);
  assert.is(encoder.blockedStreamCount, 0);

  // B.3: speculative insert with literal name; decoder answers Insert Count Increment 1.
  assert.is(encoder.insert('custom-key', 'custom-value'), 2);
  const b3 = encoder.takeEncoderStream();
  assert.is(hex(b3), '4a637573746f6d2d6b65790c637573746f6d2d76616c7565');
  assert.equal(decoder.feedEncoderStream(b3), []);
  assert.is(decoder.tableSize, 160);
  const inc = decoder.takeDecoderStream();
  assert.is(hex(inc), '01');
  encoder.feedDecoderStream(inc);
  assert.is(encoder.knownReceivedCount, 3);

  // B.4: Duplicate, then a section referencing the duplicate (blocking) and the acknowledged entry.
  assert.is(encoder.duplicate(0), 3);
  const b4 = encoder.takeEncoderStream();
  assert.is(hex(b4), '02');
  const s8 = encoder.encode(8, [[':authority', 'www.example.com'], [':path', '/'], ['custom-key', 'custom-value']]);
  assert.is(hex(s8), '0500' + '80' + 'c1' + '81');
  assert.is(hex(encoder.takeEncoderStream()), '');
  // The encoder stream packet is delayed: the section blocks, and the decoder cancels the stream.
  assert.equal(decoder.decodeSection(8, s8), { status: 'blocked', requiredInsertCount: 4 });
  assert.is(decoder.blockedStreamCount, 1);
  decoder.cancelStream(8);
  assert.is(decoder.blockedStreamCount, 0);
  const cancel = decoder.takeDecoderStream();
  assert.is(hex(cancel), '48');
  encoder.feedDecoderStream(cancel);
  assert.is(encoder.referenceCount(2), 0);
  assert.is(encoder.referenceCount(3), 0);
  assert.equal(decoder.feedEncoderStream(b4), []);
  assert.is(decoder.tableSize, 217);
  // The decoder now acknowledges the duplicate with an increment (not shown in the RFC).
  encoder.feedDecoderStream(decoder.takeDecoderStream());
  assert.is(encoder.knownReceivedCount, 4);

  // B.5: insert with dynamic name reference (relative 1), evicting entry 0.
  assert.is(encoder.insert('custom-key', 'custom-value2'), 4);
  const b5 = encoder.takeEncoderStream();
  assert.is(hex(b5), '810d637573746f6d2d76616c756532');
  assert.is(encoder.tableSize, 215);
  assert.is(encoder.oldestIndex, 1);
  decoder.feedEncoderStream(b5);
  assert.is(decoder.tableSize, 215);
  assert.is(decoder.entry(0), undefined);
  assert.equal(decoder.entry(4), { name: 'custom-key', value: 'custom-value2', size: 55, nameSize: 10 });
});

test('B.2 decoded from the RFC bytes split at every position', () => {
  const enc = unhex('3fbd01c00f7777772e6578616d706c652e636f6dc10c2f73616d706c652f70617468');
  for (let cut = 0; cut <= enc.length; cut++) {
    const d = new QpackDecoder({ maxTableCapacity: 220 });
    d.feedEncoderStream(enc.subarray(0, cut));
    d.feedEncoderStream(enc.subarray(cut));
    assert.is(d.insertCount, 2);
    assert.equal(decodeDone(d, 4, unhex('03811011')), [[':authority', 'www.example.com'], [':path', '/sample/path']]);
  }
});

test.run();
