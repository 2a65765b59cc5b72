/**
 * Pieces shared by TlsClient and TlsServer: the transcript hash, per-level message reassembly,
 * the event queue with commit-on-success, and the receive() error boundary.
 */
import type { CryptoProvider, Hash, HashAlg, SignatureScheme } from '../crypto/provider.js';
import { Alert, ProtocolViolation, tlsError } from '../errors.js';
import type { CipherSuite, EncryptionLevel, HandshakeInfo, KeyLogger, TlsEvent } from './api.js';
import { CipherSuites } from './api.js';
import { HandshakeType, MessageBuffer, encodeKeyUpdate, handshakeMessage, parseKeyUpdate } from './codec.js';
import type { KeySchedule } from '../keyschedule.js';
import { keyLogLine, type KeyLogLabel } from './keylog.js';

export const LEVELS: EncryptionLevel[] = ['initial', 'early', 'handshake', 'application'];

/**
 * The running transcript. Until the hash is known (the suite is chosen by the server) raw
 * messages are kept; `setHash` replays them. `restartForHrr` applies RFC 8446 §4.4.1: the first
 * ClientHello is replaced by message_hash(Hash(ClientHello1)).
 */
export class Transcript {
  private pending: Uint8Array[] = [];
  private h: Hash | null = null;
  constructor(private readonly provider: CryptoProvider) {}
  get alg(): HashAlg | null {
    return this.h?.alg ?? null;
  }
  add(msg: Uint8Array): void {
    if (this.h) this.h.update(msg);
    else this.pending.push(msg);
  }
  setHash(alg: HashAlg): void {
    if (this.h) return;
    this.h = this.provider.hash(alg);
    for (const m of this.pending) this.h.update(m);
    this.pending = [];
  }
  /** Replaces everything so far (ClientHello1) by the synthetic message_hash message. */
  restartForHrr(alg: HashAlg): void {
    const first = this.provider.hash(alg);
    if (this.h) throw new Error('restartForHrr after hashing started');
    for (const m of this.pending) first.update(m);
    const d = first.digest();
    this.pending = [];
    this.h = this.provider.hash(alg);
    this.h.update(handshakeMessage(HandshakeType.message_hash, d));
  }
  digest(): Uint8Array {
    if (!this.h) throw new Error('transcript hash not selected');
    return this.h.digest();
  }
  /** Hash of the transcript followed by `extra` (not added). */
  digestWith(extra: Uint8Array): Uint8Array {
    if (!this.h) throw new Error('transcript hash not selected');
    const c = this.h.clone();
    c.update(extra);
    return c.digest();
  }
}

const SPACES = new Uint8Array(64).fill(0x20);
const enc = new TextEncoder();

/** The signed content of CertificateVerify (RFC 8446 §4.4.3). */
export function certificateVerifyContent(server: boolean, transcriptHash: Uint8Array): Uint8Array {
  const ctx = enc.encode(server ? 'TLS 1.3, server CertificateVerify' : 'TLS 1.3, client CertificateVerify');
  const out = new Uint8Array(64 + ctx.length + 1 + transcriptHash.length);
  out.set(SPACES, 0);
  out.set(ctx, 64);
  out[64 + ctx.length] = 0;
  out.set(transcriptHash, 65 + ctx.length);
  return out;
}

/**
 * Whether `scheme` may sign a TLS 1.3 CertificateVerify. RFC 8446 §4.4.3: RSA signatures there MUST
 * use RSASSA-PSS, whatever signature_algorithms says; rsa_pkcs1_* in that list only covers
 * signatures in certificates (§4.2.3), so they are never accepted, requested or used here.
 */
export function certificateVerifyScheme(scheme: SignatureScheme): boolean {
  return !scheme.startsWith('rsa_pkcs1_');
}

export function suiteByCode(code: number): CipherSuite | null {
  for (const k of Object.keys(CipherSuites) as CipherSuite[]) if (CipherSuites[k].code === code) return k;
  return null;
}

export function codeToName<T extends string>(table: Record<T, number>, code: number): T | null {
  for (const k of Object.keys(table) as T[]) if (table[k] === code) return k;
  return null;
}

export type Message = { type: number; body: Uint8Array; raw: Uint8Array };

interface ExporterState {
  ks: KeySchedule;
  secret: Uint8Array;
}

const EMPTY = new Uint8Array(0);

