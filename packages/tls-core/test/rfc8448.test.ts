/**
 * RFC 8448 traces, over both providers.
 *
 * Byte-exact (compared with the RFC's hex dumps):
 *  - §3, §4, §5, §6: every key-schedule secret (early, handshake, master, c/s hs traffic,
 *    c/s ap traffic, exporter master, resumption master, resumption PSK, binder key, c e traffic,
 *    e exp master, finished keys and both Finished verify_data), computed by keyschedule.ts and the
 *    Transcript class (incl. the §5 message_hash construction) from the RFC's messages; the ECDHE
 *    shared secrets (x25519, P-256) from the RFC's private keys.
 *  - Codec: parse + re-encode of every RFC handshake message is byte-identical.
 *  - §3 client (TlsClient fed the RFC's ClientHello bytes via the clientHelloOverride hook and the
 *    RFC server flight): verifies the RFC's RSA-PSS CertificateVerify, emits the RFC's client
 *    Finished byte for byte, every emitted secret and EXPORTER_SECRET key-log line equal the RFC,
 *    and the NewSessionTicket yields the RFC's resumption PSK.
 *  - §3 server (TlsServer fed the RFC's ClientHello with the RFC's random and x25519 key):
 *    ServerHello byte for byte, handshake traffic secrets equal. The RFC's 1024-bit RSA key is
 *    refused by our providers (minimum 2048), so the server signs with a P-256 test key (verified,
 *    not compared); our EncryptedExtensions lacks the RFC's supported_groups and record_size_limit,
 *    so the secrets after it differ by design.
 *  - §4 client: 0-RTT: c e traffic secret, handshake/application secrets, EndOfEarlyData and the
 *    client Finished byte for byte; the PSK binder in the RFC ClientHello equals ours.
 *  - §5: our client driven through the RFC's HelloRetryRequest (both ClientHellos given verbatim
 *    by test hooks): secrets and client Finished byte-exact; our server's HelloRetryRequest equals
 *    the RFC's minus its cookie extension.
 *  - §7 (compatibility mode, 32-byte legacy_session_id): the same client and server checks as §3
 *    (client Finished and all client secrets byte-exact; ServerHello echoing the session id
 *    byte-exact).
 *  - §6 client: with no client certificate configured, our client answers the RFC's
 *    CertificateRequest flight; the application traffic secrets (which depend only on the
 *    transcript through the server Finished) are byte-exact. The RFC's client and server
 *    CertificateVerify signatures are verified with the provider.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import type { SessionTicket, TlsEvent } from '../src/handshake/api.js';
import { TlsClient } from '../src/handshake/client.js';
import { TlsServer } from '../src/handshake/server.js';
import {
  HandshakeType,
  concat,
  encodeCertificate,
  encodeCertificateVerify,
  encodeClientHello,
  encodeExtensionsMessage,
  encodeNewSessionTicket,
  encodeServerHello,
  parseCertificate,
  parseCertificateRequest,
  parseCertificateVerify,
  parseClientHello,
  parseEncryptedExtensions,
  parseNewSessionTicket,
  parseServerHello,
  toHex,
  ExtensionType,
  encodeCertificateRequest,
} from '../src/handshake/codec.js';
import { Transcript, certificateVerifyContent } from '../src/handshake/common.js';
import { KeySchedule } from '../src/keyschedule.js';
import { certificateSpki } from '../src/x509/spki.js';
import { makeCert } from '../../../test/support/certs.js';
import { field, section } from './rfc8448-vectors.js';

const eq = (a: Uint8Array, b: Uint8Array, msg: string) => assert.is(toHex(a), toHex(b), msg);

const s3 = section(3);
const s4 = section(4);
const s5 = section(5);
const s6 = section(6);
const s7 = section(7);

function common(sec: string[], occ = 0) {
  const f = (step: string, label: string, o = occ) => field(sec, step, label, o);
  return {
    f,
    early: () => f('{server}  extract secret "early"', 'secret'),
    hsIkm: () => f('{server}  extract secret "handshake"', 'IKM'),
    hs: () => f('{server}  extract secret "handshake"', 'secret'),
    cHs: () => f('{server}  derive secret "tls13 c hs traffic"', 'expanded'),
    sHs: () => f('{server}  derive secret "tls13 s hs traffic"', 'expanded'),
    master: () => f('{server}  extract secret "master"', 'secret'),
    cAp: () => f('{server}  derive secret "tls13 c ap traffic"', 'expanded'),
    sAp: () => f('{server}  derive secret "tls13 s ap traffic"', 'expanded'),
    exp: () => f('{server}  derive secret "tls13 exp master"', 'expanded'),
    res: () => f('{client}  derive secret "tls13 res master"', 'expanded'),
    sFinKey: () => f('{server}  calculate finished "tls13 finished":', 'expanded'),
    cFinKey: () => f('{client}  calculate finished "tls13 finished":', 'expanded'),
    sh: () => f('{server}  construct a ServerHello', 'ServerHello'),
    ee: () => f('{server}  construct an EncryptedExtensions', 'EncryptedExtensions'),
    cert: () => f('{server}  construct a Certificate handshake', 'Certificate'),
    cv: () => f('{server}  construct a CertificateVerify', 'CertificateVerify'),
    sf: () => f('{server}  construct a Finished', 'Finished'),
    cf: () => f('{client}  construct a Finished', 'Finished'),
  };
}

function drain(s: { poll(): TlsEvent | undefined }): TlsEvent[] {
  const out: TlsEvent[] = [];
  for (let e = s.poll(); e; e = s.poll()) out.push(e);
  return out;
}
const secretOf = (evs: TlsEvent[], level: string, dir: string) =>
  (evs.find((e) => e.type === 'secret' && e.level === level && e.direction === dir) as Extract<TlsEvent, { type: 'secret' }> | undefined)?.secret;
const sendsOf = (evs: TlsEvent[], level?: string) => evs.filter((e): e is Extract<TlsEvent, { type: 'send' }> => e.type === 'send' && (!level || e.level === level)).map((e) => e.data);

for (const p of providers) {
  const H = (...m: Uint8Array[]) => p.digest('sha256', concat(...m));

  test(`${p.name}: §3 key schedule byte for byte`, () => {
    const c = common(s3);
    const ch = c.f('{client}  construct a ClientHello', 'ClientHello');
    const [sh, ee, cert, cv, sf, cf] = [c.sh(), c.ee(), c.cert(), c.cv(), c.sf(), c.cf()];
    const ks = new KeySchedule(p, 'sha256');
    const cPriv = c.f('{client}  create an ephemeral x25519 key pair', 'private key');
    const sPriv = c.f('{server}  create an ephemeral x25519 key pair', 'private key');
    const sPub = c.f('{server}  create an ephemeral x25519 key pair', 'public key');
    eq(p.keyExchange('x25519').generate(sPriv).share, sPub, 'server public key');
    const shared = p.keyExchange('x25519').generate(cPriv).complete(sPub)!;
    eq(shared, c.hsIkm(), 'ECDHE shared secret');
    const early = ks.earlySecret(null);
    eq(early, c.early(), 'early secret');
    const hs = ks.handshakeSecret(early, shared);
    eq(hs, c.hs(), 'handshake secret');
    eq(ks.clientHandshakeTrafficSecret(hs, H(ch, sh)), c.cHs(), 'c hs traffic');
    eq(ks.serverHandshakeTrafficSecret(hs, H(ch, sh)), c.sHs(), 's hs traffic');
    const master = ks.masterSecret(hs);
    eq(master, c.master(), 'master');
    eq(ks.finishedKey(c.sHs()), c.sFinKey(), 'server finished key');
    eq(ks.finishedMac(c.sHs(), H(ch, sh, ee, cert, cv)), sf.subarray(4), 'server Finished');
    const th = H(ch, sh, ee, cert, cv, sf);
    eq(ks.clientApplicationTrafficSecret(master, th), c.cAp(), 'c ap traffic');
    eq(ks.serverApplicationTrafficSecret(master, th), c.sAp(), 's ap traffic');
    eq(ks.exporterMasterSecret(master, th), c.exp(), 'exp master');
    eq(ks.finishedKey(c.cHs()), c.cFinKey(), 'client finished key');
    eq(ks.finishedMac(c.cHs(), th), cf.subarray(4), 'client Finished');
    const res = ks.resumptionMasterSecret(master, H(ch, sh, ee, cert, cv, sf, cf));
    eq(res, c.res(), 'res master');
    eq(ks.resumptionPsk(res, Uint8Array.of(0, 0)), c.f('{server}  generate resumption secret', 'expanded'), 'resumption PSK');
    // The RSA-PSS signature of the RFC verifies against the RFC certificate.
    const leaf = parseCertificate(cert.subarray(4)).entries[0]!.cert;
    const cvm = parseCertificateVerify(cv.subarray(4));
    assert.is(cvm.scheme, 0x0804);
    assert.ok(p.verify('rsa_pss_rsae_sha256', certificateSpki(leaf), certificateVerifyContent(true, H(ch, sh, ee, cert)), cvm.signature), 'RFC CertificateVerify verifies');
    assert.not.ok(p.verify('rsa_pss_rsae_sha256', certificateSpki(leaf), certificateVerifyContent(false, H(ch, sh, ee, cert)), cvm.signature), 'wrong context fails');
  });

  test(`${p.name}: codec round-trips every RFC 8448 message`, () => {
    for (const [sec, occs] of [[s3, 1], [s4, 1], [s5, 2], [s6, 1]] as const) {
      for (let o = 0; o < occs; o++) {
        const ch = o === 0 && sec === s4 ? field(s4, '{client}  send handshake record', 'payload') : field(sec, '{client}  construct a ClientHello', 'ClientHello', o);
        eq(encodeClientHello(parseClientHello(ch.subarray(4))), ch, 'ClientHello');
        const sh = field(sec, '{server}  construct a ServerHello', 'ServerHello', o);
        eq(encodeServerHello(parseServerHello(sh.subarray(4))), sh, 'ServerHello');
      }
      const ee = field(sec, '{server}  construct an EncryptedExtensions', 'EncryptedExtensions');
      eq(encodeExtensionsMessage(HandshakeType.encrypted_extensions, parseEncryptedExtensions(ee.subarray(4))), ee, 'EncryptedExtensions');
      const sf = field(sec, '{server}  construct a Finished', 'Finished');
      assert.is(sf.length, 36);
      if (sec !== s4) {
        const cert = field(sec, '{server}  construct a Certificate handshake', 'Certificate');
        eq(encodeCertificate(parseCertificate(cert.subarray(4))), cert, 'Certificate');
        const cv = field(sec, '{server}  construct a CertificateVerify', 'CertificateVerify');
        eq(encodeCertificateVerify(parseCertificateVerify(cv.subarray(4))), cv, 'CertificateVerify');
      }
    }
    const cr = field(s6, '{server}  construct a CertificateRequest', 'CertificateRequest');
    eq(encodeCertificateRequest(parseCertificateRequest(cr.subarray(4))), cr, 'CertificateRequest');
    const nst = field(s3, '{server}  construct a NewSessionTicket', 'NewSessionTicket');
    const t = parseNewSessionTicket(nst.subarray(4));
    assert.is(t.lifetime, 30);
    assert.is(t.maxEarlyData, 1024);
    eq(encodeNewSessionTicket(t), nst, 'NewSessionTicket');
  });

  for (const [name, sec] of [['§3', s3], ['§7 (compatibility mode)', s7]] as const)
  test(`${p.name}: ${name} our client against the RFC server flight`, () => {
    const c = common(sec);
    const ch = c.f('{client}  construct a ClientHello', 'ClientHello');
    const keylog: string[] = [];
    const client = new TlsClient({
      provider: p,
      serverName: 'server',
      insecureSkipVerify: true,
      clientHelloOverride: ch,
      keySharePrivateKeys: { x25519: c.f('{client}  create an ephemeral x25519 key pair', 'private key') },
      keyLog: (l) => keylog.push(l),
      now: () => 1_000_000,
    });
    client.start();
    let ev = drain(client);
    eq(sendsOf(ev)[0]!, ch, 'ClientHello sent verbatim');
    client.receive('initial', c.sh());
    ev = drain(client);
    eq(secretOf(ev, 'handshake', 'read')!, c.sHs(), 'handshake read secret');
    eq(secretOf(ev, 'handshake', 'write')!, c.cHs(), 'handshake write secret (with the ServerHello: protected alerts)');
    client.receive('handshake', concat(c.ee(), c.cert(), c.cv(), c.sf()));
    ev = drain(client);
    assert.not.ok(ev.some((e) => e.type === 'alert'), JSON.stringify(ev.find((e) => e.type === 'alert')));
    eq(secretOf(ev, 'application', 'read')!, c.sAp(), 'application read secret');
    eq(secretOf(ev, 'application', 'write')!, c.cAp(), 'application write secret');
    const sent = sendsOf(ev, 'handshake');
    assert.is(sent.length, 1);
    eq(sent[0]!, c.cf(), 'client Finished byte for byte');
    assert.ok(ev.some((e) => e.type === 'handshakeComplete'));
    assert.is(client.info.signatureScheme, 'rsa_pss_rsae_sha256');
    const cr = toHex(parseClientHello(ch.subarray(4)).random);
    assert.ok(keylog.includes(`EXPORTER_SECRET ${cr} ${toHex(c.exp())}`));
    assert.ok(keylog.includes(`SERVER_HANDSHAKE_TRAFFIC_SECRET ${cr} ${toHex(c.sHs())}`));
    // Finished verify_data (RFC 8446 §4.4.4): the bodies of the RFC's Finished messages.
    eq(client.finished!, c.cf().subarray(4), 'our verify_data');
    eq(client.peerFinished!, c.sf().subarray(4), 'peer verify_data');
    assert.not.ok(keylog.some((l) => l.startsWith('EARLY_EXPORTER_SECRET ')), 'no early exporter without 0-RTT');
    if (sec !== s3) return; // §7 has no NewSessionTicket
    client.receive('application', c.f('{server}  construct a NewSessionTicket', 'NewSessionTicket'));
    ev = drain(client);
    const t = (ev.find((e) => e.type === 'sessionTicket') as Extract<TlsEvent, { type: 'sessionTicket' }>).ticket;
    eq(t.psk, c.f('{server}  generate resumption secret', 'expanded'), 'resumption PSK from the ticket');
    assert.is(t.maxEarlyData, 1024);
    assert.is(t.lifetimeSeconds, 30);
  });

  for (const [name, sec] of [['§3', s3], ['§7 (compatibility mode)', s7]] as const)
  test(`${p.name}: ${name} our server answers the RFC ClientHello`, () => {
    const c = common(sec);
    const ch = c.f('{client}  construct a ClientHello', 'ClientHello');
    const sh = c.sh();
    // Our providers refuse the RFC's 1024-bit RSA key, so the server signs with a P-256 test certificate
    // (the ClientHello offers ecdsa_secp256r1_sha256); SH and the handshake secrets do not depend on it.
    const ours = makeCert({ keyType: 'ec-p256', sans: ['server'] });
    const server = new TlsServer({
      provider: p,
      identity: { chain: [ours.certDer], key: ours.keyDer },
      random: parseServerHello(sh.subarray(4)).random,
      keySharePrivateKeys: { x25519: c.f('{server}  create an ephemeral x25519 key pair', 'private key') },
    });
    server.receive('initial', ch);
    const ev = drain(server);
    assert.not.ok(ev.some((e) => e.type === 'alert'), JSON.stringify(ev.find((e) => e.type === 'alert')));
    eq(sendsOf(ev, 'initial')[0]!, sh, 'ServerHello byte for byte');
    eq(secretOf(ev, 'handshake', 'write')!, c.sHs(), 's hs traffic');
    eq(secretOf(ev, 'handshake', 'read')!, c.cHs(), 'c hs traffic');
    const flight = sendsOf(ev, 'handshake');
    assert.is(flight.length, 4, 'EE, Certificate, CertificateVerify, Finished');
    eq(flight[0]!, Uint8Array.of(8, 0, 0, 6, 0, 4, 0, 0, 0, 0), 'EncryptedExtensions: server_name acknowledged');
    const cv = parseCertificateVerify(flight[2]!.subarray(4));
    assert.is(cv.scheme, 0x0403);
    assert.ok(p.verify('ecdsa_secp256r1_sha256', certificateSpki(ours.certDer), certificateVerifyContent(true, H(ch, sh, flight[0]!, flight[1]!)), cv.signature));
    // Our Finished verifies with the RFC's server handshake traffic secret.
    const ks = new KeySchedule(p, 'sha256');
    eq(flight[3]!.subarray(4), ks.finishedMac(c.sHs(), H(ch, sh, flight[0]!, flight[1]!, flight[2]!)), 'server Finished');
  });

  test(`${p.name}: §4 resumed 0-RTT key schedule and our client`, () => {
    const c3 = common(s3);
    const c = common(s4);
    const ch = field(s4, '{client}  send handshake record', 'payload');
    const psk = c3.f('{server}  generate resumption secret', 'expanded');
    const ks = new KeySchedule(p, 'sha256');
    const early = ks.earlySecret(psk);
    eq(early, field(s4, '{client}  extract secret "early"', 'secret'), 'early secret from PSK');
    const prefix = field(s4, '{client}  calculate PSK binder', 'ClientHello prefix');
    eq(prefix, ch.subarray(0, prefix.length), 'prefix is the truncated ClientHello');
    const binder = ks.finishedMac(ks.binderKey(early), H(prefix));
    eq(binder, field(s4, '{client}  calculate PSK binder', 'finished'), 'binder');
    eq(binder, ch.subarray(ch.length - 32), 'binder in the ClientHello');
    eq(ks.clientEarlyTrafficSecret(early, H(ch)), field(s4, '{client}  derive secret "tls13 c e traffic"', 'expanded'), 'c e traffic');
    eq(ks.earlyExporterMasterSecret(early, H(ch)), field(s4, '{client}  derive secret "tls13 e exp master"', 'expanded'), 'e exp master');

    const nst = parseNewSessionTicket(c3.f('{server}  construct a NewSessionTicket', 'NewSessionTicket').subarray(4));
    const ticket: SessionTicket = {
      serverName: 'server',
      suite: 'TLS_AES_128_GCM_SHA256',
      ticket: nst.ticket,
      psk,
      ageAdd: nst.ageAdd,
      receivedAt: 1_000_000,
      lifetimeSeconds: nst.lifetime,
      maxEarlyData: nst.maxEarlyData ?? 0,
      alpn: null,
      transportParameters: null,
    };
    const keylog: string[] = [];
    const client = new TlsClient({
      provider: p,
      serverName: 'server',
      insecureSkipVerify: true,
      clientHelloOverride: ch,
      keySharePrivateKeys: { x25519: field(s4, '{client}  create an ephemeral x25519 key pair', 'private key') },
      resumption: ticket,
      earlyData: true,
      now: () => 1_000_100,
      keyLog: (l) => keylog.push(l),
    });
    client.start();
    let ev = drain(client);
    eq(sendsOf(ev)[0]!, ch, 'ClientHello');
    eq(secretOf(ev, 'early', 'write')!, field(s4, '{client}  derive secret "tls13 c e traffic"', 'expanded'), 'early write secret');
    client.receive('initial', c.sh());
    ev = drain(client);
    eq(secretOf(ev, 'handshake', 'read')!, c.sHs(), 's hs traffic');
    eq(secretOf(ev, 'handshake', 'write')!, c.cHs(), 'c hs traffic');
    client.receive('handshake', concat(c.ee(), c.sf()));
    ev = drain(client);
    assert.not.ok(ev.some((e) => e.type === 'alert'), JSON.stringify(ev.find((e) => e.type === 'alert')));
    assert.ok(ev.some((e) => e.type === 'earlyData' && e.accepted));
    eq(sendsOf(ev, 'early')[0]!, field(s4, '{client}  construct an EndOfEarlyData', 'EndOfEarlyData'), 'EndOfEarlyData');
    eq(secretOf(ev, 'application', 'read')!, c.sAp(), 's ap traffic');
    eq(secretOf(ev, 'application', 'write')!, c.cAp(), 'c ap traffic');
    eq(sendsOf(ev, 'handshake')[0]!, c.cf(), 'client Finished byte for byte');
    assert.is(client.info.resumed, true);
    assert.is(client.info.earlyDataAccepted, true);
    // early_exporter_master_secret from the RFC (NSS key log label EARLY_EXPORTER_SECRET).
    const cr = toHex(parseClientHello(ch.subarray(4)).random);
    assert.ok(keylog.includes(`EARLY_EXPORTER_SECRET ${cr} ${toHex(field(s4, '{client}  derive secret "tls13 e exp master"', 'expanded'))}`));
    eq(client.finished!, c.cf().subarray(4), 'our verify_data (resumed)');
    eq(client.peerFinished!, c.sf().subarray(4), 'peer verify_data (resumed)');
    // Resumption master secret from the RFC transcript.
    const master = ks.masterSecret(ks.handshakeSecret(early, c.hsIkm()));
    eq(master, c.master(), 'master');
    const eoed = field(s4, '{client}  construct an EndOfEarlyData', 'EndOfEarlyData');
    eq(ks.resumptionMasterSecret(master, H(ch, c.sh(), c.ee(), c.sf(), eoed, c.cf())), c.res(), 'res master');
  });

  test(`${p.name}: §5 HelloRetryRequest transcript (message_hash) and our server's HRR`, () => {
    const ch1 = field(s5, '{client}  construct a ClientHello', 'ClientHello', 0);
    const hrr = field(s5, '{server}  construct a ServerHello', 'ServerHello', 0);
    const ch2 = field(s5, '{client}  construct a ClientHello', 'ClientHello', 1);
    const c = common(s5);
    const sh = field(s5, '{server}  construct a ServerHello', 'ServerHello', 1);
    const [ee, cert, cv, sf, cf] = [c.ee(), c.cert(), c.cv(), c.sf(), c.cf()];
    const cPriv = field(s5, '{client}  create an ephemeral P-256 key pair', 'private key');
    const sPub = field(s5, '{server}  create an ephemeral P-256 key pair', 'public key');
    const shared = p.keyExchange('secp256r1').generate(cPriv).complete(sPub)!;
    eq(shared, c.hsIkm(), 'P-256 ECDHE');
    const t = new Transcript(p);
    t.add(ch1);
    t.restartForHrr('sha256');
    t.add(hrr);
    t.add(ch2);
    t.add(sh);
    const ks = new KeySchedule(p, 'sha256');
    const hs = ks.handshakeSecret(ks.earlySecret(null), shared);
    eq(hs, c.hs(), 'handshake secret');
    eq(ks.clientHandshakeTrafficSecret(hs, t.digest()), c.cHs(), 'c hs traffic');
    eq(ks.serverHandshakeTrafficSecret(hs, t.digest()), c.sHs(), 's hs traffic');
    for (const m of [ee, cert, cv]) t.add(m);
    eq(ks.finishedMac(c.sHs(), t.digest()), sf.subarray(4), 'server Finished');
    t.add(sf);
    const master = ks.masterSecret(hs);
    eq(ks.clientApplicationTrafficSecret(master, t.digest()), c.cAp(), 'c ap traffic');
    eq(ks.serverApplicationTrafficSecret(master, t.digest()), c.sAp(), 's ap traffic');
    eq(ks.exporterMasterSecret(master, t.digest()), c.exp(), 'exp master');
    eq(ks.finishedMac(c.cHs(), t.digest()), cf.subarray(4), 'client Finished');
    t.add(cf);
    eq(ks.resumptionMasterSecret(master, t.digest()), c.res(), 'res master');
    // The RFC's RSA-PSS CertificateVerify verifies over the HRR transcript.
    const leaf = parseCertificate(cert.subarray(4)).entries[0]!.cert;
    const t2 = new Transcript(p);
    t2.add(ch1);
    t2.restartForHrr('sha256');
    for (const m of [hrr, ch2, sh, ee, cert]) t2.add(m);
    assert.ok(p.verify('rsa_pss_rsae_sha256', certificateSpki(leaf), certificateVerifyContent(true, t2.digest()), parseCertificateVerify(cv.subarray(4)).signature));

    // Our client driven through the RFC's HRR (both ClientHellos given verbatim): every secret and its Finished byte-exact.
    const client = new TlsClient({
      provider: p,
      serverName: 'server',
      insecureSkipVerify: true,
      clientHelloOverride: ch1,
      clientHello2Override: ch2,
      keySharePrivateKeys: { x25519: field(s5, '{client}  create an ephemeral x25519 key pair', 'private key'), secp256r1: cPriv },
    });
    client.start();
    let cev = drain(client);
    eq(sendsOf(cev)[0]!, ch1, 'ClientHello 1');
    client.receive('initial', hrr);
    cev = drain(client);
    eq(sendsOf(cev)[0]!, ch2, 'ClientHello 2');
    client.receive('initial', sh);
    client.receive('handshake', concat(ee, cert, cv, sf));
    cev = [...cev, ...drain(client)];
    assert.not.ok(cev.some((e) => e.type === 'alert'), JSON.stringify(cev.find((e) => e.type === 'alert')));
    eq(secretOf(cev, 'handshake', 'read')!, c.sHs(), 'client: s hs traffic');
    eq(secretOf(cev, 'application', 'write')!, c.cAp(), 'client: c ap traffic');
    eq(sendsOf(cev, 'handshake')[0]!, cf, 'client Finished after HRR byte for byte');
    assert.is(client.info.helloRetry, true);
    assert.is(client.info.group, 'secp256r1');

    // Our server, preferring P-256, answers the RFC's first ClientHello with the RFC's HRR minus the cookie.
    const ours = makeCert({ keyType: 'ec-p256', sans: ['server'] });
    const server = new TlsServer({ provider: p, identity: { chain: [ours.certDer], key: ours.keyDer }, groups: ['secp256r1'] });
    server.receive('initial', ch1);
    const ev = drain(server);
    const got = sendsOf(ev, 'initial')[0]!;
    const rfc = parseServerHello(hrr.subarray(4));
    rfc.extensions = rfc.extensions.filter((e) => e.type !== ExtensionType.cookie);
    eq(got, encodeServerHello(rfc), 'HelloRetryRequest without cookie');
    // The RFC's second ClientHello echoes the RFC server's cookie, not ours: refused.
    server.receive('initial', ch2);
    const ev2 = drain(server);
    assert.is(ev2[0]?.type === 'alert' && ev2[0].alert, 110 /* unsupported_extension: a cookie we never sent */);
  });

  test(`${p.name}: §6 client authentication key schedule, signatures, and our client`, () => {
    const c = common(s6);
    const ch = c.f('{client}  construct a ClientHello', 'ClientHello');
    const [sh, ee, cert, cv, sf, cf] = [c.sh(), c.ee(), c.cert(), c.cv(), c.sf(), c.cf()];
    const cr = c.f('{server}  construct a CertificateRequest', 'CertificateRequest');
    const ccert = c.f('{client}  construct a Certificate handshake', 'Certificate');
    const ccv = c.f('{client}  construct a CertificateVerify', 'CertificateVerify');
    const ks = new KeySchedule(p, 'sha256');
    const shared = p.keyExchange('x25519').generate(c.f('{client}  create an ephemeral x25519 key pair', 'private key')).complete(c.f('{server}  create an ephemeral x25519 key pair', 'public key'))!;
    const hs = ks.handshakeSecret(ks.earlySecret(null), shared);
    eq(hs, c.hs(), 'handshake secret');
    eq(ks.clientHandshakeTrafficSecret(hs, H(ch, sh)), c.cHs(), 'c hs traffic');
    const master = ks.masterSecret(hs);
    const th = H(ch, sh, ee, cr, cert, cv, sf);
    eq(ks.finishedMac(c.sHs(), H(ch, sh, ee, cr, cert, cv)), sf.subarray(4), 'server Finished');
    eq(ks.clientApplicationTrafficSecret(master, th), c.cAp(), 'c ap traffic');
    eq(ks.serverApplicationTrafficSecret(master, th), c.sAp(), 's ap traffic');
    eq(ks.finishedMac(c.cHs(), H(ch, sh, ee, cr, cert, cv, sf, ccert, ccv)), cf.subarray(4), 'client Finished');
    eq(ks.resumptionMasterSecret(master, H(ch, sh, ee, cr, cert, cv, sf, ccert, ccv, cf)), c.res(), 'res master');
    const sLeaf = parseCertificate(cert.subarray(4)).entries[0]!.cert;
    const cLeaf = parseCertificate(ccert.subarray(4)).entries[0]!.cert;
    const scv = parseCertificateVerify(cv.subarray(4));
    const ccvm = parseCertificateVerify(ccv.subarray(4));
    assert.is(scv.scheme, 0x0403);
    assert.ok(p.verify('ecdsa_secp256r1_sha256', certificateSpki(sLeaf), certificateVerifyContent(true, H(ch, sh, ee, cr, cert)), scv.signature), 'server ECDSA CV');
    assert.ok(p.verify('rsa_pss_rsae_sha256', certificateSpki(cLeaf), certificateVerifyContent(false, H(ch, sh, ee, cr, cert, cv, sf, ccert)), ccvm.signature), 'client RSA-PSS CV');

    const client = new TlsClient({
      provider: p,
      insecureSkipVerify: true,
      serverName: 'server',
      clientHelloOverride: ch,
      keySharePrivateKeys: { x25519: c.f('{client}  create an ephemeral x25519 key pair', 'private key') },
    });
    client.start();
    drain(client);
    client.receive('initial', sh);
    client.receive('handshake', concat(ee, cr, cert, cv, sf));
    const ev = drain(client);
    assert.not.ok(ev.some((e) => e.type === 'alert'), JSON.stringify(ev.find((e) => e.type === 'alert')));
    eq(secretOf(ev, 'application', 'read')!, c.sAp(), 's ap traffic');
    eq(secretOf(ev, 'application', 'write')!, c.cAp(), 'c ap traffic');
    const sent = sendsOf(ev, 'handshake');
    eq(sent[0]!, Uint8Array.of(HandshakeType.certificate, 0, 0, 4, 0, 0, 0, 0), 'empty client Certificate');
    assert.is(client.info.signatureScheme, 'ecdsa_secp256r1_sha256');
  });
}

test.run();
