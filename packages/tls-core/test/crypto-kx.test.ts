import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { ConfigError } from '../src/errors.js';
import type { NamedGroup } from '../src/crypto/provider.js';
import { hex, prng, unhex } from './crypto-util.js';

const GROUPS: NamedGroup[] = ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'];
const SIZES: Record<NamedGroup, { client: number; server: number; secret: number }> = {
  x25519: { client: 32, server: 32, secret: 32 },
  secp256r1: { client: 65, server: 65, secret: 32 },
  secp384r1: { client: 97, server: 97, secret: 48 },
  x25519mlkem768: { client: 1184 + 32, server: 1088 + 32, secret: 64 },
};

test('every provider supports every group', () => {
  for (const p of providers) {
    assert.equal([...p.groups].sort(), [...GROUPS].sort());
    assert.throws(() => p.keyExchange('ffdhe2048' as NamedGroup), (e: unknown) => e instanceof ConfigError);
  }
});

test('key exchange: every group, every client/server provider pair', () => {
  for (const g of GROUPS) {
    for (const cp of providers) {
      for (const sp of providers) {
        const client = cp.keyExchange(g).generate();
        assert.is(client.group, g);
        assert.is(client.share.length, SIZES[g].client);
        const server = sp.keyExchange(g).respond(client.share);
        assert.ok(server, `${g} ${cp.name}->${sp.name} respond`);
        assert.is(server!.share.length, SIZES[g].server);
        assert.is(server!.secret.length, SIZES[g].secret);
        const secret = client.complete(server!.share);
        assert.ok(secret, `${g} ${cp.name}->${sp.name} complete`);
        assert.is(hex(secret!), hex(server!.secret));
        // Classic groups: generate() on both sides and complete() in both directions.
        if (g !== 'x25519mlkem768') {
          const s2 = sp.keyExchange(g).generate();
          assert.is(hex(s2.complete(client.share)!), hex(client.complete(s2.share)!));
        }
      }
    }
  }
});

test('RFC 8448 §3: deterministic x25519 key pairs and shared secret', () => {
  const clientPriv = unhex('49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005');
  const serverPriv = unhex('b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e');
  for (const p of providers) {
    const c = p.keyExchange('x25519').generate(clientPriv);
    assert.is(hex(c.share), '99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c');
    const s = p.keyExchange('x25519').generate(serverPriv);
    assert.is(hex(s.share), 'c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f');
    // The (EC)DHE input to the handshake secret in RFC 8448 §3 ("extract secret handshake", IKM).
    const ikm = '8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d';
    assert.is(hex(c.complete(s.share)!), ikm);
    assert.is(hex(s.complete(c.share)!), ikm);
  }
});

test('deterministic generate(privateKey) gives the same share in every provider', () => {
  const rnd = prng(5);
  const keys: Partial<Record<NamedGroup, Uint8Array>> = {
    x25519: rnd.bytes(32),
    secp256r1: unhex('c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721'),
    secp384r1: unhex('6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5'),
    x25519mlkem768: rnd.bytes(96),
  };
  for (const g of GROUPS) {
    const shares = providers.map((p) => hex(p.keyExchange(g).generate(keys[g]).share));
    for (const s of shares) assert.is(s, shares[0], g);
    // Deterministic: same key, same share.
    assert.is(hex(providers[0]!.keyExchange(g).generate(keys[g]).share), shares[0]);
  }
  // The X25519 half of the hybrid share is the X25519 public key of the last 32 bytes.
  for (const p of providers) {
    const share = p.keyExchange('x25519mlkem768').generate(keys.x25519mlkem768).share;
    assert.is(hex(share.subarray(1184)), hex(p.keyExchange('x25519').generate(keys.x25519mlkem768!.subarray(64)).share));
  }
});

