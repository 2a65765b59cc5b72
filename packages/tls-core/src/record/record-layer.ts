/**
 * The TLS 1.3 record layer (RFC 8446 §5), sans-I/O.
 *
 * Input: bytes from the transport (`receive`), then `poll()` one event at a time: handshake bytes
 * at the encryption level they were protected with, application data, alerts. Events are produced
 * lazily, one record (or one handshake message) per call, so a driver that feeds every handshake
 * event to the handshake core and installs the secrets it emits before polling again always
 * decrypts the next record with the right key. Output: `writeHandshake`, `writeAppData`,
 * `writeAlert` return ready-to-send bytes (one or more records in one buffer).
 *
 * Errors from the peer (malformed records, authentication failures, unexpected content types) are
 * thrown from `poll()` as a {@link ProtocolViolation} carrying the alert to send; after that the
 * layer is dead and `poll()` rethrows the same error.
 */
import type { CryptoProvider } from '../crypto/provider.js';
import type { CipherSuite, Direction, EncryptionLevel } from '../handshake/api.js';
import { Alert, ProtocolViolation, tlsError } from '../errors.js';
import { hardRecordLimit, RecordKey, softRecordLimit } from './keys.js';

export const ContentType = {
  invalid: 0,
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
} as const;

/** TLSPlaintext.length limit (2^14). */
export const MAX_PLAINTEXT = 16384;
/** TLSCiphertext.length limit (2^14 + 256). */
export const MAX_CIPHERTEXT = 16384 + 256;
const TAG = 16;
const HEADER = 5;

/** Handshake message types (RFC 8446 §4) that may immediately precede a key change (§5.1). */
const HS_CLIENT_HELLO = 1;
const HS_SERVER_HELLO = 2;
const HS_END_OF_EARLY_DATA = 5;
const HS_FINISHED = 20;
const HS_KEY_UPDATE = 24;

export type RecordEvent =
  /** Handshake-message bytes (at most one message, possibly a fragment of one) read at `level`. */
  | { type: 'handshake'; level: EncryptionLevel; data: Uint8Array }
  /** Application data; `early` for 0-RTT data read by a server that accepted it. */
  | { type: 'appData'; data: Uint8Array; early: boolean }
  /** An alert from the peer. `fatal` is false only for close_notify and user_canceled (RFC 8446 §6). */
  | { type: 'alert'; description: number; fatal: boolean };

export interface RecordLayerOptions {
  provider: CryptoProvider;
  role: 'client' | 'server';
  /** Send one dummy ChangeCipherSpec before the first protected record (RFC 8446 §D.4). Default true. */
  compatibilityMode?: boolean;
  /** Zero bytes of padding added to each protected record (RFC 8446 §5.4). Default 0. */
  padding?: number;
  /** Plaintext bytes per record (1..2^14). Default 2^14. */
  maxFragment?: number;
  /** Records per write key after which `needsKeyUpdate` is true. Default: per suite (§5.5). */
  keyUpdateAfter?: number;
  /**
   * KeyUpdate messages the peer may send in a row with no application data in between (each costs
   * a key derivation, and with update_requested a KeyUpdate of ours); one more is unexpected_message.
   * Default {@link MAX_KEY_UPDATES_WITHOUT_DATA}.
   */
  maxKeyUpdatesWithoutData?: number;
}

/** Default bound on consecutive KeyUpdates from the peer without application data in between. */
export const MAX_KEY_UPDATES_WITHOUT_DATA = 32;

type KeyedLevel = Exclude<EncryptionLevel, 'initial'>;

export class RecordLayer {
  readonly role: 'client' | 'server';
  private readonly provider: CryptoProvider;
  private readonly compat: boolean;
  private readonly padding: number;
  private readonly maxFragment: number;
  private readonly keyUpdateAfter: number | undefined;
  private readonly maxKeyUpdatesWithoutData: number;
  private keyUpdatesInARow = 0;
  private keyUpdatesTotal = 0;

  // Input: a queue of received chunks (live bytes: chunks[0][headOff..], chunks[1], ...). Records
  // that lie within one chunk are read in place; only a record that spans chunks is copied, into
  // `scratch` (no per-receive concatenation, no growing buffer).
  private chunks: Uint8Array[] = [];
  private headOff = 0;
  private queued = 0;
  private readonly scratch = new Uint8Array(HEADER + MAX_CIPHERTEXT);