function runExporter(st: ExporterState, label: string, length: number, context: Uint8Array | undefined): Uint8Array {
  if (typeof label !== 'string') throw new TypeError('exporter label must be a string');
  // HkdfLabel.label is <7..255> including the "tls13 " prefix (RFC 8446 §7.1).
  if (enc.encode(label).length > 249) throw new RangeError('exporter label is longer than 249 bytes');
  // HKDF-Expand yields at most 255 * HashLen bytes (RFC 5869 §2.3).
  if (!Number.isInteger(length) || length < 0 || length > 255 * st.ks.hashLen)
    throw new RangeError(`exporter length must be an integer from 0 to ${255 * st.ks.hashLen}`);
  if (context !== undefined && !(context instanceof Uint8Array)) throw new TypeError('exporter context must be a Uint8Array');
  return st.ks.exporter(st.secret, label, context ?? EMPTY, length);
}

/**
 * The receive() boundary shared by both roles. Subclasses implement `expectedLevel()` (null when
 * parked) and `handle(level, msg)`, which pushes events with `emit` — they reach the queue only
 * when the whole receive() call succeeds up to that message; on an error, the session emits one
 * 'alert' event and is dead.
 */
/** What both roles keep once connected: the application traffic secrets (RFC 8446 §7.2). */
export interface TrafficState {
  suite: CipherSuite;
  ks: KeySchedule;
  readSecret: Uint8Array;
  writeSecret: Uint8Array;
}

export abstract class SessionCore {
  protected readonly events: TlsEvent[] = [];
  private staged: TlsEvent[] = [];
  protected readonly buffers: Record<EncryptionLevel, MessageBuffer> = {
    initial: new MessageBuffer(),
    early: new MessageBuffer(),
    handshake: new MessageBuffer(),
    application: new MessageBuffer(),
  };
  protected dead = false;
  protected clientRandom: Uint8Array | null = null;
  info: Partial<HandshakeInfo> = {};
  /**
   * What the exporters (RFC 8446 §7.5) keep: the (early_)exporter_master_secret and the key
   * schedule's hash (KeySchedule holds no secrets) — no other secret survives for them.
   */
  private exporterState: ExporterState | null = null;
  private earlyExporterState: ExporterState | null = null;
  private ownFinishedData: Uint8Array | null = null;
  private peerFinishedData: Uint8Array | null = null;

  constructor(
    protected readonly provider: CryptoProvider,
    protected readonly keyLog: KeyLogger | null,
  ) {}

  protected abstract expectedLevel(): EncryptionLevel | null;
  protected abstract handle(msg: Message): void;

  protected emit(e: TlsEvent): void {
    this.staged.push(e);
  }

  protected log(label: KeyLogLabel, secret: Uint8Array): void {
    if (!this.keyLog || !this.clientRandom) return;
    try {
      this.keyLog(keyLogLine(label, this.clientRandom, secret));
    } catch {
      // a failing logger must not break the handshake
    }
  }

  poll(): TlsEvent | undefined {
    return this.events.shift();
  }

  /**
   * TLS-Exporter(label, context_value, length) (RFC 8446 §7.5), available once the handshake
   * completed (both roles; still after the connection closed). `label` is UTF-8 encoded. In TLS 1.3
   * no context and an empty context give the same output: both hash the empty string.
   */
  exportKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array {
    if (!this.exporterState) throw new Error('exportKeyingMaterial: the TLS handshake has not completed');
    return runExporter(this.exporterState, label, length, context);
  }

  /**
   * The early exporter (RFC 8446 §7.5, early_exporter_master_secret over the ClientHello): on a
   * client from the moment it offers 0-RTT until the server rejects it, on a server once it
   * accepted 0-RTT. Throws otherwise.
   */
  exportEarlyKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array {
    if (!this.earlyExporterState) throw new Error('exportEarlyKeyingMaterial: no 0-RTT was offered and accepted on this connection');
    return runExporter(this.earlyExporterState, label, length, context);
  }

  /** Our Finished verify_data (RFC 8446 §4.4.4) once sent, else null. */
  get finished(): Uint8Array | null {
    return this.ownFinishedData?.slice() ?? null;
  }

  /** The peer's Finished verify_data once received and verified, else null. */
  get peerFinished(): Uint8Array | null {
    return this.peerFinishedData?.slice() ?? null;
  }

  protected setOwnFinished(verifyData: Uint8Array): void {
    this.ownFinishedData = verifyData.slice();
  }

  protected setPeerFinished(verifyData: Uint8Array): void {
    this.peerFinishedData = verifyData.slice();
  }

  /** Called when the handshake completes: keeps exporter_master_secret for exportKeyingMaterial. */
  protected setExporter(ks: KeySchedule, secret: Uint8Array): void {
    this.exporterState = { ks, secret };
  }

