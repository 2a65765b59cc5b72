import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { ConfigError } from '../src/errors.js';
import { defaultProvider, getProvider, nobleProvider, nodeProvider } from '../src/crypto/index.js';
import type { AeadAlg } from '../src/crypto/provider.js';
import { hex, unhex, prng } from './crypto-util.js';

const AEADS: AeadAlg[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];
const keyLen = (a: AeadAlg) => (a === 'aes-128-gcm' ? 16 : 32);

test('getProvider / defaultProvider', () => {
  assert.is(getProvider('node'), nodeProvider);
  assert.is(getProvider('noble'), nobleProvider);
  assert.is(defaultProvider(), nodeProvider);
  assert.throws(() => getProvider('openssl'), (e: unknown) => e instanceof ConfigError && /unknown crypto provider 'openssl': use 'node' or 'noble'/.test(e.message));
  assert.throws(() => getProvider('toString'), (e: unknown) => e instanceof ConfigError);
});

// RFC 5869 Appendix A, test cases 1-3 (HKDF-SHA256).
const HKDF_CASES = [
  {
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '000102030405060708090a0b0c',
    info: 'f0f1f2f3f4f5f6f7f8f9',
    L: 42,
    prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    ikm: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f',
    salt: '606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
    info: 'b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',
    L: 82,
    prk: '06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244',
    okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '',
    info: '',
    L: 42,
    prk: '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

for (const p of providers) {
  test(`${p.name}: HKDF-SHA256 RFC 5869 A.1-A.3`, () => {
    for (const c of HKDF_CASES) {
      const prk = p.hkdfExtract('sha256', unhex(c.salt), unhex(c.ikm));
      assert.is(hex(prk), c.prk);
      assert.is(hex(p.hkdfExpand('sha256', prk, unhex(c.info), c.L)), c.okm);
    }
    assert.throws(() => p.hkdfExpand('sha256', new Uint8Array(32), new Uint8Array(0), 255 * 32 + 1));
  });

  test(`${p.name}: hashes (incremental, clone, digest does not finalize)`, () => {
    // FIPS 180-2 "abc" digests.
    const abc = new TextEncoder().encode('abc');
    assert.is(hex(p.digest('sha256', abc)), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.is(hex(p.digest('sha384', abc)), 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7');
    for (const alg of ['sha256', 'sha384'] as const) {
      const h = p.hash(alg);
      assert.is(h.alg, alg);
      h.update(abc.subarray(0, 1));
      const c = h.clone();
      h.update(abc.subarray(1));
      assert.is(hex(h.digest()), hex(p.digest(alg, abc)));
      assert.is(hex(h.digest()), hex(p.digest(alg, abc)), 'digest() twice');
      c.update(abc.subarray(1, 2));
      assert.is(hex(c.digest()), hex(p.digest(alg, abc.subarray(0, 2))));
      h.update(abc);
      assert.is(hex(h.digest()), hex(p.digest(alg, new TextEncoder().encode('abcabc'))));
    }
  });

  test(`${p.name}: HMAC (RFC 4231 test case 2)`, () => {
    const key = new TextEncoder().encode('Jefe');
    const data = new TextEncoder().encode('what do ya want for nothing?');
    assert.is(hex(p.hmac('sha256', key, data)), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    assert.is(hex(p.hmac('sha384', key, data)), 'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649');
  });
}

// RFC 9001 Appendix A.2: the client Initial payload (CRYPTO frame padded to 1162 bytes) under the
// client Initial key; expected ciphertext||tag = the protected packet after its 22-byte header.
const A2_KEY = '1f369613dd76d5467730efcbe3b1a22d';
const A2_NONCE = 'fa044b2f42a3fd3b46fb255e'; // iv fa044b2f42a3fd3b46fb255c XOR packet number 2
const A2_AAD = 'c300000001088394c8f03e5157080000449e00000002';
const A2_FRAME =
  '060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c000004130113' +
  '02010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d00170018001000070005' +
  '04616c706e0005000501000000000033002600240' + '01d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce1' +
  '5d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c0002400100' +
  '3900320408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806' +
  '048000ffff';
const A2_CT =
  'd1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f3991c260ec4c60d' +
  '17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace' +
  '01e6005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5457afd84d05d' +
  'fffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c2084dce25ff9b06cde535d0f920a2db1bf362c23e596d11' +
  'a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc25' +
  '0ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db059ae0648db2f64264ed5e39be2e20d82df566da8dd5' +
  '998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f89937f5a67258' +
  'bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556be52afe3f565636ad1b17d508b73d8743eeb524be22b' +
  '3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663ac69890f41570' +
  '15853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00f064c99e3dd97911d39fe9c5d0b23a229a234cb36186' +
  'c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee8' +
  '2e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd14de71e6c418559302f939b0e1abd576f279c4b2e0fe' +
  'b85c1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198e3fc433f9f25' +
  '41010ae17c1bf202580f6047472fb36857fe843b19f5984009ddc324044e847a4f4a0ab34f719595de37252d6235365e' +
  '9b84392b061085349d73203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605' +
  'cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450efc60ac47683d7b8d0f811365565fd98c4c8eb936bcab' +
  '8d069fc33bd801b03adea2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e72404790a2181014f3' +
  'b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2162f40a29f0c3c8745c0f50fba3852e566d44575c29d' +
  '39a03f0cda721984b6f440591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca06948109f23f3' +
  '50db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc' +
  '603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f0940054da48781893' +
  'a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab760d58a606654f9f4400e8b38591356fbf6425aca26d' +
  'c85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4056df31bd267' +
  'b6b90a079831aaf579be0a39013137aac6d404f518cfd46840647e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44' +
  'e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934';

// Published AEAD vectors: RFC 9001 A.2 (AES-128-GCM), GCM spec test case 16 (AES-256-GCM, McGrew &
// Viega, "The Galois/Counter Mode of Operation", App. B), RFC 8439 §2.8.2 and RFC 9001 A.5 (ChaCha20-Poly1305).
const AEAD_VECTORS: { alg: AeadAlg; name: string; key: string; nonce: string; aad: string; pt: string; ct: string }[] = [
  { alg: 'aes-128-gcm', name: 'RFC 9001 A.2', key: A2_KEY, nonce: A2_NONCE, aad: A2_AAD, pt: A2_FRAME.padEnd(1162 * 2, '0'), ct: A2_CT },
  {
    alg: 'aes-128-gcm',
    name: 'GCM spec test case 2',
    key: '00000000000000000000000000000000',
    nonce: '000000000000000000000000',
    aad: '',
    pt: '00000000000000000000000000000000',
    ct: '0388dace60b6a392f328c2b971b2fe78' + 'ab6e47d42cec13bdf53a67b21257bddf',
  },
  {
    alg: 'aes-256-gcm',
    name: 'GCM spec test case 16',
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    nonce: 'cafebabefacedbaddecaf888',
    aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2',
    pt: 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662' + '76fc6ece0f4e1768cddf8853bb2d551b',
  },
  {
    alg: 'chacha20-poly1305',
    name: 'RFC 8439 2.8.2',
    key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
    nonce: '070000004041424344454647',
    aad: '50515253c0c1c2c3c4c5c6c7',
    pt: hex(new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")),
    ct:
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
      '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
      '3ff4def08e4b7a9de576d26586cec64b6116' + '1ae10b594f09e26a7e902ecbd0600691',
  },
  {
    alg: 'chacha20-poly1305',
    name: 'RFC 9001 A.5',
    key: 'c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8',
    nonce: 'e0459b3474bdd0e46d417eb0',
    aad: '4200bff4',
    pt: '01',
    ct: '655e5cd55c41f69080575d7999c25a5bfb',
  },
];

for (const p of providers) {
  test(`${p.name}: AEAD published vectors`, () => {
    for (const v of AEAD_VECTORS) {
      const a = p.aead(v.alg, unhex(v.key));
      assert.is(a.alg, v.alg);
      assert.is(hex(a.seal(unhex(v.nonce), unhex(v.aad), unhex(v.pt))), v.ct, `${v.name} seal`);
      const opened = a.open(unhex(v.nonce), unhex(v.aad), unhex(v.ct));
      assert.ok(opened, `${v.name} open`);
      assert.is(hex(opened!), v.pt);
    }
  });

  test(`${p.name}: AEAD tamper -> null, never throws`, () => {
    const rnd = prng(7);
    for (const alg of AEADS) {
      const a = p.aead(alg, rnd.bytes(keyLen(alg)));
      const nonce = rnd.bytes(12);
      const aad = rnd.bytes(13);
      const pt = rnd.bytes(100);
      const ct = a.seal(nonce, aad, pt);
      assert.is(ct.length, 116);
      for (let i = 0; i < ct.length; i += 7) {
        const bad = ct.slice();
        bad[i]! ^= 1 << (i % 8);
        assert.is(a.open(nonce, aad, bad), null, `flip byte ${i}`);
      }
      const badAad = aad.slice();
      badAad[0]! ^= 0x80;
      assert.is(a.open(nonce, badAad, ct), null);
      const badNonce = nonce.slice();
      badNonce[11]! ^= 1;
      assert.is(a.open(badNonce, aad, ct), null);
      assert.is(a.open(nonce, aad, ct.subarray(0, 15)), null, 'shorter than a tag');
      assert.is(a.open(nonce, aad, new Uint8Array(0)), null);
      assert.is(a.open(nonce.subarray(0, 8), aad, ct), null, 'bad nonce length');
      assert.is(a.open(nonce, aad, ct.subarray(0, ct.length - 1)), null, 'truncated');
      const out = new Uint8Array(100).fill(0xaa);
      assert.is(a.open(nonce, badAad, ct, out), null);
      assert.ok(out.every((x) => x === 0xaa), 'failed open leaves out untouched');
    }
  });

  test(`${p.name}: AEAD wrong key length -> ConfigError`, () => {
    for (const alg of AEADS) {
      for (const n of [0, 15, 24, 33, keyLen(alg) === 16 ? 32 : 16]) {
        assert.throws(() => p.aead(alg, new Uint8Array(n)), (e: unknown) => e instanceof ConfigError, `${alg} key ${n}`);
        assert.throws(() => p.headerProtection(alg, new Uint8Array(n)), (e: unknown) => e instanceof ConfigError, `${alg} hp key ${n}`);
      }
    }
  });

  test(`${p.name}: AEAD out buffer, in place`, () => {
    const rnd = prng(11);
    for (const alg of AEADS) {
      const a = p.aead(alg, rnd.bytes(keyLen(alg)));
      for (const len of [0, 1, 15, 16, 17, 1200, 1500]) {
        const nonce = rnd.bytes(12);
        const aad = rnd.bytes(20);
        const pt = rnd.bytes(len);
        const expect = a.seal(nonce, aad, pt);
        // Separate out buffer (larger than needed, at an odd offset).
        const big = new Uint8Array(len + 40);
        const res = a.seal(nonce, aad, pt, big.subarray(3));
        assert.is(hex(res), hex(expect));
        assert.is(res.buffer, big.buffer, 'result is a view into out');
        assert.is(res.byteOffset, 3);
        // In place: plaintext sits in the buffer that receives the ciphertext.
        const buf = new Uint8Array(len + 16 + 5);
        buf.set(pt, 5);
        const inPlace = a.seal(nonce, aad, buf.subarray(5, 5 + len), buf.subarray(5));
        assert.is(hex(inPlace), hex(expect));
        const opened = a.open(nonce, aad, buf.subarray(5, 5 + len + 16), buf.subarray(5));
        assert.ok(opened);
        assert.is(opened!.byteOffset, 5);
        assert.is(hex(opened!), hex(pt));
      }
    }
  });
}

test('AEAD sealInPlace / openInPlace (optional fast path): same bytes as seal/open, failures leave the buffer untouched', () => {
  const rnd = prng(99);
  const withFastPath = providers.filter((p) => p.aead('aes-128-gcm', new Uint8Array(16)).sealInPlace !== undefined);
  assert.ok(withFastPath.some((p) => p.name === 'node'), 'the node provider has the in-place fast path');
  for (const p of withFastPath) {
    for (const alg of AEADS) {
      const a = p.aead(alg, rnd.bytes(keyLen(alg)));
      for (const len of [0, 1, 16, 33, 1200, 1500]) {
        const nonce = rnd.bytes(12);
        const hdr = 1 + rnd.int(30);
        const pad = rnd.int(5);
        const buf = rnd.bytes(pad + hdr + len + 16 + 3);
        const aad = buf.slice(pad, pad + hdr);
        const pt = buf.slice(pad + hdr, pad + hdr + len);
        const expect = a.seal(nonce, aad, pt);
        a.sealInPlace!(nonce, buf, pad, pad + hdr, pad + hdr + len);
        assert.is(hex(buf.subarray(pad + hdr, pad + hdr + len + 16)), hex(expect), `${p.name} ${alg} seal ${len}`);
        assert.is(hex(buf.subarray(pad, pad + hdr)), hex(aad), 'AAD bytes unchanged');
        // Tampered tag, ciphertext or AAD: false, buffer unchanged.
        for (const at of [pad, pad + hdr + (len >> 1), pad + hdr + len + 15]) {
          const bad = buf.slice();
          bad[at]! ^= 0x10;
          const before = bad.slice();
          assert.is(a.openInPlace!(nonce, bad, pad, pad + hdr, pad + hdr + len), false, `${p.name} ${alg} tamper at ${at}`);
          assert.is(hex(bad), hex(before), 'failed openInPlace leaves the buffer as it was');
        }
        assert.is(a.openInPlace!(nonce, buf, pad, pad + hdr, pad + hdr + len), true, `${p.name} ${alg} open ${len}`);
        assert.is(hex(buf.subarray(pad + hdr, pad + hdr + len)), hex(pt));
        assert.is(a.openInPlace!(nonce.subarray(0, 8), buf, pad, pad + hdr, pad + hdr + len), false, 'bad nonce length');
        assert.is(a.openInPlace!(nonce, buf, pad, pad + hdr, buf.length - 15), false, 'tag beyond the buffer');
        assert.throws(() => a.sealInPlace!(nonce, buf, pad, pad + hdr, buf.length - 15), RangeError);
      }
    }
  }
});

test('AEAD cross-provider: seal with one, open with the other (random sizes 0..20000)', () => {
  const rnd = prng(1234);
  for (const alg of AEADS) {
    const key = rnd.bytes(keyLen(alg));
    for (const sealer of providers) {
      const s = sealer.aead(alg, key);
      for (const opener of providers) {
        const o = opener.aead(alg, key);
        for (let i = 0; i < 12; i++) {
          const len = i < 2 ? i * 16 : rnd.int(20001);
          const nonce = rnd.bytes(12);
          const aad = rnd.bytes(rnd.int(64));
          const pt = rnd.bytes(len);
          const ct = s.seal(nonce, aad, pt);
          assert.is(ct.length, len + 16);
          const back = o.open(nonce, aad, ct);
          assert.ok(back, `${alg} ${sealer.name}->${opener.name} len ${len}`);
          assert.ok(equal(back!, pt));
        }
      }
    }
  }
});

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

for (const p of providers) {
  test(`${p.name}: header protection RFC 9001 A.2 (AES) and A.5 (ChaCha20)`, () => {
    const aes = p.headerProtection('aes-128-gcm', unhex('9f50449e04a0e810283a1e9933adedd2'));
    const sample = unhex('d1b1c98dd7689fb8ec11d242b123dc9b');
    assert.is(hex(aes.mask(sample)), '437b9aec36');
    // Reused ECB context: repeated calls give the same independent block.
    assert.is(hex(aes.mask(sample)), '437b9aec36');
    // With an offset into a packet.
    const pkt = new Uint8Array(40);
    pkt.set(sample, 22);
    assert.is(hex(aes.mask(pkt, 22)), '437b9aec36');
    // RFC 9001 A.3: server Initial, hp c206b8d9b9f0f37644430b490eeaa314, sample 2cd0991cd25b0aac406a5816b6394100 -> mask 2ec0d8356a.
    const srv = p.headerProtection('aes-128-gcm', unhex('c206b8d9b9f0f37644430b490eeaa314'));
    assert.is(hex(srv.mask(unhex('2cd0991cd25b0aac406a5816b6394100'))), '2ec0d8356a');
    assert.is(hex(aes.mask(sample)), '437b9aec36', 'contexts are independent');

    const cc = p.headerProtection('chacha20-poly1305', unhex('25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4'));
    assert.is(hex(cc.mask(unhex('5e5cd55c41f69080575d7999c25a5bfb'))), 'aefefe7d03');
    assert.is(hex(cc.mask(unhex('5e5cd55c41f69080575d7999c25a5bfb'))), 'aefefe7d03');
    assert.throws(() => aes.mask(sample.subarray(0, 15)), RangeError);
    assert.throws(() => cc.mask(sample, 1), RangeError);
  });
}

test('header protection cross-provider on random samples (incl. counter 0xffffffff)', () => {
  const rnd = prng(99);
  for (const alg of AEADS) {
    const key = rnd.bytes(keyLen(alg));
    const hps = providers.map((p) => p.headerProtection(alg, key));
    for (let i = 0; i < 300; i++) {
      const sample = rnd.bytes(16);
      if (i === 0) sample.fill(0xff, 0, 4);
      if (i === 1) sample.fill(0xff);
      if (i === 2) sample.fill(0);
      const masks = hps.map((h) => hex(h.mask(sample)));
      for (const m of masks) assert.is(m, masks[0], `${alg} sample ${hex(sample)}`);
      assert.is(masks[0]!.length, 10);
    }
  }
});

test('AES header protection equals the first AEAD keystream-independent AES block (mask differs per sample)', () => {
  for (const p of providers) {
    const hp = p.headerProtection('aes-256-gcm', new Uint8Array(32).fill(1));
    const a = hex(hp.mask(new Uint8Array(16)));
    const b = hex(hp.mask(new Uint8Array(16).fill(1)));
    assert.is.not(a, b);
  }
});

test.run();
