/**
 * The driver's qlog writer: JSON-SEQ records, batched, but never holding more than about a second
 * of events, so a process that is killed (SIGKILL, a CI timeout) still leaves the trace of a
 * connection that hung.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QlogWriter } from '../src/node/qlog.js';

function records(file: string): { name?: string; time?: number; qlog_version?: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\x1e')
    .filter(Boolean)
    .map((r) => JSON.parse(r));
}

test('events are written within ~1 s of event time without close(); close() writes the rest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-qlog-'));
  try {
    const t0 = 1_000_000;
    const w = new QlogWriter(dir, 'server', new Uint8Array([0xab, 0xcd]), t0);
    w.sink({ time: t0 + 1, name: 'transport:packet_received', data: {} });
    w.sink({ time: t0 + 500, name: 'transport:packet_sent', data: {} });
    const file = path.join(dir, 'abcd_server.sqlog');
    assert.not.ok(fs.existsSync(file), 'the first batch waits (small, under a second)');
    w.sink({ time: t0 + 1200, name: 'transport:packet_sent', data: { n: 3 } });
    assert.ok(fs.existsSync(file), 'written after a second of events, without close()');
    const recs = records(file);
    assert.is(recs[0]!.qlog_version, '0.3');
    assert.equal(recs.slice(1).map((r) => r.time), [1, 500, 1200]);
    w.sink({ time: t0 + 1300, name: 'connectivity:connection_closed', data: {} });
    assert.is(records(file).length, 4, 'batched again until the next second');
    w.close();
    assert.equal(records(file).slice(1).map((r) => r.name), ['transport:packet_received', 'transport:packet_sent', 'transport:packet_sent', 'connectivity:connection_closed']);
    w.sink({ time: t0 + 5000, name: 'transport:packet_sent', data: {} });
    assert.is(records(file).length, 5, 'nothing after close()');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a client writer without an ODCID yet names the file from the first event that has one', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-qlog-'));
  try {
    const w = new QlogWriter(dir, 'client', null, 0);
    w.sink({ time: 1, name: 'transport:parameters_set', data: {} });
    w.sink({ time: 2, name: 'connectivity:connection_started', data: { dst_cid: '0011223344556677' } });
    w.sink({ time: 2000, name: 'transport:packet_sent', data: {} });
    assert.equal(fs.readdirSync(dir), ['0011223344556677_client.sqlog']);
    w.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
