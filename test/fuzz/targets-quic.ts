/**
 * QUIC fuzz targets (packages/quic): frames, transport parameters, packet headers (coalesced),
 * Initial packet unprotection, Retry and Version Negotiation parsing.
 *
 * Inputs whose first byte is a selector: the remaining bytes are the wire data, and the selector
 * picks a context (packet type, sender, local CID length) so one corpus covers every context.
 */
import { isDeepStrictEqual } from 'node:util';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import { Frame, FrameType, decodeFrame, encodeFrame, frameSize } from '../../packages/quic/src/frames.js';
import { PacketHeader, PacketType, parseHeader, writeLongHeader, writePacketLength, writeShortHeader } from '../../packages/quic/src/header.js';
import { initialKeys } from '../../packages/quic/src/initial.js';
import { UnprotectedPacket, type PacketKeys } from '../../packages/quic/src/protection.js';
import { buildRetry, parseRetry } from '../../packages/quic/src/retry.js';
import { decodeTransportParameters, encodeTransportParameters, type TransportParameters } from '../../packages/quic/src/transport-params.js';
import { buildVersionNegotiation, parseVersionNegotiation, QUIC_V1, QUIC_V2 } from '../../packages/quic/src/version.js';
import { RecvStream } from '../../packages/quic/src/streams/recv.js';
import { isProtocolViolation } from '../../packages/tls-core/src/errors.js';
import { Rng } from '../support/rng.js';
import { defineTarget, type FuzzTarget } from './engine.js';
import { concat } from './mutate.js';

const PACKET_TYPES = [PacketType.Initial, PacketType.ZeroRtt, PacketType.Handshake, PacketType.OneRtt] as const;
const DCID = Uint8Array.from([0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]);
const invariant = (ok: boolean, msg: string): void => {
  if (!ok) throw new Error(`invariant: ${msg}`);
};

// ---- frames ------------------------------------------------------------------------------------

/** Valid encodings of every frame type (payload bytes taken from `data`, >= 64 bytes): fuzz seeds. */
export function validFrameEncodings(data: Uint8Array): Uint8Array[] {
  const fs: Partial<Frame>[] = [
    { type: FrameType.PADDING, dataLength: 3 },
    { type: FrameType.PING },
    { type: FrameType.ACK, ackDelay: 100, ackRangeCount: 3, ackRanges: [5000, 4000, 300, 200, 20, 0] },
    { type: FrameType.ACK_ECN, ackDelay: 1, ackRangeCount: 1, ackRanges: [9, 1], ect0: 3, ect1: 4, ce: 5 },
    { type: FrameType.RESET_STREAM, streamId: 4, errorCode: 9, finalSize: 1 << 20 },
    { type: FrameType.STOP_SENDING, streamId: 8, errorCode: 2 },
    { type: FrameType.CRYPTO, offset: 1000, dataOffset: 0, dataLength: 40 },
    { type: FrameType.NEW_TOKEN, dataOffset: 0, dataLength: 20 },
    { type: 0x0f, streamId: 12, offset: 2 ** 40, dataOffset: 0, dataLength: 30, fin: true },
    { type: 0x0a, streamId: 1, offset: 0, dataOffset: 0, dataLength: 10 },
    { type: 0x08, streamId: 1, offset: 0, dataOffset: 0, dataLength: 10 },
    { type: FrameType.MAX_DATA, maximum: 2 ** 50 },
    { type: FrameType.MAX_STREAM_DATA, streamId: 3, maximum: 7 },
    { type: FrameType.MAX_STREAMS_BIDI, maximum: 2 ** 60 },
    { type: FrameType.STREAMS_BLOCKED_UNI, maximum: 100 },
    { type: FrameType.DATA_BLOCKED, maximum: 1 },
    { type: FrameType.STREAM_DATA_BLOCKED, streamId: 1, maximum: 1 },
    { type: FrameType.NEW_CONNECTION_ID, sequence: 5, retirePriorTo: 2, dataOffset: 0, dataLength: 8, resetTokenOffset: 10 },
    { type: FrameType.RETIRE_CONNECTION_ID, sequence: 5 },
    { type: FrameType.PATH_CHALLENGE, dataOffset: 0, dataLength: 8 },
    { type: FrameType.PATH_RESPONSE, dataOffset: 8, dataLength: 8 },
    { type: FrameType.CONNECTION_CLOSE, errorCode: 0x0a, frameType: 6, dataOffset: 0, dataLength: 12 },
    { type: FrameType.CONNECTION_CLOSE_APP, errorCode: 0x100, dataOffset: 0, dataLength: 5 },
    { type: FrameType.HANDSHAKE_DONE },
    { type: FrameType.DATAGRAM_LEN, dataOffset: 0, dataLength: 17 },
    { type: FrameType.DATAGRAM, dataOffset: 0, dataLength: 17 },
  ];
  return fs.map((init) => {
    const f = Object.assign(new Frame(), { buf: data }, init);
    const out = new Uint8Array(frameSize(f));
    encodeFrame(out, 0, f);
    return out;
  });
}

