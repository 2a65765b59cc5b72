/**
 * A drop-in `node:tls` layer over Petrel's TLS 1.3: code written for node:tls works by changing
 * only the import.
 *
 *   import tls from '@petrel/tls-core/compat/node-tls';   // was: import tls from 'node:tls'
 *   const s = tls.connect(443, 'example.com', { ALPNProtocols: ['http/1.1'] }, () => console.log(s.authorized));
 *
 * Built on the public pieces of Petrel: `TlsSocket` (tcp/socket.ts) carries the connection, the
 * handshake cores (TlsClient / TlsServer) and WebPkiVerifier do the work. What node:tls users see
 * is translated here: node option names and formats, node-shaped certificate objects, OpenSSL-style
 * verification error codes, `authorized` / `authorizationError`, session Buffers, and tls.Server as
 * a net.Server.
 *
 * Only TLS 1.3 is spoken. Options that ask for anything else (TLS 1.2 and below, renegotiation,
 * `secureProtocol`, OpenSSL cipher strings other than TLS 1.3 suite names, `pfx`, engines, PSK
 * callbacks, OCSP, shared ticket keys, ...) raise a clear Error at the call, never silently ignored.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type * as NodeTls from 'node:tls';
import { getProvider } from '../crypto/index.js';
import type { CryptoProvider, NamedGroup, SignatureScheme, SigningKey } from '../crypto/provider.js';
import { SignatureSchemeCode } from '../crypto/provider.js';
import { Alert, ProtocolViolation, alertName } from '../errors.js';
import { CipherSuites, type CertificateVerifier, type CipherSuite, type SessionTicket, type TlsSession } from '../handshake/api.js';
import { TlsClient } from '../handshake/client.js';
import { normalizeClientConfig, normalizeServerConfig, type ClientHelloInfo, type ServerIdentity, type TlsClientConfig, type TlsServerConfig } from '../handshake/config.js';
import { TlsServer as TlsServerSession } from '../handshake/server.js';
import { parseSession, serializeSession } from '../tcp/options.js';
import { TlsAlertError, TlsSocket, reportListenerError, type TlsSocketOptions } from '../tcp/socket.js';
import { certificateSpki } from '../x509/spki.js';
import { CertificateError } from '../x509/errors.js';
import { formatIp, parseIpLiteral } from '../x509/identity.js';
import { nodeRootCertificates } from '../x509/node-roots.js';
import { WebPkiVerifier } from '../x509/verifier.js';
import { bytesEqual } from '../x509/cert.js';
import { commonNameConstraintViolation } from '../x509/constraints.js';
import type { ValidatedPath } from '../x509/path.js';
import { pemDecode } from '../util/der.js';

// -------------------------------------------------------------------------------------------------
// Constants and small exports

export const DEFAULT_MIN_VERSION: NodeTls.SecureVersion = 'TLSv1.3';
export const DEFAULT_MAX_VERSION: NodeTls.SecureVersion = 'TLSv1.3';

/** node:tls's option types: code typed against node:tls compiles unchanged. */
export type ConnectionOptions = NodeTls.ConnectionOptions;
export type TlsOptions = NodeTls.TlsOptions;
export type SecureContextOptions = NodeTls.SecureContextOptions;
export type TLSSocketOptions = NodeTls.TLSSocketOptions;
export type SecureVersion = NodeTls.SecureVersion;
export const DEFAULT_ECDH_CURVE = 'auto';
export const DEFAULT_CIPHERS = Object.keys(CipherSuites).join(':');
export const CLIENT_RENEG_LIMIT = 3;
export const CLIENT_RENEG_WINDOW = 600;

/** node:tls `rootCertificates`: the root store Petrel verifies against by default (Node's bundled roots). */
export const rootCertificates: readonly string[] = Object.freeze([...(nodeRootCertificates() ?? [])]);

/** node:tls `getCiphers()`: the names accepted in `ciphersuites` / `ciphers`, lower case like node's list. */
export function getCiphers(): string[] {
  return Object.keys(CipherSuites).map((s) => s.toLowerCase());
}

type Bytes = string | Buffer | Uint8Array;
type KeyInput = Bytes | { pem: Bytes; passphrase?: string };

/** An Error with a node-style `code`. */
type CodedError = Error & { code: string; [k: string]: unknown };

function coded(message: string, code: string, props: Record<string, unknown> = {}): CodedError {
  const e = new Error(message) as CodedError;
  e.code = code;
  Object.assign(e, props);
  return e;
}

/** Thrown at the call for options that Petrel cannot honour (it speaks only TLS 1.3). */
function unsupported(what: string, why: string): CodedError {
  return coded(`${what} is not supported by Petrel's node:tls layer: ${why}`, 'ERR_PETREL_TLS_UNSUPPORTED');
}

const asArray = <T>(x: T | readonly T[] | undefined | null): T[] => (x === undefined || x === null ? [] : Array.isArray(x) ? [...(x as T[])] : [x as T]);
const text = (b: Bytes): string => (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

// -------------------------------------------------------------------------------------------------
// Option translation

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Options shared by connect(), createServer() and createSecureContext(). */
/** What this layer reads of node:tls SecureContextOptions (the public signatures take node's own types). */
interface CtxOpts {
  ca?: Bytes | Bytes[];
  cert?: Bytes | Bytes[];
  key?: KeyInput | KeyInput[];
  passphrase?: string;
  ciphers?: string;
  ciphersuites?: string;
  ecdhCurve?: string;
  sigalgs?: string;
  minVersion?: string;
  maxVersion?: string;
  sessionTimeout?: number;
  honorCipherOrder?: boolean;
  sessionIdContext?: string;
  // Refused with a clear error (see checkUnsupported):
  pfx?: unknown;
  secureProtocol?: string;
  secureOptions?: number;
  crl?: unknown;
  dhparam?: unknown;
  privateKeyEngine?: string;
  privateKeyIdentifier?: string;
  clientCertEngine?: string;
  ticketKeys?: Buffer;
}

function checkVersions(o: CtxOpts): void {
  for (const k of ['minVersion', 'maxVersion'] as const) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (!VERSIONS.includes(v)) throw coded(`Invalid ${k}: "${v}" (use one of ${VERSIONS.join(', ')})`, 'ERR_TLS_INVALID_PROTOCOL_VERSION');
  }
  if (o.maxVersion !== undefined && o.maxVersion !== null && o.maxVersion !== 'TLSv1.3')
    throw unsupported(`maxVersion "${o.maxVersion}"`, 'only TLS 1.3 is implemented; a maximum below TLSv1.3 leaves no version to speak');
}

function checkUnsupported(o: Record<string, unknown>): void {
  const has = (k: string): boolean => o[k] !== undefined && o[k] !== null && o[k] !== false;
  if (has('pfx')) throw unsupported('pfx', 'pass the PEM certificate chain as `cert` and the private key as `key` (openssl pkcs12 -in f.pfx -nodes)');
  if (has('secureProtocol')) throw unsupported('secureProtocol', 'only TLS 1.3 is spoken; use minVersion/maxVersion "TLSv1.3" or leave it out');
  if (has('secureOptions') && o.secureOptions !== 0) throw unsupported('secureOptions', 'OpenSSL option bits have no meaning here');
  if (has('crl')) throw unsupported('crl', 'certificate revocation lists are not checked');
  if (has('dhparam')) throw unsupported('dhparam', 'finite-field DH is not offered in TLS 1.3 by Petrel; groups are set with ecdhCurve');
  for (const k of ['privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine']) if (has(k)) throw unsupported(k, 'OpenSSL engines are not available');
  if (has('ticketKeys')) throw unsupported('ticketKeys', 'session ticket keys are per server and cannot be shared between processes');
  if (has('pskCallback')) throw unsupported('pskCallback', 'external pre-shared keys are not implemented (session resumption works with `session`)');
  if (has('requestOCSP')) throw unsupported('requestOCSP', 'OCSP stapling is not implemented');
  if (has('enableTrace')) throw unsupported('enableTrace', 'there is no OpenSSL trace; use the "keylog" event to decrypt captures');
  if (has('secureContext') && !(o.secureContext instanceof SecureContext))
    throw unsupported('secureContext from node:tls', 'create it with createSecureContext() of this module');
  checkVersions(o as CtxOpts);
}

