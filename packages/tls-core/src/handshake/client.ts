/**
 * TLS 1.3 client handshake (RFC 8446; QUIC mode per RFC 9001 §4/§8). States are a discriminated
 * union; `handle` dispatches on the state kind and each handler returns the next state. A message
 * a state does not expect has no path but unexpected_message.
 *
 *   START ─ClientHello→ WAIT_SH ─(HRR→ClientHello2→WAIT_SH)─ServerHello→ WAIT_EE
 *     WAIT_EE ─(PSK)→ WAIT_FINISHED | ─→ WAIT_CERT_CR ─CertificateRequest→ WAIT_CERT
 *     WAIT_CERT ─Certificate→ WAIT_CV ─CertificateVerify→ WAIT_FINISHED ─Finished→ CONNECTED
 */
import type { KeyShare, NamedGroup, SignatureScheme } from '../crypto/provider.js';
import { NamedGroupCode, SignatureSchemeCode } from '../crypto/provider.js';
import { Alert, ProtocolViolation, tlsError } from '../errors.js';
import { KeySchedule } from '../keyschedule.js';
import { certificateSpki } from '../x509/spki.js';
import type { CipherSuite, EncryptionLevel, SessionTicket, TlsSession } from './api.js';
import { CipherSuites } from './api.js';
import {
  DOWNGRADE_TLS11,
  DOWNGRADE_TLS12,
  ExtensionType as X,
  HRR_RANDOM,
  HandshakeType as H,
  TLS13,
  bindersLength,
  bytesEqual,
  checkCertificateEntryExtensions,
  encodeAlpn,
  encodeCertificate,
  encodeCertificateVerify,
  encodeClientHello,
  encodeClientKeyShares,
  encodeCookie,
  encodeFinished,
  encodeOfferedPsks,
  encodeServerName,
  encodeU16List,
  expectEmpty,
  findExt,
  handshakeMessage,
  isKnownExtension,
  parseAlpn,
  parseCertificate,
  parseCertificateRequest,
  parseCertificateVerify,
  parseClientHello,
  parseClientKeyShares,
  parseCookie,
  parseEncryptedExtensions,
  parseHrrKeyShare,
  parseNewSessionTicket,
  parseServerHello,
  parseServerKeyShare,
  parseServerSupportedVersion,
  parseSignatureAlgorithms,
  parseU16Body,
  type Extension,
  type ServerHello,
} from './codec.js';
import { Transcript, SessionCore, certificateVerifyContent, certificateVerifyScheme, codeToName, runVerifier, suiteByCode, unexpected, type Message } from './common.js';
import { normalizeClientConfig, type ClientSettings, type TlsClientConfig } from './config.js';

interface PskOffer {
  ticket: SessionTicket;
  ks: KeySchedule;
  early: Uint8Array;
  earlyData: boolean;
}

interface Offer {
  random: Uint8Array;
  sessionId: Uint8Array;
  suites: number[];
  shares: Map<number, KeyShare>;
  exts: Set<number>;
  psk: PskOffer | null;
  cookie: Uint8Array | null;
}

/** Everything fixed once the ServerHello is accepted. */
interface Negotiated {
  suite: CipherSuite;
  ks: KeySchedule;
  hsSecret: Uint8Array;
  cHs: Uint8Array;
  sHs: Uint8Array;
  resumed: boolean;
  earlyOffered: boolean;
  earlyAccepted: boolean;
  /** Extension types of our (last) ClientHello: CertificateEntry extensions must be among them (RFC 8446 §4.4.2). */
  offeredExts: Set<number>;
}

interface CertRequest {
  context: Uint8Array;
  schemes: number[];
}

type State =
  | { kind: 'start' }
  | { kind: 'waitServerHello'; offer: Offer; hrr: { suite: number } | null }
  | { kind: 'waitEncryptedExtensions'; offer: Offer; n: Negotiated }
  | { kind: 'waitCertificateOrRequest'; n: Negotiated }
  | { kind: 'waitCertificate'; n: Negotiated; cr: CertRequest | null }
  | { kind: 'waitCertificateVerify'; n: Negotiated; cr: CertRequest | null; leafSpki: Uint8Array }
  | { kind: 'waitFinished'; n: Negotiated; cr: CertRequest | null }
  | { kind: 'connected'; suite: CipherSuite; ks: KeySchedule; readSecret: Uint8Array; writeSecret: Uint8Array; resMaster: Uint8Array }
  | { kind: 'closed' };