  // The record being delivered (handshake content only): rec[recPos..recEnd).
  private rec: Uint8Array | null = null;
  private recPos = 0;
  private recEnd = 0;

  // Handshake message framing across records.
  private readonly hsHeader = new Uint8Array(4);
  private hsHeaderFill = 0;
  private hsBodyRemaining = 0;

  private level: EncryptionLevel = 'initial';
  private readKey: RecordKey | null = null;
  private readonly pendingRead: Partial<Record<KeyedLevel, RecordKey>> = {};
  private clientHellos = 0;
  private eoedSeen = false;
  private peerFinishedSeen = false;
  private ccsReceived = 0;
  private keyUpdateSeen = false;
  /** The ClientHello (server) / ServerHello (client) was read: protected records may follow. */
  private helloSeen = false;

  // 0-RTT, server side.
  private skipEarly = false;
  private skipBudget = 0;
  private earlyLimit = 0;
  private earlyReceived = 0;

  private readClosed = false;
  private failure: ProtocolViolation | null = null;

  private readonly writeKeys: Partial<Record<KeyedLevel, RecordKey>> = {};
  private ccsSent = false;

  constructor(opts: RecordLayerOptions) {
    this.provider = opts.provider;
    this.role = opts.role;
    this.compat = opts.compatibilityMode ?? true;
    this.padding = Math.max(0, Math.floor(opts.padding ?? 0));
    this.maxFragment = Math.min(MAX_PLAINTEXT, Math.max(1, Math.floor(opts.maxFragment ?? MAX_PLAINTEXT)));
    if (this.padding + this.maxFragment + 1 > MAX_PLAINTEXT + 1) this.maxFragment = MAX_PLAINTEXT - this.padding;
    this.keyUpdateAfter = opts.keyUpdateAfter;
    this.maxKeyUpdatesWithoutData = Math.max(1, Math.floor(opts.maxKeyUpdatesWithoutData ?? MAX_KEY_UPDATES_WITHOUT_DATA));
  }

  /** KeyUpdate messages read from the peer so far (drivers rate-limit them over time). */
  get keyUpdatesRead(): number {
    return this.keyUpdatesTotal;
  }

  /** The level whose key protects the records currently read. */
  get readLevel(): EncryptionLevel {
    return this.level;
  }
  /** True after close_notify or a fatal alert from the peer: further input is ignored. */
  get readClosedByPeer(): boolean {
    return this.readClosed;
  }
  get writeLevels(): KeyedLevel[] {
    return Object.keys(this.writeKeys) as KeyedLevel[];
  }
  /** Application-data records written with the current key (for tests and limits). */
  get appWriteSeq(): number {
    return this.writeKeys.application?.seq ?? 0;
  }
  get appReadSeq(): number {
    return this.level === 'application' && this.readKey ? this.readKey.seq : 0;
  }
  /** True when the application write key approaches its usage limit (RFC 8446 §5.5): send a KeyUpdate. */
  get needsKeyUpdate(): boolean {
    const k = this.writeKeys.application;
    if (!k) return false;
    return k.seq >= (this.keyUpdateAfter ?? softRecordLimit(k.suite));
  }
  /** Whether application data can be written now, and with which key. */
  get appWriteLevel(): 'application' | 'early' | null {
    if (this.writeKeys.application) return 'application';
    if (this.writeKeys.early) return 'early';
    return null;
  }

  // ---------------------------------------------------------------------------------------------
  // Keys

  /**
   * Installs a traffic secret from the handshake core's 'secret' event. Write keys take effect
   * immediately (a KeyUpdate's 'send' event comes before its 'secret' event, so the KeyUpdate
   * goes out under the old key). Read keys take effect at the next record boundary after the
   * message that changes keys (ClientHello/ServerHello, EndOfEarlyData, Finished, KeyUpdate).
   */
  installSecret(level: KeyedLevel, direction: Direction, suite: CipherSuite, secret: Uint8Array): void {
    const key = new RecordKey(this.provider, suite, secret);
    if (direction === 'write') {
      this.writeKeys[level] = key;
      // Once the handshake key is in place the early key is done (the client sent EndOfEarlyData under it).
      if (level === 'application') delete this.writeKeys.early;
    } else {
      this.pendingRead[level] = key;
    }
  }