function suitesFrom(o: CtxOpts): CipherSuite[] | undefined {
  const known = Object.keys(CipherSuites);
  let out: CipherSuite[] | undefined;
  if (o.ciphersuites !== undefined && o.ciphersuites !== null) {
    const names = o.ciphersuites.split(':').filter((s) => s.length > 0);
    if (names.length === 0) throw unsupported('ciphersuites ""', 'an empty list disables TLS 1.3, the only version spoken');
    for (const n of names) if (!known.includes(n)) throw unsupported(`cipher suite "${n}"`, `the TLS 1.3 suites are ${known.join(', ')}`);
    out = names as CipherSuite[];
  }
  if (o.ciphers !== undefined && o.ciphers !== null && o.ciphers !== DEFAULT_CIPHERS) {
    // node:tls takes TLS 1.3 suite names in `ciphers` too; OpenSSL cipher strings for TLS 1.2 have no use here.
    const names = o.ciphers.split(/[:, ]/).filter((s) => s.length > 0);
    const bad = names.filter((n) => !known.includes(n.toUpperCase()));
    if (bad.length > 0) throw unsupported(`ciphers "${bad.join(':')}"`, `OpenSSL cipher strings configure TLS 1.2 and below; list TLS 1.3 suites (${known.join(', ')}) in ciphersuites instead`);
    if (!out) out = names.map((n) => n.toUpperCase() as CipherSuite);
  }
  return out;
}

const CURVES: Record<string, NamedGroup> = {
  x25519: 'x25519',
  prime256v1: 'secp256r1',
  'p-256': 'secp256r1',
  secp256r1: 'secp256r1',
  secp384r1: 'secp384r1',
  'p-384': 'secp384r1',
  x25519mlkem768: 'x25519mlkem768',
};

function groupsFrom(o: CtxOpts): NamedGroup[] | undefined {
  const c = o.ecdhCurve;
  if (c === undefined || c === null || c === 'auto') return undefined;
  const out: NamedGroup[] = [];
  for (const name of c.split(':').filter((s) => s.length > 0)) {
    const g = CURVES[name.toLowerCase()];
    if (!g) throw unsupported(`ecdhCurve "${name}"`, `the groups are X25519, P-256 (prime256v1), P-384 (secp384r1) and X25519MLKEM768`);
    if (!out.includes(g)) out.push(g);
  }
  if (out.length === 0) throw unsupported('ecdhCurve ""', 'name at least one group or "auto"');
  return out;
}

function schemesFrom(o: CtxOpts): SignatureScheme[] | undefined {
  if (o.sigalgs === undefined || o.sigalgs === null) return undefined;
  const known = Object.keys(SignatureSchemeCode);
  const out: SignatureScheme[] = [];
  for (const n of o.sigalgs.split(':').filter((s) => s.length > 0)) {
    if (!known.includes(n)) throw unsupported(`sigalgs "${n}"`, `use TLS 1.3 (IANA) scheme names: ${known.join(', ')}`);
    out.push(n as SignatureScheme);
  }
  return out;
}

/** ALPN protocols: string[], Buffer[] / Uint8Array[], or one Buffer / Uint8Array in wire format (length-prefixed). */
function alpnFrom(x: unknown): string[] | undefined {
  if (x === undefined || x === null) return undefined;
  if (x instanceof Uint8Array) {
    const out: string[] = [];
    for (let i = 0; i < x.length; ) {
      const n = x[i]!;
      if (n === 0 || i + 1 + n > x.length) throw coded('ALPNProtocols: malformed wire format (each entry is a length byte then 1..255 bytes)', 'ERR_INVALID_ARG_VALUE');
      out.push(Buffer.from(x.subarray(i + 1, i + 1 + n)).toString('latin1'));
      i += 1 + n;
    }
    return out;
  }
  if (Array.isArray(x)) return x.map((p) => (typeof p === 'string' ? p : Buffer.from(p as Uint8Array).toString('latin1')));
  throw coded('ALPNProtocols must be an array of strings or Buffers, or a Buffer in wire format', 'ERR_INVALID_ARG_TYPE');
}