/**
 * NewSessionTickets per connection turned into 'sessionTicket' events; later ones are parsed and
 * dropped, so a server flooding tickets costs no key derivations and no storage downstream.
 */
export const MAX_TICKETS_PER_CONNECTION = 16;

export class TlsClient extends SessionCore implements TlsSession {
  readonly role = 'client' as const;
  readonly pending: Promise<void> | null = null;
  private readonly cfg: ClientSettings;
  private state: State = { kind: 'start' };
  private readonly transcript: Transcript;
  private ticketsReceived = 0;

  constructor(config: TlsClientConfig) {
    const cfg = normalizeClientConfig(config);
    super(cfg.provider, cfg.keyLog);
    this.cfg = cfg;
    this.transcript = new Transcript(cfg.provider);
    this.info = { version: 'TLSv1.3', serverName: cfg.serverName, helloRetry: false, resumed: false, earlyDataAccepted: false };
  }

  get handshakeComplete(): boolean {
    return this.state.kind === 'connected';
  }

  start(): void {
    if (this.state.kind !== 'start' || this.dead) throw new Error('TlsClient.start() called twice');
    this.guard(() => {
      const offer = this.cfg.raw.clientHelloOverride ? this.offerFromOverride(this.cfg.raw.clientHelloOverride) : this.buildFirstHello();
      this.state = { kind: 'waitServerHello', offer, hrr: null };
    });
  }

  protected override onDead(): void {
    this.state = { kind: 'closed' };
  }

  protected expectedLevel(): EncryptionLevel | null {
    switch (this.state.kind) {
      case 'start':
      case 'waitServerHello':
        return 'initial';
      case 'connected':
        return 'application';
      case 'closed':
        return null;
      default:
        return 'handshake';
    }
  }

  // ------------------------------------------------------------------ ClientHello

  private ticketUsable(t: SessionTicket): boolean {
    const now = this.cfg.now();
    if ((this.cfg.serverName ?? '') !== t.serverName) return false;
    if (now - t.receivedAt >= t.lifetimeSeconds * 1000 || now < t.receivedAt) return false;
    if (!this.cfg.suites.includes(t.suite)) return false;
    return true;
  }

  private buildFirstHello(): Offer {
    const p = this.provider;
    const random = this.cfg.raw.random ?? p.randomBytes(32);
    // QUIC: no middlebox compatibility mode (RFC 9001 §8.4); TCP: a 32-byte legacy_session_id.
    const sessionId = this.cfg.quic ? new Uint8Array(0) : (this.cfg.raw.sessionId ?? p.randomBytes(32));
    const shares = new Map<number, KeyShare>();
    for (const g of this.cfg.keyShares) shares.set(NamedGroupCode[g], p.keyExchange(g).generate(this.cfg.raw.keySharePrivateKeys?.[g]));
    let psk: PskOffer | null = null;
    const t = this.cfg.resumption;
    if (t && this.ticketUsable(t)) {
      const ks = new KeySchedule(p, CipherSuites[t.suite].hash);
      const earlyData = this.cfg.earlyData && t.maxEarlyData > 0 && (t.alpn === null || this.cfg.alpn.includes(t.alpn));
      psk = { ticket: t, ks, early: ks.earlySecret(t.psk), earlyData };
    }
    const offer: Offer = {
      random,
      sessionId,
      suites: this.cfg.suites.map((s) => CipherSuites[s].code),
      shares,
      exts: new Set(),
      psk,
      cookie: null,
    };
    this.clientRandom = random;
    const ch = this.encodeHello(offer, psk?.earlyData ?? false);
    this.transcript.add(ch);
    this.emit({ type: 'send', level: 'initial', data: ch });
    if (psk?.earlyData) {
      const chHash = p.digest(psk.ks.hash, ch);
      const cets = psk.ks.clientEarlyTrafficSecret(psk.early, chHash);
      this.log('CLIENT_EARLY_TRAFFIC_SECRET', cets);
      this.setEarlyExporter(psk.ks, psk.ks.earlyExporterMasterSecret(psk.early, chHash));
      this.emit({ type: 'secret', level: 'early', direction: 'write', suite: psk.ticket.suite, secret: cets });
    }
    return offer;
  }

