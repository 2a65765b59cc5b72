// The fuzzing CryptoProvider (test/fuzz/fuzz-provider.ts) is cheap but must keep every check
// failing on a mismatch, or the -fast fuzz targets would test code paths that real peers never
// reach (a forged packet accepted, a bad signature passing). These tests pin that down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NamedGroup } from '../packages/tls-core/src/crypto/provider.js';
import { ConfigError } from '../packages/tls-core/src/errors.js';
import type { TlsEvent, TlsSession } from '../packages/tls-core/src/handshake/api.js';
import { TlsClient } from '../packages/tls-core/src/handshake/client.js';
import { TlsServer } from '../packages/tls-core/src/handshake/server.js';
import { generateSelfSigned } from '../packages/tls-core/src/x509/selfsigned.js';
import { WebPkiVerifier } from '../packages/tls-core/src/x509/verifier.js';
import { fuzzProvider } from './fuzz/fuzz-provider.js';

const p = fuzzProvider(1);
const T0 = Date.UTC(2026, 0, 1);
const bytes = (n: number, f = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + f) & 0xff);

test('AEAD: round trip (also in place); any changed bit, aad, nonce or key fails', () => {
  const a = p.aead('aes-128-gcm', bytes(16));
  const nonce = bytes(12, 3);
  const aad = bytes(9, 5);
  const pt = bytes(50, 9);
  const ct = a.seal(nonce, aad, pt);
  assert.is(ct.length, pt.length + 16);
  assert.not.equal(ct.subarray(0, 50), pt, 'encrypted');
  assert.equal(a.open(nonce, aad, ct), pt);
  for (let i = 0; i < ct.length; i++)
    for (const bit of [0x01, 0x80]) {
      const bad = ct.slice();
      bad[i]! ^= bit;
      assert.is(a.open(nonce, aad, bad), null, `byte ${i} bit ${bit}`);
    }
  const aad2 = aad.slice();
  aad2[0]! ^= 1;
  assert.is(a.open(nonce, aad2, ct), null);
  const n2 = nonce.slice();
  n2[11]! ^= 1;
  assert.is(a.open(n2, aad, ct), null);
  assert.is(p.aead('aes-128-gcm', bytes(16, 1)).open(nonce, aad, ct), null, 'other key');
  assert.is(p.aead('chacha20-poly1305', bytes(32)).open(nonce, aad, p.aead('aes-256-gcm', bytes(32)).seal(nonce, aad, pt)), null, 'other algorithm');
  assert.is(a.open(nonce, aad, ct.subarray(0, 15)), null, 'shorter than a tag');
  // In place, as QUIC protection does it: header, payload, room for the tag in one buffer.
  const buf = new Uint8Array(9 + 50 + 16);
  buf.set(aad);
  buf.set(pt, 9);
  a.seal(nonce, buf.subarray(0, 9), buf.subarray(9, 59), buf.subarray(9));
  assert.equal(buf.subarray(9), ct);
  const opened = a.open(nonce, buf.subarray(0, 9), buf.subarray(9), buf.subarray(9));
  assert.equal(opened, pt);
  assert.throws(() => p.aead('aes-128-gcm', bytes(32)), (e: unknown) => e instanceof ConfigError);
});

test('header protection: 5-byte mask from key and sample', () => {
  const hp = p.headerProtection('aes-128-gcm', bytes(16));
  const s = bytes(40);
  const m1 = hp.mask(s, 4).slice();
  assert.is(m1.length, 5);
  assert.equal(hp.mask(s, 4), m1, 'deterministic');
  assert.not.equal(hp.mask(s, 5).slice(), m1);
  assert.not.equal(p.headerProtection('aes-128-gcm', bytes(16, 1)).mask(s, 4).slice(), m1);
  assert.throws(() => hp.mask(s, 30), RangeError);
});

test('hash, HMAC, HKDF: lengths, incremental = one-shot, inputs matter', () => {
  const data = bytes(300);
  for (const alg of ['sha256', 'sha384'] as const) {
    const h = p.hash(alg);
    h.update(data.subarray(0, 7));
    const c = h.clone();
    h.update(data.subarray(7));
    assert.equal(h.digest(), p.digest(alg, data));
    assert.equal(h.digest(), h.digest(), 'digest does not finalize');
    assert.equal(c.digest(), p.digest(alg, data.subarray(0, 7)), 'clone independent');
    assert.is(p.digest(alg, data).length, alg === 'sha256' ? 32 : 48);
    assert.not.equal(p.hmac(alg, bytes(32), data), p.hmac(alg, bytes(32, 1), data));
    const prk = p.hkdfExtract(alg, new Uint8Array(0), data);
    assert.is(p.hkdfExpand(alg, prk, bytes(5), 100).length, 100);
    assert.equal(p.hkdfExpand(alg, prk, bytes(5), 100).subarray(0, 20), p.hkdfExpand(alg, prk, bytes(5), 20), 'prefix property of RFC 5869 T(1)..');
    assert.not.equal(p.hkdfExpand(alg, prk, bytes(5), 16), p.hkdfExpand(alg, prk, bytes(6), 16));
  }
  assert.not.equal(p.digest('sha256', data), p.digest('sha384', data).subarray(0, 32));
});