function certDers(x: Bytes | Bytes[] | undefined, what: string): Uint8Array[][] {
  return asArray(x).map((pem, i) => {
    let blocks: { label: string; der: Uint8Array }[];
    try {
      blocks = pemDecode(text(pem));
    } catch (e) {
      throw coded(`${what}[${i}]: cannot read PEM (${(e as Error).message})`, 'ERR_INVALID_ARG_VALUE');
    }
    const ders = blocks.filter((b) => b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE').map((b) => b.der);
    if (ders.length === 0) throw coded(`${what}: no "-----BEGIN CERTIFICATE-----" block; pass PEM text (DER and file names are not accepted, as in node:tls)`, 'ERR_INVALID_ARG_VALUE');
    return ders;
  });
}

function loadKeys(provider: CryptoProvider, x: KeyInput | KeyInput[] | undefined, passphrase: string | undefined): SigningKey[] {
  return asArray(x).map((k) => {
    const pem = typeof k === 'object' && !(k instanceof Uint8Array) ? k.pem : k;
    const pass = typeof k === 'object' && !(k instanceof Uint8Array) ? (k.passphrase ?? passphrase) : passphrase;
    let der: Buffer;
    try {
      // node:crypto reads every PEM key format node:tls reads, encrypted ones included.
      const ko = crypto.createPrivateKey({ key: typeof pem === 'string' ? pem : Buffer.from(pem), format: 'pem', ...(pass !== undefined ? { passphrase: pass } : {}) });
      der = ko.export({ type: 'pkcs8', format: 'der' });
    } catch (e) {
      // node:crypto's own code (e.g. ERR_OSSL_BAD_DECRYPT for a wrong passphrase) is what node:tls reports too.
      throw coded(`key: cannot read the private key (${(e as Error).message})`, (e as { code?: string }).code ?? 'ERR_INVALID_ARG_VALUE');
    }
    return provider.loadPrivateKey(Uint8Array.from(der));
  });
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

// -------------------------------------------------------------------------------------------------
// SecureContext

interface Identity {
  chain: Uint8Array[];
  key: SigningKey;
}

/** node:tls `SecureContext`: certificates, keys, trust anchors and settings, shared by connections. */
export class SecureContext {
  /** node:tls exposes the native context here; this layer keeps itself. */
  readonly context: SecureContext;
  readonly provider: CryptoProvider;
  /** Certificate chains paired with their keys (several for different key types, as node:tls allows). */
  readonly identities: Identity[];
  /** Trust anchors (DER) from `ca`; null: Node's root store. */
  readonly ca: Uint8Array[] | null;
  readonly cipherSuites: CipherSuite[] | undefined;
  readonly groups: NamedGroup[] | undefined;
  readonly signatureSchemes: SignatureScheme[] | undefined;
  readonly sessionTimeout: number | undefined;
  private verifierCache: WebPkiVerifier | null = null;
  private serverIdentityCache = new Map<string, ServerIdentity>();

  constructor(opts: SecureContextOptions = {}) {
    const options = opts as unknown as CtxOpts;
    checkUnsupported(options as Record<string, unknown>);
    this.context = this;
    this.provider = getProvider('node');
    this.cipherSuites = suitesFrom(options);
    this.groups = groupsFrom(options);
    this.signatureSchemes = schemesFrom(options);
    this.sessionTimeout = options.sessionTimeout;
    const ca = certDers(options.ca, 'ca').flat();
    this.ca = ca.length > 0 ? ca : null;
    const chains = certDers(options.cert, 'cert');
    const keys = loadKeys(this.provider, options.key, options.passphrase);
    if (chains.length > 0 && keys.length === 0) throw coded('cert given without key: pass the private key as `key`', 'ERR_INVALID_ARG_VALUE');
    if (keys.length > 0 && chains.length === 0) throw coded('key given without cert: pass the certificate chain as `cert`', 'ERR_INVALID_ARG_VALUE');
    // Pair each chain with the key whose public key is the leaf's (node:tls / OpenSSL pair them by type).
    this.identities = chains.map((chain, i) => {
      let spki: Uint8Array;
      try {
        spki = certificateSpki(chain[0]!);
      } catch (e) {
        throw coded(`cert[${i}]: not a valid X.509 certificate (${(e as Error).message})`, 'ERR_INVALID_ARG_VALUE');
      }
      const key = keys.find((k) => sameBytes(k.spki, spki));
      if (!key) throw coded(`cert[${i}]: no private key in \`key\` matches this certificate (key values mismatch)`, 'ERR_OSSL_X509_KEY_VALUES_MISMATCH');
      return { chain, key };
    });
  }

  /** The verifier for peers' certificates: `ca`, or Node's root store. */
  verifier(): WebPkiVerifier {
    // allowCaLeaf: OpenSSL accepts a CA certificate (basicConstraints CA:TRUE) as the leaf, and an
    // untrusted self-signed one (openssl req -x509) is DEPTH_ZERO_SELF_SIGNED_CERT, not a rejection of its kind.
    return (this.verifierCache ??= new WebPkiVerifier({ ...(this.ca ? { roots: this.ca } : {}), allowCaLeaf: true }));
  }

  /** The identity for a ClientHello: the first whose key can sign with a scheme the client offers. */
  pick(schemes: readonly SignatureScheme[]): Identity | null {
    if (this.identities.length === 0) return null;
    return this.identities.find((id) => id.key.schemes.some((s) => schemes.includes(s))) ?? this.identities[0]!;
  }

  /** A handshake-core identity (cached, so that keys are loaded once). */
  serverIdentity(id: Identity, alpn: string[] | undefined, clientAuth: 'none' | 'request' | 'require' | undefined, clientVerifier: CertificateVerifier | undefined): ServerIdentity {
    const key = `${this.identities.indexOf(id)}|${alpn ? alpn.join(',') : ''}|${clientAuth ?? ''}`;
    let r = this.serverIdentityCache.get(key);
    if (!r || (clientVerifier && r.clientVerifier !== clientVerifier)) {
      r = { chain: id.chain, key: id.key, ...(alpn ? { alpn } : {}), ...(clientAuth ? { clientAuth } : {}), ...(clientVerifier ? { clientVerifier } : {}) };
      if (!clientVerifier) this.serverIdentityCache.set(key, r);
    }
    return r;
  }
}

export function createSecureContext(options: SecureContextOptions = {}): SecureContext {
  return new SecureContext(options);
}

// -------------------------------------------------------------------------------------------------
// Certificates as node:tls shows them

/** node:tls's certificate objects (the same types, so code typed against node:tls compiles unchanged). */
export type PeerCertificate = NodeTls.PeerCertificate;
export type DetailedPeerCertificate = NodeTls.DetailedPeerCertificate;

/** Certificate objects in node's format, made by node:crypto from the same DER node:tls would show. */
function legacyObject(der: Uint8Array): DetailedPeerCertificate | null {
  try {
    return new crypto.X509Certificate(Buffer.from(der)).toLegacyObject() as unknown as DetailedPeerCertificate;
  } catch {
    return null;
  }
}

/** Just what checkServerIdentity reads (subject and subjectaltname), from one parse of the certificate. */
function namesOf(der: Uint8Array): PeerCertificate | null {
  let x: crypto.X509Certificate;
  try {
    x = new crypto.X509Certificate(Buffer.from(der));
  } catch {
    return null;
  }
  const subject: Record<string, string | string[]> = {};
  // X509Certificate.subject: one "KEY=value" per line, node's escaping (as in the legacy object).
  for (const line of x.subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    const have = subject[k];
    subject[k] = have === undefined ? v : Array.isArray(have) ? [...have, v] : [have, v];
  }
  return { subject, ...(x.subjectAltName !== undefined ? { subjectaltname: x.subjectAltName } : {}) } as unknown as PeerCertificate;
}

let rootX509: crypto.X509Certificate[] | null = null;
function rootsAsX509(): crypto.X509Certificate[] {
  if (rootX509) return rootX509;
  rootX509 = [];
  for (const pem of rootCertificates) {
    try {
      rootX509.push(new crypto.X509Certificate(pem));
    } catch {
      // not usable as an anchor
    }
  }
  return rootX509;
}

/**
 * getPeerCertificate(true): the presented chain linked through `issuerCertificate`, completed with
 * the trust anchor that issued its last certificate (from `ca` or the root store) when there is one;
 * a self-issued last certificate points at itself, as node:tls does.
 */
function detailedChain(chain: Uint8Array[], anchors: Uint8Array[] | null): DetailedPeerCertificate | null {
  const objs: DetailedPeerCertificate[] = [];
  const x509s: crypto.X509Certificate[] = [];
  for (const der of chain) {
    const o = legacyObject(der);
    if (!o) break;
    objs.push(o);
    x509s.push(new crypto.X509Certificate(Buffer.from(der)));
  }
  if (objs.length === 0) return null;
  const last = x509s[x509s.length - 1]!;
  if (!last.checkIssued(last)) {
    const pool = anchors ? anchors.map((d) => new crypto.X509Certificate(Buffer.from(d))) : rootsAsX509();
    const anchor = pool.find((a) => last.checkIssued(a) && last.verify(a.publicKey));
    if (anchor) {
      objs.push(anchor.toLegacyObject() as unknown as DetailedPeerCertificate);
      x509s.push(anchor);
    }
  }
  for (let i = 0; i + 1 < objs.length; i++) objs[i]!.issuerCertificate = objs[i + 1]!;
  const top = x509s[x509s.length - 1]!;
  if (top.checkIssued(top)) objs[objs.length - 1]!.issuerCertificate = objs[objs.length - 1]!;
  return objs[0]!;
}

// -------------------------------------------------------------------------------------------------
// checkServerIdentity, as node:tls does it (RFC 6125 rules; the CN only when there is no DNS SAN)

/** Splits node's subjectaltname text ('DNS:a, IP Address:1.2.3.4', entries may be "quoted"). */
function splitAltNames(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '\\' && i + 1 < s.length) cur += s[++i];
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',' && s[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

// Lower case for A-Z only, as node:tls: String#toLowerCase maps e.g. the Kelvin sign (U+212A) to "k".
const labelsOf = (name: string): string[] =>
  name
    .replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32))
    .replace(/\.$/, '')
    .split('.');

/** A presented DNS name (possibly with a wildcard in its leftmost label) against a host name. */
function dnsPatternMatches(hostLabels: string[], pattern: string): boolean {
  if (!pattern) return false;
  const p = labelsOf(pattern);
  if (p.length !== hostLabels.length || p.some((l) => l.length === 0) || p.some((l) => /[^\x21-\x7f]/.test(l))) return false;
  for (let i = 1; i < p.length; i++) if (p[i] !== hostLabels[i]) return false;
  const first = p[0]!;
  const host = hostLabels[0]!;
  const star = first.split('*');
  if (star.length === 1 || first.includes('xn--')) return first === host;
  // One wildcard, only in the leftmost label, never directly under a public suffix-like two-label name.
  if (star.length > 2 || p.length <= 2) return false;
  const [pre, post] = star as [string, string];
  return pre.length + post.length <= host.length && host.startsWith(pre) && host.endsWith(post);
}

const canonicalIp = (s: string): string => {
  const b = parseIpLiteral(s.trim());
  return b ? formatIp(b) : s;
};

const ipKey = (s: string): string | null => {
  const b = parseIpLiteral(s.trim());
  return b ? Buffer.from(b).toString('hex') : null;
};

/** node:tls `checkServerIdentity(hostname, cert)`: undefined if the certificate is valid for the host, else the error. */
export function checkServerIdentity(hostname: string, cert: PeerCertificate): CodedError | undefined {
  const host = String(hostname).replace(/\.$/, '');
  const alt = cert.subjectaltname;
  const dns: string[] = [];
  const ips: string[] = [];
  if (alt) {
    for (const n of splitAltNames(alt)) {
      if (n.startsWith('DNS:')) dns.push(n.slice(4));
      else if (n.startsWith('IP Address:')) ips.push(n.slice(11));
    }
  }
  let ok = false;
  let reason: string;
  if (net.isIP(host)) {
    const want = ipKey(host);
    ok = want !== null && ips.some((ip) => ipKey(ip) === want);
    reason = `IP: ${host} is not in the cert's list: ${ips.map(canonicalIp).join(', ')}`;
  } else if (dns.length > 0) {
    const labels = labelsOf(host);
    ok = dns.some((d) => dnsPatternMatches(labels, d));
    reason = `Host: ${host}. is not in the cert's altnames: ${alt}`;
  } else if (cert.subject && cert.subject.CN) {
    const labels = labelsOf(host);
    const cn = cert.subject.CN;
    ok = asArray(cn).some((c) => dnsPatternMatches(labels, c));
    reason = `Host: ${host}. is not cert's CN: ${cn}`;
  } else reason = 'Cert does not contain a DNS name';
  if (ok) return undefined;
  return coded(`Hostname/IP does not match certificate's altnames: ${reason}`, 'ERR_TLS_CERT_ALTNAME_INVALID', { reason, host, cert });
}

// -------------------------------------------------------------------------------------------------
// Verification errors as node:tls reports them (OpenSSL X509_V_ERR_* names)

const VERIFY_MESSAGES: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  INVALID_CA: 'invalid CA certificate',
  PATH_LENGTH_EXCEEDED: 'path length constraint exceeded',
  CERT_CHAIN_TOO_LONG: 'certificate chain too long',
  INVALID_PURPOSE: 'unsupported certificate purpose',
  CERT_REJECTED: 'certificate rejected',
};

