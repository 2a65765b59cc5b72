/**
 * QUIC header-protection masks (RFC 9001 §5.4.3, §5.4.4) of every provider against an independent
 * reference: OpenSSL through node:crypto (AES-ECB, and ChaCha20 with the sample as its 16-byte IV),
 * over many keys and samples, at offsets, with the counter edge values, and with one context
 * reused for many samples (the JS implementations keep state between calls).
 */
import { createCipheriv } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import type { AeadAlg } from '../src/crypto/provider.js';
import { hex, prng } from './crypto-util.js';

function reference(alg: AeadAlg, key: Uint8Array, sample: Uint8Array): string {
  if (alg === 'chacha20-poly1305') return hex(createCipheriv('chacha20', key, sample).update(new Uint8Array(5)));
  const ecb = createCipheriv(alg === 'aes-128-gcm' ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
  ecb.setAutoPadding(false);
  return hex(ecb.update(sample).subarray(0, 5));
}

const ALGS: AeadAlg[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];

for (const p of providers) {
  for (const alg of ALGS) {
    test(`${p.name}: ${alg} header-protection mask equals OpenSSL's (random keys and samples, one reused context per key)`, () => {
      const rnd = prng(alg.length * 7919 + p.name.length);
      for (let k = 0; k < 8; k++) {
        const key = rnd.bytes(alg === 'aes-128-gcm' ? 16 : 32);
        const hp = p.headerProtection(alg, key);
        for (let i = 0; i < 200; i++) {
          const off = rnd.int(40);
          const buf = rnd.bytes(off + 16 + rnd.int(10));
          const sample = buf.subarray(off, off + 16);
          // ChaCha20 counter = sample[0..4] LE: cover 0, 0xffffffff and values with the top bit set.
          if (i === 0) sample.fill(0, 0, 4);
          if (i === 1) sample.fill(0xff, 0, 4);
          if (i === 2) sample.fill(0xff);
          if (i === 3) sample[3] = 0x80;
          assert.is(hex(hp.mask(buf, off)), reference(alg, key, sample), `${alg} key ${hex(key)} sample ${hex(sample)}`);
        }
      }
    });
  }

  test(`${p.name}: header-protection key is copied (changing the caller's key later changes nothing)`, () => {
    for (const alg of ALGS) {
      const key = new Uint8Array(alg === 'aes-128-gcm' ? 16 : 32).fill(7);
      const hp = p.headerProtection(alg, key);
      const sample = new Uint8Array(16).fill(3);
      const before = hex(hp.mask(sample));
      key.fill(9);
      assert.is(hex(hp.mask(sample)), before, alg);
      assert.is(before, reference(alg, new Uint8Array(key.length).fill(7), sample), alg);
    }
  });
}

test.run();
