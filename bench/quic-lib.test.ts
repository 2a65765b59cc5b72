// The QUIC bench harness (bench/quic-lib.ts): shell quoting, and scenario() with a tiny UDP server
// and client (node one-liners on 127.0.0.1): the server's port wait, the client's RESULT line,
// per-process /usr/bin/time figures, client failures and a server that never opens its port.
// No timing assertions (benchmarks only).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../test/support/peers.js';
import { cmd, med, q, scenario } from './quic-lib.js';

const hasTime = fs.existsSync('/usr/bin/time');

test('q() quotes words so that bash gives them back unchanged', () => {
  const words = ['plain', 'with space', "it's", '$HOME', 'a"b', '*', '', 'x;y', '--flag=1'];
  const out = execFileSync('bash', ['-c', `printf '%s\\n' ${cmd(...words)}`], { encoding: 'utf8' });
  assert.equal(out.split('\n').slice(0, -1), words);
  assert.is(q('abc/def.ts'), 'abc/def.ts');
});

test('med()', () => {
  assert.is(med([3, 1, 2]), 2);
  assert.is(med([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(med([])));
});

const SERVER = (port: number) =>
  cmd(process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(${port},'127.0.0.1');process.on('SIGTERM',()=>process.exit(0));`);
const CLIENT = (port: number, exit = 0) =>
  cmd(
    process.execPath,
    '-e',
    `const s=require('dgram').createSocket('udp4');const t=performance.now();const g=setTimeout(()=>process.exit(7),5000);s.on('message',(m)=>{console.log('RESULT '+JSON.stringify({ms:performance.now()-t,echo:m.toString()}));clearTimeout(g);s.close();process.exitCode=${exit};});s.send('ping',${port},'127.0.0.1');`,
  );

test('scenario(): server up, client RESULT parsed, per-process figures', async () => {
  if (!hasTime) return console.log('SKIPPED: /usr/bin/time unavailable');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quic-lib-test-'));
  try {
    const port = await freePort('udp');
    const r = await scenario({ srv: SERVER(port), cli: CLIENT(port), port, tmp, limitS: 20 });
    assert.ok(r.ok, r.error);
    assert.is(r.result?.echo, 'ping');
    assert.ok(Number(r.result?.ms) >= 0);
    assert.ok(r.wallMs > 0);
    assert.ok(r.server && r.server.maxRssMB > 1, 'server RSS');
    assert.ok(r.client && r.client.maxRssMB > 1, 'client RSS');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('scenario(): a failing client and a server that never listens are errors, not figures', async () => {
  if (!hasTime) return console.log('SKIPPED: /usr/bin/time unavailable');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quic-lib-test-'));
  try {
    const port = await freePort('udp');
    const bad = await scenario({ srv: SERVER(port), cli: CLIENT(port, 3), port, tmp, limitS: 20 });
    assert.not.ok(bad.ok);
    assert.match(bad.error ?? '', /client exit 3/);
    const port2 = await freePort('udp');
    const down = await scenario({ srv: cmd('sleep', '0.2'), cli: CLIENT(port2), port: port2, tmp, limitS: 20 });
    assert.not.ok(down.ok);
    assert.match(down.error ?? '', /server did not start/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