function isSelfIssued(der: Uint8Array | undefined): boolean {
  if (!der) return false;
  try {
    const x = new crypto.X509Certificate(Buffer.from(der));
    return x.checkIssued(x);
  } catch {
    return false;
  }
}

/** The node:tls error for a certificate Petrel's verifier refused; the CertificateError is its `cause`. */
export function nodeVerifyError(e: CertificateError, chain: Uint8Array[]): CodedError {
  let code: string;
  switch (e.kind) {
    case 'unknown-issuer': {
      const top = chain[chain.length - 1];
      if (chain.length === 1) code = isSelfIssued(top) ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
      else code = isSelfIssued(top) ? 'SELF_SIGNED_CERT_IN_CHAIN' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
      break;
    }
    case 'expired':
      code = 'CERT_HAS_EXPIRED';
      break;
    case 'not-yet-valid':
      code = 'CERT_NOT_YET_VALID';
      break;
    case 'bad-signature':
      code = 'CERT_SIGNATURE_FAILURE';
      break;
    case 'not-ca':
      code = 'INVALID_CA';
      break;
    case 'path-length':
      code = 'PATH_LENGTH_EXCEEDED';
      break;
    case 'path-too-long':
    case 'too-many':
      code = 'CERT_CHAIN_TOO_LONG';
      break;
    case 'key-usage':
    case 'ext-key-usage':
      code = 'INVALID_PURPOSE';
      break;
    case 'empty-chain':
      code = 'UNABLE_TO_GET_ISSUER_CERT';
      break;
    default:
      code = 'CERT_REJECTED';
  }
  const err = coded(VERIFY_MESSAGES[code]!, code, { detail: e.message });
  err.cause = e;
  return err;
}

/**
 * The chain error OpenSSL reports when the leaf's commonName, used as a host name because the leaf
 * has no DNS subjectAltName, is outside the DNS name constraints of a CA in the path
 * (X509_V_ERR_PERMITTED_VIOLATION / X509_V_ERR_EXCLUDED_VIOLATION; node has no code for these and
 * reports UNSPECIFIED). The core verifier ignores the CN (RFC 9525 §6.2), so it does not check this;
 * checkServerIdentity here falls back to the CN as node's does, so the constraint must hold for it.
 */
function cnConstraintError(path: ValidatedPath): CodedError | null {
  const leaf = path.certificates[0]!;
  const cas = [...path.certificates.slice(1), path.anchor];
  for (const ca of cas) {
    if (!ca.nameConstraints || bytesEqual(ca.der, leaf.der)) continue;
    const v = commonNameConstraintViolation(ca.nameConstraints, leaf);
    if (!v) continue;
    const message = v.excluded ? 'excluded subtree violation' : 'permitted subtree violation';
    const e = new CertificateError('name-constraint', `common name "${v.name}" of "${leaf.subject.text}" (used as a host name: the certificate has no DNS subjectAltName) violates the name constraints of CA "${ca.subject.text}"`, {
      index: 0,
      subject: leaf.subject.text,
      name: `DNS:${v.name}`,
    });
    const err = coded(message, 'UNSPECIFIED', { detail: e.message });
    err.cause = e;
    return err;
  }
  return null;
}

/** OpenSSL's reason for an alert from the peer: node:tls codes such as ERR_SSL_TLSV1_ALERT_UNKNOWN_CA. */
function receivedAlertReason(alert: number): { code: string; reason: string } {
  const name = alertName(alert) === 'user_canceled' ? 'user_cancelled' : alertName(alert);
  // OpenSSL groups alerts by the version that defined them: SSL 3.0, TLS 1.0 and TLS 1.3.
  const family = [10, 20, 30, 40, 41, 42, 43, 44, 45, 46, 47].includes(alert) ? 'sslv3' : alert === 109 || alert === 116 ? 'tlsv13' : 'tlsv1';
  return { code: `ERR_SSL_${family.toUpperCase()}_ALERT_${name.toUpperCase()}`, reason: `${family} alert ${name.replace(/_/g, ' ')}` };
}

/** Marks a ProtocolViolation whose cause is a node-style verification error to report as is. */
const VERIFY_FAILURE = Symbol('petrel.nodeVerifyFailure');

function verifyViolation(err: CodedError, alert: number): ProtocolViolation {
  const pv = new ProtocolViolation('tls', alert, err.message);
  pv.cause = err;
  (pv as unknown as Record<symbol, boolean>)[VERIFY_FAILURE] = true;
  return pv;
}

// -------------------------------------------------------------------------------------------------
// Sessions (node:tls hands them around as Buffers)

interface SessionEnvelope {
  petrelNodeTls: 1;
  ticket: string;
  authorized: boolean;
  authorizationError: string | null;
}

function sessionBuffer(t: SessionTicket, authorized: boolean, authorizationError: string | null): Buffer {
  const env: SessionEnvelope = { petrelNodeTls: 1, ticket: serializeSession(t), authorized, authorizationError };
  return Buffer.from(JSON.stringify(env));
}

/** A session Buffer made by this layer, or null (e.g. one from node:tls: then a full handshake is done, as node does with a session it cannot parse). */
function openSession(b: unknown): { ticket: SessionTicket; env: SessionEnvelope } | null {
  if (!(b instanceof Uint8Array) || b.length < 2 || b[0] !== 0x7b) return null;
  try {
    const env = JSON.parse(Buffer.from(b).toString('utf8')) as SessionEnvelope;
    if (env.petrelNodeTls !== 1 || typeof env.ticket !== 'string') return null;
    return { ticket: parseSession(env.ticket), env };
  } catch {
    return null;
  }
}

// -------------------------------------------------------------------------------------------------
// TLSSocket

interface ConnOpts extends CtxOpts {
  host?: string;
  port?: number;
  path?: string;
  socket?: Duplex;
  servername?: string;
  rejectUnauthorized?: boolean;
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
  ALPNProtocols?: string[] | Uint8Array[] | Uint8Array;
  session?: Buffer | Uint8Array;
  secureContext?: SecureContext;
  timeout?: number;
  localAddress?: string;
  localPort?: number;
  family?: number;
  lookup?: net.LookupFunction;
  autoSelectFamily?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  [other: string]: unknown;
}

interface SockOpts extends CtxOpts {
  isServer?: boolean;
  server?: Server;
  secureContext?: SecureContext;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  ALPNProtocols?: string[] | Uint8Array[] | Uint8Array;
  session?: Buffer | Uint8Array;
  servername?: string;
  [other: string]: unknown;
}

