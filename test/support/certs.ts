/**
 * Real X.509 certificates for tests, made with the `openssl` CLI in a temp dir and cached per
 * process (same options → same certificate).
 *
 *   const ca = makeCert({ keyType: 'ec-p256', ca: true, cn: 'Test CA' });
 *   const leaf = makeCert({ keyType: 'rsa2048', sans: ['localhost', '127.0.0.1'], issuer: ca });
 *   leaf.certDer, leaf.keyDer (PKCS#8), leaf.certPem, leaf.keyPem
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pemDecode } from '../../packages/tls-core/src/util/der.js';

export type TestKeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa2048';

export interface MadeCert {
  certPem: string;
  certDer: Uint8Array;
  keyPem: string;
  /** PKCS#8 DER. */
  keyDer: Uint8Array;
  keyType: TestKeyType;
  /** Internal: files for signing further certificates. */
  files: { cert: string; key: string };
}

export interface CertOptions {
  keyType: TestKeyType;
  /** DNS names and IP addresses for subjectAltName (default ['localhost']). */
  sans?: string[];
  cn?: string;
  /** Sign with this CA (default self-signed). */
  issuer?: MadeCert;
  /** Make a CA certificate (basicConstraints CA:TRUE). */
  ca?: boolean;
  days?: number;
  /** Distinguishes otherwise equal requests (a fresh key). */
  tag?: string;
}

let dir: string | null = null;
const cache = new Map<string, MadeCert>();
let counter = 0;

function tmp(): string {
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-certs-'));
    process.on('exit', () => {
      try {
        fs.rmSync(dir!, { recursive: true, force: true });
      } catch {
        /* ignore */
      }
    });
  }
  return dir;
}

function run(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function genKey(file: string, t: TestKeyType): void {
  const args: Record<TestKeyType, string[]> = {
    'ec-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    'ec-p384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
    ed25519: ['-algorithm', 'ED25519'],
    rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  };
  run(['genpkey', ...args[t], '-out', file]);
}

export function makeCert(opts: CertOptions): MadeCert {
  const key = JSON.stringify({ ...opts, issuer: opts.issuer?.files.cert ?? null });
  const hit = cache.get(key);
  if (hit) return hit;
  const d = tmp();
  const n = counter++;
  const keyFile = path.join(d, `k${n}.pem`);
  const certFile = path.join(d, `c${n}.pem`);
  const extFile = path.join(d, `e${n}.cnf`);
  genKey(keyFile, opts.keyType);
  const sans = opts.sans ?? (opts.ca ? [] : ['localhost']);
  const ext: string[] = [];
  if (sans.length) ext.push(`subjectAltName=${sans.map((s) => (/^[\d.]+$/.test(s) || s.includes(':') ? `IP:${s}` : `DNS:${s}`)).join(',')}`);
  ext.push(opts.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE');
  if (opts.ca) ext.push('keyUsage=critical,keyCertSign,cRLSign');
  else ext.push('keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth,clientAuth');
  fs.writeFileSync(extFile, ext.join('\n') + '\n');
  const subj = `/CN=${opts.cn ?? (sans[0] || `petrel-test-${n}`)}`;
  const days = String(opts.days ?? 30);
  const digest = opts.keyType === 'ed25519' ? [] : ['-sha256'];
  if (!opts.issuer) {
    run(['req', '-new', '-x509', '-key', keyFile, '-out', certFile, '-days', days, '-subj', subj, ...digest, '-extensions', 'v3', '-config', writeReqConfig(d, n, ext)]);
  } else {
    const csr = path.join(d, `r${n}.csr`);
    run(['req', '-new', '-key', keyFile, '-out', csr, '-subj', subj, ...digest]);
    const idig = opts.issuer.keyType === 'ed25519' ? [] : ['-sha256'];
    run(['x509', '-req', '-in', csr, '-CA', opts.issuer.files.cert, '-CAkey', opts.issuer.files.key, '-set_serial', String(1000 + n), '-days', days, '-extfile', extFile, '-out', certFile, ...idig]);
  }
  const certPem = fs.readFileSync(certFile, 'utf8');
  const keyPem = fs.readFileSync(keyFile, 'utf8');
  const out: MadeCert = {
    certPem,
    certDer: pemDecode(certPem)[0]!.der,
    keyPem,
    keyDer: pemDecode(keyPem)[0]!.der,
    keyType: opts.keyType,
    files: { cert: certFile, key: keyFile },
  };
  cache.set(key, out);
  return out;
}

function writeReqConfig(d: string, n: number, ext: string[]): string {
  const f = path.join(d, `q${n}.cnf`);
  fs.writeFileSync(f, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${ext.join('\n')}\n`);
  return f;
}
