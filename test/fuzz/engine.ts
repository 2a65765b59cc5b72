/**
 * The fuzz loop shared by `pnpm fuzz` (test/fuzz/run.ts), test/fuzz-smoke.test.ts and
 * test/fuzz-corpus.test.ts.
 *
 * A target feeds one input to one parser / state machine. Anything it throws must be a
 * ProtocolViolation, or an error the target declares acceptable (e.g. DerError for the raw DER
 * reader); anything else (TypeError, RangeError, a plain Error, a failed invariant in `check`,
 * an input slower than maxInputMs) is a failure.
 *
 * Crude feedback without coverage: an input whose outcome signature (error class + message with
 * digits stripped, or "ok") has not been seen yet joins the mutation pool, so inputs that get
 * further into a parser are mutated further.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isProtocolViolation } from '../../packages/tls-core/src/errors.js';
import { Rng, hashString } from '../support/rng.js';
import { mutate } from './mutate.js';

export interface FuzzTarget<S = unknown> {
  /** Unique, file-name safe (used for corpus folders and --target). */
  name: string;
  /** One-line description. */
  description?: string;
  /** Valid inputs captured from real encoders / handshakes (corpus files are added to these). */
  seeds(): Uint8Array[];
  /**
   * Feeds one input. Must throw only ProtocolViolation or what `acceptable` accepts. May return
   * a state object that `check` then inspects.
   */
  run(input: Uint8Array): S | void;
  /** Typed parse errors this target may throw besides ProtocolViolation. */
  acceptable?(e: unknown): boolean;
  /**
   * The entry point must not throw at all, not even ProtocolViolation (e.g. TlsSession.receive,
   * which reports errors as events): every exception is a failure.
   */
  strict?: boolean;
  /** Invariant checker, called after every input with what `run` returned (not called when run threw). */
  check?(state: S, input: Uint8Array): void;
  /**
   * Outcome class of an accepted input (e.g. the alert a session sent), so inputs reaching new
   * outcomes join the mutation pool; default "ok".
   */
  signature?(state: S): string;
  /** Largest generated input (default max(4096, 2 x largest seed)). */
  maxLen?: number;
  /** Tokens for the mutator (type codes, magic values). */
  dict?: Uint8Array[];
}

/** Erases the state type for registries. */
export function defineTarget<S>(t: FuzzTarget<S>): FuzzTarget<unknown> {
  return t as FuzzTarget<unknown>;
}

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs (seeds included). */
  iterations?: number;
  /** Stop after this many seconds. */
  seconds?: number;
  /** An input slower than this is a failure (default 5000 ms; GC pauses on a loaded machine reach 1-2 s). */
  maxInputMs?: number;
  /** Extra inputs (corpus files) to start from. */
  corpus?: Uint8Array[];
  /** Pool cap for interesting inputs (default 512). */
  poolCap?: number;
  /** Called for each generated input with an outcome signature not seen before. */
  onNewSignature?(input: Uint8Array, signature: string): void;
}

export interface FuzzFailure {
  target: string;
  seed: number;
  iteration: number;
  input: Uint8Array;
  error: unknown;
  /** 'exception' | 'invariant' | 'slow' */
  kind: string;
}

export interface FuzzStats {
  target: string;
  seed: number;
  inputs: number;
  ok: number;
  rejected: number;
  signatures: number;
  ms: number;
  execsPerSec: number;
  slowestMs: number;
  failure?: FuzzFailure;
}

export const fuzzDir = path.dirname(fileURLToPath(import.meta.url));
export const corpusDir = path.join(fuzzDir, 'corpus');

/** Is `e` something a parser may throw on bad input? */
export function isAcceptable(t: FuzzTarget, e: unknown): boolean {
  if (t.strict) return false;
  if (isProtocolViolation(e)) return true;
  if (e instanceof Error && e.name === 'ProtocolViolation' && typeof (e as { code?: unknown }).code === 'number') return true;
  return t.acceptable ? t.acceptable(e) : false;
}

