/**
 * End to end: our TLS client (tcp/client.ts, WebPkiVerifier via `ca`) against `openssl s_server`
 * serving root → intermediate → leaf (SANs: DNS:server.test, IP:127.0.0.1). The valid chain is
 * accepted by IP and by DNS name; a wrong name, an expired leaf and an unknown root are refused with
 * bad_certificate, certificate_expired and unknown_ca, and OpenSSL reports receiving that alert.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, requirePeer, spawnPeer, waitForPort, type PeerProcess } from '../../../test/support/peers.js';
import { providers } from '../../../test/support/providers.js';
import { Alert, alertName } from '../src/errors.js';
import { connect } from '../src/tcp/client.js';
import { certificateErrorOf, type CertificateErrorKind } from '../src/x509/errors.js';
import { OpensslPki } from './x509-openssl.js';
import path from 'node:path';

const openssl = requirePeer('openssl');
const pki = new OpensslPki();
const CA = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'];
const LEAF = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:server.test,IP:127.0.0.1'];
const root = pki.issue('root', { subj: '/CN=TLS Root', ext: CA });
const other = pki.issue('other', { subj: '/CN=Other Root', ext: CA });
const inter = pki.issue('inter', { subj: '/CN=TLS Inter', issuer: root, ext: CA });
pki.key('leafkey');
const leaf = pki.issue('leaf', { subj: '/CN=leaf', issuer: inter, key: 'leafkey', ext: LEAF });
const expired = pki.issue('expired', { subj: '/CN=leaf', issuer: inter, key: 'leafkey', ext: LEAF, start: '20200101000000Z', end: '20210101000000Z' });

interface Outcome {
  ok: boolean;
  alert?: number;
  kind?: CertificateErrorKind;
  message?: string;
}

function attempt(port: number, opts: { servername?: string; ca: string; provider: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port, ...(opts.servername ? { servername: opts.servername } : {}), ca: opts.ca, provider: opts.provider as 'node' | 'noble', handshakeTimeoutMs: 5000 });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, message: 'timeout' });
    }, 8000);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: true });
    });
    sock.once('error', (e: Error & { alertCode?: number; protocolError?: unknown }) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: false, alert: e.alertCode, kind: certificateErrorOf(e.protocolError)?.kind, message: e.message });
    });
  });
}

async function server(cert: string): Promise<{ proc: PeerProcess; port: number }> {
  const port = await freePort('tcp');
  const proc = spawnPeer(
    openssl!,
    ['s_server', '-accept', `127.0.0.1:${port}`, '-tls1_3', '-cert', path.join(pki.dir, cert), '-key', path.join(pki.dir, 'leafkey.key'), '-cert_chain', path.join(pki.dir, inter.file), '-www'],
    { lifetimeMs: 30_000 },
  );
  await waitForPort(port, 'tcp', { proc });
  return { proc, port };
}

test('petrel client verifies a real chain from openssl s_server and refuses broken variants with the right alert', async () => {
  if (!openssl) return;
  const good = await server(leaf.file);
  const old = await server(expired.file);
  try {
    for (const p of providers) {
      const byIp = await attempt(good.port, { ca: root.pem, provider: p.name });
      assert.ok(byIp.ok, `${p.name}: by IP: ${byIp.message}\n${good.proc.output()}`);
      const byName = await attempt(good.port, { servername: 'server.test', ca: root.pem, provider: p.name });
      assert.ok(byName.ok, `${p.name}: by name: ${byName.message}`);
      const cases: [string, Promise<Outcome>, number, CertificateErrorKind][] = [
        ['wrong name', attempt(good.port, { servername: 'wrong.test', ca: root.pem, provider: p.name }), Alert.bad_certificate, 'name-mismatch'],
        ['expired', attempt(old.port, { servername: 'server.test', ca: root.pem, provider: p.name }), Alert.certificate_expired, 'expired'],
        ['unknown root', attempt(good.port, { servername: 'server.test', ca: other.pem, provider: p.name }), Alert.unknown_ca, 'unknown-issuer'],
      ];
      for (const [what, pr, alert, kind] of cases) {
        const r = await pr;
        assert.not.ok(r.ok, `${p.name}: ${what} accepted`);
        assert.is(r.alert, alert, `${p.name}: ${what}: alert ${r.alert === undefined ? 'none' : alertName(r.alert)}: ${r.message}`);
        assert.is(r.kind, kind, `${p.name}: ${what}: ${r.message}`);
      }
    }
    // OpenSSL received our alerts (it logs "SSL alert number N" for each).
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && !/alert number 48/.test(good.proc.output())) await new Promise((r) => setTimeout(r, 50));
    assert.match(good.proc.output(), /alert number 42/, 'bad_certificate seen by s_server');
    assert.match(good.proc.output(), /alert number 48/, 'unknown_ca seen by s_server');
    assert.match(old.proc.output(), /alert number 45/, 'certificate_expired seen by s_server');
  } finally {
    await good.proc.kill();
    await old.proc.kill();
  }
});

test.after(() => pki.cleanup());
test.run();
