/**
 * TLS client and server configuration, validated at construction (ConfigError with a message
 * that says what to fix). Names are the IANA names used in the provider interface.
 */
import type { CryptoProvider, NamedGroup, SignatureScheme, SigningKey } from '../crypto/provider.js';
import { NamedGroupCode, SignatureSchemeCode } from '../crypto/provider.js';
import { ConfigError } from '../errors.js';
import { certificateSpki } from '../x509/spki.js';
import type { CertificateVerifier, CipherSuite, KeyLogger, SessionTicket } from './api.js';
import { CipherSuites } from './api.js';
import { bytesEqual } from './codec.js';
import { AntiReplay, TicketKeyring } from './tickets.js';

export const DEFAULT_SUITES: CipherSuite[] = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
export const DEFAULT_GROUPS: NamedGroup[] = ['x25519mlkem768', 'x25519', 'secp256r1', 'secp384r1'];
export const DEFAULT_KEY_SHARES: NamedGroup[] = ['x25519mlkem768', 'x25519'];
export const DEFAULT_SCHEMES: SignatureScheme[] = [
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ed25519',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
];

export interface QuicTlsConfig {
  /** Our quic_transport_parameters extension body (RFC 9001 §8.2), opaque to TLS. */
  transportParameters: Uint8Array;
}

/** A certificate chain with its private key. `key`: a loaded SigningKey or private-key DER (PKCS#8/SEC1/PKCS#1). */
export interface CertifiedKey {
  chain: Uint8Array[];
  key: SigningKey | Uint8Array;
}

export interface TlsClientConfig {
  provider: CryptoProvider;
  /** DNS name or IP literal of the server; sent as SNI unless it is an IP literal (RFC 6066 §3). */
  serverName?: string;
  alpn?: string[];
  /** Offered suites, by preference (default: all three). */
  cipherSuites?: CipherSuite[];
  /** supported_groups, by preference (default: x25519mlkem768, x25519, secp256r1, secp384r1). */
  groups?: NamedGroup[];
  /** Groups we send a key share for in the first ClientHello (default: x25519mlkem768 + x25519, limited to `groups`). */
  keyShares?: NamedGroup[];
  /** signature_algorithms we accept (default: ECDSA P-256/P-384, Ed25519, RSA-PSS). */
  signatureSchemes?: SignatureScheme[];
  /** Checks the server's chain. Required unless insecureSkipVerify. */
  verifier?: CertificateVerifier;
  /** Testing only: accept any server certificate (CertificateVerify is still checked). */
  insecureSkipVerify?: boolean;
  /** Sent when the server asks for a client certificate. */
  clientCertificate?: CertifiedKey;
  /** A ticket from an earlier connection to offer for resumption. */
  resumption?: SessionTicket;
  /** Send 0-RTT when `resumption` allows it (default false). */
  earlyData?: boolean;
  /** psk_key_exchange_modes offered, by preference (default ['psk_dhe_ke']; 'psk_ke' resumes without (EC)DHE). */
  pskModes?: ('psk_dhe_ke' | 'psk_ke')[];
  /** QUIC mode (RFC 9001). Absent: TCP mode (records, middlebox compatibility). */
  quic?: QuicTlsConfig;
  keyLog?: KeyLogger;
  /** Milliseconds since the epoch; default Date.now (ticket ages, certificate validity). */
  now?: () => number;
  /** Test hooks: fixed ClientHello.random / legacy_session_id / key-share private keys (RFC 8448 reproduction). */
  random?: Uint8Array;
  sessionId?: Uint8Array;
  keySharePrivateKeys?: Partial<Record<NamedGroup, Uint8Array>>;
  /** Test hook: send exactly these ClientHello bytes (a framed handshake message) instead of building one. */
  clientHelloOverride?: Uint8Array;
  /** Test hook: the second ClientHello (after a HelloRetryRequest) to send verbatim. */
  clientHello2Override?: Uint8Array;
}