  /** Client: 0-RTT was rejected (or the handshake moved on); stop writing early data. */
  dropEarlyWriteKey(): void {
    delete this.writeKeys.early;
  }

  /**
   * Server: 0-RTT offered but rejected. Undecryptable records (after a HelloRetryRequest: every
   * record with outer type application_data) are skipped, up to `maxBytes` (RFC 8446 §4.2.10).
   */
  rejectEarlyData(maxBytes: number): void {
    this.skipEarly = true;
    this.skipBudget = maxBytes;
  }
  /** Server: 0-RTT accepted; at most `maxBytes` of early application data are allowed (§4.2.10). */
  acceptEarlyData(maxBytes: number): void {
    this.earlyLimit = maxBytes;
  }

  // ---------------------------------------------------------------------------------------------
  // Input

  /**
   * Buffers bytes from the transport. Never throws; parse with `poll()`. With `owned` the caller
   * hands the buffer over (it will not modify it later, e.g. a fresh socket chunk): it is read in
   * place instead of copied.
   */
  receive(data: Uint8Array, owned = false): void {
    if (this.readClosed || this.failure || data.length === 0) return;
    this.chunks.push(owned ? data : data.slice());
    this.queued += data.length;
  }

  /**
   * Copies the input not parsed yet into a buffer of its own. A driver that passed a buffer it will
   * reuse (`receive(buf, true)` of a read buffer) calls this before reusing it. Events never alias
   * the input (decrypted records are new buffers, unprotected handshake records are copied), so
   * only this unparsed rest (usually a partial record) needs copying.
   */
  detachInput(): void {
    const n = this.queued;
    if (n === 0) {
      this.chunks.length = 0;
      this.headOff = 0;
      return;
    }
    const copy = new Uint8Array(n);
    let o = 0;
    let off = this.headOff;
    for (const c of this.chunks) {
      copy.set(off === 0 ? c : c.subarray(off), o);
      o += c.length - off;
      off = 0;
    }
    this.chunks = [copy];
    this.headOff = 0;
  }

  /** Bytes received but not yet parsed into records. */
  get bufferedBytes(): number {
    return this.queued;
  }

  /** The input byte at offset `k` from the read position (k < queued). */
  private peekByte(k: number): number {
    let off = this.headOff + k;
    for (const c of this.chunks) {
      if (off < c.length) return c[off]!;
      off -= c.length;
    }
    return 0;
  }