  /** Encodes a ClientHello for `offer`; computes PSK binders over the transcript so far (RFC 8446 §4.2.11.2). */
  private encodeHello(offer: Offer, earlyData: boolean): Uint8Array {
    const c = this.cfg;
    const exts: Extension[] = [];
    if (c.sni) exts.push(encodeServerName(c.sni));
    exts.push(encodeU16List(X.supported_groups, c.groups.map((g) => NamedGroupCode[g])));
    exts.push(encodeU16List(X.signature_algorithms, c.schemes.map((s) => SignatureSchemeCode[s])));
    if (c.alpn.length) exts.push(encodeAlpn(c.alpn));
    exts.push(encodeU16List(X.supported_versions, [TLS13], 1));
    exts.push(encodeClientKeyShares([...offer.shares].map(([group, ks]) => ({ group, share: ks.share }))));
    exts.push({ type: X.psk_key_exchange_modes, data: Uint8Array.of(c.pskModes.length, ...c.pskModes) });
    if (offer.cookie) exts.push(encodeCookie(offer.cookie));
    if (c.quic) exts.push({ type: X.quic_transport_parameters, data: c.quic.transportParameters });
    if (earlyData) exts.push({ type: X.early_data, data: new Uint8Array(0) });
    const psk = offer.psk;
    if (psk) {
      const age = (Math.max(0, this.cfg.now() - psk.ticket.receivedAt) + psk.ticket.ageAdd) >>> 0;
      exts.push(
        encodeOfferedPsks({ identities: [{ identity: psk.ticket.ticket, obfuscatedAge: age }], binders: [new Uint8Array(psk.ks.hashLen)] }),
      );
    }
    offer.exts = new Set(exts.map((e) => e.type));
    const ch = encodeClientHello({ random: offer.random, sessionId: offer.sessionId, cipherSuites: offer.suites, extensions: exts });
    if (psk) {
      const truncated = ch.subarray(0, ch.length - bindersLength(1, psk.ks.hashLen));
      const th = this.transcript.alg ? this.transcript.digestWith(truncated) : this.provider.digest(psk.ks.hash, truncated);
      const binder = psk.ks.finishedMac(psk.ks.binderKey(psk.early), th);
      ch.set(binder, ch.length - psk.ks.hashLen);
    }
    return ch;
  }

  /** Test hook: use caller-supplied ClientHello bytes verbatim (RFC 8448), learning what they offer. */
  private offerFromOverride(raw: Uint8Array): Offer {
    if (raw[0] !== H.client_hello) throw new Error('clientHelloOverride is not a ClientHello');
    const ch = parseClientHello(raw.subarray(4));
    const shares = new Map<number, KeyShare>();
    const ksData = findExt(ch.extensions, X.key_share);
    for (const e of ksData ? parseClientKeyShares(ksData) : []) {
      const g = codeToName(NamedGroupCode, e.group);
      const priv = g ? this.cfg.raw.keySharePrivateKeys?.[g] : undefined;
      if (g && priv) shares.set(e.group, this.provider.keyExchange(g).generate(priv));
    }
    let psk: PskOffer | null = null;
    const t = this.cfg.resumption;
    if (t && findExt(ch.extensions, X.pre_shared_key)) {
      const ks = new KeySchedule(this.provider, CipherSuites[t.suite].hash);
      psk = { ticket: t, ks, early: ks.earlySecret(t.psk), earlyData: !!findExt(ch.extensions, X.early_data) };
    }
    const offer: Offer = { random: ch.random, sessionId: ch.sessionId, suites: ch.cipherSuites, shares, exts: new Set(ch.extensions.map((e) => e.type)), psk, cookie: null };
    this.clientRandom = ch.random;
    this.transcript.add(raw);
    this.emit({ type: 'send', level: 'initial', data: raw });
    if (psk?.earlyData) {
      const chHash = this.provider.digest(psk.ks.hash, raw);
      const cets = psk.ks.clientEarlyTrafficSecret(psk.early, chHash);
      this.log('CLIENT_EARLY_TRAFFIC_SECRET', cets);
      this.setEarlyExporter(psk.ks, psk.ks.earlyExporterMasterSecret(psk.early, chHash));
      this.emit({ type: 'secret', level: 'early', direction: 'write', suite: psk.ticket.suite, secret: cets });
    }
    return offer;
  }

