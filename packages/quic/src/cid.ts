/**
 * Connection ID management (RFC 9000 §5.1): the IDs we issue to the peer (local) and the IDs the
 * peer issued to us (remote), with sequence numbers, retirement, limits and stateless-reset tokens.
 * Sans-I/O: it records what frames are owed (NEW_CONNECTION_ID / RETIRE_CONNECTION_ID) and the
 * Connection pulls them when it builds packets. Errors are ProtocolViolation with the §20 codes.
 */
import { ProtocolViolation } from '@petrel/tls-core';
import { matchesStatelessReset } from './packet.js';

const PROTOCOL_VIOLATION = 0x0a;
const CONNECTION_ID_LIMIT_ERROR = 0x09;
const FRAME_NEW_CONNECTION_ID = 0x18;
const FRAME_RETIRE_CONNECTION_ID = 0x19;

export interface IssuedCid {
  seq: number;
  cid: Uint8Array;
  resetToken: Uint8Array;
}

export function cidEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function cidHex(cid: Uint8Array): string {
  let s = '';
  for (let i = 0; i < cid.length; i++) s += cid[i]!.toString(16).padStart(2, '0');
  return s;
}

/** The connection IDs we issued. `generate` returns a fresh CID and its reset token. */
export class LocalCids {
  private readonly active = new Map<number, IssuedCid>();
  private nextSeq = 0;
  /** NEW_CONNECTION_ID frames owed to the peer (lost ones are re-queued by the Connection). */
  readonly pendingNew: IssuedCid[] = [];
  /** retire_prior_to value we advertise. */
  retirePriorTo = 0;

  constructor(
    private readonly generate: () => IssuedCid['cid'],
    private readonly resetTokenFor: (cid: Uint8Array) => Uint8Array,
    /** Called when a CID starts or stops routing to this connection (Endpoint map). */
    private readonly onChange: (cid: Uint8Array, added: boolean) => void,
  ) {}

  /** Registers the CID chosen during the handshake (sequence 0, RFC 9000 §5.1.1). */
  initial(cid: Uint8Array): IssuedCid {
    const c = { seq: this.nextSeq++, cid, resetToken: this.resetTokenFor(cid) };
    this.active.set(c.seq, c);
    this.onChange(cid, true);
    return c;
  }

  get size(): number {
    return this.active.size;
  }

  /** Issues new CIDs until `limit` (the peer's active_connection_id_limit, capped by us) are active. */
  topUp(limit: number, cidLength: number): void {
    if (cidLength === 0) return; // zero-length CIDs cannot be changed (§5.1.1)
    while (this.active.size < limit) {
      const cid = this.generate();
      const c = { seq: this.nextSeq++, cid, resetToken: this.resetTokenFor(cid) };
      this.active.set(c.seq, c);
      this.pendingNew.push(c);
      this.onChange(cid, true);
    }
  }

  /** Handles RETIRE_CONNECTION_ID (§19.16). `packetDcid` is the DCID of the packet carrying it. */
  onRetire(seq: number, packetDcid: Uint8Array): void {
    if (seq >= this.nextSeq) {
      throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, `RETIRE_CONNECTION_ID for unissued sequence ${seq}`, FRAME_RETIRE_CONNECTION_ID);
    }
    const c = this.active.get(seq);
    if (!c) return; // already retired: duplicate frame
    if (cidEquals(c.cid, packetDcid)) {
      throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, 'peer retired the connection ID its packet was sent to', FRAME_RETIRE_CONNECTION_ID);
    }
    this.active.delete(seq);
    this.onChange(c.cid, false);
  }

  isActive(cid: Uint8Array): boolean {
    for (const c of this.active.values()) if (cidEquals(c.cid, cid)) return true;
    return false;
  }

  all(): IssuedCid[] {
    return [...this.active.values()];
  }

  /** Removes every CID from routing (connection closed/drained). */
  clear(): void {
    for (const c of this.active.values()) this.onChange(c.cid, false);
    this.active.clear();
    this.pendingNew.length = 0;
  }
}

interface RemoteCid extends IssuedCid {
  retired: boolean;
}

/** The connection IDs the peer issued to us; we send with one of them as Destination CID. */
export class RemoteCids {
  private readonly cids = new Map<number, RemoteCid>();
  private retirePriorTo = 0;
  private current: RemoteCid;
  /** Sequence numbers already retired (late duplicates are not retired twice); pruned far below retirePriorTo. */
  private readonly retiredSeqs = new Set<number>();
  /** Sequence numbers owed to the peer in RETIRE_CONNECTION_ID frames. */
  readonly pendingRetire: number[] = [];

