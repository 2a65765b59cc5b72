/**
 * Option helpers shared by the TCP client and server: provider by name, PEM loading, key logging
 * (file path, callback or $SSLKEYLOGFILE), session serialization for CLIs.
 */
import fs from 'node:fs';
import { getProvider } from '../crypto/index.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { ConfigError } from '../errors.js';
import type { CipherSuite, KeyLogger, SessionTicket } from '../handshake/api.js';
import type { CertifiedKey } from '../handshake/config.js';
import { pemDecode } from '../util/der.js';

export type ProviderOption = 'node' | 'noble' | CryptoProvider;

export function resolveProvider(p: ProviderOption | undefined): CryptoProvider {
  if (p === undefined) return getProvider('node');
  if (typeof p === 'string') return getProvider(p);
  return p;
}

type PemInput = string | Uint8Array;
const text = (x: PemInput): string => (typeof x === 'string' ? x : new TextDecoder().decode(x));

/** A certificate chain (PEM, leaf first) as DER. */
export function pemChain(pem: PemInput, what: string): Uint8Array[] {
  const blocks = pemDecode(text(pem)).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw new ConfigError(`${what}: no "-----BEGIN CERTIFICATE-----" block found; pass PEM text (not a file name)`);
  return blocks.map((b) => b.der);
}

/** A private key (PEM: PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY) as DER. */
export function pemKey(pem: PemInput, what: string): Uint8Array {
  const block = pemDecode(text(pem)).find((b) => /PRIVATE KEY$/.test(b.label));
  if (!block) throw new ConfigError(`${what}: no "-----BEGIN ... PRIVATE KEY-----" block found; pass PEM text (not a file name)`);
  return block.der;
}

export function certifiedKey(cert: PemInput, key: PemInput, what: string): CertifiedKey {
  return { chain: pemChain(cert, `${what} cert`), key: pemKey(key, `${what} key`) };
}

/**
 * The key-log sink: `keylog` (path or callback) or else $SSLKEYLOGFILE. Lines are written
 * synchronously (appendFileSync) so they are on disk before the handshake completes — a
 * debugging aid, never on in production unless asked for.
 */
export function keyLogSink(keylog: string | KeyLogger | undefined): KeyLogger | null {
  if (typeof keylog === 'function') return keylog;
  const file = keylog ?? process.env.SSLKEYLOGFILE;
  if (!file) return null;
  return (line: string) => {
    try {
      fs.appendFileSync(file, `${line}\n`);
    } catch {
      // logging must not break the connection
    }
  };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: unknown, what: string): Uint8Array => {
  if (typeof s !== 'string' || !/^([0-9a-f]{2})*$/i.test(s)) throw new ConfigError(`session: ${what} is not hex`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
};

/** A session ticket as JSON text (for `--resume` files). Contains the resumption secret: keep it private. */
export function serializeSession(t: SessionTicket): string {
  return JSON.stringify({
    v: 1,
    serverName: t.serverName,
    suite: t.suite,
    ticket: hex(t.ticket),
    psk: hex(t.psk),
    ageAdd: t.ageAdd,
    receivedAt: t.receivedAt,
    lifetimeSeconds: t.lifetimeSeconds,
    maxEarlyData: t.maxEarlyData,
    alpn: t.alpn,
    transportParameters: t.transportParameters ? hex(t.transportParameters) : null,
  });
}

export function parseSession(json: string): SessionTicket {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`session: not JSON (${(e as Error).message})`);
  }
  if (!o || o.v !== 1) throw new ConfigError('session: unknown format (expected v: 1)');
  const num = (k: string): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`session: ${k} must be a number`);
    return v;
  };
  return {
    serverName: String(o.serverName ?? ''),
    suite: String(o.suite) as CipherSuite,
    ticket: unhex(o.ticket, 'ticket'),
    psk: unhex(o.psk, 'psk'),
    ageAdd: num('ageAdd'),
    receivedAt: num('receivedAt'),
    lifetimeSeconds: num('lifetimeSeconds'),
    maxEarlyData: num('maxEarlyData'),
    alpn: typeof o.alpn === 'string' ? o.alpn : null,
    transportParameters: typeof o.transportParameters === 'string' ? unhex(o.transportParameters, 'transportParameters') : null,
  };
}
