/**
 * In-memory TLS 1.3 handshakes between our client and server over both crypto providers:
 * suites × groups, certificate key types × signature schemes, ALPN, SNI, resolver (sync/async),
 * HelloRetryRequest (group and cookie), client authentication, QUIC mode, config errors, keylog.
 * Resumption / 0-RTT / KeyUpdate are in handshake-resumption.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { makeCert, type TestKeyType } from '../../../test/support/certs.js';
import type { CryptoProvider, NamedGroup, SignatureScheme } from '../src/crypto/provider.js';
import { NamedGroupCode } from '../src/crypto/provider.js';
import { Alert, ConfigError, ProtocolViolation } from '../src/errors.js';
import type { CipherSuite } from '../src/handshake/api.js';
import { CipherSuites } from '../src/handshake/api.js';
import { TlsClient } from '../src/handshake/client.js';
import { TlsServer } from '../src/handshake/server.js';
import type { ServerIdentity, TlsClientConfig, TlsServerConfig } from '../src/handshake/config.js';
import { ExtensionType, HandshakeType, bytesEqual, encodeClientHello, parseClientHello, findExt } from '../src/handshake/codec.js';
import * as codec from '../src/handshake/codec.js';
import { pinVerifier, runPair, secretsMatch, type Tamper } from './handshake-pair.js';

const SUITES = Object.keys(CipherSuites) as CipherSuite[];
const GROUPS: NamedGroup[] = ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'];

const p256 = makeCert({ keyType: 'ec-p256', sans: ['example.com', '127.0.0.1'] });

function serverCfg(p: CryptoProvider, extra: Partial<TlsServerConfig> = {}, cert = p256): TlsServerConfig {
  return { provider: p, identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: ['h2', 'http/1.1'], ...extra };
}
function clientCfg(p: CryptoProvider, extra: Partial<TlsClientConfig> = {}, cert = p256): TlsClientConfig {
  return { provider: p, serverName: 'example.com', verifier: pinVerifier(cert.certDer), alpn: ['http/1.1', 'h2'], ...extra };
}

function ok(r: Awaited<ReturnType<typeof runPair>>, label: string): void {
  assert.is(r.c.alert?.error.message, undefined, `${label}: client alert`);
  assert.is(r.s.alert?.error.message, undefined, `${label}: server alert`);
  assert.ok(r.c.complete && r.s.complete, `${label}: both complete`);
  assert.equal(secretsMatch(r.c, r.s), [], `${label}: secrets`);
  assert.equal(secretsMatch(r.s, r.c), [], `${label}: secrets (server view)`);
  assert.ok(r.c.secrets.has('application/write') && r.c.secrets.has('handshake/write'), `${label}: secrets emitted`);
}

for (const p of providers) {
  test(`${p.name}: suites × groups`, async () => {
    for (const suite of SUITES) {
      for (const group of GROUPS) {
        const client = new TlsClient(clientCfg(p, { cipherSuites: [suite], groups: [group], keyShares: [group] }));
        const server = new TlsServer(serverCfg(p));
        const r = await runPair(client, server);
        ok(r, `${suite}/${group}`);
        assert.is(client.info.suite, suite);
        assert.is(server.info.suite, suite);
        assert.is(client.info.group, group);
        assert.is(server.info.group, group);
        assert.is(client.info.alpn, 'h2', 'server preference wins');
        assert.is(r.c.secrets.get('application/write')!.length, CipherSuites[suite].hash === 'sha384' ? 48 : 32);
        assert.is(client.info.helloRetry, false);
      }
    }
  });

  test(`${p.name}: certificate key types × signature schemes`, async () => {
    const cases: [TestKeyType, SignatureScheme][] = [
      ['ec-p256', 'ecdsa_secp256r1_sha256'],
      ['ec-p384', 'ecdsa_secp384r1_sha384'],
      ['ed25519', 'ed25519'],
      ['rsa2048', 'rsa_pss_rsae_sha256'],
      ['rsa2048', 'rsa_pss_rsae_sha384'],
      ['rsa2048', 'rsa_pss_rsae_sha512'],
    ];
    for (const [kt, scheme] of cases) {
      const cert = makeCert({ keyType: kt, sans: ['example.com'] });
      const client = new TlsClient(clientCfg(p, { signatureSchemes: [scheme] }, cert));
      const server = new TlsServer(serverCfg(p, {}, cert));
      const r = await runPair(client, server);
      ok(r, `${kt}/${scheme}`);
      assert.is(client.info.signatureScheme, scheme);
      assert.ok(bytesEqual(client.info.peerCertificates![0]!, cert.certDer));
    }
  });

  test(`${p.name}: no common signature scheme → handshake_failure`, async () => {
    const cert = makeCert({ keyType: 'ed25519', sans: ['example.com'] });
    const r = await runPair(new TlsClient(clientCfg(p, { signatureSchemes: ['ecdsa_secp256r1_sha256'] }, cert)), new TlsServer(serverCfg(p, {}, cert)));
    assert.is(r.s.alert?.alert, Alert.handshake_failure);
  });

  test(`${p.name}: wrong certificate → verifier alert; bad CertificateVerify → decrypt_error`, async () => {
    const other = makeCert({ keyType: 'ec-p256', sans: ['example.com'], tag: 'other' });
    let r = await runPair(new TlsClient(clientCfg(p, {}, other)), new TlsServer(serverCfg(p)));
    assert.is(r.c.alert?.alert, Alert.bad_certificate);
    assert.not.ok(r.c.complete);
    // A verifier that throws (instead of returning a ProtocolViolation) → bad_certificate, not internal_error.
    const throwing = { verifyServer: () => { throw new Error('boom'); }, verifyClient: () => null };
    r = await runPair(new TlsClient(clientCfg(p, { verifier: throwing })), new TlsServer(serverCfg(p)));
    assert.is(r.c.alert?.alert, Alert.bad_certificate);
    // Flip a bit in the signature of the server's CertificateVerify.
    const tamper: Tamper = (from, level, data) => {
      if (from === 'server' && level === 'handshake' && data[0] === HandshakeType.certificate_verify) {
        const d = data.slice();
        d[d.length - 5] ^= 1;
        return d;
      }
      return data;
    };
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), tamper);
    assert.is(r.c.alert?.alert, Alert.decrypt_error);
    // Tampered server Finished → decrypt_error.
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (from === 'server' && data[0] === HandshakeType.finished) {
        const d = data.slice();
        d[6] ^= 0x80;
        return d;
      }
      return data;
    });
    assert.is(r.c.alert?.alert, Alert.decrypt_error);
    // Tampered client Finished → decrypt_error at the server, which never reports completion.
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (from === 'client' && data[0] === HandshakeType.finished) {
        const d = data.slice();
        d[10] ^= 0x01;
        return d;
      }
      return data;
    });
    assert.is(r.s.alert?.alert, Alert.decrypt_error);
    assert.not.ok(r.s.complete);
  });

  test(`${p.name}: ALPN negotiation`, async () => {
    // no overlap
    let r = await runPair(new TlsClient(clientCfg(p, { alpn: ['spdy/3'] })), new TlsServer(serverCfg(p)));
    assert.is(r.s.alert?.alert, Alert.no_application_protocol);
    // client offers none: fine unless required
    let client = new TlsClient(clientCfg(p, { alpn: [] }));
    r = await runPair(client, new TlsServer(serverCfg(p)));
    ok(r, 'no alpn');
    assert.is(client.info.alpn, null);
    r = await runPair(new TlsClient(clientCfg(p, { alpn: [] })), new TlsServer(serverCfg(p, { requireAlpn: true })));
    assert.is(r.s.alert?.alert, Alert.no_application_protocol);
    // server without ALPN ignores the client's list
    client = new TlsClient(clientCfg(p));
    r = await runPair(client, new TlsServer(serverCfg(p, { alpn: [] })));
    ok(r, 'server no alpn');
    assert.is(client.info.alpn, null);
  });

  test(`${p.name}: SNI sent for names, omitted for IP literals`, async () => {
    const log = { serverName: [] as (string | null)[] };
    let server = new TlsServer(serverCfg(p));
    let r = await runPair(new TlsClient(clientCfg(p, { serverName: 'Example.COM', verifier: pinVerifier(p256.certDer, log) })), server);
    ok(r, 'sni');
    assert.is(server.info.serverName, 'example.com');
    server = new TlsServer(serverCfg(p));
    const client = new TlsClient(clientCfg(p, { serverName: '127.0.0.1', verifier: pinVerifier(p256.certDer, log) }));
    let ch: Uint8Array | null = null;
    r = await runPair(client, server, (from, level, data) => {
      if (from === 'client' && data[0] === HandshakeType.client_hello) ch = data;
      return data;
    });
    ok(r, 'ip');
    assert.is(server.info.serverName, null);
    assert.is(findExt(parseClientHello(ch!.subarray(4)).extensions, ExtensionType.server_name), undefined);
    assert.equal(log.serverName, ['Example.COM', '127.0.0.1'], 'verifier sees the configured name');
    // IPv6 literal
    server = new TlsServer(serverCfg(p));
    r = await runPair(new TlsClient(clientCfg(p, { serverName: '::1', verifier: pinVerifier(p256.certDer) })), server);
    ok(r, 'ipv6');
    assert.is(server.info.serverName, null);
  });

  test(`${p.name}: resolver picks the certificate by SNI (sync and async)`, async () => {
    const a = makeCert({ keyType: 'ec-p256', sans: ['a.test'] });
    const b = makeCert({ keyType: 'ed25519', sans: ['b.test'] });
    const seen: string[] = [];
    const ids: Record<string, ServerIdentity> = {
      'a.test': { chain: [a.certDer], key: a.keyDer, alpn: ['a-proto'] },
      'b.test': { chain: [b.certDer], key: b.keyDer },
    };
    for (const async of [false, true]) {
      const cfg: TlsServerConfig = {
        provider: p,
        alpn: ['h2'],
        resolve: (hello) => {
          seen.push(`${hello.serverName}|${hello.alpn.join(',')}|${hello.cipherSuites.length}|${hello.groups.length}|${hello.signatureSchemes.length > 0}`);
          const id = ids[hello.serverName ?? '']!;
          return async ? new Promise((res) => setTimeout(() => res(id), 1)) : id;
        },
      };
      for (const [name, cert] of [['a.test', a], ['b.test', b]] as const) {
        const server = new TlsServer(cfg);
        const client = new TlsClient({ provider: p, serverName: name, verifier: pinVerifier(cert.certDer), alpn: ['h2', 'a-proto'] });
        const r = await runPair(client, server);
        ok(r, `${name} async=${async}`);
        assert.is(client.info.alpn, name === 'a.test' ? 'a-proto' : 'h2', 'per-identity ALPN');
      }
    }
    assert.ok(seen[0]!.startsWith('a.test|h2,a-proto|3|4|true'), seen[0]);
    // A rejecting resolver becomes an alert; pending never rejects.
    const server = new TlsServer({
      provider: p,
      resolve: () => Promise.reject(new Error('no such host')),
    });
    const client = new TlsClient(clientCfg(p));
    client.start();
    for (let e = client.poll(); e; e = client.poll()) if (e.type === 'send') server.receive(e.level, e.data);
    assert.ok(server.pending);
    await server.pending;
    const ev = server.poll();
    assert.is(ev?.type, 'alert');
    assert.is(ev?.type === 'alert' && ev.alert, Alert.handshake_failure);
    // A resolver returning a key that does not match → internal_error.
    const bad = new TlsServer({ provider: p, resolve: () => ({ chain: [a.certDer], key: b.keyDer }) });
    const r = await runPair(new TlsClient(clientCfg(p)), bad);
    assert.is(r.s.alert?.alert, Alert.internal_error);
  });

  test(`${p.name}: HelloRetryRequest for a group`, async () => {
    const client = new TlsClient(clientCfg(p, { groups: ['x25519', 'secp384r1'], keyShares: ['x25519'] }));
    const server = new TlsServer(serverCfg(p, { groups: ['secp384r1'] }));
    const r = await runPair(client, server);
    ok(r, 'hrr');
    assert.is(client.info.helloRetry, true);
    assert.is(server.info.helloRetry, true);
    assert.is(client.info.group, 'secp384r1');
    // no group in common at all
    const r2 = await runPair(new TlsClient(clientCfg(p, { groups: ['x25519'] })), new TlsServer(serverCfg(p, { groups: ['secp384r1'] })));
    assert.is(r2.s.alert?.alert, Alert.handshake_failure);
  });

  test(`${p.name}: HelloRetryRequest with cookie (and with group change)`, async () => {
    let client = new TlsClient(clientCfg(p));
    let server = new TlsServer(serverCfg(p, { helloRetryCookie: true }));
    let hellos = 0;
    const count: Tamper = (from, level, data) => {
      if (from === 'client' && data[0] === HandshakeType.client_hello) {
        hellos++;
        if (hellos === 2) assert.ok(findExt(parseClientHello(data.subarray(4)).extensions, ExtensionType.cookie), 'cookie echoed');
      }
      return data;
    };
    let r = await runPair(client, server, count);
    ok(r, 'cookie');
    assert.is(hellos, 2);
    assert.is(client.info.helloRetry, true);
    client = new TlsClient(clientCfg(p, { keyShares: ['x25519'] }));
    server = new TlsServer(serverCfg(p, { helloRetryCookie: true, groups: ['secp256r1'] }));
    r = await runPair(client, server);
    ok(r, 'cookie+group');
    assert.is(client.info.group, 'secp256r1');
    // A second ClientHello without the cookie → illegal_parameter.
    client = new TlsClient(clientCfg(p));
    server = new TlsServer(serverCfg(p, { helloRetryCookie: true }));
    let n = 0;
    r = await runPair(client, server, (from, level, data) => {
      if (from === 'client' && data[0] === HandshakeType.client_hello && ++n === 2) {
        const ch = parseClientHello(data.subarray(4));
        ch.extensions = ch.extensions.filter((e) => e.type !== ExtensionType.cookie);
        return encodeClientHello(ch);
      }
      return data;
    });
    assert.is(r.s.alert?.alert, Alert.illegal_parameter);
    // A second HelloRetryRequest → unexpected_message at the client.
    client = new TlsClient(clientCfg(p));
    server = new TlsServer(serverCfg(p, { helloRetryCookie: true }));
    let hrrCopy: Uint8Array | null = null;
    r = await runPair(client, server, (from, level, data) => {
      if (from === 'server' && data[0] === HandshakeType.server_hello && !hrrCopy) {
        hrrCopy = data;
        return [data, data];
      }
      return data;
    });
    assert.is(r.c.alert?.alert, Alert.unexpected_message);
  });

  test(`${p.name}: second ClientHello may change only what the HelloRetryRequest allows (RFC 8446 §4.1.2)`, async () => {
    /** Runs a handshake whose second ClientHello is rewritten by `edit`; returns the server's alert. */
    const run = async (server: Partial<TlsServerConfig>, client: Partial<TlsClientConfig>, edit: (ch: codec.ClientHello, raw: Uint8Array) => Uint8Array) => {
      let n = 0;
      const r = await runPair(new TlsClient(clientCfg(p, client)), new TlsServer(serverCfg(p, server)), (from, _level, data) => {
        if (from === 'client' && data[0] === HandshakeType.client_hello && ++n === 2) return edit(parseClientHello(data.subarray(4)), data);
        return data;
      });
      assert.is(n, 2, 'a second ClientHello was sent');
      return r.s.alert;
    };
    const keyShare = (groups: NamedGroup[]) => codec.encodeClientKeyShares(groups.map((g) => ({ group: NamedGroupCode[g], share: p.keyExchange(g).generate().share })));
    const withExt = (ch: codec.ClientHello, e: codec.Extension) => {
      const i = ch.extensions.findIndex((x) => x.type === e.type);
      if (i >= 0) ch.extensions[i] = e;
      else ch.extensions.splice(ch.extensions.length - (findExt(ch.extensions, ExtensionType.pre_shared_key) ? 1 : 0), 0, e);
      return encodeClientHello(ch);
    };
    const cookieOnly = { server: { helloRetryCookie: true }, client: { groups: ['x25519', 'secp256r1'] as NamedGroup[], keyShares: ['x25519'] as NamedGroup[] } };
    const groupHrr = { server: { groups: ['secp256r1'] as NamedGroup[] }, client: { groups: ['x25519', 'secp256r1', 'secp384r1'] as NamedGroup[], keyShares: ['x25519'] as NamedGroup[] } };
    // unchanged (control): no alert
    assert.is((await run(cookieOnly.server, cookieOnly.client, (_ch, raw) => raw))?.error.message, undefined, 'control: cookie');
    assert.is((await run(groupHrr.server, groupHrr.client, (_ch, raw) => raw))?.error.message, undefined, 'control: group');
    // cookie-only HRR: the key_share must stay as it was
    let a = await run(cookieOnly.server, cookieOnly.client, (ch) => withExt(ch, keyShare(['secp256r1'])));
    assert.is(a?.alert, Alert.illegal_parameter, `cookie HRR, share replaced: ${a?.error.message}`);
    a = await run(cookieOnly.server, cookieOnly.client, (ch) => withExt(ch, keyShare(['x25519', 'secp256r1'])));
    assert.is(a?.alert, Alert.illegal_parameter, `cookie HRR, share added: ${a?.error.message}`);
    // group HRR: exactly one share, for the requested group
    a = await run(groupHrr.server, groupHrr.client, (ch) => withExt(ch, keyShare(['secp384r1'])));
    assert.is(a?.alert, Alert.illegal_parameter, `group HRR, other group: ${a?.error.message}`);
    a = await run(groupHrr.server, groupHrr.client, (ch) => withExt(ch, keyShare(['secp256r1', 'secp384r1'])));
    assert.is(a?.alert, Alert.illegal_parameter, `group HRR, two shares: ${a?.error.message}`);
    // legacy_version must not change
    a = await run(groupHrr.server, groupHrr.client, (_ch, raw) => {
      const c = raw.slice();
      c[5] = 0x02;
      return c;
    });
    assert.is(a?.alert, Alert.illegal_parameter, `legacy_version: ${a?.error.message}`);
    // a pre_shared_key the first ClientHello did not have
    a = await run(groupHrr.server, groupHrr.client, (ch) =>
      withExt(ch, codec.encodeOfferedPsks({ identities: [{ identity: new Uint8Array(40).fill(7), obfuscatedAge: 1 }], binders: [new Uint8Array(32)] })),
    );
    assert.is(a?.alert, Alert.illegal_parameter, `pre_shared_key added: ${a?.error.message}`);
    // other extensions (here: ALPN) must not change
    a = await run(groupHrr.server, groupHrr.client, (ch) => withExt(ch, codec.encodeAlpn(['h2'])));
    assert.is(a?.alert, Alert.illegal_parameter, `ALPN changed: ${a?.error.message}`);
  });

  test(`${p.name}: client authentication`, async () => {
    const cc = makeCert({ keyType: 'ec-p384', sans: ['client.test'] });
    const verifier = pinVerifier(cc.certDer);
    // request, none given
    let server = new TlsServer(serverCfg(p, { clientAuth: 'request', clientVerifier: verifier }));
    let r = await runPair(new TlsClient(clientCfg(p)), server);
    ok(r, 'request/none');
    assert.equal(server.info.peerCertificates, []);
    // require, none given
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p, { clientAuth: 'require', clientVerifier: verifier })));
    assert.is(r.s.alert?.alert, Alert.certificate_required);
    // require, given
    for (const mode of ['request', 'require'] as const) {
      server = new TlsServer(serverCfg(p, { clientAuth: mode, clientVerifier: verifier }));
      r = await runPair(new TlsClient(clientCfg(p, { clientCertificate: { chain: [cc.certDer], key: cc.keyDer } })), server);
      ok(r, `${mode}/given`);
      assert.ok(bytesEqual(server.info.peerCertificates![0]!, cc.certDer));
    }
    // rsa client key
    const rc = makeCert({ keyType: 'rsa2048', sans: ['client.test'] });
    server = new TlsServer(serverCfg(p, { clientAuth: 'require', clientVerifier: pinVerifier(rc.certDer) }));
    r = await runPair(new TlsClient(clientCfg(p, { clientCertificate: { chain: [rc.certDer], key: rc.keyDer } })), server);
    ok(r, 'rsa client');
    // wrong client certificate → the verifier's alert
    r = await runPair(
      new TlsClient(clientCfg(p, { clientCertificate: { chain: [rc.certDer], key: rc.keyDer } })),
      new TlsServer(serverCfg(p, { clientAuth: 'require', clientVerifier: verifier })),
    );
    assert.is(r.s.alert?.alert, Alert.bad_certificate);
    // tampered client CertificateVerify → decrypt_error
    r = await runPair(
      new TlsClient(clientCfg(p, { clientCertificate: { chain: [cc.certDer], key: cc.keyDer } })),
      new TlsServer(serverCfg(p, { clientAuth: 'require', clientVerifier: verifier })),
      (from, level, data) => {
        if (from === 'client' && data[0] === HandshakeType.certificate_verify) {
          const d = data.slice();
          d[d.length - 3] ^= 4;
          return d;
        }
        return data;
      },
    );
    assert.is(r.s.alert?.alert, Alert.decrypt_error);
  });

  test(`${p.name}: QUIC mode with transport parameters`, async () => {
    const ctp = Uint8Array.of(1, 2, 3, 4);
    const stp = Uint8Array.of(9, 8, 7);
    const client = new TlsClient(clientCfg(p, { quic: { transportParameters: ctp }, alpn: ['h3'] }));
    const server = new TlsServer(serverCfg(p, { quic: { transportParameters: stp }, alpn: ['h3'] }));
    const levels: string[] = [];
    let ch: Uint8Array | null = null;
    const r = await runPair(client, server, (from, level, data) => {
      levels.push(`${from}:${level}`);
      if (data[0] === HandshakeType.client_hello) ch = data;
      return data;
    });
    ok(r, 'quic');
    assert.ok(bytesEqual(client.info.peerTransportParameters!, stp));
    assert.ok(bytesEqual(server.info.peerTransportParameters!, ctp));
    assert.is(parseClientHello(ch!.subarray(4)).sessionId.length, 0, 'no middlebox compatibility in QUIC');
    assert.ok(levels.includes('server:initial') && levels.includes('server:handshake') && levels.includes('client:handshake'));
    assert.ok(levels.includes('server:application'), 'NewSessionTicket at application level');
    assert.ok(r.c.events.findIndex((e) => e.type === 'secret' && e.level === 'handshake' && e.direction === 'write') < r.c.events.findIndex((e) => e.type === 'send' && e.level === 'handshake'));
    assert.throws(() => client.updateKeys(false), /QUIC/);
    // A ticket whose max_early_data is not 0xffffffff is a QUIC PROTOCOL_VIOLATION (RFC 9001 §4.6.1).
    const c2 = new TlsClient(clientCfg(p, { quic: { transportParameters: ctp }, alpn: ['h3'] }));
    ok(await runPair(c2, new TlsServer(serverCfg(p, { quic: { transportParameters: stp }, alpn: ['h3'] }))), 'quic 2');
    c2.receive('application', codec.encodeNewSessionTicket({ lifetime: 10, ageAdd: 1, nonce: Uint8Array.of(0), ticket: Uint8Array.of(1), maxEarlyData: 16384 }));
    const bad = c2.poll();
    assert.ok(bad?.type === 'alert' && bad.error.layer === 'quic' && bad.error.code === 0x0a && bad.alert === Alert.illegal_parameter);
    // A QUIC ClientHello with a legacy_session_id is a PROTOCOL_VIOLATION (RFC 9001 §8.4).
    const rs = await runPair(
      new TlsClient(clientCfg(p, { quic: { transportParameters: ctp }, alpn: ['h3'] })),
      new TlsServer(serverCfg(p, { quic: { transportParameters: stp }, alpn: ['h3'] })),
      (from, level, data) => {
        if (data[0] !== HandshakeType.client_hello) return data;
        const c = parseClientHello(data.subarray(4));
        c.sessionId = new Uint8Array(32);
        return encodeClientHello(c);
      },
    );
    assert.is(rs.s.alert?.error.layer, 'quic');
    // A KeyUpdate message in QUIC is unexpected_message.
    client.receive('application', Uint8Array.of(24, 0, 0, 1, 0));
    const ev = client.poll();
    assert.is(ev?.type === 'alert' && ev.alert, Alert.unexpected_message);
    // no ALPN overlap in QUIC, server without TP
    const r2 = await runPair(
      new TlsClient(clientCfg(p, { quic: { transportParameters: ctp }, alpn: ['h3'] })),
      new TlsServer(serverCfg(p, { quic: { transportParameters: stp }, alpn: ['hq-interop'] })),
    );
    assert.is(r2.s.alert?.alert, Alert.no_application_protocol);
    const r3 = await runPair(new TlsClient(clientCfg(p, { alpn: ['h3'] })), new TlsServer(serverCfg(p, { quic: { transportParameters: stp }, alpn: ['h3'] })));
    assert.is(r3.s.alert?.alert, Alert.missing_extension, 'TCP client to QUIC server: no transport parameters');
    const r4 = await runPair(new TlsClient(clientCfg(p, { quic: { transportParameters: ctp }, alpn: ['h3'] })), new TlsServer(serverCfg(p, { alpn: ['h3'] })));
    assert.is(r4.c.alert?.alert, Alert.missing_extension, 'server without transport parameters');
  });

  test(`${p.name}: TCP mode uses a 32-byte legacy_session_id, echoed; downgrade sentinel; no TLS 1.3`, async () => {
    let ch: Uint8Array | null = null;
    let sh: Uint8Array | null = null;
    let r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (data[0] === HandshakeType.client_hello) ch = data;
      if (data[0] === HandshakeType.server_hello) sh = data;
      return data;
    });
    ok(r, 'tcp');
    const sid = parseClientHello(ch!.subarray(4)).sessionId;
    assert.is(sid.length, 32);
    assert.ok(bytesEqual(sh!.subarray(4 + 2 + 32 + 1, 4 + 2 + 32 + 1 + 32), sid));
    // downgrade sentinel in ServerHello.random
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (data[0] === HandshakeType.server_hello) {
        const d = data.slice();
        d.set([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01], 4 + 2 + 24);
        return d;
      }
      return data;
    });
    assert.is(r.c.alert?.alert, Alert.illegal_parameter);
    // supported_versions selecting TLS 1.2 → illegal_parameter (RFC 8446 §4.2.1); legacy_version is ignored
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (data[0] === HandshakeType.server_hello) {
        const d = data.slice();
        d[d.length - 1] = 0x03;
        return d;
      }
      return data;
    });
    assert.is(r.c.alert?.alert, Alert.illegal_parameter);
    // ClientHello without supported_versions → protocol_version
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (data[0] === HandshakeType.client_hello) {
        const c = parseClientHello(data.subarray(4));
        c.extensions = c.extensions.filter((e) => e.type !== ExtensionType.supported_versions);
        return encodeClientHello(c);
      }
      return data;
    });
    assert.is(r.s.alert?.alert, Alert.protocol_version);
    // ServerHello without supported_versions (a TLS 1.2 answer) → protocol_version
    r = await runPair(new TlsClient(clientCfg(p)), new TlsServer(serverCfg(p)), (from, level, data) => {
      if (data[0] === HandshakeType.server_hello) {
        // supported_versions is the last extension: drop its 6 bytes and fix the lengths
        const d = data.slice(0, data.length - 6);
        const body = d.length - 4;
        d[1] = body >> 16;
        d[2] = (body >> 8) & 0xff;
        d[3] = body & 0xff;
        const extLenAt = 4 + 2 + 32 + 1 + 32 + 2 + 1;
        const el = ((d[extLenAt]! << 8) | d[extLenAt + 1]!) - 6;
        d[extLenAt] = el >> 8;
        d[extLenAt + 1] = el & 0xff;
        return d;
      }
      return data;
    });
    assert.is(r.c.alert?.alert, Alert.protocol_version);
  });

  test(`${p.name}: key log lines`, async () => {
    const cl: string[] = [];
    const sl: string[] = [];
    const r = await runPair(new TlsClient(clientCfg(p, { keyLog: (l) => cl.push(l) })), new TlsServer(serverCfg(p, { keyLog: (l) => sl.push(l) })));
    ok(r, 'keylog');
    const labels = (ls: string[]) => ls.map((l) => l.split(' ')[0]).sort();
    const want = ['CLIENT_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_TRAFFIC_SECRET_0', 'EXPORTER_SECRET', 'SERVER_HANDSHAKE_TRAFFIC_SECRET', 'SERVER_TRAFFIC_SECRET_0'];
    assert.equal(labels(cl), want);
    assert.equal([...cl].sort(), [...sl].sort(), 'both sides log the same lines');
    for (const l of cl) assert.match(l, /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64}$/);
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    assert.ok(cl.includes(`CLIENT_TRAFFIC_SECRET_0 ${cl[0]!.split(' ')[1]} ${hex(r.c.secrets.get('application/write')!)}`));
  });

  test(`${p.name}: exporter agrees`, async () => {
    const client = new TlsClient(clientCfg(p));
    const server = new TlsServer(serverCfg(p));
    ok(await runPair(client, server), 'exp');
    const a = client.exportKeyingMaterial('EXPORTER-test', 32, Uint8Array.of(1));
    const b = server.exportKeyingMaterial('EXPORTER-test', 32, Uint8Array.of(1));
    assert.ok(bytesEqual(a, b));
    assert.not.ok(bytesEqual(a, client.exportKeyingMaterial('EXPORTER-other', 32, Uint8Array.of(1))));
  });

  test(`${p.name}: fragmented delivery (1 byte at a time)`, async () => {
    const client = new TlsClient(clientCfg(p));
    const server = new TlsServer(serverCfg(p));
    const r = await runPair(client, server, (from, level, data) => [...data].map((b) => Uint8Array.of(b)));
    ok(r, 'fragmented');
  });
}

