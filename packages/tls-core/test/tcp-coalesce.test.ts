/**
 * Write coalescing in TlsSocket (src/tcp/socket.ts): application writes smaller than the staging
 * buffer are sealed as full 16 KiB records whatever their size, data stays intact and in order
 * through every mix of write sizes, cork/uncork and backpressure, and the shared staging buffers
 * never mix two connections' bytes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { providers } from '../../../test/support/providers.js';
import { connect } from '../src/tcp/client.js';
import { createServer } from '../src/tcp/server.js';
import type { TlsSocket } from '../src/tcp/socket.js';
import { generateSelfSigned } from '../src/x509/selfsigned.js';
import { prng } from './crypto-util.js';

const P0 = providers[0]!;
const CERT = generateSelfSigned({ provider: P0, names: ['localhost', '127.0.0.1'] });

/** A server whose connections run `onSecure` once the handshake is done. */
async function serve(provider: (typeof providers)[number], onSecure: (s: TlsSocket) => void) {
  const server = createServer({ cert: CERT.certPem, key: CERT.keyPem, provider: provider.name as 'node' | 'noble' }, (s) => {
    s.on('error', () => {});
    onSecure(s);
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A TCP relay that records the TLS record lengths (type 23) going server → client. */
async function relayTo(port: number) {
  const lengths: number[] = [];
  let pending = Buffer.alloc(0);
  const relay = net.createServer((c) => {
    const t = net.connect({ host: '127.0.0.1', port });
    c.on('data', (d) => t.write(d));
    t.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const len = pending.readUInt16BE(3);
        if (pending.length < 5 + len) break;
        if (pending[0] === 23) lengths.push(len);
        pending = pending.subarray(5 + len);
      }
      c.write(d);
    });
    c.on('error', () => t.destroy());
    t.on('error', () => c.destroy());
    c.on('close', () => t.destroy());
    t.on('close', () => c.destroy());
  });
  const rport = await new Promise<number>((r) => relay.listen(0, '127.0.0.1', () => r((relay.address() as net.AddressInfo).port)));
  return { port: rport, lengths, close: () => relay.close() };
}

/** Connects, asks for nothing, reads until the server ends the stream. */
function readAll(port: number, provider: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, servername: 'localhost', ca: CERT.certPem, provider: provider as 'node' | 'noble' });
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(parts));
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error('readAll timed out')), 20_000).unref();
  });
}

/** Writes `chunks` in order, honouring backpressure, then ends the stream. */
function writeAll(s: TlsSocket, chunks: Buffer[]): void {
  let i = 0;
  const pump = (): void => {
    while (i < chunks.length) if (!s.write(chunks[i++]!)) return void s.once('drain', pump);
    s.end();
  };
  pump();
}

const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
};

