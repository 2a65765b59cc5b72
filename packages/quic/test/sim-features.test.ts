/**
 * Connection features over the simulated link: key updates from either side with data in flight,
 * active migration and NAT rebinding (path validation), flow-control stalls, stream limits and
 * DATAGRAM frames.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameType } from '../src/frames.js';
import { providers } from '../../../test/support/providers.js';
import { PacketInspector, QuicPair, knownBug } from '../../../test/support/quic-pair.js';

for (const provider of providers) {
  for (const side of ['client', 'server'] as const) {
    test(`[${provider.name}] key update initiated by the ${side}, data flowing across it`, () => {
      const pair = new QuicPair({ provider, seed: 31, link: { delayMs: 10, loss: 0.02, reorder: 0.02 } });
      assert.ok(pair.handshake());
      let updated = false;
      const r = pair.transfer(1 << 20, {
        streams: 2,
        during: (p, prog) => {
          if (!updated && prog.received > 300_000) {
            const conn = side === 'client' ? p.client : p.serverConn!;
            updated = conn.updateKeys();
          }
        },
      });
      pair.assertNoBugs();
      assert.ok(r.ok, r.error);
      assert.ok(updated, 'updateKeys() returned true once the handshake was confirmed');
      const other = side === 'client' ? 'server' : 'client';
      const mine = pair.events(side, 'keyUpdate');
      const theirs = pair.events(other, 'keyUpdate');
      assert.is(mine.length, 1, `${side} keyUpdate events`);
      assert.is(mine[0]!.initiatedBy, 'local');
      assert.is(theirs.length, 1, `${other} keyUpdate events`);
      assert.is(theirs[0]!.initiatedBy, 'peer');
      assert.is(pair.connStats('client')!.keyUpdates, 1);
      assert.is(pair.connStats('server')!.keyUpdates, 1);
      // A second update after the first: data still flows.
      const c2 = side === 'client' ? pair.serverConn! : pair.client;
      assert.ok(pair.runUntil(() => c2.updateKeys(), 5000), 'the other side can update next');
      const r2 = pair.transfer(100_000);
      assert.ok(r2.ok, r2.error);
      assert.is(pair.connStats('client')!.keyUpdates, 2);
      assert.is(pair.connStats('server')!.keyUpdates, 2);
    });
  }

  test(`[${provider.name}] active migration: new path, PATH_CHALLENGE on it, data continues`, () => {
    const pair = new QuicPair({ provider, seed: 41, link: { delayMs: 10 } });
    const inspector = new PacketInspector(provider, pair.keyLog);
    const challenges: { dir: 'up' | 'down'; port: number }[] = [];
    pair.opts.tap = (dir, d) => {
      for (const p of inspector.open(dir, d))
        for (const f of PacketInspector.frames(p)) if (f.type === FrameType.PATH_CHALLENGE) challenges.push({ dir, port: pair.clientLocal.port });
    };
    assert.ok(pair.handshake());
    let migrated = false;
    const oldPort = pair.clientLocal.port;
    const r = pair.transfer(1 << 20, {
      during: (p, prog) => {
        if (!migrated && prog.received > 200_000) migrated = p.migrate();
      },
    });
    pair.assertNoBugs();
    assert.ok(migrated, 'migrate() returned true');
    assert.ok(r.ok, r.error);
    assert.is.not(pair.clientLocal.port, oldPort);
    const changed = pair.events('server', 'pathChanged');
    assert.is(changed.length, 1, 'server pathChanged');
    assert.is(changed[0]!.remote.port, pair.clientLocal.port);
    assert.is(pair.serverConn!.remote.port, pair.clientLocal.port);
    assert.ok(challenges.some((c) => c.dir === 'down'), `the server challenged the new path (${JSON.stringify(challenges)})`);
  });

  test(`[${provider.name}] NAT rebinding: the client's port changes silently, the server validates the new path`, () => {
    const pair = new QuicPair({ provider, seed: 43, link: { delayMs: 10 } });
    const inspector = new PacketInspector(provider, pair.keyLog);
    let serverChallenges = 0;
    let clientResponses = 0;
    pair.opts.tap = (dir, d) => {
      for (const p of inspector.open(dir, d))
        for (const f of PacketInspector.frames(p)) {
          if (dir === 'down' && f.type === FrameType.PATH_CHALLENGE) serverChallenges++;
          if (dir === 'up' && f.type === FrameType.PATH_RESPONSE) clientResponses++;
        }
    };
    assert.ok(pair.handshake());
    let rebound = false;
    const r = pair.transfer(1 << 20, {
      during: (p, prog) => {
        if (!rebound && prog.received > 200_000) {
          p.rebind();
          rebound = true;
        }
      },
    });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.ok(serverChallenges > 0 && clientResponses > 0, `challenges ${serverChallenges}, responses ${clientResponses}`);
    assert.is(pair.serverConn!.remote.port, pair.clientMapped.port);
    assert.is(pair.events('server', 'pathChanged').length, 1);
    // The client did not move: it saw no path change of its own.
    assert.is(pair.events('client', 'pathChanged').length, 0);
  });

  test(`[${provider.name}] flow control: a receiver that does not read stalls the sender, then it resumes`, () => {
    const window = 64 * 1024;
    let inspector: PacketInspector | null = null;
    let resumeAt = Infinity;
    // Highest stream offset the server put on the wire before the client started reading.
    let highestBeforeResume = 0;
    let blockedFrames = 0;
    const pair = new QuicPair({
      provider,
      seed: 51,
      link: { delayMs: 5 },
      // The connection window binds first (DATA_BLOCKED; the Connection does not send STREAM_DATA_BLOCKED yet).
      client: { streamWindow: 2 * window, maxStreamWindow: 2 * window, connectionWindow: window, maxConnectionWindow: window },
      tap: (dir, d) => {
        if (dir !== 'down' || !inspector) return;
        for (const p of inspector.open(dir, d))
          for (const f of PacketInspector.frames(p)) {
            if ((f.type & ~7) === FrameType.STREAM && pair.now < resumeAt) highestBeforeResume = Math.max(highestBeforeResume, f.offset + f.dataLength);
            if (f.type === FrameType.DATA_BLOCKED && pair.now < resumeAt) blockedFrames++;
          }
      },
    });
    inspector = new PacketInspector(provider, pair.keyLog);
    assert.ok(pair.handshake());
    resumeAt = pair.now + 3000;
    pair.wakeAt(resumeAt);
    const r = pair.transfer(1 << 20, { readWhile: () => pair.now >= resumeAt });
    pair.assertNoBugs();
    assert.ok(r.ok, r.error);
    assert.ok(r.virtualMs >= 3000, 'completed only after the receiver resumed reading');
    assert.ok(highestBeforeResume > window / 2, `the sender used the window (${highestBeforeResume})`);
    assert.ok(highestBeforeResume <= window, `the sender stayed within the connection window: sent up to ${highestBeforeResume} > ${window}`);
    assert.ok(blockedFrames > 0, 'the sender said it was blocked (DATA_BLOCKED)');
    assert.not.ok(pair.client.isClosed || pair.serverConn!.isClosed, 'no error');
  });

  // RFC 9000 §13.2.1: non-ack-eliciting packets must not elicit an ACK on their own (regression:
  // the first Connection answered ACK-only packets with ACK-only packets forever).
  test(`[${provider.name}] an idle connection goes quiet (no ACKs of ACK-only packets)`, () => {
    const pair = new QuicPair({ provider, seed: 52, link: { delayMs: 5 } });
    assert.ok(pair.handshake());
    pair.runFor(1000); // let the handshake tail (NEW_CONNECTION_ID, tickets, ACKs) settle
    const before = pair.net.up.stats.offered + pair.net.down.stats.offered;
    pair.runFor(5000);
    const after = pair.net.up.stats.offered + pair.net.down.stats.offered;
    assert.ok(after - before <= 2, `${after - before} datagrams in 5 s of idleness`);
    pair.assertNoBugs();
  });

  test(`[${provider.name}] stream limits: openStream returns null at the peer's limit until 'streamsAvailable'`, () => {
    const pair = new QuicPair({ provider, seed: 61, link: { delayMs: 5 }, server: { maxStreamsUni: 3 } });
    assert.ok(pair.handshake());
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = pair.client.openStream(false);
      if (id !== null) ids.push(id);
    }
    assert.equal(ids, [2, 6, 10], 'three uni streams, then null');
    assert.is(pair.client.openStream(false), null);
    // Finish them; the server reads them to the end, which returns credit.
    for (const id of ids) pair.client.write(id, new Uint8Array([1, 2, 3]), true);
    pair.addTask(() => {
      for (const id of ids) for (let k = 0; k < 10 && pair.serverConn!.read(id); k++);
    });
    assert.ok(pair.runUntil(() => pair.events('client', 'streamsAvailable').some((e) => !e.bidi), 10_000), 'streamsAvailable (uni)');
    const next = pair.client.openStream(false);
    assert.is(next, 14);
    pair.assertNoBugs();
  });

  test(`[${provider.name}] DATAGRAM frames when negotiated, refused when not`, () => {
    const pair = new QuicPair({ provider, seed: 71, link: { delayMs: 5 }, client: { maxDatagramFrameSize: 1200 }, server: { maxDatagramFrameSize: 1200 } });
    assert.ok(pair.handshake());
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const msg = `datagram ${i}`;
      assert.ok(pair.client.sendDatagram(new TextEncoder().encode(msg)));
      sent.push(msg);
    }
    assert.ok(pair.serverConn!.sendDatagram(new TextEncoder().encode('back')));
    assert.ok(pair.runUntil(() => pair.events('server', 'datagram').length === 5 && pair.events('client', 'datagram').length === 1, 5000));
    assert.equal(pair.events('server', 'datagram').map((e) => new TextDecoder().decode(e.data)), sent);
    assert.is(new TextDecoder().decode(pair.events('client', 'datagram')[0]!.data), 'back');
    assert.not.ok(pair.client.sendDatagram(new Uint8Array(5000)), 'too large');

    const plain = new QuicPair({ provider, seed: 72, link: { delayMs: 5 } });
    assert.ok(plain.handshake());
    assert.not.ok(plain.client.sendDatagram(new Uint8Array(10)), 'not negotiated');
    pair.assertNoBugs();
    plain.assertNoBugs();
  });
}



// Path validation must survive the loss of one PATH_CHALLENGE (RFC 9000 §8.2.1 allows several;
// §8.2.4: abandon only after max(3 PTO, 6 kInitialRtt)); a validation that fails must not move the
// connection back to an address the peer has left (§9.3.2, the new address keeps sending
// non-probing packets). Minimal: no random loss, one targeted drop.
for (const provider of providers) {
  for (const how of ['migrate', 'rebind'] as const) {
    test(`[${provider.name}] ${how}: the server's first PATH_CHALLENGE on the new path is lost, the transfer still completes`, () => {
      let inspector: PacketInspector | null = null;
      let armed = false;
      let dropped = 0;
      const pair: QuicPair = new QuicPair({
        provider,
        seed: 45,
        link: { delayMs: 10 },
        intercept: (dir, d) => {
          if (!armed || dropped > 0 || dir !== 'down' || !inspector) return d;
          const hit = inspector.open(dir, d).some((p) => PacketInspector.frames(p).some((f) => f.type === FrameType.PATH_CHALLENGE));
          if (!hit) return d;
          dropped++;
          return null;
        },
      });
      inspector = new PacketInspector(provider, pair.keyLog);
      assert.ok(pair.handshake());
      let moved = false;
      // Upload: the client keeps sending non-probing packets from its new address.
      const r = pair.transfer(1 << 20, {
        direction: 'up',
        bidi: true,
        maxVirtualMs: 20_000,
        during: (p, prog) => {
          if (!moved && prog.received > 200_000) {
            armed = true;
            moved = how === 'migrate' ? p.migrate() : (p.rebind(), true);
          }
        },
      });
      pair.assertNoBugs();
      assert.ok(moved);
      assert.is(dropped, 1, 'one PATH_CHALLENGE datagram dropped');
      assert.ok(r.ok, r.error);
      assert.is(pair.serverConn!.remote.port, pair.clientMapped.port, 'the server ends up on the new path');
    });
  }
}
// Regression (fixed in connection.ts 25c3489): after migrate() under 5% loss (seed 6) the datagram
// carrying the server's PATH_RESPONSE + PATH_CHALLENGE was lost and neither side re-sent a
// PATH_CHALLENGE (RFC 9000 §8.2.1); the amplification-limited server went silent, its validation
// timer reverted it to the old address and the download stalled until the idle timeout.
for (const provider of providers) {
  test(`[${provider.name}] migration under 5% loss (seed 6): the transfer completes`, () => {
    const pair = new QuicPair({ provider, seed: 6, link: { delayMs: 10, loss: 0.05, reorder: 0.02 } });
    assert.ok(pair.handshake());
    let migrated = false;
    const r = pair.transfer(1 << 20, {
      maxVirtualMs: 20_000,
      during: (p, prog) => {
        if (!migrated && prog.received > 200_000) migrated = p.migrate();
      },
    });
    pair.assertNoBugs();
    assert.ok(migrated);
    assert.ok(r.ok, r.error);
  });
}

// Robustness issue (seed 2, 5% loss, a download — the client only sends ACKs): after the second NAT
// rebinding the server moves to the new address, unvalidated, with a budget of 3x the ~180 bytes the
// client sent there (RFC 9000 §8.1). The client's PATH_RESPONSE (padded to 1200 bytes) is lost; the
// server spends its budget on STREAM frames, its re-sent PATH_CHALLENGE is lost too, and then it can
// send nothing: the client has nothing outstanding and stays silent, validation times out, the
// server reverts to the old mapping the NAT no longer has, and the connection idles out. Keeping the
// budget for PATH_CHALLENGE (no stream data to an unvalidated address until validated, or a reserve)
// would let validation retry — fixed: only probes, ACKs and PINGs go to an unvalidated path. (Seed 3 of the same scenario fails for an unavoidable reason: the only
// packet the client sends from its new port is lost.)
for (const provider of providers) {
  test(`[${provider.name}] two NAT rebindings during a download under 5% loss (seed 2)`, () => {
    const pair = new QuicPair({ provider, seed: 2, link: { delayMs: 10, loss: 0.05, reorder: 0.02 } });
    assert.ok(pair.handshake());
    let n = 0;
    const r = pair.transfer(1 << 20, {
      maxVirtualMs: 40_000,
      during: (p, prog) => {
        if (n < 2 && prog.received > (n + 1) * 300_000) {
          p.rebind();
          n++;
        }
      },
    });
    pair.assertNoBugs();
    assert.is(n, 2);
    assert.ok(r.ok, r.error);
  });
}

test.run();