export type ClientAuthMode = 'none' | 'request' | 'require';

/** What the server's resolver sees of a ClientHello. */
export interface ClientHelloInfo {
  serverName: string | null;
  alpn: string[];
  cipherSuites: CipherSuite[];
  groups: NamedGroup[];
  signatureSchemes: SignatureScheme[];
}

/** The certificate and per-connection settings a server uses for one handshake. */
export interface ServerIdentity extends CertifiedKey {
  /** Overrides the config's ALPN list for this connection. */
  alpn?: string[];
  /** Overrides the config's client authentication for this connection. */
  clientAuth?: ClientAuthMode;
  clientVerifier?: CertificateVerifier;
}

export interface TicketOptions {
  /** NewSessionTickets sent after the handshake (default 1; 0 disables resumption). */
  count?: number;
  /** Ticket lifetime in seconds (default 7200, max 604800). */
  lifetimeSeconds?: number;
  /** Shared ticket keys (default: one generated per config object). */
  keys?: TicketKeyring;
  /** Allow psk_ke (PSK without (EC)DHE) when the client offers only that (default false). */
  allowPskOnly?: boolean;
}

export interface TlsServerConfig {
  provider: CryptoProvider;
  /** A fixed certificate, or… */
  identity?: ServerIdentity;
  /** …a resolver called with each ClientHello (SNI-based selection etc.), sync or async. */
  resolve?: (hello: ClientHelloInfo) => ServerIdentity | Promise<ServerIdentity>;
  /** Protocols by server preference. With QUIC, required. */
  alpn?: string[];
  /** Abort with no_application_protocol when the client offers no ALPN (always true in QUIC). */
  requireAlpn?: boolean;
  cipherSuites?: CipherSuite[];
  groups?: NamedGroup[];
  signatureSchemes?: SignatureScheme[];
  clientAuth?: ClientAuthMode;
  clientVerifier?: CertificateVerifier;
  /** Always send a HelloRetryRequest with a cookie first (address/liveness check). */
  helloRetryCookie?: boolean;
  tickets?: TicketOptions;
  /** Accept 0-RTT from tickets issued with this limit (TCP: bytes; QUIC: any nonzero → 0xffffffff). 0 disables. */
  maxEarlyData?: number;
  /** Shared anti-replay state (default: one per config object). */
  antiReplay?: AntiReplay;
  quic?: QuicTlsConfig;
  keyLog?: KeyLogger;
  now?: () => number;
  /** Test hooks. */
  random?: Uint8Array;
  keySharePrivateKeys?: Partial<Record<NamedGroup, Uint8Array>>;
}

const SUITE_NAMES = Object.keys(CipherSuites) as CipherSuite[];

function checkNames<T extends string>(kind: string, list: T[] | undefined, known: readonly string[], supported: readonly string[] | null, dflt: T[]): T[] {
  const v = list ?? dflt.filter((x) => supported === null || supported.includes(x));
  if (v.length === 0) throw new ConfigError(`no ${kind} configured: pass at least one of ${known.join(', ')}`);
  for (const x of v) {
    if (!known.includes(x)) throw new ConfigError(`unknown ${kind} "${x}"; known: ${known.join(', ')}`);
    if (supported && !supported.includes(x)) throw new ConfigError(`${kind} "${x}" is not supported by the ${'provider'}; it supports ${supported.join(', ')}`);
  }
  if (new Set(v).size !== v.length) throw new ConfigError(`duplicate ${kind} in list`);
  return [...v];
}

export function checkAlpn(list: string[] | undefined): string[] {
  if (!list) return [];
  for (const p of list) {
    const n = new TextEncoder().encode(p).length;
    if (n === 0) throw new ConfigError('empty ALPN protocol name: every ALPN entry must be 1..255 bytes');
    if (n > 255) throw new ConfigError(`ALPN protocol name "${p.slice(0, 20)}…" is ${n} bytes; the limit is 255`);
  }
  return [...list];
}

