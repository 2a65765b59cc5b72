/**
 * NAT rebinding in the middle of a transfer: the server's congestion window is full, yet its first
 * packet to the client's new address challenges it (RFC 9000 §9.3). Seen in the interop matrix
 * (ngtcp2 client → our server, rebind-addr, decrypted relay log): that first packet carried only
 * an ACK, the PATH_CHALLENGE waited for the window to open.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { FrameType } from '../src/frames.js';
import { Pair, readAll } from './connection-harness.js';

for (const provider of providers.slice(0, 1)) {
  for (const kind of ['port', 'address'] as const) {
    test(`[${provider.name}] NAT rebinding (${kind}) mid-transfer: the first server packet to the new address carries PATH_CHALLENGE`, () => {
      const p = new Pair({ provider, delay: 20 });
      assert.ok(p.handshake());
      p.runFor(200);
      const id = p.server!.openStream(false)!;
      const total = 600_000;
      p.server!.write(id, new Uint8Array(total).fill(7), true);
      let got = 0;
      let fins = 0;
      let mark = -1;
      const next = kind === 'port' ? { address: '10.0.0.1', port: 6001, family: 4 as const } : { address: '10.0.0.55', port: 5000, family: 4 as const };
      assert.ok(
        p.runUntil(() => {
          if (mark < 0 && got > 150_000) {
            mark = p.log.length;
            p.clientAddr = next;
            // The client's next packets (stream data: an ACK is due at once) come from the new address.
            const s = p.client.openStream(true)!;
            p.client.write(s, new Uint8Array(3000).fill(1), true);
          }
          const r = readAll(p.client, id);
          got += r.data.length;
          fins += r.fins;
          return fins === 1;
        }, 30_000),
        `transfer (${got})`,
      );
      assert.is(got, total);
      const firstNew = p.log.findIndex((s, i) => i >= mark && s.dir === 'down' && s.to.address === next.address && s.to.port === next.port);
      assert.ok(firstNew >= 0, 'the server sent to the new address');
      const frames = p.packets(mark).filter((x) => x.dgram === firstNew).flatMap((x) => x.frames);
      assert.ok(frames.includes(FrameType.PATH_CHALLENGE), `first packet to the new address: frames ${frames.map((f) => `0x${f.toString(16)}`).join(',')}`);
      assert.not.ok(p.client.isClosed || p.server!.isClosed);
      assert.equal(p.bugs(), []);
    });
  }
}

test.run();