  // ------------------------------------------------------------------ dispatch

  protected handle(msg: Message): void {
    const s = this.state;
    switch (s.kind) {
      case 'waitServerHello':
        if (msg.type !== H.server_hello) throw unexpected(s.kind, msg.type);
        this.state = this.onServerHello(s, msg);
        return;
      case 'waitEncryptedExtensions':
        if (msg.type !== H.encrypted_extensions) throw unexpected(s.kind, msg.type);
        this.state = this.onEncryptedExtensions(s, msg);
        return;
      case 'waitCertificateOrRequest':
        if (msg.type === H.certificate_request) this.state = this.onCertificateRequest(s, msg);
        else if (msg.type === H.certificate) this.state = this.onCertificate({ kind: 'waitCertificate', n: s.n, cr: null }, msg);
        else throw unexpected(s.kind, msg.type);
        return;
      case 'waitCertificate':
        if (msg.type !== H.certificate) throw unexpected(s.kind, msg.type);
        this.state = this.onCertificate(s, msg);
        return;
      case 'waitCertificateVerify':
        if (msg.type !== H.certificate_verify) throw unexpected(s.kind, msg.type);
        this.state = this.onCertificateVerify(s, msg);
        return;
      case 'waitFinished':
        if (msg.type !== H.finished) throw unexpected(s.kind, msg.type);
        this.state = this.onFinished(s, msg);
        return;
      case 'connected':
        if (msg.type === H.new_session_ticket) this.state = this.onNewSessionTicket(s, msg);
        else if (msg.type === H.key_update && !this.cfg.quic) this.state = this.onKeyUpdate(s, msg);
        else throw unexpected(s.kind, msg.type);
        return;
      default:
        throw unexpected(s.kind, msg.type);
    }
  }

  // ------------------------------------------------------------------ ServerHello / HRR

  private checkCommonHello(offer: Offer, sh: ServerHello, allowed: number[]): void {
    const sv = findExt(sh.extensions, X.supported_versions);
    const last8 = sh.random.subarray(24);
    // RFC 8446 §4.1.3 downgrade protection.
    if (bytesEqual(last8, DOWNGRADE_TLS12) || bytesEqual(last8, DOWNGRADE_TLS11)) throw tlsError(Alert.illegal_parameter, 'ServerHello.random carries a downgrade sentinel');
    if (!sv) throw tlsError(Alert.protocol_version, 'server did not negotiate TLS 1.3 (no supported_versions)');
    if (parseServerSupportedVersion(sv) !== TLS13) throw tlsError(Alert.illegal_parameter, 'server selected a version we did not offer');
    if (!bytesEqual(sh.sessionId, offer.sessionId)) throw tlsError(Alert.illegal_parameter, 'legacy_session_id_echo does not match');
    if (!offer.suites.includes(sh.cipherSuite) || !suiteByCode(sh.cipherSuite)) throw tlsError(Alert.illegal_parameter, 'server selected a cipher suite we did not offer');
    for (const e of sh.extensions) {
      // The cookie is the one extension a HelloRetryRequest may carry unsolicited (RFC 8446 §4.2.2).
      if (!offer.exts.has(e.type) && e.type !== X.cookie) throw tlsError(Alert.unsupported_extension, `server sent extension ${e.type} that was not offered`);
      if (!allowed.includes(e.type)) throw tlsError(Alert.illegal_parameter, `extension ${e.type} not allowed in ServerHello`);
    }
  }

