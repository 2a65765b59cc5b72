/**
 * Fuzzing the transport parameter decoder (RFC 9000 §18): random and mutated encodings. Only
 * ProtocolViolation(TRANSPORT_PARAMETER_ERROR) may escape; accepted input re-encodes to the same values.
 * SEED=n, FUZZ_SCALE=k.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { Rng } from '../../../test/support/rng.js';
import { decodeTransportParameters, encodeTransportParameters, type TransportParameters } from '../src/transport-params.js';
import { TransportError } from '../src/errors.js';
import { QUIC_V1, QUIC_V2 } from '../src/version.js';

const SEED = Number(process.env.SEED ?? 0x5eed);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);

/** Same mutator as fuzz-frames.test.ts. */
function mutate(rng: Rng, src: Uint8Array): Uint8Array {
  let b = src.slice();
  const n = rng.range(1, 4);
  for (let k = 0; k < n; k++) {
    switch (rng.int(7)) {
      case 0: // bit flip
        if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 1: // truncate
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 2: // random byte
        if (b.length) b[rng.int(b.length)] = rng.int(256);
        break;
      case 3: // extreme varint prefix (length fields)
        if (b.length) b[rng.int(b.length)] = rng.pick([0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff, 0x00]);
        break;
      case 4: { // insert random bytes
        const at = rng.int(b.length + 1);
        const ins = rng.bytes(rng.range(1, 8));
        const nb = new Uint8Array(b.length + ins.length);
        nb.set(b.subarray(0, at));
        nb.set(ins, at);
        nb.set(b.subarray(at), at + ins.length);
        b = nb;
        break;
      }
      case 5: // duplicate a slice
        if (b.length > 2) {
          const s = rng.int(b.length - 1);
          const e = rng.range(s + 1, b.length);
          const nb = new Uint8Array(b.length + e - s);
          nb.set(b);
          nb.set(b.subarray(s, e), b.length);
          b = nb;
        }
        break;
      default: // all-ones 8-byte varint somewhere
        if (b.length > 8) b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], rng.int(b.length - 8));
    }
  }
  return b;
}


function corpus(rng: Rng): { bytes: Uint8Array; sender: 'client' | 'server' }[] {
  const server: Partial<TransportParameters> = {
    originalDestinationConnectionId: rng.bytes(8),
    maxIdleTimeout: 30000,
    statelessResetToken: rng.bytes(16),
    maxUdpPayloadSize: 1500,
    initialMaxData: 1 << 24,
    initialMaxStreamDataBidiLocal: 1 << 20,
    initialMaxStreamDataBidiRemote: 1 << 20,
    initialMaxStreamDataUni: 1 << 20,
    initialMaxStreamsBidi: 100,
    initialMaxStreamsUni: 3,
    ackDelayExponent: 5,
    maxAckDelay: 30,
    disableActiveMigration: true,
    preferredAddress: {
      ipv4: rng.bytes(4),
      ipv4Port: 443,
      ipv6: rng.bytes(16),
      ipv6Port: 443,
      connectionId: rng.bytes(8),
      statelessResetToken: rng.bytes(16),
    },
    activeConnectionIdLimit: 4,
    initialSourceConnectionId: rng.bytes(8),
    retrySourceConnectionId: rng.bytes(8),
    maxDatagramFrameSize: 1200,
    versionInformation: { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1, QUIC_V2] },
    greaseQuicBit: true,
  };
  const client: Partial<TransportParameters> = {
    initialSourceConnectionId: rng.bytes(4),
    initialMaxData: 2 ** 40,
    initialMaxStreamsBidi: 2 ** 60,
    versionInformation: { chosenVersion: QUIC_V2, availableVersions: [QUIC_V2, QUIC_V1] },
  };
  return [
    { bytes: encodeTransportParameters(server, 'server', { greaseN: 3 }), sender: 'server' },
    { bytes: encodeTransportParameters(client, 'client'), sender: 'client' },
  ];
}

test('transport parameters: random and mutated input', () => {
  const rng = new Rng(SEED);
  const base = corpus(rng);
  let ok = 0;
  let errors = 0;
  for (let i = 0; i < 20000 * SCALE; i++) {
    const src = rng.pick(base);
    const sender = rng.chance(0.8) ? src.sender : src.sender === 'client' ? 'server' : 'client';
    const input = rng.chance(0.2) ? rng.bytes(rng.int(60)) : mutate(rng, src.bytes);
    let p: TransportParameters;
    try {
      p = decodeTransportParameters(input, sender);
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) {
        throw new Error(`seed ${SEED} iteration ${i}: ${(e as Error)?.stack ?? e}\ninput ${Buffer.from(input).toString('hex')}`);
      }
      assert.is(e.code, TransportError.TRANSPORT_PARAMETER_ERROR);
      errors++;
      continue;
    }
    ok++;
    // Whatever we accept we can send back, and it decodes to the same values.
    assert.equal(decodeTransportParameters(encodeTransportParameters(p, sender), sender), p);
  }
  assert.ok(ok > 100 && errors > 100, `ok ${ok} errors ${errors}`);
});

test.run();