test('hybrid secret = ML-KEM secret || X25519 secret', () => {
  const rnd = prng(77);
  for (const p of providers) {
    const priv = rnd.bytes(96);
    const c = p.keyExchange('x25519mlkem768').generate(priv);
    const r = p.keyExchange('x25519mlkem768').respond(c.share)!;
    // The last 32 bytes of the secret are the X25519 agreement between the two X25519 halves.
    const xClient = p.keyExchange('x25519').generate(priv.subarray(64));
    assert.is(hex(r.secret.subarray(32)), hex(xClient.complete(r.share.subarray(1088))!));
    // A different ciphertext (same length) decapsulates to a different (implicit-rejection) ML-KEM secret.
    const bad = r.share.slice();
    bad[10]! ^= 1;
    const s2 = c.complete(bad);
    assert.ok(s2);
    assert.is.not(hex(s2!.subarray(0, 32)), hex(r.secret.subarray(0, 32)));
    assert.is(hex(s2!.subarray(32)), hex(r.secret.subarray(32)));
  }
});

function mutate(b: Uint8Array, f: (c: Uint8Array) => void): Uint8Array {
  const c = b.slice();
  f(c);
  return c;
}

test('invalid peer shares -> null, never throws', () => {
  const rnd = prng(3);
  for (const p of providers) {
    // x25519: wrong lengths, all-zero point and other low-order points give an all-zero secret (RFC 8446 §7.4.2).
    const x = p.keyExchange('x25519').generate();
    for (const bad of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(32), unhex('0100000000000000000000000000000000000000000000000000000000000000'), unhex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), unhex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')]) {
      assert.is(x.complete(bad), null, `x25519 ${hex(bad)}`);
      assert.is(p.keyExchange('x25519').respond(bad), null);
    }
    for (const g of ['secp256r1', 'secp384r1'] as const) {
      const kx = p.keyExchange(g);
      const ours = kx.generate();
      const good = kx.generate().share;
      const n = good.length;
      const bads = [
        new Uint8Array(0),
        new Uint8Array([0]), // the point at infinity
        good.subarray(0, n - 1),
        new Uint8Array([...good, 0]),
        mutate(good, (c) => (c[0] = 2)), // compressed prefix with uncompressed length
        mutate(good, (c) => (c[0] = 3)),
        mutate(good, (c) => (c[n - 1]! ^= 1)), // not on the curve
        mutate(good, (c) => (c[5]! ^= 0x40)),
        mutate(good, (c) => c.fill(0, 1)), // (0, 0)
        mutate(good, (c) => c.fill(0xff, 1)), // coordinates >= p
        good.subarray(0, 1 + (n - 1) / 2), // compressed form (not allowed in TLS 1.3)
      ];
      for (const bad of bads) {
        assert.is(ours.complete(bad), null, `${p.name} ${g} ${hex(bad)}`);
        assert.is(kx.respond(bad), null);
      }
      for (let i = 0; i < 20; i++) assert.is(ours.complete(rnd.bytes(n)), null);
      assert.ok(ours.complete(good));
    }
    const h = p.keyExchange('x25519mlkem768');
    const client = h.generate();
    const ek = client.share;
    // Encapsulation key with a coefficient >= q (12-bit value 0xfff) fails the FIPS 203 modulus check.
    const badEk = mutate(ek, (c) => {
      c[0] = 0xff;
      c[1]! |= 0x0f;
    });
    assert.is(h.respond(badEk), null, 'ML-KEM modulus check');
    assert.is(h.respond(ek.subarray(0, ek.length - 1)), null);
    assert.is(h.respond(new Uint8Array(0)), null);
    // Hybrid with an all-zero X25519 half.
    assert.is(h.respond(mutate(ek, (c) => c.fill(0, 1184))), null);
    const r = h.respond(ek)!;
    assert.is(client.complete(r.share.subarray(1)), null);
    assert.is(client.complete(mutate(r.share, (c) => c.fill(0, 1088))), null);
    assert.is(client.complete(new Uint8Array(0)), null);
    assert.ok(client.complete(r.share));
  }
});

test('generate(privateKey) rejects malformed private keys', () => {
  for (const p of providers) {
    assert.throws(() => p.keyExchange('x25519').generate(new Uint8Array(31)));
    assert.throws(() => p.keyExchange('secp256r1').generate(new Uint8Array(31).fill(1)));
    assert.throws(() => p.keyExchange('x25519mlkem768').generate(new Uint8Array(64)));
  }
});

test.run();
