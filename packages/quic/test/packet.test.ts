/** Varints, packet numbers, header parsing/building, coalescing, Version Negotiation, Stateless Reset. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MAX_VARINT,
  readVarint,
  readVarintChecked,
  varintGreaterThan,
  varintLength,
  varintSizeAt,
  writeVarint,
  writeVarintFixed,
} from '../src/varint.js';
import {
  PacketHeader,
  PacketType,
  dcidLengthAt,
  decodePacketNumber,
  longHeaderSize,
  packetNumberLength,
  parseHeader,
  writeLongHeader,
  writePacketLength,
  writePacketNumber,
  writeShortHeader,
} from '../src/header.js';
import {
  QUIC_V1,
  QUIC_V2,
  areCompatibleVersions,
  buildVersionNegotiation,
  chooseVersionFromNegotiation,
  negotiateVersion,
  validateClientVersionInformation,
  validateServerVersionInformation,
  greaseVersion,
  isReservedVersion,
  isSupportedVersion,
  parseVersionNegotiation,
} from '../src/version.js';
import { ProtocolViolation } from '@petrel/tls-core';
import { TransportError } from '../src/errors.js';
import { DatagramPool, matchesStatelessReset, statelessResetSize, writeStatelessReset } from '../src/packet.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('varint: RFC 9000 Appendix A.1 examples', () => {
  assert.is(readVarint(hex('c2197c5eff14e88c'), 0), 151288809941952652);
  assert.is(readVarint(hex('9d7f3e7d'), 0), 494878333);
  assert.is(readVarint(hex('7bbd'), 0), 15293);
  assert.is(readVarint(hex('25'), 0), 37);
  assert.is(readVarint(hex('4025'), 0), 37);
  const b = new Uint8Array(8);
  assert.is(writeVarint(b, 0, 494878333), 4);
  assert.is(toHex(b.subarray(0, 4)), '9d7f3e7d');
  assert.is(writeVarint(b, 0, 15293), 2);
  assert.is(toHex(b.subarray(0, 2)), '7bbd');
  assert.is(writeVarintFixed(b, 0, 37, 2), 2);
  assert.is(toHex(b.subarray(0, 2)), '4025');
  assert.is(writeVarintFixed(b, 0, 37, 8), 8);
  assert.is(toHex(b), 'c000000000000025');
});

test('varint: boundaries, lengths, fixed writer, truncation', () => {
  const cases: [number, number][] = [
    [0, 1], [63, 1], [64, 2], [16383, 2], [16384, 4], [2 ** 30 - 1, 4], [2 ** 30, 8], [2 ** 53 - 1, 8], [2 ** 53, 8],
  ];
  const b = new Uint8Array(16);
  for (const [v, n] of cases) {
    assert.is(varintLength(v), n, `length ${v}`);
    assert.is(writeVarint(b, 3, v), 3 + n);
    assert.is(varintSizeAt(b, 3), n);
    assert.is(readVarint(b, 3), v);
    assert.is(readVarintChecked(b, 3, 3 + n), v);
    assert.is(readVarintChecked(b, 3, 3 + n - 1), -1);
  }
  // MAX_VARINT (2^62-1, rounds to 2^62 as a double) encodes as all ones.
  assert.is(writeVarint(b, 0, MAX_VARINT), 8);
  assert.is(toHex(b.subarray(0, 8)), 'ffffffffffffffff');
  assert.is(readVarint(b, 0), 2 ** 62);
  assert.throws(() => varintLength(2 ** 63), (e: unknown) => e instanceof RangeError);
  assert.throws(() => varintLength(-1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => writeVarint(b, 0, 1.5), (e: unknown) => e instanceof RangeError);
  assert.throws(() => writeVarintFixed(b, 0, 64, 1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => writeVarintFixed(b, 0, 16384, 2), (e: unknown) => e instanceof RangeError);
  assert.throws(() => writeVarintFixed(b, 0, 5, 3), (e: unknown) => e instanceof RangeError);
  assert.is(readVarintChecked(b, 5, 5), -1);
  // exact comparisons above 2^53
  assert.ok(varintGreaterThan(hex('d000000000000001'), 0, 0x10000000, 0));
  assert.ok(!varintGreaterThan(hex('d000000000000000'), 0, 0x10000000, 0));
  assert.ok(!varintGreaterThan(hex('cfffffffffffffff'), 0, 0x10000000, 0));
  assert.ok(varintGreaterThan(hex('ffffffffffffffff'), 0, 0x3fffffff, 0xfffffffe));
  assert.ok(!varintGreaterThan(hex('25'), 0, 0, 37));
  assert.ok(varintGreaterThan(hex('4026'), 0, 0, 37));
  assert.ok(varintGreaterThan(hex('80000026'), 0, 0, 37));
});

test('packet numbers: RFC 9000 Appendix A.2 / A.3 examples and edge cases', () => {
  assert.is(decodePacketNumber(0xa82f30ea, 0x9b32, 16), 0xa82f9b32);
  assert.is(packetNumberLength(0xac5c02, 0xabe8b3), 2);
  assert.is(packetNumberLength(0xace8fe, 0xabe8b3), 3);
  assert.is(packetNumberLength(0, -1), 1);
  assert.is(packetNumberLength(127, -1), 1);
  assert.is(packetNumberLength(128, -1), 2);
  assert.is(packetNumberLength(2 ** 31, -1), 4);
  // First packet in a space.
  assert.is(decodePacketNumber(-1, 0, 8), 0);
  assert.is(decodePacketNumber(-1, 2, 32), 2);
  // Wrap forward and backward.
  assert.is(decodePacketNumber(255, 0, 8), 256);
  assert.is(decodePacketNumber(256, 0xff, 8), 255);
  assert.is(decodePacketNumber(2 ** 40, 5, 8), 2 ** 40 + 5);
  // Encode/decode round trips around the window.
  const b = new Uint8Array(4);
  for (const largest of [-1, 0, 100, 65535, 2 ** 32 + 7, 2 ** 45]) {
    for (const delta of [1, 2, 100, 127, 128, 30000, 2 ** 20]) {
      const pn = largest + delta;
      const len = packetNumberLength(pn, largest);
      writePacketNumber(b, 0, pn, len);
      let trunc = 0;
      for (let i = 0; i < len; i++) trunc = trunc * 256 + b[i]!;
      // The receiver may have seen anything from `largest` up to pn-1.
      assert.is(decodePacketNumber(largest, trunc, len * 8), pn, `largest ${largest} pn ${pn}`);
      assert.is(decodePacketNumber(pn - 1, trunc, len * 8), pn);
    }
  }
});

test('long header build + parse: Initial with token, 0-RTT, Handshake in v1 and v2', () => {
  const dcid = hex('0102030405060708');
  const scid = hex('a1a2a3');
  const token = new Uint8Array(70).fill(7);
  for (const version of [QUIC_V1, QUIC_V2]) {
    for (const type of [PacketType.Initial, PacketType.ZeroRtt, PacketType.Handshake]) {
      for (const lengthSize of [2, 4]) {
        const buf = new Uint8Array(300);
        const tok = type === PacketType.Initial ? token : null;
        const pnOffset = writeLongHeader(buf, 10, type, version, dcid, scid, tok, 0x1234, 2, lengthSize);
        assert.is(pnOffset + 2 - 10, longHeaderSize(type, 8, 3, tok ? tok.length : 0, 2, lengthSize));
        const payloadEnd = pnOffset + 2 + 30;
        writePacketLength(buf, pnOffset - lengthSize, lengthSize, payloadEnd + 16 - pnOffset);
        const h = new PacketHeader();
        assert.ok(parseHeader(buf, 10, 300, 0, h));
        assert.is(h.type, type);
        assert.is(h.version, version);
        assert.ok(h.long);
        assert.is(h.headerOffset, 10);
        assert.equal(buf.subarray(h.dcidOffset, h.dcidOffset + h.dcidLength), dcid);
        assert.equal(buf.subarray(h.scidOffset, h.scidOffset + h.scidLength), scid);
        assert.is(h.tokenLength, tok ? 70 : 0);
        if (tok) assert.equal(buf.subarray(h.tokenOffset, h.tokenOffset + h.tokenLength), token);
        assert.is(h.pnOffset, pnOffset);
        assert.is(h.packetEnd, payloadEnd + 16);
        assert.is(buf[10]! & 3, 1); // pn length 2
        assert.is(dcidLengthAt(buf, 10, 300, 5), 8);
      }
    }
  }
  // v2 type bits differ from v1 (RFC 9369 §3.2): Initial = 0b01
  const b = new Uint8Array(64);
  writeLongHeader(b, 0, PacketType.Initial, QUIC_V2, dcid, scid, null, 0, 1);
  assert.is((b[0]! >> 4) & 3, 1);
  writeLongHeader(b, 0, PacketType.Handshake, QUIC_V1, dcid, scid, null, 0, 1);
  assert.is((b[0]! >> 4) & 3, 2);
});

test('short header build + parse', () => {
  const dcid = hex('c0c1c2c3c4');
  const buf = new Uint8Array(40);
  const pnOffset = writeShortHeader(buf, 0, dcid, 77, 1, true, true);
  assert.is(pnOffset, 6);
  assert.is(buf[0], 0x40 | 0x20 | 0x04);
  assert.is(buf[6], 77);
  const h = new PacketHeader();
  assert.ok(parseHeader(buf, 0, 40, 5, h));
  assert.is(h.type, PacketType.OneRtt);
  assert.not.ok(h.long);
  assert.is(h.dcidOffset, 1);
  assert.is(h.dcidLength, 5);
  assert.is(h.pnOffset, 6);
  assert.is(h.packetEnd, 40);
  // Too short for the CID.
  assert.not.ok(parseHeader(buf, 0, 4, 5, h));
  // Fixed bit clear: drop unless grease_quic_bit was negotiated.
  buf[0] = 0x00;
  assert.not.ok(parseHeader(buf, 0, 40, 5, h));
  assert.ok(parseHeader(buf, 0, 40, 5, h, true));
});

test('coalesced packets: Initial + Handshake + 1-RTT in one datagram', () => {
  const dcid = hex('0102030405060708');
  const scid = hex('0a0b');
  const d = new Uint8Array(200);
  let o = 0;
  const ends: number[] = [];
  for (const type of [PacketType.Initial, PacketType.Handshake]) {
    const pn = writeLongHeader(d, o, type, QUIC_V1, dcid, scid, null, 0, 1);
    const end = pn + 1 + 20 + 16;
    writePacketLength(d, pn - 2, 2, end - pn);
    ends.push(end);
    o = end;
  }
  writeShortHeader(d, o, dcid, 1, 1, false);
  const h = new PacketHeader();
  const seen: number[] = [];
  for (let off = 0; off < d.length; off = h.packetEnd) {
    assert.ok(parseHeader(d, off, d.length, 8, h));
    seen.push(h.type);
    if (seen.length > 3) break;
  }
  assert.equal(seen, [PacketType.Initial, PacketType.Handshake, PacketType.OneRtt]);
  // A Length beyond the datagram drops the packet (and the rest).
  writePacketLength(d, 1 + 4 + 1 + 8 + 1 + 2 + 1, 2, 500);
  assert.not.ok(parseHeader(d, 0, d.length, 8, h));
});

test('malformed long headers are dropped, not thrown', () => {
  const h = new PacketHeader();
  const dcid = new Uint8Array(21);
  const b = new Uint8Array(100);
  // CID of 21 bytes in v1: drop.
  b.set(hex('c0 00000001 15'), 0);
  b.set(dcid, 6);
  assert.not.ok(parseHeader(b, 0, 100, 0, h));
  // Truncated everywhere.
  const good = new Uint8Array(64);
  const pn = writeLongHeader(good, 0, PacketType.Initial, QUIC_V1, hex('01020304'), hex('05'), hex('aabbcc'), 0, 1);
  writePacketLength(good, pn - 2, 2, 64 - pn);
  assert.ok(parseHeader(good, 0, 64, 0, h));
  for (let end = 0; end < pn; end++) assert.not.ok(parseHeader(good, 0, end, 0, h), `end ${end}`);
  // Token length beyond the packet.
  const t = good.slice();
  t[12] = 0x3f;
  assert.not.ok(parseHeader(t, 0, 20, 0, h));
  // Fixed bit clear in a v1 long header.
  const f = good.slice();
  f[0] = f[0]! & ~0x40;
  assert.not.ok(parseHeader(f, 0, 64, 0, h));
  // Retry shorter than its tag.
  assert.not.ok(parseHeader(hex('f0 00000001 00 00 0102'), 0, 10, 0, h));
  assert.not.ok(parseHeader(b, 5, 3, 0, h)); // offset past end
});

test('version negotiation and unknown versions', () => {
  const h = new PacketHeader();
  // Unknown version: invariant fields only, long CIDs allowed (RFC 8999).
  const u = new Uint8Array(60);
  u.set(hex('c5 1a2a3a4a 1e'), 0);
  u[6 + 30] = 2;
  assert.ok(parseHeader(u, 0, 60, 0, h));
  assert.is(h.type, PacketType.UnknownVersion);
  assert.is(h.version, 0x1a2a3a4a);
  assert.is(h.dcidLength, 30);
  assert.is(h.scidLength, 2);
  assert.is(h.packetEnd, 60);

  const vn = buildVersionNegotiation(hex('0102030405'), hex('aabb'), [QUIC_V1, QUIC_V2, 0x0a1a2a3a], 0x55);
  assert.is(vn[0], 0x80 | 0x55);
  assert.ok(parseHeader(vn, 0, vn.length, 0, h));
  assert.is(h.type, PacketType.VersionNegotiation);
  const p = parseVersionNegotiation(vn);
  assert.ok(p);
  assert.equal(p!.dcid, hex('aabb'));
  assert.equal(p!.scid, hex('0102030405'));
  assert.equal(p!.versions, [QUIC_V1, QUIC_V2, 0x0a1a2a3a]);
  assert.is(parseVersionNegotiation(vn.subarray(0, vn.length - 1)), null);
  assert.is(parseVersionNegotiation(vn.subarray(0, 14)), null); // no versions
  const notVn = vn.slice();
  notVn[4] = 1;
  assert.is(parseVersionNegotiation(notVn), null);
  assert.is(parseVersionNegotiation(hex('4000')), null);

  assert.ok(isSupportedVersion(QUIC_V1) && isSupportedVersion(QUIC_V2) && !isSupportedVersion(0xff00001d));
  assert.ok(isReservedVersion(0x0a0a0a0a) && isReservedVersion(0xfafafafa) && isReservedVersion(0x1a2a3a4a));
  assert.not.ok(isReservedVersion(QUIC_V1));
  for (const seed of [0, 1, 0x12345678, 0xffffffff]) assert.ok(isReservedVersion(greaseVersion(seed)));
});

test('stateless reset: build, detect, sizes', () => {
  const token = hex('00112233445566778899aabbccddeeff');
  const rnd = new Uint8Array(100).fill(0xff);
  const r = writeStatelessReset(new Uint8Array(30), token, rnd);
  assert.is(r[0]! & 0xc0, 0x40);
  assert.equal(r.subarray(14), token);
  assert.ok(matchesStatelessReset(r, 0, r.length, token));
  const other = token.slice();
  other[15] ^= 1;
  assert.not.ok(matchesStatelessReset(r, 0, r.length, other));
  // Too small to be a reset.
  assert.not.ok(matchesStatelessReset(r, 10, r.length, token));
  assert.throws(() => writeStatelessReset(new Uint8Array(20), token, rnd), (e: unknown) => e instanceof RangeError);
  assert.is(statelessResetSize(1200), 43);
  assert.is(statelessResetSize(30), 29);
  assert.is(statelessResetSize(22), 21);
  assert.is(statelessResetSize(21), 0);
});

test('compatible version negotiation (RFC 9368)', () => {
  const G = 0x1a2a3a4a;
  assert.ok(areCompatibleVersions(QUIC_V1, QUIC_V2) && areCompatibleVersions(QUIC_V2, QUIC_V1));
  assert.not.ok(areCompatibleVersions(QUIC_V1, G));
  assert.ok(areCompatibleVersions(G, G));
  // Server picks by its preference among the client's Available Versions.
  assert.is(negotiateVersion(QUIC_V1, { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1, QUIC_V2] }, [QUIC_V2, QUIC_V1]), QUIC_V2);
  assert.is(negotiateVersion(QUIC_V1, { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1] }, [QUIC_V2, QUIC_V1]), QUIC_V1);
  assert.is(negotiateVersion(QUIC_V2, null), QUIC_V2);
  assert.is(negotiateVersion(QUIC_V1, { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1, QUIC_V2] }), QUIC_V1);
  // Client reacting to VN.
  assert.is(chooseVersionFromNegotiation(G, [QUIC_V2, 0x0a0a0a0a]), QUIC_V2);
  assert.is(chooseVersionFromNegotiation(QUIC_V1, [QUIC_V1, QUIC_V2]), null); // lists the original: ignore
  assert.is(chooseVersionFromNegotiation(G, [0x0a0a0a0a]), null);

  const vne = (f: () => void) => {
    try {
      f();
    } catch (e) {
      assert.instance(e, ProtocolViolation);
      assert.is((e as ProtocolViolation).code, TransportError.VERSION_NEGOTIATION_ERROR);
      return;
    }
    assert.unreachable('accepted');
  };
  validateClientVersionInformation(null, QUIC_V1);
  validateClientVersionInformation({ chosenVersion: QUIC_V1, availableVersions: [QUIC_V1] }, QUIC_V1);
  vne(() => validateClientVersionInformation({ chosenVersion: QUIC_V2, availableVersions: [QUIC_V2] }, QUIC_V1));

  const both = [QUIC_V1, QUIC_V2];
  validateServerVersionInformation(null, QUIC_V1, both, false);
  // RFC 9368 §8: a v1 server without version_information after VN counts as chosen 1 / available [1]...
  validateServerVersionInformation(null, QUIC_V1, both, true);
  // Without the extension, any other version after VN is rejected.
  vne(() => validateServerVersionInformation(null, QUIC_V2, both, true));
  validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: both }, QUIC_V2, both, false);
  vne(() => validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: both }, QUIC_V1, both, false));
  vne(() => validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: both }, QUIC_V2, [QUIC_V1], false));
  // After VN: a server that supports v1 (our first preference) but we ended up on v2 → downgrade.
  vne(() => validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: [QUIC_V1, QUIC_V2] }, QUIC_V2, both, true));
  validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: [QUIC_V2] }, QUIC_V2, both, true);
  vne(() => validateServerVersionInformation({ chosenVersion: QUIC_V2, availableVersions: [] }, QUIC_V2, both, true));
});

test('DatagramPool: committed datagrams are exact-size views that later datagrams never overwrite', () => {
  const pool = new DatagramPool(4096);
  const out: { d: Uint8Array; fill: number }[] = [];
  for (let k = 0; k < 40; k++) {
    const buf = pool.reserve(1200);
    assert.ok(buf.length >= 1200);
    buf.fill(0xee); // scribbles over the whole reservation
    if (k % 5 === 4) {
      pool.release(buf); // nothing to send: the bytes are reused
      continue;
    }
    const used = 100 + 37 * (k % 29);
    buf.fill(k, 0, used);
    const d = pool.commit(buf, used);
    assert.is(d.length, used);
    out.push({ d, fill: k });
  }
  for (const { d, fill } of out) assert.ok(d.every((x) => x === fill), `datagram ${fill} intact`);
  // A nested reservation (a callback building another datagram meanwhile) gets a separate buffer.
  const a = pool.reserve(500);
  const b = pool.reserve(500);
  assert.is.not(a.buffer, b.buffer);
  b.fill(2);
  a.fill(1);
  const db = pool.commit(b, 500);
  const da = pool.commit(a, 500);
  assert.ok(da.every((x) => x === 1) && db.every((x) => x === 2));
  // An abandoned reservation (release() without an argument, after an exception) frees the pool.
  pool.reserve(300);
  pool.release();
  const c = pool.reserve(300);
  assert.is(c.buffer, da.buffer);
});

test.run();