/** What the handshake found about the peer's certificate. */
export interface VerifyState {
  done: boolean;
  error: CodedError | null;
  /** Server: the leaf certificate chosen for this connection (SNI, key type). */
  ownLeaf?: Uint8Array;
}

type BaseInstance = Duplex & Omit<TlsSocket, keyof Duplex | 'getSession' | 'session' | 'getCipher'>;
// TlsSocket's getSession() returns a SessionTicket; node's returns a Buffer. The base is typed without it.
const Base = TlsSocket as unknown as new (transport: Duplex, opts: TlsSocketOptions) => BaseInstance;

/**
 * node:tls `TLSSocket`. `new TLSSocket(socket, { isServer, secureContext, ... })` also works for
 * upgrading an existing connection (STARTTLS); a client starts its handshake at once.
 */
export class TLSSocket extends Base {
  /** Set after the handshake: why the peer's certificate was not authorized (a node/OpenSSL code), else null. */
  authorizationError: string | null = null;
  /** Client: the name sent as SNI; server: the name the client asked for (false if none). */
  servername: string | false | null = null;
  private readonly verify: VerifyState;
  private readonly resumeEnv: SessionEnvelope | null;
  private readonly anchors: Uint8Array[] | null;
  private readonly rejectUnauthorizedFlag: boolean;
  private readonly requestCertFlag: boolean;
  private lastSession: Buffer | undefined;
  private sessionTicketObj: SessionTicket | null = null;
  private peerCache: Uint8Array[] | null = null;
  private readonly ownLeaf: Uint8Array | null;

  constructor(socket: Duplex, opts: TLSSocketOptions = {}) {
    const options = opts as unknown as SockOpts;
    if (!socket) throw coded('TLSSocket: pass the connection to run TLS over (tls.connect() opens one for you)', 'ERR_INVALID_ARG_TYPE');
    const verify: VerifyState = { done: false, error: null };
    const plan = options.isServer ? serverPlan(options, verify) : clientPlan(options as ConnOpts, verify);
    super(socket, plan.socketOptions);
    this.verify = verify;
    this.resumeEnv = plan.resumeEnv;
    this.anchors = plan.anchors;
    this.rejectUnauthorizedFlag = plan.rejectUnauthorized;
    this.requestCertFlag = plan.requestCert;
    this.ownLeaf = plan.ownLeaf;
    if (!options.isServer) this.servername = plan.sni ?? false;
    const t = this.transport;
    if (t instanceof net.Socket) {
      t.on('timeout', () => this.emit('timeout'));
      t.on('connect', () => this.emit('connect'));
    }
  }

  // ---- node:tls accessors ----------------------------------------------------------------------

  /** The current session as a Buffer to pass as `session` to connect() later (client), like node:tls. */
  getSession(): Buffer | undefined {
    return this.lastSession;
  }
  /** TLS 1.3 has no session IDs; the ticket is inside getSession()'s Buffer. */
  getTLSTicket(): Buffer | undefined {
    return this.sessionTicketObj ? Buffer.from(this.sessionTicketObj.ticket) : undefined;
  }

  private peerChain(): Uint8Array[] {
    if (this.peerCache) return this.peerCache;
    // Resumed connections have no Certificate message: {} as node:tls shows for TLS 1.3 resumption.
    return this.getPeerCertificates();
  }

  /**
   * The peer's certificate in node's format: {} when there is none, null once destroyed (as node:tls).
   * `detailed`: with `issuerCertificate` links up to the trust anchor.
   */
  getPeerCertificate(detailed: true): DetailedPeerCertificate;
  getPeerCertificate(detailed?: false): PeerCertificate;
  getPeerCertificate(detailed?: boolean): PeerCertificate | DetailedPeerCertificate;
  getPeerCertificate(detailed = false): PeerCertificate | DetailedPeerCertificate {
    // node:tls: {} when there is no certificate (typed as the certificate object there too).
    if (this.destroyed && !this.info) return null as unknown as PeerCertificate;
    const chain = this.peerChain();
    if (chain.length === 0) return {} as PeerCertificate;
    const o = detailed ? detailedChain(chain, this.anchors) : legacyObject(chain[0]!);
    return o ?? ({} as PeerCertificate);
  }

  /** node:tls `getX509Certificate()`-like: the peer's leaf as a node:crypto X509Certificate. */
  getPeerX509Certificate(): crypto.X509Certificate | undefined {
    const c = this.peerChain()[0];
    return c ? new crypto.X509Certificate(Buffer.from(c)) : undefined;
  }

  /** Our own certificate in node's format ({} if none). */
  /** Our own certificate in node's format: a client's certificate, or the server's default one ({} if none). */
  getCertificate(): PeerCertificate | object | null {
    const own = this.verify.ownLeaf ?? this.ownLeaf;
    return (own && legacyObject(own)) ?? {};
  }

  /** node:tls `getCipher()`: the negotiated TLS 1.3 suite (IANA name, which OpenSSL also uses for TLS 1.3). */
  getCipher(): NodeTls.CipherNameAndProtocol {
    const suite = this.info?.suite ?? '';
    return { name: suite, standardName: suite, version: suite ? 'TLSv1.3' : '' };
  }

  /** The key exchange of a client's connection ({} on a server, as node:tls). */
  getEphemeralKeyInfo(): { type: string; name: string; size: number } | Record<string, never> | null {
    if (this.role === 'server') return {};
    const g = this.info?.group;
    if (!this.info) return null;
    switch (g) {
      case 'x25519':
        return { type: 'ECDH', name: 'X25519', size: 253 };
      case 'secp256r1':
        return { type: 'ECDH', name: 'prime256v1', size: 256 };
      case 'secp384r1':
        return { type: 'ECDH', name: 'secp384r1', size: 384 };
      case 'x25519mlkem768':
        return { type: 'KEM', name: 'X25519MLKEM768', size: 1216 * 8 };
      default:
        return {};
    }
  }

  getSharedSigalgs(): string[] {
    return this.info?.signatureScheme ? [this.info.signatureScheme] : [];
  }

  /** Renegotiation does not exist in TLS 1.3 (node:tls fails it the same way). */
  renegotiate(_options: unknown, callback?: (err: Error | null) => void): boolean {
    const err = unsupported('renegotiate()', 'TLS 1.3 has no renegotiation (RFC 8446 §4.1.2); use keyUpdate() for new keys');
    if (callback) process.nextTick(callback, err);
    return false;
  }
  disableRenegotiation(): void {
    // Always disabled.
  }
  /** Records are always up to 16384 bytes here (the size is fixed when the socket is made): only that size "succeeds". */
  setMaxSendFragment(size: number): boolean {
    return size === 16384;
  }
  setServername(name: string): void {
    throw unsupported(`setServername("${name}")`, 'pass servername to connect() (the ClientHello is built when the socket is created)');
  }
  // exportKeyingMaterial(length, label, context), getFinished() and getPeerFinished() come from
  // TlsSocket, which has node:tls's signatures, argument checks, error codes and return values
  // (Buffers; undefined before the Finished messages): RFC 8446 §7.5 exporters equal OpenSSL's.

  // ---- net.Socket pass-through (http and friends call these) -----------------------------------

  private get netSocket(): net.Socket | null {
    return this.transport instanceof net.Socket ? this.transport : null;
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.netSocket?.setTimeout(ms);
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    return this;
  }
  setNoDelay(noDelay = true): this {
    this.netSocket?.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.netSocket?.setKeepAlive(enable, initialDelay);
    return this;
  }
  ref(): this {
    this.netSocket?.ref();
    return this;
  }
  unref(): this {
    this.netSocket?.unref();
    return this;
  }
  address(): net.AddressInfo | Record<string, never> {
    return (this.netSocket?.address() as net.AddressInfo | undefined) ?? {};
  }
  get remoteAddress(): string | undefined {
    return this.netSocket?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.netSocket?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.netSocket?.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.netSocket?.localAddress;
  }
  get localPort(): number | undefined {
    return this.netSocket?.localPort;
  }
  get connecting(): boolean {
    return this.netSocket?.connecting ?? false;
  }
  get bytesRead(): number {
    return this.netSocket?.bytesRead ?? 0;
  }
  get bytesWritten(): number {
    return this.netSocket?.bytesWritten ?? 0;
  }

