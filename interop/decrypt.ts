/**
 * Checks that need the plaintext of the relay's datagrams (the official runner decrypts its pcaps
 * with the endpoints' key logs): the relay logs whole datagrams (`--log-payload`, field `hex`) for
 * the cases below, and our endpoint's SSLKEYLOGFILE has the secrets of both directions.
 *
 * - keyupdate: 1-RTT packets with key phase 1 in both directions (the client updated, the server
 *   answered with updated keys, RFC 9001 §6).
 * - multiplexing: the server's initial_max_streams_bidi (from its EncryptedExtensions) is at most
 *   1000, so the client really has to wait for MAX_STREAMS (testcases.py: "stream limit > 1000").
 * - rebind-port / rebind-addr: after each NAT rebinding, the server's first packet to the new
 *   address carries PATH_CHALLENGE (RFC 9000 §9.3: the server validates the new address).
 * - connectionmigration: the client's first packet on its new path carries PATH_CHALLENGE (§9.1).
 */
import fs from 'node:fs';
import { getProvider } from '../packages/tls-core/src/crypto/index.js';
import { FrameType, type Frame } from '../packages/quic/src/frames.js';
import { PacketType } from '../packages/quic/src/header.js';
import { decodeTransportParameters } from '../packages/quic/src/transport-params.js';
import { PacketInspector, type OpenedPacket } from '../test/support/quic-pair.js';
import type { SimRecord } from './runner.js';

/** Cases whose relay log carries whole datagrams and gets the checks below. */
export const DECRYPT_TESTS = new Set(['keyupdate', 'multiplexing', 'rebind-port', 'rebind-addr', 'connectionmigration']);

type Rec = SimRecord;

/** Opens the relay's datagrams with the key log; one inspector per direction (short headers carry the receiver's CID length). */
class Opener {
  private readonly up: PacketInspector;
  private readonly down: PacketInspector;
  constructor(keyLog: string[], log: Rec[]) {
    const provider = getProvider('node');
    // CID lengths from the long headers: up packets are addressed to the server's CID, down to the client's.
    const serverCid = log.find((r) => r.dir === 'down' && r.scid !== undefined)?.scid?.length ?? 16;
    const clientCid = log.find((r) => r.dir === 'up' && r.scid !== undefined)?.scid?.length ?? 16;
    this.up = new PacketInspector(provider, keyLog, serverCid / 2);
    this.down = new PacketInspector(provider, keyLog, clientCid / 2);
  }
  open(r: Rec): OpenedPacket[] {
    if (!r.hex || (r.dir !== 'up' && r.dir !== 'down') || r.type === 'cross') return [];
    const data = new Uint8Array(Buffer.from(r.hex, 'hex'));
    return (r.dir === 'up' ? this.up : this.down).open(r.dir, data);
  }
}

const frames = (p: OpenedPacket): Frame[] => PacketInspector.frames(p);
const has = (ps: OpenedPacket[], type: number) => ps.some((p) => frames(p).some((f) => f.type === type));

