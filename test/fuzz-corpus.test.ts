// Replays every committed fuzz corpus file (test/fuzz/corpus/<target>/*.bin) through its target:
// seeds must keep passing and every crash-*.bin found by `pnpm fuzz` stays a regression test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { corpusDir, loadCorpus, runOne } from './fuzz/engine.js';
import { findTarget as findTargetFn } from './fuzz/targets.js';

const dirs = fs.existsSync(corpusDir) ? fs.readdirSync(corpusDir).filter((d) => fs.statSync(path.join(corpusDir, d)).isDirectory()) : [];

test('every corpus folder belongs to a registered target', () => {
  for (const d of dirs) assert.ok(findTargetFn(d), `test/fuzz/corpus/${d} has no target of that name`);
});

for (const d of dirs.sort()) {
  const t = findTargetFn(d);
  if (!t) continue;
  test(`corpus ${d} (${loadCorpus(d).length} files)`, () => {
    for (const { file, data } of loadCorpus(d)) {
      const r = runOne(t, data, 5000);
      if (r.outcome === 'failure') {
        const e = r.error;
        assert.unreachable(`${path.relative(process.cwd(), file)}: ${r.kind}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
  });
}

test.run();