  // ---- translation of TlsSocket's events and errors --------------------------------------------

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'session' && args.length > 0 && !Buffer.isBuffer(args[0])) {
      const t = args[0] as SessionTicket;
      this.sessionTicketObj = t;
      if (this.info) this.settle();
      this.lastSession = sessionBuffer(t, this.authorized, this.authorizationError);
      return super.emit('session', this.lastSession);
    }
    if (event === 'secureConnect' || event === 'secure') this.settle();
    return super.emit(event, ...args);
  }

  /** authorized / authorizationError once the handshake completed (before 'secureConnect' / 'secure'). */
  private settle(): void {
    this.peerCache = this.getPeerCertificates().length > 0 ? this.getPeerCertificates() : null;
    if (this.role === 'client') {
      if (this.isSessionReused() && this.resumeEnv && !this.verify.done) {
        this.authorized = this.resumeEnv.authorized;
        this.authorizationError = this.resumeEnv.authorizationError;
      } else {
        this.authorized = this.verify.done && !this.verify.error;
        this.authorizationError = this.verify.error ? this.verify.error.code : this.verify.done ? null : 'UNABLE_TO_GET_ISSUER_CERT';
      }
      return;
    }
    this.servername = this.info?.serverName ?? false;
    if (!this.requestCertFlag) {
      this.authorized = false;
      this.authorizationError = null;
    } else if (this.verify.done) {
      this.authorized = !this.verify.error;
      this.authorizationError = this.verify.error ? this.verify.error.code : null;
    } else if (this.rejectUnauthorizedFlag && (this.getPeerCertificates().length > 0 || this.isSessionReused())) {
      // Required and checked by the handshake core (a failure aborts the handshake). Tickets are only
      // issued after such a handshake, so a resumed connection was authorized too.
      this.authorized = true;
      this.authorizationError = null;
    } else {
      // node:tls reports a missing client certificate this way.
      this.authorized = false;
      this.authorizationError = 'UNABLE_TO_GET_ISSUER_CERT';
    }
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    super._destroy(err, (e) => cb(translateError(e ?? null)));
  }
}

const SENT_ALERT_CODES: Record<number, string> = {
  [Alert.no_application_protocol]: 'ERR_SSL_NO_APPLICATION_PROTOCOL',
  [Alert.certificate_required]: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
  [Alert.protocol_version]: 'ERR_SSL_UNSUPPORTED_PROTOCOL',
};

/** TlsSocket errors as node:tls reports them. */
function translateError(e: Error | null): Error | null {
  if (!(e instanceof TlsAlertError)) return e;
  const pv = e.protocolError;
  if (!e.remote && pv && (pv as unknown as Record<symbol, boolean>)[VERIFY_FAILURE] && pv.cause instanceof Error) return pv.cause;
  if (!e.remote) {
    // Alerts we sent, with the OpenSSL reason node:tls reports for them (others keep Petrel's code).
    const code = SENT_ALERT_CODES[e.alertCode];
    if (!code) return e;
    const err = coded(e.message, code, { alert: e.alert });
    err.cause = e;
    return err;
  }
  const { code, reason } = receivedAlertReason(e.alertCode);
  const err = coded(`${e.message} (${reason})`, code, { alert: e.alert, library: 'SSL routines', reason });
  err.cause = e;
  return err;
}

interface Plan {
  socketOptions: TlsSocketOptions;
  resumeEnv: SessionEnvelope | null;
  anchors: Uint8Array[] | null;
  rejectUnauthorized: boolean;
  requestCert: boolean;
  sni: string | null;
  ownLeaf: Uint8Array | null;
}

function defaultRejectUnauthorized(): boolean {
  return process.env.NODE_TLS_REJECT_UNAUTHORIZED !== '0';
}

function clientPlan(options: ConnOpts, verify: VerifyState): Plan {
  checkUnsupported(options);
  const ctx = options.secureContext instanceof SecureContext ? options.secureContext : new SecureContext(options as SecureContextOptions);
  const provider = ctx.provider;
  const reject = options.rejectUnauthorized ?? defaultRejectUnauthorized();
  const host = options.host ?? 'localhost';
  const identityName = options.servername || host;
  const check = options.checkServerIdentity ?? checkServerIdentity;
  if (typeof check !== 'function') throw coded('checkServerIdentity must be a function', 'ERR_INVALID_ARG_TYPE');
  const inner = ctx.verifier();
  const anchors = ctx.ca;
  // The handshake core asks this verifier; the decisions follow node:tls: chain errors first, then
  // checkServerIdentity; with rejectUnauthorized the handshake stops here with an alert (node:tls
  // completes it and then destroys the socket; the error reported is the same).
  const verifier: CertificateVerifier = {
    verifyServer(chain, _name, nowMs, prov) {
      const r = inner.verify({ chain, purpose: 'serverAuth', serverName: null, nowMs, provider: prov });
      let err: CodedError | null = null;
      let alert: number = Alert.bad_certificate;
      if (r instanceof CertificateError) {
        if (r.kind === 'empty-chain') return r.toProtocolViolation(Alert.decode_error);
        err = nodeVerifyError(r, chain);
        alert = r.alert;
      } else if ((err = cnConstraintError(r)) !== null) {
        alert = Alert.bad_certificate;
      } else {
        let res: unknown;
        try {
          if (check === checkServerIdentity) {
            // The default check needs only the names: one parse; the full object only for the error.
            const light = namesOf(chain[0]!);
            res = light ? checkServerIdentity(identityName, light) : coded('the server certificate cannot be read', 'CERT_REJECTED');
            if (res instanceof Error && (res as CodedError).cert) (res as CodedError).cert = detailedChain(chain, anchors);
          } else {
            const cert = detailedChain(chain, anchors);
            res = cert ? check(identityName, cert) : coded('the server certificate cannot be read', 'CERT_REJECTED');
          }
        } catch (e) {
          res = e;
        }
        if (res instanceof Error) err = res as CodedError;
      }
      verify.done = true;
      verify.error = err;
      if (err && reject) return verifyViolation(err, alert);
      return null;
    },
    verifyClient() {
      return new ProtocolViolation('tls', Alert.internal_error, 'not a server');
    },
  };
  const ids = ctx.identities;
  const opened = options.session ? openSession(options.session) : null;
  // A session from an unauthorized connection is not offered when authorization is required now.
  const resume = opened && (!reject || opened.env.authorized) ? opened : null;
  const alpn = alpnFrom(options.ALPNProtocols);
  const serverName = identityName && identityName.length > 0 ? identityName : undefined;
  const config: TlsClientConfig = {
    provider,
    ...(serverName ? { serverName } : {}),
    verifier,
    ...(alpn ? { alpn } : {}),
    ...(ids.length > 0 ? { clientCertificate: { chain: ids[0]!.chain, key: ids[0]!.key } } : {}),
    ...(resume ? { resumption: resume.ticket } : {}),
    ...(ctx.cipherSuites ? { cipherSuites: ctx.cipherSuites } : {}),
    ...(ctx.groups ? { groups: ctx.groups } : {}),
    ...(ctx.signatureSchemes ? { signatureSchemes: ctx.signatureSchemes } : {}),
  };
  try {
    normalizeClientConfig(config);
  } catch (e) {
    throw coded((e as Error).message, 'ERR_INVALID_ARG_VALUE');
  }
  return {
    socketOptions: {
      role: 'client',
      provider,
      session: (keyLog): TlsSession => new TlsClient({ ...config, ...(keyLog ? { keyLog } : {}) }),
      authorizedOnSecure: true,
    },
    resumeEnv: resume ? resume.env : null,
    anchors,
    rejectUnauthorized: reject,
    requestCert: false,
    sni: serverName && net.isIP(serverName) === 0 ? serverName : null,
    ownLeaf: ids[0]?.chain[0] ?? null,
  };
}

