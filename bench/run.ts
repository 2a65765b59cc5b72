/**
 * Side-by-side benchmarks: Petrel and the peers in the same run.
 *
 *   pnpm bench [--quick] [--no-save] [--list] [FILTER...]
 *
 * FILTER selects case modules by name (crypto, tls, peers, ...) or rows by substring of their
 * name (e.g. `pnpm bench --quick quic/bulk`). Prints one table (case, Petrel figure, each peer's
 * figure, ratio) and writes bench/results/<date>-<module>.json per module (machine info, raw
 * samples, median/min/max). See bench/README.md.
 *
 * Adding a case module: one line in MODULES below. The module exports
 * `async function runXxxBench(opts: BenchOptions): Promise<BenchRow[] | void>` (bench/lib/types.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { peerVersions, runPeerBench } from './lib/peers.js';
import { isMissing, selected, summarize, type BenchOptions, type BenchRow, type PeerFigure } from './lib/types.js';

type RunFn = (opts: BenchOptions) => Promise<BenchRow[] | void> | BenchRow[] | void;
interface ModuleEntry {
  /** Module name (filter word, results file suffix). */
  name: string;
  /** A file in bench/ loaded if it exists, and the function it exports... */
  file?: string;
  fn?: string;
  /** ...or a function right here. */
  run?: RunFn;
}

// ---- The registry: one line per case module. --------------------------------------------------
const MODULES: ModuleEntry[] = [
  { name: 'crypto', file: 'crypto.ts', fn: 'runCryptoBench' },
  { name: 'tls', file: 'tls.ts', fn: 'runTlsBench' },
  { name: 'quic', file: 'quic.ts', fn: 'runQuicBench' },
  { name: 'h3', file: 'h3.ts', fn: 'runH3Bench' },
  { name: 'peers', run: runPeerBench },
];
// -------------------------------------------------------------------------------------------------

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.join(benchDir, 'results');

const argv = process.argv.slice(2);
let quick = false;
let save = true;
let list = false;
const filters: string[] = [];
for (const a of argv) {
  if (a === '--quick') quick = true;
  else if (a === '--no-save') save = false;
  else if (a === '--list') list = true;
  else if (a === '--') continue;
  else if (a === '--help' || a === '-h' || a.startsWith('-')) {
    console.error('usage: pnpm bench [--quick] [--no-save] [--list] [FILTER...]');
    process.exit(a.startsWith('-h') || a === '--help' ? 0 : 2);
  } else filters.push(a);
}

if (list) {
  for (const m of MODULES) {
    const present = !m.file || fs.existsSync(path.join(benchDir, m.file));
    console.log(`${m.name.padEnd(10)} ${m.file ? `bench/${m.file} ${m.fn}()` : 'built in'}${present ? '' : '  (file not present yet)'}`);
  }
  process.exit(0);
}

interface ModuleResult {
  name: string;
  rows: BenchRow[];
  status: 'ok' | 'absent' | 'failed';
  error?: string;
  ms: number;
}

const t0 = Date.now();
const date = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
console.error(`petrel bench ${quick ? '--quick ' : ''}${filters.join(' ')}`.trim());
const results: ModuleResult[] = [];
for (const m of MODULES) {
  // A filter that names a module runs all of that module; other filters select rows (by
  // substring) in every module. Only module names given: the other modules are skipped.
  const moduleNames = filters.filter((f) => MODULES.some((x) => x.name === f));
  if (moduleNames.length && !moduleNames.includes(m.name) && moduleNames.length === filters.length) continue;
  const modFilter = moduleNames.includes(m.name) ? [] : filters.filter((f) => !moduleNames.includes(f));
  if (moduleNames.length && !moduleNames.includes(m.name) && modFilter.length === 0) continue;
  const started = Date.now();
  let run: RunFn | undefined = m.run;
  if (!run && m.file) {
    const file = path.join(benchDir, m.file);
    if (!fs.existsSync(file)) {
      results.push({ name: m.name, rows: [], status: 'absent', error: `bench/${m.file} not present yet`, ms: 0 });
      continue;
    }
    try {
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      const f = mod[m.fn ?? ''];
      if (typeof f !== 'function') throw new Error(`bench/${m.file} does not export ${m.fn}()`);
      run = f as RunFn;
    } catch (e) {
      results.push({ name: m.name, rows: [], status: 'failed', error: errText(e), ms: Date.now() - started });
      continue;
    }
  }
  console.error(`[${m.name}]`);
  try {
    const rows = (await run!({ quick, filter: modFilter })) ?? [];
    const kept = rows.map(validRow(m.name)).filter((r) => selected(r.name, modFilter));
    results.push({ name: m.name, rows: kept, status: 'ok', ms: Date.now() - started });
  } catch (e) {
    results.push({ name: m.name, rows: [], status: 'failed', error: errText(e), ms: Date.now() - started });
  }
}

/**
 * Accepts BenchRow, and benchmark.js-style results ({case, provider?, opsPerSec, samples:
 * seconds per op, rme?}) as bench/crypto.ts returns them: those become '<module>/<case> [provider]'
 * rows in ops/s.
 */
function validRow(mod: string) {
  return (raw: unknown): BenchRow => {
    const r = raw as Partial<BenchRow> & { case?: unknown; provider?: unknown; opsPerSec?: unknown; samples?: unknown; rme?: unknown };
    if (r && typeof r.name === 'string' && typeof r.unit === 'string') return r as BenchRow;
    if (r && typeof r.case === 'string' && typeof r.opsPerSec === 'number') {
      const secs = Array.isArray(r.samples) ? (r.samples as unknown[]).filter((x): x is number => typeof x === 'number' && x > 0) : [];
      return {
        name: `${mod}/${r.case}${typeof r.provider === 'string' ? ` [${r.provider}]` : ''}`,
        unit: 'ops/s',
        petrel: secs.length ? secs.map((x) => 1 / x) : r.opsPerSec,
        extra: { opsPerSec: r.opsPerSec, rme: r.rme },
      };
    }
    throw new Error(`module ${mod} returned a row without name/unit: ${JSON.stringify(raw).slice(0, 300)}`);
  };
}

