import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Pair, readAll } from './connection-harness.js';
import type { QlogEvent } from '../src/config.js';

for (const provider of providers.slice(0, 1)) {
  test(`[${provider.name}] qlog: packet_sent/received with frames, metrics_updated, key_updated, connection_closed (qlog 0.3 names)`, () => {
    const ce: QlogEvent[] = [];
    const se: QlogEvent[] = [];
    const p = new Pair({ provider, delay: 5, client: { qlog: (e) => ce.push(e) }, server: { qlog: (e) => se.push(e) } });
    assert.ok(p.handshake());
    const id = p.client.openStream(true)!;
    p.client.write(id, new Uint8Array(3000), true);
    p.runFor(100);
    readAll(p.server!, id);
    p.runFor(300);
    assert.ok(p.client.updateKeys());
    p.client.ping();
    p.runFor(100);
    p.client.close(3, 'bye', p.now);
    p.runFor(1000);
    for (const [evs, role] of [
      [ce, 'client'],
      [se, 'server'],
    ] as const) {
      const names = new Set(evs.map((e) => e.name));
      for (const n of ['connectivity:connection_started', 'transport:packet_sent', 'transport:packet_received', 'recovery:metrics_updated', 'security:key_updated', 'security:key_discarded', 'connectivity:connection_closed']) {
        assert.ok(names.has(n), `${role}: ${n}`);
      }
      const sent = evs.find((e) => e.name === 'transport:packet_sent' && (e.data.header as { packet_type: string }).packet_type === '1RTT')!;
      assert.ok(typeof (sent.data.header as { packet_number: number }).packet_number === 'number');
      assert.ok(typeof (sent.data.raw as { length: number }).length === 'number');
      assert.ok(Array.isArray(sent.data.frames) && (sent.data.frames as { frame_type: string }[]).length > 0);
      const m = evs.find((e) => e.name === 'recovery:metrics_updated')!;
      for (const k of ['smoothed_rtt', 'latest_rtt', 'rtt_variance', 'congestion_window', 'bytes_in_flight']) assert.type(m.data[k], 'number', k);
      const ku = evs.filter((e) => e.name === 'security:key_updated').map((e) => `${e.data.key_type}/${e.data.trigger}`);
      assert.ok(ku.includes('client_1rtt_secret/tls') && ku.includes('server_handshake_secret/tls'), ku.join());
      assert.ok(ku.includes(role === 'client' ? 'client_1rtt_secret/local_update' : 'client_1rtt_secret/remote_update'), ku.join());
      const closed = evs.find((e) => e.name === 'connectivity:connection_closed')!;
      assert.equal(closed.data, { owner: role === 'client' ? 'local' : 'remote', reason: 'bye', trigger: 'application', application_code: 3 });
      for (const e of evs) JSON.stringify(e);
    }
    const recv = se.filter((e) => e.name === 'transport:packet_received').flatMap((e) => e.data.frames as { frame_type: string }[]);
    assert.ok(recv.some((f) => f.frame_type === 'stream'));
    assert.ok(recv.some((f) => f.frame_type === 'ack'));
    assert.is(ce[0]!.name, 'connectivity:connection_started');
  });
}

test.run();
