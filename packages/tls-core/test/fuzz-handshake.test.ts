/**
 * Seeded fuzzing of the handshake codec and of whole handshakes (SEED=n to reproduce;
 * FUZZ_ITERATIONS scales the work). Asserts:
 *  - parsers throw nothing but ProtocolViolation('tls', ...) on random and mutated input;
 *  - a handshake (TCP and QUIC, 1-RTT / HRR / client auth / resumption+0-RTT) in which one
 *    message is mutated (bit flips, truncation, extension, length fields, duplication,
 *    reordering) never throws from receive(), emits only ProtocolViolation alerts, never
 *    internal_error; a real change to any transcript message stops the handshake on one side;
 *    and if both sides still complete (splits, harmless duplicates, a mutated ticket), their
 *    secrets match.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { providers } from '../../../test/support/providers.js';
import { Rng } from '../../../test/support/rng.js';
import { makeCert } from '../../../test/support/certs.js';
import { Alert, ProtocolViolation } from '../src/errors.js';
import type { EncryptionLevel, SessionTicket } from '../src/handshake/api.js';
import { TlsClient } from '../src/handshake/client.js';
import { TlsServer } from '../src/handshake/server.js';
import type { TlsClientConfig, TlsServerConfig } from '../src/handshake/config.js';
import * as codec from '../src/handshake/codec.js';
import { WebPkiVerifier } from '../src/x509/verifier.js';
import { pinVerifier, runPair, secretsMatch, type Tamper } from './handshake-pair.js';

const rng = Rng.fromEnv('SEED');
const SCALE = Number(process.env.FUZZ_ITERATIONS ?? 1);
process.on('exit', (code) => {
  if (code !== 0) console.error(`fuzz-handshake: reproduce with SEED=${rng.seed}`);
});
const cert = makeCert({ keyType: 'ec-p256', sans: ['example.com'] });
// A real chain checked by the x509 WebPKI verifier, so mutated certificates reach the DER/X.509 code.
const ca = makeCert({ keyType: 'ec-p256', ca: true, cn: 'Fuzz CA' });
const caLeaf = makeCert({ keyType: 'ec-p256', sans: ['example.com'], issuer: ca });
const webpki = new WebPkiVerifier({ roots: [ca.certDer] });
const clientCert = makeCert({ keyType: 'ed25519', sans: ['client.test'] });

const parsers: [string, (b: Uint8Array) => unknown][] = [
  ['ClientHello', codec.parseClientHello],
  ['ServerHello', codec.parseServerHello],
  ['EncryptedExtensions', codec.parseEncryptedExtensions],
  ['Certificate', codec.parseCertificate],
  ['CertificateRequest', codec.parseCertificateRequest],
  ['CertificateVerify', codec.parseCertificateVerify],
  ['NewSessionTicket', codec.parseNewSessionTicket],
  ['KeyUpdate', codec.parseKeyUpdate],
  ['server_name', codec.parseServerName],
  ['alpn', codec.parseAlpn],
  ['key_share (client)', codec.parseClientKeyShares],
  ['key_share (server)', codec.parseServerKeyShare],
  ['pre_shared_key', codec.parseOfferedPsks],
  ['supported_groups', codec.parseSupportedGroups],
  ['signature_algorithms', codec.parseSignatureAlgorithms],
  ['supported_versions', codec.parseClientSupportedVersions],
  ['psk_key_exchange_modes', codec.parsePskModes],
  ['cookie', codec.parseCookie],
];

function mutate(r: Rng, data: Uint8Array): Uint8Array {
  const d = data.slice();
  switch (r.int(7)) {
    case 0: {
      const n = 1 + r.int(4);
      for (let i = 0; i < n && d.length; i++) d[r.int(d.length)] ^= 1 << r.int(8);
      return d;
    }
    case 1:
      return d.subarray(0, r.int(d.length + 1));
    case 2:
      return codec.concat(d, r.bytes(1 + r.int(8)));
    case 3: {
      // a length-looking byte pair set to something else
      if (d.length < 2) return d;
      const i = r.int(d.length - 1);
      d[i] = r.chance(0.5) ? 0 : 0xff;
      d[i + 1] = r.int(256);
      return d;
    }
    case 4: {
      // random byte run
      if (!d.length) return d;
      const i = r.int(d.length);
      d.set(r.bytes(Math.min(d.length - i, 1 + r.int(6))), i);
      return d;
    }
    case 5:
      return d.subarray(r.int(Math.max(1, d.length)));
    default:
      if (d.length) d[r.int(d.length)] = r.int(256);
      return d;
  }
}

function expectOnlyViolation(name: string, f: () => unknown, input: Uint8Array): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ProtocolViolation) || e.layer !== 'tls') {
      assert.unreachable(`${name} threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${codec.toHex(input)} (seed ${rng.seed})`);
    }
  }
}

/** Valid messages from a real handshake, for mutation (collected in the first test). */
const corpus = new Map<number, Uint8Array[]>();