  private onServerHello(s: Extract<State, { kind: 'waitServerHello' }>, msg: Message): State {
    const sh = parseServerHello(msg.body);
    if (bytesEqual(sh.random, HRR_RANDOM)) return this.onHelloRetryRequest(s, sh, msg);
    const offer = s.offer;
    this.checkCommonHello(offer, sh, [X.supported_versions, X.key_share, X.pre_shared_key]);
    const suite = suiteByCode(sh.cipherSuite)!;
    if (s.hrr && s.hrr.suite !== sh.cipherSuite) throw tlsError(Alert.illegal_parameter, 'ServerHello cipher suite differs from the HelloRetryRequest');
    const hash = CipherSuites[suite].hash;

    let resumed = false;
    const pskExt = findExt(sh.extensions, X.pre_shared_key);
    if (pskExt) {
      const idx = parseU16Body(pskExt, 'pre_shared_key');
      if (!offer.psk || idx !== 0) throw tlsError(Alert.illegal_parameter, 'server selected a PSK identity we did not offer');
      if (offer.psk.ks.hash !== hash) throw tlsError(Alert.illegal_parameter, 'server selected a suite whose hash differs from the PSK');
      resumed = true;
    }
    const ksExt = findExt(sh.extensions, X.key_share);
    // Without a key share only a psk_ke resumption is possible (RFC 8446 §4.2.9).
    let shared: Uint8Array | null = null;
    let groupCode: number | null = null;
    if (ksExt) {
      const entry = parseServerKeyShare(ksExt);
      const mine = offer.shares.get(entry.group);
      if (!mine) throw tlsError(Alert.illegal_parameter, 'server key share is for a group we sent no share for');
      shared = mine.complete(entry.share);
      if (!shared) throw tlsError(Alert.illegal_parameter, 'invalid server key share');
      groupCode = entry.group;
    } else if (!resumed || !this.cfg.pskModes.includes(0)) {
      throw tlsError(Alert.missing_extension, 'ServerHello without key_share');
    }

    if (!this.transcript.alg) this.transcript.setHash(hash);
    this.transcript.add(msg.raw);
    const ks = resumed ? offer.psk!.ks : new KeySchedule(this.provider, hash);
    const early = resumed ? offer.psk!.early : ks.earlySecret(null);
    const hsSecret = ks.handshakeSecret(early, shared);
    const th = this.transcript.digest();
    const cHs = ks.clientHandshakeTrafficSecret(hsSecret, th);
    const sHs = ks.serverHandshakeTrafficSecret(hsSecret, th);
    this.log('CLIENT_HANDSHAKE_TRAFFIC_SECRET', cHs);
    this.log('SERVER_HANDSHAKE_TRAFFIC_SECRET', sHs);
    this.emit({ type: 'secret', level: 'handshake', direction: 'read', suite, secret: sHs });
    // Both modes get the handshake write key now: QUIC needs it for its packets, and over TCP any
    // alert we send from here on must be protected (RFC 8446 §5, §6). The record layer writes each
    // 'send' event with the key of its level, so a 0-RTT EndOfEarlyData still goes out under the
    // early key, before our second flight under this one (§4.5).
    this.emit({ type: 'secret', level: 'handshake', direction: 'write', suite, secret: cHs });
    const group = groupCode === null ? null : codeToName(NamedGroupCode, groupCode);
    this.info = { ...this.info, suite, group, resumed };
    const earlyOffered = !!offer.psk?.earlyData && !s.hrr;
    return { kind: 'waitEncryptedExtensions', offer, n: { suite, ks, hsSecret, cHs, sHs, resumed, earlyOffered, earlyAccepted: false, offeredExts: offer.exts } };
  }