/** [packet-type selector][frames...] seeds: one frame each, then multi-frame payloads. */
export function quicFrameSeeds(): Uint8Array[] {
  const rng = new Rng(0xf4a3e5);
  const enc = validFrameEncodings(rng.bytes(64));
  // One frame per seed in a 1-RTT packet, plus a few multi-frame payloads in each packet type.
  const seeds = enc.map((e) => concat(Uint8Array.of(3), e));
  for (let sel = 0; sel < 4; sel++) seeds.push(concat(Uint8Array.of(sel), ...rng.shuffle(enc.slice()).slice(0, 6)));
  return seeds;
}

const HAS_DATA = new Set<number>([0x06, 0x07, 0x18, 0x1a, 0x1b, 0x1c, 0x1d, 0x30, 0x31]);
const frame = new Frame();
const frame2 = new Frame();
const scratch = new Uint8Array(1 << 16);

export const quicFramesTarget = defineTarget({
  name: 'quic-frames',
  description: 'decodeFrame over a packet payload (byte 0 selects the packet type); decoded frames re-encode and decode the same',
  seeds: quicFrameSeeds,
  dict: [Uint8Array.of(0x02), Uint8Array.of(0x03), Uint8Array.of(0x06), Uint8Array.of(0x0f), Uint8Array.of(0x18), Uint8Array.of(0x1c), Uint8Array.of(0x30, 0x31)],
  run: (input) => {
    if (input.length === 0) return;
    const pt = PACKET_TYPES[input[0]! & 3]!;
    const buf = input.subarray(1);
    for (let o = 0; o < buf.length; ) {
      const next = decodeFrame(buf, o, buf.length, pt, frame);
      invariant(next > o && next <= buf.length, `progress ${o} -> ${next}`);
      // (Fields a frame type does not use keep stale values, so only the byte payloads are checked.)
      if (HAS_DATA.has(frame.type) || (frame.type >= 0x08 && frame.type <= 0x0f)) invariant(frame.dataOffset + frame.dataLength <= next, 'payload inside the frame');
      const size = frameSize(frame);
      if (frame.type !== FrameType.PADDING) invariant(size <= next - o, `re-encoded size ${size} > ${next - o}`);
      const end = encodeFrame(scratch, 0, frame);
      invariant(end === size, 'encodeFrame size == frameSize');
      invariant(decodeFrame(scratch, 0, end, pt, frame2) === end, 're-decode consumes the re-encoding');
      o = next;
    }
  },
});

// ---- transport parameters ----------------------------------------------------------------------

