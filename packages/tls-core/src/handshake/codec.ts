/**
 * TLS 1.3 handshake message codec (RFC 8446 §4): a bounded Reader / growable Writer, and
 * encode/parse for every handshake message and the extensions we understand.
 *
 * Every parse error is a ProtocolViolation('tls', decode_error); a syntactically valid but
 * forbidden value (e.g. duplicate extension) is illegal_parameter. Parsers never index past
 * their input: each vector opens a sub-reader bounded by its length prefix.
 */
import { Alert, ProtocolViolation, tlsError } from '../errors.js';

export const HandshakeType = {
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  end_of_early_data: 5,
  encrypted_extensions: 8,
  certificate: 11,
  certificate_request: 13,
  certificate_verify: 15,
  finished: 20,
  key_update: 24,
  message_hash: 254,
} as const;

export const ExtensionType = {
  server_name: 0,
  supported_groups: 10,
  signature_algorithms: 13,
  alpn: 16,
  pre_shared_key: 41,
  early_data: 42,
  supported_versions: 43,
  cookie: 44,
  psk_key_exchange_modes: 45,
  certificate_authorities: 47,
  post_handshake_auth: 49,
  signature_algorithms_cert: 50,
  key_share: 51,
  quic_transport_parameters: 57,
} as const;

export const TLS13 = 0x0304;

/** SHA-256("HelloRetryRequest") — the ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3). */
export const HRR_RANDOM = hex('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c');
/** Downgrade sentinels in the last 8 bytes of ServerHello.random (RFC 8446 §4.1.3). */
export const DOWNGRADE_TLS12 = hex('444f574e47524401');
export const DOWNGRADE_TLS11 = hex('444f574e47524400');

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function decodeError(what: string): ProtocolViolation {
  return new ProtocolViolation('tls', Alert.decode_error, what);
}

