/** Packet protection (RFC 9001 §5, §6): round trips for every AEAD, v1 and v2, key update, drops and errors. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation, hashLength } from '@petrel/tls-core';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader, writePacketLength, writeShortHeader } from '../src/header.js';
import { AEAD_LIMITS, PacketKeys, UnprotectedPacket, paddingForSample, type PacketCipher } from '../src/protection.js';
import { TransportError } from '../src/errors.js';
import { sealPacket } from '../src/packet.js';
import { Frame, FrameType, decodeFrame } from '../src/frames.js';
import { QUIC_V1, QUIC_V2 } from '../src/version.js';

const CIPHERS: PacketCipher[] = [
  { aead: 'aes-128-gcm', hash: 'sha256' },
  { aead: 'aes-256-gcm', hash: 'sha384' },
  { aead: 'chacha20-poly1305', hash: 'sha256' },
];

/** Writes a packet (long Handshake or short) with `payload`, returns [buf, pnOffset, payloadEnd]. */
function build(long: boolean, version: number, pn: number, pnLength: number, payload: Uint8Array, firstByteExtra = 0): [Uint8Array, number, number] {
  const dcid = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const buf = new Uint8Array(100 + payload.length);
  let pnOffset: number;
  if (long) {
    pnOffset = writeLongHeader(buf, 0, PacketType.Handshake, version, dcid, Uint8Array.of(9), null, pn, pnLength);
    writePacketLength(buf, pnOffset - 2, 2, pnLength + payload.length + 16);
  } else {
    pnOffset = writeShortHeader(buf, 0, dcid, pn, pnLength, false);
  }
  buf[0]! |= firstByteExtra;
  buf.set(payload, pnOffset + pnLength);
  return [buf, pnOffset, pnOffset + pnLength + payload.length];
}

for (const provider of providers) {
  for (const cipher of CIPHERS) {
    for (const version of [QUIC_V1, QUIC_V2]) {
      const name = `${provider.name} ${cipher.aead} v${version === QUIC_V1 ? 1 : 2}`;

      test(`${name}: protect/unprotect round trips`, () => {
        const rng = new Rng(7);
        const secret = rng.bytes(hashLength[cipher.hash]);
        const tx = PacketKeys.fromSecret(provider, cipher, version, secret);
        const rx = PacketKeys.fromSecret(provider, cipher, version, secret);
        const h = new PacketHeader();
        const u = new UnprotectedPacket();
        for (const long of [true, false]) {
          for (let pnLength = 1; pnLength <= 4; pnLength++) {
            for (const pn of [0, 1, 255, 65536 + 3, 2 ** 32 + 5, 2 ** 40 + 77]) {
              const payload = rng.bytes(paddingForSample(pnLength, 0) + rng.int(50));
              const [buf, pnOffset, payloadEnd] = build(long, version, pn, pnLength, payload);
              const clear = buf.slice(0, payloadEnd);
              const end = tx.protect(buf, 0, pnOffset, pnLength, payloadEnd, pn);
              assert.is(end, payloadEnd + 16);
              // Header protection only touches the low bits of the first byte and the packet number.
              assert.is(buf[0]! & (long ? 0xf0 : 0xe0), clear[0]! & (long ? 0xf0 : 0xe0));
              assert.equal(buf.subarray(1, pnOffset), clear.subarray(1, pnOffset));
              const pkt = buf.slice(0, end);
              assert.ok(parseHeader(pkt, 0, pkt.length, 8, h));
              assert.ok(rx.unprotect(pkt, 0, h.pnOffset, h.packetEnd, pn - 1, u), `pn ${pn} len ${pnLength}`);
              assert.is(u.pn, pn);
              assert.is(u.pnLength, pnLength);
              assert.equal(pkt.subarray(0, u.payloadEnd), clear);
              // Any modified byte: dropped.
              const bad = buf.slice(0, end);
              bad[rng.int(end)]! ^= 1 << rng.int(8);
              assert.ok(parseHeader(bad, 0, bad.length, 8, h) === false || !rx.unprotect(bad, 0, h.pnOffset, h.packetEnd, pn - 1, u));
            }
          }
        }
      });

      test(`${name}: key update (RFC 9001 §6)`, () => {
        const rng = new Rng(8);
        const secret = rng.bytes(hashLength[cipher.hash]);
        const k0 = PacketKeys.fromSecret(provider, cipher, version, secret);
        const k1 = k0.next();
        assert.is(k1.secret.length, hashLength[cipher.hash]);
        assert.not.equal(k1.secret, k0.secret);
        assert.is(k1.hp, k0.hp);
        assert.not.equal(k1.iv, k0.iv);
        const peerK1 = PacketKeys.fromSecret(provider, cipher, version, secret).next();
        assert.equal(peerK1.secret, k1.secret);
        assert.equal(peerK1.next().secret, k1.next().secret);
        const [buf, pnOffset, payloadEnd] = build(false, version, 1000, 2, rng.bytes(30), 0x04 /* key phase */);
        const end = k1.protect(buf, 0, pnOffset, 2, payloadEnd, 1000);
        const u = new UnprotectedPacket();
        // Header protection is the same for every generation: remove it, read the key phase, pick keys.
        const a = buf.slice(0, end);
        assert.ok(k0.removeHeaderProtection(a, 0, pnOffset, end, 999, u));
        assert.ok(u.keyPhase);
        assert.is(u.pn, 1000);
        assert.ok(peerK1.decrypt(a, u));
        const b = buf.slice(0, end);
        assert.not.ok(k0.unprotect(b, 0, pnOffset, end, 999, u));
      });
    }
  }

  test(`${provider.name}: reserved bits, short packets, bad arguments`, () => {
    const cipher = CIPHERS[0]!;
    const keys = PacketKeys.fromSecret(provider, cipher, QUIC_V1, new Uint8Array(32).fill(3));
    const u = new UnprotectedPacket();
    for (const [long, bits] of [[true, 0x04], [true, 0x08], [false, 0x08], [false, 0x10]] as const) {
      const [buf, pnOffset, payloadEnd] = build(long, QUIC_V1, 5, 1, new Uint8Array(10), bits);
      const end = keys.protect(buf, 0, pnOffset, 1, payloadEnd, 5);
      try {
        keys.unprotect(buf, 0, pnOffset, end, 4, u);
        assert.unreachable('reserved bits accepted');
      } catch (e) {
        assert.instance(e, ProtocolViolation);
        assert.is((e as ProtocolViolation).code, TransportError.PROTOCOL_VIOLATION);
      }
    }
    // Too short for a sample: dropped before any crypto.
    const [buf, pnOffset] = build(false, QUIC_V1, 5, 1, new Uint8Array(3));
    assert.not.ok(keys.removeHeaderProtection(buf, 0, pnOffset, pnOffset + 19, 4, u));
    assert.not.ok(keys.removeHeaderProtection(buf, 0, pnOffset, buf.length + 1, 4, u));
    // Sender side: a payload too small for the sample is a local bug.
    assert.throws(() => keys.protect(buf, 0, pnOffset, 1, pnOffset + 3, 5), (e: unknown) => e instanceof RangeError);
    assert.is(paddingForSample(1, 0), 3);
    assert.is(paddingForSample(4, 0), 0);
    assert.is(paddingForSample(2, 5), 0);
  });
}

