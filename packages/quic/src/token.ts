/**
 * Address-validation tokens (RFC 9000 §8.1) and stateless-reset tokens (§10.3), owned by the Endpoint.
 *
 * Tokens are opaque to clients; we make them authenticated and confidential with an AEAD key that
 * only this endpoint knows: token = kind(1) || nonce(12) || AEAD(plaintext, aad = kind). Retry
 * tokens bind the client's address and the original destination connection ID and expire quickly
 * (§8.1.2); NEW_TOKEN tokens bind only the client IP (a NAT may change the port, §8.1.3) and live
 * longer. A token that does not open, has expired or names another address is simply invalid:
 * the caller decides (Retry token invalid → INVALID_TOKEN close; NEW_TOKEN invalid → treat as no token).
 *
 * Replay (§8.1.4: servers MUST prevent or limit it; NEW_TOKEN tokens SHOULD NOT be accepted more
 * than once): a NEW_TOKEN token that validated an address (useNewToken) is remembered by its nonce
 * until its lifetime has surely passed, so it validates no second connection. The record is
 * bounded (newTokenMemory entries, oldest forgotten first): beyond that, replay is limited, not
 * prevented. It is per TokenAuthority: endpoints that share token keys each accept a token once.
 * Retry tokens are not recorded: they live 10 s and bind the client's address and port and the
 * connection IDs of one handshake, whose further Initials route to that connection (§8.1.2).
 */
import type { Aead, CryptoProvider } from '@petrel/tls-core';

export const TokenKind = { retry: 1, newToken: 2 } as const;

export interface TokenOptions {
  /** Lifetime of Retry tokens in ms (default 10 s). */
  retryLifetimeMs?: number;
  /** Lifetime of NEW_TOKEN tokens in ms (default 24 h). */
  newTokenLifetimeMs?: number;
  /**
   * NEW_TOKEN tokens remembered as used (replay protection, §8.1.4; default 65 536, a few MB at
   * most); when full, the oldest record is dropped (that token could then be used once more).
   */
  newTokenMemory?: number;
}

export interface ValidRetryToken {
  kind: 'retry';
  /** The original Destination Connection ID of the client's first Initial (for original_destination_connection_id). */
  originalDcid: Uint8Array;
  /** The Source Connection ID we put in the Retry (for retry_source_connection_id). */
  retryScid: Uint8Array;
}

export class TokenAuthority {
  private readonly aead: Aead;
  private readonly resetKey: Uint8Array;
  private readonly retryLifetime: number;
  private readonly newTokenLifetime: number;
  private readonly newTokenMemory: number;
  /** Used NEW_TOKEN tokens: nonce (as a string) → when the record may go (use time + lifetime; in insertion order). */
  private readonly usedNewTokens = new Map<string, number>();

  constructor(
    private readonly provider: CryptoProvider,
    opts: TokenOptions = {},
    /** 16-byte AEAD key and 32-byte reset key; random unless given (several endpoints sharing keys). */
    keys?: { tokenKey: Uint8Array; resetKey: Uint8Array },
  ) {
    this.aead = provider.aead('aes-128-gcm', keys?.tokenKey ?? provider.randomBytes(16));
    this.resetKey = keys?.resetKey ?? provider.randomBytes(32);
    this.retryLifetime = opts.retryLifetimeMs ?? 10_000;
    this.newTokenLifetime = opts.newTokenLifetimeMs ?? 24 * 3600_000;
    this.newTokenMemory = opts.newTokenMemory ?? 65_536;
  }

  /** NEW_TOKEN tokens recorded as used (tests, stats). */
  get usedNewTokenCount(): number {
    return this.usedNewTokens.size;
  }

  /**
   * Records that `token` (a NEW_TOKEN token that validate() accepted) validated a connection's
   * address: validate() rejects it from now on, until the record is dropped (it outlives the
   * token's own expiry, or the memory is full).
   */
  useNewToken(token: Uint8Array, nowMs: number): void {
    if (token.length < 13 || token[0] !== TokenKind.newToken || this.newTokenMemory <= 0) return;
    const used = this.usedNewTokens;
    // Records are inserted with non-decreasing expiry (the clock is monotonic): expired ones are at the front.
    for (const [k, until] of used) {
      if (until >= nowMs) break;
      used.delete(k);
    }
    while (used.size >= this.newTokenMemory) used.delete(used.keys().next().value!);
    used.set(nonceKey(token), nowMs + this.newTokenLifetime);
  }