  private onHelloRetryRequest(s: Extract<State, { kind: 'waitServerHello' }>, hrr: ServerHello, msg: Message): State {
    // RFC 8446 §4.1.4: at most one HelloRetryRequest.
    if (s.hrr) throw tlsError(Alert.unexpected_message, 'second HelloRetryRequest');
    const offer = s.offer;
    this.checkCommonHello(offer, hrr, [X.supported_versions, X.key_share, X.cookie]);
    const suite = suiteByCode(hrr.cipherSuite)!;
    const hash = CipherSuites[suite].hash;
    const ksExt = findExt(hrr.extensions, X.key_share);
    const cookieExt = findExt(hrr.extensions, X.cookie);
    if (!ksExt && !cookieExt) throw tlsError(Alert.illegal_parameter, 'HelloRetryRequest would not change the ClientHello');
    let shares = offer.shares;
    if (ksExt) {
      const code = parseHrrKeyShare(ksExt);
      const g = codeToName(NamedGroupCode, code);
      if (!g || !this.cfg.groups.includes(g)) throw tlsError(Alert.illegal_parameter, 'HelloRetryRequest selected a group we do not support');
      if (offer.shares.has(code)) throw tlsError(Alert.illegal_parameter, 'HelloRetryRequest selected a group we already sent a share for');
      shares = new Map([[code, this.provider.keyExchange(g).generate(this.cfg.raw.keySharePrivateKeys?.[g])]]);
    }
    const cookie = cookieExt ? parseCookie(cookieExt) : null;
    this.transcript.restartForHrr(hash);
    this.transcript.add(msg.raw);
    // Keep the PSK only if its hash matches the suite the server chose (RFC 8446 §4.1.4).
    const psk = offer.psk && offer.psk.ks.hash === hash ? { ...offer.psk, earlyData: false } : null;
    if (offer.psk?.earlyData) {
      this.emit({ type: 'earlyData', accepted: false });
      this.setEarlyExporter(offer.psk.ks, null);
    }
    let offer2: Offer = { ...offer, shares, cookie, psk };
    let ch2: Uint8Array;
    const override = this.cfg.raw.clientHello2Override;
    if (override) {
      // Test hook (RFC 8448 §5): send the given bytes, learning the shares and extensions they carry.
      const parsed = parseClientHello(override.subarray(4));
      const ks2 = new Map<number, KeyShare>();
      const ksData = findExt(parsed.extensions, X.key_share);
      for (const e of ksData ? parseClientKeyShares(ksData) : []) {
        const g = codeToName(NamedGroupCode, e.group);
        const priv = g ? this.cfg.raw.keySharePrivateKeys?.[g] : undefined;
        if (g && priv) ks2.set(e.group, this.provider.keyExchange(g).generate(priv));
      }
      offer2 = { ...offer2, shares: ks2, exts: new Set(parsed.extensions.map((e) => e.type)) };
      ch2 = override;
    } else if (this.cfg.raw.clientHelloOverride) {
      throw new Error('HelloRetryRequest with clientHelloOverride needs clientHello2Override');
    } else {
      ch2 = this.encodeHello(offer2, false);
    }
    this.transcript.add(ch2);
    this.emit({ type: 'send', level: 'initial', data: ch2 });
    this.info = { ...this.info, helloRetry: true };
    return { kind: 'waitServerHello', offer: offer2, hrr: { suite: hrr.cipherSuite } };
  }

  // ------------------------------------------------------------------ encrypted flight

  private onEncryptedExtensions(s: Extract<State, { kind: 'waitEncryptedExtensions' }>, msg: Message): State {
    const exts = parseEncryptedExtensions(msg.body);
    const allowed: number[] = [X.server_name, X.supported_groups, X.alpn, X.early_data, X.quic_transport_parameters];
    for (const e of exts) {
      if (!s.offer.exts.has(e.type)) throw tlsError(Alert.unsupported_extension, `server sent extension ${e.type} that was not offered`);
      if (isKnownExtension(e.type) && !allowed.includes(e.type)) throw tlsError(Alert.illegal_parameter, `extension ${e.type} not allowed in EncryptedExtensions`);
    }
    const sn = findExt(exts, X.server_name);
    if (sn) expectEmpty(sn, 'server_name acknowledgement');
    let alpn: string | null = null;
    const a = findExt(exts, X.alpn);
    if (a) {
      const list = parseAlpn(a);
      if (list.length !== 1) throw tlsError(Alert.illegal_parameter, 'server ALPN must name exactly one protocol');
      if (!this.cfg.alpn.includes(list[0]!)) throw tlsError(Alert.illegal_parameter, 'server selected an ALPN protocol we did not offer');
      alpn = list[0]!;
    }
    if (this.cfg.quic && alpn === null) throw tlsError(Alert.no_application_protocol, 'QUIC server negotiated no ALPN protocol (RFC 9001 §8.1)');
    let tp: Uint8Array | null = null;
    if (this.cfg.quic) {
      tp = findExt(exts, X.quic_transport_parameters) ?? null;
      if (!tp) throw tlsError(Alert.missing_extension, 'server sent no quic_transport_parameters');
    }
    const ed = findExt(exts, X.early_data);
    if (ed) expectEmpty(ed, 'early_data');
    const accepted = !!ed;
    if (accepted) {
      if (!s.n.earlyOffered) throw tlsError(Alert.unsupported_extension, 'server accepted early data we did not send');
      const t = s.offer.psk!.ticket;
      if (!s.n.resumed || s.n.suite !== t.suite || alpn !== t.alpn) throw tlsError(Alert.illegal_parameter, 'server accepted 0-RTT with parameters that differ from the ticket');
    }
    if (s.n.earlyOffered) this.emit({ type: 'earlyData', accepted });
    // Rejected 0-RTT: the server never derived the early exporter secret; it must not be used (§7.5).
    if (s.n.earlyOffered && !accepted) this.setEarlyExporter(s.n.ks, null);
    this.transcript.add(msg.raw);
    this.info = { ...this.info, alpn, peerTransportParameters: tp, earlyDataAccepted: accepted };
    const n = { ...s.n, earlyAccepted: accepted };
    return n.resumed ? { kind: 'waitFinished', n, cr: null } : { kind: 'waitCertificateOrRequest', n };
  }

