/**
 * Crypto provider benchmarks (node vs noble): AEAD seal/open at 64 B, 1200 B and 16 KiB, QUIC header-protection
 * masks, HKDF-Expand at HKDF-Expand-Label size, key exchange per group (generate + complete), and
 * sign/verify per signature scheme.
 *
 *   node scripts/run-ts.mjs bench/crypto.ts [--quick] [--filter SUBSTRING]...
 *
 * `runCryptoBench` is also imported by bench/run.ts.
 */
import { pathToFileURL } from 'node:url';
import Benchmark from 'benchmark';
import { nobleProvider } from '../packages/tls-core/src/crypto/noble.js';
import { nodeProvider } from '../packages/tls-core/src/crypto/node.js';
import { parsePrivateKey } from '../packages/tls-core/src/crypto/keys.js';
import { rsaPkcs1Sign, rsaPrivateFromComponents } from '../packages/tls-core/src/crypto/rsa.js';
import type { AeadAlg, CryptoProvider, KeyType, NamedGroup, SignatureScheme } from '../packages/tls-core/src/crypto/provider.js';

export interface CryptoBenchResult {
  case: string;
  provider: string;
  opsPerSec: number;
  /** Relative margin of error, percent. */
  rme: number;
  /** Seconds per operation, one entry per sample. */
  samples: number[];
}

interface Case {
  name: string;
  /** Builds the operation for one provider (setup happens here, outside the timed loop). */
  make(p: CryptoProvider): () => void;
}

const AEADS: AeadAlg[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];
const GROUPS: NamedGroup[] = ['x25519', 'secp256r1', 'secp384r1', 'x25519mlkem768'];
const SCHEMES: [SignatureScheme, KeyType][] = [
  ['ecdsa_secp256r1_sha256', 'ec-p256'],
  ['ecdsa_secp384r1_sha384', 'ec-p384'],
  ['ed25519', 'ed25519'],
  ['rsa_pss_rsae_sha256', 'rsa'],
  ['rsa_pss_rsae_sha384', 'rsa'],
  ['rsa_pss_rsae_sha512', 'rsa'],
];

// Fixed inputs shared by both providers; keys are generated once by node (fast) and loaded by both.
const fixed = nodeProvider.randomBytes(32);
const keyDers = new Map<KeyType, Uint8Array>();
function keyDer(type: KeyType): Uint8Array {
  if (!keyDers.has(type)) keyDers.set(type, nodeProvider.generatePrivateKey(type));
  return keyDers.get(type)!;
}

let sink = 0; // keeps results alive so nothing is optimized away

function cases(): Case[] {
  const out: Case[] = [];
  for (const alg of AEADS) {
    const key = fixed.subarray(0, alg === 'aes-128-gcm' ? 16 : 32);
    // 64 B: an ACK-only QUIC packet / small record, where the per-call cost of node:crypto
    // (createCipheriv per nonce) dominates; 1200 B: a full QUIC packet; 16 KiB: a full TLS record.
    for (const size of [64, 1200, 16384]) {
      const label = size === 16384 ? '16KiB' : `${size}B`;
      out.push({
        name: `aead seal ${alg} ${label}`,
        make(p) {
          const a = p.aead(alg, key);
          const nonce = new Uint8Array(12);
          const aad = new Uint8Array(20);
          const buf = new Uint8Array(size + 16);
          const pt = buf.subarray(0, size);
          return () => {
            nonce[11]! ^= 1;
            sink ^= a.seal(nonce, aad, pt, buf)[0]!; // in place, as a packet builder does
          };
        },
      });
      out.push({
        name: `aead open ${alg} ${label}`,
        make(p) {
          const a = p.aead(alg, key);
          const nonce = new Uint8Array(12);
          const aad = new Uint8Array(20);
          const ct = a.seal(nonce, aad, new Uint8Array(size));
          const out = new Uint8Array(size);
          return () => {
            const r = a.open(nonce, aad, ct, out);
            if (!r) throw new Error('open failed');
            sink ^= r[0]!;
          };
        },
      });
    }
  }
  for (const alg of ['aes-128-gcm', 'chacha20-poly1305'] as const) {
    out.push({
      name: `hp mask ${alg === 'aes-128-gcm' ? 'aes-128' : 'chacha20'}`,
      make(p) {
        const hp = p.headerProtection(alg, fixed.subarray(0, alg === 'aes-128-gcm' ? 16 : 32));
        const sample = new Uint8Array(16);
        return () => {
          sample[0]!++;
          sink ^= hp.mask(sample)[0]!;
        };
      },
    });
  }
  out.push({
    name: 'hkdf expand sha256 (label-sized, 32 B)',
    make(p) {
      const info = new Uint8Array(2 + 1 + 16 + 1 + 32); // HkdfLabel with a 32-byte context
      return () => {
        sink ^= p.hkdfExpand('sha256', fixed, info, 32)[0]!;
      };
    },
  });
  out.push({
    name: 'hash sha256 transcript (update 200 B + digest)',
    make(p) {
      const h = p.hash('sha256');
      const data = new Uint8Array(200);
      return () => {
        h.update(data);
        sink ^= h.digest()[0]!;
      };
    },
  });
  for (const g of GROUPS) {
    out.push({
      name: `kx ${g} (generate+complete)`,
      make(p) {
        const kx = p.keyExchange(g);
        // A valid peer share computed once (for the hybrid: a ciphertext for some other key; decapsulation costs the same).
        const peer = kx.respond(kx.generate().share)!.share;
        return () => {
          const s = kx.generate().complete(peer);
          sink ^= s ? s[0]! : 1;
        };
      },
    });
  }
  for (const [scheme, type] of SCHEMES) {
    const msg = new Uint8Array(130); // TLS 1.3 CertificateVerify content size for SHA-256
    out.push({
      name: `sign ${scheme}`,
      make(p) {
        const k = p.loadPrivateKey(keyDer(type));
        return () => {
          sink ^= k.sign(scheme, msg)[0]!;
        };
      },
    });
    out.push({
      name: `verify ${scheme}`,
      make(p) {
        const k = nodeProvider.loadPrivateKey(keyDer(type));
        const sig = k.sign(scheme, msg);
        return () => {
          if (!p.verify(scheme, k.spki, msg, sig)) throw new Error('verify failed');
        };
      },
    });
  }
  out.push({
    name: 'verify rsa_pkcs1_sha256',
    make(p) {
      // A PKCS#1 v1.5 signature from our BigInt RSA (deterministic, checked against openssl in the tests).
      const parsed = parsePrivateKey(keyDer('rsa'));
      if (parsed.type !== 'rsa') throw new Error('expected an RSA key');
      const msg = new Uint8Array(130);
      const sig = rsaPkcs1Sign((_alg, d) => nodeProvider.digest('sha256', d), rsaPrivateFromComponents(parsed.rsa), 'sha256', msg);
      const spki = nodeProvider.loadPrivateKey(keyDer('rsa')).spki;
      return () => {
        if (!p.verify('rsa_pkcs1_sha256', spki, msg, sig)) throw new Error('verify failed');
      };
    },
  });
  return out;
}

