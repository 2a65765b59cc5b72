import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import { FrameType } from '../src/frames.js';

for (const provider of providers) {
  test(`[${provider.name}] flow control: the sender stops at MAX_DATA, says DATA_BLOCKED, resumes after the reader consumes (pacing at epoch-ms clocks does not stall)`, () => {
    const w = 64 * 1024;
    const p = new Pair({ provider, delay: 5, client: { streamWindow: 2 * w, maxStreamWindow: 2 * w, connectionWindow: w, maxConnectionWindow: w } });
    assert.ok(p.handshake());
    const id = p.server!.openStream(false)!;
    assert.is(p.server!.write(id, new Uint8Array(1 << 20).fill(3), true), 1 << 20);
    p.runFor(3000);
    const before = p.packets();
    let highest = 0;
    let blocked = 0;
    for (const x of before) if (x.dir === 'down') for (const f of x.frames) if (f === FrameType.DATA_BLOCKED) blocked++;
    // STREAM offsets: the connection-level credit bounds the sum; one stream → bytes sent ≤ w.
    highest = (p.server as unknown as { streams: { connSend: { used: number } } }).streams.connSend.used;
    assert.is(highest, w, 'the sender used exactly the connection window');
    assert.ok(blocked >= 1, 'DATA_BLOCKED sent');
    let got = 0;
    let fins = 0;
    assert.ok(
      p.runUntil(() => {
        const r = readAll(p.client, id);
        got += r.data.length;
        fins += r.fins;
        return fins > 0;
      }, 10_000),
    );
    assert.is(got, 1 << 20);
    assert.is(fins, 1, 'fin reported once');
    assert.is(p.client.read(id), null, 'nothing after fin');
    const maxData = p.packets().filter((x) => x.dir === 'up' && x.frames.includes(FrameType.MAX_DATA)).length;
    assert.ok(maxData >= 10, `MAX_DATA updates (${maxData})`);
    assert.equal(p.bugs(), []);
  });

  test(`[${provider.name}] stream flow control: STREAM_DATA_BLOCKED at the stream limit, MAX_STREAM_DATA after reads; short write → 'streamWritable' once room returns`, () => {
    const sw = 16 * 1024;
    const p = new Pair({ provider, delay: 5, client: { streamWindow: sw, maxStreamWindow: sw }, server: { sendBufferSize: 32 * 1024 } });
    assert.ok(p.handshake());
    const id = p.server!.openStream(false)!;
    const total = 200_000;
    let written = p.server!.write(id, new Uint8Array(total).fill(4));
    assert.is(written, 32 * 1024, 'short write at the send buffer size');
    p.runFor(500);
    const pk = p.packets();
    assert.ok(pk.some((x) => x.dir === 'down' && x.frames.includes(FrameType.STREAM_DATA_BLOCKED)), 'STREAM_DATA_BLOCKED');
    let got = 0;
    let fins = 0;
    assert.ok(
      p.runUntil(() => {
        const r = readAll(p.client, id);
        got += r.data.length;
        fins += r.fins;
        if (written < total && p.events('server', 'streamWritable').length > 0) {
          written += p.server!.write(id, new Uint8Array(total - written).fill(4), true);
          p.serverEvents.length = 0;
        }
        return fins === 1;
      }, 20_000),
      `got ${got}, written ${written}`,
    );
    assert.is(got, total);
    assert.ok(p.packets().filter((x) => x.dir === 'up' && x.frames.includes(FrameType.MAX_STREAM_DATA)).length >= 5, 'MAX_STREAM_DATA updates');
    assert.equal(p.bugs(), []);
  });
}

test.run();