if (providers.length > 1) {
  test('cross-provider handshakes', async () => {
    const [a, b] = providers;
    for (const [cp, sp] of [[a!, b!], [b!, a!]]) {
      for (const kt of ['ec-p256', 'rsa2048', 'ed25519'] as TestKeyType[]) {
        const cert = makeCert({ keyType: kt, sans: ['example.com'] });
        const r = await runPair(new TlsClient(clientCfg(cp, {}, cert)), new TlsServer(serverCfg(sp, {}, cert)));
        ok(r, `${cp.name}→${sp.name} ${kt}`);
      }
    }
  });
}

test('configuration errors are actionable', () => {
  const p = providers[0]!;
  const other = makeCert({ keyType: 'ec-p256', sans: ['x'], tag: 'mismatch' });
  assert.throws(() => new TlsClient({ provider: p, serverName: 'a' }), (e: Error) => e instanceof ConfigError && /verifier/.test(e.message) && /insecureSkipVerify/.test(e.message));
  assert.not.throws(() => new TlsClient({ provider: p, serverName: 'a', insecureSkipVerify: true }));
  assert.throws(() => new TlsServer({ provider: p, identity: { chain: [p256.certDer], key: other.keyDer } }), (e: Error) => e instanceof ConfigError && /does not match/.test(e.message));
  assert.throws(() => new TlsServer({ provider: p, identity: { chain: [p256.certDer], key: undefined as never } }), (e: Error) => e instanceof ConfigError && /missing private key/.test(e.message));
  assert.throws(() => new TlsServer({ provider: p }), (e: Error) => e instanceof ConfigError && /identity/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, cipherSuites: ['TLS_FOO' as CipherSuite] }), (e: Error) => e instanceof ConfigError && /unknown cipher suite "TLS_FOO"/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, groups: ['ffdhe2048' as NamedGroup] }), (e: Error) => e instanceof ConfigError && /unknown group/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, signatureSchemes: ['dsa' as SignatureScheme] }), (e: Error) => e instanceof ConfigError && /unknown signature scheme/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, alpn: [''] }), (e: Error) => e instanceof ConfigError && /empty ALPN/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, alpn: ['x'.repeat(256)] }), (e: Error) => e instanceof ConfigError && /255/.test(e.message));
  assert.throws(() => new TlsServer({ ...serverCfg(p), alpn: [''] }), (e: Error) => e instanceof ConfigError);
  assert.throws(() => new TlsServer({ ...serverCfg(p), clientAuth: 'require' }), (e: Error) => e instanceof ConfigError && /clientVerifier/.test(e.message));
  assert.throws(() => new TlsClient({ provider: p, insecureSkipVerify: true, quic: { transportParameters: new Uint8Array(0) } }), (e: Error) => e instanceof ConfigError && /ALPN/.test(e.message));
  assert.throws(() => new TlsServer({ ...serverCfg(p), tickets: { lifetimeSeconds: 700000 } }), (e: Error) => e instanceof ConfigError);
});

