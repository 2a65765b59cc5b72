/**
 * RFC 9000 §9.3.2 (on-path address spoofing) and §9.4 (when congestion state resets): a copy of a
 * client packet from a spoofed address, arriving before the original, moves the server to an
 * unvalidated path; the legitimate client's next packets (higher packet numbers) from the last
 * validated address bring the server straight back. The congestion controller and RTT estimator
 * of the validated path must survive all of this: they reset only once a NEW address is validated,
 * never on the first packet from it, and never for a failed validation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { C_ADDR, Pair, S_ADDR, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';
import type { Address } from '../src/api.js';

const SPOOF: Address = { address: '10.6.6.6', port: 666, family: 4 };

function download(p: Pair, id: number, total: number, during: (got: number) => void): number {
  let got = 0;
  let fins = 0;
  p.runUntil(() => {
    during(got);
    const r = readAll(p.client, id);
    got += r.data.length;
    fins += r.fins;
    return fins === 1;
  }, 20_000);
  assert.is(got, total);
  return got;
}

for (const provider of providers) {
  test(`[${provider.name}] a spoofed copy of a client packet (other IP) arriving first: the server challenges the spoofed address, returns to the validated path on the client's next packet, and keeps its congestion and RTT state`, () => {
    let spoofNext = false;
    let spoofed = 0;
    const p: Pair = new Pair({
      provider,
      delay: 10,
      drop: (dir, data) => {
        if (dir === 'up' && spoofNext && (data[0]! & 0x80) === 0) {
          spoofNext = false;
          spoofed++;
          p.emit('up', data.slice(), SPOOF, S_ADDR); // queued first: arrives first; the original is then a duplicate
        }
        return false;
      },
    });
    assert.ok(p.handshake());
    p.runFor(200);
    const id = p.server!.openStream(false)!;
    const total = 600_000;
    p.server!.write(id, new Uint8Array(total).fill(7), true);
    let before: { rtt: number; cwnd: number } | null = null;
    let mark = 0;
    download(p, id, total, (got) => {
      if (!before && got > 200_000) {
        before = { rtt: p.server!.stats.rtt, cwnd: p.server!.stats.cwnd };
        mark = p.log.length;
        spoofNext = true;
      }
    });
    assert.is(spoofed, 1);
    const pk = p.packets(mark);
    const toSpoof = pk.filter((x) => x.dir === 'down' && p.log[x.dgram]!.to.address === SPOOF.address);
    assert.ok(toSpoof.some((x) => x.frames.includes(FrameType.PATH_CHALLENGE)), 'the spoofed address was challenged');
    assert.ok(toSpoof.every((x) => !x.frames.some((f) => (f & ~7) === FrameType.STREAM)), 'no stream data to the unvalidated address');
    assert.equal(p.server!.remote, C_ADDR);
    // The link loses nothing: only what went to the spoofed address (its PATH_CHALLENGE probes) is
    // never acknowledged. A congestion reset would declare the whole flight lost.
    assert.ok(p.server!.stats.lost <= toSpoof.length, `${p.server!.stats.lost} packets declared lost, ${toSpoof.length} sent to the spoofed address`);
    assert.ok(p.server!.stats.rtt < 100, `RTT estimate kept (${p.server!.stats.rtt} ms; initial is 333)`);
    // No reset to the initial window (~12 kB): at most the one congestion response (x0.7) to the
    // lost probes; the window does not grow back past it here because the transfer is flow-control
    // limited by then (RFC 9002 §7.8: no growth while application/flow-control limited).
    assert.ok(p.server!.stats.cwnd >= 0.7 * before!.cwnd - 1, `cwnd ${p.server!.stats.cwnd} vs ${before!.cwnd} before the spoofed packet`);
    assert.is(p.events('server', 'pathChanged').length, 0, 'no migration was ever validated');
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] a real move to a new IP: congestion state resets when the new path is validated, not before`, () => {
    const p = new Pair({ provider, delay: 10 });
    assert.ok(p.handshake());
    p.runFor(200);
    const id = p.server!.openStream(false)!;
    const total = 600_000;
    p.server!.write(id, new Uint8Array(total).fill(3), true);
    let moved = false;
    let lostAtMove = -1;
    let validatedSeen = false;
    p.onEvent = (side, e) => {
      if (side === 'server' && e.type === 'pathChanged') validatedSeen = true;
    };
    let lostBeforeValidation = -1;
    download(p, id, total, (got) => {
      if (!moved && got > 200_000) {
        moved = true;
        p.clientAddr = { address: '10.0.0.99', port: 7000, family: 4 };
        p.client.ping();
        lostAtMove = p.server!.stats.lost;
      }
      if (moved && !validatedSeen) lostBeforeValidation = p.server!.stats.lost;
    });
    assert.ok(validatedSeen, 'the new path was validated');
    assert.is(lostBeforeValidation, lostAtMove, 'no reset (no packets declared lost) before validation');
    assert.ok(p.server!.stats.lost > lostAtMove, 'on validation, packets outstanding on the old path were declared lost and resent (§9.4)');
    assert.equal(p.server!.remote, { address: '10.0.0.99', port: 7000, family: 4 });
    assert.equal(p.bugs(), []);
  });
}

test.run();
