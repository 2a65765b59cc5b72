/**
 * The README's "Use" section is executable documentation: every ```ts block runs as its own
 * program (written into packages/h3, so that the `@petrel/*` imports resolve as they would for a
 * user of the packages: h3 depends on quic and tls-core, and resolves itself by name) and must print
 * exactly the ```text block that follows it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Use'), readme.indexOf('## Layout'));
// A ```ts block immediately followed by a ```text block (other ts blocks are fragments, not run).
const blocks = [...section.matchAll(/```ts\n((?:(?!```)[\s\S])*)```\s*```text\n((?:(?!```)[\s\S])*)```/g)].map((m) => ({ code: m[1]!, expected: m[2]! }));

test('the README has its usage examples (HTTP/3, QUIC, TLS over TCP), each with its expected output', () => {
  assert.ok(blocks.length >= 3, `${blocks.length} runnable examples`);
});

blocks.forEach(({ code, expected }, i) => {
  const first = /from '(@petrel\/[^']+)'/.exec(code)?.[1] ?? '?';
  test(`README example ${i + 1} (${first}) prints what the README says`, () => {
    const file = path.join(root, 'packages', 'h3', `.readme-example-${i + 1}-${process.pid}.ts`);
    fs.writeFileSync(file, code);
    try {
      const r = spawnSync(process.execPath, ['--conditions=petrel-src', '--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SSLKEYLOGFILE: '', QLOGDIR: '' } });
      assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
      assert.is(r.stdout, expected);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

test.run();