  private onCertificateRequest(s: Extract<State, { kind: 'waitCertificateOrRequest' }>, msg: Message): State {
    const cr = parseCertificateRequest(msg.body);
    if (cr.context.length !== 0) throw tlsError(Alert.illegal_parameter, 'CertificateRequest context must be empty during the handshake');
    const sa = findExt(cr.extensions, X.signature_algorithms);
    if (!sa) throw tlsError(Alert.missing_extension, 'CertificateRequest without signature_algorithms');
    const schemes = parseSignatureAlgorithms(sa);
    this.transcript.add(msg.raw);
    return { kind: 'waitCertificate', n: s.n, cr: { context: cr.context, schemes } };
  }

  private onCertificate(s: Extract<State, { kind: 'waitCertificate' }>, msg: Message): State {
    const c = parseCertificate(msg.body);
    if (c.context.length !== 0) throw tlsError(Alert.illegal_parameter, 'server Certificate has a non-empty request context');
    if (c.entries.length === 0) throw tlsError(Alert.decode_error, 'server sent an empty Certificate');
    checkCertificateEntryExtensions(c.entries, (t) => s.n.offeredExts.has(t), 'server');
    const chain = c.entries.map((e) => e.cert);
    let leafSpki: Uint8Array;
    try {
      leafSpki = certificateSpki(chain[0]!);
    } catch {
      throw tlsError(Alert.bad_certificate, 'server leaf certificate is not valid X.509');
    }
    const verifier = this.cfg.verifier;
    if (verifier) runVerifier(() => verifier.verifyServer(chain, this.cfg.serverName, this.cfg.now(), this.provider));
    this.transcript.add(msg.raw);
    this.info = { ...this.info, peerCertificates: chain.map((x) => x.slice()) };
    return { kind: 'waitCertificateVerify', n: s.n, cr: s.cr, leafSpki: leafSpki.slice() };
  }

  private onCertificateVerify(s: Extract<State, { kind: 'waitCertificateVerify' }>, msg: Message): State {
    const cv = parseCertificateVerify(msg.body);
    const scheme = codeToName(SignatureSchemeCode, cv.scheme);
    if (!scheme || !this.cfg.schemes.includes(scheme)) throw tlsError(Alert.illegal_parameter, 'server signed with a scheme we did not offer');
    if (!certificateVerifyScheme(scheme)) throw tlsError(Alert.illegal_parameter, `server CertificateVerify uses ${scheme}: RSA signatures in TLS 1.3 CertificateVerify must be RSASSA-PSS (RFC 8446 §4.4.3)`);
    const content = certificateVerifyContent(true, this.transcript.digest());
    if (!this.provider.verify(scheme, s.leafSpki, content, cv.signature)) throw tlsError(Alert.decrypt_error, 'server CertificateVerify signature is invalid');
    this.transcript.add(msg.raw);
    this.info = { ...this.info, signatureScheme: scheme };
    return { kind: 'waitFinished', n: s.n, cr: s.cr };
  }

