/**
 * Shared harness of the QUIC / HTTP/3 / memory benches: one "scenario" = one server process and
 * one client process, both under `/usr/bin/time` (peak RSS and CPU seconds per process), run by
 * a bounded bash script, optionally inside a fresh network namespace (`unshare -n`, for quic-go's
 * fixed UDP port 443). Petrel's sides are bench/quic-proc.ts child processes.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { peers, runBounded } from '../test/support/peers.js';
import type { PeerFigure } from './lib/types.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(benchDir, '..');
export const procFile = path.join(benchDir, 'quic-proc.ts');
export const NODE_FLAGS = ['--conditions=petrel-src', '--import', 'tsx'];

/** Shell-quotes one word. */
export const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
export const cmd = (...words: string[]): string => words.map(q).join(' ');

let bundled: string | null | undefined;

/**
 * bench/quic-proc.ts bundled into one plain JS file (esbuild, the one tsx ships with), so that the
 * Petrel processes run like compiled code: the tsx loader costs ~45 MB of RSS and ~0.3 s of CPU at
 * start-up per process, which would otherwise be counted as Petrel's. Built once per run from the
 * current sources into a temporary folder; null (fall back to tsx) if esbuild cannot be loaded.
 */
export async function prepareBundle(): Promise<string | null> {
  if (bundled !== undefined) return bundled;
  try {
    const req = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'));
    const esbuild = req('esbuild') as { build(o: Record<string, unknown>): Promise<unknown> };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-bundle-'));
    const out = path.join(dir, 'quic-proc.mjs');
    await esbuild.build({
      entryPoints: [procFile],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['petrel-src'],
      outfile: out,
      logLevel: 'silent',
      banner: { js: "import { createRequire as __petrelCreateRequire } from 'node:module'; const require = __petrelCreateRequire(import.meta.url);" },
    });
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    bundled = out;
  } catch (e) {
    log(`(bench: cannot bundle quic-proc.ts with esbuild, Petrel processes run under tsx: ${errText(e)})`);
    bundled = null;
  }
  return bundled;
}

/** Node arguments that run bench/quic-proc.ts (the bundle if prepareBundle() made one). */
export function petrelArgs(extraNodeFlags: string[], ...args: string[]): string[] {
  return bundled ? [...extraNodeFlags, bundled, ...args] : [...extraNodeFlags, ...NODE_FLAGS, procFile, ...args];
}

/** The command line of a Petrel bench process (bench/quic-proc.ts MODE ...). */
export function petrelCmd(extraNodeFlags: string[], ...args: string[]): string {
  return cmd(process.execPath, ...petrelArgs(extraNodeFlags, ...args));
}

/** How the Petrel processes run (for the notes). */
export const petrelRuntime = (): string => (bundled ? 'Petrel processes: node + esbuild bundle of the sources' : 'Petrel processes: node + tsx (loader overhead included)');

export interface ProcTime {
  maxRssMB: number;
  cpuS: number;
}

export interface ScenarioResult {
  ok: boolean;
  error?: string;
  /** Client process wall time (start to exit), ms. */
  wallMs: number;
  server: ProcTime | null;
  client: ProcTime | null;
  /** The Petrel client's RESULT line, if any. */
  result: Record<string, number | string> | null;
  clientOut: string;
}

const SCRIPT = `
set -u
srv=$1 cli=$2 proto=$3 port=$4 t=$5 netns=$6 limit=$7
if [ "$netns" = 1 ]; then ip link set lo up || exit 90; fi
BENCH_NO_STDIN=1 /usr/bin/time -f 'TIME %M %U %S' -o "$t/srv.time" bash -c "exec $srv" >"$t/srv.out" 2>&1 </dev/null &
tp=$!
up=0
for _ in $(seq 400); do ss -Hl\${proto}n "sport = :$port" | grep -q . && { up=1; break; }; kill -0 $tp 2>/dev/null || break; sleep 0.025; done
if [ $up = 0 ]; then echo "SERVER_DOWN"; tail -5 "$t/srv.out"; kill $tp 2>/dev/null; exit 0; fi
s=$(date +%s%N)
timeout "$limit" /usr/bin/time -f 'TIME %M %U %S' -o "$t/cli.time" bash -c "exec $cli" >"$t/cli.out" 2>&1 </dev/null
rc=$?
e=$(date +%s%N)
child=$(pgrep -P $tp | head -1)
[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
for _ in $(seq 50); do kill -0 $tp 2>/dev/null || break; sleep 0.05; done
[ -n "$child" ] && kill -KILL "$child" 2>/dev/null
wait $tp 2>/dev/null
echo "WALL_NS $((e - s)) RC $rc"
echo "SRV $(grep TIME "$t/srv.time" 2>/dev/null)"
echo "CLI $(grep TIME "$t/cli.time" 2>/dev/null)"
echo "--- client"
tail -c 3000 "$t/cli.out"
echo "--- server"
tail -c 600 "$t/srv.out"
`;