test('parsers: random and mutated input', async () => {
  const p = providers[0]!;
  // Collect valid messages (TCP with client auth + ticket, and QUIC).
  const collect: Tamper = (_from, _level, data) => {
    const l = corpus.get(data[0]!) ?? [];
    l.push(data);
    corpus.set(data[0]!, l);
    return data;
  };
  await runPair(
    new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(cert.certDer), alpn: ['h2'], clientCertificate: { chain: [clientCert.certDer], key: clientCert.keyDer } }),
    new TlsServer({ provider: p, identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: ['h2'], clientAuth: 'request', clientVerifier: pinVerifier(clientCert.certDer), maxEarlyData: 100 }),
    collect,
  );
  assert.ok(corpus.size >= 8, 'corpus collected');
  const byName: Record<string, number> = {
    ClientHello: 1,
    ServerHello: 2,
    NewSessionTicket: 4,
    EncryptedExtensions: 8,
    Certificate: 11,
    CertificateRequest: 13,
    CertificateVerify: 15,
  };
  const iters = 400 * SCALE;
  for (const [name, f] of parsers) {
    const seeds = (corpus.get(byName[name] ?? -1) ?? []).map((m) => m.subarray(4));
    for (let i = 0; i < iters; i++) {
      const input = seeds.length && rng.chance(0.8) ? mutate(rng, rng.pick(seeds)) : rng.bytes(rng.int(64));
      expectOnlyViolation(name, () => f(input), input);
    }
  }
  // Message reassembly with random framing.
  for (let i = 0; i < iters; i++) {
    const b = new codec.MessageBuffer(1 << 12);
    const input = rng.bytes(rng.int(40));
    expectOnlyViolation('MessageBuffer', () => {
      b.push(input);
      while (b.next());
    }, input);
  }
});

test('sessions fed random bytes at random levels emit only alerts', () => {
  const p = providers[0]!;
  const levels: EncryptionLevel[] = ['initial', 'early', 'handshake', 'application'];
  const iters = 300 * SCALE;
  const ch = corpus.get(codec.HandshakeType.client_hello)?.[0];
  for (let i = 0; i < iters; i++) {
    const server = new TlsServer({ provider: p, identity: { chain: [cert.certDer], key: cert.keyDer }, alpn: ['h2'] });
    const client = new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(cert.certDer) });
    client.start();
    while (client.poll());
    for (const s of [server, client]) {
      for (let k = 0; k < 3; k++) {
        // Valid-looking framing half the time: a known type with a consistent length.
        const body = ch && s === server && rng.chance(0.3) ? mutate(rng, ch.subarray(4)) : rng.bytes(rng.int(48));
        const msg = rng.chance(0.5) ? codec.handshakeMessage(rng.pick([1, 2, 4, 5, 8, 11, 13, 15, 20, 24, 254, rng.int(256)]), body) : body;
        try {
          s.receive(rng.pick(levels), msg);
        } catch (e) {
          assert.unreachable(`receive() threw ${(e as Error).message} (seed ${rng.seed})`);
        }
      }
      for (let e = s.poll(); e; e = s.poll()) {
        if (e.type === 'alert') {
          assert.ok(e.error instanceof ProtocolViolation);
          assert.is.not(e.alert, Alert.internal_error, `${e.error.message} (seed ${rng.seed}, iteration ${i})`);
        }
      }
    }
  }
});

interface Scenario {
  name: string;
  client: Partial<TlsClientConfig>;
  server: Partial<TlsServerConfig>;
  quic?: boolean;
  resume?: boolean;
}

const scenarios: Scenario[] = [
  { name: 'tcp 1-rtt', client: { keyShares: ['x25519'] }, server: {} },
  { name: 'quic 1-rtt', client: { keyShares: ['x25519'] }, server: {}, quic: true },
  { name: 'tcp hrr', client: { keyShares: ['x25519'] }, server: { groups: ['secp256r1'] } },
  { name: 'quic hrr cookie', client: { keyShares: ['x25519'] }, server: { helloRetryCookie: true }, quic: true },
  {
    name: 'tcp client auth',
    client: { keyShares: ['x25519'], clientCertificate: { chain: [clientCert.certDer], key: clientCert.keyDer } },
    server: { clientAuth: 'require', clientVerifier: pinVerifier(clientCert.certDer) },
  },
  {
    name: 'tcp webpki chain + client auth',
    client: { keyShares: ['x25519'], verifier: webpki, clientCertificate: { chain: [caLeaf.certDer, ca.certDer], key: caLeaf.keyDer } },
    server: { identity: { chain: [caLeaf.certDer, ca.certDer], key: caLeaf.keyDer }, clientAuth: 'require', clientVerifier: webpki },
  },
  { name: 'tcp 0-rtt', client: { keyShares: ['x25519'], earlyData: true }, server: { maxEarlyData: 1000 }, resume: true },
  { name: 'quic 0-rtt', client: { keyShares: ['x25519'], earlyData: true }, server: { maxEarlyData: 1000 }, quic: true, resume: true },
];