export function isIpLiteral(name: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return true;
  const n = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  return n.includes(':') && /^[0-9a-fA-F:.]+(%.+)?$/.test(n);
}

export interface LoadedIdentity {
  chain: Uint8Array[];
  key: SigningKey;
  alpn: string[] | null;
  clientAuth: ClientAuthMode | null;
  clientVerifier: CertificateVerifier | null;
}

/** Loads and checks a certificate + key: the key must match the leaf's public key. Throws ConfigError. */
export function loadIdentity(provider: CryptoProvider, id: CertifiedKey & Partial<ServerIdentity>, what: string): LoadedIdentity {
  if (!id.chain || id.chain.length === 0) throw new ConfigError(`${what}: the certificate chain is empty; pass chain: [leafDer, ...intermediates]`);
  if (!id.key) throw new ConfigError(`${what}: missing private key; pass key (PKCS#8/SEC1/PKCS#1 DER or a SigningKey)`);
  const key = id.key instanceof Uint8Array ? provider.loadPrivateKey(id.key) : id.key;
  let spki: Uint8Array;
  try {
    spki = certificateSpki(id.chain[0]!);
  } catch (e) {
    throw new ConfigError(`${what}: the leaf certificate is not valid DER X.509 (${(e as Error).message}); pass DER, not PEM`);
  }
  if (!bytesEqual(spki, key.spki)) throw new ConfigError(`${what}: the private key does not match the leaf certificate's public key`);
  const alpn = id.alpn ? checkAlpn(id.alpn) : null;
  if (id.clientAuth && id.clientAuth !== 'none' && !id.clientVerifier) {
    // A per-identity verifier may come from the server config; checked where both are known.
  }
  return { chain: id.chain, key, alpn, clientAuth: id.clientAuth ?? null, clientVerifier: id.clientVerifier ?? null };
}

export interface ClientSettings {
  provider: CryptoProvider;
  serverName: string | null;
  sni: string | null;
  alpn: string[];
  suites: CipherSuite[];
  groups: NamedGroup[];
  keyShares: NamedGroup[];
  schemes: SignatureScheme[];
  verifier: CertificateVerifier | null;
  clientCert: LoadedIdentity | null;
  resumption: SessionTicket | null;
  earlyData: boolean;
  /** Wire codes: psk_ke = 0, psk_dhe_ke = 1. */
  pskModes: number[];
  quic: QuicTlsConfig | null;
  keyLog: KeyLogger | null;
  now: () => number;
  raw: TlsClientConfig;
}

