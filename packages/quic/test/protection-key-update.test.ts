/** 1-RTT key update (RFC 9001 §6) between two OneRttKeys, for every provider. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtocolViolation } from '@petrel/tls-core';
import { providers } from '../../../test/support/providers.js';
import { writeShortHeader } from '../src/header.js';
import { PacketKeys, UnprotectedPacket, type PacketCipher } from '../src/protection.js';
import { OneRttKeys } from '../src/protection-key-update.js';
import { TransportError } from '../src/errors.js';
import { QUIC_V1 } from '../src/version.js';
import { Rng } from '../../../test/support/rng.js';

const CIPHER: PacketCipher = { aead: 'aes-128-gcm', hash: 'sha256' };
const DCID = Uint8Array.of(1, 2, 3, 4);

/** Protects a short-header packet with `keys` and Key Phase `phase`. */
function packet(keys: PacketKeys, phase: boolean, pn: number, byte: number): Uint8Array {
  const buf = new Uint8Array(64);
  const pnOffset = writeShortHeader(buf, 0, DCID, pn, 2, phase);
  buf.fill(byte, pnOffset + 2, pnOffset + 2 + 20);
  return buf.slice(0, keys.protect(buf, 0, pnOffset, 2, pnOffset + 2 + 20, pn));
}

function receive(k: OneRttKeys, pkt: Uint8Array, largest: number): UnprotectedPacket | null {
  const u = new UnprotectedPacket();
  const b = pkt.slice();
  if (!k.removeHeaderProtection(b, 0, 1 + DCID.length, b.length, largest, u)) return null;
  return k.decrypt(b, u) ? u : null;
}

for (const provider of providers) {
  test(`${provider.name}: key update initiated by one side, answered by the other`, () => {
    const c2s = new Uint8Array(32).fill(1);
    const s2c = new Uint8Array(32).fill(2);
    const keys = (s: Uint8Array) => PacketKeys.fromSecret(provider, CIPHER, QUIC_V1, s);
    const client = new OneRttKeys(keys(s2c), keys(c2s));
    const server = new OneRttKeys(keys(c2s), keys(s2c));

    const p0 = packet(client.write, client.keyPhase, 0, 0xa0);
    client.onPacketSent(0);
    assert.ok(receive(server, p0, -1));
    assert.not.ok(client.canInitiateUpdate());
    assert.throws(() => client.initiateUpdate(), (e: unknown) => e instanceof Error && !(e instanceof ProtocolViolation));
    client.onAckReceived(0);
    assert.ok(client.canInitiateUpdate());

    client.initiateUpdate();
    assert.ok(client.keyPhase);
    assert.is(client.generation, 1);
    const p1 = packet(client.write, client.keyPhase, 1, 0xa1);
    client.onPacketSent(1);
    const u1 = receive(server, p1, 0);
    assert.ok(u1);
    assert.ok(u1!.keyPhase);
    assert.ok(server.keyPhase, 'server followed the update');
    assert.is(server.generation, 1);
    assert.ok(server.previousReadKeysInstalled);
    // The server's write keys were updated too: the client reads them with its current keys.
    const s1 = packet(server.write, server.keyPhase, 0, 0xb0);
    server.onPacketSent(0);
    assert.ok(receive(client, s1, -1));
    // A reordered packet from the old phase still opens with the previous keys.
    assert.ok(receive(server, p0, 1));
    // Garbage with the other phase bit: dropped and counted.
    const forged = packet(keys(new Uint8Array(32).fill(9)), false, 5, 0);
    assert.is(receive(server, forged, 1), null);
    assert.is(server.authFailures, 1);
    // After the previous keys are gone, old packets no longer open.
    server.discardPrevious();
    assert.not.ok(server.previousReadKeysInstalled);
    assert.is(receive(server, p0, 1), null);
    // Second update, this time initiated by the server once its phase-1 packet was acknowledged.
    server.onAckReceived(0);
    server.initiateUpdate();
    const s2 = packet(server.write, server.keyPhase, 1, 0xb1);
    server.onPacketSent(1);
    assert.ok(receive(client, s2, 0));
    assert.is(client.keyPhase, false);
    assert.is(client.generation, 2);
    assert.not.ok(client.confidentialityLimitReached());
    assert.not.ok(client.integrityLimitReached());
  });

  test(`${provider.name}: consecutive peer updates are a KEY_UPDATE_ERROR`, () => {
    const c2s = new Uint8Array(32).fill(3);
    const s2c = new Uint8Array(32).fill(4);
    const keys = (s: Uint8Array) => PacketKeys.fromSecret(provider, CIPHER, QUIC_V1, s);
    const server = new OneRttKeys(keys(c2s), keys(s2c));
    const gen1 = keys(c2s).next();
    assert.ok(receive(server, packet(gen1, true, 1, 1), 0));
    assert.is(server.generation, 1);
    // The rogue client updates again before the server sent anything with the new keys.
    try {
      receive(server, packet(gen1.next(), false, 2, 2), 1);
      assert.unreachable('accepted');
    } catch (e) {
      assert.instance(e, ProtocolViolation);
      assert.is((e as ProtocolViolation).code, TransportError.KEY_UPDATE_ERROR);
    }
  });

  test(`${provider.name}: mutated packets never rotate keys or throw anything but ProtocolViolation`, () => {
    const rng = new Rng(11);
    const keys = (s: Uint8Array) => PacketKeys.fromSecret(provider, CIPHER, QUIC_V1, s);
    const c2s = new Uint8Array(32).fill(5);
    const server = new OneRttKeys(keys(c2s), keys(new Uint8Array(32).fill(6)));
    const good = packet(keys(c2s), false, 7, 0x42);
    let opened = 0;
    for (let i = 0; i < 400; i++) {
      const b = good.slice();
      const n = rng.range(1, 3);
      for (let k = 0; k < n; k++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      try {
        if (receive(server, b, 6)) opened++;
      } catch (e) {
        assert.instance(e, ProtocolViolation);
      }
    }
    assert.is(server.generation, 0);
    assert.is(server.keyPhase, false);
    assert.ok(server.authFailures > 300, `failures ${server.authFailures}`);
    assert.ok(opened < 50);
  });
}

test.run();
