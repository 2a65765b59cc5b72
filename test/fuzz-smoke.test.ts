// Every registered fuzz target (test/fuzz/targets.ts) for a short bounded run (< 20 s in all),
// plus checks that the engine itself catches what it must. Long campaigns: `pnpm fuzz`.
// SEED=N changes the seed (default fixed, so CI runs are reproducible); FUZZ_SMOKE_SECONDS (default
// 8) is the total fuzzing budget shared by the targets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { ProtocolViolation } from '../packages/tls-core/src/errors.js';
import { defineTarget, describeFailure, fuzz, fuzzDir, loadCorpus, minimize, saveCrash } from './fuzz/engine.js';
import { concat, mutate } from './fuzz/mutate.js';
import { targets } from './fuzz/targets.js';
import { h3ServerConnTarget } from './fuzz/targets-h3.js';
import { tlsClientFlightTarget, tlsServerFinishedTarget } from './fuzz/targets-tls.js';
import { quicFramesLiveFastTarget, quicFramesLiveTarget, quicPairFastTarget, quicPairSlots, quicPairTarget, type PairRun } from './fuzz/targets-quic-conn.js';
import { Rng } from './support/rng.js';

const seed = Number(process.env.SEED ?? 20261123) >>> 0;
const perTarget = Math.min(1.5, Number(process.env.FUZZ_SMOKE_SECONDS ?? 8) / Math.max(1, targets.length));
const failDir = path.join(fuzzDir, 'corpus-failures');

test('registry: unique, file-safe names; seeds or corpus present', () => {
  const names = new Set<string>();
  for (const t of targets) {
    assert.ok(/^[a-z0-9][a-z0-9._-]*$/.test(t.name), `bad target name ${t.name}`);
    assert.not.ok(names.has(t.name), `duplicate target ${t.name}`);
    names.add(t.name);
    assert.ok(t.seeds().length + loadCorpus(t.name).length > 0, `${t.name} has no seeds and no corpus`);
  }
});

for (const t of targets) {
  test(`fuzz ${t.name} (${perTarget.toFixed(1)} s, seed ${seed})`, () => {
    const st = fuzz(t, { seed, seconds: perTarget, iterations: 200_000, maxInputMs: 5000, corpus: loadCorpus(t.name).map((c) => c.data) });
    if (st.failure) {
      const file = saveCrash(st.failure, failDir);
      assert.unreachable(`${describeFailure(st.failure)}\n  input saved to ${file}`);
    }
    assert.ok(st.inputs > 3, `only ${st.inputs} inputs`);
  });
}

test('session targets: the unmutated seeds complete (the fuzzers start deep in the state machines)', () => {
  type S = { session: { handshakeComplete: boolean }; events: { type: string }[] };
  for (const t of [tlsClientFlightTarget, tlsServerFinishedTarget]) {
    const st = t.run(t.seeds()[0]!) as S;
    assert.ok(st.session.handshakeComplete, `${t.name}: ${st.events.map((e) => e.type).join(',')}`);
    t.check!(st, new Uint8Array(0));
  }
  const h3 = h3ServerConnTarget.run(h3ServerConnTarget.seeds()[0]!) as { events: { type: string }[] };
  const types = h3.events.map((e) => e.type);
  assert.ok(types.includes('settings') && types.includes('end'), types.join(','));
});

const connFlavors = [
  { crypto: 'real' as const, frames: quicFramesLiveTarget, pair: quicPairTarget },
  { crypto: 'fast' as const, frames: quicFramesLiveFastTarget, pair: quicPairFastTarget },
];