/** Valid transport parameters as each role sends them (every parameter set on the server side): fuzz seeds. */
export function validTransportParams(rng: Rng): { bytes: Uint8Array; sender: 'client' | 'server' }[] {
  const server: Partial<TransportParameters> = {
    originalDestinationConnectionId: rng.bytes(8),
    maxIdleTimeout: 30000,
    statelessResetToken: rng.bytes(16),
    maxUdpPayloadSize: 1500,
    initialMaxData: 1 << 24,
    initialMaxStreamDataBidiLocal: 1 << 20,
    initialMaxStreamDataBidiRemote: 1 << 20,
    initialMaxStreamDataUni: 1 << 20,
    initialMaxStreamsBidi: 100,
    initialMaxStreamsUni: 3,
    ackDelayExponent: 5,
    maxAckDelay: 30,
    disableActiveMigration: true,
    preferredAddress: { ipv4: rng.bytes(4), ipv4Port: 443, ipv6: rng.bytes(16), ipv6Port: 443, connectionId: rng.bytes(8), statelessResetToken: rng.bytes(16) },
    activeConnectionIdLimit: 4,
    initialSourceConnectionId: rng.bytes(8),
    retrySourceConnectionId: rng.bytes(8),
    maxDatagramFrameSize: 1200,
    versionInformation: { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1, QUIC_V2] },
    greaseQuicBit: true,
  };
  const client: Partial<TransportParameters> = {
    initialSourceConnectionId: rng.bytes(4),
    initialMaxData: 2 ** 40,
    initialMaxStreamsBidi: 2 ** 60,
    versionInformation: { chosenVersion: QUIC_V2, availableVersions: [QUIC_V2, QUIC_V1] },
  };
  return [
    { bytes: encodeTransportParameters(server, 'server', { greaseN: 3 }), sender: 'server' },
    { bytes: encodeTransportParameters(client, 'client'), sender: 'client' },
  ];
}

function tpSeeds(): Uint8Array[] {
  return validTransportParams(new Rng(0x7a9)).map((p) => concat(Uint8Array.of(p.sender === 'server' ? 1 : 0), p.bytes));
}

export const quicTransportParamsTarget = defineTarget({
  name: 'quic-transport-params',
  description: 'decodeTransportParameters (byte 0: sender client/server); accepted sets re-encode to the same values',
  seeds: tpSeeds,
  run: (input) => {
    if (input.length === 0) return;
    const sender = input[0]! & 1 ? 'server' : 'client';
    const p = decodeTransportParameters(input.subarray(1), sender);
    const again = decodeTransportParameters(encodeTransportParameters(p, sender), sender);
    invariant(isDeepStrictEqual(again, p), 'transport parameters round trip');
  },
});

// ---- headers, Initial unprotection, Retry, VN ----------------------------------------------------

interface PacketSeeds {
  datagrams: Uint8Array[];
  retries: Uint8Array[];
  vn: Uint8Array;
}
let packetSeedCache: PacketSeeds | undefined;

/** Coalesced Initial+Handshake+1-RTT datagrams (v1, v2) protected with the client Initial keys, Retry, VN. */
function packetSeeds(): PacketSeeds {
  if (packetSeedCache) return packetSeedCache;
  const rng = new Rng(0x9ac);
  const datagrams: Uint8Array[] = [];
  const retries: Uint8Array[] = [];
  for (const version of [QUIC_V1, QUIC_V2]) {
    const { write } = initialKeys(nodeProvider, version, DCID, false);
    const d = new Uint8Array(1200);
    let o = 0;
    for (const type of [PacketType.Initial, PacketType.Handshake]) {
      const pn = writeLongHeader(d, o, type, version, DCID, rng.bytes(4), type === PacketType.Initial ? rng.bytes(12) : null, 3, 2);
      const payloadEnd = pn + 2 + 40;
      d.set(rng.bytes(40), pn + 2);
      writePacketLength(d, pn - 2, 2, payloadEnd + 16 - pn);
      o = write.protect(d, o, pn, 2, payloadEnd, 3);
    }
    const pn = writeShortHeader(d, o, DCID, 9, 1, false);
    o = write.protect(d, o, pn, 1, pn + 1 + 30, 9);
    datagrams.push(d.slice(0, o));
    retries.push(buildRetry(nodeProvider, version, rng.bytes(8), rng.bytes(8), rng.bytes(20), DCID));
  }
  packetSeedCache = { datagrams, retries, vn: buildVersionNegotiation(DCID, rng.bytes(5), [QUIC_V1, QUIC_V2, 0x1a2a3a4a]) };
  return packetSeedCache;
}