function parseTime(line: string | undefined): ProcTime | null {
  const m = /TIME (\d+) ([\d.]+) ([\d.]+)/.exec(line ?? '');
  return m ? { maxRssMB: Number(m[1]) / 1024, cpuS: Number(m[2]) + Number(m[3]) } : null;
}

/**
 * Runs server command `srv` (must open `proto` port `port`), then client command `cli` to
 * completion (at most limitS seconds), then stops the server with SIGTERM.
 */
export async function scenario(o: { srv: string; cli: string; port: number; proto?: 'u' | 't'; netns?: boolean; limitS?: number; tmp: string }): Promise<ScenarioResult> {
  const limit = o.limitS ?? 120;
  const args = ['-c', SCRIPT, '_', o.srv, o.cli, o.proto ?? 'u', String(o.port), o.tmp, o.netns ? '1' : '0', String(limit)];
  const r = o.netns ? await runBounded('unshare', ['-n', 'bash', ...args], { timeoutMs: (limit + 30) * 1000 }) : await runBounded('bash', args, { timeoutMs: (limit + 30) * 1000 });
  const out = r.stdout;
  const res: ScenarioResult = { ok: false, wallMs: NaN, server: null, client: null, result: null, clientOut: '' };
  if (out.includes('SERVER_DOWN')) return { ...res, error: `server did not start: ${out.slice(-400)}${r.stderr.slice(-200)}` };
  const m = /WALL_NS (\d+) RC (\d+)/.exec(out);
  if (!m || r.timedOut) return { ...res, error: `scenario ${r.timedOut ? 'timed out' : `failed (exit ${r.code})`}: ${(out + r.stderr).slice(-400)}` };
  res.wallMs = Number(m[1]) / 1e6;
  res.server = parseTime(/^SRV (.*)$/m.exec(out)?.[1]);
  res.client = parseTime(/^CLI (.*)$/m.exec(out)?.[1]);
  const ci = out.indexOf('--- client\n');
  const si = out.indexOf('--- server\n');
  res.clientOut = out.slice(ci + 11, si);
  const rm = /^RESULT (\{.*\})$/m.exec(res.clientOut);
  if (rm) res.result = JSON.parse(rm[1]!) as Record<string, number | string>;
  if (m[2] !== '0') return { ...res, error: `client exit ${m[2]}: ${res.clientOut.trim().slice(-300)} / server: ${out.slice(si + 11).trim().slice(-200)}` };
  res.ok = true;
  return res;
}

export function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.size === sb.size && fs.readFileSync(a).equals(fs.readFileSync(b));
  } catch {
    return false;
  }
}

export const missing = (why: string): { missing: string } => ({ missing: why });

/** Samples or the first failure as a missing figure. */
export function figure(samples: number[], errors: string[]): PeerFigure {
  return samples.length ? samples : missing(`all runs failed: ${errors[0] ?? 'unknown'}`);
}

export function quicGoMissing(): string | null {
  const p = peers();
  if (!p.bins.quicGo) return p.missing.quicGo ?? 'quic-go unavailable';
  if (process.getuid?.() !== 0) return 'needs root for unshare -n';
  return null;
}

export function ngtcp2Missing(): string | null {
  const p = peers();
  if (!p.bins.gtlsserver) return p.missing.gtlsserver ?? 'gtlsserver not found';
  if (!p.bins.gtlsclient) return p.missing.gtlsclient ?? 'gtlsclient not found';
  if (p.missing.certs) return p.missing.certs;
  return null;
}

export function log(s: string): void {
  process.stderr.write(`  ${s}\n`);
}

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Median. */
export function med(x: number[]): number {
  const s = x.slice().sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
}
