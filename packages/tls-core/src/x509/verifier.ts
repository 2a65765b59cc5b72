/**
 * Certificate verifiers for the TLS handshake (the `CertificateVerifier` contract of handshake/api.ts).
 *
 * `WebPkiVerifier`: path building to trust anchors and RFC 5280 validation (path.ts), service
 * identity per RFC 9525 (identity.ts), optional SPKI pinning. Errors come back as a ProtocolViolation
 * carrying the alert (mapping in errors.ts); its `cause` is the typed CertificateError.
 *
 *   const v = new WebPkiVerifier();                              // Node's root store
 *   const v = new WebPkiVerifier({ roots: fs.readFileSync('ca.pem', 'utf8') });
 *   const err = v.verifyServer(chainDer, 'example.com', Date.now(), nodeProvider);
 *   if (err) console.log(certificateErrorOf(err)?.kind, err.message);
 *
 * `InsecureVerifier`: accepts everything; for the explicit insecure option only.
 *
 * serverName null: no identity check (the caller chose not to name the server).
 */
import { Alert, ConfigError, type ProtocolViolation } from '../errors.js';
import type { CryptoProvider } from '../crypto/provider.js';
import type { CertificateVerifier } from '../handshake/api.js';
import { DerError, pemDecode } from '../util/der.js';
import { type Certificate, hex, parseCertificate } from './cert.js';
import { CertificateError } from './errors.js';
import { certificateMatchesName, presentedNames, referenceIdentity } from './identity.js';
import { nodeRootCertificates } from './node-roots.js';
import { type Purpose, TrustStore, type ValidatedPath, buildPath } from './path.js';

export interface WebPkiVerifierOptions {
  /** Trust anchors: PEM text (one or more CERTIFICATE blocks) or a list of DER certificates. Default: Node's root store. */
  roots?: string | Uint8Array[];
  /** Base64 SHA-256 hashes of SubjectPublicKeyInfo; if given, some certificate of the validated path must match one. */
  pins?: string[];
  /** Maximum number of intermediate certificates in a path (default 6). */
  maxDepth?: number;
  /** Skip validity-period checks (testing only). */
  allowExpired?: boolean;
  /** Maximum number of signature checks while searching for a path (default 100). */
  signatureBudget?: number;
  /**
   * Accept a CA certificate (basicConstraints cA) as the end-entity certificate, as OpenSSL does.
   * Default false: like webpki, Petrel refuses a CA certificate as a leaf (kind 'ca-as-leaf') unless
   * it is itself a trust anchor; a certificate-signing key should not also authenticate handshakes.
   * The node:tls compatibility layer sets it to decide as node does.
   */
  allowCaLeaf?: boolean;
}

/** Chains longer than this are refused before any work. */
const MAX_PRESENTED = 32;

export interface VerifyRequest {
  chain: Uint8Array[];
  purpose: Purpose;
  /** DNS name or IP literal to match (server certificates); null/absent: no identity check. */
  serverName?: string | null;
  nowMs: number;
  provider: CryptoProvider;
}

let defaultStore: TrustStore | null = null;

function nodeStore(): TrustStore {
  if (defaultStore) return defaultStore;
  const pems = nodeRootCertificates();
  if (!pems) throw new ConfigError('no default root store on this platform (Node tls.rootCertificates is unavailable): pass `roots` (PEM text or DER list) to WebPkiVerifier');
  const store = new TrustStore();
  for (const pem of pems) {
    try {
      for (const b of pemDecode(pem)) if (b.label === 'CERTIFICATE') store.add(parseCertificate(b.der));
    } catch (e) {
      if (!(e instanceof CertificateError || e instanceof DerError)) throw e;
      // A root we cannot parse is simply not a trust anchor.
    }
  }
  defaultStore = store;
  return store;
}

function storeFrom(roots: string | Uint8Array[]): TrustStore {
  let ders: Uint8Array[];
  if (typeof roots === 'string') {
    let blocks: { label: string; der: Uint8Array }[];
    try {
      blocks = pemDecode(roots);
    } catch (e) {
      throw new ConfigError(`roots: cannot read the PEM text: ${(e as Error).message}`);
    }
    ders = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
    if (ders.length === 0) throw new ConfigError('roots: no "-----BEGIN CERTIFICATE-----" block in the PEM text');
  } else ders = roots;
  if (ders.length === 0) throw new ConfigError('roots: the list of trust anchors is empty');
  const store = new TrustStore();
  ders.forEach((der, i) => {
    try {
      store.add(parseCertificate(der));
    } catch (e) {
      throw new ConfigError(`roots: certificate ${i} cannot be used as a trust anchor: ${(e as Error).message}`);
    }
  });
  return store;
}

