/**
 * TLS 1.3 server handshake (RFC 8446; QUIC mode per RFC 9001 §4/§8). States are a discriminated
 * union; a message a state does not expect has no path but unexpected_message.
 *
 *   WAIT_CH ─(resolver pending: RESOLVING)─┬─ HelloRetryRequest → WAIT_CH2 ─┐
 *                                          └─ ServerHello … Finished ───────┴→ [WAIT_EOED] → [WAIT_CERT → WAIT_CV] → WAIT_FINISHED → CONNECTED
 */
import type { NamedGroup, SignatureScheme } from '../crypto/provider.js';
import { NamedGroupCode, SignatureSchemeCode } from '../crypto/provider.js';
import { Alert, ConfigError, ProtocolViolation, tlsError } from '../errors.js';
import { KeySchedule } from '../keyschedule.js';
import { certificateSpki } from '../x509/spki.js';
import type { CertificateVerifier, CipherSuite, EncryptionLevel, TlsSession } from './api.js';
import { CipherSuites } from './api.js';
import {
  ExtensionType as X,
  HRR_RANDOM,
  HandshakeType as H,
  TLS13,
  bytesEqual,
  checkCertificateEntryExtensions,
  encodeAlpn,
  encodeCertificate,
  encodeCertificateRequest,
  encodeCertificateVerify,
  encodeCookie,
  encodeExtensionsMessage,
  encodeFinished,
  encodeNewSessionTicket,
  encodeServerHello,
  encodeU16List,
  findExt,
  parseAlpn,
  parseCertificate,
  parseCertificateVerify,
  parseClientHello,
  parseClientKeyShares,
  parseClientSupportedVersions,
  parseCookie,
  parseOfferedPsks,
  parsePskModes,
  parseServerName,
  parseSignatureAlgorithms,
  parseSupportedGroups,
  expectEmpty,
  type ClientHello,
  type Extension,
  type KeyShareEntry,
  type OfferedPsks,
} from './codec.js';
import { SessionCore, Transcript, certificateVerifyContent, certificateVerifyScheme, codeToName, runVerifier, suiteByCode, unexpected, type Message } from './common.js';
import {
  loadIdentity,
  serverSettingsFor,
  type ServerConnectionOptions,
  type ClientAuthMode,
  type ClientHelloInfo,
  type LoadedIdentity,
  type ServerIdentity,
  type ServerSettings,
  type TlsServerConfig,
} from './config.js';
import { decodeTicketState, encodeTicketState, type TicketState } from './tickets.js';

/** A ClientHello with the extensions we use decoded. */
interface Hello {
  ch: ClientHello;
  raw: Uint8Array;
  sni: string | null;
  alpn: string[] | null;
  groups: number[] | null;
  sigAlgs: number[] | null;
  keyShares: KeyShareEntry[] | null;
  pskModes: number[];
  psk: OfferedPsks | null;
  earlyData: boolean;
  cookie: Uint8Array | null;
  transportParameters: Uint8Array | null;
}

/** Per-connection settings after the resolver ran. */
interface Effective {
  id: LoadedIdentity;
  alpn: string[];
  clientAuth: ClientAuthMode;
  clientVerifier: CertificateVerifier | null;
}

interface Hrr {
  first: Hello;
  eff: Effective;
  suite: CipherSuite;
  group: number | null;
  cookie: Uint8Array | null;
}

interface Negotiated {
  suite: CipherSuite;
  ks: KeySchedule;
  cHs: Uint8Array;
  cAp: Uint8Array;
  sAp: Uint8Array;
  master: Uint8Array;
  exporter: Uint8Array;
  alpn: string | null;
  sni: string | null;
  /** Client's psk_key_exchange_modes allow tickets we can use. */
  ticketsWanted: boolean;
  /** Signature schemes we asked for in CertificateRequest (null: no request). */
  crSchemes: number[] | null;
  clientAuth: ClientAuthMode;
  clientVerifier: CertificateVerifier | null;
  clientLeaf: Uint8Array | null;
}

type State =
  | { kind: 'waitClientHello' }
  | { kind: 'resolving' }
  | { kind: 'waitClientHello2'; hrr: Hrr }
  | { kind: 'waitEndOfEarlyData'; n: Negotiated }
  | { kind: 'waitClientCertificate'; n: Negotiated }
  | { kind: 'waitClientCertificateVerify'; n: Negotiated; spki: Uint8Array }
  | { kind: 'waitClientFinished'; n: Negotiated }
  | { kind: 'connected'; suite: CipherSuite; ks: KeySchedule; readSecret: Uint8Array; writeSecret: Uint8Array }
  | { kind: 'closed' };

const identityCache = new WeakMap<object, LoadedIdentity>();
const EARLY_DATA_AGE_WINDOW_MS = 10_000;

