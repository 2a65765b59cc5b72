/**
 * Mutated frames, re-encrypted with the real keys, into a client/server pair (handshake + a small
 * transfer both ways + a key update). Nothing may escape: no exception out of the Connection, no
 * 'error' event (bug), and no INTERNAL_ERROR close caused by peer input. Seeded and bounded;
 * FUZZ_CONN_ITERS=n runs longer.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import { mutate } from '../../../test/fuzz/mutate.js';
import { PacketInspector } from '../../../test/support/quic-pair.js';
import { Pair, readAll } from './connection-harness.js';
import { TransportError } from '../src/errors.js';
import { FrameType } from '../src/frames.js';
import { writeVarint } from '../src/varint.js';

const ITERS = Number(process.env.FUZZ_CONN_ITERS ?? 60);

const VALUES = [0, 1, 2, 3, 4, 7, 8, 63, 64, 100, 1000, 16383, 16384, 65535, 1 << 20, 0x3fffffff, 2 ** 40, 2 ** 53 - 1];
const TYPES = (Object.values(FrameType) as unknown[]).filter((v): v is number => typeof v === 'number');

/** One frame of a random known type with field values from VALUES (encoding valid, semantics random). */
function randomFrame(rng: Rng): Uint8Array {
  const b = new Uint8Array(64 + 40);
  let o = writeVarint(b, 0, TYPES[rng.u32() % TYPES.length]!);
  const fields = rng.u32() % 5;
  for (let i = 0; i < fields; i++) o = writeVarint(b, o, rng.u32() % 3 === 0 ? rng.u32() % 64 : VALUES[rng.u32() % VALUES.length]!);
  const tail = rng.u32() % 40;
  for (let i = 0; i < tail; i++) b[o++] = rng.u32() & 0xff;
  return b.slice(0, o);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

for (const provider of providers) {
  test(`[${provider.name}] fuzz: mutated re-encrypted frames never crash the connection (${ITERS} runs)`, () => {
    let closes = 0;
    for (let it = 0; it < ITERS; it++) {
      const rng = new Rng(`conn-fuzz-${provider.name}-${it}`);
      // One datagram (by index in its direction) gets a mutated packet; a few runs mutate several.
      const target = rng.u32() % 24;
      const dirT = rng.u32() % 2 === 0 ? 'up' : 'down';
      const extra = it % 7 === 0 ? 0.1 : 0;
      let inspector: PacketInspector | null = null;
      let mutated = 0;
      const p: Pair = new Pair({
        provider,
        delay: 5,
        client: { maxDatagramFrameSize: 500 },
        server: { maxDatagramFrameSize: 500 },
        mutate: (dir, data, n) => {
          const opened = inspector!.open(dir, data);
          const hit = (dir === dirT && n === target) || rng.u32() / 2 ** 32 < extra;
          if (opened.length === 0 || !hit) return data;
          const pk = opened[rng.u32() % opened.length]!;
          const mode = rng.u32() % 3;
          const payload =
            mode === 0 ? mutate(rng, pk.payload, { maxLen: 1100 }) : mode === 1 ? concat(pk.payload.subarray(0, rng.u32() % (pk.payload.length + 1)), randomFrame(rng)) : concat(randomFrame(rng), pk.payload);
          mutated++;
          try {
            return inspector!.reseal(data, pk, payload);
          } catch {
            return data;
          }
        },
      });
      inspector = new PacketInspector(provider, p.keyLog);
      try {
        p.handshake(3000);
        if (p.client.handshakeComplete && p.server?.handshakeComplete) {
          const a = p.client.openStream(true);
          if (a !== null) p.client.write(a, new Uint8Array(5000).fill(1), true);
          const b = p.server.openStream(false);
          if (b !== null) p.server.write(b, new Uint8Array(3000).fill(2), true);
          p.client.sendDatagram(new Uint8Array(20));
          p.runFor(200);
          p.client.updateKeys();
          if (a !== null) readAll(p.client, a);
          if (a !== null) readAll(p.server, a);
          if (b !== null) readAll(p.client, b);
          p.client.migrate(p.now);
          p.runFor(500);
        }
        p.runFor(1000);
      } catch (e) {
        assert.unreachable(`iteration ${it}: exception escaped: ${(e as Error).stack}`);
      }
      assert.equal(p.bugs(), [], `iteration ${it}: error events`);
      for (const side of ['client', 'server'] as const) {
        for (const c of p.events(side, 'closed')) {
          closes++;
          if (!c.info.remote && !c.info.application) {
            assert.ok(c.info.code !== TransportError.INTERNAL_ERROR, `iteration ${it} ${side}: INTERNAL_ERROR (${c.info.reason})`);
          }
        }
      }
      if (process.env.FUZZ_CONN_DEBUG) console.log(it, mutated, p.events("client", "closed").map((c) => [c.info.code, c.info.remote, c.info.reason]), p.events("server", "closed").map((c) => [c.info.code, c.info.remote, c.info.reason]));
    }
    assert.ok(closes > 0, 'some mutations closed connections (the fuzzer reaches the parser)');
  });
}

test.run();