for (const provider of providers) {
  test(`${provider.name}: sealPacket pads for the sample and to a minimum size`, () => {
    const keys = PacketKeys.fromSecret(provider, CIPHERS[2]!, QUIC_V2, new Uint8Array(32).fill(4));
    const dcid = Uint8Array.of(1, 2, 3);
    const buf = new Uint8Array(64).fill(0x77);
    const pnOffset = writeShortHeader(buf, 0, dcid, 3, 1, false);
    buf[pnOffset + 1] = FrameType.PING;
    const end = sealPacket(keys, buf, 0, pnOffset, 1, 0, pnOffset + 2, 3);
    assert.is(end, pnOffset + 4 + 16);
    const u = new UnprotectedPacket();
    assert.ok(keys.unprotect(buf, 0, pnOffset, end, 2, u));
    const f = new Frame();
    const types: number[] = [];
    for (let o = u.payloadOffset; o < u.payloadEnd; ) {
      o = decodeFrame(buf, o, u.payloadEnd, PacketType.OneRtt, f);
      types.push(f.type);
    }
    assert.equal(types, [FrameType.PING, FrameType.PADDING]);
    // Long header padded to a 1200-byte datagram, Length patched in 4 bytes.
    const big = new Uint8Array(1300);
    const lp = writeLongHeader(big, 0, PacketType.Handshake, QUIC_V2, dcid, dcid, null, 9, 2, 4);
    big[lp + 2] = FrameType.PING;
    assert.is(sealPacket(keys, big, 0, lp, 2, 4, lp + 3, 9, 1200), 1200);
    const h = new PacketHeader();
    assert.ok(parseHeader(big, 0, 1300, 3, h));
    assert.is(h.packetEnd, 1200);
    assert.ok(keys.unprotect(big, 0, h.pnOffset, h.packetEnd, 8, u));
    assert.throws(() => sealPacket(keys, new Uint8Array(30), 0, 4, 1, 0, 6, 1, 1200), (e: unknown) => e instanceof RangeError);
  });
}

test('AEAD limits (RFC 9001 §6.6)', () => {
  assert.is(AEAD_LIMITS['aes-128-gcm'].confidentiality, 2 ** 23);
  assert.is(AEAD_LIMITS['aes-256-gcm'].integrity, 2 ** 52);
  assert.is(AEAD_LIMITS['chacha20-poly1305'].integrity, 2 ** 36);
});

test.run();
