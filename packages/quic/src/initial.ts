/**
 * Initial secrets and keys (RFC 9001 §5.2; RFC 9369 §3.3.1 for the v2 salt).
 * Both depend only on the Destination Connection ID of the client's first Initial packet.
 */
import type { CryptoProvider } from '@petrel/tls-core';
import { ConfigError, hkdfExpandLabel } from '@petrel/tls-core';
import { PacketKeys, type PacketCipher } from './protection.js';
import { QUIC_V1, QUIC_V2 } from './version.js';

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** initial_salt for QUIC v1 (RFC 9001 §5.2). */
export const INITIAL_SALT_V1 = hex('38762cf7f55934b34d179ae6a4c80cadccbb7f0a');
/** initial_salt for QUIC v2 (RFC 9369 §3.3.1). */
export const INITIAL_SALT_V2 = hex('0dede3def700a6db819381be6e269dcbf9bd2ed9');

/** Initial packets always use AEAD_AES_128_GCM with SHA-256 (RFC 9001 §5.2). */
export const INITIAL_CIPHER: PacketCipher = { aead: 'aes-128-gcm', hash: 'sha256' };

export function initialSalt(version: number): Uint8Array {
  if (version === QUIC_V1) return INITIAL_SALT_V1;
  if (version === QUIC_V2) return INITIAL_SALT_V2;
  throw new ConfigError(`no initial salt for QUIC version 0x${version.toString(16)}: use QUIC_V1 or QUIC_V2`);
}

/** client_initial_secret and server_initial_secret for `dcid` (the client's first Destination Connection ID). */
export function initialSecrets(
  provider: CryptoProvider,
  version: number,
  dcid: Uint8Array,
): { client: Uint8Array; server: Uint8Array } {
  const initialSecret = provider.hkdfExtract('sha256', initialSalt(version), dcid);
  const empty = new Uint8Array(0);
  return {
    client: hkdfExpandLabel(provider, 'sha256', initialSecret, 'client in', empty, 32),
    server: hkdfExpandLabel(provider, 'sha256', initialSecret, 'server in', empty, 32),
  };
}

/** Initial packet keys for both directions from our point of view. */
export function initialKeys(
  provider: CryptoProvider,
  version: number,
  dcid: Uint8Array,
  isServer: boolean,
): { read: PacketKeys; write: PacketKeys } {
  const s = initialSecrets(provider, version, dcid);
  const client = PacketKeys.fromSecret(provider, INITIAL_CIPHER, version, s.client);
  const server = PacketKeys.fromSecret(provider, INITIAL_CIPHER, version, s.server);
  return isServer ? { read: client, write: server } : { read: server, write: client };
}
