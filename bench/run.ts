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
import { formatTable, jsonRow, mergeRows, normalizeRow } from './lib/report.js';
import { selected, type BenchOptions, type BenchRow } from './lib/types.js';

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
  { name: 'cpu', file: 'cpu.ts', fn: 'runCpuBench' },
  { name: 'memory', file: 'memory.ts', fn: 'runMemoryBench' },
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
    const kept = rows.map(normalizeRow(m.name)).filter((r) => selected(r.name, modFilter));
    results.push({ name: m.name, rows: kept, status: 'ok', ms: Date.now() - started });
  } catch (e) {
    results.push({ name: m.name, rows: [], status: 'failed', error: errText(e), ms: Date.now() - started });
  }
}

const merged = mergeRows(results.map((r) => r.rows));

console.log(formatTable([...merged.values()]));
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
