/**
 * Long fuzz campaigns over the registered targets (test/fuzz/targets.ts).
 *
 *   pnpm fuzz [--target NAME[,NAME...]] [--iterations N] [--seconds S] [--seed X] [--max-input-ms MS] [--list]
 *   pnpm fuzz ... --save-new N                   also keep up to N inputs per target with new outcomes
 *                                                as test/fuzz/corpus/<target>/sig-<hash>.bin (replayed by tests)
 *   pnpm fuzz --target NAME --replay FILE...     run files through the target, print the outcome
 *   pnpm fuzz --target NAME --minimize FILE      shrink a failing input (writes FILE.min.bin)
 *
 * Without --iterations/--seconds each target runs 10 s. --seconds is per target. The seed
 * defaults to the clock and is printed; a failure prints seed + iteration + a reproduce line,
 * writes the input to test/fuzz/corpus/<target>/crash-<hash>.bin (replayed by
 * test/fuzz-corpus.test.ts from then on) and the process exits 1 after the remaining targets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { corpusDir, describeFailure, fuzz, inputHash, loadCorpus, minimize, runOne, saveCrash } from './engine.js';
import { targets } from './targets.js';

const argv = process.argv.slice(2);
let names: string[] = [];
let iterations: number | undefined;
let seconds: number | undefined;
let seed = (Date.now() % 1_000_000_007) >>> 0;
let maxInputMs = 5000;
let list = false;
const replay: string[] = [];
let minimizeFile: string | undefined;
let saveNew = 0;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  const val = (): string => {
    const v = argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    return v!;
  };
  if (a === '--target' || a === '-t') names.push(...val().split(','));
  else if (a === '--iterations' || a === '-n') iterations = num(val(), a);
  else if (a === '--seconds' || a === '-s') seconds = num(val(), a);
  else if (a === '--seed') seed = num(val(), a) >>> 0;
  else if (a === '--max-input-ms') maxInputMs = num(val(), a);
  else if (a === '--list') list = true;
  else if (a === '--replay') replay.push(val());
  else if (a === '--minimize') minimizeFile = val();
  else if (a === '--save-new') saveNew = num(val(), a);
  else if (a === '--help' || a === '-h') usage();
  else if (a === '--') continue;
  else usage(`unknown argument ${a}`);
}

function num(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) usage(`${flag}: not a number: ${v}`);
  return n;
}

function usage(err?: string): never {
  if (err) console.error(err);
  console.error('usage: pnpm fuzz [--target NAME[,NAME...]] [--iterations N] [--seconds S] [--seed X] [--max-input-ms MS] [--list]');
  console.error('       pnpm fuzz ... --save-new N   (keep N new-outcome inputs per target in the corpus)');
  console.error('       pnpm fuzz --target NAME --replay FILE [--replay FILE...] | --minimize FILE');
  console.error(`targets: ${targets.map((t) => t.name).join(', ')}`);
  process.exit(2);
}

if (list) {
  for (const t of targets) console.log(`${t.name.padEnd(24)} ${t.description ?? ''}`);
  process.exit(0);
}
const unknown = names.filter((n) => !targets.some((t) => t.name === n));
if (unknown.length) usage(`unknown target(s): ${unknown.join(', ')}`);
const selected = names.length ? targets.filter((t) => names.includes(t.name)) : targets;
if (replay.length || minimizeFile) {
  if (selected.length !== 1 || !names.length) usage('--replay / --minimize need exactly one --target');
  const t = selected[0]!;
  let bad = 0;
  for (const f of replay) {
    const r = runOne(t, new Uint8Array(fs.readFileSync(f)), maxInputMs);
    if (r.outcome === 'failure') bad++;
    const e = r.error instanceof Error ? (r.error.stack ?? r.error.message) : r.error === undefined ? '' : String(r.error);
    console.log(`${f}: ${r.outcome} (${r.signature}, ${r.ms.toFixed(1)} ms)${e ? `\n  ${e.split('\n').join('\n  ')}` : ''}`);
  }
  if (minimizeFile) {
    const input = new Uint8Array(fs.readFileSync(minimizeFile));
    const min = minimize(t, input, { maxInputMs });
    if (min === input) console.log(`${minimizeFile} does not fail: nothing to minimize`);
    else {
      fs.writeFileSync(`${minimizeFile}.min.bin`, min);
      console.log(`minimized ${input.length} -> ${min.length} bytes: ${minimizeFile}.min.bin\n  ${Buffer.from(min.subarray(0, 64)).toString('hex')}`);
    }
  }
  process.exit(bad ? 1 : 0);
}
if (iterations === undefined && seconds === undefined) seconds = 10;

console.log(`fuzz seed ${seed}; ${selected.length} target(s); ${iterations !== undefined ? `${iterations} inputs` : ''}${iterations !== undefined && seconds !== undefined ? ' or ' : ''}${seconds !== undefined ? `${seconds} s` : ''} each`);
console.log(`${'target'.padEnd(24)} ${'inputs'.padStart(10)} ${'ok'.padStart(9)} ${'rejected'.padStart(9)} ${'outcomes'.padStart(8)} ${'execs/s'.padStart(9)} ${'slowest'.padStart(9)}`);
let failures = 0;
for (const t of selected) {
  const corpus = loadCorpus(t.name).map((c) => c.data);
  let st;
  try {
    let saved = 0;
    const onNewSignature = saveNew
      ? (input: Uint8Array) => {
          if (saved >= saveNew || input.length > 2048) return;
          saved++;
          const d = path.join(corpusDir, t.name);
          fs.mkdirSync(d, { recursive: true });
          fs.writeFileSync(path.join(d, `sig-${inputHash(input)}.bin`), input);
        }
      : undefined;
    st = fuzz(t, { seed, iterations, seconds, maxInputMs, corpus, onNewSignature });
  } catch (e) {
    // seeds() itself failed: a broken target is a failure too.
    failures++;
    console.log(`${t.name.padEnd(24)} SETUP FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    continue;
  }
  console.log(
    `${t.name.padEnd(24)} ${String(st.inputs).padStart(10)} ${String(st.ok).padStart(9)} ${String(st.rejected).padStart(9)} ${String(st.signatures).padStart(8)} ${String(st.execsPerSec).padStart(9)} ${(st.slowestMs.toFixed(1) + 'ms').padStart(9)}`,
  );
  if (st.failure) {
    failures++;
    console.log(describeFailure(st.failure));
    console.log(`  input saved to ${saveCrash(st.failure)}`);
  }
}
if (failures) {
  console.log(`\n${failures} target(s) failed (seed ${seed})`);
  process.exit(1);
}
console.log(`\nno failures (seed ${seed})`);
