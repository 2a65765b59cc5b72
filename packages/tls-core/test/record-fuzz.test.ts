/**
 * Fuzz the record parser: random records and mutated valid record streams, fed in random chunk
 * sizes to layers in different states. Nothing but ProtocolViolation may escape poll(), events
 * must respect the limits, and after an error the layer keeps failing with the same error.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { ProtocolViolation } from '../src/errors.js';
import type { CipherSuite } from '../src/handshake/api.js';
import { RecordLayer, MAX_PLAINTEXT } from '../src/record/record-layer.js';

const ITER = Number(process.env.FUZZ_ITER) || 800;
const SUITES: CipherSuite[] = ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'];

function hs(type: number, len: number): Uint8Array {
  const m = new Uint8Array(4 + len).fill(0x5a);
  m[0] = type;
  m[1] = len >> 16;
  m[2] = (len >> 8) & 0xff;
  m[3] = len & 0xff;
  return m;
}

/** A client/server pair at 'application' with a valid stream of records from server to client. */
function scenario(p: CryptoProvider, rng: Rng): { reader: RecordLayer; wire: Uint8Array; setup: (r: RecordLayer) => void } {
  const suite = rng.pick(SUITES);
  const secret = new Uint8Array(32).fill(rng.int(256));
  const kind = rng.int(4);
  const writer = new RecordLayer({ provider: p, role: kind === 3 ? 'client' : 'server', maxFragment: rng.pick([5, 100, 16384]), padding: rng.pick([0, 0, 3]) });
  const parts: Uint8Array[] = [];
  let setup: (r: RecordLayer) => void = () => {};
  if (kind === 0) {
    // unprotected ServerHello, then protected handshake
    parts.push(writer.writeHandshake('initial', hs(2, rng.int(200))));
    writer.installSecret('handshake', 'write', suite, secret);
    parts.push(writer.writeHandshake('handshake', hs(8, rng.int(50))), writer.writeHandshake('handshake', hs(20, 32)));
    setup = (r) => r.installSecret('handshake', 'read', suite, secret);
  } else if (kind === 1 || kind === 2) {
    writer.installSecret('application', 'write', suite, secret);
    for (let i = 0; i < 3; i++) {
      const t = rng.int(4);
      if (t === 0) parts.push(writer.writeAppData(rng.bytes(rng.int(3000))));
      else if (t === 1) parts.push(writer.writeHandshake('application', hs(4, rng.int(300))));
      else if (t === 2) parts.push(writer.writeAlert(rng.pick([0, 10, 90])));
      else parts.push(writer.writeHandshake('application', hs(24, 1)));
    }
    setup = (r) => forceApplication(r, suite, secret);
  } else {
    // client → server: ClientHello, CCS + early data
    parts.push(writer.writeHandshake('initial', hs(1, rng.int(400))));
    writer.installSecret('early', 'write', suite, secret);
    parts.push(writer.writeAppData(rng.bytes(rng.int(100))), writer.writeHandshake('early', hs(5, 0)));
    setup = (r) => {
      r.installSecret('early', 'read', suite, secret);
      r.acceptEarlyData(rng.int(200));
      if (rng.chance(0.5)) r.rejectEarlyData(rng.int(500));
    };
  }
  let total = 0;
  for (const x of parts) total += x.length;
  const wire = new Uint8Array(total);
  let o = 0;
  for (const x of parts) {
    wire.set(x, o);
    o += x.length;
  }
  const reader = new RecordLayer({ provider: p, role: kind === 3 ? 'server' : 'client' });
  return { reader, wire, setup };
}

/** Drives a fresh reader to the application level the way a handshake would. */
function forceApplication(r: RecordLayer, suite: CipherSuite, secret: Uint8Array): void {
  // Build a matching peer whose records walk the reader through the levels with throwaway keys.
  const p = providersByLayer.get(r)!;
  const peer = new RecordLayer({ provider: p, role: r.role === 'client' ? 'server' : 'client' });
  const k = new Uint8Array(32).fill(9);
  r.receive(peer.writeHandshake('initial', hs(r.role === 'client' ? 2 : 1, 10)));
  while (r.poll());
  r.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', k);
  peer.installSecret('handshake', 'write', 'TLS_AES_128_GCM_SHA256', k);
  r.receive(peer.writeHandshake('handshake', hs(20, 32)));
  while (r.poll());
  r.installSecret('application', 'read', suite, secret);
  if (r.poll() !== undefined || r.readLevel !== 'application') throw new Error('setup failed');
}
const providersByLayer = new WeakMap<RecordLayer, CryptoProvider>();

