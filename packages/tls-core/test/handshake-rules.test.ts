/**
 * RFC 8446 rules on what a peer may put in its handshake messages, checked against a peer that
 * breaks them (messages rewritten in flight, re-signed over the rewritten transcript where needed,
 * so that the only defect is the one under test):
 * - §4.4.3: RSA signatures in CertificateVerify MUST be RSASSA-PSS, even when rsa_pkcs1_* is in
 *   signature_algorithms (there it covers certificate signatures only).
 * - §4.2: an extension in a message where it is not allowed → illegal_parameter (CertificateEntry).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import { makeCert } from '../../../test/support/certs.js';
import { nodeProvider as p } from '../src/crypto/node.js';
import { type SignatureScheme, SignatureSchemeCode } from '../src/crypto/provider.js';
import { Alert } from '../src/errors.js';
import type { EncryptionLevel } from '../src/handshake/api.js';
import { TlsClient } from '../src/handshake/client.js';
import { TlsServer } from '../src/handshake/server.js';
import * as codec from '../src/handshake/codec.js';
import { certificateVerifyContent } from '../src/handshake/common.js';
import { pinVerifier, runPair, type Tamper } from './handshake-pair.js';

const rsa = makeCert({ keyType: 'rsa2048', sans: ['example.com'] });
const rsaClient = makeCert({ keyType: 'rsa2048', sans: ['client.example'], tag: 'client' });
const ec = makeCert({ keyType: 'ec-p256', sans: ['example.com'] });
/** A peer's configuration as with node's sigalgs 'rsa_pkcs1_sha256:rsa_pss_rsae_sha256'. */
const WITH_PKCS1: SignatureScheme[] = ['rsa_pkcs1_sha256', 'rsa_pss_rsae_sha256', 'ecdsa_secp256r1_sha256'];
const H = codec.HandshakeType;
const SUITE = { cipherSuites: ['TLS_AES_128_GCM_SHA256' as const] };

const pkcs1Sign = (keyDer: Uint8Array, msg: Uint8Array): Uint8Array =>
  new Uint8Array(crypto.sign('sha256', msg, crypto.createPrivateKey({ key: Buffer.from(keyDer), format: 'der', type: 'pkcs8' })));

/**
 * A tamper that keeps the transcript (every handshake message as delivered, SHA-256) and replaces
 * the CertificateVerify sent by `who` with an RSASSA-PKCS1-v1_5 signature (rsa_pkcs1_sha256) by
 * `keyDer` over that transcript: a valid signature, in the scheme TLS 1.3 forbids there.
 */
function pkcs1CertificateVerify(who: 'client' | 'server', keyDer: Uint8Array): Tamper {
  const transcript: Uint8Array[] = [];
  return (from, level: EncryptionLevel, data) => {
    if (level !== 'initial' && level !== 'handshake') return data;
    let out = data;
    if (from === who && data[0] === H.certificate_verify) {
      const hash = crypto.createHash('sha256');
      for (const m of transcript) hash.update(m);
      const content = certificateVerifyContent(who === 'server', new Uint8Array(hash.digest()));
      const body = codec.encodeCertificateVerify({ scheme: SignatureSchemeCode.rsa_pkcs1_sha256, signature: pkcs1Sign(keyDer, content) });
      out = body;
    }
    transcript.push(out);
    return out;
  };
}

test('client: a server CertificateVerify with rsa_pkcs1_sha256 is refused with illegal_parameter even if rsa_pkcs1 is configured (RFC 8446 §4.4.3)', async () => {
  const client = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(rsa.certDer), signatureSchemes: WITH_PKCS1, ...SUITE });
  const server = new TlsServer({ provider: p, identity: { chain: [rsa.certDer], key: rsa.keyDer }, signatureSchemes: WITH_PKCS1 });
  const r = await runPair(client, server, pkcs1CertificateVerify('server', rsa.keyDer));
  assert.ok(!r.c.complete, 'client must not complete');
  assert.is(r.c.alert?.alert, Alert.illegal_parameter, `client alert: ${r.c.alert?.error.message}`);
  assert.match(r.c.alert!.error.message, /RSASSA-PSS/);
  // The same handshake untouched: PSS is chosen and accepted (the tamper is the only defect).
  const c2 = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(rsa.certDer), signatureSchemes: WITH_PKCS1, ...SUITE });
  const s2 = new TlsServer({ provider: p, identity: { chain: [rsa.certDer], key: rsa.keyDer }, signatureSchemes: WITH_PKCS1 });
  const ok = await runPair(c2, s2);
  assert.ok(ok.c.complete && ok.s.complete, `untampered: ${ok.c.alert?.error.message ?? ok.s.alert?.error.message}`);
  assert.is(c2.info.signatureScheme, 'rsa_pss_rsae_sha256');
});

