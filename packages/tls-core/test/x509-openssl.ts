/**
 * Test support for the x509 tests: builds certificate hierarchies with the `openssl` CLI
 * (`openssl ca` with explicit start/end dates and extension sections) in a temporary folder, and
 * runs `openssl verify` as the reference. Not a test itself.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type PkiKeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa' | 'rsa-pss';

export interface PkiCert {
  name: string;
  pem: string;
  der: Uint8Array;
  file: string;
  keyFile: string;
}

export interface IssueOptions {
  /** Distinguished name, e.g. "/CN=leaf/O=Petrel". */
  subj: string;
  /** Issuer; omitted → self-signed. */
  issuer?: PkiCert;
  /** Key name from `key()`; default: a fresh P-256 key named after the certificate. */
  key?: string;
  /** Extension lines for the config section, e.g. "basicConstraints=critical,CA:TRUE". */
  ext: string[];
  /** Validity as openssl dates (YYYYMMDDHHMMSSZ). */
  start?: string;
  end?: string;
  /** Signature options: 'pss' for RSASSA-PSS, a digest name, or default. */
  sig?: 'pss' | 'sha384' | 'sha512';
}

export const T_START = '20200101000000Z';
export const T_END = '20400101000000Z';
/** A time inside every default validity period (2030-01-01T00:00:00Z), seconds. */
export const T_NOW = Date.UTC(2030, 0, 1) / 1000;

function openssl(dir: string, args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export class OpensslPki {
  readonly dir: string;
  private readonly keys = new Map<string, { file: string; type: PkiKeyType }>();
  private n = 0;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-x509-'));
    fs.writeFileSync(path.join(this.dir, 'index.txt'), '');
    fs.writeFileSync(
      path.join(this.dir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = c',
        '[c]',
        'database = index.txt',
        'new_certs_dir = .',
        'rand_serial = yes',
        'unique_subject = no',
        'default_md = sha256',
        'policy = p',
        '[p]',
        'commonName = optional',
        'organizationName = optional',
        'organizationalUnitName = optional',
        'countryName = optional',
        '',
      ].join('\n'),
    );
  }

  key(name: string, type: PkiKeyType = 'ec-p256'): string {
    const have = this.keys.get(name);
    if (have) return name;
    const file = `${name}.key`;
    const args: Record<PkiKeyType, string[]> = {
      'ec-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      'ec-p384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ed25519: ['-algorithm', 'ED25519'],
      rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      'rsa-pss': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
    };
    openssl(this.dir, ['genpkey', ...args[type], '-out', file]);
    openssl(this.dir, ['req', '-new', '-key', file, '-subj', '/CN=csr', '-out', `${name}.csr`]);
    this.keys.set(name, { file, type });
    return name;
  }

  keyPem(name: string): string {
    return fs.readFileSync(path.join(this.dir, this.keys.get(name)!.file), 'utf8');
  }

  issue(name: string, o: IssueOptions): PkiCert {
    const keyName = o.key ?? this.key(`k-${name}`);
    const key = this.keys.get(keyName);
    if (!key) throw new Error(`unknown key ${keyName}`);
    const section = `ext_${++this.n}`;
    const extFile = `${name}.ext`;
    fs.writeFileSync(path.join(this.dir, extFile), `[${section}]\n${o.ext.join('\n')}\n`);
    const file = `${name}.pem`;
    const args = ['ca', '-batch', '-config', 'ca.cnf', '-preserveDN', '-notext', '-in', `${keyName}.csr`, '-subj', o.subj, '-startdate', o.start ?? T_START, '-enddate', o.end ?? T_END, '-out', file];
    if (o.ext.length) args.push('-extfile', extFile, '-extensions', section);
    if (o.issuer) args.push('-cert', o.issuer.file, '-keyfile', o.issuer.keyFile);
    else args.push('-selfsign', '-keyfile', key.file);
    const signerType = o.issuer ? this.keyTypeOfFile(o.issuer.keyFile) : key.type;
    if (signerType === 'ed25519') args.push('-md', 'default');
    else if (o.sig === 'sha384' || o.sig === 'sha512') args.push('-md', o.sig);
    if (o.sig === 'pss' || signerType === 'rsa-pss') args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-1');
    openssl(this.dir, args);
    const pem = fs.readFileSync(path.join(this.dir, file), 'utf8');
    const cert = { name, pem, der: pemToDer(pem), file, keyFile: key.file };
    return cert;
  }

  private keyTypeOfFile(file: string): PkiKeyType {
    for (const k of this.keys.values()) if (k.file === file) return k.type;
    return 'ec-p256';
  }

  /** Writes DER bytes as a PEM certificate file; returns the file name. */
  writeCert(name: string, der: Uint8Array): string {
    const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
    fs.writeFileSync(path.join(this.dir, name), `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`);
    return name;
  }

  /** Concatenates certificate files into one bundle file. */
  bundle(name: string, certs: (PkiCert | string)[]): string {
    const text = certs.map((c) => (typeof c === 'string' ? fs.readFileSync(path.join(this.dir, c), 'utf8') : c.pem)).join('');
    fs.writeFileSync(path.join(this.dir, name), text);
    return name;
  }

  /** `openssl verify`; resolves true when it prints OK and exits 0. */
  verify(args: string[]): Promise<{ ok: boolean; out: string }> {
    return new Promise((resolve) => {
      execFile('openssl', ['verify', ...args], { cwd: this.dir, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
        resolve({ ok: !err && /: OK\s*$/.test(stdout), out: `${stdout}${stderr}`.trim() });
      });
    });
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('no certificate in PEM');
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A copy of `der` with one byte of the signature (the last byte of the certificate) changed. */
export function breakSignature(der: Uint8Array): Uint8Array {
  const out = new Uint8Array(der);
  out[out.length - 1] ^= 0x01;
  return out;
}