  /** Removes the next `n` (≤ queued) input bytes; returns them in place if they lie in one chunk, else copied into `scratch`. */
  private take(n: number): Uint8Array {
    const head = this.chunks[0]!;
    const off = this.headOff;
    this.queued -= n;
    if (head.length - off >= n) {
      const out = head.subarray(off, off + n);
      this.headOff += n;
      if (this.headOff === head.length) {
        this.chunks.shift();
        this.headOff = 0;
      }
      return out;
    }
    const out = this.scratch;
    let o = 0;
    while (o < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.headOff, n - o);
      out.set(c.subarray(this.headOff, this.headOff + k), o);
      o += k;
      this.headOff += k;
      if (this.headOff === c.length) {
        this.chunks.shift();
        this.headOff = 0;
      }
    }
    return out.subarray(0, n);
  }

  private clearInput(): void {
    this.chunks = [];
    this.headOff = 0;
    this.queued = 0;
  }

  /** The next event, or undefined if more input is needed. Throws only ProtocolViolation. */
  poll(): RecordEvent | undefined {
    if (this.failure) throw this.failure;
    try {
      return this.next();
    } catch (e) {
      if (e instanceof ProtocolViolation) {
        this.failure = e;
        this.clearInput();
        this.rec = null;
      }
      throw e;
    }
  }

  private next(): RecordEvent | undefined {
    // Each iteration consumes a complete record from the buffer (or returns), so this terminates.
    for (;;) {
      if (this.rec) return this.deliverHandshake();
      if (this.readClosed) return undefined;
      this.advanceReadKey();
      const avail = this.queued;
      if (avail < HEADER) return undefined;
      const type = this.peekByte(0);
      const len = (this.peekByte(3) << 8) | this.peekByte(4);
      const protectedRead = this.readKey !== null;
      if (type !== ContentType.application_data && type !== ContentType.handshake && type !== ContentType.alert && type !== ContentType.change_cipher_spec) {
        throw tlsError(Alert.unexpected_message, `record with unknown content type ${type}`);
      }
      if (len > MAX_CIPHERTEXT || (len > MAX_PLAINTEXT && type !== ContentType.application_data)) {
        throw tlsError(Alert.record_overflow, `record of ${len} bytes exceeds the limit`);
      }
      if (avail < HEADER + len) return undefined;
      // In place (a view of a received chunk) or in `scratch`: valid until the next take().
      const record = this.take(HEADER + len);
      const header = record.subarray(0, HEADER);
      const body = record.subarray(HEADER);
      if (this.hsHeaderFill > 0 || this.hsBodyRemaining > 0) {
        // §5.1: nothing may come between the fragments of a handshake message.
        if (type !== ContentType.handshake && type !== ContentType.application_data) {
          throw tlsError(Alert.unexpected_message, 'record interleaved inside a fragmented handshake message');
        }
      }

      switch (type) {
        case ContentType.change_cipher_spec: {
          // §5: a single unprotected CCS with value 0x01 is dropped during the handshake.
          if (len !== 1 || body[0] !== 1) throw tlsError(Alert.unexpected_message, 'invalid change_cipher_spec record');
          if (this.ccsReceived > 0) throw tlsError(Alert.unexpected_message, 'more than one change_cipher_spec');
          if (this.peerFinishedSeen || this.level === 'application') throw tlsError(Alert.unexpected_message, 'change_cipher_spec after the handshake');
          if (this.role === 'server' && this.clientHellos === 0) throw tlsError(Alert.unexpected_message, 'change_cipher_spec before ClientHello');
          if (this.hsHeaderFill > 0 || this.hsBodyRemaining > 0) throw tlsError(Alert.unexpected_message, 'change_cipher_spec inside a handshake message');
          this.ccsReceived++;
          continue;
        }
        case ContentType.alert: {
          // Unprotected alerts are accepted only while the handshake runs: a peer that failed
          // before deriving keys can only send them in the clear.
          if (protectedRead && this.level === 'application') throw tlsError(Alert.unexpected_message, 'unprotected alert after the handshake');
          return this.alertEvent(body, 0, len);
        }
        case ContentType.handshake: {
          if (protectedRead) throw tlsError(Alert.unexpected_message, 'unprotected handshake record after keys changed');
          if (len === 0) throw tlsError(Alert.unexpected_message, 'zero-length handshake fragment');
          this.rec = body.slice();
          this.recPos = 0;
          this.recEnd = len;
          continue;
        }
        default: {
          // application_data: a protected record.
          const ev = this.openRecord(header, body, len);
          if (ev) return ev;
          continue;
        }
      }
    }
  }

  /** Deprotects one TLSCiphertext. Returns an event, or null if the record was consumed (skipped / handshake queued). */
  private openRecord(header: Uint8Array, body: Uint8Array, len: number): RecordEvent | null {
    const key = this.readKey;
    if (!key) {
      // After a HelloRetryRequest the server skips the client's 0-RTT records (§4.2.10).
      if (this.skipEarly) return this.skip(len);
      throw tlsError(Alert.unexpected_message, 'protected record before keys are established');
    }
    if (len < TAG + 1) {
      if (this.skipEarly && this.level === 'handshake') return this.skip(len);
      throw tlsError(Alert.decode_error, 'protected record too short');
    }
    const pt = key.aead.open(key.nonceFor(key.seq), header, body);
    if (!pt) {
      if (this.skipEarly && this.level === 'handshake') return this.skip(len);
      throw tlsError(Alert.bad_record_mac, 'record authentication failed');
    }
    this.skipEarly = false;
    key.seq++;
    // §5.4: padding does not change the record size limit: the whole TLSInnerPlaintext is at most 2^14 + 1 bytes.
    if (pt.length > MAX_PLAINTEXT + 1) throw tlsError(Alert.record_overflow, `TLSInnerPlaintext of ${pt.length} bytes (with padding) exceeds 2^14 + 1`);
    // TLSInnerPlaintext: content || ContentType || zeros (§5.4).
    let i = pt.length - 1;
    while (i >= 0 && pt[i] === 0) i--;
    if (i < 0) throw tlsError(Alert.unexpected_message, 'protected record without a content type');
    const inner = pt[i]!;
    if (i > MAX_PLAINTEXT) throw tlsError(Alert.record_overflow, 'record plaintext exceeds 2^14 bytes');
    const partial = this.hsHeaderFill > 0 || this.hsBodyRemaining > 0;
    if (partial && inner !== ContentType.handshake) {
      throw tlsError(Alert.unexpected_message, 'record interleaved inside a fragmented handshake message');
    }
    switch (inner) {
      case ContentType.handshake:
        if (i === 0) throw tlsError(Alert.unexpected_message, 'zero-length handshake fragment');
        this.rec = pt;
        this.recPos = 0;
        this.recEnd = i;
        return null;
      case ContentType.application_data: {
        if (this.level === 'early') {
          this.earlyReceived += i;
          if (this.earlyReceived > this.earlyLimit) throw tlsError(Alert.unexpected_message, 'more 0-RTT data than max_early_data_size');
          return { type: 'appData', data: pt.subarray(0, i), early: true };
        }
        if (this.level !== 'application') throw tlsError(Alert.unexpected_message, 'application data before the handshake completed');
        if (i > 0) this.keyUpdatesInARow = 0;
        return { type: 'appData', data: pt.subarray(0, i), early: false };
      }
      case ContentType.alert:
        return this.alertEvent(pt, 0, i);
      default:
        throw tlsError(Alert.unexpected_message, `protected record with content type ${inner}`);
    }
  }

  private skip(len: number): null {
    this.skipBudget -= Math.max(0, len - TAG - 1);
    if (this.skipBudget < 0) throw tlsError(Alert.unexpected_message, 'rejected 0-RTT data exceeds max_early_data_size');
    return null;
  }

  private alertEvent(body: Uint8Array, off: number, len: number): RecordEvent {
    if (len !== 2) throw tlsError(Alert.decode_error, `alert record of ${len} bytes`);
    const description = body[off + 1]!;
    const fatal = description !== Alert.close_notify && description !== Alert.user_canceled;
    if (fatal || description === Alert.close_notify) this.readClosed = true;
    return { type: 'alert', description, fatal };
  }

  /** Delivers the handshake bytes of the current record up to the end of the current message. */
  private deliverHandshake(): RecordEvent {
    const rec = this.rec!;
    const from = this.recPos;
    let pos = from;
    const end = this.recEnd;
    let completedType = -1;
    while (pos < end) {
      if (this.hsBodyRemaining === 0) {
        const take = Math.min(4 - this.hsHeaderFill, end - pos);
        for (let k = 0; k < take; k++) this.hsHeader[this.hsHeaderFill + k] = rec[pos + k]!;
        this.hsHeaderFill += take;
        pos += take;
        if (this.hsHeaderFill < 4) break;
        const h = this.hsHeader;
        this.hsBodyRemaining = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
        if (this.hsBodyRemaining === 0) {
          completedType = h[0]!;
          this.hsHeaderFill = 0;
          break;
        }
        continue;
      }
      const take = Math.min(this.hsBodyRemaining, end - pos);
      pos += take;
      this.hsBodyRemaining -= take;
      if (this.hsBodyRemaining === 0) {
        completedType = this.hsHeader[0]!;
        this.hsHeaderFill = 0;
        break;
      }
    }
    const level = this.level;
    if (completedType >= 0) this.messageCompleted(completedType, level, pos < end);
    this.recPos = pos;
    if (pos >= end) this.rec = null;
    return { type: 'handshake', level, data: rec.subarray(from, pos) };
  }

  private messageCompleted(type: number, level: EncryptionLevel, moreInRecord: boolean): void {
    let keyChange = false;
    if (level === 'initial') {
      if (type === HS_CLIENT_HELLO && this.role === 'server') {
        this.clientHellos++;
        keyChange = true;
        // The client sends no 0-RTT after a second ClientHello: trial decryption ends.
        if (this.clientHellos > 1) this.skipEarly = false;
      } else if (type === HS_SERVER_HELLO && this.role === 'client') keyChange = true;
      if (keyChange) this.helloSeen = true;
    } else if (level === 'early' && type === HS_END_OF_EARLY_DATA) {
      this.eoedSeen = true;
      keyChange = true;
    } else if (level === 'handshake' && type === HS_FINISHED) {
      this.peerFinishedSeen = true;
      keyChange = true;
    } else if (level === 'application' && type === HS_KEY_UPDATE) {
      this.keyUpdateSeen = true;
      keyChange = true;
      this.keyUpdatesTotal++;
      if (++this.keyUpdatesInARow > this.maxKeyUpdatesWithoutData)
        throw tlsError(Alert.unexpected_message, `more than ${this.maxKeyUpdatesWithoutData} KeyUpdates without application data in between`);
    }
    if (keyChange && moreInRecord) {
      throw tlsError(Alert.unexpected_message, 'handshake message before a key change does not end its record');
    }
  }

  /** Switches the read key at a record boundary when the message that changes it has been read. */
  private advanceReadKey(): void {
    const p = this.pendingRead;
    let next: KeyedLevel | null = null;
    switch (this.level) {
      case 'initial':
        if (!this.helloSeen) break;
        if (p.early) next = 'early';
        else if (p.handshake) next = 'handshake';
        break;
      case 'early':
        if (p.handshake && this.eoedSeen) next = 'handshake';
        break;
      case 'handshake':
        if (p.application && this.peerFinishedSeen) next = 'application';
        break;
      case 'application':
        if (p.application && this.keyUpdateSeen) {
          next = 'application';
          this.keyUpdateSeen = false;
        }
        break;
    }
    if (!next) return;
    if (this.hsHeaderFill > 0 || this.hsBodyRemaining > 0) {
      throw tlsError(Alert.unexpected_message, 'handshake message spans a key change');
    }
    this.readKey = p[next]!;
    delete p[next];
    this.level = next;
  }

  // ---------------------------------------------------------------------------------------------
  // Output

  /** Records carrying handshake bytes at `level` ('initial' = unprotected). Empty input → empty output. */
  writeHandshake(level: EncryptionLevel, data: Uint8Array): Uint8Array {
    if (data.length === 0) return new Uint8Array(0);
    if (level === 'initial') return this.seal(ContentType.handshake, data, null);
    const key = this.writeKeys[level];
    if (!key) throw new Error(`record layer: no ${level} write key for a handshake message`);
    const out = this.seal(ContentType.handshake, data, key);
    // EndOfEarlyData is the last record under the early key (RFC 8446 §4.5).
    if (level === 'early' && data[0] === HS_END_OF_EARLY_DATA) delete this.writeKeys.early;
    return out;
  }

  /** Records carrying application data (0-RTT keys on a client until the 1-RTT key exists). */
  writeAppData(data: Uint8Array): Uint8Array {
    const key = this.writeKeys.application ?? this.writeKeys.early;
    if (!key) throw new Error('record layer: application data before keys are available');
    return this.seal(ContentType.application_data, data, key);
  }

  /**
   * An alert record, protected with the key the peer reads with (RFC 8446 §5, §6): the application
   * key, else (client, 0-RTT not yet ended by EndOfEarlyData) the early key, else the handshake key;
   * unprotected only before any key exists.
   */
  writeAlert(description: number): Uint8Array {
    const level = description === Alert.close_notify || description === Alert.user_canceled ? 1 : 2;
    const key = this.writeKeys.application ?? (this.writeKeys.early && this.writeKeys.handshake ? this.writeKeys.early : null) ?? this.writeKeys.handshake ?? null;
    return this.seal(ContentType.alert, Uint8Array.of(level, description), key);
  }

  /**
   * Records carrying the concatenation of `parts` as application data, in one buffer (full-size
   * records across part boundaries; no intermediate concatenation). With `out` of at least
   * {@link appDataSize}(total) bytes the records are written there (a subarray of `out` is
   * returned), so a driver can recycle its output buffers; otherwise a new buffer is allocated.
   */
  writeAppDataV(parts: readonly Uint8Array[], out?: Uint8Array): Uint8Array {
    const key = this.writeKeys.application ?? this.writeKeys.early;
    if (!key) throw new Error('record layer: application data before keys are available');
    if (parts.length === 1) return this.seal(ContentType.application_data, parts[0]!, key, undefined, undefined, out);
    let total = 0;
    for (const p of parts) total += p.length;
    return this.seal(ContentType.application_data, null, key, parts, total, out);
  }

  /** Bytes that {@link writeAppDataV} produces now for `total` bytes of application data. */
  appDataSize(total: number): number {
    const key = this.writeKeys.application ?? this.writeKeys.early;
    const n = total === 0 ? 1 : Math.ceil(total / this.maxFragment);
    return total + n * (HEADER + 1 + this.padding + TAG) + (key && this.compat && !this.ccsSent ? 6 : 0);
  }

  /** Copies `len` bytes of the concatenated parts, from the cursor on, to out[o..]; advances the cursor. */
  private copyParts(parts: readonly Uint8Array[], out: Uint8Array, o: number, len: number): void {
    while (len > 0) {
      const p = parts[this.partIdx]!;
      const k = Math.min(p.length - this.partOff, len);
      out.set(k === p.length ? p : p.subarray(this.partOff, this.partOff + k), o);
      o += k;
      len -= k;
      this.partOff += k;
      if (this.partOff === p.length) {
        this.partIdx++;
        this.partOff = 0;
      }
    }
  }
  private partIdx = 0;
  private partOff = 0;

  private seal(type: number, single: Uint8Array | null, key: RecordKey | null, parts: readonly Uint8Array[] = [], total = single?.length ?? 0, dst?: Uint8Array): Uint8Array {
    const frag = this.maxFragment;
    this.partIdx = 0;
    this.partOff = 0;
    const n = total === 0 ? 1 : Math.ceil(total / frag);
    if (key && key.seq + n > hardRecordLimit(key.suite)) {
      throw new Error('record layer: key usage limit reached without a KeyUpdate');
    }
    const ccs = key !== null && this.compat && !this.ccsSent;
    const overhead = key ? HEADER + 1 + this.padding + TAG : HEADER;
    const size = total + n * overhead + (ccs ? 6 : 0);
    // A caller's buffer holds old bytes: padding is then zeroed explicitly (below).
    const reused = dst !== undefined && dst.length >= size;
    const out = reused ? dst.subarray(0, size) : new Uint8Array(size);
    let o = 0;
    if (ccs) {
      this.ccsSent = true;
      out[0] = ContentType.change_cipher_spec;
      out[1] = 3;
      out[2] = 3;
      out[3] = 0;
      out[4] = 1;
      out[5] = 1;
      o = 6;
    }
    // legacy_record_version (§5.1): 0x0301 on the initial ClientHello, 0x0303 everywhere else.
    const legacyMinor = !key && type === ContentType.handshake && this.role === 'client' && !this.firstHelloSent ? 1 : 3;
    if (!key && type === ContentType.handshake) this.firstHelloSent = true;
    for (let i = 0; i < n; i++) {
      const from = i * frag;
      const len = Math.min(frag, total - from);
      if (!key) {
        out[o] = type;
        out[o + 1] = 3;
        out[o + 2] = legacyMinor;
        out[o + 3] = len >> 8;
        out[o + 4] = len & 0xff;
        if (single) out.set(single.subarray(from, from + len), o + HEADER);
        else this.copyParts(parts, out, o + HEADER, len);
        o += HEADER + len;
        continue;
      }
      const innerLen = len + 1 + this.padding;
      const recLen = innerLen + TAG;
      out[o] = ContentType.application_data;
      out[o + 1] = 3;
      out[o + 2] = 3;
      out[o + 3] = recLen >> 8;
      out[o + 4] = recLen & 0xff;
      if (single) out.set(single.subarray(from, from + len), o + HEADER);
      else this.copyParts(parts, out, o + HEADER, len);
      out[o + HEADER + len] = type;
      // Padding (§5.4) is zeros: a fresh buffer already is.
      if (reused && this.padding > 0) out.fill(0, o + HEADER + len + 1, o + HEADER + innerLen);
      const body = out.subarray(o + HEADER, o + HEADER + recLen);
      key.aead.seal(key.nonceFor(key.seq), out.subarray(o, o + HEADER), body.subarray(0, innerLen), body);
      key.seq++;
      o += HEADER + recLen;
    }
    return out;
  }
  private firstHelloSent = false;
}