export function normalizeClientConfig(c: TlsClientConfig): ClientSettings {
  if (!c || !c.provider) throw new ConfigError('TlsClient: config.provider is required (nodeProvider or nobleProvider)');
  const p = c.provider;
  const suites = checkNames('cipher suite', c.cipherSuites, SUITE_NAMES, null, DEFAULT_SUITES);
  const groups = checkNames('group', c.groups, Object.keys(NamedGroupCode), p.groups, DEFAULT_GROUPS);
  const keyShares = c.keyShares
    ? checkNames('key share group', c.keyShares, Object.keys(NamedGroupCode), p.groups, [])
    : (() => {
        const d = DEFAULT_KEY_SHARES.filter((g) => groups.includes(g));
        return d.length ? d : [groups[0]!];
      })();
  for (const g of keyShares) if (!groups.includes(g)) throw new ConfigError(`key share group "${g}" is not in groups`);
  const schemes = checkNames('signature scheme', c.signatureSchemes, Object.keys(SignatureSchemeCode), p.signatureSchemes, DEFAULT_SCHEMES);
  if (!c.verifier && !c.insecureSkipVerify)
    throw new ConfigError(
      'TlsClient: no certificate verifier; pass verifier (e.g. a WebPKI verifier with your CA roots) or set insecureSkipVerify: true for testing',
    );
  const alpn = checkAlpn(c.alpn);
  if (c.quic && alpn.length === 0) throw new ConfigError('TlsClient: QUIC requires ALPN (RFC 9001 §8.1); pass alpn, e.g. ["h3"]');
  let serverName: string | null = null;
  let sni: string | null = null;
  if (c.serverName !== undefined) {
    if (c.serverName.length === 0) throw new ConfigError('TlsClient: serverName is empty');
    serverName = c.serverName;
    if (!isIpLiteral(serverName)) {
      const host = serverName.endsWith('.') ? serverName.slice(0, -1) : serverName;
      if (!/^[\x21-\x7e]+$/.test(host) || host.length > 253)
        throw new ConfigError(`TlsClient: serverName "${serverName}" is not an ASCII host name; convert IDNs to punycode (A-labels)`);
      sni = host.toLowerCase();
    }
  }
  const clientCert = c.clientCertificate ? loadIdentity(p, c.clientCertificate, 'clientCertificate') : null;
  if (c.random && c.random.length !== 32) throw new ConfigError('TlsClient: random must be 32 bytes');
  if (c.sessionId && c.sessionId.length > 32) throw new ConfigError('TlsClient: sessionId must be at most 32 bytes');
  const modes = c.pskModes ?? ['psk_dhe_ke'];
  if (modes.length === 0 || modes.some((m) => m !== 'psk_ke' && m !== 'psk_dhe_ke'))
    throw new ConfigError(`TlsClient: pskModes must be a non-empty list of 'psk_dhe_ke' / 'psk_ke'`);
  return {
    provider: p,
    serverName,
    sni,
    alpn,
    suites,
    groups,
    keyShares,
    schemes,
    verifier: c.verifier ?? null,
    clientCert,
    resumption: c.resumption ?? null,
    earlyData: !!c.earlyData,
    pskModes: [...new Set(modes)].map((m) => (m === 'psk_ke' ? 0 : 1)),
    quic: c.quic ?? null,
    keyLog: c.keyLog ?? null,
    now: c.now ?? (() => Date.now()),
    raw: c,
  };
}

/**
 * Per-connection settings for a server built from a shared config: the config object keeps its
 * cached normalized form (ticket keys, anti-replay, loaded keys) while these vary per connection.
 */
export interface ServerConnectionOptions {
  keyLog?: KeyLogger;
  /** QUIC: this connection's transport parameters (they carry connection IDs); the config must have `quic`. */
  quicTransportParameters?: Uint8Array;
  /** This connection's clock (ms since the epoch), e.g. a driver's or simulator's time. */
  now?: () => number;
}

export function serverSettingsFor(c: TlsServerConfig, conn?: ServerConnectionOptions): ServerSettings {
  const base = normalizeServerConfig(c);
  if (!conn) return base;
  let quic = base.quic;
  if (conn.quicTransportParameters) {
    if (!quic) throw new ConfigError('TlsServer: quicTransportParameters given but the config has no quic section (QUIC mode)');
    quic = { transportParameters: conn.quicTransportParameters };
  }
  return { ...base, keyLog: conn.keyLog ?? base.keyLog, quic, now: conn.now ?? base.now };
}

export interface ServerSettings {
  provider: CryptoProvider;
  identity: LoadedIdentity | null;
  resolve: TlsServerConfig['resolve'] | null;
  alpn: string[];
  requireAlpn: boolean;
  suites: CipherSuite[];
  groups: NamedGroup[];
  schemes: SignatureScheme[];
  clientAuth: ClientAuthMode;
  clientVerifier: CertificateVerifier | null;
  helloRetryCookie: boolean;
  ticketCount: number;
  ticketLifetime: number;
  allowPskOnly: boolean;
  ticketKeys: TicketKeyring;
  maxEarlyData: number;
  antiReplay: AntiReplay;
  quic: QuicTlsConfig | null;
  keyLog: KeyLogger | null;
  now: () => number;
  raw: TlsServerConfig;
}