// Merge rows of the same name across modules: Petrel figure from one, peer figures from another.
const merged = new Map<string, BenchRow>();
for (const res of results)
  for (const r of res.rows) {
    const m = merged.get(r.name);
    if (!m) merged.set(r.name, { ...r, peers: { ...(r.peers ?? {}) } });
    else {
      if (r.petrel !== undefined) m.petrel = r.petrel;
      if (r.petrelMissing && m.petrel === undefined) m.petrelMissing = r.petrelMissing;
      Object.assign(m.peers!, r.peers ?? {});
      if (r.notes) m.notes = m.notes ? `${m.notes}; ${r.notes}` : r.notes;
      if (r.extra) m.extra = { ...(m.extra ?? {}), ...r.extra };
      if (r.higherIsBetter !== undefined) m.higherIsBetter = r.higherIsBetter;
    }
  }

printTable([...merged.values()]);
for (const res of results) if (res.status !== 'ok') console.log(`module ${res.name}: ${res.status === 'absent' ? 'not run' : 'FAILED'}: ${res.error}`);

const machine = await machineInfo();
if (save) {
  fs.mkdirSync(resultsDir, { recursive: true });
  for (const res of results) {
    if (res.status === 'absent') continue;
    const file = path.join(resultsDir, `${date}-${res.name}.json`);
    const rows = res.rows.map((r) => jsonRow(merged.get(r.name) ?? r));
    fs.writeFileSync(file, JSON.stringify({ date, module: res.name, quick, filters, status: res.status, error: res.error, seconds: res.ms / 1000, machine, rows }, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
console.log(`bench done in ${((Date.now() - t0) / 1000).toFixed(0)} s (${machine.cpus.count} x ${machine.cpus.model}, node ${machine.node})`);
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);

// ---------------------------------------------------------------------------------------------

function errText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** Ratio Petrel / peer, oriented so that > 1 means Petrel is better. */
export function ratio(row: BenchRow, peer: PeerFigure | undefined): number | undefined {
  if (row.petrel === undefined || peer === undefined || isMissing(peer)) return undefined;
  const p = summarize(row.petrel).median;
  const q = summarize(peer).median;
  if (!(p > 0) || !(q > 0)) return undefined;
  return row.higherIsBetter === false ? q / p : p / q;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(a >= 1e8 ? 0 : 2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(a >= 1e6 ? 0 : 1)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toPrecision(3);
}

function fig(f: number[] | number): string {
  const s = summarize(f);
  return s.samples.length > 1 ? `${fmt(s.median)} [${fmt(s.min)}-${fmt(s.max)}]` : fmt(s.median);
}

function printTable(rows: BenchRow[]): void {
  const lines: string[][] = [['case', 'unit', 'petrel', 'peer', 'peer figure', 'ratio']];
  const notes: string[] = [];
  for (const r of rows) {
    const petrel = r.petrel !== undefined ? fig(r.petrel) : `n/a (${r.petrelMissing ?? 'not implemented yet'})`;
    const peersList = Object.entries(r.peers ?? {});
    if (peersList.length === 0) lines.push([r.name, r.unit, petrel, '-', '-', '-']);
    peersList.forEach(([name, f], i) => {
      const rt = ratio(r, f);
      let pf: string;
      if (isMissing(f)) {
        notes.push(`${r.name} / ${name}: ${f.missing}`);
        pf = `MISSING [${notes.length}]`;
      } else pf = fig(f);
      lines.push([i === 0 ? r.name : '', i === 0 ? r.unit : '', i === 0 ? petrel : '', name, pf, rt === undefined ? '-' : `${rt.toFixed(2)}x`]);
    });
  }
  const w = lines[0]!.map((_, c) => Math.min(60, Math.max(...lines.map((l) => l[c]!.length))));
  console.log('');
  for (const [i, l] of lines.entries()) {
    console.log(l.map((x, c) => (c === 5 ? x.padStart(w[c]!) : x.padEnd(w[c]!))).join('  ').trimEnd());
    if (i === 0) console.log(w.map((n) => '-'.repeat(n)).join('  '));
  }
  if (rows.length === 0) console.log('(no rows)');
  notes.forEach((n, i) => console.log(`[${i + 1}] ${n.split('\n')[0]}`));
  console.log('ratio = Petrel / peer (inverted for lower-is-better units): > 1 means Petrel is better.\n');
}

function jsonRow(r: BenchRow) {
  const peersOut: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(r.peers ?? {})) peersOut[k] = isMissing(f) ? f : { ...summarize(f), ratio: ratio(r, f) ?? null };
  return {
    name: r.name,
    unit: r.unit,
    higherIsBetter: r.higherIsBetter ?? true,
    petrel: r.petrel !== undefined ? summarize(r.petrel) : { missing: r.petrelMissing ?? 'not implemented yet' },
    peers: peersOut,
    notes: r.notes,
    extra: r.extra,
  };
}

async function machineInfo() {
  const cpus = os.cpus();
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: benchDir, encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    /* not a git checkout */
  }
  return {
    cpus: { count: cpus.length, model: cpus[0]?.model.trim() ?? 'unknown', mhz: cpus[0]?.speed ?? 0 },
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    commit,
    peers: await peerVersions(),
  };
}
