#!/usr/bin/env node
// The whole test suite: type check, then every *.test.ts file in its own Node process (uvu),
// two at a time, each bounded in time. Prints one line per file, the output of failing files,
// and a closing line "tests: N passed, N failed, N skipped".
//
//   node scripts/test.mjs [--jobs N] [--no-typecheck] [--timeout SECONDS] [FILTER...]
//
// Peers: ../shared/peers/setup.sh (or $PETREL_PEERS_SETUP) is run once first; its folder is
// passed to the tests as PEERS_DIR. When it fails, PETREL_PEERS_ERROR carries why, and peer
// tests skip with that message printed loudly (test/support/peers.ts).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { nodeFlags, repoRoot } from './node-flags.mjs';

const argv = process.argv.slice(2);
let jobs = Number(process.env.TEST_JOBS) || Math.max(1, Math.min(2, os.cpus().length));
let typecheck = true;
let timeoutS = Number(process.env.TEST_TIMEOUT) || 600;
const filters = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--jobs') jobs = Number(argv[++i]);
  else if (a === '--no-typecheck') typecheck = false;
  else if (a === '--timeout') timeoutS = Number(argv[++i]);
  else if (a === '--') continue;
  else filters.push(a);
}

const started = Date.now();
const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };

if (typecheck) {
  const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');
  for (const args of [['-b'], ['-p', 'tsconfig.tools.json']]) {
    const r = spawnSync(tsc, args, { cwd: repoRoot, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`type check failed: tsc ${args.join(' ')}`);
      console.log('tests: 0 passed, 1 failed');
      process.exit(1);
    }
  }
  console.log(`type check ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

setupPeers();

const roots = ['packages', 'test', 'interop', 'bench', 'examples'];
const files = [];
for (const r of roots) {
  const dir = path.join(repoRoot, r);
  if (!fs.existsSync(dir)) continue;
  for (const rel of fs.readdirSync(dir, { recursive: true })) {
    const f = path.join(r, String(rel));
    if (!f.endsWith('.test.ts') || f.includes('node_modules') || f.includes(`${path.sep}dist${path.sep}`)) continue;
    if (filters.length && !filters.some((x) => f.includes(x))) continue;
    files.push(f);
  }
}
files.sort();
// Slow files (peer interop, long simulations) first, so they overlap with the rest.
files.sort((a, b) => Number(isSlow(b)) - Number(isSlow(a)));
function isSlow(f) {
  return /interop|peer|sim|load|fuzz/.test(f);
}

// Files that measure real timing against real peers (handshake timeouts, loss recovery through the
// network simulator, 1,000 loopback connections) run alone, after the rest: on a 2-core machine a
// CPU-bound neighbour stretches RTT samples and PTOs until a peer's own handshake timeout fires,
// which is the load, not a bug. Their own timeouts stay as tight as the peers'.
const exclusive = files.filter(isExclusive);
const shared = files.filter((f) => !isExclusive(f));
function isExclusive(f) {
  return /interop-(matrix|quic|h3)|netsim-peers|load-/.test(f);
}

let passed = 0, failed = 0, skipped = 0;
const failures = [];
let queue = shared;
let next = 0;
await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
queue = exclusive;
next = 0;
await worker();

async function worker() {
  while (next < queue.length) {
    const f = queue[next++];
    const t0 = Date.now();
    const r = await runFile(f);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    const s = summary(r.out);
    if (r.code === 0 && s && s.passed === s.total) {
      passed += s.passed;
      skipped += s.skipped;
      console.log(`ok    ${f}  (${s.passed} passed${s.skipped ? `, ${s.skipped} skipped` : ''}, ${secs} s)`);
      const loud = r.out.split('\n').filter((l) => l.includes('SKIPPED:'));
      for (const l of loud) console.log(`      ${l.trim()}`);
    } else {
      const nFail = s ? Math.max(1, s.total - s.passed) : 1;
      failed += nFail;
      if (s) { passed += s.passed; skipped += s.skipped; }
      failures.push(f);
      console.log(`FAIL  ${f}  (exit ${r.code}${r.timedOut ? ', timed out' : ''}, ${secs} s)`);
      console.log(r.out.split('\n').map((l) => `  | ${l}`).join('\n'));
    }
  }
}

function runFile(f) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeFlags, f], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutS * 1000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 1, out, timedOut }); });
  });
}

// uvu prints "Total: N / Passed: N / Skipped: N" once per file (one suite or many); Total excludes skipped tests.
function summary(out) {
  const num = (k) => [...out.matchAll(new RegExp(`^\\s*${k}:\\s+(\\d+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  if (!/^\s*Total:/m.test(out)) return null;
  return { total: num('Total'), passed: num('Passed'), skipped: num('Skipped') };
}

function setupPeers() {
  if (process.env.PEERS_DIR && fs.existsSync(process.env.PEERS_DIR)) return;
  const script = process.env.PETREL_PEERS_SETUP || path.resolve(repoRoot, '..', 'shared', 'peers', 'setup.sh');
  if (!fs.existsSync(script)) {
    env.PETREL_PEERS_ERROR = `peer setup script not found at ${script}`;
    return;
  }
  const t0 = Date.now();
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 30 * 60 * 1000 });
  if (r.status === 0) {
    env.PEERS_DIR = r.stdout.trim().split('\n').pop();
    console.log(`peers ready in ${env.PEERS_DIR} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } else {
    env.PETREL_PEERS_ERROR = `${script} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' / ')}`;
    console.log(`!!! PEERS UNAVAILABLE: ${env.PETREL_PEERS_ERROR}`);
  }
}

const total = ((Date.now() - started) / 1000).toFixed(0);
if (failures.length) console.log(`\nfailing files:\n${failures.map((f) => `  ${f}`).join('\n')}`);
console.log(`\n${files.length} test files in ${total} s`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed || files.length === 0 ? 1 : 0);
