/**
 * Seeded, bounded fuzzing of everything in the crypto providers that takes peer-controlled or
 * configuration bytes: verify/verifySignature (never throw), key-exchange completion (null or a
 * secret, never throw), AEAD open (null, never throw), SPKI / ECDSA-signature parsing (null), and
 * key loading (a working key or ConfigError, nothing else). FUZZ_ITERATIONS scales the run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { ConfigError } from '../src/errors.js';
import { ecdsaDerToRaw, parseSpki } from '../src/crypto/keys.js';
import type { KeyType, NamedGroup, SignatureAlgorithm, SignatureScheme } from '../src/crypto/provider.js';
import { prng } from './crypto-util.js';

const N = Number(process.env.FUZZ_ITERATIONS) || 300;
const rnd = prng(20261123);

function mutate(src: Uint8Array): Uint8Array {
  const b = src.slice();
  switch (rnd.int(6)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + rnd.int(4); i < n && b.length; i++) b[rnd.int(b.length)]! ^= 1 << rnd.int(8);
      return b;
    case 1: // truncate
      return b.subarray(0, rnd.int(b.length + 1));
    case 2: {
      // insert bytes
      const at = rnd.int(b.length + 1);
      return new Uint8Array([...b.subarray(0, at), ...rnd.bytes(1 + rnd.int(4)), ...b.subarray(at)]);
    }
    case 3: // overwrite a byte with a DER-significant value
      if (b.length) b[rnd.int(b.length)] = [0x00, 0x30, 0x02, 0x03, 0x04, 0x06, 0x80, 0x81, 0x82, 0xff][rnd.int(10)]!;
      return b;
    case 4: // random bytes of the same length
      return rnd.bytes(b.length);
    default: // extend
      return new Uint8Array([...b, ...rnd.bytes(1 + rnd.int(8))]);
  }
}

const SCHEMES: SignatureScheme[] = ['ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ed25519', 'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512', 'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512'];
const ALGS: SignatureAlgorithm[] = [
  { kind: 'ecdsa', hash: 'sha256' },
  { kind: 'ecdsa', hash: 'sha512' },
  { kind: 'ed25519' },
  { kind: 'rsa-pkcs1', hash: 'sha256' },
  { kind: 'rsa-pss', hash: 'sha384' },
  { kind: 'rsa-pss', hash: 'sha256', saltLength: 0 },
];
const TYPES: KeyType[] = ['ec-p256', 'ec-p384', 'ed25519', 'rsa'];
const keyDers = TYPES.map((t) => providers[0]!.generatePrivateKey(t));
const msg = new TextEncoder().encode('fuzz message');

test('verify / verifySignature on mutated keys and signatures: boolean, never throws', () => {
  const keys = keyDers.map((d) => providers[0]!.loadPrivateKey(d));
  for (let i = 0; i < N; i++) {
    const k = keys[i % keys.length]!;
    const scheme = k.schemes[0]!;
    const sig = k.sign(scheme, msg);
    const spki = rnd.int(3) === 0 ? k.spki : mutate(k.spki);
    const s = rnd.int(3) === 0 ? sig : mutate(sig);
    for (const p of providers) {
      const r1 = p.verify(SCHEMES[rnd.int(SCHEMES.length)]!, spki, msg, s);
      const r2 = p.verifySignature(ALGS[rnd.int(ALGS.length)]!, spki, msg, s);
      assert.type(r1, 'boolean');
      assert.type(r2, 'boolean');
      if (spki === k.spki && s === sig) assert.ok(p.verify(scheme, spki, msg, s));
    }
    assert.ok(parseSpki(spki) === null || typeof parseSpki(spki) === 'object');
    assert.ok(ecdsaDerToRaw(s, 32) === null || ecdsaDerToRaw(s, 32)!.length === 64);
  }
});

test('loadPrivateKey on mutated DER: a working key or ConfigError, nothing else', () => {
  for (let i = 0; i < N; i++) {
    const der = mutate(keyDers[i % keyDers.length]!);
    for (const p of providers) {
      try {
        const k = p.loadPrivateKey(der);
        // Whatever loaded must sign verifiably (the load-time pairwise check guarantees it).
        const sig = k.sign(k.schemes[0]!, msg);
        assert.ok(p.verify(k.schemes[0]!, k.spki, msg, sig), `${p.name}: loaded key signs`);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw new Error(`${p.name}: loadPrivateKey threw ${String(e)} for ${Buffer.from(der).toString('hex')}`);
      }
    }
  }
});

test('key exchange completion on mutated shares: null or a secret, never throws', () => {
  const groups: NamedGroup[] = ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'];
  for (let i = 0; i < N; i++) {
    const g = groups[i % groups.length]!;
    for (const p of providers) {
      const kx = p.keyExchange(g);
      const client = kx.generate();
      const server = kx.respond(client.share)!;
      const r1 = client.complete(mutate(server.share));
      assert.ok(r1 === null || r1 instanceof Uint8Array);
      const r2 = kx.respond(mutate(client.share));
      assert.ok(r2 === null || (r2.share instanceof Uint8Array && r2.secret instanceof Uint8Array));
    }
  }
});

test('AEAD open on mutated input: null, never throws; header protection on any sample', () => {
  for (const p of providers) {
    for (const alg of ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'] as const) {
      const key = rnd.bytes(alg === 'aes-128-gcm' ? 16 : 32);
      const a = p.aead(alg, key);
      const hp = p.headerProtection(alg, key);
      for (let i = 0; i < N; i++) {
        const nonce = rnd.bytes(12);
        const aad = rnd.bytes(rnd.int(40));
        const ct = a.seal(nonce, aad, rnd.bytes(rnd.int(100)));
        const bad = mutate(ct);
        const r = a.open(rnd.int(4) === 0 ? mutate(nonce) : nonce, aad, bad);
        if (r !== null) assert.is(bad.length, ct.length); // only an unmodified same-length input can open
        assert.is(hp.mask(rnd.bytes(16)).length, 5);
      }
    }
  }
});

test.run();