  constructor(
    initial: Uint8Array,
    /** Our active_connection_id_limit (§18.2). */
    private readonly limit: number,
    initialResetToken: Uint8Array | null = null,
  ) {
    this.current = { seq: 0, cid: initial, resetToken: initialResetToken ?? new Uint8Array(0), retired: false };
    this.cids.set(0, this.current);
  }

  /** The Destination CID for packets we send. */
  get cid(): Uint8Array {
    return this.current.cid;
  }

  get sequence(): number {
    return this.current.seq;
  }

  /** Server's CID changes during the handshake (its first Initial / Retry carries the real one). */
  replaceInitial(cid: Uint8Array): void {
    this.current.cid = cid;
  }

  /** stateless_reset_token transport parameter: the reset token of sequence 0 (§18.2). */
  setInitialResetToken(token: Uint8Array): void {
    const c = this.cids.get(0);
    if (c) c.resetToken = token;
  }

  /** Handles NEW_CONNECTION_ID (§19.15, §5.1.2). */
  onNewCid(seq: number, retirePriorTo: number, cid: Uint8Array, resetToken: Uint8Array): void {
    if (this.current.cid.length === 0) {
      throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, 'NEW_CONNECTION_ID while using zero-length connection IDs', FRAME_NEW_CONNECTION_ID);
    }
    const existing = this.cids.get(seq);
    if (existing) {
      if (!cidEquals(existing.cid, cid) || !cidEquals(existing.resetToken, resetToken)) {
        throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, `NEW_CONNECTION_ID reuses sequence ${seq} with another ID`, FRAME_NEW_CONNECTION_ID);
      }
    } else {
      for (const c of this.cids.values()) {
        if (cidEquals(c.cid, cid)) {
          throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, 'NEW_CONNECTION_ID repeats an ID under another sequence number', FRAME_NEW_CONNECTION_ID);
        }
      }
      const entry: RemoteCid = { seq, cid, resetToken, retired: false };
      if (seq < this.retirePriorTo) {
        if (!this.retiredSeqs.has(seq)) this.retire(entry);
      }
      else this.cids.set(seq, entry);
    }
    if (retirePriorTo > this.retirePriorTo) {
      this.retirePriorTo = retirePriorTo;
      for (const c of [...this.cids.values()]) if (c.seq < retirePriorTo) this.retire(c);
      if (this.current.retired) {
        const next = this.nextUnused();
        if (!next) throw new ProtocolViolation('quic', PROTOCOL_VIOLATION, 'peer retired every connection ID it issued', FRAME_NEW_CONNECTION_ID);
        this.current = next;
      }
    }
    if (this.cids.size > this.limit) {
      throw new ProtocolViolation('quic', CONNECTION_ID_LIMIT_ERROR, `peer issued more than ${this.limit} active connection IDs`, FRAME_NEW_CONNECTION_ID);
    }
    // §5.1.2: bound the retirements we still owe; a peer forcing unbounded churn is closed.
    if (this.pendingRetire.length > 4 * this.limit + 8) {
      throw new ProtocolViolation('quic', CONNECTION_ID_LIMIT_ERROR, 'too many connection IDs retired and not yet acknowledged', FRAME_NEW_CONNECTION_ID);
    }
  }

  /** Switches to an unused CID (migration / NAT rebinding probes, §9.5). Returns false if none is available. */
  rotate(): boolean {
    const next = this.nextUnused();
    if (!next) return false;
    const old = this.current;
    this.current = next;
    this.retire(old);
    return true;
  }

  /** Number of spare CIDs available for new paths. */
  get spare(): number {
    let n = 0;
    for (const c of this.cids.values()) if (c !== this.current) n++;
    return n;
  }

  /**
   * True if the datagram ends in the stateless reset token of the CID we send with (§10.3.1: "An
   * endpoint MUST NOT check for any stateless reset tokens associated with connection IDs it has
   * not used or for connection IDs that have been retired"; a rotation retires the previous one).
   */
  isResetToken(datagram: Uint8Array): boolean {
    const t = this.current.resetToken;
    return t.length > 0 && matchesStatelessReset(datagram, 0, datagram.length, t);
  }

  private nextUnused(): RemoteCid | undefined {
    let best: RemoteCid | undefined;
    for (const c of this.cids.values()) if (c !== this.current && !c.retired && (!best || c.seq < best.seq)) best = c;
    return best;
  }

  private retire(c: RemoteCid): void {
    if (c.retired) return;
    c.retired = true;
    this.cids.delete(c.seq);
    this.pendingRetire.push(c.seq);
    this.retiredSeqs.add(c.seq);
    if (this.retiredSeqs.size > 256) {
      for (const s of this.retiredSeqs) if (s < this.retirePriorTo - 128) this.retiredSeqs.delete(s);
    }
  }
}
