/**
 * RecordLayer.writeAppDataV into a caller's (dirty, reused) buffer: the same bytes as into a fresh
 * buffer, padding zeroed (RFC 8446 §5.4), appDataSize exact, the compatibility CCS counted once,
 * and a too-small buffer falls back to a new one. The reader accepts every record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { RecordLayer } from '../src/record/record-layer.js';
import { prng } from './crypto-util.js';

const SECRET = new Uint8Array(32).fill(0x5a);

function writer(p: (typeof providers)[number], opts: { padding?: number; maxFragment?: number; compat?: boolean }) {
  const w = new RecordLayer({ provider: p, role: 'server', compatibilityMode: opts.compat ?? false, ...(opts.padding ? { padding: opts.padding } : {}), ...(opts.maxFragment ? { maxFragment: opts.maxFragment } : {}) });
  w.installSecret('application', 'write', 'TLS_AES_128_GCM_SHA256', SECRET);
  return w;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

for (const p of providers) {
  test(`${p.name}: writeAppDataV into a reused dirty buffer equals a fresh one (padding, fragments, CCS)`, () => {
    const rnd = prng(77 + p.name.length);
    for (const opts of [{}, { padding: 7 }, { maxFragment: 1000, padding: 3 }, { compat: true }]) {
      const a = writer(p, opts);
      const b = writer(p, opts);
      const dirty = new Uint8Array(70_000).fill(0xee);
      for (let i = 0; i < 12; i++) {
        const parts = Array.from({ length: 1 + rnd.int(3) }, () => rnd.bytes(rnd.int(i === 0 ? 10 : 25_000)));
        const total = parts.reduce((n, x) => n + x.length, 0);
        const size = b.appDataSize(total);
        const fresh = a.writeAppDataV(parts);
        const into = b.writeAppDataV(parts, dirty);
        assert.is(fresh.length, size, `appDataSize ${JSON.stringify(opts)} total ${total}`);
        assert.is(hex(into), hex(fresh), `${JSON.stringify(opts)} write ${i}`);
        if (size <= dirty.length) assert.is(into.buffer, dirty.buffer, 'written into the given buffer');
        else assert.is.not(into.buffer, dirty.buffer, 'too small: a new buffer');
        dirty.fill(0xee ^ i);
      }
    }
  });

  test(`${p.name}: records written into a reused buffer decrypt with zero padding`, () => {
    const w = writer(p, { padding: 5 });
    const r = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false });
    r.installSecret('application', 'read', 'TLS_AES_128_GCM_SHA256', SECRET);
    Object.assign(r as unknown as Record<string, unknown>, { level: 'application', readKey: (r as unknown as { pendingRead: Record<string, unknown> }).pendingRead['application'] });
    const buf = new Uint8Array(40_000).fill(0xff);
    const sent: number[] = [];
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      const data = new Uint8Array(3000 + i * 5000).fill(i + 1);
      sent.push(...data);
      r.receive(w.writeAppDataV([data], buf));
      for (let ev = r.poll(); ev; ev = r.poll()) if (ev.type === 'appData') got.push(...ev.data);
      buf.fill(0xff);
    }
    assert.is(got.length, sent.length);
    assert.ok(got.every((v, k) => v === sent[k]));
  });

  test(`${p.name}: detachInput copies the unparsed rest of a reused read buffer`, () => {
    const w = writer(p, {});
    const r = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false });
    r.installSecret('application', 'read', 'TLS_AES_128_GCM_SHA256', SECRET);
    Object.assign(r as unknown as Record<string, unknown>, { level: 'application', readKey: (r as unknown as { pendingRead: Record<string, unknown> }).pendingRead['application'] });
    const rnd = prng(5 + p.name.length);
    const data = rnd.bytes(200_000);
    const wire = w.writeAppDataV([data]);
    const readBuf = new Uint8Array(7000); // reads that split records anywhere
    const got: number[] = [];
    for (let o = 0; o < wire.length; ) {
      const n = Math.min(1 + rnd.int(readBuf.length), wire.length - o);
      readBuf.set(wire.subarray(o, o + n));
      o += n;
      r.receive(readBuf.subarray(0, n), true);
      // Sometimes leave events unpolled (a blocked reader), then detach and scribble over the buffer.
      if (rnd.int(3) > 0) for (let ev = r.poll(); ev; ev = r.poll()) if (ev.type === 'appData') got.push(...ev.data);
      r.detachInput();
      readBuf.fill(0xaa);
    }
    for (let ev = r.poll(); ev; ev = r.poll()) if (ev.type === 'appData') got.push(...ev.data);
    assert.is(got.length, data.length);
    assert.ok(got.every((v, k) => v === data[k]));
  });
}

test.run();