  /** Stateless reset token for a connection ID we issued (RFC 9000 §10.3.2: derived, not stored). */
  resetToken(cid: Uint8Array): Uint8Array {
    return this.provider.hmac('sha256', this.resetKey, cid).subarray(0, 16);
  }

  /** A Retry token for a client at `address` ("ip:port"), bound to the QUIC `version` of its Initial. */
  retryToken(address: string, originalDcid: Uint8Array, retryScid: Uint8Array, nowMs: number, version = 1): Uint8Array {
    const addr = new TextEncoder().encode(address);
    const pt = new Uint8Array(8 + 1 + originalDcid.length + 1 + retryScid.length + addr.length);
    const dv = new DataView(pt.buffer);
    dv.setFloat64(0, nowMs);
    pt[8] = originalDcid.length;
    pt.set(originalDcid, 9);
    pt[9 + originalDcid.length] = retryScid.length;
    pt.set(retryScid, 10 + originalDcid.length);
    pt.set(addr, 10 + originalDcid.length + retryScid.length);
    return this.seal(TokenKind.retry, pt, version);
  }

  /** A NEW_TOKEN token for `ip`, bound to the QUIC `version` of the connection that sends it. */
  newToken(ip: string, nowMs: number, version = 1): Uint8Array {
    const addr = new TextEncoder().encode(ip);
    const pt = new Uint8Array(8 + addr.length);
    new DataView(pt.buffer).setFloat64(0, nowMs);
    pt.set(addr, 8);
    return this.seal(TokenKind.newToken, pt, version);
  }

  /**
   * Checks a token from a client Initial. `address` is "ip:port" of the sender; `ip` its IP.
   * Returns the Retry token's contents, 'new-token' for a valid NEW_TOKEN token, or null.
   */
  validate(token: Uint8Array, address: string, ip: string, nowMs: number, version = 1): ValidRetryToken | 'new-token' | null {
    if (token.length < 1 + 12 + 16 + 8) return null;
    const kind = token[0]!;
    // A token issued under another QUIC version does not open (RFC 9369 §5: servers MUST NOT
    // accept a token from a different version).
    const pt = this.aead.open(token.subarray(1, 13), tokenAad(kind, version), token.subarray(13));
    if (!pt || pt.length < 8) return null;
    const issued = new DataView(pt.buffer, pt.byteOffset, pt.byteLength).getFloat64(0);
    const dec = new TextDecoder();
    if (kind === TokenKind.newToken) {
      if (!(nowMs >= issued && nowMs - issued <= this.newTokenLifetime)) return null;
      if (dec.decode(pt.subarray(8)) !== ip) return null;
      // The nonce is authenticated (the AEAD opened with it): a used token cannot be disguised.
      return this.usedNewTokens.has(nonceKey(token)) ? null : 'new-token';
    }
    if (kind !== TokenKind.retry) return null;
    if (!(nowMs >= issued && nowMs - issued <= this.retryLifetime)) return null;
    const odLen = pt[8];
    if (odLen === undefined || 9 + odLen >= pt.length) return null;
    const rsLen = pt[9 + odLen]!;
    const addrStart = 10 + odLen + rsLen;
    if (addrStart > pt.length) return null;
    if (dec.decode(pt.subarray(addrStart)) !== address) return null;
    return { kind: 'retry', originalDcid: pt.slice(9, 9 + odLen), retryScid: pt.slice(10 + odLen, addrStart) };
  }

  private seal(kind: number, pt: Uint8Array, version: number): Uint8Array {
    const nonce = this.provider.randomBytes(12);
    const ct = this.aead.seal(nonce, tokenAad(kind, version), pt);
    const out = new Uint8Array(1 + 12 + ct.length);
    out[0] = kind;
    out.set(nonce, 1);
    out.set(ct, 13);
    return out;
  }
}

/** Authenticated data of a token: its kind and the QUIC version it was issued under. */
function tokenAad(kind: number, version: number): Uint8Array {
  return new Uint8Array([kind, version >>> 24, (version >>> 16) & 0xff, (version >>> 8) & 0xff, version & 0xff]);
}

/** The token's 12-byte nonce as a map key (one char per byte). */
function nonceKey(token: Uint8Array): string {
  return String.fromCharCode(...token.subarray(1, 13));
}