function serverPlan(options: SockOpts, verify: VerifyState): Plan {
  const server = options.server instanceof Server ? options.server : null;
  const shared = server ? server.shared : buildServerShared(options);
  const keyLogWanted = server ? server.listenerCount('keylog') > 0 : false;
  return {
    socketOptions: {
      role: 'server',
      provider: shared.config.provider,
      session: (keyLog): TlsSession => {
        const cfg = shared.configFor(verify);
        return new TlsServerSession(cfg, keyLog && keyLogWanted ? { keyLog } : {});
      },
      handshakeTimeoutMs: shared.handshakeTimeout,
      authorizedOnSecure: true,
    },
    resumeEnv: null,
    anchors: shared.ctx().ca,
    rejectUnauthorized: shared.rejectUnauthorized,
    requestCert: shared.requestCert,
    sni: null,
    ownLeaf: shared.ctx().identities[0]?.chain[0] ?? null,
  };
}

// -------------------------------------------------------------------------------------------------
// connect()

type ConnectArgs = [ConnOpts, (() => void)?] | [number, (string | ConnOpts | (() => void))?, (ConnOpts | (() => void))?, (() => void)?];

function normalizeConnectArgs(args: unknown[]): { options: ConnOpts; cb: (() => void) | undefined } {
  let options: ConnOpts = {};
  let cb: (() => void) | undefined;
  let i = 0;
  if (typeof args[0] === 'object' && args[0] !== null) {
    options = { ...(args[0] as ConnOpts) };
    i = 1;
  } else {
    if (typeof args[0] === 'number' || typeof args[0] === 'string') options.port = Number(args[0]);
    i = 1;
    if (typeof args[1] === 'string') {
      options.host = args[1];
      i = 2;
    }
    if (typeof args[i] === 'object' && args[i] !== null) {
      options = { ...(args[i] as ConnOpts), ...options };
      i++;
    }
  }
  if (typeof args[i] === 'function') cb = args[i] as () => void;
  return { options, cb };
}

const NET_KEYS = ['host', 'port', 'path', 'localAddress', 'localPort', 'family', 'hints', 'lookup', 'autoSelectFamily', 'autoSelectFamilyAttemptTimeout', 'noDelay', 'keepAlive', 'keepAliveInitialDelay'];

/**
 * node:tls `connect(options[, cb])` / `connect(port[, host][, options][, cb])`. Throws at the call for
 * invalid or unsupported options; connection and handshake failures arrive as 'error' events with
 * node:tls codes.
 */
export function connect(options: ConnectionOptions, secureConnectListener?: () => void): TLSSocket;
export function connect(port: number, host?: string, options?: ConnectionOptions, secureConnectListener?: () => void): TLSSocket;
export function connect(port: number, options?: ConnectionOptions, secureConnectListener?: () => void): TLSSocket;
export function connect(...args: ConnectArgs | unknown[]): TLSSocket {
  const { options, cb } = normalizeConnectArgs(args);
  // Validate everything before opening a connection.
  checkUnsupported(options);
  let transport = options.socket;
  let opened = false;
  if (!transport) {
    const netOpts: Record<string, unknown> = {};
    for (const k of NET_KEYS) if (options[k] !== undefined) netOpts[k] = options[k];
    if (netOpts.path === undefined) netOpts.host ??= 'localhost';
    transport = net.connect(netOpts as unknown as net.NetConnectOpts);
    opened = true;
  }
  let sock: TLSSocket;
  try {
    sock = new TLSSocket(transport, { ...options, isServer: false } as TLSSocketOptions);
  } catch (e) {
    if (opened) transport.destroy();
    throw e;
  }
  if (transport instanceof net.Socket && opened) transport.setNoDelay(options.noDelay ?? true);
  if (options.timeout) sock.setTimeout(options.timeout);
  if (cb) sock.once('secureConnect', cb);
  return sock;
}

// -------------------------------------------------------------------------------------------------
// Server

interface SrvOpts extends CtxOpts {
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  ALPNProtocols?: string[] | Uint8Array[] | Uint8Array;
  ALPNCallback?: (arg: { servername: string; protocols: string[] }) => string | undefined;
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  handshakeTimeout?: number;
  secureContext?: SecureContext;
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  [other: string]: unknown;
}

export interface ServerShared {
  config: TlsServerConfig;
  ctx: () => SecureContext;
  handshakeTimeout: number;
  rejectUnauthorized: boolean;
  requestCert: boolean;
  /** The config for one connection: shared, except when client certificates are checked (the result is per connection). */
  configFor(verify: VerifyState): TlsServerConfig;
}

function buildServerShared(options: SrvOpts, sniContexts?: () => [RegExp, SecureContext][], current?: () => SecureContext): ServerShared {
  checkUnsupported(options);
  if (options.ALPNCallback !== undefined && options.ALPNProtocols !== undefined)
    throw coded('The ALPNCallback and ALPNProtocols TLS options are mutually exclusive', 'ERR_TLS_ALPN_CALLBACK_WITH_PROTOCOLS');
  if (options.SNICallback !== undefined && typeof options.SNICallback !== 'function') throw coded('SNICallback must be a function', 'ERR_INVALID_ARG_TYPE');
  if (options.ALPNCallback !== undefined && typeof options.ALPNCallback !== 'function') throw coded('ALPNCallback must be a function', 'ERR_INVALID_ARG_TYPE');
  const own = options.secureContext instanceof SecureContext ? options.secureContext : new SecureContext(options as SecureContextOptions);
  const ctx = current ?? (() => own);
  const requestCert = !!options.requestCert;
  const reject = requestCert && (options.rejectUnauthorized ?? true);
  const alpn = alpnFrom(options.ALPNProtocols);
  const alpnCallback = options.ALPNCallback;
  const sniCallback = options.SNICallback;
  const base = ctx();

  /** A lenient client verifier for requestCert without rejectUnauthorized: failures become authorizationError. */
  const verifierFor = (c: SecureContext, verify: VerifyState | null): CertificateVerifier => {
    const inner = c.verifier();
    if (reject || !verify) {
      // Refused in the handshake with the alert; the server reports the node:tls verify error
      // ('tlsClientError'). node:tls finishes the handshake and then destroys the socket instead.
      return {
        verifyServer: () => new ProtocolViolation('tls', Alert.internal_error, 'not a client'),
        verifyClient(chain, nowMs, prov) {
          const r = inner.verify({ chain, purpose: 'clientAuth', serverName: null, nowMs, provider: prov });
          if (!(r instanceof CertificateError)) return null;
          if (r.kind === 'empty-chain') return r.toProtocolViolation();
          return verifyViolation(nodeVerifyError(r, chain), r.alert);
        },
      };
    }
    return {
      verifyServer: () => new ProtocolViolation('tls', Alert.internal_error, 'not a client'),
      verifyClient(chain, nowMs, prov) {
        const r = inner.verify({ chain, purpose: 'clientAuth', serverName: null, nowMs, provider: prov });
        verify.done = true;
        verify.error = r instanceof CertificateError ? nodeVerifyError(r, chain) : null;
        return null;
      },
    };
  };

  const clientAuth = requestCert ? (reject ? 'require' : 'request') : 'none';
  const resolveWith = (verify: VerifyState | null) => {
    const finish = (c: SecureContext, hello: ClientHelloInfo): ServerIdentity => {
      const id = c.pick(hello.signatureSchemes) ?? base.pick(hello.signatureSchemes);
      if (!id) throw new ProtocolViolation('tls', Alert.internal_error, 'server misconfiguration: no certificate (pass cert and key, or answer SNICallback with a context that has them)');
      if (verify) verify.ownLeaf = id.chain[0]!;
      let chosen: string[] | undefined;
      if (alpnCallback && hello.alpn.length > 0) {
        const p = alpnCallback({ servername: hello.serverName ?? '', protocols: [...hello.alpn] });
        if (p === undefined) throw new ProtocolViolation('tls', Alert.no_application_protocol, 'ALPNCallback selected no protocol');
        if (!hello.alpn.includes(p)) throw new ProtocolViolation('tls', Alert.internal_error, `ALPNCallback returned "${p}", which the client did not offer`);
        chosen = [p];
      }
      const perConn = requestCert && !reject && verify !== null;
      const verifier = requestCert && (c !== base || perConn) ? verifierFor(c, verify) : undefined;
      return c.serverIdentity(id, chosen, requestCert ? clientAuth : undefined, verifier);
    };
    return (hello: ClientHelloInfo): ServerIdentity | Promise<ServerIdentity> => {
      const name = hello.serverName;
      if (name && sniCallback) {
        return new Promise<ServerIdentity>((resolve, rejectP) => {
          let called = false;
          sniCallback(name, (err, c) => {
            if (called) return;
            called = true;
            if (err) return rejectP(err);
            if (c !== undefined && c !== null && !(c instanceof SecureContext))
              return rejectP(unsupported('an SNICallback context from node:tls', 'create it with createSecureContext() of this module'));
            try {
              resolve(finish(c ?? ctx(), hello));
            } catch (e) {
              rejectP(e);
            }
          });
        });
      }
      let c = ctx();
      if (name && sniContexts) {
        const hit = sniContexts().find(([re]) => re.test(name));
        if (hit) c = hit[1];
      }
      return finish(c, hello);
    };
  };

  const make = (verify: VerifyState | null): TlsServerConfig => ({
    provider: base.provider,
    resolve: resolveWith(verify),
    ...(alpn ? { alpn } : {}),
    ...(requestCert ? { clientAuth, clientVerifier: verifierFor(base, verify) } : {}),
    // Ticket lifetime: sessionTimeout; default 7200 s, the lifetime node:tls servers put in their tickets
    // (RFC 8446 §4.6.1 caps it at 7 days).
    tickets: { lifetimeSeconds: Math.max(1, Math.min(604800, Math.floor(base.sessionTimeout ?? 7200))) },
    ...(base.cipherSuites ? { cipherSuites: base.cipherSuites } : {}),
    ...(base.groups ? { groups: base.groups } : {}),
    ...(base.signatureSchemes ? { signatureSchemes: base.signatureSchemes } : {}),
  });
  const config = make(null);
  try {
    normalizeServerConfig(config);
  } catch (e) {
    throw coded((e as Error).message, 'ERR_INVALID_ARG_VALUE');
  }
  const settings = normalizeServerConfig(config);
  return {
    config,
    ctx,
    handshakeTimeout: options.handshakeTimeout ?? 120_000,
    rejectUnauthorized: reject,
    requestCert,
    configFor(verify: VerifyState): TlsServerConfig {
      // Per connection (its certificate choice and verification result, for getCertificate() and
      // authorizationError), with the shared ticket keys and anti-replay state.
      return { ...make(verify), tickets: { ...config.tickets, keys: settings.ticketKeys }, antiReplay: settings.antiReplay };
    },
  };
}