function toViolation(e: unknown, fallback: number, what: string): ProtocolViolation {
  if (e instanceof ProtocolViolation) return e;
  return new ProtocolViolation('tls', fallback, `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export class TlsServer extends SessionCore implements TlsSession {
  readonly role = 'server' as const;
  private readonly cfg: ServerSettings;
  private state: State = { kind: 'waitClientHello' };
  private readonly transcript: Transcript;
  private pendingPromise: Promise<void> | null = null;

  /**
   * `config` may be shared by many connections (ticket keys and anti-replay state live with it);
   * `conn` carries what differs per connection (key logger, QUIC transport parameters).
   */
  constructor(config: TlsServerConfig, conn?: ServerConnectionOptions) {
    const cfg = serverSettingsFor(config, conn);
    super(cfg.provider, cfg.keyLog);
    this.cfg = cfg;
    this.transcript = new Transcript(cfg.provider);
    this.info = { version: 'TLSv1.3', helloRetry: false, resumed: false, earlyDataAccepted: false };
  }

  get pending(): Promise<void> | null {
    return this.pendingPromise;
  }

  get handshakeComplete(): boolean {
    return this.state.kind === 'connected';
  }

  start(): void {
    // Nothing to do: the server speaks when the ClientHello arrives.
  }

  protected override onDead(): void {
    this.state = { kind: 'closed' };
  }

  protected expectedLevel(): EncryptionLevel | null {
    switch (this.state.kind) {
      case 'waitClientHello':
      case 'waitClientHello2':
        return 'initial';
      case 'resolving':
      case 'closed':
        return null;
      case 'waitEndOfEarlyData':
        return 'early';
      case 'connected':
        return 'application';
      default:
        return 'handshake';
    }
  }

  protected handle(msg: Message): void {
    const s = this.state;
    switch (s.kind) {
      case 'waitClientHello':
        if (msg.type !== H.client_hello) throw unexpected(s.kind, msg.type);
        this.state = this.onClientHello(msg);
        return;
      case 'waitClientHello2':
        if (msg.type !== H.client_hello) throw unexpected(s.kind, msg.type);
        this.state = this.onClientHello2(s, msg);
        return;
      case 'waitEndOfEarlyData':
        if (msg.type !== H.end_of_early_data) throw unexpected(s.kind, msg.type);
        this.state = this.onEndOfEarlyData(s, msg);
        return;
      case 'waitClientCertificate':
        if (msg.type !== H.certificate) throw unexpected(s.kind, msg.type);
        this.state = this.onClientCertificate(s, msg);
        return;
      case 'waitClientCertificateVerify':
        if (msg.type !== H.certificate_verify) throw unexpected(s.kind, msg.type);
        this.state = this.onClientCertificateVerify(s, msg);
        return;
      case 'waitClientFinished':
        if (msg.type !== H.finished) throw unexpected(s.kind, msg.type);
        this.state = this.onClientFinished(s, msg);
        return;
      case 'connected':
        if (msg.type === H.key_update && !this.cfg.quic) this.state = this.onKeyUpdate(s, msg);
        else throw unexpected(s.kind, msg.type);
        return;
      default:
        throw unexpected(s.kind, msg.type);
    }
  }

  // ------------------------------------------------------------------ ClientHello

  private parseHello(msg: Message): Hello {
    const ch = parseClientHello(msg.body);
    const e = ch.extensions;
    const sv = findExt(e, X.supported_versions);
    // TLS 1.2 and below are out of scope (RFC 8446 §4.2.1).
    if (!sv || !parseClientSupportedVersions(sv).includes(TLS13)) throw tlsError(Alert.protocol_version, 'client does not offer TLS 1.3');
    const get = <T>(t: number, f: (d: Uint8Array) => T): T | null => {
      const d = findExt(e, t);
      return d === undefined ? null : f(d);
    };
    const hello: Hello = {
      ch,
      raw: msg.raw,
      sni: get(X.server_name, parseServerName),
      alpn: get(X.alpn, parseAlpn),
      groups: get(X.supported_groups, parseSupportedGroups),
      sigAlgs: get(X.signature_algorithms, parseSignatureAlgorithms),
      keyShares: get(X.key_share, parseClientKeyShares),
      pskModes: get(X.psk_key_exchange_modes, parsePskModes) ?? [],
      psk: get(X.pre_shared_key, parseOfferedPsks),
      earlyData: get(X.early_data, (d) => (expectEmpty(d, 'early_data'), true)) ?? false,
      cookie: get(X.cookie, parseCookie),
      transportParameters: findExt(e, X.quic_transport_parameters) ?? null,
    };
    if (hello.psk && !findExt(e, X.psk_key_exchange_modes)) throw tlsError(Alert.missing_extension, 'pre_shared_key without psk_key_exchange_modes');
    // RFC 8446 §9.2: supported_groups and key_share come together; without a PSK, both and signature_algorithms are mandatory.
    if ((hello.groups === null) !== (hello.keyShares === null)) throw tlsError(Alert.missing_extension, 'supported_groups and key_share must both be present');
    if (!hello.psk && (hello.groups === null || hello.sigAlgs === null)) throw tlsError(Alert.missing_extension, 'ClientHello lacks supported_groups/key_share/signature_algorithms');
    if (hello.keyShares && hello.groups) {
      for (const k of hello.keyShares)
        if (!hello.groups.includes(k.group)) throw tlsError(Alert.illegal_parameter, 'key_share for a group not in supported_groups');
    }
    if (this.cfg.quic) {
      if (!hello.transportParameters) throw tlsError(Alert.missing_extension, 'QUIC ClientHello without quic_transport_parameters');
      // RFC 9001 §8.4: no middlebox compatibility mode in QUIC.
      if (ch.sessionId.length !== 0) throw new ProtocolViolation('quic', 0x0a, 'QUIC ClientHello with a non-empty legacy_session_id (RFC 9001 §8.4)');
    }
    return hello;
  }

  private onClientHello(msg: Message): State {
    const hello = this.parseHello(msg);
    this.clientRandom = hello.ch.random;
    this.info = { ...this.info, serverName: hello.sni };
    if (!this.cfg.resolve) return this.negotiate(hello, this.effective(this.cfg.identity!, this.cfg.raw.identity!), null);
    const info: ClientHelloInfo = {
      serverName: hello.sni,
      alpn: hello.alpn ?? [],
      cipherSuites: hello.ch.cipherSuites.map(suiteByCode).filter((x): x is CipherSuite => x !== null),
      groups: (hello.groups ?? []).map((g) => codeToName(NamedGroupCode, g)).filter((x): x is NamedGroup => x !== null),
      signatureSchemes: (hello.sigAlgs ?? []).map((g) => codeToName(SignatureSchemeCode, g)).filter((x): x is SignatureScheme => x !== null),
    };
    let r: ServerIdentity | Promise<ServerIdentity>;
    try {
      r = this.cfg.resolve(info);
    } catch (e) {
      throw toViolation(e, Alert.handshake_failure, 'resolver failed');
    }
    if (r && typeof (r as Promise<ServerIdentity>).then === 'function') {
      // Park: later input is buffered until the resolver settles.
      this.pendingPromise = Promise.resolve(r).then(
        (id) => {
          this.pendingPromise = null;
          if (this.dead) return;
          this.guard(() => {
            this.state = this.negotiate(hello, this.effective(id, id), null);
            this.commit();
            this.process();
          });
        },
        (e) => {
          this.pendingPromise = null;
          if (!this.dead) this.fail(toViolation(e, Alert.handshake_failure, 'resolver failed'));
        },
      );
      return { kind: 'resolving' };
    }
    return this.negotiate(hello, this.effective(r as ServerIdentity, r as object), null);
  }

  /** Loads (and caches) a resolver's identity; misconfiguration becomes internal_error. */
  private effective(id: ServerIdentity | LoadedIdentity, cacheKey: object): Effective {
    let loaded: LoadedIdentity;
    if (this.cfg.identity && cacheKey === this.cfg.raw.identity) loaded = this.cfg.identity;
    else {
      const hit = identityCache.get(cacheKey);
      if (hit) loaded = hit;
      else {
        try {
          loaded = loadIdentity(this.provider, id as ServerIdentity, 'resolved identity');
        } catch (e) {
          throw new ProtocolViolation('tls', Alert.internal_error, `server misconfiguration: ${(e as Error).message}`);
        }
        identityCache.set(cacheKey, loaded);
      }
    }
    const clientAuth = loaded.clientAuth ?? this.cfg.clientAuth;
    const clientVerifier = loaded.clientVerifier ?? this.cfg.clientVerifier;
    if (clientAuth !== 'none' && !clientVerifier) throw new ProtocolViolation('tls', Alert.internal_error, 'server misconfiguration: clientAuth without clientVerifier');
    return { id: loaded, alpn: loaded.alpn ?? this.cfg.alpn, clientAuth, clientVerifier };
  }

  private onClientHello2(s: Extract<State, { kind: 'waitClientHello2' }>, msg: Message): State {
    const hello = this.parseHello(msg);
    const h = s.hrr;
    const a = h.first.ch;
    const b = hello.ch;
    // RFC 8446 §4.1.2: the second ClientHello repeats the first except key_share, early_data removal, cookie, pre_shared_key.
    if (!bytesEqual(a.random, b.random) || !bytesEqual(a.sessionId, b.sessionId) || a.cipherSuites.join() !== b.cipherSuites.join())
      throw tlsError(Alert.illegal_parameter, 'second ClientHello differs from the first');
    const changeable = new Set<number>([X.key_share, X.cookie, X.early_data, X.pre_shared_key, 21]);
    const fixedA = a.extensions.filter((e) => !changeable.has(e.type));
    const fixedB = b.extensions.filter((e) => !changeable.has(e.type));
    if (fixedA.length !== fixedB.length || fixedA.some((e, i) => e.type !== fixedB[i]!.type || !bytesEqual(e.data, fixedB[i]!.data)))
      throw tlsError(Alert.illegal_parameter, 'second ClientHello changed extensions it must keep');
    if (hello.earlyData) throw tlsError(Alert.illegal_parameter, 'early_data after HelloRetryRequest');
    if (h.cookie && (!hello.cookie || !bytesEqual(h.cookie, hello.cookie))) throw tlsError(Alert.illegal_parameter, 'second ClientHello does not echo the cookie');
    if (!h.cookie && hello.cookie) throw tlsError(Alert.unsupported_extension, 'cookie we did not send');
    // legacy_version is ignored for negotiation, but it is part of what must not change.
    if (h.first.raw[4] !== hello.raw[4] || h.first.raw[5] !== hello.raw[5]) throw tlsError(Alert.illegal_parameter, 'second ClientHello changed legacy_version');
    // key_share may change only to a single share for the group the HelloRetryRequest named; after a
    // cookie-only HelloRetryRequest it must stay as it was.
    if (h.group !== null) {
      if (!hello.keyShares || hello.keyShares.length !== 1 || hello.keyShares[0]!.group !== h.group)
        throw tlsError(Alert.illegal_parameter, 'second ClientHello must carry exactly one share for the requested group');
    } else {
      const ksA = findExt(a.extensions, X.key_share);
      const ksB = findExt(b.extensions, X.key_share);
      if ((ksA === undefined) !== (ksB === undefined) || (ksA && ksB && !bytesEqual(ksA, ksB)))
        throw tlsError(Alert.illegal_parameter, 'second ClientHello changed key_share though the HelloRetryRequest asked for no group');
    }
    // pre_shared_key may only be updated (ages, binders) or lose identities whose hash does not fit the suite.
    if (hello.psk) {
      const before = h.first.psk;
      if (!before) throw tlsError(Alert.illegal_parameter, 'second ClientHello added a pre_shared_key');
      for (const id of hello.psk.identities)
        if (!before.identities.some((x) => bytesEqual(x.identity, id.identity))) throw tlsError(Alert.illegal_parameter, 'second ClientHello offers a PSK identity the first did not');
    }
    return this.negotiate(hello, h.eff, h);
  }

  private chooseSuite(hello: Hello): CipherSuite {
    for (const s of this.cfg.suites) if (hello.ch.cipherSuites.includes(CipherSuites[s].code)) return s;
    throw tlsError(Alert.handshake_failure, 'no cipher suite in common');
  }

  private chooseAlpn(hello: Hello, eff: Effective): string | null {
    if (hello.alpn) {
      if (eff.alpn.length === 0) {
        if (this.cfg.quic) throw tlsError(Alert.no_application_protocol, 'no ALPN protocol configured');
        return null;
      }
      for (const p of eff.alpn) if (hello.alpn.includes(p)) return p;
      throw tlsError(Alert.no_application_protocol, `no ALPN protocol in common (client offered ${hello.alpn.join(', ')})`);
    }
    if (this.cfg.requireAlpn) throw tlsError(Alert.no_application_protocol, 'client offered no ALPN protocol');
    return null;
  }

  /** Finds the first offered ticket we can resume (binder not yet checked). */
  private choosePsk(hello: Hello, suite: CipherSuite, eff: Effective): { index: number; state: TicketState } | null {
    if (!hello.psk || this.cfg.ticketCount === 0 && !this.cfg.raw.tickets?.keys) return null;
    const dhe = hello.pskModes.includes(1);
    const ke = this.cfg.allowPskOnly && hello.pskModes.includes(0);
    if (!dhe && !ke) return null;
    const now = this.cfg.now();
    for (let i = 0; i < hello.psk.identities.length; i++) {
      const plain = this.cfg.ticketKeys.open(hello.psk.identities[i]!.identity);
      const st = plain && decodeTicketState(plain);
      if (!st) continue;
      if (CipherSuites[st.suite].hash !== CipherSuites[suite].hash) continue;
      if (now - st.issuedAt > st.lifetimeSeconds * 1000 || st.issuedAt - now > EARLY_DATA_AGE_WINDOW_MS) continue;
      if (st.serverName !== hello.sni) continue;
      if (eff.clientAuth === 'require' && !st.clientLeaf) continue;
      return { index: i, state: st };
    }
    return null;
  }

  private negotiate(hello: Hello, eff: Effective, hrr: Hrr | null): State {
    const suite = hrr ? hrr.suite : this.chooseSuite(hello);
    const hash = CipherSuites[suite].hash;
    const alpn = this.chooseAlpn(hello, eff);
    const psk = this.choosePsk(hello, suite, eff);
    const pskOnly = !!psk && !hello.pskModes.includes(1);

    // Key exchange: use a share the client sent (our preference among them), else ask for one.
    let share: KeyShareEntry | null = null;
    let wantGroup: number | null = null;
    if (!pskOnly) {
      if (!hello.keyShares || !hello.groups) throw tlsError(Alert.missing_extension, 'no key_share for a (EC)DHE handshake');
      for (const g of this.cfg.groups) {
        const e = hello.keyShares.find((k) => k.group === NamedGroupCode[g]);
        if (e) {
          share = e;
          break;
        }
      }
      if (!share) {
        const common = this.cfg.groups.find((g) => hello.groups!.includes(NamedGroupCode[g]));
        if (!common) throw tlsError(Alert.handshake_failure, 'no key exchange group in common');
        wantGroup = NamedGroupCode[common];
      }
    }
    if (!psk && !pskOnly) this.chooseScheme(hello, eff); // fail early if we cannot sign
    const wantCookie = this.cfg.helloRetryCookie && !hrr;
    if (wantGroup !== null || wantCookie) {
      if (hrr) throw tlsError(Alert.illegal_parameter, 'second ClientHello still lacks a usable key share');
      return this.sendHelloRetry(hello, eff, suite, wantGroup);
    }

    // PSK binder (RFC 8446 §4.2.11.2) over the transcript up to the binders list.
    if (psk) {
      const ks = new KeySchedule(this.provider, hash);
      // The binders list (its 2-byte length and every binder) ends the ClientHello (pre_shared_key is last).
      let bindersLen = 2;
      for (const b of hello.psk!.binders) bindersLen += 1 + b.length;
      const truncated = hello.raw.subarray(0, hello.raw.length - bindersLen);
      const offeredBinder = hello.psk!.binders[psk.index]!;
      const th = hrr ? this.transcript.digestWith(truncated) : this.provider.digest(hash, truncated);
      const expected = ks.finishedMac(ks.binderKey(ks.earlySecret(psk.state.psk)), th);
      if (!bytesEqual(expected, offeredBinder)) throw tlsError(Alert.decrypt_error, 'PSK binder does not verify');
    }
    this.transcript.add(hello.raw);
    this.transcript.setHash(hash);
    return this.sendServerFlight(hello, eff, suite, alpn, psk, share, hrr !== null);
  }

  private chooseScheme(hello: Hello, eff: Effective): SignatureScheme {
    const client = hello.sigAlgs ?? [];
    const scheme = eff.id.key.schemes.find((s) => certificateVerifyScheme(s) && this.cfg.schemes.includes(s) && client.includes(SignatureSchemeCode[s]));
    if (!scheme) throw tlsError(Alert.handshake_failure, 'no signature scheme in common with our certificate key');
    return scheme;
  }

  private sendHelloRetry(hello: Hello, eff: Effective, suite: CipherSuite, group: number | null): State {
    const cookie = this.cfg.helloRetryCookie ? this.provider.randomBytes(32) : null;
    const exts: Extension[] = [{ type: X.supported_versions, data: Uint8Array.of(0x03, 0x04) }];
    if (group !== null) exts.unshift({ type: X.key_share, data: Uint8Array.of(group >> 8, group & 0xff) });
    if (cookie) exts.push(encodeCookie(cookie));
    const hrrMsg = encodeServerHello({ random: HRR_RANDOM, sessionId: hello.ch.sessionId, cipherSuite: CipherSuites[suite].code, extensions: exts });
    this.transcript.add(hello.raw);
    this.transcript.restartForHrr(CipherSuites[suite].hash);
    this.transcript.add(hrrMsg);
    if (hello.earlyData) this.emit({ type: 'earlyData', accepted: false, maxEarlyData: this.cfg.maxEarlyData });
    this.emit({ type: 'send', level: 'initial', data: hrrMsg });
    this.info = { ...this.info, helloRetry: true };
    return { kind: 'waitClientHello2', hrr: { first: hello, eff, suite, group, cookie } };
  }

  private sendServerFlight(
    hello: Hello,
    eff: Effective,
    suite: CipherSuite,
    alpn: string | null,
    psk: { index: number; state: TicketState } | null,
    share: KeyShareEntry | null,
    afterHrr: boolean,
  ): State {
    const p = this.provider;
    const cfg = this.cfg;
    const ks = new KeySchedule(p, CipherSuites[suite].hash);
    const early = ks.earlySecret(psk ? psk.state.psk : null);
    const now = cfg.now();

    // 0-RTT (RFC 8446 §4.2.10, §8): first identity, same suite and ALPN, fresh, never seen before.
    let earlyAccepted = false;
    if (hello.earlyData && psk && psk.index === 0 && !afterHrr && cfg.maxEarlyData > 0 && psk.state.maxEarlyData > 0) {
      const st = psk.state;
      const clientAge = (hello.psk!.identities[0]!.obfuscatedAge - st.ageAdd) >>> 0;
      const fresh = Math.abs(clientAge - (now - st.issuedAt)) <= EARLY_DATA_AGE_WINDOW_MS;
      if (st.suite === suite && st.alpn === alpn && fresh) earlyAccepted = cfg.antiReplay.use(st.id, st.issuedAt + st.lifetimeSeconds * 1000, now);
    }
    if (hello.earlyData) {
      // Accepted: the ticket's max_early_data_size is what the client may send (RFC 8446 §4.2.10), not the current config.
      const maxEarlyData = earlyAccepted ? psk!.state.maxEarlyData : Math.max(cfg.maxEarlyData, psk?.state.maxEarlyData ?? 0);
      this.emit({ type: 'earlyData', accepted: earlyAccepted, maxEarlyData });
    }
    if (earlyAccepted) {
      const chHash = this.transcript.digest();
      const cets = ks.clientEarlyTrafficSecret(early, chHash);
      this.log('CLIENT_EARLY_TRAFFIC_SECRET', cets);
      this.setEarlyExporter(ks, ks.earlyExporterMasterSecret(early, chHash));
      this.emit({ type: 'secret', level: 'early', direction: 'read', suite, secret: cets });
    }

    let shared: Uint8Array | null = null;
    let ourShare: Uint8Array | null = null;
    if (share) {
      const g = codeToName(NamedGroupCode, share.group)!;
      const priv = cfg.raw.keySharePrivateKeys?.[g];
      if (priv) {
        const k = p.keyExchange(g).generate(priv);
        shared = k.complete(share.share);
        ourShare = k.share;
      } else {
        const r = p.keyExchange(g).respond(share.share);
        if (r) {
          shared = r.secret;
          ourShare = r.share;
        }
      }
      if (!shared || !ourShare) throw tlsError(Alert.illegal_parameter, 'invalid client key share');
    }
    const shExts: Extension[] = [];
    if (psk) shExts.push({ type: X.pre_shared_key, data: Uint8Array.of(psk.index >> 8, psk.index & 0xff) });
    if (share) {
      const d = new Uint8Array(4 + ourShare!.length);
      d[0] = share.group >> 8;
      d[1] = share.group & 0xff;
      d[2] = ourShare!.length >> 8;
      d[3] = ourShare!.length & 0xff;
      d.set(ourShare!, 4);
      shExts.push({ type: X.key_share, data: d });
    }
    shExts.push({ type: X.supported_versions, data: Uint8Array.of(0x03, 0x04) });
    const sh = encodeServerHello({ random: cfg.raw.random ?? p.randomBytes(32), sessionId: hello.ch.sessionId, cipherSuite: CipherSuites[suite].code, extensions: shExts });
    this.transcript.add(sh);
    const hs = ks.handshakeSecret(early, shared);
    let th = this.transcript.digest();
    const cHs = ks.clientHandshakeTrafficSecret(hs, th);
    const sHs = ks.serverHandshakeTrafficSecret(hs, th);
    this.log('CLIENT_HANDSHAKE_TRAFFIC_SECRET', cHs);
    this.log('SERVER_HANDSHAKE_TRAFFIC_SECRET', sHs);
    this.emit({ type: 'send', level: 'initial', data: sh });
    this.emit({ type: 'secret', level: 'handshake', direction: 'write', suite, secret: sHs });
    // TCP with 0-RTT: the client's next messages use the early key until EndOfEarlyData.
    const waitEoed = earlyAccepted && !cfg.quic;
    if (!waitEoed) this.emit({ type: 'secret', level: 'handshake', direction: 'read', suite, secret: cHs });

    const eeExts: Extension[] = [];
    if (hello.sni !== null && !psk) eeExts.push({ type: X.server_name, data: new Uint8Array(0) });
    if (alpn !== null) eeExts.push(encodeAlpn([alpn]));
    if (earlyAccepted) eeExts.push({ type: X.early_data, data: new Uint8Array(0) });
    if (cfg.quic) eeExts.push({ type: X.quic_transport_parameters, data: cfg.quic.transportParameters });
    const flight: Uint8Array[] = [encodeExtensionsMessage(H.encrypted_extensions, eeExts)];
    this.transcript.add(flight[0]!);
    let crSchemes: number[] | null = null;
    let scheme: SignatureScheme | null = null;
    if (!psk) {
      if (eff.clientAuth !== 'none') {
        // Only schemes valid in CertificateVerify: this list governs the client's CertificateVerify (RFC 8446 §4.3.2, §4.4.3).
        crSchemes = cfg.schemes.filter((s) => certificateVerifyScheme(s) && p.signatureSchemes.includes(s)).map((s) => SignatureSchemeCode[s]);
        const cr = encodeCertificateRequest({ context: new Uint8Array(0), extensions: [encodeU16List(X.signature_algorithms, crSchemes)] });
        this.transcript.add(cr);
        flight.push(cr);
      }
      const cert = encodeCertificate({ context: new Uint8Array(0), entries: eff.id.chain.map((c) => ({ cert: c, extensions: [] })) });
      this.transcript.add(cert);
      flight.push(cert);
      scheme = this.chooseScheme(hello, eff);
      const sig = eff.id.key.sign(scheme, certificateVerifyContent(true, this.transcript.digest()));
      const cv = encodeCertificateVerify({ scheme: SignatureSchemeCode[scheme], signature: sig });
      this.transcript.add(cv);
      flight.push(cv);
    }
    const verifyData = ks.finishedMac(sHs, this.transcript.digest());
    const fin = encodeFinished(verifyData);
    this.transcript.add(fin);
    this.setOwnFinished(verifyData);
    flight.push(fin);
    for (const m of flight) this.emit({ type: 'send', level: 'handshake', data: m });
    const master = ks.masterSecret(hs);
    th = this.transcript.digest();
    const cAp = ks.clientApplicationTrafficSecret(master, th);
    const sAp = ks.serverApplicationTrafficSecret(master, th);
    const exporter = ks.exporterMasterSecret(master, th);
    this.log('SERVER_TRAFFIC_SECRET_0', sAp);
    this.log('EXPORTER_SECRET', exporter);
    this.emit({ type: 'secret', level: 'application', direction: 'write', suite, secret: sAp });

    const group = share ? codeToName(NamedGroupCode, share.group) : null;
    this.info = {
      ...this.info,
      suite,
      group,
      signatureScheme: scheme,
      alpn,
      serverName: hello.sni,
      resumed: !!psk,
      earlyDataAccepted: earlyAccepted,
      peerTransportParameters: hello.transportParameters,
      peerCertificates: psk?.state.clientLeaf ? [psk.state.clientLeaf] : [],
    };
    const n: Negotiated = {
      suite,
      ks,
      cHs,
      cAp,
      sAp,
      master,
      exporter,
      alpn,
      sni: hello.sni,
      ticketsWanted: hello.pskModes.includes(1) || (cfg.allowPskOnly && hello.pskModes.includes(0)),
      crSchemes,
      clientAuth: eff.clientAuth,
      clientVerifier: eff.clientVerifier,
      clientLeaf: psk?.state.clientLeaf ?? null,
    };
    if (waitEoed) return { kind: 'waitEndOfEarlyData', n };
    return crSchemes ? { kind: 'waitClientCertificate', n } : { kind: 'waitClientFinished', n };
  }

  // ------------------------------------------------------------------ client flight

  private onEndOfEarlyData(s: Extract<State, { kind: 'waitEndOfEarlyData' }>, msg: Message): State {
    expectEmpty(msg.body, 'EndOfEarlyData');
    this.transcript.add(msg.raw);
    this.emit({ type: 'secret', level: 'handshake', direction: 'read', suite: s.n.suite, secret: s.n.cHs });
    return s.n.crSchemes ? { kind: 'waitClientCertificate', n: s.n } : { kind: 'waitClientFinished', n: s.n };
  }

  private onClientCertificate(s: Extract<State, { kind: 'waitClientCertificate' }>, msg: Message): State {
    const c = parseCertificate(msg.body);
    if (c.context.length !== 0) throw tlsError(Alert.illegal_parameter, 'client Certificate context does not match the request');
    if (c.entries.length === 0) {
      if (s.n.clientAuth === 'require') throw tlsError(Alert.certificate_required, 'client sent no certificate but one is required');
      this.transcript.add(msg.raw);
      return { kind: 'waitClientFinished', n: s.n };
    }
    // Entry extensions must correspond to those of our CertificateRequest (RFC 8446 §4.4.2); it asks
    // for none valid in a CertificateEntry (signature_algorithms is not).
    checkCertificateEntryExtensions(c.entries, () => false, 'client');
    const chain = c.entries.map((e) => e.cert);
    let spki: Uint8Array;
    try {
      spki = certificateSpki(chain[0]!);
    } catch {
      throw tlsError(Alert.bad_certificate, 'client leaf certificate is not valid X.509');
    }
    const verifier = s.n.clientVerifier!;
    runVerifier(() => verifier.verifyClient(chain, this.cfg.now(), this.provider));
    this.transcript.add(msg.raw);
    this.info = { ...this.info, peerCertificates: chain.map((x) => x.slice()) };
    return { kind: 'waitClientCertificateVerify', n: { ...s.n, clientLeaf: chain[0]!.slice() }, spki: spki.slice() };
  }

  private onClientCertificateVerify(s: Extract<State, { kind: 'waitClientCertificateVerify' }>, msg: Message): State {
    const cv = parseCertificateVerify(msg.body);
    const scheme = codeToName(SignatureSchemeCode, cv.scheme);
    if (!scheme || !s.n.crSchemes!.includes(cv.scheme)) throw tlsError(Alert.illegal_parameter, 'client signed with a scheme we did not request');
    if (!certificateVerifyScheme(scheme)) throw tlsError(Alert.illegal_parameter, `client CertificateVerify uses ${scheme}: RSA signatures in TLS 1.3 CertificateVerify must be RSASSA-PSS (RFC 8446 §4.4.3)`);
    const content = certificateVerifyContent(false, this.transcript.digest());
    if (!this.provider.verify(scheme, s.spki, content, cv.signature)) throw tlsError(Alert.decrypt_error, 'client CertificateVerify signature is invalid');
    this.transcript.add(msg.raw);
    return { kind: 'waitClientFinished', n: s.n };
  }

  private onClientFinished(s: Extract<State, { kind: 'waitClientFinished' }>, msg: Message): State {
    const n = s.n;
    const expected = n.ks.finishedMac(n.cHs, this.transcript.digest());
    if (!bytesEqual(expected, msg.body)) throw tlsError(Alert.decrypt_error, 'client Finished does not verify');
    this.transcript.add(msg.raw);
    this.setPeerFinished(msg.body);
    const resMaster = n.ks.resumptionMasterSecret(n.master, this.transcript.digest());
    this.log('CLIENT_TRAFFIC_SECRET_0', n.cAp);
    this.emit({ type: 'secret', level: 'application', direction: 'read', suite: n.suite, secret: n.cAp });
    this.info = { ...this.info, peerCertificates: this.info.peerCertificates ?? [] };
    this.setExporter(n.ks, n.exporter);
    this.emit({ type: 'handshakeComplete', info: this.info as Required<typeof this.info> });
    if (n.ticketsWanted) this.sendTickets(n, resMaster);
    return { kind: 'connected', suite: n.suite, ks: n.ks, readSecret: n.cAp, writeSecret: n.sAp };
  }

  private sendTickets(n: Negotiated, resMaster: Uint8Array): void {
    const cfg = this.cfg;
    const now = cfg.now();
    for (let i = 0; i < cfg.ticketCount; i++) {
      const nonce = Uint8Array.of(i);
      const r = this.provider.randomBytes(4);
      const ageAdd = ((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0;
      const state: TicketState = {
        suite: n.suite,
        psk: n.ks.resumptionPsk(resMaster, nonce),
        ageAdd,
        issuedAt: now,
        lifetimeSeconds: cfg.ticketLifetime,
        maxEarlyData: cfg.maxEarlyData,
        alpn: n.alpn,
        serverName: n.sni,
        id: this.provider.randomBytes(16),
        clientLeaf: n.clientLeaf,
      };
      const plain = encodeTicketState(state);
      // A ticket is at most 2^16-1 bytes: a huge client certificate means no resumption, not an error.
      if (plain.length > 0xffff - 64) return;
      const ticket = cfg.ticketKeys.seal(plain);
      const msg = encodeNewSessionTicket({ lifetime: cfg.ticketLifetime, ageAdd, nonce, ticket, maxEarlyData: cfg.maxEarlyData > 0 ? cfg.maxEarlyData : null });
      this.emit({ type: 'send', level: 'application', data: msg });
    }
  }

  // ------------------------------------------------------------------ post-handshake

  updateKeys(requestPeer: boolean): void {
    const s = this.state;
    if (this.cfg.quic) throw new Error('updateKeys: QUIC performs key updates itself (RFC 9001 §6)');
    if (s.kind !== 'connected') throw new Error('updateKeys before the handshake completed');
    this.guard(() => {
      this.state = this.sendKeyUpdate(s, requestPeer);
    });
  }
}

export { ConfigError };