test('MessageBuffer: any fragmentation reassembles the same messages; bounded', () => {
  const msgs = [1, 0, 300, 70000, 5].map((n, i) => codec.handshakeMessage(i + 1, new Uint8Array(n).fill(i)));
  const all = codec.concat(...msgs);
  for (const step of [1, 3, 4, 1000, all.length]) {
    const b = new codec.MessageBuffer();
    const got: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += step) {
      b.push(all.subarray(i, i + step));
      for (let m = b.next(); m; m = b.next()) got.push(m.raw);
    }
    assert.is(got.length, msgs.length, `step ${step}`);
    got.forEach((m, i) => assert.ok(bytesEqual(m, msgs[i]!)));
    assert.is(b.pending, 0);
  }
  const small = new codec.MessageBuffer(100);
  small.push(Uint8Array.of(1, 0, 0, 101));
  assert.throws(() => small.next(), (e: Error) => e instanceof ProtocolViolation && e.code === Alert.unexpected_message);
  const parked = new codec.MessageBuffer(100);
  assert.throws(() => {
    for (let i = 0; i < 100; i++) parked.push(new Uint8Array(10));
  }, (e: Error) => e instanceof ProtocolViolation);
  // 1-byte pushes of a large message stay linear (no concat per push)
  const big = codec.handshakeMessage(11, new Uint8Array(120000));
  const t0 = performance.now();
  const bb = new codec.MessageBuffer();
  for (let i = 0; i < big.length; i++) bb.push(big.subarray(i, i + 1));
  assert.ok(bb.next());
  assert.ok(performance.now() - t0 < 1000, 'linear reassembly');
});

test('receive() before start, after death, and at a wrong level never throws', () => {
  const p = providers[0]!;
  const server = new TlsServer(serverCfg(p));
  server.receive('handshake', Uint8Array.of(1, 2, 3, 4, 5));
  const e = server.poll();
  assert.is(e?.type === 'alert' && e.alert, Alert.unexpected_message);
  server.receive('initial', Uint8Array.of(1, 0, 0, 0));
  assert.is(server.poll(), undefined, 'dead session ignores input');
  const client = new TlsClient(clientCfg(p));
  client.start();
  while (client.poll());
  client.receive('initial', Uint8Array.of(HandshakeType.finished, 0, 0, 1, 0));
  const ce = client.poll();
  assert.is(ce?.type === 'alert' && ce.alert, Alert.unexpected_message);
});

test.run();