const hdr = new PacketHeader();
const CID_LENGTHS = [0, 4, 8, 20];

export const quicHeaderTarget = defineTarget({
  name: 'quic-header',
  description: 'parseHeader over a coalesced datagram (byte 0: local CID length, grease bit), offsets in bounds; parseVersionNegotiation',
  seeds: () => {
    const s = packetSeeds();
    return [...s.datagrams, ...s.retries, s.vn].flatMap((d) => [concat(Uint8Array.of(2), d), concat(Uint8Array.of(1), d)]);
  },
  strict: true, // parseHeader returns false to drop; it never throws
  run: (input) => {
    if (input.length === 0) return;
    const cidLen = CID_LENGTHS[input[0]! & 3]!;
    const buf = input.subarray(1);
    for (let off = 0, n = 0; off < buf.length && n < 64; n++) {
      if (!parseHeader(buf, off, buf.length, cidLen, hdr, (input[0]! & 4) !== 0)) break;
      invariant(hdr.headerOffset === off, 'headerOffset');
      invariant(hdr.dcidOffset + hdr.dcidLength <= buf.length, 'dcid in bounds');
      invariant(hdr.scidOffset + hdr.scidLength <= buf.length, 'scid in bounds');
      invariant(hdr.tokenOffset + hdr.tokenLength <= buf.length, 'token in bounds');
      invariant(hdr.pnOffset > off && hdr.pnOffset <= hdr.packetEnd && hdr.packetEnd <= buf.length, 'offsets in order');
      off = hdr.packetEnd;
    }
    const vn = parseVersionNegotiation(buf);
    if (vn) invariant(vn.versions.length > 0, 'VN lists versions');
  },
});

let initialReadKeys: PacketKeys[] | undefined;
const unprotected = new UnprotectedPacket();

export const quicInitialTarget = defineTarget({
  name: 'quic-initial-unprotect',
  description: 'server side: parseHeader + header protection removal + AEAD open with Initial keys (v1/v2, node provider)',
  seeds: () => packetSeeds().datagrams,
  run: (input) => {
    initialReadKeys ??= [QUIC_V1, QUIC_V2].map((v) => initialKeys(nodeProvider, v, DCID, true).read);
    for (let off = 0, n = 0; off < input.length && n < 8; n++) {
      if (!parseHeader(input, off, input.length, 8, hdr)) break;
      if (hdr.type !== PacketType.Retry && hdr.type !== PacketType.VersionNegotiation && hdr.type !== PacketType.UnknownVersion) {
        const k = hdr.version === QUIC_V2 ? initialReadKeys[1]! : initialReadKeys[0]!;
        if (k.unprotect(input, hdr.headerOffset, hdr.pnOffset, hdr.packetEnd, 2, unprotected)) {
          invariant(unprotected.payloadOffset <= unprotected.payloadEnd && unprotected.payloadEnd + 16 === hdr.packetEnd, 'payload bounds');
        }
      }
      off = hdr.packetEnd;
    }
  },
});

export const quicRetryTarget = defineTarget({
  name: 'quic-retry',
  description: 'parseRetry (integrity tag check, v1/v2): returns null for anything invalid, never throws',
  seeds: () => packetSeeds().retries,
  strict: true,
  run: (input) => {
    const r = parseRetry(nodeProvider, input, DCID);
    if (r) invariant(r.token.length > 0 && r.scid.length <= 20 && r.dcid.length <= 20, 'retry fields');
  },
});

// ---- stream receive state machine (stateful, with invariants) -----------------------------------

