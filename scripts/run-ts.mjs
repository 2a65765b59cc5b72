#!/usr/bin/env node
// Runs a TypeScript entry point from source: `node scripts/run-ts.mjs FILE [args...]`.
// Workspace packages resolve to their src/ through the "petrel-src" export condition, and tsx
// compiles on the fly, so no build step is needed before running examples, benches or tests.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { nodeFlags, repoRoot } from './node-flags.mjs';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/run-ts.mjs FILE [args...]');
  process.exit(2);
}
const args = rest[0] === '--' ? rest.slice(1) : rest; // `pnpm x -- --flag` passes the `--` along
const child = spawn(process.execPath, [...nodeFlags, path.resolve(repoRoot, file), ...args], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
