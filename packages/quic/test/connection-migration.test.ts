import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { C_ADDR, Pair, S_ADDR, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';
import { PacketHeader, PacketType, parseHeader } from '../src/header.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';

function dcidOf(d: Uint8Array): string {
  const h = new PacketHeader();
  parseHeader(d, 0, d.length, 8, h);
  return Buffer.from(d.subarray(h.dcidOffset, h.dcidOffset + h.dcidLength)).toString('hex');
}

for (const provider of providers) {
  for (const kind of ['NAT rebinding', 'NAT rebinding to a new IP', 'active migration'] as const) {
    test(`[${provider.name}] ${kind} mid-transfer: PATH_CHALLENGE/RESPONSE padded to 1200, new path validated, transfer completes`, () => {
      const p = new Pair({ provider, delay: 10 });
      assert.ok(p.handshake());
      p.runFor(200);
      const id = p.server!.openStream(false)!;
      const total = 400_000;
      p.server!.write(id, new Uint8Array(total).fill(5), true);
      let got = 0;
      let fins = 0;
      let moved = false;
      let mark = 0;
      let oldDcid = '';
      assert.ok(
        p.runUntil(() => {
          if (!moved && got > 100_000) {
            moved = true;
            mark = p.log.length;
            oldDcid = dcidOf(p.log.filter((s) => s.dir === 'up').pop()!.data);
            if (kind === 'active migration') assert.ok(p.client.migrate(p.now), 'migrate() allowed');
            p.clientAddr = { address: kind === 'NAT rebinding to a new IP' ? '10.0.0.77' : '10.0.0.1', port: 6001, family: 4 };
            // The new NAT mapping appears with the client's next packet (a receiver-only client
            // whose mapping changes silently would never be heard again: keep-alives matter).
            p.client.ping();
          }
          const r = readAll(p.client, id);
          got += r.data.length;
          fins += r.fins;
          return fins === 1;
        }, 20_000),
        `transfer (${got})`,
      );
      assert.is(got, total);
      const pk = p.packets(mark);
      const challenges = pk.filter((x) => x.dir === 'down' && x.frames.includes(FrameType.PATH_CHALLENGE));
      const responses = pk.filter((x) => x.dir === 'up' && x.frames.includes(FrameType.PATH_RESPONSE));
      assert.ok(challenges.length >= 1 && responses.length >= 1, `challenges ${challenges.length}, responses ${responses.length}`);
      for (const x of responses) assert.ok(x.size >= 1200, `PATH_RESPONSE datagram of ${x.size} bytes`);
      for (const x of challenges) {
        // Padded to 1200 unless the new path's anti-amplification budget (3x received) is smaller
        // (§8.2.1); then unpadded, within the budget, keeping room for retries.
        const rx = p.log.filter((s) => s.dir === 'up' && s.from.port === 6001 && s.at + 10 <= x.at).reduce((a, s) => a + s.data.length, 0);
        if (3 * rx >= 1200) assert.ok(x.size >= 1200, `PATH_CHALLENGE datagram of ${x.size} bytes (received ${rx})`);
        else assert.ok(x.size <= 3 * rx && x.size < 200, `PATH_CHALLENGE datagram of ${x.size} bytes within the budget (received ${rx})`);
      }
      assert.is(p.server!.remote.port, 6001);
      assert.is(p.events('server', 'pathChanged').length, 1);
      if (kind === 'active migration') {
        const newUp = p.log.slice(mark).filter((s) => s.dir === 'up');
        assert.ok(newUp.length > 0 && newUp.every((s) => dcidOf(s.data) !== oldDcid), 'a fresh CID on the new path (§9.5)');
      }
      assert.not.ok(p.client.isClosed || p.server!.isClosed);
      assert.equal(p.bugs(), []);
    });
  }

  for (const lose of ['server', 'client'] as const) {
    test(`[${provider.name}] active migration with the ${lose}'s first PATH_CHALLENGE datagram lost: probes are sent again, the transfer completes`, () => {
      let inspector: PacketInspector | null = null;
      let dropped = 0;
      let migrated = false;
      const p: Pair = new Pair({
        provider,
        delay: 10,
        mutate: (dir, data) => {
          const opened = inspector!.open(dir, data);
          const want = lose === 'server' ? 'down' : 'up';
          if (migrated && dir === want && dropped === 0 && opened.some((x) => PacketInspector.frames(x).some((f) => f.type === FrameType.PATH_CHALLENGE))) {
            dropped++;
            return null;
          }
          return data;
        },
      });
      inspector = new PacketInspector(provider, p.keyLog);
      assert.ok(p.handshake());
      p.runFor(200);
      const id = p.server!.openStream(false)!;
      const total = 300_000;
      p.server!.write(id, new Uint8Array(total).fill(5), true);
      const t0 = p.now;
      let got = 0;
      let fins = 0;
      assert.ok(
        p.runUntil(() => {
          if (!migrated && got > 50_000) {
            migrated = p.client.migrate(p.now);
            p.clientAddr = { address: '10.0.0.1', port: 6100, family: 4 };
          }
          const r = readAll(p.client, id);
          got += r.data.length;
          fins += r.fins;
          return fins === 1;
        }, 20_000),
        `transfer (${got})`,
      );
      assert.is(dropped, 1);
      assert.is(got, total);
      assert.is(p.server!.remote.port, 6100);
      if (process.env.DEBUG_MIG) console.log(lose, p.now - t0);
      // Re-probing after 2 PTO, not waiting for the validation timeout and a fresh migration.
      assert.ok(p.now - t0 < 1500, `took ${p.now - t0} ms`);
      assert.equal(p.bugs(), []);
    });
  }

  test(`[${provider.name}] NAT rebinding during a download with the client's PATH_RESPONSE lost: the server keeps its budget for probes (no data to the unvalidated address), validation retries and succeeds`, () => {
    let inspector: PacketInspector | null = null;
    let dropped = 0;
    let moved = false;
    const p: Pair = new Pair({
      provider,
      delay: 10,
      mutate: (dir, data) => {
        const opened = inspector!.open(dir, data);
        if (moved && dir === 'up' && dropped === 0 && opened.some((x) => PacketInspector.frames(x).some((f) => f.type === FrameType.PATH_RESPONSE))) {
          dropped++;
          return null;
        }
        return data;
      },
    });
    inspector = new PacketInspector(provider, p.keyLog);
    assert.ok(p.handshake());
    p.runFor(200);
    const id = p.server!.openStream(false)!;
    const total = 300_000;
    p.server!.write(id, new Uint8Array(total).fill(5), true);
    let got = 0;
    let fins = 0;
    let mark = 0;
    let t0 = 0;
    assert.ok(
      p.runUntil(() => {
        if (!moved && got > 100_000) {
          moved = true;
          mark = p.log.length;
          t0 = p.now;
          p.clientAddr = { address: '10.0.0.1', port: 6200, family: 4 };
          p.client.ping();
        }
        const r = readAll(p.client, id);
        got += r.data.length;
        fins += r.fins;
        return fins === 1;
      }, 20_000),
      `transfer (${got})`,
    );
    assert.is(dropped, 1);
    assert.is(got, total);
    assert.is(p.server!.remote.port, 6200);
    assert.ok(p.now - t0 < 1500, `took ${p.now - t0} ms after the rebinding`);
    // Until validated, nothing but probes/ACKs/PINGs went to the new address.
    const pk = p.packets(mark);
    const validatedAt = pk.filter((x) => x.dir === 'up' && x.frames.includes(FrameType.PATH_RESPONSE)).map((x) => x.at)[1] ?? Infinity;
    const early = pk.filter((x) => x.dir === 'down' && p.log[x.dgram]!.to.port === 6200 && x.at < validatedAt);
    assert.ok(early.every((x) => !x.frames.some((f) => (f & ~7) === FrameType.STREAM)), 'no STREAM frames to the unvalidated address');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] NAT rebinding with a single datagram from the new address: the server can still send its PATH_CHALLENGE (amplification budget counts that datagram)`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(500);
    p.clientAddr = { address: '10.0.0.9', port: 7000, family: 4 };
    const mark = p.log.length;
    p.client.ping();
    p.runFor(300);
    const pk = p.packets(mark);
    assert.ok(pk.some((x) => x.dir === 'down' && x.frames.includes(FrameType.PATH_CHALLENGE)), 'challenge sent');
    assert.ok(p.runUntil(() => p.events('server', 'pathChanged').length === 1, 2000), 'validated');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] NEW_CONNECTION_ID: both sides issue spare CIDs up to the limit; migrate() fails without one`, () => {
    const p = new Pair({ provider, delay: 10, client: { activeConnectionIdLimit: 2 }, server: { activeConnectionIdLimit: 2 } });
    assert.ok(p.handshake());
    p.runFor(300);
    const ncid = p.packets().filter((x) => x.frames.includes(FrameType.NEW_CONNECTION_ID));
    assert.ok(ncid.some((x) => x.dir === 'down') && ncid.some((x) => x.dir === 'up'));
    assert.ok(p.client.migrate(p.now), 'one spare CID');
    p.clientAddr = { address: '10.0.0.1', port: 6002, family: 4 };
    p.runFor(500);
    // The server retired the old CID's slot and issued a new one: migrate again works.
    assert.ok(p.client.migrate(p.now), 'new spare after RETIRE_CONNECTION_ID');
    p.clientAddr = { address: '10.0.0.1', port: 6003, family: 4 };
    p.runFor(500);
    assert.ok(p.packets().some((x) => x.dir === 'up' && x.frames.includes(FrameType.RETIRE_CONNECTION_ID)), 'client retired old CIDs');
    assert.is(p.server!.remote.port, 6003);
    assert.not.ok(p.client.isClosed || p.server!.isClosed);
    assert.equal(p.bugs(), []);
  });
  for (const probeSize of [1200, 60] as const) {
    test(`[${provider.name}] a probing packet (PATH_CHALLENGE only, ${probeSize}-byte datagram) from a new address: PATH_RESPONSE to that address, ${probeSize === 1200 ? 'padded to 1200' : 'within 3x of the probe'}, in the qlog; no migration`, () => {
      const qlog: { name: string; data: { frames?: { frame_type: string }[]; raw?: { length: number } } }[] = [];
      let inspector: PacketInspector | null = null;
      let forge = false;
      let forged: Uint8Array | null = null;
      const probeAddr = { address: '10.0.0.9', port: 7000, family: 4 } as const;
      const p: Pair = new Pair({
        provider,
        delay: 10,
        server: { qlog: (e) => qlog.push(e as (typeof qlog)[number]) },
        drop: (dir, data) => {
          if (!forge || dir !== 'up') return false;
          const opened = inspector!.open(dir, data);
          const pkt = opened.find((x) => x.type === PacketType.OneRtt);
          if (!pkt) return false;
          forge = false;
          // PATH_CHALLENGE and PADDING only (a probing packet, §9.1), in the client's next packet
          // number: the original datagram is dropped.
          const overhead = pkt.header.length + 16;
          const body = new Uint8Array(Math.max(9, probeSize - overhead));
          body[0] = FrameType.PATH_CHALLENGE;
          body.set([1, 2, 3, 4, 5, 6, 7, 8], 1);
          forged = inspector!.reseal(data.subarray(pkt.start, pkt.end), { ...pkt, start: 0, end: pkt.end - pkt.start }, body);
          return true;
        },
      });
      inspector = new PacketInspector(provider, p.keyLog);
      assert.ok(p.handshake());
      p.runFor(200);
      forge = true;
      p.client.ping();
      p.flush();
      const probe = forged as Uint8Array | null; // (assigned in the drop hook)
      assert.ok(probe, 'a client 1-RTT packet was re-sealed as a probe');
      assert.is(probe.length, probeSize);
      const mark = p.log.length;
      p.emit('up', probe, probeAddr, S_ADDR);
      p.runFor(100);
      const toProbe = p.log.slice(mark).filter((s) => s.dir === 'down' && s.to.address === probeAddr.address && s.to.port === probeAddr.port);
      assert.is(toProbe.length, 1, 'one datagram to the probing address');
      const opened = new PacketInspector(provider, p.keyLog).open('down', toProbe[0]!.data);
      const frames = opened.flatMap((x) => PacketInspector.frames(x));
      const resp = frames.find((f) => f.type === FrameType.PATH_RESPONSE);
      assert.ok(resp, 'PATH_RESPONSE sent to the probing address');
      assert.equal([...resp!.data()], [1, 2, 3, 4, 5, 6, 7, 8]);
      const size = toProbe[0]!.data.length;
      if (probeSize === 1200) assert.ok(size >= 1200, `PATH_RESPONSE datagram of ${size} bytes`);
      else assert.ok(size <= 3 * probeSize, `PATH_RESPONSE datagram of ${size} bytes, more than 3x the ${probeSize}-byte probe`);
      const logged = qlog.filter((e) => e.name === 'transport:packet_sent' && e.data.frames?.some((f) => f.frame_type === 'path_response'));
      assert.is(logged.length, 1, 'the PATH_RESPONSE is in the qlog');
      assert.is(logged[0]!.data.raw!.length, size);
      // A probe does not move the connection (§9.2): the server stays on the client's address.
      assert.is(p.server!.remote.address, C_ADDR.address);
      assert.is(p.server!.remote.port, C_ADDR.port);
      assert.is(p.events('server', 'pathChanged').length, 0);
      // The client then moves there (a non-probing packet from that address): the probe's bytes
      // count toward the new path's anti-amplification budget (§8.1), so the server's
      // PATH_CHALLENGE can be padded to 1200 after a 1200-byte probe.
      const mark2 = p.log.length;
      p.clientAddr = { ...probeAddr };
      p.client.ping();
      p.runFor(100);
      const ch = p
        .packets(mark2)
        .filter((x) => x.dir === 'down' && x.frames.includes(FrameType.PATH_CHALLENGE));
      assert.ok(ch.length >= 1, 'the server validates the new path');
      if (probeSize === 1200) assert.ok(ch[0]!.size >= 1200, `PATH_CHALLENGE datagram of ${ch[0]!.size} bytes`);
      assert.is(p.server!.remote.port, probeAddr.port);
      assert.equal(p.bugs(), []);
    });
  }
  test(`[${provider.name}] NAT rebinding of a receiver with the first PATH_CHALLENGE, a PTO PING each way and an ACK lost: the challenge is sent again within the tiny budget, the path is validated, the transfer completes`, () => {
    // After the rebinding the client (a pure receiver) sends one ~30-byte packet from its new port:
    // the new path's budget is ~90 bytes. The server's PTO probes on that path carry the
    // PATH_CHALLENGE (not bare PINGs), and a retry is sent whenever a challenge packet fits the
    // budget (no fixed 64-byte floor): the path is validated instead of reverted to the dead port.
    const PING = FrameType.PING;
    const ACK = FrameType.ACK;
    let rebound = false;
    let stage = 0;
    let inspector: PacketInspector | null = null;
    const p: Pair = new Pair({
      provider,
      delay: 10,
      extraDelay: (dir) => (rebound && dir === 'up' ? 15 : 0),
      drop: (dir, d) => {
        const f = inspector!.open(dir, d).flatMap((x) => PacketInspector.frames(x).map((y) => y.type));
        if (!rebound) return false;
        if (stage === 0 && dir === 'down' && f.includes(FrameType.PATH_CHALLENGE)) return (stage = 1), true;
        if (stage === 1 && dir === 'up' && f.includes(PING)) return (stage = 2), true;
        if (stage === 2 && dir === 'down' && f.every((x) => x === PING || x === 0)) return (stage = 3), true;
        if (stage === 3 && dir === 'up' && f.every((x) => x === ACK || x === 0)) return (stage = 4), true;
        return false;
      },
    });
    inspector = new PacketInspector(provider, p.keyLog);
    assert.ok(p.handshake());
    const t0 = p.now;
    const id = p.server!.openStream(false)!;
    const big = new Uint8Array(500_000).fill(5);
    let off = 0;
    let got = 0;
    let fin = 0;
    assert.ok(
      p.runUntil(() => {
        if (off < big.length) off += p.server!.write(id, big.subarray(off), true);
        const r = readAll(p.client, id);
        got += r.data.length;
        fin += r.fins;
        if (!rebound && p.now - t0 > 30) {
          rebound = true;
          p.clientAddr = { address: '10.0.0.1', port: 6001, family: 4 };
          p.client.ping();
        }
        return fin > 0 || p.client.isClosed || p.server!.isClosed;
      }, 20_000),
      'the transfer ends',
    );
    assert.ok(stage >= 1, `losses applied (stage ${stage})`);
    assert.is(got, big.length);
    assert.is(p.server!.remote.port, 6001, 'the server stays on the new, validated path');
    assert.ok(p.now - t0 < 5000, `took ${p.now - t0} ms`);
    assert.equal(p.bugs(), []);
  });
  test(`[${provider.name}] a client discards packets from an address other than the server's (RFC 9000 §9): no path change, nothing sent there, the data arrives once the real packet does`, () => {
    let hold = false;
    let captured: Uint8Array | null = null;
    const p = new Pair({
      provider,
      delay: 10,
      drop: (dir, d) => {
        if (hold && dir === 'down' && !captured) {
          captured = d.slice();
          return true;
        }
        return false;
      },
    });
    assert.ok(p.handshake());
    p.runFor(200);
    const sid = p.server!.openStream(false)!;
    hold = true;
    p.server!.write(sid, new Uint8Array(100).fill(1), false);
    p.flush();
    assert.ok(captured, 'a server datagram captured');
    const other = { address: '192.0.2.66', port: 443, family: 4 } as const;
    const mark = p.log.length;
    p.client.receive(captured!, other, p.now); // the server's packet, replayed from another address
    p.flush();
    assert.is(p.client.remote.address, S_ADDR.address);
    assert.is(p.client.stats.droppedUnknownAddress, 1);
    assert.is(p.log.slice(mark).filter((s) => s.dir === 'up' && s.to.address === other.address).length, 0);
    assert.is(readAll(p.client, sid).data.length, 0, 'its data was not processed');
    // The real packet (from the server's address) is processed normally.
    p.client.receive(captured!, S_ADDR, p.now);
    assert.is(readAll(p.client, sid).data.length, 100);
    assert.equal(p.bugs(), []);
  });
}

test.run();