for (const { crypto, frames: quicFramesLiveTarget, pair: quicPairTarget } of connFlavors) {
  test(`quic connection targets (${crypto} crypto) are not no-ops: injections go in, outcomes differ`, () => {
    // quic-conn-frames once waited for more datagrams than the handshake makes and injected nothing
    // (every run had the same outcome); quic-pair slots beyond the exchange replaced nothing.
    const frames = new Set<string>();
    for (const seed of quicFramesLiveTarget.seeds()) {
      const st = quicFramesLiveTarget.run(seed) as PairRun;
      assert.ok(st.injected > 0, `nothing injected: ${st.closes.join(',')} ${st.bugs.join(';')}`);
      quicFramesLiveTarget.check!(st, seed);
      frames.add(quicFramesLiveTarget.signature!(st));
    }
    assert.ok(frames.size > 1, `quic-conn-frames: one outcome for every seed: ${[...frames].join(' | ')}`);
    const slots = quicPairSlots(crypto);
    assert.ok(slots >= 4, `${slots} slots`);
    const clean = quicPairTarget.run(new Uint8Array(0)) as PairRun;
    const pair = new Set<string>([quicPairTarget.signature!(clean)]);
    for (let k = 0; k < slots; k++) {
      // The clean datagram itself in slot k: the slot occurs and the outcome is the clean one.
      const st = quicPairTarget.run(concat(Uint8Array.of(k), clean.datagrams[k]!)) as PairRun;
      assert.ok(st.replaced, `slot ${k} never occurs`);
      assert.is(quicPairTarget.signature!(st), quicPairTarget.signature!(clean), `slot ${k}`);
    }
    // A Version Negotiation packet (only an unknown version) instead of the server's first
    // datagram: the client abandons the attempt (RFC 9000 §6.2), a different outcome.
    const k = clean.dirs.indexOf('down');
    const first = clean.datagrams[clean.dirs.indexOf('up')]!;
    const dl = first[5]!;
    const odcid = first.subarray(6, 6 + dl);
    const scid = first.subarray(7 + dl, 7 + dl + first[6 + dl]!);
    const vn = Uint8Array.of(0x80, 0, 0, 0, 0, scid.length, ...scid, odcid.length, ...odcid, 0x1a, 0x2a, 0x3a, 0x4a);
    const st = quicPairTarget.run(concat(Uint8Array.of(k), vn)) as PairRun;
    assert.ok(st.replaced);
    pair.add(quicPairTarget.signature!(st));
    assert.ok(pair.size > 1, `quic-pair: one outcome whatever is replaced: ${[...pair].join(' | ')}`);
  });
}

test('engine: a non-ProtocolViolation exception is found, with seed and iteration', () => {
  // A bug that needs a specific 2-byte pattern somewhere: the mutator finds it quickly.
  const buggy = defineTarget({
    name: 'canary',
    seeds: () => [Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)],
    run: (b) => {
      if (b.length === 0) throw new ProtocolViolation('tls', 50, 'empty');
      for (let i = 0; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1]! >= 0x80) throw new TypeError('boom');
    },
  });
  const st = fuzz(buggy, { seed: 7, iterations: 100_000 });
  assert.ok(st.failure, 'failure found');
  assert.is(st.failure!.kind, 'exception');
  assert.instance(st.failure!.error, TypeError);
  assert.ok(st.rejected > 0, 'ProtocolViolation counted as rejected, not failure');
  assert.match(describeFailure(st.failure!), `--seed 7 --iterations ${st.failure!.iteration + 1}`);
  // Same seed, same iteration: deterministic.
  const again = fuzz(buggy, { seed: 7, iterations: 100_000 });
  assert.is(again.failure!.iteration, st.failure!.iteration);
  assert.equal(again.failure!.input, st.failure!.input);
  // The minimizer shrinks it to the two bytes that matter.
  const min = minimize(buggy, concat(Uint8Array.of(9, 9, 9), st.failure!.input, Uint8Array.of(7, 7)));
  assert.is(min.length, 2);
  assert.is(min[0], 0xff);
  assert.ok(min[1]! >= 0x80);
});

test('engine: invariant checker and acceptable errors', () => {
  class ParseError extends Error {}
  const t = defineTarget<{ n: number }>({
    name: 'canary-check',
    seeds: () => [new Uint8Array(4)],
    run: (b) => {
      if (b.length > 6) throw new ParseError('too long');
      return { n: b.length };
    },
    acceptable: (e) => e instanceof ParseError,
    check: (s) => {
      if (s.n === 0) throw new Error('invariant: empty input accepted');
    },
  });
  const st = fuzz(t, { seed: 3, iterations: 50_000 });
  assert.ok(st.failure);
  assert.is(st.failure!.kind, 'invariant');
  assert.is(st.failure!.input.length, 0);
});

test('mutator: deterministic, bounded, never modifies its input', () => {
  const base = Uint8Array.from({ length: 64 }, (_, i) => i);
  const a = new Rng(9);
  const b = new Rng(9);
  const lens = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const x = mutate(a, base, { maxLen: 100, pool: [base, Uint8Array.of(0x30, 0x03, 1, 2, 3)] });
    const y = mutate(b, base, { maxLen: 100, pool: [base, Uint8Array.of(0x30, 0x03, 1, 2, 3)] });
    assert.equal(x, y);
    assert.ok(x.length <= 100);
    lens.add(x.length);
    for (let k = 0; k < 64; k++) assert.is(base[k], k, 'input not modified');
  }
  assert.ok(lens.size > 20, 'lengths vary (truncation / extension)');
  for (let k = 0; k < 64; k++) assert.is(base[k], k);
});

test.run();
