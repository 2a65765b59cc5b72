/**
 * The TLS exporter on QUIC connections (RFC 9001 §4 keeps RFC 8446 §7.5): both ends derive the same
 * keying material from the same handshake; labels, contexts and connections separate the values;
 * asking before the handshake completes throws. The value is also re-derived from the key log's
 * EXPORTER_SECRET line, independently of the TLS core.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hkdfExpandLabel } from '../../tls-core/src/hkdf.js';
import { providers } from '../../../test/support/providers.js';
import { QuicPair } from '../../../test/support/quic-pair.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

for (const provider of providers) {
  test(`[${provider.name}] client and server export the same keying material; label, context and connection change it`, () => {
    const p = new QuicPair({ provider, seed: 3 });
    assert.throws(() => p.client.exportKeyingMaterial!('EXPORTER-test', 32), /handshake/);
    assert.ok(p.handshake());
    const s = p.serverConn!;
    const c1 = p.client.exportKeyingMaterial!('EXPORTER-test', 32);
    assert.is(c1.length, 32);
    assert.is(hex(s.exportKeyingMaterial!('EXPORTER-test', 32)), hex(c1));
    const ctx = enc('context');
    assert.is(hex(s.exportKeyingMaterial!('EXPORTER-test', 48, ctx)), hex(p.client.exportKeyingMaterial!('EXPORTER-test', 48, ctx)));
    assert.is.not(hex(p.client.exportKeyingMaterial!('EXPORTER-other', 32)), hex(c1));
    assert.is.not(hex(p.client.exportKeyingMaterial!('EXPORTER-test', 32, ctx)), hex(c1));
    // RFC 8446 §7.5: no context and an empty context are the same in TLS 1.3.
    assert.is(hex(p.client.exportKeyingMaterial!('EXPORTER-test', 32, new Uint8Array(0))), hex(c1));

    // Independent derivation from the key log: HKDF-Expand-Label(Derive-Secret(S, label, ""), "exporter", Hash(ctx), L).
    const line = p.keyLog.find((l) => l.startsWith('EXPORTER_SECRET '));
    assert.ok(line, 'EXPORTER_SECRET in the key log');
    const secret = Uint8Array.from(Buffer.from(line!.split(' ')[2]!, 'hex'));
    const hash = secret.length === 48 ? 'sha384' : 'sha256';
    const derived = hkdfExpandLabel(provider, hash, secret, 'EXPORTER-test', provider.digest(hash, new Uint8Array(0)), secret.length);
    const expected = hkdfExpandLabel(provider, hash, derived, 'exporter', provider.digest(hash, new Uint8Array(0)), 32);
    assert.is(hex(c1), hex(expected));

    const q = new QuicPair({ provider, seed: 4 });
    assert.ok(q.handshake());
    assert.is.not(hex(q.client.exportKeyingMaterial!('EXPORTER-test', 32)), hex(c1), 'another connection, another value');
    assert.equal(p.thrown, []);
  });
}

test.run();
