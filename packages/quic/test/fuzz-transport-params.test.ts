/**
 * Fuzzing the transport parameter decoder (RFC 9000 §18): random and mutated encodings. Only
 * ProtocolViolation(TRANSPORT_PARAMETER_ERROR) may escape; accepted input re-encodes to the same values.
 * SEED=n, FUZZ_SCALE=k.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { Rng } from '../../../test/support/rng.js';
import { mutate } from '../../../test/fuzz/mutate.js';
import { validTransportParams } from '../../../test/fuzz/targets-quic.js';
import { decodeTransportParameters, encodeTransportParameters, type TransportParameters } from '../src/transport-params.js';
import { TransportError } from '../src/errors.js';

const SEED = Number(process.env.SEED ?? 0x5eed);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);

/** Same mutator as fuzz-frames.test.ts. */



test('transport parameters: random and mutated input', () => {
  const rng = new Rng(SEED);
  const base = validTransportParams(rng);
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
