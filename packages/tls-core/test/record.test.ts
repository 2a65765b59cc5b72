import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import type { CryptoProvider } from '../src/crypto/provider.js';
import { Alert, ProtocolViolation } from '../src/errors.js';
import { hashLength } from '../src/crypto/provider.js';
import { CipherSuites, type CipherSuite } from '../src/handshake/api.js';
import { RecordLayer, type RecordEvent } from '../src/record/record-layer.js';
import { RecordKey } from '../src/record/keys.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const SUITES: CipherSuite[] = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** A framed handshake message. */
function hs(type: number, bodyLen: number, fill = 0xab): Uint8Array {
  const m = new Uint8Array(4 + bodyLen).fill(fill);
  m[0] = type;
  m[1] = bodyLen >> 16;
  m[2] = (bodyLen >> 8) & 0xff;
  m[3] = bodyLen & 0xff;
  return m;
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function drain(l: RecordLayer): RecordEvent[] {
  const out: RecordEvent[] = [];
  for (let i = 0; i < 10000; i++) {
    const e = l.poll();
    if (!e) return out;
    out.push(e);
  }
  throw new Error('drain: too many events');
}
function expectAlert(fn: () => unknown, alert: number, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ProtocolViolation, `${what}: ${String(e)}`);
    assert.is((e as ProtocolViolation).code, alert, `${what}: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`${what}: no error`);
}
function handshakeBytes(evs: RecordEvent[]): { level: string; data: string }[] {
  return evs.filter((e) => e.type === 'handshake').map((e) => ({ level: (e as { level: string }).level, data: toHex((e as { data: Uint8Array }).data) }));
}
function appBytes(evs: RecordEvent[]): Uint8Array {
  return cat(...evs.filter((e): e is Extract<RecordEvent, { type: 'appData' }> => e.type === 'appData').map((e) => e.data));
}

/** All handshake events concatenated; they must share one level. */
function joined(evs: RecordEvent[]): { level: string; data: string } {
  const h = handshakeBytes(evs);
  assert.ok(h.length > 0 && h.every((x) => x.level === h[0]!.level), 'one level');
  return { level: h[0]!.level, data: h.map((x) => x.data).join('') };
}

function joinedBytes(evs: RecordEvent[]): Uint8Array {
  return cat(...evs.map((e) => (e as { data: Uint8Array }).data));
}
const RFC8448_CH =
  '16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001';

interface Pair {
  c: RecordLayer;
  s: RecordLayer;
}
/** Walks a client and a server layer through initial → handshake → application with random secrets. */
function establish(p: CryptoProvider, suite: CipherSuite, opts: { padding?: number; maxFragment?: number } = {}): Pair {
  const c = new RecordLayer({ provider: p, role: 'client', ...opts });
  const s = new RecordLayer({ provider: p, role: 'server', ...opts });
  const n = hashLength[CipherSuites[suite].hash];
  const [chs, shs, cap, sap] = [p.randomBytes(n), p.randomBytes(n), p.randomBytes(n), p.randomBytes(n)];
  s.receive(c.writeHandshake('initial', hs(1, 100)));
  assert.equal(joined(drain(s)), { level: 'initial', data: toHex(hs(1, 100)) });
  s.installSecret('handshake', 'read', suite, chs);
  s.installSecret('handshake', 'write', suite, shs);
  const flight = cat(s.writeHandshake('initial', hs(2, 80)), s.writeHandshake('handshake', cat(hs(8, 10), hs(11, 3000), hs(15, 70), hs(20, 32))));
  s.installSecret('application', 'write', suite, sap);
  s.installSecret('application', 'read', suite, cap); // early: must wait for the client's Finished
  c.receive(flight);
  const sh: RecordEvent[] = [];
  for (let e = c.poll(); e; e = c.poll()) {
    sh.push(e);
    if (c.readLevel === 'initial' && joined(sh).data.length === 168) break;
  }
  assert.equal(joined(sh), { level: 'initial', data: toHex(hs(2, 80)) });
  c.installSecret('handshake', 'read', suite, shs);
  c.installSecret('handshake', 'write', suite, chs);
  const rest = drain(c);
  assert.equal(joined(rest), { level: 'handshake', data: toHex(cat(hs(8, 10), hs(11, 3000), hs(15, 70), hs(20, 32))) });
  c.installSecret('application', 'read', suite, sap);
  const fin = c.writeHandshake('handshake', hs(20, 32));
  c.installSecret('application', 'write', suite, cap);
  s.receive(fin);
  assert.equal(joined(drain(s)), { level: 'handshake', data: toHex(hs(20, 32)) });
  assert.is(s.readLevel, 'application');
  assert.is(c.poll(), undefined);
  assert.is(c.readLevel, 'application');
  return { c, s };
}

test('RFC 8448 §3: client Finished, application data and close_notify records', () => {
  for (const p of providers) {
    // Reading: a server-side layer with the client's handshake then application keys.
    const s = new RecordLayer({ provider: p, role: 'server', compatibilityMode: false });
    s.receive(hex('16030100c4010000c0')); // first bytes of a ClientHello record; incomplete
    assert.is(s.poll(), undefined);
    const s2 = new RecordLayer({ provider: p, role: 'server', compatibilityMode: false });
    s2.receive(hex(RFC8448_CH));
    assert.is(toHex(joinedBytes(drain(s2))), RFC8448_CH.slice(10));
    s2.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', hex('b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21'));
    s2.installSecret('application', 'read', 'TLS_AES_128_GCM_SHA256', hex('9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5'));
    s2.receive(
      hex(
        '170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546' +
          '1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4' +
          '1703030013c9872760655666b74d7ff1153efd6db6d0b0e3',
      ),
    );
    const evs = drain(s2);
    assert.equal(handshakeBytes(evs), [{ level: 'handshake', data: '14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61' }]);
    assert.is(toHex(appBytes(evs)), toHex(Uint8Array.from({ length: 50 }, (_, i) => i)));
    assert.equal(evs[evs.length - 1], { type: 'alert', description: 0, fatal: false });

    // Writing: the same records from the client's application key.
    const c = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false });
    c.installSecret('application', 'write', 'TLS_AES_128_GCM_SHA256', hex('9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5'));
    assert.is(
      toHex(c.writeAppData(Uint8Array.from({ length: 50 }, (_, i) => i))),
      '1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4',
    );
    assert.is(toHex(c.writeAlert(Alert.close_notify)), '1703030013c9872760655666b74d7ff1153efd6db6d0b0e3');
  }
});

test('nonce = iv XOR sequence number, including the high 32 bits', () => {
  const p = providers[0]!;
  const k = new RecordKey(p, 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
  const iv = toHex(k.iv);
  assert.is(toHex(k.nonceFor(0)), iv);
  const n = k.nonceFor(0x0102030405);
  const expect = Uint8Array.from(k.iv);
  expect[7]! ^= 0x01;
  expect[8]! ^= 0x02;
  expect[9]! ^= 0x03;
  expect[10]! ^= 0x04;
  expect[11]! ^= 0x05;
  assert.is(toHex(n), toHex(expect));
});

test('full walk, all suites, both providers: app data both ways, fragmentation, padding', () => {
  for (const p of providers) {
    for (const suite of SUITES) {
      for (const opts of [{}, { padding: 7 }, { maxFragment: 100 }]) {
        const { c, s } = establish(p, suite, opts);
        const big = p.randomBytes(40000);
        s.receive(c.writeAppData(big));
        const got = drain(s);
        assert.is(toHex(appBytes(got)), toHex(big), `${p.name} ${suite}`);
        c.receive(s.writeAppData(Uint8Array.of(1, 2, 3)));
        assert.equal(appBytes(drain(c)), Uint8Array.of(1, 2, 3));
        // empty application data record is allowed
        s.receive(c.writeAppData(new Uint8Array(0)));
        const e = drain(s);
        assert.is(e.length, 1);
        assert.is(e[0]!.type === 'appData' && e[0]!.data.length, 0);
      }
    }
  }
});

test('byte-at-a-time delivery and a handshake message split across many records', () => {
  for (const p of providers) {
    const c = new RecordLayer({ provider: p, role: 'client', maxFragment: 7 });
    const s = new RecordLayer({ provider: p, role: 'server' });
    const ch = hs(1, 50, 0x11);
    const wire = c.writeHandshake('initial', ch);
    assert.is(wire.length, Math.ceil(54 / 7) * 5 + 54);
    // first record 0x0301, later ones 0x0303
    assert.is(wire[2], 1);
    const evs: RecordEvent[] = [];
    for (const b of wire) {
      s.receive(Uint8Array.of(b));
      evs.push(...drain(s));
    }
    assert.is(toHex(cat(...evs.map((e) => (e as { data: Uint8Array }).data))), toHex(ch));
  }
});

test('coalesced handshake messages are delivered one message at a time', () => {
  const p = providers[0]!;
  const c = new RecordLayer({ provider: p, role: 'client' });
  const s = new RecordLayer({ provider: p, role: 'server' });
  s.receive(c.writeHandshake('initial', hs(1, 10)));
  drain(s);
  s.installSecret('handshake', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32).fill(1));
  c.receive(cat(s.writeHandshake('initial', hs(2, 5))));
  drain(c);
  c.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32).fill(1));
  c.receive(s.writeHandshake('handshake', cat(hs(8, 3), hs(11, 0), hs(15, 2), hs(20, 4))));
  const evs = drain(c);
  assert.equal(
    evs.map((e) => (e as { data: Uint8Array }).data.length),
    [7, 4, 6, 8],
  );
});

test('ServerHello + more in one record → unexpected_message; ClientHello likewise', () => {
  const p = providers[0]!;
  const s = new RecordLayer({ provider: p, role: 'server' });
  const c = new RecordLayer({ provider: p, role: 'client' });
  const c2 = new RecordLayer({ provider: p, role: 'client' });
  c2.receive(s.writeHandshake('initial', cat(hs(2, 5), hs(8, 2))));
  expectAlert(() => drain(c2), Alert.unexpected_message, 'SH+EE');
  const s2 = new RecordLayer({ provider: p, role: 'server' });
  s2.receive(c.writeHandshake('initial', cat(hs(1, 5), hs(1, 2))));
  expectAlert(() => drain(s2), Alert.unexpected_message, 'CH+CH');
  // the error is sticky
  expectAlert(() => s2.poll(), Alert.unexpected_message, 'sticky');
});

test('Finished and KeyUpdate must end their record', () => {
  for (const suite of SUITES) {
    const p = providers[0]!;
    const { c, s } = establish(p, suite);
    // KeyUpdate followed by a NewSessionTicket in one record
    c.receive(s.writeHandshake('application', cat(hs(24, 1), hs(4, 20))));
    expectAlert(() => drain(c), Alert.unexpected_message, 'KU+NST');
  }
  const p = providers[0]!;
  const c = new RecordLayer({ provider: p, role: 'client' });
  const s = new RecordLayer({ provider: p, role: 'server' });
  s.receive(c.writeHandshake('initial', hs(1, 10)));
  drain(s);
  s.installSecret('handshake', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32).fill(1));
  c.receive(s.writeHandshake('initial', hs(2, 5)));
  drain(c);
  c.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32).fill(1));
  c.receive(s.writeHandshake('handshake', cat(hs(20, 32), hs(4, 20))));
  expectAlert(() => drain(c), Alert.unexpected_message, 'Fin+NST');
});

test('KeyUpdate: new read key after the KeyUpdate record, old data still readable', () => {
  for (const p of providers) {
    const { c, s } = establish(p, 'TLS_CHACHA20_POLY1305_SHA256');
    const next = p.randomBytes(32);
    // server sends data, KeyUpdate under the old key, then switches and sends more
    let wire = cat(s.writeAppData(Uint8Array.of(1)), s.writeHandshake('application', hs(24, 1)));
    s.installSecret('application', 'write', 'TLS_CHACHA20_POLY1305_SHA256', next);
    wire = cat(wire, s.writeAppData(Uint8Array.of(2)));
    c.receive(wire);
    const e1 = c.poll();
    assert.equal(e1 && e1.type === 'appData' && [...e1.data], [1]);
    const e2 = c.poll();
    assert.equal(e2 && e2.type === 'handshake' && e2.level, 'application');
    // without the new key the next record fails to authenticate; install it first, as the driver does
    c.installSecret('application', 'read', 'TLS_CHACHA20_POLY1305_SHA256', next);
    const e3 = c.poll();
    assert.equal(e3 && e3.type === 'appData' && [...e3.data], [2]);
    assert.is(c.appReadSeq, 1);

    // and a missing install is a bad_record_mac, not silent garbage
    const pair = establish(p, 'TLS_AES_128_GCM_SHA256');
    pair.s.writeHandshake('application', hs(24, 1));
    pair.s.installSecret('application', 'write', 'TLS_AES_128_GCM_SHA256', next);
    pair.c.receive(pair.s.writeAppData(Uint8Array.of(9)));
    expectAlert(() => drain(pair.c), Alert.bad_record_mac, 'wrong key');
  }
});

test('KeyUpdate flood: more than maxKeyUpdatesWithoutData in a row → unexpected_message; data in between resets', () => {
  for (const p of providers) {
    const suite: CipherSuite = 'TLS_AES_128_GCM_SHA256';
    /** The server sends `n` KeyUpdates, `between` app data bytes before each; the client reads with the right keys. */
    const run = (n: number, between: number) => {
      const { c, s } = establish(p, suite);
      const keys: Uint8Array[] = [];
      let wire: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < n; i++) {
        if (between >= 0) wire = cat(wire, s.writeAppData(new Uint8Array(between)));
        wire = cat(wire, s.writeHandshake('application', hs(24, 1, 0)));
        const k = p.randomBytes(32);
        keys.push(k);
        s.installSecret('application', 'write', suite, k);
      }
      c.receive(wire);
      let read = 0;
      for (let guard = 0; guard < 10 * n + 10; guard++) {
        const e = c.poll();
        if (!e) break;
        if (e.type === 'handshake') c.installSecret('application', 'read', suite, keys[read++]!);
      }
      return { read, total: c.keyUpdatesRead };
    };
    const limit = 32;
    assert.equal(run(limit, -1), { read: limit, total: limit }, 'at the limit');
    expectAlert(() => run(limit + 1, -1), Alert.unexpected_message, 'one over the limit');
    expectAlert(() => run(limit + 1, 0), Alert.unexpected_message, 'empty records do not count as data');
    assert.equal(run(3 * limit, 1), { read: 3 * limit, total: 3 * limit }, 'with data in between');
    // configurable
    const c = new RecordLayer({ provider: p, role: 'client', maxKeyUpdatesWithoutData: 2 });
    const s = new RecordLayer({ provider: p, role: 'server' });
    s.receive(c.writeHandshake('initial', hs(1, 10)));
    drain(s);
    s.installSecret('handshake', 'write', suite, new Uint8Array(32).fill(1));
    c.receive(s.writeHandshake('initial', hs(2, 5)));
    drain(c);
    c.installSecret('handshake', 'read', suite, new Uint8Array(32).fill(1));
    c.receive(s.writeHandshake('handshake', hs(20, 32)));
    s.installSecret('application', 'write', suite, new Uint8Array(32).fill(2));
    drain(c);
    c.installSecret('application', 'read', suite, new Uint8Array(32).fill(2));
    let wire: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 3; i++) {
      wire = cat(wire, s.writeHandshake('application', hs(24, 1, 0)));
      s.installSecret('application', 'write', suite, new Uint8Array(32).fill(3 + i));
    }
    c.receive(wire);
    c.poll();
    c.installSecret('application', 'read', suite, new Uint8Array(32).fill(3));
    c.poll();
    c.installSecret('application', 'read', suite, new Uint8Array(32).fill(4));
    expectAlert(() => c.poll(), Alert.unexpected_message, 'configured limit 2');
  }
});

test('writeAppDataV = writeAppData of the concatenation; records spanning received chunks (owned) decode', () => {
  for (const p of providers) {
    const suite: CipherSuite = 'TLS_AES_256_GCM_SHA384';
    const secret = p.randomBytes(48);
    const mk = () => {
      const l = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false, maxFragment: 1000 });
      l.installSecret('application', 'write', suite, secret);
      return l;
    };
    const parts = [new Uint8Array(10).fill(1), new Uint8Array(0), new Uint8Array(2500).fill(2), new Uint8Array(999).fill(3), new Uint8Array(1).fill(4)];
    const a = mk().writeAppDataV(parts);
    const b = mk().writeAppData(cat(...parts));
    assert.is(toHex(a), toHex(b));
    assert.is(a.length, 3510 + 4 * (5 + 1 + 16));
    // read back, fed in every chunk size from 1 to 40 (owned: read in place)
    for (let step = 1; step <= 40; step += 3) {
      const r = new RecordLayer({ provider: p, role: 'server' });
      (r as unknown as { level: string }).level = 'application';
      (r as unknown as { readKey: RecordKey }).readKey = new RecordKey(p, suite, secret);
      const wire = a.slice();
      for (let o = 0; o < wire.length; o += step) r.receive(wire.subarray(o, o + step), true);
      const got = drain(r).flatMap((e) => (e.type === 'appData' ? [...e.data] : []));
      assert.is(toHex(Uint8Array.from(got)), toHex(cat(...parts)), `step ${step}`);
      assert.is(r.bufferedBytes, 0);
    }
  }
});

test('needsKeyUpdate after keyUpdateAfter records', () => {
  const p = providers[0]!;
  const c = new RecordLayer({ provider: p, role: 'client', keyUpdateAfter: 3 });
  c.installSecret('application', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
  c.writeAppData(new Uint8Array(10));
  c.writeAppData(new Uint8Array(10));
  assert.not.ok(c.needsKeyUpdate);
  c.writeAppData(new Uint8Array(10));
  assert.ok(c.needsKeyUpdate);
  c.installSecret('application', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32).fill(2));
  assert.not.ok(c.needsKeyUpdate);
  assert.is(c.appWriteSeq, 0);
});

test('record_overflow, decode_error, bad_record_mac, unexpected content types', () => {
  for (const p of providers) {
    const mk = () => new RecordLayer({ provider: p, role: 'client' });
    // plaintext record of 2^14 + 1
    let l = mk();
    l.receive(hex('16030340010000'));
    expectAlert(() => l.poll(), Alert.record_overflow, 'plaintext 2^14+1');
    // ciphertext of 2^14 + 257
    l = mk();
    l.receive(hex('17030341010000'));
    expectAlert(() => l.poll(), Alert.record_overflow, 'ciphertext 2^14+257');
    // unknown outer type
    l = mk();
    l.receive(hex('18030300020000'));
    expectAlert(() => l.poll(), Alert.unexpected_message, 'type 24');
    // protected record before keys
    l = mk();
    l.receive(hex('170303000400000000'));
    expectAlert(() => l.poll(), Alert.unexpected_message, 'app data unprotected');
    // alert of 3 bytes
    l = mk();
    l.receive(hex('15030300030200ff'));
    expectAlert(() => l.poll(), Alert.decode_error, 'alert length');
    // zero-length handshake
    l = mk();
    l.receive(hex('1603030000'));
    expectAlert(() => l.poll(), Alert.unexpected_message, 'empty handshake');

    const { c, s } = establish(p, 'TLS_AES_256_GCM_SHA384');
    // flipped bit
    const rec = s.writeAppData(Uint8Array.of(1, 2, 3));
    rec[rec.length - 3]! ^= 0x40;
    c.receive(rec);
    expectAlert(() => c.poll(), Alert.bad_record_mac, 'flip');

    // crafted inner plaintexts, sealed with the server's key as the client would read them
    const cases: [Uint8Array, number, string][] = [
      [new Uint8Array(20), Alert.unexpected_message, 'all zero inner plaintext'],
      [Uint8Array.of(1, 2, 3, 20), Alert.unexpected_message, 'protected CCS'],
      [Uint8Array.of(1, 2, 3, 99, 0, 0), Alert.unexpected_message, 'inner type 99'],
      [cat(new Uint8Array(16385).fill(1), Uint8Array.of(23)), Alert.record_overflow, 'inner 2^14+1'],
      // §5.4: padding counts toward the limit; TLSInnerPlaintext (content + type + zeros) <= 2^14 + 1.
      [cat(new Uint8Array(16384).fill(1), Uint8Array.of(23), new Uint8Array(200)), Alert.record_overflow, 'content 2^14, padded to 2^14+201'],
      [cat(new Uint8Array(100).fill(1), Uint8Array.of(23), new Uint8Array(16285)), Alert.record_overflow, 'content 100, padded to 2^14+2'],
      [Uint8Array.of(2, 40, 0, 21, 0), Alert.decode_error, 'protected alert of 3 bytes'],
      [Uint8Array.of(22), Alert.unexpected_message, 'protected empty handshake'],
    ];
    /** A fresh connection whose client receives `inner` as a protected record under a new key. */
    const receiveCrafted = (inner: Uint8Array) => {
      const pair = establish(p, 'TLS_AES_128_GCM_SHA256');
      const secret = p.randomBytes(32);
      const w = new RecordKey(p, 'TLS_AES_128_GCM_SHA256', secret);
      pair.c.installSecret('application', 'read', 'TLS_AES_128_GCM_SHA256', secret);
      // the new key only applies at the next boundary after a KeyUpdate; simulate one
      pair.c.receive(pair.s.writeHandshake('application', hs(24, 1)));
      drain(pair.c);
      const header = Uint8Array.of(23, 3, 3, (inner.length + 16) >> 8, (inner.length + 16) & 0xff);
      pair.c.receive(cat(header, w.aead.seal(w.nonceFor(0), header, inner)));
      return pair;
    };
    for (const [inner, alert, what] of cases) {
      const pair = receiveCrafted(inner);
      expectAlert(() => drain(pair.c), alert, what);
    }
    // The boundary: content 100 + type + 16284 zeros = 2^14 + 1 bytes is accepted.
    {
      const pair = receiveCrafted(cat(new Uint8Array(100).fill(7), Uint8Array.of(23), new Uint8Array(16284)));
      const got = drain(pair.c).filter((e) => e.type === 'appData');
      assert.is(got.length, 1, 'padded to exactly 2^14 + 1: one appData');
      assert.is((got[0] as { data: Uint8Array }).data.length, 100);
    }
  }
});

test('ChangeCipherSpec: one dummy CCS dropped; a second, a bad one, or one after the handshake fails', () => {
  const p = providers[0]!;
  const ccs = hex('140303000101');
  const mk = () => {
    const s = new RecordLayer({ provider: p, role: 'server' });
    const c = new RecordLayer({ provider: p, role: 'client' });
    s.receive(c.writeHandshake('initial', hs(1, 10)));
    drain(s);
    return s;
  };
  let s = mk();
  s.receive(ccs);
  assert.equal(drain(s), []);
  s.receive(ccs);
  expectAlert(() => s.poll(), Alert.unexpected_message, 'second CCS');
  s = mk();
  s.receive(hex('140303000102'));
  expectAlert(() => s.poll(), Alert.unexpected_message, 'CCS value 2');
  s = mk();
  s.receive(hex('14030300020101'));
  expectAlert(() => s.poll(), Alert.unexpected_message, 'CCS length 2');
  s = new RecordLayer({ provider: p, role: 'server' });
  s.receive(ccs);
  expectAlert(() => s.poll(), Alert.unexpected_message, 'CCS before ClientHello');
  const pair = establish(p, 'TLS_AES_128_GCM_SHA256');
  pair.c.receive(ccs);
  expectAlert(() => pair.c.poll(), Alert.unexpected_message, 'CCS after handshake');

  // compatibility mode: one CCS goes out right before the first protected record, and only one
  const c = new RecordLayer({ provider: p, role: 'client' });
  c.installSecret('handshake', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
  const w1 = c.writeHandshake('handshake', hs(20, 32));
  assert.is(toHex(w1.subarray(0, 6)), '140303000101');
  const w2 = c.writeHandshake('handshake', hs(20, 32));
  assert.is(w2[0], 23);
  const nc = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false });
  nc.installSecret('handshake', 'write', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
  assert.is(nc.writeHandshake('handshake', hs(20, 32))[0], 23);
});

test('no other record inside a fragmented handshake message', () => {
  const p = providers[0]!;
  const c = new RecordLayer({ provider: p, role: 'client', maxFragment: 10 });
  const s = new RecordLayer({ provider: p, role: 'server' });
  const wire = c.writeHandshake('initial', hs(1, 30));
  s.receive(wire.subarray(0, 15)); // first record
  drain(s);
  s.receive(hex('15030300020250')); // plaintext alert between fragments
  expectAlert(() => s.poll(), Alert.unexpected_message, 'alert inside fragmented message');
  const s2 = new RecordLayer({ provider: p, role: 'server' });
  s2.receive(c.writeHandshake('initial', hs(1, 10)));
  drain(s2);
  s2.receive(wire.subarray(0, 15));
  drain(s2);
  s2.receive(hex('140303000101'));
  expectAlert(() => s2.poll(), Alert.unexpected_message, 'CCS inside fragmented message');
});

test('alerts: close_notify ends reading, fatal alerts reported, plaintext alerts during the handshake', () => {
  for (const p of providers) {
    const { c, s } = establish(p, 'TLS_AES_128_GCM_SHA256');
    c.receive(cat(s.writeAppData(Uint8Array.of(5)), s.writeAlert(Alert.close_notify), s.writeAppData(Uint8Array.of(6))));
    const evs = drain(c);
    assert.equal(evs.map((e) => e.type), ['appData', 'alert']);
    assert.equal(evs[1], { type: 'alert', description: 0, fatal: false });
    assert.ok(c.readClosedByPeer);
    const pair = establish(p, 'TLS_AES_128_GCM_SHA256');
    pair.s.receive(pair.c.writeAlert(Alert.bad_certificate));
    assert.equal(drain(pair.s), [{ type: 'alert', description: 42, fatal: true }]);
    // an unprotected alert while the client expects protected handshake records
    const cl = new RecordLayer({ provider: p, role: 'client' });
    cl.receive(hex('16030300060200000201ff')); // ServerHello-ish (type 2, 2 bytes)
    drain(cl);
    cl.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
    cl.receive(hex('15030300020228'));
    assert.equal(drain(cl), [{ type: 'alert', description: 40, fatal: true }]);
    // writeAlert with no keys is unprotected
    const fresh = new RecordLayer({ provider: p, role: 'server' });
    assert.is(toHex(fresh.writeAlert(Alert.handshake_failure)), '15030300020228');
  }
});

test('0-RTT accepted: early data then EndOfEarlyData switches to the handshake key; limit enforced', () => {
  for (const p of providers) {
    const suite: CipherSuite = 'TLS_AES_128_GCM_SHA256';
    const [early, chs, shs] = [p.randomBytes(32), p.randomBytes(32), p.randomBytes(32)];
    const c = new RecordLayer({ provider: p, role: 'client' });
    const s = new RecordLayer({ provider: p, role: 'server' });
    let wire = c.writeHandshake('initial', hs(1, 100));
    c.installSecret('early', 'write', suite, early);
    assert.is(c.appWriteLevel, 'early');
    const ed = c.writeAppData(Uint8Array.of(7, 7, 7));
    assert.is(toHex(ed.subarray(0, 6)), '140303000101'); // CCS right after the ClientHello
    wire = cat(wire, ed, c.writeAppData(Uint8Array.of(8)));
    s.receive(wire);
    const ch = s.poll();
    assert.equal(ch && ch.type === 'handshake' && ch.level, 'initial');
    // the core emits handshake keys before the early key: the early key still comes first
    s.installSecret('handshake', 'read', suite, chs);
    s.installSecret('handshake', 'write', suite, shs);
    s.installSecret('early', 'read', suite, early);
    s.acceptEarlyData(4);
    const evs = drain(s);
    assert.equal(evs, [
      { type: 'appData', data: Uint8Array.of(7, 7, 7), early: true },
      { type: 'appData', data: Uint8Array.of(8), early: true },
    ]);
    assert.is(s.readLevel, 'early');
    // EndOfEarlyData under the early key, then Finished under the handshake key
    c.installSecret('handshake', 'write', suite, chs);
    s.receive(cat(c.writeHandshake('early', hs(5, 0)), c.writeHandshake('handshake', hs(20, 32))));
    assert.equal(handshakeBytes(drain(s)), [
      { level: 'early', data: '05000000' },
      { level: 'handshake', data: toHex(hs(20, 32)) },
    ]);
    // over the limit
    const s2 = new RecordLayer({ provider: p, role: 'server' });
    s2.receive(wire);
    s2.poll();
    s2.installSecret('early', 'read', suite, early);
    s2.acceptEarlyData(3);
    s2.poll();
    expectAlert(() => s2.poll(), Alert.unexpected_message, 'early data over limit');
  }
});

test('client alerts: early key while 0-RTT runs (the server reads early), handshake key after EndOfEarlyData', () => {
  for (const p of providers) {
    const suite: CipherSuite = 'TLS_AES_128_GCM_SHA256';
    const [early, chs] = [p.randomBytes(32), p.randomBytes(32)];
    const c = new RecordLayer({ provider: p, role: 'client', compatibilityMode: false });
    c.writeHandshake('initial', hs(1, 100));
    c.installSecret('early', 'write', suite, early);
    // before the ServerHello nothing tells which key the server reads with: plaintext (§6)
    assert.is(c.writeAlert(Alert.internal_error)[0], 21);
    c.installSecret('handshake', 'write', suite, chs);
    const reader = (level: 'early' | 'handshake', secret: Uint8Array) => {
      const s = new RecordLayer({ provider: p, role: 'server', compatibilityMode: false });
      s.receive(cat(Uint8Array.of(22, 3, 1, 0, 104), hs(1, 100)));
      s.poll();
      s.installSecret(level, 'read', suite, secret);
      if (level === 'early') s.acceptEarlyData(100);
      return s;
    };
    const a1 = c.writeAlert(Alert.bad_certificate);
    assert.is(a1[0], 23, 'protected');
    const s1 = reader('early', early);
    s1.receive(a1);
    assert.equal(s1.poll(), { type: 'alert', description: Alert.bad_certificate, fatal: true });
    c.writeHandshake('early', hs(5, 0));
    assert.is(c.appWriteLevel, null, 'no early data after EndOfEarlyData');
    const a2 = c.writeAlert(Alert.decrypt_error);
    const s2 = reader('handshake', chs);
    s2.receive(a2);
    assert.equal(s2.poll(), { type: 'alert', description: Alert.decrypt_error, fatal: true });
  }
});

test('0-RTT rejected: undecryptable records skipped up to the budget (1-RTT and after HRR)', () => {
  for (const p of providers) {
    const suite: CipherSuite = 'TLS_AES_128_GCM_SHA256';
    const [early, chs] = [p.randomBytes(32), p.randomBytes(32)];
    const c = new RecordLayer({ provider: p, role: 'client' });
    c.installSecret('early', 'write', suite, early);
    const ch = c.writeHandshake('initial', hs(1, 100));
    const ed = cat(c.writeAppData(new Uint8Array(1000)), c.writeAppData(new Uint8Array(1000)));
    c.installSecret('handshake', 'write', suite, chs);
    c.dropEarlyWriteKey();
    const fin = c.writeHandshake('handshake', hs(20, 32));

    const s = new RecordLayer({ provider: p, role: 'server' });
    s.receive(cat(ch, ed, fin));
    s.poll();
    s.installSecret('handshake', 'read', suite, chs);
    s.rejectEarlyData(4000);
    assert.equal(handshakeBytes(drain(s)), [{ level: 'handshake', data: toHex(hs(20, 32)) }]);
    // once a record decrypted, failures are bad_record_mac again
    const bad = new Uint8Array(fin.length);
    bad.set(fin);
    bad[10]! ^= 1;
    s.receive(bad);
    expectAlert(() => s.poll(), Alert.bad_record_mac, 'after skip');

    const s2 = new RecordLayer({ provider: p, role: 'server' });
    s2.receive(cat(ch, ed, fin));
    s2.poll();
    s2.installSecret('handshake', 'read', suite, chs);
    s2.rejectEarlyData(1500);
    expectAlert(() => drain(s2), Alert.unexpected_message, 'over budget');

    // HelloRetryRequest: outer application_data records are skipped while reading unprotected
    const s3 = new RecordLayer({ provider: p, role: 'server' });
    s3.receive(cat(ch, ed));
    s3.poll();
    s3.rejectEarlyData(4000);
    assert.equal(drain(s3), []);
    s3.receive(c.writeHandshake('initial', hs(1, 120)));
    assert.equal(drain(s3).length, 1);
    s3.receive(ed.subarray(6)); // no CCS this time; after the second ClientHello no more skipping
    expectAlert(() => s3.poll(), Alert.unexpected_message, 'early data after second ClientHello');
  }
});

test('read keys switch only after the whole ClientHello, at a record boundary', () => {
  const p = providers[0]!;
  const c = new RecordLayer({ provider: p, role: 'client', maxFragment: 8 });
  const s = new RecordLayer({ provider: p, role: 'server' });
  const wire = c.writeHandshake('initial', hs(1, 20));
  s.receive(wire.subarray(0, 13));
  drain(s);
  s.installSecret('handshake', 'read', 'TLS_AES_128_GCM_SHA256', new Uint8Array(32));
  s.receive(wire.subarray(13));
  const evs = drain(s);
  assert.ok(evs.every((e) => e.type === 'handshake' && e.level === 'initial'));
  assert.is(s.readLevel, 'handshake');
});

test.run();
