/**
 * HANDSHAKE_DONE must survive the loss of the server's first 1-RTT packet even when no
 * acknowledgment reaches the server (so nothing is ever declared lost): the server's PTO probes
 * repeat the oldest packet's content, and that includes HANDSHAKE_DONE (RFC 9001 §4.1.2: the client
 * confirms the handshake only on it). Seen against ngtcp2 in the interop matrix.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { QuicPair } from '../../../test/support/quic-pair.js';
import { PacketHeader, PacketType, parseHeader } from '../src/header.js';

const h = new PacketHeader();
/** Does the datagram carry a 1-RTT packet (alone, or coalesced last)? Client CIDs are 8 bytes. */
function hasShort(d: Uint8Array): boolean {
  for (let off = 0; off < d.length && parseHeader(d, off, d.length, 8, h); off = h.packetEnd) if (h.type === PacketType.OneRtt) return true;
  return false;
}

for (const provider of providers) {
  test(`[${provider.name}] a lost first 1-RTT packet: PTO probes carry HANDSHAKE_DONE`, () => {
    let droppedShort = false;
    let pair: QuicPair | null = null;
    const confirmed = (): boolean => !!pair && pair.clientEvents.some((e) => e.type === 'handshakeConfirmed');
    pair = new QuicPair({
      provider,
      seed: 7,
      link: { delayMs: 10 },
      intercept: (dir, d) => {
        // Drop the server's first datagram that carries a short-header (1-RTT) packet...
        if (dir === 'down' && !droppedShort && hasShort(d)) {
          droppedShort = true;
          return null;
        }
        // ...and every client datagram after that, until the client is
        // confirmed: no ACK reaches the server, so only its PTO probes can bring HANDSHAKE_DONE.
        if (dir === 'up' && droppedShort && !confirmed()) return null;
        return d;
      },
    });
    const ok = pair.runUntil(() => confirmed(), 20_000);
    assert.ok(droppedShort, 'the first 1-RTT-only datagram of the server was dropped');
    assert.ok(ok, 'the client confirmed the handshake from a PTO probe');
    assert.ok(pair.serverConn && !pair.serverConn.isClosed);
  });
}

test.run();