/** A bounded reader over `buf[start..end)`. */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
    private readonly what = 'message',
  ) {
    this.pos = start;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  private need(n: number): void {
    if (n > this.end - this.pos) throw decodeError(`truncated ${this.what}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = (this.buf[this.pos]! << 16) | (this.buf[this.pos + 1]! << 8) | this.buf[this.pos + 2]!;
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = ((this.buf[this.pos]! << 24) | (this.buf[this.pos + 1]! << 16) | (this.buf[this.pos + 2]! << 8) | this.buf[this.pos + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** A length-prefixed vector (prefix of `lenBytes` bytes) as bytes; `min`/`max` per the RFC's <min..max>. */
  vec(lenBytes: 1 | 2 | 3, min = 0, max = Infinity): Uint8Array {
    const n = lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u24();
    if (n < min || n > max) throw decodeError(`bad vector length ${n} in ${this.what}`);
    return this.bytes(n);
  }
  /** A length-prefixed vector as a sub-reader. */
  sub(lenBytes: 1 | 2 | 3, what = this.what, min = 0): Reader {
    const v = this.vec(lenBytes, min);
    return new Reader(v, 0, v.length, what);
  }
  expectEnd(): void {
    if (this.pos !== this.end) throw decodeError(`trailing bytes in ${this.what}`);
  }
}

/** A growable writer with length-prefix back-patching. */
export class Writer {
  private buf = new Uint8Array(256);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u24(v: number): this {
    this.ensure(3);
    this.buf[this.len++] = (v >> 16) & 0xff;
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >> 16) & 0xff;
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** Writes a vector whose body `fn` writes, with a `lenBytes` length prefix. */
  vec(lenBytes: 1 | 2 | 3, fn: (w: this) => void): this {
    this.ensure(lenBytes);
    const at = this.len;
    this.len += lenBytes;
    fn(this);
    const n = this.len - at - lenBytes;
    const max = lenBytes === 1 ? 0xff : lenBytes === 2 ? 0xffff : 0xffffff;
    if (n > max) throw new RangeError(`vector too long (${n} > ${max})`);
    for (let i = lenBytes - 1, v = n; i >= 0; i--, v >>>= 8) this.buf[at + i] = v & 0xff;
    return this;
  }
  vecBytes(lenBytes: 1 | 2 | 3, b: Uint8Array): this {
    return this.vec(lenBytes, (w) => w.bytes(b));
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Frames a handshake message: msg_type(1) || length(3) || body. */
export function handshakeMessage(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = type;
  out[1] = (body.length >> 16) & 0xff;
  out[2] = (body.length >> 8) & 0xff;
  out[3] = body.length & 0xff;
  out.set(body, 4);
  return out;
}

export interface Extension {
  type: number;
  data: Uint8Array;
}

/** Parses an extensions block (u16 length prefix). Duplicates → illegal_parameter (RFC 8446 §4.2). */
export function parseExtensions(r: Reader, allowEmptyBlock = true): Extension[] {
  if (r.remaining === 0 && allowEmptyBlock) return [];
  const er = r.sub(2, 'extensions');
  const out: Extension[] = [];
  const seen = new Set<number>();
  while (er.remaining > 0) {
    const type = er.u16();
    const data = er.vec(2);
    if (seen.has(type)) throw tlsError(Alert.illegal_parameter, `duplicate extension ${type}`);
    seen.add(type);
    out.push({ type, data });
  }
  return out;
}

function writeExtensions(w: Writer, exts: Extension[]): void {
  w.vec(2, () => {
    for (const e of exts) w.u16(e.type).vecBytes(2, e.data);
  });
}

function ext(type: number, fn: (w: Writer) => void): Extension {
  const w = new Writer();
  fn(w);
  return { type, data: w.finish() };
}

// ---------------------------------------------------------------- extension bodies

export interface KeyShareEntry {
  group: number;
  share: Uint8Array;
}

export interface PskIdentity {
  identity: Uint8Array;
  obfuscatedAge: number;
}

export interface OfferedPsks {
  identities: PskIdentity[];
  binders: Uint8Array[];
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

function readU16List(data: Uint8Array, what: string, lenBytes: 1 | 2 = 2, min = 2): number[] {
  const r = new Reader(data, 0, data.length, what);
  const l = r.sub(lenBytes, what);
  if (l.remaining < min || l.remaining % 2) throw decodeError(`bad ${what} list`);
  const out: number[] = [];
  while (l.remaining) out.push(l.u16());
  r.expectEnd();
  return out;
}

export const parseSupportedGroups = (d: Uint8Array): number[] => readU16List(d, 'supported_groups');
export const parseSignatureAlgorithms = (d: Uint8Array): number[] => readU16List(d, 'signature_algorithms');
export const parseClientSupportedVersions = (d: Uint8Array): number[] => readU16List(d, 'supported_versions', 1);
export function parseServerSupportedVersion(d: Uint8Array): number {
  const r = new Reader(d, 0, d.length, 'supported_versions');
  const v = r.u16();
  r.expectEnd();
  return v;
}

export function encodeU16List(type: number, list: number[], lenBytes: 1 | 2 = 2): Extension {
  return ext(type, (w) =>
    w.vec(lenBytes, () => {
      for (const v of list) w.u16(v);
    }),
  );
}

/** server_name (RFC 6066 §3): returns the host_name, or null for an empty (server ack) body. */
export function parseServerName(d: Uint8Array): string | null {
  if (d.length === 0) return null;
  const r = new Reader(d, 0, d.length, 'server_name');
  const l = r.sub(2, 'server_name', 1);
  r.expectEnd();
  let host: string | null = null;
  while (l.remaining) {
    const t = l.u8();
    const name = l.vec(2, 1);
    if (t !== 0) continue;
    if (host !== null) throw tlsError(Alert.illegal_parameter, 'more than one host_name in server_name');
    for (const c of name) if (c < 0x21 || c > 0x7e) throw decodeError('server_name host_name is not printable ASCII');
    host = String.fromCharCode(...name);
  }
  if (host === null) throw decodeError('server_name without host_name');
  return host;
}

export function encodeServerName(host: string): Extension {
  return ext(ExtensionType.server_name, (w) => w.vec(2, () => w.u8(0).vecBytes(2, textEncoder.encode(host))));
}

export function parseAlpn(d: Uint8Array): string[] {
  const r = new Reader(d, 0, d.length, 'alpn');
  const l = r.sub(2, 'alpn', 1);
  r.expectEnd();
  const out: string[] = [];
  while (l.remaining) {
    const p = l.vec(1, 1);
    try {
      out.push(textDecoder.decode(p));
    } catch {
      // Protocol names are opaque bytes; we compare them as latin1 strings.
      out.push(String.fromCharCode(...p));
    }
  }
  return out;
}

export function encodeAlpn(list: string[]): Extension {
  return ext(ExtensionType.alpn, (w) =>
    w.vec(2, () => {
      for (const p of list) w.vecBytes(1, textEncoder.encode(p));
    }),
  );
}

export function parseClientKeyShares(d: Uint8Array): KeyShareEntry[] {
  const r = new Reader(d, 0, d.length, 'key_share');
  const l = r.sub(2, 'key_share');
  r.expectEnd();
  const out: KeyShareEntry[] = [];
  const seen = new Set<number>();
  while (l.remaining) {
    const group = l.u16();
    const share = l.vec(2, 1);
    // RFC 8446 §4.2.8: clients MUST NOT offer multiple shares for the same group.
    if (seen.has(group)) throw tlsError(Alert.illegal_parameter, 'duplicate key_share group');
    seen.add(group);
    out.push({ group, share });
  }
  return out;
}

export function encodeClientKeyShares(shares: KeyShareEntry[]): Extension {
  return ext(ExtensionType.key_share, (w) =>
    w.vec(2, () => {
      for (const s of shares) w.u16(s.group).vecBytes(2, s.share);
    }),
  );
}

export function parseServerKeyShare(d: Uint8Array): KeyShareEntry {
  const r = new Reader(d, 0, d.length, 'key_share');
  const group = r.u16();
  const share = r.vec(2, 1);
  r.expectEnd();
  return { group, share };
}

export function parseHrrKeyShare(d: Uint8Array): number {
  const r = new Reader(d, 0, d.length, 'key_share');
  const g = r.u16();
  r.expectEnd();
  return g;
}

export function parseCookie(d: Uint8Array): Uint8Array {
  const r = new Reader(d, 0, d.length, 'cookie');
  const c = r.vec(2, 1);
  r.expectEnd();
  return c;
}

export function encodeCookie(c: Uint8Array): Extension {
  return ext(ExtensionType.cookie, (w) => w.vecBytes(2, c));
}

export function parsePskModes(d: Uint8Array): number[] {
  const r = new Reader(d, 0, d.length, 'psk_key_exchange_modes');
  const l = r.vec(1, 1);
  r.expectEnd();
  return [...l];
}

export function parseOfferedPsks(d: Uint8Array): OfferedPsks {
  const r = new Reader(d, 0, d.length, 'pre_shared_key');
  const ids = r.sub(2, 'psk identities', 7);
  const identities: PskIdentity[] = [];
  while (ids.remaining) identities.push({ identity: ids.vec(2, 1), obfuscatedAge: ids.u32() });
  const bl = r.sub(2, 'psk binders', 33);
  const binders: Uint8Array[] = [];
  while (bl.remaining) binders.push(bl.vec(1, 32));
  r.expectEnd();
  if (binders.length !== identities.length) throw tlsError(Alert.illegal_parameter, 'psk binders and identities differ in number');
  return { identities, binders };
}

export function encodeOfferedPsks(p: OfferedPsks): Extension {
  return ext(ExtensionType.pre_shared_key, (w) => {
    w.vec(2, () => {
      for (const i of p.identities) w.vecBytes(2, i.identity).u32(i.obfuscatedAge);
    });
    w.vec(2, () => {
      for (const b of p.binders) w.vecBytes(1, b);
    });
  });
}

/** Length of the binders vector (with its 2-byte prefix) for binders of `hashLen` bytes. */
export function bindersLength(count: number, hashLen: number): number {
  return 2 + count * (1 + hashLen);
}

export function parseU16Body(d: Uint8Array, what: string): number {
  const r = new Reader(d, 0, d.length, what);
  const v = r.u16();
  r.expectEnd();
  return v;
}

export function expectEmpty(d: Uint8Array, what: string): void {
  if (d.length !== 0) throw decodeError(`${what} must be empty`);
}

// ---------------------------------------------------------------- messages

export interface ClientHello {
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuites: number[];
  extensions: Extension[];
}

export function encodeClientHello(ch: ClientHello): Uint8Array {
  const w = new Writer();
  w.u16(0x0303).bytes(ch.random).vecBytes(1, ch.sessionId);
  w.vec(2, () => {
    for (const s of ch.cipherSuites) w.u16(s);
  });
  w.u8(1).u8(0);
  writeExtensions(w, ch.extensions);
  return handshakeMessage(HandshakeType.client_hello, w.finish());
}

export function parseClientHello(body: Uint8Array): ClientHello {
  const r = new Reader(body, 0, body.length, 'ClientHello');
  r.u16(); // legacy_version: ignored, supported_versions decides (RFC 8446 §4.1.2)
  const random = r.bytes(32);
  const sessionId = r.vec(1, 0, 32);
  const cs = r.sub(2, 'cipher_suites', 2);
  if (cs.remaining % 2) throw decodeError('odd cipher_suites length');
  const cipherSuites: number[] = [];
  while (cs.remaining) cipherSuites.push(cs.u16());
  const comp = r.vec(1, 1);
  // RFC 8446 §4.1.2: exactly one compression method, null; anything else is illegal_parameter.
  if (comp.length !== 1 || comp[0] !== 0) throw tlsError(Alert.illegal_parameter, 'legacy_compression_methods must be [null]');
  const extensions = parseExtensions(r, true);
  r.expectEnd();
  const pskAt = extensions.findIndex((e) => e.type === ExtensionType.pre_shared_key);
  // RFC 8446 §4.2.11: pre_shared_key MUST be the last extension.
  if (pskAt >= 0 && pskAt !== extensions.length - 1) throw tlsError(Alert.illegal_parameter, 'pre_shared_key is not the last extension');
  return { random, sessionId, cipherSuites, extensions };
}

export interface ServerHello {
  random: Uint8Array;
  sessionId: Uint8Array;
  cipherSuite: number;
  extensions: Extension[];
}

export function encodeServerHello(sh: ServerHello): Uint8Array {
  const w = new Writer();
  w.u16(0x0303).bytes(sh.random).vecBytes(1, sh.sessionId).u16(sh.cipherSuite).u8(0);
  writeExtensions(w, sh.extensions);
  return handshakeMessage(HandshakeType.server_hello, w.finish());
}

export function parseServerHello(body: Uint8Array): ServerHello {
  const r = new Reader(body, 0, body.length, 'ServerHello');
  r.u16(); // legacy_version: ignored, supported_versions decides (RFC 8446 §4.2.1)
  const random = r.bytes(32);
  const sessionId = r.vec(1, 0, 32);
  const cipherSuite = r.u16();
  const comp = r.u8();
  const extensions = parseExtensions(r, true);
  r.expectEnd();
  if (comp !== 0) throw tlsError(Alert.illegal_parameter, 'ServerHello compression method is not null');
  return { random, sessionId, cipherSuite, extensions };
}

export function encodeExtensionsMessage(type: number, exts: Extension[]): Uint8Array {
  const w = new Writer();
  writeExtensions(w, exts);
  return handshakeMessage(type, w.finish());
}

export function parseEncryptedExtensions(body: Uint8Array): Extension[] {
  const r = new Reader(body, 0, body.length, 'EncryptedExtensions');
  const e = parseExtensions(r, false);
  r.expectEnd();
  return e;
}

export interface CertificateEntry {
  cert: Uint8Array;
  extensions: Extension[];
}

export interface CertificateMsg {
  context: Uint8Array;
  entries: CertificateEntry[];
}

export function encodeCertificate(c: CertificateMsg): Uint8Array {
  const w = new Writer();
  w.vecBytes(1, c.context);
  w.vec(3, () => {
    for (const e of c.entries) {
      w.vecBytes(3, e.cert);
      writeExtensions(w, e.extensions);
    }
  });
  return handshakeMessage(HandshakeType.certificate, w.finish());
}

export function parseCertificate(body: Uint8Array): CertificateMsg {
  const r = new Reader(body, 0, body.length, 'Certificate');
  const context = r.vec(1);
  const l = r.sub(3, 'certificate_list');
  r.expectEnd();
  const entries: CertificateEntry[] = [];
  while (l.remaining) {
    const cert = l.vec(3, 1);
    const extensions = parseExtensions(l, false);
    entries.push({ cert, extensions });
  }
  return { context, entries };
}

export interface CertificateRequestMsg {
  context: Uint8Array;
  extensions: Extension[];
}

export function encodeCertificateRequest(c: CertificateRequestMsg): Uint8Array {
  const w = new Writer();
  w.vecBytes(1, c.context);
  writeExtensions(w, c.extensions);
  return handshakeMessage(HandshakeType.certificate_request, w.finish());
}

export function parseCertificateRequest(body: Uint8Array): CertificateRequestMsg {
  const r = new Reader(body, 0, body.length, 'CertificateRequest');
  const context = r.vec(1);
  const extensions = parseExtensions(r, false);
  r.expectEnd();
  return { context, extensions };
}

export interface CertificateVerifyMsg {
  scheme: number;
  signature: Uint8Array;
}

export function encodeCertificateVerify(c: CertificateVerifyMsg): Uint8Array {
  const w = new Writer();
  w.u16(c.scheme).vecBytes(2, c.signature);
  return handshakeMessage(HandshakeType.certificate_verify, w.finish());
}

export function parseCertificateVerify(body: Uint8Array): CertificateVerifyMsg {
  const r = new Reader(body, 0, body.length, 'CertificateVerify');
  const scheme = r.u16();
  const signature = r.vec(2, 1);
  r.expectEnd();
  return { scheme, signature };
}

export interface NewSessionTicketMsg {
  lifetime: number;
  ageAdd: number;
  nonce: Uint8Array;
  ticket: Uint8Array;
  /** early_data.max_early_data_size, or null when absent. */
  maxEarlyData: number | null;
}

export function encodeNewSessionTicket(t: NewSessionTicketMsg): Uint8Array {
  const w = new Writer();
  w.u32(t.lifetime).u32(t.ageAdd).vecBytes(1, t.nonce).vecBytes(2, t.ticket);
  const exts: Extension[] = [];
  if (t.maxEarlyData !== null) exts.push(ext(ExtensionType.early_data, (x) => x.u32(t.maxEarlyData!)));
  writeExtensions(w, exts);
  return handshakeMessage(HandshakeType.new_session_ticket, w.finish());
}

export function parseNewSessionTicket(body: Uint8Array): NewSessionTicketMsg {
  const r = new Reader(body, 0, body.length, 'NewSessionTicket');
  const lifetime = r.u32();
  const ageAdd = r.u32();
  const nonce = r.vec(1);
  const ticket = r.vec(2, 1);
  const exts = parseExtensions(r, false);
  r.expectEnd();
  let maxEarlyData: number | null = null;
  for (const e of exts) {
    if (e.type === ExtensionType.early_data) {
      const er = new Reader(e.data, 0, e.data.length, 'early_data');
      maxEarlyData = er.u32();
      er.expectEnd();
    } else if (isKnownExtension(e.type)) {
      throw tlsError(Alert.illegal_parameter, `extension ${e.type} not allowed in NewSessionTicket`);
    }
  }
  // RFC 8446 §4.6.1: lifetime MUST NOT exceed 7 days.
  if (lifetime > 604800) throw tlsError(Alert.illegal_parameter, 'ticket lifetime exceeds 7 days');
  return { lifetime, ageAdd, nonce, ticket, maxEarlyData };
}

export function encodeFinished(verifyData: Uint8Array): Uint8Array {
  return handshakeMessage(HandshakeType.finished, verifyData);
}

export function encodeKeyUpdate(requestPeer: boolean): Uint8Array {
  return handshakeMessage(HandshakeType.key_update, Uint8Array.of(requestPeer ? 1 : 0));
}

export function parseKeyUpdate(body: Uint8Array): boolean {
  const r = new Reader(body, 0, body.length, 'KeyUpdate');
  const v = r.u8();
  r.expectEnd();
  if (v > 1) throw tlsError(Alert.illegal_parameter, 'KeyUpdate request_update must be 0 or 1');
  return v === 1;
}

const KNOWN = new Set<number>(Object.values(ExtensionType));
export function isKnownExtension(t: number): boolean {
  return KNOWN.has(t);
}

/** Extensions defined for CertificateEntry (RFC 8446 §4.2 table: status_request, signed_certificate_timestamp). */
const CERTIFICATE_ENTRY_EXTENSIONS = new Set<number>([5, 18]);

/**
 * RFC 8446 §4.2 / §4.4.2: a recognized extension not defined for CertificateEntry → illegal_parameter;
 * any other extension must answer one of the request (server: ClientHello; client:
 * CertificateRequest), else unsupported_extension.
 */
export function checkCertificateEntryExtensions(entries: { extensions: Extension[] }[], requested: (type: number) => boolean, who: string): void {
  for (const e of entries) {
    for (const x of e.extensions) {
      if (isKnownExtension(x.type) && !CERTIFICATE_ENTRY_EXTENSIONS.has(x.type))
        throw tlsError(Alert.illegal_parameter, `${who} CertificateEntry carries extension ${x.type}, which is not allowed in a CertificateEntry`);
      if (!requested(x.type)) throw tlsError(Alert.unsupported_extension, `${who} CertificateEntry extension ${x.type} was not requested`);
    }
  }
}

export function findExt(exts: Extension[], type: number): Uint8Array | undefined {
  for (const e of exts) if (e.type === type) return e.data;
  return undefined;
}

/**
 * Reassembles handshake messages from arbitrarily fragmented bytes (one buffer per level).
 * Amortized O(1) per byte (a growable buffer with a read offset, not a concat per push), and
 * bounded: a declared length above `maxMessage`, or more than two maximal messages buffered
 * (e.g. while the server waits for its resolver), is an error.
 */
export class MessageBuffer {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  constructor(private readonly maxMessage = 0x20000) {}
  get pending(): number {
    return this.end - this.start;
  }
  push(data: Uint8Array): void {
    if (data.length === 0) return;
    const have = this.end - this.start;
    if (have + data.length > 2 * (this.maxMessage + 4)) throw tlsError(Alert.unexpected_message, 'too much buffered handshake data');
    if (this.end + data.length > this.buf.length) {
      let cap = Math.max(256, this.buf.length);
      while (cap < have + data.length) cap *= 2;
      const nb = cap === this.buf.length ? this.buf : new Uint8Array(cap);
      if (nb === this.buf) nb.copyWithin(0, this.start, this.end);
      else nb.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = nb;
      this.start = 0;
      this.end = have;
    }
    this.buf.set(data, this.end);
    this.end += data.length;
  }
  /** The next whole message (type, body, raw framed bytes; a copy), or null if incomplete. */
  next(): { type: number; body: Uint8Array; raw: Uint8Array } | null {
    const b = this.buf;
    const s = this.start;
    if (this.end - s < 4) return null;
    const len = (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!;
    if (len > this.maxMessage) throw tlsError(Alert.unexpected_message, `handshake message of ${len} bytes exceeds the ${this.maxMessage}-byte limit`);
    if (this.end - s < 4 + len) return null;
    const raw = b.slice(s, s + 4 + len);
    this.start += 4 + len;
    if (this.start === this.end) this.start = this.end = 0;
    return { type: raw[0]!, body: raw.subarray(4), raw };
  }
}
