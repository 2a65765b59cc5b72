/** Transport parameters (RFC 9000 §18, RFC 9221, RFC 9368, RFC 9287): round trips, defaults, every error. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, ProtocolViolation } from '@petrel/tls-core';
import {
  type TransportParameters,
  decodeTransportParameters,
  defaultTransportParameters,
  encodeTransportParameters,
} from '../src/transport-params.js';
import { TransportError } from '../src/errors.js';
import { QUIC_V1, QUIC_V2 } from '../src/version.js';
import { writeVarint } from '../src/varint.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));
const SCID = hex('0102030405');
const ODCID = hex('8394c8f03e515708');

/** Encodes raw (id, value) pairs. */
function raw(...params: [number, Uint8Array][]): Uint8Array {
  const out = new Uint8Array(4096);
  let o = 0;
  for (const [id, v] of params) {
    o = writeVarint(out, o, id);
    o = writeVarint(out, o, v.length);
    out.set(v, o);
    o += v.length;
  }
  return out.slice(0, o);
}
function vi(v: number): Uint8Array {
  const b = new Uint8Array(8);
  return b.slice(0, writeVarint(b, 0, v));
}
const ISCID: [number, Uint8Array] = [0x0f, SCID];
const SERVER_REQUIRED: [number, Uint8Array][] = [ISCID, [0x00, ODCID]];

function expectTpError(bytes: Uint8Array, sender: 'client' | 'server', why: string): void {
  try {
    decodeTransportParameters(bytes, sender);
  } catch (e) {
    assert.instance(e, ProtocolViolation, why);
    assert.is((e as ProtocolViolation).code, TransportError.TRANSPORT_PARAMETER_ERROR, why);
    return;
  }
  assert.unreachable(`accepted: ${why}`);
}

test('defaults when absent', () => {
  const p = decodeTransportParameters(raw(ISCID), 'client');
  const d = defaultTransportParameters();
  assert.equal({ ...p, initialSourceConnectionId: null }, d);
  assert.equal(p.initialSourceConnectionId, SCID);
  assert.is(d.maxUdpPayloadSize, 65527);
  assert.is(d.ackDelayExponent, 3);
  assert.is(d.maxAckDelay, 25);
  assert.is(d.activeConnectionIdLimit, 2);
  assert.is(d.maxDatagramFrameSize, null);
});

test('full server round trip', () => {
  const p: TransportParameters = {
    originalDestinationConnectionId: ODCID,
    maxIdleTimeout: 30000,
    statelessResetToken: new Uint8Array(16).fill(0xab),
    maxUdpPayloadSize: 1452,
    initialMaxData: 2 ** 40,
    initialMaxStreamDataBidiLocal: 1 << 20,
    initialMaxStreamDataBidiRemote: (1 << 20) + 1,
    initialMaxStreamDataUni: 65536,
    initialMaxStreamsBidi: 2 ** 60,
    initialMaxStreamsUni: 3,
    ackDelayExponent: 20,
    maxAckDelay: 16383,
    disableActiveMigration: true,
    preferredAddress: {
      ipv4: hex('7f000001'),
      ipv4Port: 4433,
      ipv6: new Uint8Array(16).fill(1),
      ipv6Port: 65535,
      connectionId: hex('dddddddd'),
      statelessResetToken: new Uint8Array(16).fill(2),
    },
    activeConnectionIdLimit: 8,
    initialSourceConnectionId: SCID,
    retrySourceConnectionId: hex('99'),
    maxDatagramFrameSize: 65535,
    versionInformation: { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1, QUIC_V2] },
    greaseQuicBit: true,
  };
  const enc = encodeTransportParameters(p, 'server', { greaseN: 5 });
  const dec = decodeTransportParameters(enc, 'server');
  assert.equal(dec, p);
});