/** Normalized settings are cached per config object, so ticket keys and anti-replay state are shared by its connections. */
const serverCache = new WeakMap<TlsServerConfig, ServerSettings>();

export function normalizeServerConfig(c: TlsServerConfig): ServerSettings {
  const cached = serverCache.get(c);
  if (cached) return cached;
  if (!c || !c.provider) throw new ConfigError('TlsServer: config.provider is required (nodeProvider or nobleProvider)');
  const p = c.provider;
  if (!c.identity && !c.resolve) throw new ConfigError('TlsServer: pass identity ({ chain, key }) or a resolve(hello) callback');
  const identity = c.identity ? loadIdentity(p, c.identity, 'TlsServer identity') : null;
  const suites = checkNames('cipher suite', c.cipherSuites, SUITE_NAMES, null, DEFAULT_SUITES);
  const groups = checkNames('group', c.groups, Object.keys(NamedGroupCode), p.groups, DEFAULT_GROUPS);
  const schemes = checkNames('signature scheme', c.signatureSchemes, Object.keys(SignatureSchemeCode), p.signatureSchemes, DEFAULT_SCHEMES);
  const alpn = checkAlpn(c.alpn);
  const clientAuth = c.clientAuth ?? 'none';
  if (!['none', 'request', 'require'].includes(clientAuth)) throw new ConfigError(`clientAuth must be 'none', 'request' or 'require'`);
  const clientVerifier = c.clientVerifier ?? null;
  if (clientAuth !== 'none' && !clientVerifier)
    throw new ConfigError(`TlsServer: clientAuth '${clientAuth}' needs clientVerifier (a CertificateVerifier for client chains)`);
  if (identity?.clientAuth && identity.clientAuth !== 'none' && !identity.clientVerifier && !clientVerifier)
    throw new ConfigError('TlsServer identity: clientAuth needs a clientVerifier');
  const t = c.tickets ?? {};
  const ticketCount = t.count ?? 1;
  const ticketLifetime = t.lifetimeSeconds ?? 7200;
  if (!Number.isInteger(ticketCount) || ticketCount < 0 || ticketCount > 16) throw new ConfigError('tickets.count must be an integer in 0..16');
  if (!Number.isInteger(ticketLifetime) || ticketLifetime < 1 || ticketLifetime > 604800)
    throw new ConfigError('tickets.lifetimeSeconds must be 1..604800 (7 days, RFC 8446 §4.6.1)');
  const maxEarlyData = c.maxEarlyData ?? 0;
  if (!Number.isInteger(maxEarlyData) || maxEarlyData < 0 || maxEarlyData > 0xffffffff) throw new ConfigError('maxEarlyData must be an integer in 0..2^32-1');
  const s: ServerSettings = {
    provider: p,
    identity,
    resolve: c.resolve ?? null,
    alpn,
    requireAlpn: !!c.requireAlpn || !!c.quic,
    suites,
    groups,
    schemes,
    clientAuth,
    clientVerifier,
    helloRetryCookie: !!c.helloRetryCookie,
    ticketCount,
    ticketLifetime,
    allowPskOnly: !!t.allowPskOnly,
    ticketKeys: t.keys ?? new TicketKeyring(p),
    maxEarlyData: c.quic && maxEarlyData > 0 ? 0xffffffff : maxEarlyData,
    antiReplay: c.antiReplay ?? new AntiReplay(),
    quic: c.quic ?? null,
    keyLog: c.keyLog ?? null,
    now: c.now ?? (() => Date.now()),
    raw: c,
  };
  if (c.random && c.random.length !== 32) throw new ConfigError('TlsServer: random must be 32 bytes');
  serverCache.set(c, s);
  return s;
}