export interface RunOne {
  outcome: 'ok' | 'rejected' | 'failure';
  signature: string;
  error?: unknown;
  kind?: string;
  ms: number;
}

/** Runs one input through a target and classifies the result. */
export function runOne(t: FuzzTarget, input: Uint8Array, maxInputMs = 5000): RunOne {
  const t0 = performance.now();
  let state: unknown;
  try {
    // A copy: targets may modify their input (e.g. header protection removal works in place).
    state = t.run(input.slice());
  } catch (e) {
    const ms = performance.now() - t0;
    if (isAcceptable(t, e)) return { outcome: 'rejected', signature: signatureOf(e), ms };
    return { outcome: 'failure', signature: signatureOf(e), error: e, kind: 'exception', ms };
  }
  if (t.check) {
    try {
      t.check(state, input);
    } catch (e) {
      return { outcome: 'failure', signature: 'invariant', error: e, kind: 'invariant', ms: performance.now() - t0 };
    }
  }
  const ms = performance.now() - t0;
  let signature = 'ok';
  if (t.signature) {
    try {
      signature = `ok:${t.signature(state)}`;
    } catch {
      signature = 'ok:?';
    }
  }
  if (ms > maxInputMs) return { outcome: 'failure', signature: 'slow', error: new Error(`input took ${ms.toFixed(0)} ms (> ${maxInputMs} ms)`), kind: 'slow', ms };
  return { outcome: 'ok', signature, ms };
}

function signatureOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.name}:${typeof code === 'number' ? code : ''}:${e.message.replace(/0x[0-9a-f]+|\d+/gi, '#').slice(0, 80)}`;
  }
  return `thrown:${typeof e}`;
}

/** Fuzzes one target until iterations or seconds run out, or the first failure. */
export function fuzz(t: FuzzTarget, opts: FuzzOptions): FuzzStats {
  const seed = (opts.seed ^ hashString(t.name)) >>> 0;
  const rng = new Rng(seed);
  const seeds = [...t.seeds(), ...(opts.corpus ?? [])];
  const maxLen = t.maxLen ?? Math.max(4096, 2 * Math.max(0, ...seeds.map((s) => s.length)));
  const pool: Uint8Array[] = seeds.length ? seeds.slice() : [new Uint8Array(0)];
  const poolCap = opts.poolCap ?? 512;
  const seen = new Set<string>();
  const maxIt = opts.iterations ?? Infinity;
  const deadline = opts.seconds !== undefined ? Date.now() + opts.seconds * 1000 : Infinity;
  const maxInputMs = opts.maxInputMs ?? 5000;
  const stats: FuzzStats = { target: t.name, seed: opts.seed, inputs: 0, ok: 0, rejected: 0, signatures: 0, ms: 0, execsPerSec: 0, slowestMs: 0 };
  const t0 = Date.now();
  for (let it = 0; it < maxIt; it++) {
    if ((it & 63) === 0 && Date.now() > deadline) break;
    let input: Uint8Array;
    if (it < seeds.length) input = seeds[it]!; // the seeds themselves first
    else if (rng.chance(0.02)) input = rng.bytes(rng.int(Math.min(maxLen, 256) + 1));
    else input = mutate(rng, rng.pick(pool), { pool, maxLen, dict: t.dict });
    const r = runOne(t, input, maxInputMs);
    stats.inputs++;
    if (r.ms > stats.slowestMs) stats.slowestMs = r.ms;
    if (r.outcome === 'failure') {
      stats.failure = { target: t.name, seed: opts.seed, iteration: it, input, error: r.error, kind: r.kind ?? 'exception' };
      break;
    }
    if (r.outcome === 'ok') stats.ok++;
    else stats.rejected++;
    if (!seen.has(r.signature)) {
      seen.add(r.signature);
      if (it >= seeds.length) {
        opts.onNewSignature?.(input, r.signature);
        if (pool.length < poolCap) pool.push(input);
        else pool[seeds.length + rng.int(poolCap - seeds.length)] = input;
      }
    }
  }
  stats.ms = Date.now() - t0;
  stats.signatures = seen.size;
  stats.execsPerSec = stats.ms > 0 ? Math.round((stats.inputs * 1000) / stats.ms) : stats.inputs;
  return stats;
}

/** Short content hash for file names. */
export function inputHash(b: Uint8Array): string {
  // Two independent 32-bit FNV-1a variants (not cryptographic; only names files).
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.length;
  for (let i = 0; i < b.length; i++) {
    h1 = Math.imul(h1 ^ b[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ b[i]!, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** Corpus files of a target (test/fuzz/corpus/<name>/*.bin), sorted by name. */
export function loadCorpus(name: string, dir = corpusDir): { file: string; data: Uint8Array }[] {
  const d = path.join(dir, name);
  if (!fs.existsSync(d)) return [];
  return fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ file: path.join(d, f), data: new Uint8Array(fs.readFileSync(path.join(d, f))) }));
}

/** Writes a failing input as <dir>/<target>/crash-<hash>.bin and returns the path. */
export function saveCrash(f: FuzzFailure, dir = corpusDir): string {
  const d = path.join(dir, f.target);
  fs.mkdirSync(d, { recursive: true });
  const file = path.join(d, `crash-${inputHash(f.input)}.bin`);
  fs.writeFileSync(file, f.input);
  return file;
}

/** Human-readable failure report (seed, iteration, input prefix, stack). */
export function describeFailure(f: FuzzFailure): string {
  const hex = Buffer.from(f.input.subarray(0, 64)).toString('hex');
  const err = f.error instanceof Error ? (f.error.stack ?? `${f.error.name}: ${f.error.message}`) : String(f.error);
  return [
    `FUZZ FAILURE in target ${f.target} (${f.kind}) at seed ${f.seed}, iteration ${f.iteration}`,
    `  input (${f.input.length} bytes): ${hex}${f.input.length > 64 ? '...' : ''}`,
    `  reproduce: pnpm fuzz --target ${f.target} --seed ${f.seed} --iterations ${f.iteration + 1}`,
    `  ${err.split('\n').join('\n  ')}`,
  ].join('\n');
}

/**
 * Shrinks a failing input while it keeps failing the same way (same kind and error class):
 * removes chunks of halving sizes, then zeroes / lowers single bytes. Bounded by `maxRuns`.
 */
export function minimize(t: FuzzTarget, input: Uint8Array, opts: { maxRuns?: number; maxInputMs?: number } = {}): Uint8Array {
  const first = runOne(t, input, opts.maxInputMs);
  if (first.outcome !== 'failure') return input;
  const key = (r: RunOne) => `${r.kind}:${r.error instanceof Error ? r.error.name : typeof r.error}`;
  const want = key(first);
  let runs = 0;
  const maxRuns = opts.maxRuns ?? 20_000;
  const fails = (b: Uint8Array): boolean => {
    runs++;
    const r = runOne(t, b, opts.maxInputMs);
    return r.outcome === 'failure' && key(r) === want;
  };
  let cur = input.slice();
  for (let chunk = cur.length >> 1; chunk >= 1 && runs < maxRuns; chunk >>= 1) {
    for (let at = 0; at + chunk <= cur.length && runs < maxRuns; ) {
      const cand = new Uint8Array(cur.length - chunk);
      cand.set(cur.subarray(0, at));
      cand.set(cur.subarray(at + chunk), at);
      if (fails(cand)) cur = cand;
      else at += chunk;
    }
  }
  for (let i = 0; i < cur.length && runs < maxRuns; i++) {
    for (const v of [0, cur[i]! >> 1]) {
      if (cur[i] === v) continue;
      const cand = cur.slice();
      cand[i] = v;
      if (fails(cand)) {
        cur = cand;
        break;
      }
    }
  }
  return cur;
}