  private onFinished(s: Extract<State, { kind: 'waitFinished' }>, msg: Message): State {
    const n = s.n;
    const expected = n.ks.finishedMac(n.sHs, this.transcript.digest());
    if (!bytesEqual(expected, msg.body)) throw tlsError(Alert.decrypt_error, 'server Finished does not verify');
    this.transcript.add(msg.raw);
    this.setPeerFinished(msg.body);
    const master = n.ks.masterSecret(n.hsSecret);
    const th = this.transcript.digest();
    const cAp = n.ks.clientApplicationTrafficSecret(master, th);
    const sAp = n.ks.serverApplicationTrafficSecret(master, th);
    const exporter = n.ks.exporterMasterSecret(master, th);
    this.log('SERVER_TRAFFIC_SECRET_0', sAp);
    this.emit({ type: 'secret', level: 'application', direction: 'read', suite: n.suite, secret: sAp });

    if (!this.cfg.quic && n.earlyAccepted) {
      // RFC 8446 §4.5: EndOfEarlyData under the early traffic key (TCP only; RFC 9001 §8.3).
      const eoed = handshakeMessage(H.end_of_early_data, new Uint8Array(0));
      this.transcript.add(eoed);
      this.emit({ type: 'send', level: 'early', data: eoed });
    }
    const out: Uint8Array[] = [];
    if (s.cr) {
      const cc = this.cfg.clientCert;
      const scheme: SignatureScheme | undefined = cc?.key.schemes.find((x) => certificateVerifyScheme(x) && s.cr!.schemes.includes(SignatureSchemeCode[x]) && this.provider.signatureSchemes.includes(x));
      const certMsg = encodeCertificate({ context: s.cr.context, entries: cc && scheme ? cc.chain.map((cert) => ({ cert, extensions: [] })) : [] });
      this.transcript.add(certMsg);
      out.push(certMsg);
      if (cc && scheme) {
        const sig = cc.key.sign(scheme, certificateVerifyContent(false, this.transcript.digest()));
        const cvMsg = encodeCertificateVerify({ scheme: SignatureSchemeCode[scheme], signature: sig });
        this.transcript.add(cvMsg);
        out.push(cvMsg);
      }
    }
    const verifyData = n.ks.finishedMac(n.cHs, this.transcript.digest());
    const fin = encodeFinished(verifyData);
    this.transcript.add(fin);
    this.setOwnFinished(verifyData);
    out.push(fin);
    for (const m of out) this.emit({ type: 'send', level: 'handshake', data: m });
    const resMaster = n.ks.resumptionMasterSecret(master, this.transcript.digest());
    this.log('CLIENT_TRAFFIC_SECRET_0', cAp);
    this.log('EXPORTER_SECRET', exporter);
    this.emit({ type: 'secret', level: 'application', direction: 'write', suite: n.suite, secret: cAp });
    this.info = {
      ...this.info,
      signatureScheme: this.info.signatureScheme ?? null,
      peerCertificates: this.info.peerCertificates ?? [],
      peerTransportParameters: this.info.peerTransportParameters ?? null,
      alpn: this.info.alpn ?? null,
    };
    this.setExporter(n.ks, exporter);
    this.emit({ type: 'handshakeComplete', info: this.info as Required<typeof this.info> });
    return { kind: 'connected', suite: n.suite, ks: n.ks, readSecret: sAp, writeSecret: cAp, resMaster };
  }

  // ------------------------------------------------------------------ post-handshake

  private onNewSessionTicket(s: Extract<State, { kind: 'connected' }>, msg: Message): State {
    const t = parseNewSessionTicket(msg.body);
    if (this.cfg.quic && t.maxEarlyData !== null && t.maxEarlyData !== 0xffffffff)
      throw new ProtocolViolation('quic', 0x0a, 'NewSessionTicket max_early_data_size must be 0xffffffff in QUIC (RFC 9001 §4.6.1)');
    if (t.lifetime === 0) return s; // RFC 8446 §4.6.1: a zero lifetime means do not cache
    if (++this.ticketsReceived > MAX_TICKETS_PER_CONNECTION) return s;
    const ticket: SessionTicket = {
      serverName: this.cfg.serverName ?? '',
      suite: s.suite,
      ticket: t.ticket.slice(),
      psk: s.ks.resumptionPsk(s.resMaster, t.nonce),
      ageAdd: t.ageAdd,
      receivedAt: this.cfg.now(),
      lifetimeSeconds: t.lifetime,
      maxEarlyData: t.maxEarlyData ?? 0,
      alpn: this.info.alpn ?? null,
      transportParameters: this.info.peerTransportParameters ?? null,
    };
    this.emit({ type: 'sessionTicket', ticket });
    return s;
  }

  updateKeys(requestPeer: boolean): void {
    const s = this.state;
    if (this.cfg.quic) throw new Error('updateKeys: QUIC performs key updates itself (RFC 9001 §6)');
    if (s.kind !== 'connected') throw new Error('updateKeys before the handshake completed');
    this.guard(() => {
      this.state = this.sendKeyUpdate(s, requestPeer);
    });
  }
}

export type { NamedGroup };