test('key exchange: real share lengths, both sides agree, invalid or changed shares do not', () => {
  const len: Record<NamedGroup, [number, number, number]> = { x25519: [32, 32, 32], secp256r1: [65, 65, 32], secp384r1: [97, 97, 48], x25519mlkem768: [1216, 1120, 64] };
  for (const g of p.groups) {
    const kx = p.keyExchange(g);
    const c = kx.generate();
    const s = kx.respond(c.share)!;
    assert.ok(s, g);
    assert.equal([c.share.length, s.share.length, s.secret.length], len[g], g);
    assert.equal(c.complete(s.share), s.secret, `${g}: both sides agree`);
    const other = s.share.slice();
    other[other.length - 1]! ^= 1;
    assert.not.equal(c.complete(other), s.secret, `${g}: another share, another secret`);
    assert.is(c.complete(s.share.subarray(1)), null, `${g}: wrong length`);
    assert.is(kx.respond(c.share.subarray(1)), null, `${g}: wrong client length`);
    assert.equal(kx.generate(bytes(32)).share, kx.generate(bytes(32)).share, `${g}: fixed private key, fixed share`);
  }
  const bad = p.keyExchange('secp256r1').generate().share.slice();
  bad[0] = 0x02;
  assert.is(p.keyExchange('secp256r1').respond(bad), null, 'not an uncompressed point');
  assert.is(p.keyExchange('x25519').respond(new Uint8Array(32)), null, 'all-zero x25519 share');
  // Both sides with fixed keys (generate + complete on each side, as a server with a fixed share does).
  const kx = p.keyExchange('x25519');
  const a = kx.generate(bytes(32, 1));
  const b = kx.generate(bytes(32, 2));
  assert.equal(a.complete(b.share), b.complete(a.share));
});

test('signatures: real lengths; another message, signature, key or scheme fails; chains verify for real', () => {
  for (const keyType of ['ec-p256', 'ec-p384', 'ed25519', 'rsa'] as const) {
    const ca = generateSelfSigned({ provider: p, names: [], isCA: true, keyType, nowMs: T0 });
    const leaf = generateSelfSigned({ provider: p, names: ['example.com'], issuer: ca, keyType, nowMs: T0 });
    const k = p.loadPrivateKey(leaf.keyDer);
    const msg = bytes(64);
    for (const scheme of k.schemes) {
      const sig = k.sign(scheme, msg);
      assert.ok(p.verify(scheme, k.spki, msg, sig), `${keyType} ${scheme}`);
      assert.not.ok(p.verify(scheme, k.spki, bytes(64, 1), sig), `${keyType}: other message`);
      const bad = sig.slice();
      bad[bad.length - 1]! ^= 1;
      assert.not.ok(p.verify(scheme, k.spki, msg, bad), `${keyType}: changed signature`);
      assert.not.ok(p.verify(scheme, p.loadPrivateKey(ca.keyDer).spki, msg, sig), `${keyType}: other key`);
    }
    if (keyType === 'ed25519') assert.is(k.sign('ed25519', msg).length, 64);
    if (keyType === 'rsa') assert.is(k.sign(k.schemes[0]!, msg).length, 256);
    assert.not.ok(p.verify(keyType === 'ed25519' ? 'ecdsa_secp256r1_sha256' : 'ed25519', k.spki, msg, k.sign(k.schemes[0]!, msg)), 'scheme of another key type');
    const v = new WebPkiVerifier({ roots: [ca.certDer] });
    const now = T0 + 86_400_000;
    assert.is(v.verifyServer([leaf.certDer], 'example.com', now, p), null, keyType);
    assert.ok(v.verifyServer([leaf.certDer], 'example.org', now, p), 'name mismatch');
    const tampered = leaf.certDer.slice();
    tampered[tampered.length - 3]! ^= 1;
    assert.ok(v.verifyServer([tampered], 'example.com', now, p), 'bad certificate signature');
    const otherCa = generateSelfSigned({ provider: p, names: [], isCA: true, keyType, nowMs: T0 });
    assert.ok(new WebPkiVerifier({ roots: [otherCa.certDer] }).verifyServer([leaf.certDer], 'example.com', now, p), 'unknown CA');
  }
});

function handshake(roots: Uint8Array[]): { client: TlsEvent[]; server: TlsEvent[]; c: TlsSession } {
  const ca = generateSelfSigned({ provider: p, names: [], isCA: true, keyType: 'ec-p256', nowMs: T0 });
  const leaf = generateSelfSigned({ provider: p, names: ['example.com'], issuer: ca, keyType: 'ec-p256', nowMs: T0 });
  const c = new TlsClient({ provider: fuzzProvider(2), serverName: 'example.com', verifier: new WebPkiVerifier({ roots: roots.length ? roots : [ca.certDer] }), alpn: ['x'], now: () => T0 + 1000 });
  const s = new TlsServer({ provider: fuzzProvider(3), identity: { chain: [leaf.certDer, ca.certDer], key: leaf.keyDer }, alpn: ['x'], now: () => T0 + 1000 });
  const ev = { client: [] as TlsEvent[], server: [] as TlsEvent[], c };
  c.start();
  s.start();
  for (let round = 0; round < 10; round++) {
    for (let e = c.poll(); e; e = c.poll()) {
      ev.client.push(e);
      if (e.type === 'send') s.receive(e.level, e.data);
    }
    for (let e = s.poll(); e; e = s.poll()) {
      ev.server.push(e);
      if (e.type === 'send') c.receive(e.level, e.data);
    }
  }
  return ev;
}

test('a TLS 1.3 handshake completes with the fuzzing provider, and fails with the wrong trust anchor', () => {
  const ok = handshake([]);
  assert.ok(ok.c.handshakeComplete, ok.client.map((e) => e.type).join(','));
  assert.ok(ok.server.some((e) => e.type === 'handshakeComplete'));
  const other = generateSelfSigned({ provider: p, names: [], isCA: true, keyType: 'ec-p256', nowMs: T0 });
  const bad = handshake([other.certDer]);
  assert.not.ok(bad.c.handshakeComplete);
  assert.ok(bad.client.some((e) => e.type === 'alert'));
});

test.run();
