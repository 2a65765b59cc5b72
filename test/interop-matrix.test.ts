/**
 * The interop matrix under network conditions, CI subset (interop/runner.ts through the netsim
 * relay, each case in its own network namespace): the official runner's checks on synthetic relay
 * logs (each must be able to fail), then a reduced live subset against quic-go, ngtcp2 and our own
 * server: amplificationlimit (9-certificate chain, client datagrams 2-7 dropped), handshakeloss
 * (8 handshakes under 30% loss), transferloss (1 MB, 2% loss), rebind-port (3 MB, rebinding 1 s
 * after the first datagram), connectionmigration (our client's migrate(); ngtcp2's
 * --change-local-addr). Skips loudly when root / a peer is missing. The full matrix:
 * `pnpm interop -- --all` (interop/RESULTS.md).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { coalescedTypes, longHeaderIds, packetType } from '../interop/netsim/classify.js';
import { checkDecrypted } from '../interop/decrypt.js';
import { Pair, readAll } from '../packages/quic/test/connection-harness.js';
import { providers } from './support/providers.js';
import { startRelay } from '../interop/netsim/relay.js';
import {
  checkAmplification,
  checkNewDcidOnMigration,
  countHandshakes,
  firstFlight,
  goodputKbps,
  initialsBeforeReply,
  lacks,
  matrix,
  qlogBogusAcks,
  runCase,
  scenario,
  serverVersions,
  testname,
  unavailable,
  type CaseResult,
  type Role,
  type RunOptions,
  type SimRecord,
} from '../interop/runner.js';

// ------------------------------------------------------------------------------------------------
// The checks, on synthetic relay logs

const up = (t: number, type: string, size: number, extra: Partial<SimRecord> = {}): SimRecord => ({ t, dir: 'up', type, size, fate: 'forwarded', at: t + 15, ...extra });
const down = (t: number, type: string, size: number, extra: Partial<SimRecord> = {}): SimRecord => ({ t, dir: 'down', type, size, fate: 'forwarded', at: t + 15, ...extra });

test('handshakes are counted by distinct server Initial SCIDs; versions from server Initials', () => {
  const log = [up(0, 'initial', 1200, { scid: 'c1' }), down(20, 'initial', 1200, { scid: 's1', v: '1' }), down(21, 'initial', 1200, { scid: 's1', v: '1' }), down(400, 'initial', 1200, { scid: 's2', v: '6b3343cf' })];
  assert.is(countHandshakes(log), 2);
  assert.equal(serverVersions(log).sort(), ['1', '6b3343cf']);
  assert.is(countHandshakes([up(0, 'initial', 1200, { scid: 'c1' })]), 0);
});

test('amplification: within 3x passes; a server flight beyond 4x of the client bytes fails; the long chain is required', () => {
  const ok = [up(0, 'initial', 1200), down(20, 'initial', 1252), down(21, 'handshake', 1252), down(22, 'handshake', 1000), up(60, 'initial', 1200), down(80, 'handshake', 1252), down(81, 'handshake', 1252), down(82, 'handshake', 1252), up(120, 'handshake', 50), down(130, 'handshake', 1252)];
  assert.is(checkAmplification(ok), null);
  const bad = [up(0, 'initial', 1200), ...Array.from({ length: 8 }, (_, i) => down(20 + i, 'handshake', 1252)), up(200, 'handshake', 50)];
  assert.match(checkAmplification(bad) ?? '', /> 4x/);
  const short = [up(0, 'initial', 1200), down(20, 'initial', 1252), up(60, 'handshake', 50)];
  assert.match(checkAmplification(short) ?? '', /9-certificate chain/);
  // A client Initial coalesced with a Handshake packet validates the address too.
  const coalesced = [up(0, 'initial', 1200), down(20, 'handshake', 1252), down(21, 'handshake', 1252), down(22, 'handshake', 1252), up(60, 'initial', 1200, { types: ['initial', 'handshake'] }), ...Array.from({ length: 6 }, (_, i) => down(80 + i, 'handshake', 1252))];
  assert.is(checkAmplification(coalesced), null);
  // Dropped client datagrams never reached the server: they do not count.
  const dropped = [up(0, 'initial', 1200), up(1, 'initial', 1200, { fate: 'dropped', at: undefined }), ...Array.from({ length: 7 }, (_, i) => down(20 + i, 'handshake', 1252)), up(300, 'handshake', 50)];
  assert.match(checkAmplification(dropped) ?? '', /> 4x/);
});

test('longrtt: ClientHellos sent before any reply could arrive', () => {
  const log = [up(0, 'initial', 1200), up(1000, 'initial', 1200), down(760, 'initial', 1200, { at: 1510 }), up(1600, 'handshake', 50)];
  assert.is(initialsBeforeReply(log), 2);
  assert.is(initialsBeforeReply([up(0, 'initial', 1200), down(30, 'initial', 1200)]), 1);
  assert.is(firstFlight([up(0, 'initial', 1200), up(1, 'initial', 400), up(1000, 'initial', 1200)]), 2);
});

test('goodput: bytes over the delivery span of the server 1-RTT datagrams', () => {
  const log = [down(0, 'initial', 1200), down(10, '1rtt', 1200, { at: 100 }), down(900, '1rtt', 1200, { at: 1100 }), down(950, '1rtt', 1200, { fate: 'dropped', at: undefined })];
  assert.is(goodputKbps(log, 1_000_000), 8000); // 8e6 bits / 1000 ms
  assert.is(goodputKbps([down(10, '1rtt', 1200)], 1), null);
});

test('connection migration: the first client packet on the new path must use a new DCID', () => {
  const moved = [{ t: 0, event: 'client', addr: '127.0.0.1:1000' }, up(1, '1rtt', 60, { first: '40aaaaaaaaaaaaaa' }), { t: 5, event: 'client', addr: '127.0.0.1:2000' }, up(6, '1rtt', 60, { first: '40bbbbbbbbbbbbbb' })];
  assert.is(checkNewDcidOnMigration(moved), null);
  const same = [...moved.slice(0, 3), up(6, '1rtt', 60, { first: '40aaaaaaaaaaaaaa' })];
  assert.match(checkNewDcidOnMigration(same) ?? '', /previous DCID/);
  assert.match(checkNewDcidOnMigration(moved.slice(0, 2)) ?? '', /never moved/);
});

test('coalesced packet types are walked through the unprotected Length fields', () => {
  // Initial (v1, dcid 1 byte, scid 0, token 0, length 3) + Handshake (length 2) + 1-RTT.
  const initial = [0xc0, 0, 0, 0, 1, 1, 0xaa, 0, 0, 3, 1, 2, 3];
  const hs = [0xe0, 0, 0, 0, 1, 1, 0xaa, 0, 2, 9, 9];
  const short = [0x40, 0xaa, 1, 2];
  assert.equal(coalescedTypes(new Uint8Array([...initial, ...hs, ...short])), ['initial', 'handshake', '1rtt']);
  assert.equal(coalescedTypes(new Uint8Array(short)), ['1rtt']);
  assert.equal(coalescedTypes(new Uint8Array([0xc0, 0, 0, 0, 1, 40])), ['initial']); // truncated: stops
});

test('qlogBogusAcks: an ACK of a packet number never received in that space is reported', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-qlog-acks-'));
  try {
    const ev = (name: string, type: string, pn: number, frames: unknown[] = []) => `\x1e${JSON.stringify({ time: 0, name: `transport:${name}`, data: { header: { packet_type: type, packet_number: pn }, frames } })}\n`;
    const ack = (...ranges: number[][]) => ({ frame_type: 'ack', acked_ranges: ranges });
    const good = ev('packet_received', 'handshake', 0) + ev('packet_received', 'handshake', 1) + ev('packet_sent', 'handshake', 0, [ack([0, 1])]) + ev('packet_received', 'initial', 5) + ev('packet_sent', 'initial', 0, [ack([5])]);
    fs.writeFileSync(path.join(dir, 'a_client.sqlog'), good);
    assert.equal(qlogBogusAcks(dir), []);
    // The known stray: a 1-RTT packet number of another connection in a Handshake ACK.
    fs.writeFileSync(path.join(dir, 'b_client.sqlog'), good + ev('packet_received', '1RTT', 31027) + ev('packet_sent', 'handshake', 1, [ack([31027, 31027], [0, 1])]));
    assert.match(qlogBogusAcks(dir).join(), /b_client\.sqlog: handshake packet 1 acknowledges 31027/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// The decrypting checks on real datagrams of an in-memory connection (the relay log's `hex`
// records rebuilt from the pair's wire log, opened with its key log).
function pairLog(p: Pair, from = 0): SimRecord[] {
  return p.log.slice(from).map((x, i) => {
    const ids = longHeaderIds(x.data);
    return { t: x.at - p.log[0]!.at, dir: x.dir, n: i, size: x.data.length, type: packetType(x.data), fate: 'forwarded', hex: Buffer.from(x.data).toString('hex'), ...(ids ? { scid: ids.scid, dcid: ids.dcid } : {}) } as SimRecord;
  });
}

test('decrypted checks: key phase 1 both ways (keyupdate); the server stream limit (multiplexing)', () => {
  const provider = providers[0]!;
  const run = (update: boolean, maxStreamsBidi?: number) => {
    const p = new Pair({ provider, delay: 10, server: maxStreamsBidi ? { maxStreamsBidi } : {} });
    assert.ok(p.handshake());
    p.runFor(300);
    if (update) assert.ok(p.client.updateKeys());
    const id = p.client.openStream(true)!;
    p.client.write(id, new Uint8Array(5000).fill(1), true);
    let got = 0;
    assert.ok(p.runUntil(() => (got += readAll(p.server!, id).data.length) >= 5000, 2000));
    p.runFor(200);
    return p;
  };
  const updated = run(true);
  const seen: string[] = [];
  assert.is(checkDecrypted('keyupdate', pairLog(updated), updated.keyLog, seen), null);
  assert.match(seen.join(), /key phase 1: [1-9]\d* client \/ [1-9]\d* server/);
  const plain = run(false);
  assert.match(checkDecrypted('keyupdate', pairLog(plain), plain.keyLog) ?? '', /never sent a 1-RTT packet with key phase 1/);
  assert.match(checkDecrypted('keyupdate', pairLog(plain), []) ?? '', /no 1-RTT secrets/);
  assert.is(checkDecrypted('multiplexing', pairLog(plain), plain.keyLog), null);
  const wide = run(false, 2000);
  assert.match(checkDecrypted('multiplexing', pairLog(wide), wide.keyLog) ?? '', /initial_max_streams_bidi is 2000/);
});

test('decrypted checks: the first packet on a new path carries PATH_CHALLENGE (rebind: server; migration: client)', () => {
  const provider = providers[0]!;
  const p = new Pair({ provider, delay: 10 });
  assert.ok(p.handshake());
  p.runFor(300);
  // NAT rebinding: the client's datagrams now come from a new port; the server must challenge it.
  const mark = p.log.length;
  p.clientAddr = { ...p.clientAddr, port: p.clientAddr.port + 1 };
  p.client.ping();
  p.runFor(500);
  const log = pairLog(p);
  const firstUp = log.findIndex((r, i) => i >= mark && r.dir === 'up');
  const withEvent = [...log.slice(0, firstUp), { t: log[firstUp]!.t - 0.001, event: 'rebind', side: 'server', from: 'a', to: 'b' } as SimRecord, ...log.slice(firstUp)];
  const seen: string[] = [];
  assert.is(checkDecrypted('rebind-port', withEvent, p.keyLog, seen), null);
  assert.match(seen.join(), /1 of 1 rebindings/);
  // The same log with the event placed before a server packet that is not the challenge: caught.
  const plainDown = log.findIndex((r, i) => i < mark && r.dir === 'down' && r.type === '1rtt');
  const wrong = [...log.slice(0, plainDown), { t: log[plainDown]!.t - 0.001, event: 'rebind', side: 'server', from: 'a', to: 'b' } as SimRecord, ...log.slice(plainDown)];
  assert.match(checkDecrypted('rebind-port', wrong, p.keyLog) ?? '', /carries no PATH_CHALLENGE/);
});

test('test names and scenarios follow testcases.py; peer limits are explicit', () => {
  assert.is(testname('handshakeloss', 'client'), 'multiconnect');
  assert.is(testname('keyupdate', 'server'), 'transfer');
  assert.is(testname('connectionmigration', 'client'), 'connectionmigration');
  assert.is(testname('longrtt', 'server'), 'handshake');
  assert.ok(scenario('longrtt').includes('750'));
  assert.ok(scenario('handshakeloss').join(' ').includes('--loss 0.3'));
  assert.ok(scenario('amplificationlimit').join(' ').includes('--up-drop-index 1,2,3,4,5,6'));
  assert.match(lacks('quic-go', 'connectionmigration', 'client') ?? '', /no TESTCASE/);
  assert.match(lacks('quic-go', 'connectionmigration', 'server') ?? '', /disable_active_migration/);
  assert.match(lacks('ngtcp2', 'v2', 'server') ?? '', /v2/);
  assert.match(lacks('petrel', 'ecn', 'client') ?? '', /ECN/);
  assert.is(lacks('quic-go', 'multiplexing', 'server'), null); // runs as "transfer"
  assert.match(lacks('quic-go', 'rebind-port', 'server') ?? '', /never follow a NAT rebinding/);
  assert.match(lacks('quic-go', 'rebind-addr', 'server') ?? '', /never follow a NAT rebinding/);
  assert.is(lacks('quic-go', 'rebind-port', 'client'), null); // quic-go's client → our server runs
  assert.is(lacks('ngtcp2', 'rebind-port', 'server'), null);
});

test('relay followMigration: a new client address gets its own server-facing socket; late replies go to the old address', async () => {
  const bindUdp = () => new Promise<dgram.Socket>((res) => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => res(s)); });
  const server = await bindUdp();
  const a = await bindUdp();
  const b = await bindUdp();
  const seen: { port: number; data: string }[] = [];
  server.on('message', (m, r) => seen.push({ port: r.port, data: m.toString() }));
  const relay = await startRelay({ listen: 0, target: { host: '127.0.0.1', port: server.address().port }, up: { delayMs: 1, rateMbps: 0 }, down: { delayMs: 1, rateMbps: 0 }, followMigration: true });
  const gotA: string[] = [];
  const gotB: string[] = [];
  a.on('message', (m) => gotA.push(m.toString()));
  b.on('message', (m) => gotB.push(m.toString()));
  const wait = async (cond: () => boolean) => { for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5)); };
  try {
    a.send('from-a', relay.port, '127.0.0.1');
    await wait(() => seen.length === 1);
    b.send('from-b', relay.port, '127.0.0.1');
    await wait(() => seen.length === 2);
    assert.is(seen.length, 2);
    assert.is.not(seen[0]!.port, seen[1]!.port, 'the server sees the new client address as a new port');
    server.send('late-for-a', seen[0]!.port, '127.0.0.1');
    server.send('for-b', seen[1]!.port, '127.0.0.1');
    await wait(() => gotA.length + gotB.length === 2);
    assert.equal(gotA, ['late-for-a']);
    assert.equal(gotB, ['for-b']);
    // A late datagram from the old address (a previous connection's socket) leaves through the old
    // address's own mapping and does not take the current client's mapping away.
    a.send('late-from-a', relay.port, '127.0.0.1');
    await wait(() => seen.length === 3);
    b.send('from-b-again', relay.port, '127.0.0.1');
    await wait(() => seen.length === 4);
    assert.equal(seen.slice(2), [{ port: seen[0]!.port, data: 'late-from-a' }, { port: seen[1]!.port, data: 'from-b-again' }]);
    server.send('for-b-again', seen[1]!.port, '127.0.0.1');
    await wait(() => gotB.length === 2);
    assert.equal(gotB, ['for-b', 'for-b-again']);
  } finally {
    await relay.close();
    for (const s of [server, a, b]) s.close();
  }
});

test('relay followMigration: a datagram still in flight when the client address changes leaves through its sender\'s mapping', async () => {
  const bindUdp = () => new Promise<dgram.Socket>((res) => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => res(s)); });
  const server = await bindUdp();
  const a = await bindUdp();
  const b = await bindUdp();
  const seen: { port: number; data: string }[] = [];
  server.on('message', (m, r) => seen.push({ port: r.port, data: m.toString() }));
  // 40 ms one way: b's first datagram arrives while a's second is still on the link.
  const relay = await startRelay({ listen: 0, target: { host: '127.0.0.1', port: server.address().port }, up: { delayMs: 40, rateMbps: 0 }, down: { delayMs: 1, rateMbps: 0 }, followMigration: true });
  const wait = async (cond: () => boolean) => { for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5)); };
  try {
    a.send('a1', relay.port, '127.0.0.1');
    await wait(() => seen.length === 1);
    a.send('a2', relay.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 5));
    b.send('b1', relay.port, '127.0.0.1');
    await wait(() => seen.length === 3);
    const port = (d: string) => seen.find((x) => x.data === d)?.port;
    assert.is(port('a2'), port('a1'), 'a2 was sent from a: it leaves through a\'s mapping');
    assert.is.not(port('b1'), port('a1'));
  } finally {
    await relay.close();
    for (const s of [server, a, b]) s.close();
  }
});

// ------------------------------------------------------------------------------------------------
// Live subset through the simulator

const OPTS: Omit<RunOptions, 'peer' | 'tests' | 'roles'> = { timeoutS: 40, transferMB: 1, lossMB: 1, bigMB: 3, handshakes: 8 };

async function cases(peer: string, list: [string, Role][], extra: Partial<RunOptions> = {}): Promise<CaseResult[] | null> {
  const why = unavailable(peer);
  if (why) {
    console.log(`SKIPPED: interop matrix against ${peer}: ${why}`);
    return null;
  }
  const out: CaseResult[] = [];
  for (const [t, role] of list) out.push(await runCase(peer, t, role, { ...OPTS, ...extra, peer, tests: [t], roles: [role] }));
  console.log(matrix(out));
  return out;
}

const failures = (rs: CaseResult[]) => rs.filter((r) => r.status !== 'pass').map((r) => `${r.test}/${r.role}: ${r.status} ${r.detail}${r.dir ? ` (${r.dir})` : ''}`);

test('through the simulator ↔ ngtcp2: amplificationlimit, transferloss, rebind-port, connectionmigration (both roles), handshakeloss (our server)', async () => {
  const rs = await cases('ngtcp2', [
    ['amplificationlimit', 'client'],
    ['amplificationlimit', 'server'],
    ['transferloss', 'client'],
    ['transferloss', 'server'],
    ['rebind-port', 'client'],
    ['rebind-port', 'server'],
    ['connectionmigration', 'client'],
    ['connectionmigration', 'server'],
    ['handshakeloss', 'server'],
  ]);
  if (!rs) return;
  // handshakeloss with ngtcp2's client: 30% loss with the relay's fixed seed can drop every datagram
  // carrying our ServerHello for 10 s (a 15:39 CI run: our server answered each of gtlsclient's
  // ClientHellos at once and on its PTOs, and all five of those datagrams were lost), and
  // gtlsclient then ends on its own 10 s handshake timeout; ngtcp2 ↔ ngtcp2 fails this case the
  // same way (interop/RESULTS.md). Only that signature of the peer is tolerated here, as in the
  // stale-datagram test below; the full matrix keeps the cell strict.
  const peerTimedOut = (r: CaseResult): boolean =>
    r.test === 'handshakeloss' && !!r.dir && /ERR_HANDSHAKE_TIMEOUT\s*$/.test(readIf(path.join(r.dir, 'logs', 'peer-client.log')));
  for (const r of rs.filter((x) => x.status !== 'pass' && peerTimedOut(x))) console.log(`ngtcp2 handshakeloss: a handshake ended on gtlsclient's own 10 s handshake timeout (tolerated, see the comment): ${r.detail}`);
  assert.equal(failures(rs.filter((x) => !peerTimedOut(x))), []);
});

function readIf(f: string): string {
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
}

test('through the simulator ↔ quic-go: amplificationlimit, transferloss (both roles), rebind-port (our server)', async () => {
  // Not here: rebind-port/rebind-addr with quic-go's server (it keeps sending to the client's first
  // address: a quic-go 0.29 limit, RESULTS.md) and handshakeloss with quic-go's client (it gives up
  // after ~10 s; under 30% loss one handshake in a few dozen can take that long with our server's
  // PTO backoff, see interop/RESULTS.md).
  const rs = await cases('quic-go', [
    ['amplificationlimit', 'client'],
    ['amplificationlimit', 'server'],
    ['transferloss', 'client'],
    ['transferloss', 'server'],
    ['rebind-port', 'server'],
  ]);
  if (rs) assert.equal(failures(rs), []);
});

test('through the simulator, Petrel ↔ Petrel: connectionmigration (PATH_CHALLENGE on the new path, new DCID)', async () => {
  const rs = await cases('petrel', [['connectionmigration', 'client']]);
  if (rs) assert.equal(failures(rs), []);
});

// Stale datagrams of a previous connection: a client that runs connections one after another
// (handshakeloss = multiconnect under 30% loss) on a path that delivers the previous connection's
// late 1-RTT datagrams to the new connection's socket (the relay with a single client mapping,
// `singleMapping`; an off-path attacker can do the same). Our client once let their packet numbers
// into its Handshake ACK frames (qlog: `ack [[1558994823,1558994823],[2,2]]`, `[[31027,31027],[5,5],[1,2]]`),
// and the peers closed it with PROTOCOL_VIOLATION ("received ACK for an unsent packet"); fixed by
// dropping short-header packets whose DCID is not ours (RFC 9000 §5.2, ba7d7fd) and the replay
// re-entrancy fix (cea7f9d). The later intermittent failure (CI, 12:47 UTC) was not this bug: its
// qlog has no stray ACK, and the relay log shows ngtcp2's server losing its Handshake flight and
// then its next three PTO probes (one datagram each, +1, +3, +7 s) after our client's PING was
// acknowledged: gtlsserver's 10 s handshake timeout (ERR_HANDSHAKE_TIMEOUT), closing with 0xa.
// So this checks the property itself from our qlog (no ACK of a packet number never received,
// in any space), and accepts a failed connection only with the peer's handshake-timeout
// signature and no protocol violation reported by the peer.
test('Petrel client, stale datagrams of its previous connection (handshakeloss, single-mapping relay): no stray packet numbers in our ACKs', async () => {
  for (const peer of ['ngtcp2', 'quic-go']) {
    const why = unavailable(peer);
    if (why) {
      console.log(`SKIPPED: stale-datagram case against ${peer}: ${why}`);
      continue;
    }
    const r = await runCase(peer, 'handshakeloss', 'client', { ...OPTS, handshakes: 10, singleMapping: true, keep: true, peer, tests: ['handshakeloss'], roles: ['client'] });
    console.log(matrix([r]));
    assert.ok(r.dir, `${peer}: no work dir (${r.status} ${r.detail})`);
    const logs = path.join(r.dir!, 'logs');
    const read = (f: string) => (fs.existsSync(path.join(logs, f)) ? fs.readFileSync(path.join(logs, f), 'utf8') : '');
    assert.equal(qlogBogusAcks(path.join(logs, 'qlog-client'), true), [], `${peer}: our ACKs (${logs})`);
    const peerLog = read('peer-server.log') + read('log.txt');
    assert.not.match(peerLog, /ERR_PROTO|PROTOCOL_VIOLATION|unsent packet/, `${peer} reported a protocol violation (${logs})`);
    if (r.status !== 'pass') {
      // Only the peer's own handshake timeout is tolerated (see above).
      const peerTimeout = peer === 'ngtcp2' ? /ERR_HANDSHAKE_TIMEOUT/.test(peerLog) : /handshake did not complete in time|timed out after/.test(peerLog + read('petrel-client.log'));
      assert.ok(peerTimeout, `${peer}: ${r.status} ${r.detail} (${logs})`);
      console.log(`${peer}: a handshake failed on the peer's handshake timeout (tolerated, see the comment): ${r.detail}`);
    } else fs.rmSync(r.dir!, { recursive: true, force: true });
  }
});

test.run();
