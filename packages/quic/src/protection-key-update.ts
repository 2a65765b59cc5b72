/**
 * 1-RTT key phases and key update (RFC 9001 §6): which receive keys open a packet (previous, current,
 * next, chosen by the Key Phase bit and the packet number, §6.5), detection of a peer-initiated update
 * (§6.2), our own updates (§6.1, permitted once a packet of the current phase was acknowledged), and
 * AEAD usage limits (§6.6).
 *
 * Next-generation keys are derived ahead of time (at install and at each rotation), never while
 * deciding whether a packet with a flipped Key Phase bit is genuine (§6.3).
 *
 * Receive path:
 * ```ts
 * if (!k.removeHeaderProtection(buf, h.headerOffset, h.pnOffset, h.packetEnd, largestPn, u)) drop;
 * if (!k.decrypt(buf, u)) drop;   // may throw KEY_UPDATE_ERROR / PROTOCOL_VIOLATION (reserved bits)
 * ```
 * Send path: `k.write.protect(...)` with the Key Phase bit `k.keyPhase`, then `k.onPacketSent(pn)`;
 * on ACKs `k.onAckReceived(largestAcked)`; to update: `if (k.canInitiateUpdate()) k.initiateUpdate()`
 * (only once the handshake is confirmed, which the caller knows). Call `k.discardPrevious()` about
 * three PTOs after `k.previousReadKeysInstalled` became true.
 */
import { TransportError, quicError } from './errors.js';
import { AEAD_LIMITS, type PacketKeys, type UnprotectedPacket } from './protection.js';

export class OneRttKeys {
  /** Key Phase bit of the current keys (what we send, and what the peer's current packets carry). */
  keyPhase = false;
  /** Current write keys. */
  write: PacketKeys;
  private writeNext: PacketKeys;
  private readCurrent: PacketKeys;
  private readNext: PacketKeys;
  private readPrevious: PacketKeys | null = null;
  /** Lowest packet number we sent in the current phase; -1 before the first. */
  private firstSentPn = -1;
  /** Lowest packet number received (and opened) in the current phase. */
  private firstRecvPn = Infinity;
  /** The peer acknowledged a packet of the current phase. */
  private ackedCurrentPhase = false;
  /** Number of key updates so far (ours and the peer's). */
  generation = 0;
  /** Packets that failed authentication, all generations together (RFC 9001 §6.6 integrity limit). */
  authFailures = 0;

  constructor(read: PacketKeys, write: PacketKeys) {
    this.readCurrent = read;
    this.readNext = read.next();
    this.write = write;
    this.writeNext = write.next();
  }

  /** A packet of the current phase has been opened (after our own update: the peer follows). */
  get receivedInCurrentPhase(): boolean {
    return this.firstRecvPn !== Infinity;
  }

  /** True while keys of the previous phase are kept for reordered packets. */
  get previousReadKeysInstalled(): boolean {
    return this.readPrevious !== null;
  }

  /** Removes header protection (the hp key is the same for every generation). See PacketKeys.removeHeaderProtection. */
  removeHeaderProtection(
    buf: Uint8Array,
    headerOffset: number,
    pnOffset: number,
    packetEnd: number,
    largestPn: number,
    out: UnprotectedPacket,
  ): boolean {
    return this.readCurrent.removeHeaderProtection(buf, headerOffset, pnOffset, packetEnd, largestPn, out);
  }

  /**
   * Decrypts a short-header packet whose header protection was removed, with the keys its Key Phase
   * bit and packet number select. A packet that opens with the next keys is a peer-initiated key
   * update: keys rotate (our write keys too, §6.2). Returns false to drop the packet. Throws
   * KEY_UPDATE_ERROR for a second update before we sent anything in the current phase.
   */
  decrypt(buf: Uint8Array, p: UnprotectedPacket): boolean {
    if (p.keyPhase === this.keyPhase) {
      if (!this.readCurrent.decrypt(buf, p)) return this.failed();
      if (p.pn < this.firstRecvPn) this.firstRecvPn = p.pn;
      return true;
    }
    if (this.readPrevious !== null && p.pn < this.firstRecvPn) {
      // Reordered packet from before the last update (§6.5).
      return this.readPrevious.decrypt(buf, p) || this.failed();
    }
    if (!this.readNext.decrypt(buf, p)) return this.failed();
    // The peer updated keys.
    if (this.firstSentPn < 0 && this.generation > 0) {
      throw quicError(TransportError.KEY_UPDATE_ERROR, 'consecutive key updates without confirmation');
    }
    this.rotate();
    this.firstRecvPn = p.pn;
    return true;
  }

  private failed(): false {
    this.authFailures++;
    return false;
  }

  private rotate(): void {
    this.readPrevious = this.readCurrent;
    this.readCurrent = this.readNext;
    this.readNext = this.readCurrent.next();
    this.write = this.writeNext;
    this.writeNext = this.write.next();
    this.keyPhase = !this.keyPhase;
    this.firstSentPn = -1;
    this.firstRecvPn = Infinity;
    this.ackedCurrentPhase = false;
    this.generation++;
  }

  /** Record a 1-RTT packet sent with the current write keys. */
  onPacketSent(pn: number): void {
    if (this.firstSentPn < 0) this.firstSentPn = pn;
  }

  /** Record the largest acknowledged packet number of an ACK frame in the application space. */
  onAckReceived(largestAcked: number): void {
    if (this.firstSentPn >= 0 && largestAcked >= this.firstSentPn) this.ackedCurrentPhase = true;
  }

  /**
   * May we start a key update (§6.1)? Requires an acknowledged packet of the current phase. The
   * caller must also have confirmed the handshake (and SHOULD wait 3 PTO after the previous update).
   */
  canInitiateUpdate(): boolean {
    return this.ackedCurrentPhase;
  }

  /** Starts a key update: new write and read keys, the Key Phase bit flips. Throws if not permitted (local bug). */
  initiateUpdate(): void {
    if (!this.ackedCurrentPhase) throw new Error('key update not permitted before a packet of the current phase is acknowledged');
    this.rotate();
  }

  /** Drops the previous read keys (about 3 PTO after the update, §6.5). */
  discardPrevious(): void {
    this.readPrevious = null;
  }

  /** The current write keys have protected as many packets as their AEAD allows: update keys (or close). */
  confidentialityLimitReached(): boolean {
    return this.write.sealed >= AEAD_LIMITS[this.write.cipher.aead].confidentiality;
  }

  /** Too many forged packets: close with AEAD_LIMIT_REACHED (§6.6). */
  integrityLimitReached(): boolean {
    return this.authFailures >= AEAD_LIMITS[this.write.cipher.aead].integrity;
  }
}