/** Stream byte at absolute offset o: retransmissions are consistent, reads are checkable. */
const streamByte = (o: number) => (o * 31 + (o >>> 8)) & 0xff;
function streamData(offset: number, len: number): Uint8Array {
  const d = new Uint8Array(len);
  for (let i = 0; i < len; i++) d[i] = streamByte(offset + i);
  return d;
}

const RECV_WINDOW = 40_000;

interface RecvSim {
  s: RecvStream;
  readPos: number;
}

function recvSnapshot(s: RecvStream): string {
  return `${s.state} ${s.highest} ${s.finalSize} ${s.resetCode} ${s.readable} ${s.stopSendingCode}`;
}

function recvOpsSeed(ops: [number, number, number][]): Uint8Array {
  return Uint8Array.from(ops.flatMap(([op, a, b]) => [op, a >> 8, a & 0xff, b]));
}

export const quicRecvStreamTarget = defineTarget<RecvSim>({
  name: 'quic-recv-stream',
  description: 'RecvStream driven by 4-byte ops (STREAM frames with consistent data, RESET_STREAM, reads, STOP_SENDING): reads return the right bytes, a rejected frame changes no state, flow control holds',
  seeds: () => [
    // In order, out of order with overlap, FIN, reads.
    recvOpsSeed([[0, 0, 200], [0, 200, 255], [2, 0, 100], [0, 400, 50], [0 | 4, 455, 10], [0, 100, 255], [3, 0, 0]]),
    recvOpsSeed([[0, 1000, 255], [0, 0, 255], [2, 0, 0], [2 | 4, 3000, 9], [2, 0, 0], [0, 10, 20]]),
    recvOpsSeed([[0, 0, 100], [3 | 4, 0, 7], [0, 100, 100], [0 | 4, 200, 0], [3, 0, 0]]),
    recvOpsSeed([[0, 39_900, 100], [0, 39_990, 255]]),
  ],
  run: (input) => {
    const s = new RecvStream(0, { window: RECV_WINDOW });
    const st: RecvSim = { s, readPos: 0 };
    const readSome = (max: number) => {
      const c = s.read(max);
      if (!c) return;
      for (let k = 0; k < c.length; k++) invariant(c[k] === streamByte(st.readPos + k), `byte at ${st.readPos + k} read wrong`);
      st.readPos += c.length;
    };
    for (let i = 0; i + 4 <= input.length; i += 4) {
      const op = input[i]! & 3;
      const flag = (input[i]! & 4) !== 0;
      const a = (input[i + 1]! << 8) | input[i + 2]!;
      const b = input[i + 3]!;
      const before = recvSnapshot(s);
      try {
        if (op <= 1) s.onStreamFrame(a, streamData(a, b), flag);
        else if (op === 2) {
          if (flag) s.onResetStream(b, a);
          else readSome(b || Infinity);
        } else if (flag) s.stopSending(b);
        else for (let k = 0; k < 1000 && s.readable > 0; k++) readSome(Infinity);
      } catch (e) {
        if (!isProtocolViolation(e)) throw e;
        invariant(recvSnapshot(s) === before, `state changed by a rejected op: ${before} -> ${recvSnapshot(s)}`);
        throw e; // the connection closes here
      }
    }
    return st;
  },
  check: (st) => {
    const s = st.s;
    invariant(st.readPos <= s.highest, `read ${st.readPos} beyond highest ${s.highest}`);
    invariant(s.highest <= RECV_WINDOW, `highest ${s.highest} beyond the flow-control window`);
    if (s.finalSize >= 0) invariant(s.highest <= s.finalSize, 'data beyond the final size');
    if (s.isFinished) invariant(st.readPos === s.finalSize, `finished after ${st.readPos} of ${s.finalSize}`);
  },
  signature: (st) => `${st.s.state}${st.readPos > 0 ? ' read' : ''}`,
});

export const quicTargets: FuzzTarget[] = [quicFramesTarget, quicTransportParamsTarget, quicHeaderTarget, quicInitialTarget, quicRetryTarget, quicRecvStreamTarget];