const SENSIBLE = new Set<number>([
  Alert.unexpected_message,
  Alert.decode_error,
  Alert.illegal_parameter,
  Alert.decrypt_error,
  Alert.handshake_failure,
  Alert.bad_certificate,
  // mutated certificates judged by the WebPKI verifier
  Alert.unknown_ca,
  Alert.certificate_expired,
  Alert.unsupported_certificate,
  Alert.certificate_unknown,
  Alert.missing_extension,
  Alert.unsupported_extension,
  Alert.protocol_version,
  Alert.no_application_protocol,
  Alert.certificate_required,
  Alert.unrecognized_name,
]);

for (const p of providers) {
  test(`${p.name}: whole handshakes with one mutated / duplicated / reordered message`, async () => {
    let completedBoth = 0;
    let alerts = 0;
    const codes = new Map<number, number>();
    for (const sc of scenarios) {
      const tp = { quic: { transportParameters: Uint8Array.of(1, 2, 3) } };
      const serverCfg: TlsServerConfig = {
        provider: p,
        identity: { chain: [cert.certDer], key: cert.keyDer },
        alpn: ['h3'],
        ...(sc.quic ? tp : {}),
        ...sc.server,
      };
      const mkClient = (extra: Partial<TlsClientConfig> = {}) =>
        new TlsClient({ provider: p, serverName: 'example.com', verifier: pinVerifier(cert.certDer), alpn: ['h3'], ...(sc.quic ? tp : {}), ...sc.client, ...extra });
      // Tickets: one per iteration (0-RTT tickets are single-use).
      const tickets: SessionTicket[] = [];
      const iters = 24 * SCALE;
      const issuer = sc.resume ? serverCfg : null;
      if (issuer) {
        while (tickets.length < iters) {
          const r0 = await runPair(mkClient(), new TlsServer(issuer));
          tickets.push(...r0.c.tickets);
        }
      }
      // Count the messages of a clean run.
      let total = 0;
      const clean = await runPair(mkClient(tickets.length ? { resumption: tickets.pop() } : {}), new TlsServer(serverCfg), (_f, _l, d) => {
        total++;
        return d;
      });
      assert.ok(clean.c.complete && clean.s.complete, `${sc.name}: clean run completes`);
      for (let i = 0; i < iters; i++) {
        const target = rng.int(total);
        const kind = rng.int(4);
        let held: { level: EncryptionLevel; data: Uint8Array } | null = null;
        let changedTranscript = false;
        let mutation = '';
        const tamper: Tamper = (from, level, data, index) => {
          if (index === target) {
            if (kind === 0) {
              const m = mutate(rng, data);
              // Any real change to a transcript message must stop the handshake on one side.
              changedTranscript = !codec.bytesEqual(m, data) && data[0] !== codec.HandshakeType.new_session_ticket;
              if (process.env.FUZZ_STATS) mutation = `${from} ${level} type ${data[0]} ${codec.toHex(data).slice(0, 80)} -> ${codec.toHex(m).slice(0, 80)} (len ${data.length} -> ${m.length})`;
              return m;
            }
            if (kind === 1) return [data, data]; // duplicated
            if (kind === 2) {
              held = { level, data }; // reordered: delivered after the next message
              return null;
            }
            // split at a random point into two deliveries
            const at = rng.int(data.length + 1);
            return [data.subarray(0, at), data.subarray(at)];
          }
          if (held && index === target + 1 && held.level === level) {
            const h = held.data;
            held = null;
            return [data, h];
          }
          return data;
        };
        const client = mkClient(tickets.length ? { resumption: tickets.pop() } : {});
        const server = new TlsServer(serverCfg);
        let r: Awaited<ReturnType<typeof runPair>>;
        try {
          r = await runPair(client, server, tamper);
        } catch (e) {
          assert.unreachable(`${sc.name}: receive() threw ${(e as Error).message} (seed ${rng.seed}, iteration ${i})`);
          return;
        }
        for (const side of [r.c, r.s]) {
          for (const e of side.events) {
            if (e.type !== 'alert') continue;
            alerts++;
            codes.set(e.alert, (codes.get(e.alert) ?? 0) + 1);
            assert.ok(e.error instanceof ProtocolViolation, 'alert carries a ProtocolViolation');
            assert.ok(SENSIBLE.has(e.alert), `${sc.name}: unexpected alert ${e.alert} (${e.error.message}) seed ${rng.seed} iter ${i} kind ${kind}`);
          }
        }
        assert.not.ok(changedTranscript && r.c.complete && r.s.complete, `${sc.name}: a mutated handshake message went unnoticed (seed ${rng.seed}, iter ${i}) ${mutation}`);
        if (r.c.complete && r.s.complete) {
          completedBoth++;
          const rejected = !client.info.earlyDataAccepted;
          const problems = secretsMatch(r.c, r.s).filter((m) => !(rejected && m.includes('early')));
          assert.equal(problems, [], `${sc.name}: both completed but secrets differ (kind ${kind}, seed ${rng.seed}, iter ${i})`);
        }
      }
    }
    if (process.env.FUZZ_STATS) console.log(p.name, { completedBoth, alerts, codes: Object.fromEntries(codes) });
    assert.ok(alerts > 0, 'mutations were detected');
    assert.ok(completedBoth > 0, 'harmless changes (splits) still complete');
  });
}

test.run();