/**
 * Runs every case for both providers. `filter`: substrings (any may match) of the row name
 * `crypto/<case> [<provider>]`, e.g. 'aead seal', 'kx', '[noble]'; empty or absent = everything.
 */
export async function runCryptoBench(opts: { quick: boolean; filter?: string | string[] }): Promise<CryptoBenchResult[]> {
  const providers: CryptoProvider[] = [nodeProvider, nobleProvider];
  const filters = opts.filter === undefined ? [] : typeof opts.filter === 'string' ? [opts.filter] : opts.filter;
  const results: CryptoBenchResult[] = [];
  for (const c of cases()) {
    for (const p of providers) {
      const rowName = `crypto/${c.name} [${p.name}]`;
      if (filters.length && !filters.some((f) => rowName.includes(f))) continue;
      const fn = c.make(p);
      const bench = new Benchmark(`${p.name} ${c.name}`, fn, {
        maxTime: opts.quick ? 0.2 : 2,
        minSamples: opts.quick ? 5 : 20,
        initCount: 1,
      });
      bench.run({ async: false });
      if (bench.error) throw bench.error;
      results.push({ case: c.name, provider: p.name, opsPerSec: bench.hz, rme: bench.stats.rme, samples: bench.stats.sample.slice() });
      // Let other work (timers, stdout) proceed between cases.
      await new Promise((r) => setImmediate(r));
    }
  }
  if (sink === 0.5) console.log(sink);
  return results;
}

/** Prints results as a table: ops/s per provider, and noble relative to node (node = 1.0). */
export function formatCryptoTable(results: CryptoBenchResult[]): string {
  const byCase = new Map<string, Map<string, CryptoBenchResult>>();
  for (const r of results) {
    if (!byCase.has(r.case)) byCase.set(r.case, new Map());
    byCase.get(r.case)!.set(r.provider, r);
  }
  const fmt = (r?: CryptoBenchResult) => (r ? `${Math.round(r.opsPerSec).toLocaleString('en-US')} ±${r.rme.toFixed(1)}%` : '-');
  const rows: string[][] = [['case', 'node ops/s', 'noble ops/s', 'noble/node']];
  for (const [name, m] of byCase) {
    const n = m.get('node');
    const b = m.get('noble');
    rows.push([name, fmt(n), fmt(b), n && b ? (b.opsPerSec / n.opsPerSec).toFixed(3) : '-']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, ri) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ') + (ri === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : '')).join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const filter: string[] = [];
  for (let i = 0; i < args.length; i++) if (args[i] === '--filter' && args[i + 1]) filter.push(args[++i]!);
  const results = await runCryptoBench({ quick: args.includes('--quick'), filter });
  console.log(formatCryptoTable(results));
}
