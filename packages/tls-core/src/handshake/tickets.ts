/**
 * Server-side session tickets (RFC 8446 §4.6.1): the resumption state is sealed with an AEAD
 * ticket key, so the server keeps no per-session storage. Keys rotate: the current key seals,
 * current and previous keys open (the 4-byte key id in the ticket selects the key).
 *
 * Ticket = key_id(4) || nonce(12) || AES-256-GCM(key, nonce, aad = key_id, state).
 *
 * Anti-replay for 0-RTT (RFC 8446 §8.1, single-use tickets): a bounded set of ticket ids seen,
 * each kept until its ticket expires; when the set is full of live entries, 0-RTT is refused
 * rather than the set grown.
 */
import type { Aead, CryptoProvider } from '../crypto/provider.js';
import { CipherSuites, type CipherSuite } from './api.js';
import { Reader, Writer, toHex } from './codec.js';

interface TicketKey {
  id: number;
  aead: Aead;
}

export class TicketKeyring {
  private current: TicketKey;
  private previous: TicketKey | null = null;
  private nextId: number;
  constructor(
    private readonly provider: CryptoProvider,
    key?: Uint8Array,
  ) {
    const r = provider.randomBytes(4);
    this.nextId = ((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0;
    this.current = this.make(key ?? provider.randomBytes(32));
  }
  private make(key: Uint8Array): TicketKey {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0;
    return { id, aead: this.provider.aead('aes-256-gcm', key) };
  }
  /** Starts sealing with a new key (random unless given); the old one still opens tickets until the next rotation. */
  rotate(key?: Uint8Array): void {
    this.previous = this.current;
    this.current = this.make(key ?? this.provider.randomBytes(32));
  }
  seal(state: Uint8Array): Uint8Array {
    const nonce = this.provider.randomBytes(12);
    const kid = new Writer().u32(this.current.id).finish();
    const ct = this.current.aead.seal(nonce, kid, state);
    const out = new Uint8Array(16 + ct.length);
    out.set(kid, 0);
    out.set(nonce, 4);
    out.set(ct, 16);
    return out;
  }
  /** The sealed state, or null if the ticket is not ours / tampered / from a retired key. */
  open(ticket: Uint8Array): Uint8Array | null {
    if (ticket.length < 16 + 16) return null;
    const id = ((ticket[0]! << 24) | (ticket[1]! << 16) | (ticket[2]! << 8) | ticket[3]!) >>> 0;
    const key = id === this.current.id ? this.current : this.previous && id === this.previous.id ? this.previous : null;
    if (!key) return null;
    return key.aead.open(ticket.subarray(4, 16), ticket.subarray(0, 4), ticket.subarray(16));
  }
}

/** What a ticket remembers (server side). */
export interface TicketState {
  suite: CipherSuite;
  psk: Uint8Array;
  ageAdd: number;
  issuedAt: number;
  lifetimeSeconds: number;
  maxEarlyData: number;
  alpn: string | null;
  serverName: string | null;
  /** Random per-ticket id for single-use (anti-replay). */
  id: Uint8Array;
  /** Leaf certificate of an authenticated client, if any. */
  clientLeaf: Uint8Array | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeTicketState(s: TicketState): Uint8Array {
  const w = new Writer();
  w.u8(1).u16(CipherSuites[s.suite].code).vecBytes(1, s.psk).u32(s.ageAdd);
  w.u32(Math.floor(s.issuedAt / 0x100000000)).u32(s.issuedAt >>> 0);
  w.u32(s.lifetimeSeconds).u32(s.maxEarlyData);
  w.vecBytes(1, s.alpn === null ? new Uint8Array(0) : enc.encode(s.alpn));
  w.vecBytes(1, s.serverName === null ? new Uint8Array(0) : enc.encode(s.serverName));
  w.vecBytes(1, s.id);
  w.vecBytes(3, s.clientLeaf ?? new Uint8Array(0));
  return w.finish();
}

/** Decodes a state we sealed ourselves; null on anything unexpected (never throws). */
export function decodeTicketState(b: Uint8Array): TicketState | null {
  try {
    const r = new Reader(b);
    if (r.u8() !== 1) return null;
    const code = r.u16();
    const suite = (Object.keys(CipherSuites) as CipherSuite[]).find((k) => CipherSuites[k].code === code);
    if (!suite) return null;
    const psk = r.vec(1).slice();
    const ageAdd = r.u32();
    const issuedAt = r.u32() * 0x100000000 + r.u32();
    const lifetimeSeconds = r.u32();
    const maxEarlyData = r.u32();
    const a = r.vec(1);
    const n = r.vec(1);
    const id = r.vec(1).slice();
    const leaf = r.vec(3);
    r.expectEnd();
    return {
      suite,
      psk,
      ageAdd,
      issuedAt,
      lifetimeSeconds,
      maxEarlyData,
      alpn: a.length ? dec.decode(a) : null,
      serverName: n.length ? dec.decode(n) : null,
      id,
      clientLeaf: leaf.length ? leaf.slice() : null,
    };
  } catch {
    return null;
  }
}

export class AntiReplay {
  private readonly seen = new Map<string, number>();
  constructor(readonly capacity = 10000) {}
  get size(): number {
    return this.seen.size;
  }
  /**
   * Records a use of ticket `id` valid until `expiresAt` (ms). Returns true if this is the first
   * use (0-RTT may be accepted), false if it was seen before or the set is full of live entries.
   */
  use(id: Uint8Array, expiresAt: number, now: number): boolean {
    const k = toHex(id);
    const prev = this.seen.get(k);
    if (prev !== undefined && prev > now) return false;
    if (prev === undefined && this.seen.size >= this.capacity) {
      for (const [key, exp] of this.seen) if (exp <= now) this.seen.delete(key);
      if (this.seen.size >= this.capacity) return false;
    }
    this.seen.set(k, expiresAt);
    return true;
  }
}
