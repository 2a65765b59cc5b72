/**
 * Fuzzing the packet layer: header parsing and coalesced-packet splitting, header protection removal
 * and decryption, Version Negotiation and Retry parsing, with random and mutated inputs. Header parsing
 * must only return true/false (drop), unprotect only false (or ProtocolViolation for reserved bits),
 * the VN/Retry parsers only null. SEED=n, FUZZ_SCALE=k.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { Rng } from '../../../test/support/rng.js';
import { mutate } from '../../../test/fuzz/mutate.js';
import { providers } from '../../../test/support/providers.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader, writePacketLength, writeShortHeader } from '../src/header.js';
import { initialKeys } from '../src/initial.js';
import { PacketKeys, UnprotectedPacket } from '../src/protection.js';
import { buildRetry, parseRetry } from '../src/retry.js';
import { buildVersionNegotiation, parseVersionNegotiation, QUIC_V1, QUIC_V2 } from '../src/version.js';

const SEED = Number(process.env.SEED ?? 0x5eed);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const DCID = Uint8Array.from([0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]);

/** Same mutator as fuzz-frames.test.ts (test files cannot import each other without running them). */

function fail(i: number, e: unknown, input: Uint8Array): never {
  throw new Error(`seed ${SEED} iteration ${i}: ${(e as Error)?.stack ?? e}\ninput ${Buffer.from(input).toString('hex')}`);
}

/** A few valid datagrams: coalesced Initial+Handshake, a short header packet, VN, Retry. */
function corpus(rng: Rng): Uint8Array[] {
  const provider = providers[0]!;
  const out: Uint8Array[] = [];
  for (const version of [QUIC_V1, QUIC_V2]) {
    const { write } = initialKeys(provider, version, DCID, false);
    const d = new Uint8Array(1200);
    let o = 0;
    for (const type of [PacketType.Initial, PacketType.Handshake]) {
      const pn = writeLongHeader(d, o, type, version, DCID, rng.bytes(4), type === PacketType.Initial ? rng.bytes(rng.int(30)) : null, 3, 2);
      const payloadEnd = pn + 2 + 40;
      d.set(rng.bytes(40), pn + 2);
      writePacketLength(d, pn - 2, 2, payloadEnd + 16 - pn);
      o = write.protect(d, o, pn, 2, payloadEnd, 3);
    }
    const pn = writeShortHeader(d, o, DCID, 9, 1, false);
    o = write.protect(d, o, pn, 1, pn + 1 + 30, 9);
    out.push(d.slice(0, o));
    out.push(buildRetry(provider, version, rng.bytes(8), rng.bytes(8), rng.bytes(20), DCID));
  }
  out.push(buildVersionNegotiation(DCID, rng.bytes(5), [QUIC_V1, QUIC_V2, 0x1a2a3a4a]));
  return out;
}

function checkHeaders(buf: Uint8Array, cidLen: number, h: PacketHeader, i: number): number {
  let n = 0;
  for (let off = 0; off < buf.length && n < 64; n++) {
    let ok: boolean;
    try {
      ok = parseHeader(buf, off, buf.length, cidLen, h, (i & 1) === 1);
    } catch (e) {
      fail(i, e, buf);
    }
    if (!ok) break;
    assert.ok(h.headerOffset === off);
    assert.ok(h.dcidOffset + h.dcidLength <= buf.length);
    assert.ok(h.scidOffset + h.scidLength <= buf.length);
    assert.ok(h.tokenOffset + h.tokenLength <= buf.length);
    assert.ok(h.pnOffset > off && h.pnOffset <= h.packetEnd && h.packetEnd <= buf.length, 'offsets in order');
    off = h.packetEnd;
  }
  return n;
}

test('headers: random and mutated datagrams never throw, offsets stay in bounds', () => {
  const rng = new Rng(SEED);
  const base = corpus(rng);
  const h = new PacketHeader();
  let parsed = 0;
  for (let i = 0; i < 30000 * SCALE; i++) {
    const input = rng.chance(0.3) ? rng.bytes(rng.int(80)) : mutate(rng, rng.pick(base));
    parsed += checkHeaders(input, rng.pick([0, 4, 8, 20]), h, i);
    try {
      const vn = parseVersionNegotiation(input);
      if (vn) assert.ok(vn.versions.length > 0);
    } catch (e) {
      fail(i, e, input);
    }
  }
  assert.ok(parsed > 1000);
});

for (const provider of providers) {
  test(`${provider.name}: unprotect of mutated packets only drops`, () => {
    const rng = new Rng(SEED + 1);
    const base = corpus(rng).slice(0, 1);
    const keys: PacketKeys[] = [QUIC_V1, QUIC_V2].map((v) => initialKeys(provider, v, DCID, true).read);
    const h = new PacketHeader();
    const u = new UnprotectedPacket();
    let opened = 0;
    let dropped = 0;
    for (let i = 0; i < 1500 * SCALE; i++) {
      const mutated = i % 10 !== 0;
      const input = mutated ? mutate(rng, base[0]!) : base[0]!.slice();
      for (let off = 0, n = 0; off < input.length && n < 8; n++) {
        if (!parseHeader(input, off, input.length, 8, h)) break;
        const k = h.version === QUIC_V2 ? keys[1]! : keys[0]!;
        try {
          if (h.type !== PacketType.Retry && h.type !== PacketType.VersionNegotiation && h.type !== PacketType.UnknownVersion) {
            if (k.unprotect(input, h.headerOffset, h.pnOffset, h.packetEnd, rng.int(10) - 1, u)) {
              opened++;
              assert.ok(u.payloadOffset <= u.payloadEnd && u.payloadEnd + 16 === h.packetEnd);
            } else dropped++;
          }
        } catch (e) {
          if (!(e instanceof ProtocolViolation)) fail(i, e, input);
        }
        off = h.packetEnd;
      }
    }
    assert.ok(opened > 0 && dropped > 0, `opened ${opened} dropped ${dropped}`);
  });

  test(`${provider.name}: Retry parsing of mutated packets`, () => {
    const rng = new Rng(SEED + 2);
    const retries = corpus(rng).filter((_, i) => i === 1 || i === 3);
    let valid = 0;
    for (let i = 0; i < 3000 * SCALE; i++) {
      const src = rng.pick(retries);
      const input = i % 20 === 0 ? src : mutate(rng, src);
      try {
        if (parseRetry(provider, input, DCID)) valid++;
      } catch (e) {
        fail(i, e, input);
      }
    }
    assert.ok(valid > 0);
  });
}

test.run();