function decodePins(pins: string[]): Set<string> {
  const out = new Set<string>();
  for (const p of pins) {
    let bytes: Uint8Array | null = null;
    try {
      const bin = atob(p.trim());
      bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    } catch {
      bytes = null;
    }
    if (!bytes || bytes.length !== 32)
      throw new ConfigError(`pins: "${p}" is not a base64 SHA-256 hash (32 bytes); compute one with: openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`);
    out.add(hex(bytes));
  }
  return out;
}

export class WebPkiVerifier implements CertificateVerifier {
  private readonly store: TrustStore;
  private readonly pins: Set<string> | null;
  private readonly maxDepth: number;
  private readonly allowExpired: boolean;
  private readonly signatureBudget: number;
  private readonly allowCaLeaf: boolean;

  constructor(options: WebPkiVerifierOptions = {}) {
    this.store = options.roots === undefined ? nodeStore() : storeFrom(options.roots);
    this.pins = options.pins && options.pins.length > 0 ? decodePins(options.pins) : null;
    this.maxDepth = options.maxDepth ?? 6;
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 0) throw new ConfigError(`maxDepth must be a non-negative integer, got ${options.maxDepth}`);
    this.allowExpired = options.allowExpired ?? false;
    this.signatureBudget = options.signatureBudget ?? 100;
    this.allowCaLeaf = options.allowCaLeaf ?? false;
  }

  /** Number of trust anchors. */
  get rootCount(): number {
    return this.store.size;
  }

  verifyServer(chain: Uint8Array[], serverName: string | null, nowMs: number, provider: CryptoProvider): ProtocolViolation | null {
    const r = this.verify({ chain, purpose: 'serverAuth', serverName, nowMs, provider });
    if (!(r instanceof CertificateError)) return null;
    // RFC 8446 §4.4.2.4: an empty server Certificate message is a decode_error.
    return r.toProtocolViolation(r.kind === 'empty-chain' ? Alert.decode_error : r.alert);
  }

  verifyClient(chain: Uint8Array[], nowMs: number, provider: CryptoProvider): ProtocolViolation | null {
    const r = this.verify({ chain, purpose: 'clientAuth', serverName: null, nowMs, provider });
    return r instanceof CertificateError ? r.toProtocolViolation() : null;
  }

  /** The full result: the validated path, or the typed error. Never throws on any input bytes. */
  verify(req: VerifyRequest): ValidatedPath | CertificateError {
    const { chain } = req;
    if (chain.length === 0) return new CertificateError('empty-chain', 'the peer sent no certificate');
    if (chain.length > MAX_PRESENTED) return new CertificateError('too-many', `the peer sent ${chain.length} certificates; at most ${MAX_PRESENTED} are accepted`);
    const certs: Certificate[] = [];
    for (let i = 0; i < chain.length; i++) {
      try {
        certs.push(parseCertificate(chain[i]!, i));
      } catch (e) {
        if (e instanceof CertificateError) return e;
        throw e;
      }
    }
    const path = buildPath(certs, {
      anchors: this.store,
      provider: req.provider,
      nowMs: req.nowMs,
      purpose: req.purpose,
      maxDepth: this.maxDepth,
      signatureBudget: this.signatureBudget,
      allowExpired: this.allowExpired,
      allowCaLeaf: this.allowCaLeaf,
    });
    if (path instanceof CertificateError) return path;
    const leaf = certs[0]!;
    if (req.serverName !== null && req.serverName !== undefined) {
      if (!certificateMatchesName(leaf, req.serverName)) {
        const names = presentedNames(leaf);
        const ref = referenceIdentity(req.serverName);
        const why = ref.type === 'invalid' ? ` ("${req.serverName}" is neither a valid DNS name nor an IP address)` : '';
        return new CertificateError(
          'name-mismatch',
          `certificate "${leaf.subject.text}" is not valid for "${req.serverName}"${why}; it is valid for ${names.length ? names.join(', ') : 'no names (it has no subjectAltName; the common name is not used, RFC 9525 §6.2)'}`,
          { index: 0, subject: leaf.subject.text, expectedName: req.serverName, presentedNames: names },
        );
      }
    }
    if (this.pins) {
      const all = [...path.certificates, path.anchor];
      const pins = this.pins;
      if (!all.some((c) => pins.has(hex(req.provider.digest('sha256', c.spki)))))
        return new CertificateError('pin-mismatch', `no public key of the validated chain for "${leaf.subject.text}" matches the configured pins`, {
          index: 0,
          subject: leaf.subject.text,
        });
    }
    return path;
  }
}

/** Accepts every certificate chain without looking at it. Use only when the user explicitly asked for no verification. */
export class InsecureVerifier implements CertificateVerifier {
  readonly insecure = true;
  verifyServer(): ProtocolViolation | null {
    return null;
  }
  verifyClient(): ProtocolViolation | null {
    return null;
  }
}