  /** early_exporter_master_secret (null: 0-RTT rejected, drop it). Logged as EARLY_EXPORTER_SECRET. */
  protected setEarlyExporter(ks: KeySchedule, secret: Uint8Array | null): void {
    this.earlyExporterState = secret ? { ks, secret } : null;
    if (secret) this.log('EARLY_EXPORTER_SECRET', secret);
  }

  receive(level: EncryptionLevel, data: Uint8Array): void {
    if (this.dead) return;
    this.guard(() => {
      if (!LEVELS.includes(level)) throw new Error(`unknown level ${String(level)}`);
      this.buffers[level].push(data);
      this.process();
    });
  }

  /** Runs `fn`, committing staged events on success and turning any exception into an alert. */
  protected guard(fn: () => void): void {
    try {
      fn();
      this.commit();
    } catch (e) {
      this.fail(e);
    }
  }

  protected commit(): void {
    if (this.staged.length) {
      for (const e of this.staged) this.events.push(e);
      this.staged = [];
    }
  }

  protected fail(e: unknown): void {
    this.staged = [];
    this.dead = true;
    const err =
      e instanceof ProtocolViolation
        ? e
        : new ProtocolViolation('tls', Alert.internal_error, `internal error: ${e instanceof Error ? e.message : String(e)}`);
    // A QUIC-layer violation found by TLS (RFC 9001 §4.6.1, §8.4: PROTOCOL_VIOLATION) keeps its QUIC
    // code in `error` for the QUIC layer; the TLS alert to report for it is illegal_parameter.
    const alert = err.layer === 'tls' ? err.code : err.layer === 'quic' ? Alert.illegal_parameter : Alert.internal_error;
    this.events.push({ type: 'alert', alert, remote: false, error: err });
    this.onDead();
  }

  protected onDead(): void {}

  /**
   * A received KeyUpdate (RFC 8446 §4.6.3, TCP mode): the next read secret; when the peer asks,
   * answer with our own KeyUpdate and move to the next write secret too.
   */
  protected onKeyUpdate<S extends TrafficState>(s: S, msg: Message): S {
    const requested = parseKeyUpdate(msg.body);
    if (this.buffers.application.pending > 0) throw tlsError(Alert.unexpected_message, 'KeyUpdate not at a record boundary');
    const readSecret = s.ks.nextTrafficSecret(s.readSecret);
    this.emit({ type: 'secret', level: 'application', direction: 'read', suite: s.suite, secret: readSecret });
    const next = { ...s, readSecret };
    return requested ? this.sendKeyUpdate(next, false) : next;
  }

  /** Sends a KeyUpdate and moves to the next write secret; `requestPeer` asks the peer to follow. */
  protected sendKeyUpdate<S extends TrafficState>(s: S, requestPeer: boolean): S {
    this.emit({ type: 'send', level: 'application', data: encodeKeyUpdate(requestPeer) });
    const writeSecret = s.ks.nextTrafficSecret(s.writeSecret);
    this.emit({ type: 'secret', level: 'application', direction: 'write', suite: s.suite, secret: writeSecret });
    return { ...s, writeSecret };
  }

  /** Processes whole messages at the expected level; bytes at any other level are an error. */
  protected process(): void {
    for (;;) {
      if (this.dead) return;
      const level = this.expectedLevel();
      if (level === null) return; // parked (async resolver)
      for (const l of LEVELS) {
        if (l !== level && this.buffers[l].pending > 0) throw tlsError(Alert.unexpected_message, `handshake data at ${l} level while expecting ${level}`);
      }
      const msg = this.buffers[level].next();
      if (!msg) return;
      this.handle(msg);
      // RFC 8446 §5.1: messages that precede a key change must end at a record boundary.
      // Checked before committing, so no 'handshakeComplete' escapes ahead of the alert.
      const after = this.expectedLevel();
      if (after !== null && after !== level && this.buffers[level].pending > 0)
        throw tlsError(Alert.unexpected_message, `handshake data after a key change at ${level} level`);
      this.commit();
    }
  }
}

export function unexpected(state: string, type: number): ProtocolViolation {
  return tlsError(Alert.unexpected_message, `unexpected handshake message ${type} in state ${state}`);
}

/**
 * Runs a CertificateVerifier: its ProtocolViolation is the alert to send; any other exception
 * (a verifier choking on a malformed peer certificate) becomes bad_certificate, not internal_error.
 */
export function runVerifier(f: () => ProtocolViolation | null): void {
  let err: ProtocolViolation | null;
  try {
    err = f();
  } catch (e) {
    if (e instanceof ProtocolViolation) throw e;
    throw tlsError(Alert.bad_certificate, `certificate verification failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (err) throw err;
}