/**
 * node:tls `Server`: a net.Server whose connections are TLS 1.3. Events: 'secureConnection'
 * (TLSSocket), 'tlsClientError' (err, socket) for connections that fail before their handshake
 * completed (a bad peer never takes the process down), 'keylog' (line, socket), and net.Server's.
 */
export class Server extends net.Server {
  /** @internal */
  shared: ServerShared;
  private context: SecureContext;
  private readonly sni: [RegExp, SecureContext][] = [];

  constructor(options?: TlsOptions | ((socket: TLSSocket) => void), secureConnectionListener?: (socket: TLSSocket) => void) {
    const opts: SrvOpts = typeof options === 'object' && options !== null ? (options as unknown as SrvOpts) : {};
    const listener = typeof options === 'function' ? options : secureConnectionListener;
    const own = opts.secureContext instanceof SecureContext ? opts.secureContext : new SecureContext(opts as SecureContextOptions);
    super({
      allowHalfOpen: false,
      ...(opts.pauseOnConnect !== undefined ? { pauseOnConnect: opts.pauseOnConnect } : {}),
      ...(opts.noDelay !== undefined ? { noDelay: opts.noDelay } : {}),
      ...(opts.keepAlive !== undefined ? { keepAlive: opts.keepAlive } : {}),
      ...(opts.keepAliveInitialDelay !== undefined ? { keepAliveInitialDelay: opts.keepAliveInitialDelay } : {}),
    });
    this.context = own;
    this.shared = buildServerShared(
      { ...opts, secureContext: own },
      () => this.sni,
      () => this.context,
    );
    if (listener) this.on('secureConnection', listener);
    this.on('connection', (c: net.Socket) => this.onTcp(c));
  }

  private onTcp(c: net.Socket): void {
    c.setNoDelay(true);
    let sock: TLSSocket;
    try {
      sock = new TLSSocket(c, { isServer: true, server: this });
    } catch (e) {
      c.destroy();
      this.emit('tlsClientError', e, null);
      return;
    }
    if (this.listenerCount('keylog') > 0) sock.on('keylog', (line: Buffer) => this.emit('keylog', line, sock));
    let secure = false;
    let reported = false;
    // Always listening, so a bad peer cannot crash the process (node:tls does the same).
    sock.on('error', (err: Error) => {
      if (secure || reported) return;
      reported = true;
      this.emit('tlsClientError', err, sock);
    });
    sock.once('secure', () => {
      secure = true;
      try {
        this.emit('secureConnection', sock);
      } catch (e) {
        // Unlike node:tls (where it is an uncaught exception), a throwing handler does not end the
        // process: it becomes a process warning (net.Server's 'error' means the server failed).
        reportListenerError(e, "a 'secureConnection' listener");
      }
    });
  }

  /** node:tls `addContext(hostname, context)`: a certificate for a host name (wildcards like '*.example.com'). */
  addContext(hostname: string, context: SecureContext | SecureContextOptions): void {
    const re = new RegExp(`^${hostname.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]*')}$`, 'i');
    this.sni.push([re, context instanceof SecureContext ? context : new SecureContext(context)]);
  }

  /** node:tls `setSecureContext(options)`: new certificates for new connections. */
  setSecureContext(options: SecureContextOptions): void {
    this.context = new SecureContext(options);
  }

  getTicketKeys(): never {
    throw unsupported('getTicketKeys()', 'session ticket keys are per server and not exported');
  }
  setTicketKeys(_keys: Buffer): never {
    throw unsupported('setTicketKeys()', 'session ticket keys are per server and cannot be set');
  }
}

/** node:tls `createServer([options][, secureConnectionListener])`. */
export function createServer(secureConnectionListener?: (socket: TLSSocket) => void): Server;
export function createServer(options: TlsOptions, secureConnectionListener?: (socket: TLSSocket) => void): Server;
export function createServer(options?: TlsOptions | ((socket: TLSSocket) => void), secureConnectionListener?: (socket: TLSSocket) => void): Server {
  return new Server(options, secureConnectionListener);
}

/** node:tls `convertALPNProtocols(protocols, out)`: the wire format in `out.ALPNProtocols`. */
export function convertALPNProtocols(protocols: string[] | Uint8Array[] | Uint8Array, out: { ALPNProtocols?: Buffer }): void {
  const list = alpnFrom(protocols) ?? [];
  out.ALPNProtocols = Buffer.concat(list.map((p) => Buffer.concat([Buffer.from([Buffer.byteLength(p, 'latin1')]), Buffer.from(p, 'latin1')])));
}

export function createSecurePair(): never {
  throw unsupported('createSecurePair()', 'it was removed from node:tls; use new TLSSocket(socket, options)');
}

const tls = {
  connect,
  createServer,
  createSecureContext,
  checkServerIdentity,
  getCiphers,
  convertALPNProtocols,
  createSecurePair,
  rootCertificates,
  DEFAULT_MIN_VERSION,
  DEFAULT_MAX_VERSION,
  DEFAULT_ECDH_CURVE,
  DEFAULT_CIPHERS,
  CLIENT_RENEG_LIMIT,
  CLIENT_RENEG_WINDOW,
  TLSSocket,
  Server,
  SecureContext,
};
export default tls;