for (const p of providers) {
  test(`${p.name}: 4 KiB and 5000-byte writes go out as full 16 KiB records`, async () => {
    for (const size of [4096, 5000]) {
      const total = 40 * 16384 + 123;
      const data = pattern(total, size);
      const chunks: Buffer[] = [];
      for (let o = 0; o < total; o += size) chunks.push(data.subarray(o, Math.min(total, o + size)));
      const srv = await serve(p, (s) => writeAll(s, chunks));
      const relay = await relayTo(srv.port);
      try {
        const got = await readAll(relay.port, p.name);
        assert.ok(got.equals(data), `${size}: data intact`);
        // Protected record length = plaintext + content type (1) + tag (16); the close_notify record is 19.
        const full = relay.lengths.filter((l) => l === 16384 + 17).length;
        const dataRecords = relay.lengths.filter((l) => l !== 2 + 17);
        // One record per write would be ~131-160 records; coalesced: 40 full records and the tail
        // (plus at most a few partial ones where a tick ended on backpressure).
        assert.ok(full >= 36, `${size}-byte writes: ${full} full records of ${dataRecords.length}: ${dataRecords.join(',')}`);
        assert.ok(dataRecords.length <= 46, `${size}-byte writes: ${dataRecords.length} records`);
      } finally {
        relay.close();
        await srv.close();
      }
    }
  });

  test(`${p.name}: random write sizes, cork/uncork and backpressure keep the bytes intact and in order`, async () => {
    const rnd = prng(4242 + p.name.length);
    const chunks: Buffer[] = [];
    let total = 0;
    let seed = 0;
    while (total < 3_000_000) {
      const kind = rnd.int(4);
      const n = kind === 0 ? 1 + rnd.int(100) : kind === 1 ? 1 + rnd.int(20_000) : kind === 2 ? 60_000 + rnd.int(10_000) : 100_000 + rnd.int(200_000);
      chunks.push(pattern(n, seed++));
      total += n;
    }
    const srv = await serve(p, (s) => {
      let i = 0;
      const pump = (): void => {
        while (i < chunks.length) {
          // Every few writes, a corked group (sent through _writev).
          if (i % 7 === 3 && i + 3 <= chunks.length) {
            s.cork();
            s.write(chunks[i++]!);
            s.write(chunks[i++]!);
            const ok = s.write(chunks[i++]!);
            s.uncork();
            if (!ok) return void s.once('drain', pump);
            continue;
          }
          if (!s.write(chunks[i++]!)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    try {
      const got = await readAll(srv.port, p.name);
      assert.is(got.length, total);
      assert.ok(got.equals(Buffer.concat(chunks)), 'data intact and in order');
    } finally {
      await srv.close();
    }
  });

  test(`${p.name}: connections writing small chunks in the same ticks get their own bytes (shared staging buffers)`, async () => {
    let k = 0;
    const expected = new Map<number, Buffer>();
    const srv = await serve(p, (s) => {
      // The first byte the client sends says which stream it wants.
      s.once('data', (d: Buffer) => {
        const id = d[0]!;
        const data = expected.get(id)!;
        const chunks: Buffer[] = [];
        for (let o = 0; o < data.length; o += 3000) chunks.push(data.subarray(o, o + 3000));
        writeAll(s, chunks);
      });
    });
    try {
      const runs = Array.from({ length: 6 }, () => {
        const id = k++;
        expected.set(id, pattern(300_000 + id * 1111, 100 + id));
        return new Promise<void>((resolve, reject) => {
          const s = connect({ port: srv.port, servername: 'localhost', ca: CERT.certPem, provider: p.name as 'node' | 'noble' });
          const parts: Buffer[] = [];
          s.on('secureConnect', () => s.write(Buffer.of(id)));
          s.on('data', (d: Buffer) => parts.push(d));
          s.on('end', () => {
            s.end();
            const got = Buffer.concat(parts);
            if (got.equals(expected.get(id)!)) resolve();
            else reject(new Error(`connection ${id}: ${got.length} bytes, expected ${expected.get(id)!.length}, contents differ`));
          });
          s.on('error', reject);
        });
      });
      await Promise.all(runs);
    } finally {
      await srv.close();
    }
  });

  test(`${p.name}: a paused reader while the server streams (client reads share one buffer; the unparsed rest is copied)`, async () => {
    const data = pattern(2_500_000, 9);
    const srv = await serve(p, (s) => writeAll(s, [data.subarray(0, 1_000_000), data.subarray(1_000_000, 1_000_123), data.subarray(1_000_123)]));
    const other = await serve(p, (s) => writeAll(s, [pattern(700_000, 3)]));
    try {
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = connect({ port: srv.port, servername: 'localhost', ca: CERT.certPem, provider: p.name as 'node' | 'noble' });
        const parts: Buffer[] = [];
        let paused = false;
        s.on('data', (d: Buffer) => {
          parts.push(d);
          if (!paused) {
            // Stop reading for a while: the record layer keeps what arrives, the transport is paused.
            paused = true;
            s.pause();
            setTimeout(() => s.resume(), 150);
          }
        });
        s.on('end', () => {
          s.end();
          resolve(Buffer.concat(parts));
        });
        s.on('error', reject);
      });
      // Meanwhile another connection reads through the same shared buffer.
      const otherGot = await readAll(other.port, p.name);
      assert.ok(otherGot.equals(pattern(700_000, 3)), 'other connection intact');
      assert.is(got.length, data.length);
      assert.ok(got.equals(data), 'data intact after pause/resume');
    } finally {
      await srv.close();
      await other.close();
    }
  });
}

test.run();