export function readKeyLog(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The decryption checks of `test`; null when they pass, else why not. `summary` gets what was seen. */
export function checkDecrypted(test: string, log: Rec[], keyLog: string[], summary: string[] = []): string | null {
  if (!DECRYPT_TESTS.has(test)) return null;
  if (!log.some((r) => r.hex)) return 'relay log has no datagram payloads (--log-payload)';
  if (!keyLog.some((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0'))) return 'no 1-RTT secrets in the key log';
  const opener = new Opener(keyLog, log);
  // Open in order (packet number decoding and key generations depend on it); dropped datagrams never arrived.
  const opened = new Map<Rec, OpenedPacket[]>();
  for (const r of log) if (r.dir && r.fate !== 'dropped' && r.hex) opened.set(r, opener.open(r));
  const all = (dir: 'up' | 'down') => [...opened.entries()].filter(([r]) => r.dir === dir).flatMap(([, ps]) => ps);

  if (test === 'keyupdate') {
    const phase1 = (dir: 'up' | 'down') => all(dir).filter((p) => p.type === PacketType.OneRtt && p.keyPhase).length;
    const up = phase1('up');
    const down = phase1('down');
    const oneRtt = all('up').filter((p) => p.type === PacketType.OneRtt).length + all('down').filter((p) => p.type === PacketType.OneRtt).length;
    summary.push(`key phase 1: ${up} client / ${down} server packets (of ${oneRtt} 1-RTT opened)`);
    if (oneRtt === 0) return 'no 1-RTT packet could be opened with the key log';
    if (up === 0) return 'the client never sent a 1-RTT packet with key phase 1';
    if (down === 0) return 'the server never sent a 1-RTT packet with key phase 1';
    return null;
  }

  if (test === 'multiplexing') {
    // The server's Handshake CRYPTO stream: EncryptedExtensions (type 8) comes first.
    const chunks: { offset: number; data: Uint8Array }[] = [];
    for (const p of all('down')) if (p.type === PacketType.Handshake) for (const f of frames(p)) if (f.type === FrameType.CRYPTO) chunks.push({ offset: f.offset, data: f.data() });
    const stream = assemble(chunks);
    if (stream.length < 4 || stream[0] !== 8) return 'could not read the server\'s EncryptedExtensions from its Handshake packets';
    const len = (stream[1]! << 16) | (stream[2]! << 8) | stream[3]!;
    if (stream.length < 4 + len) return 'the server\'s EncryptedExtensions is incomplete in the relay log';
    const ee = stream.subarray(4, 4 + len);
    let o = 2;
    const end = 2 + ((ee[0]! << 8) | ee[1]!);
    while (o + 4 <= end) {
      const type = (ee[o]! << 8) | ee[o + 1]!;
      const n = (ee[o + 2]! << 8) | ee[o + 3]!;
      if (type === 0x39) {
        const tp = decodeTransportParameters(ee.subarray(o + 4, o + 4 + n), 'server');
        summary.push(`server initial_max_streams_bidi ${tp.initialMaxStreamsBidi}`);
        return tp.initialMaxStreamsBidi <= 1000 ? null : `the server's initial_max_streams_bidi is ${tp.initialMaxStreamsBidi} (> 1000): multiplexing not exercised`;
      }
      o += 4 + n;
    }
    return 'no quic_transport_parameters in the server\'s EncryptedExtensions';
  }

  if (test === 'rebind-port' || test === 'rebind-addr') {
    // After a rebinding the old server-facing socket is closed: every later down datagram is a
    // server packet to the new address. The first one that arrives after the server saw the new
    // address (the first up datagram after the rebinding reaching it) must challenge it.
    const rebinds = log.filter((r) => r.event === 'rebind' && !r.follow);
    let checked = 0;
    for (const rb of rebinds) {
      const first = log.find((r) => r.dir === 'down' && r.t > rb.t && r.type !== 'cross');
      if (!first) continue;
      const ps = opened.get(first) ?? [];
      if (ps.length === 0) continue; // a datagram the key log cannot open (e.g. dropped by the link): not judged
      checked++;
      if (!has(ps, FrameType.PATH_CHALLENGE)) {
        const kinds = ps.flatMap(frames).map((f) => `0x${f.type.toString(16)}`).join(',');
        return `the server's first packet to the new address after the rebinding at t=${Math.round(rb.t)} ms carries no PATH_CHALLENGE (frames ${kinds})`;
      }
    }
    summary.push(`${checked} of ${rebinds.length} rebindings: the server's first packet to the new address carries PATH_CHALLENGE`);
    return checked ? null : 'no server packet to a new address could be opened';
  }

  if (test === 'connectionmigration') {
    const clients = log.filter((r) => r.event === 'client');
    if (clients.length < 2) return 'the client never moved';
    let checked = 0;
    for (const c of clients.slice(1)) {
      const first = log.find((r) => r.dir === 'up' && r.t >= c.t);
      if (!first) continue;
      const ps = opened.get(first) ?? [];
      if (ps.length === 0) continue;
      checked++;
      if (!has(ps, FrameType.PATH_CHALLENGE)) {
        const kinds = ps.flatMap(frames).map((f) => `0x${f.type.toString(16)}`).join(',');
        return `the client's first packet on its new path (t=${Math.round(c.t)} ms) carries no PATH_CHALLENGE (frames ${kinds})`;
      }
    }
    summary.push(`${checked} migration(s): the client's first packet on the new path carries PATH_CHALLENGE`);
    return checked ? null : 'the client\'s first packet on its new path could not be opened';
  }
  return null;
}

/** The contiguous prefix of a stream from (possibly overlapping, out of order) chunks. */
function assemble(chunks: { offset: number; data: Uint8Array }[]): Uint8Array {
  chunks.sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const c of chunks) if (c.offset <= end) end = Math.max(end, c.offset + c.data.length);
  const out = new Uint8Array(end);
  for (const c of chunks) if (c.offset < end) out.set(c.data.subarray(0, Math.min(c.data.length, end - c.offset)), c.offset);
  return out;
}