test('client round trip; zero-length CIDs; max values', () => {
  const p: Partial<TransportParameters> = {
    initialSourceConnectionId: new Uint8Array(0),
    initialMaxData: 2 ** 62,
    maxDatagramFrameSize: 0,
    versionInformation: { chosenVersion: QUIC_V2, availableVersions: [QUIC_V2, QUIC_V1] },
  };
  const dec = decodeTransportParameters(encodeTransportParameters(p, 'client'), 'client');
  assert.equal(dec.initialSourceConnectionId, new Uint8Array(0));
  assert.is(dec.initialMaxData, 2 ** 62);
  assert.is(dec.maxDatagramFrameSize, 0);
  assert.equal(dec.versionInformation, p.versionInformation);
  // Explicit undefined means "default".
  const u = decodeTransportParameters(encodeTransportParameters({ initialSourceConnectionId: SCID, maxDatagramFrameSize: undefined, maxAckDelay: undefined } as Partial<TransportParameters>, 'client'), 'client');
  assert.is(u.maxDatagramFrameSize, null);
  assert.is(u.maxAckDelay, 25);
  // Defaults are not written.
  assert.is(encodeTransportParameters({ initialSourceConnectionId: SCID }, 'client').length, 2 + 5);
});

test('unknown and reserved parameters are ignored', () => {
  const p = decodeTransportParameters(raw(ISCID, [31 * 7 + 27, hex('0102')], [0x1234, new Uint8Array(100)], [0x04, vi(9)]), 'client');
  assert.is(p.initialMaxData, 9);
});

test('errors: duplicates, framing', () => {
  expectTpError(raw(ISCID, [0x04, vi(1)], [0x04, vi(1)]), 'client', 'duplicate');
  expectTpError(raw(ISCID, [0x7777, hex('')], [0x7777, hex('')]), 'client', 'duplicate unknown');
  expectTpError(hex('0f 05 0102'), 'client', 'truncated value');
  expectTpError(hex('0f'), 'client', 'truncated length');
  expectTpError(hex('40'), 'client', 'truncated id');
  expectTpError(raw(ISCID, [0x04, hex('4001 00')]), 'client', 'trailing bytes in an int');
  expectTpError(raw(ISCID, [0x04, hex('')]), 'client', 'empty int');
  expectTpError(raw(ISCID, [0x04, hex('40')]), 'client', 'truncated int');
});

test('errors: out-of-range values', () => {
  expectTpError(raw(ISCID, [0x03, vi(1199)]), 'client', 'max_udp_payload_size < 1200');
  decodeTransportParameters(raw(ISCID, [0x03, vi(1200)]), 'client');
  expectTpError(raw(ISCID, [0x0a, vi(21)]), 'client', 'ack_delay_exponent > 20');
  decodeTransportParameters(raw(ISCID, [0x0a, vi(20)]), 'client');
  expectTpError(raw(ISCID, [0x0b, vi(16384)]), 'client', 'max_ack_delay >= 2^14');
  expectTpError(raw(ISCID, [0x0e, vi(1)]), 'client', 'active_connection_id_limit < 2');
  expectTpError(raw(ISCID, [0x0e, vi(0)]), 'client', 'active_connection_id_limit 0');
  expectTpError(raw(ISCID, [0x08, hex('d000000000000001')]), 'client', 'max streams bidi > 2^60');
  expectTpError(raw(ISCID, [0x09, hex('ffffffffffffffff')]), 'client', 'max streams uni > 2^60');
  decodeTransportParameters(raw(ISCID, [0x09, hex('d000000000000000')]), 'client');
  expectTpError(raw(ISCID, [0x0c, hex('00')]), 'client', 'disable_active_migration non-empty');
  expectTpError(raw(ISCID, [0x2ab2, hex('00')]), 'client', 'grease_quic_bit non-empty');
  expectTpError(raw([0x0f, new Uint8Array(21)]), 'client', 'CID > 20');
  expectTpError(raw(ISCID, [0x00, new Uint8Array(21)]), 'server', 'ODCID > 20');
  expectTpError(raw(...SERVER_REQUIRED, [0x02, new Uint8Array(15)]), 'server', 'reset token 15 bytes');
});