test('server: CertificateRequest never lists rsa_pkcs1_*; a client CertificateVerify with rsa_pkcs1_sha256 is refused with illegal_parameter', async () => {
  const seen: { requested: number[] | null } = { requested: null };
  const watch = pkcs1CertificateVerify('client', rsaClient.keyDer);
  const tamper: Tamper = (from, level, data, i) => {
    if (from === 'server' && data[0] === H.certificate_request) {
      const cr = codec.parseCertificateRequest(data.subarray(4));
      const sa = codec.findExt(cr.extensions, codec.ExtensionType.signature_algorithms)!;
      const list: number[] = [];
      for (let j = 2; j < sa.length; j += 2) list.push((sa[j]! << 8) | sa[j + 1]!);
      seen.requested = list;
    }
    return watch(from, level, data, i);
  };
  const client = new TlsClient({
    provider: p,
    serverName: 'example.com',
    verifier: pinVerifier(ec.certDer),
    signatureSchemes: WITH_PKCS1,
    clientCertificate: { chain: [rsaClient.certDer], key: rsaClient.keyDer },
    ...SUITE,
  });
  const server = new TlsServer({
    provider: p,
    identity: { chain: [ec.certDer], key: ec.keyDer },
    signatureSchemes: WITH_PKCS1,
    clientAuth: 'require',
    clientVerifier: pinVerifier(rsaClient.certDer),
  });
  const r = await runPair(client, server, tamper);
  const requested = seen.requested;
  assert.ok(requested, 'a CertificateRequest was sent');
  assert.ok(requested!.includes(SignatureSchemeCode.rsa_pss_rsae_sha256), 'PSS is requested');
  assert.not.ok(requested!.includes(SignatureSchemeCode.rsa_pkcs1_sha256), `CertificateRequest lists rsa_pkcs1_sha256: ${requested}`);
  assert.ok(!r.s.complete, 'server must not complete');
  assert.is(r.s.alert?.alert, Alert.illegal_parameter, `server alert: ${r.s.alert?.error.message}`);
});

test('a client key that offers only rsa_pkcs1 signing sends no certificate (never a PKCS#1 CertificateVerify)', async () => {
  const loaded = p.loadPrivateKey(rsaClient.keyDer);
  const pkcs1Only = { type: loaded.type, bits: loaded.bits, spki: loaded.spki, schemes: ['rsa_pkcs1_sha256'] as SignatureScheme[], sign: (_s: SignatureScheme, m: Uint8Array) => pkcs1Sign(rsaClient.keyDer, m) };
  const client = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(ec.certDer), signatureSchemes: WITH_PKCS1, clientCertificate: { chain: [rsaClient.certDer], key: pkcs1Only } });
  const server = new TlsServer({ provider: p, identity: { chain: [ec.certDer], key: ec.keyDer }, signatureSchemes: WITH_PKCS1, clientAuth: 'request', clientVerifier: pinVerifier(rsaClient.certDer) });
  const r = await runPair(client, server);
  assert.ok(r.c.complete && r.s.complete, `${r.c.alert?.error.message ?? r.s.alert?.error.message}`);
  assert.equal(server.info.peerCertificates, [], 'no client certificate');
});

/** Rewrites the first CertificateEntry of the Certificate message sent by `who` to carry `ext`. */
function entryExtension(who: 'client' | 'server', type: number): Tamper {
  return (from, level, data) => {
    if (from !== who || level !== 'handshake' || data[0] !== H.certificate) return data;
    const c = codec.parseCertificate(data.subarray(4));
    if (c.entries.length === 0) return data;
    c.entries[0]!.extensions = [{ type, data: type === codec.ExtensionType.signature_algorithms ? Uint8Array.of(0, 2, 4, 3) : new Uint8Array(0) }];
    return codec.encodeCertificate(c);
  };
}

test('client: a server CertificateEntry extension not allowed there is illegal_parameter; one not requested is unsupported_extension (RFC 8446 §4.2, §4.4.2)', async () => {
  const cases: [string, number, number][] = [
    ['key_share (offered in ClientHello, not a CertificateEntry extension)', codec.ExtensionType.key_share, Alert.illegal_parameter],
    ['supported_versions', codec.ExtensionType.supported_versions, Alert.illegal_parameter],
    ['status_request (valid in CertificateEntry, not requested)', 5, Alert.unsupported_extension],
    ['an unknown extension', 0x7a7a, Alert.unsupported_extension],
  ];
  for (const [what, type, alert] of cases) {
    const client = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(ec.certDer) });
    const server = new TlsServer({ provider: p, identity: { chain: [ec.certDer], key: ec.keyDer } });
    const r = await runPair(client, server, entryExtension('server', type));
    assert.ok(!r.c.complete, `${what}: client must not complete`);
    assert.is(r.c.alert?.alert, alert, `${what}: client alert ${r.c.alert?.alert} (${r.c.alert?.error.message})`);
  }
});

test('server: a client CertificateEntry extension not allowed there is illegal_parameter; one not requested is unsupported_extension', async () => {
  const cases: [string, number, number][] = [
    ['key_share', codec.ExtensionType.key_share, Alert.illegal_parameter],
    ['signature_algorithms (in CertificateRequest, not a CertificateEntry extension)', codec.ExtensionType.signature_algorithms, Alert.illegal_parameter],
    ['signed_certificate_timestamp (valid in CertificateEntry, not requested)', 18, Alert.unsupported_extension],
    ['an unknown extension', 0x7a7a, Alert.unsupported_extension],
  ];
  for (const [what, type, alert] of cases) {
    const client = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(ec.certDer), clientCertificate: { chain: [ec.certDer], key: ec.keyDer } });
    const server = new TlsServer({ provider: p, identity: { chain: [ec.certDer], key: ec.keyDer }, clientAuth: 'require', clientVerifier: pinVerifier(ec.certDer) });
    const r = await runPair(client, server, entryExtension('client', type));
    assert.ok(!r.s.complete, `${what}: server must not complete`);
    assert.is(r.s.alert?.alert, alert, `${what}: server alert ${r.s.alert?.alert} (${r.s.alert?.error.message})`);
  }
});

test.run();