function mutate(rng: Rng, wire: Uint8Array): Uint8Array {
  const w = Uint8Array.from(wire);
  const n = rng.range(1, 4);
  for (let i = 0; i < n && w.length > 0; i++) {
    const pos = rng.int(w.length);
    switch (rng.int(5)) {
      case 0: w[pos] = rng.int(256); break;
      case 1: w[pos]! ^= 1 << rng.int(8); break;
      case 2: return w.subarray(0, pos);
      case 3: { const x = new Uint8Array(w.length + 5); x.set(w.subarray(0, pos)); x.set(rng.bytes(5), pos); x.set(w.subarray(pos), pos + 5); return x; }
      default: w[pos] = rng.pick([0, 20, 21, 22, 23, 0x40, 0xff]);
    }
  }
  return w;
}

function feed(r: RecordLayer, rng: Rng, wire: Uint8Array): string {
  let err: ProtocolViolation | null = null;
  let o = 0;
  let events = 0;
  while (o < wire.length) {
    const n = rng.range(1, Math.max(1, Math.min(wire.length - o, rng.pick([1, 7, 100, 5000, 100000]))));
    // owned (read in place) or copied: both paths of the input queue
    r.receive(wire.subarray(o, o + n), (o & 1) === 0);
    o += n;
    try {
      for (let i = 0; i < 10000; i++) {
        const e = r.poll();
        if (!e) break;
        events++;
        if (e.type === 'appData') assert.ok(e.data.length <= MAX_PLAINTEXT);
        if (e.type === 'handshake') assert.ok(e.data.length > 0 && e.data.length <= MAX_PLAINTEXT);
      }
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      err = e;
      break;
    }
  }
  if (err) {
    // sticky
    try {
      r.poll();
      assert.unreachable('poll after error must throw');
    } catch (e) {
      assert.is(e, err);
    }
    return `err:${err.code}`;
  }
  return `ok:${events}`;
}

test('random bytes and random records never raise anything but ProtocolViolation', () => {
  for (const p of providers) {
    const rng = new Rng(`record-random-${p.name}`);
    for (let i = 0; i < ITER; i++) {
      const r = new RecordLayer({ provider: p, role: rng.chance(0.5) ? 'client' : 'server' });
      providersByLayer.set(r, p);
      if (rng.chance(0.3)) forceApplication(r, 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
      if (rng.chance(0.2) && r.readLevel === 'initial') r.rejectEarlyData(rng.int(1000));
      const parts: Uint8Array[] = [];
      for (let k = rng.range(1, 5); k > 0; k--) {
        const len = rng.chance(0.1) ? rng.int(20000) : rng.int(60);
        const rec = new Uint8Array(5 + len);
        rec[0] = rng.pick([20, 21, 22, 23, rng.int(256)]);
        rec[1] = 3;
        rec[2] = rng.int(5);
        const l = rng.chance(0.9) ? len : rng.int(65536);
        rec[3] = l >> 8;
        rec[4] = l & 0xff;
        rec.set(rng.bytes(len), 5);
        if (rec[0] === 20 && rng.chance(0.5)) rec[5] = 1;
        parts.push(rec);
      }
      const wire = new Uint8Array(parts.reduce((a, x) => a + x.length, 0));
      let o = 0;
      for (const x of parts) { wire.set(x, o); o += x.length; }
      try {
        feed(r, rng, wire);
      } catch (e) {
        assert.unreachable(`seed ${rng.seed} iteration ${i}: ${(e as Error).stack}`);
      }
    }
  }
});

test('mutated valid record streams never raise anything but ProtocolViolation', () => {
  for (const p of providers) {
    const rng = new Rng(`record-mutate-${p.name}`);
    const outcomes = new Set<string>();
    for (let i = 0; i < ITER; i++) {
      const { reader, wire, setup } = scenario(p, rng);
      providersByLayer.set(reader, p);
      const mutated = rng.chance(0.1) ? wire : mutate(rng, wire);
      try {
        // walk the reader: the first record at the unprotected level, then keys
        setup(reader);
        outcomes.add(feed(reader, rng, mutated).split(':')[0]!);
      } catch (e) {
        assert.unreachable(`seed ${rng.seed} iteration ${i}: ${(e as Error).stack}`);
      }
    }
    // the fuzzer reaches both outcomes
    assert.ok(outcomes.has('ok') && outcomes.has('err'), [...outcomes].join(','));
  }
});

test.run();