test('errors: server-only parameters from a client, missing required', () => {
  for (const [id, v] of [
    [0x00, ODCID],
    [0x02, new Uint8Array(16)],
    [0x10, hex('01')],
  ] as [number, Uint8Array][]) {
    expectTpError(raw(ISCID, [id, v]), 'client', `server-only 0x${id.toString(16)}`);
    decodeTransportParameters(raw(...SERVER_REQUIRED, ...(id === 0 ? [] : [[id, v] as [number, Uint8Array]])), 'server');
  }
  expectTpError(raw(), 'client', 'missing initial_source_connection_id');
  expectTpError(raw(ISCID), 'server', 'missing original_destination_connection_id');
});

test('preferred_address validation', () => {
  const pa = (cidLen: number, extra = 0) => {
    const b = new Uint8Array(41 + cidLen + extra);
    b[24] = cidLen;
    return b;
  };
  const ok = decodeTransportParameters(raw(...SERVER_REQUIRED, [0x0d, pa(4)]), 'server');
  assert.is(ok.preferredAddress!.connectionId.length, 4);
  expectTpError(raw(...SERVER_REQUIRED, [0x0d, pa(0)]), 'server', 'zero-length CID');
  expectTpError(raw(...SERVER_REQUIRED, [0x0d, pa(4, 1)]), 'server', 'trailing byte');
  expectTpError(raw(...SERVER_REQUIRED, [0x0d, pa(4).subarray(0, 44)]), 'server', 'short');
  expectTpError(raw(...SERVER_REQUIRED, [0x0d, pa(21)]), 'server', 'CID 21');
  expectTpError(raw(ISCID, [0x0d, pa(4)]), 'client', 'from client');
});

test('version_information validation (RFC 9368 §4)', () => {
  const v = (...vs: number[]) => {
    const b = new Uint8Array(4 * vs.length);
    const dv = new DataView(b.buffer);
    vs.forEach((x, i) => dv.setUint32(4 * i, x));
    return b;
  };
  decodeTransportParameters(raw(ISCID, [0x11, v(QUIC_V1, QUIC_V1)]), 'client');
  // A server's version_information need not list the chosen version in Available Versions.
  decodeTransportParameters(raw(...SERVER_REQUIRED, [0x11, v(QUIC_V1, QUIC_V2)]), 'server');
  expectTpError(raw(ISCID, [0x11, v(QUIC_V1, QUIC_V2)]), 'client', 'client chosen not available');
  expectTpError(raw(ISCID, [0x11, v(0, 0)]), 'client', 'chosen 0');
  expectTpError(raw(ISCID, [0x11, v(QUIC_V1, 0, QUIC_V1)]), 'client', 'available 0');
  expectTpError(raw(ISCID, [0x11, hex('')]), 'client', 'empty');
  expectTpError(raw(ISCID, [0x11, hex('0000000101')]), 'client', 'not a multiple of 4');
});

test('encoder refuses what must not be sent', () => {
  assert.throws(() => encodeTransportParameters({ originalDestinationConnectionId: ODCID }, 'client'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ statelessResetToken: new Uint8Array(16) }, 'client'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ maxUdpPayloadSize: 1000 }, 'server'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ ackDelayExponent: 21 }, 'server'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ maxAckDelay: 1 << 14 }, 'server'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ activeConnectionIdLimit: 1 }, 'server'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ initialMaxStreamsUni: 2 ** 61 }, 'server'), (e: unknown) => e instanceof ConfigError);
  assert.throws(() => encodeTransportParameters({ initialSourceConnectionId: new Uint8Array(21) }, 'server'), (e: unknown) => e instanceof ConfigError);
});

test.run();
