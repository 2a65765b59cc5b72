/**
 * TLS 1.3 key-schedule primitives (RFC 8446 §7.1), shared by the handshake core and QUIC
 * (RFC 9001 §5.1 derives packet keys with HKDF-Expand-Label and "quic key"/"quic iv"/"quic hp"/"quic ku").
 */
import type { CryptoProvider, HashAlg } from './crypto/provider.js';

const encoder = new TextEncoder();

/** HKDF-Expand-Label(Secret, Label, Context, Length) with the "tls13 " prefix. */
export function hkdfExpandLabel(
  provider: CryptoProvider,
  hash: HashAlg,
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const full = encoder.encode(`tls13 ${label}`);
  if (full.length > 255 || context.length > 255) throw new RangeError('HKDF label or context too long');
  const info = new Uint8Array(2 + 1 + full.length + 1 + context.length);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = full.length;
  info.set(full, 3);
  info[3 + full.length] = context.length;
  info.set(context, 4 + full.length);
  return provider.hkdfExpand(hash, secret, info, length);
}

/** Derive-Secret(Secret, Label, Messages) where `transcriptHash` = Transcript-Hash(Messages). */
export function deriveSecret(
  provider: CryptoProvider,
  hash: HashAlg,
  secret: Uint8Array,
  label: string,
  transcriptHash: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(provider, hash, secret, label, transcriptHash, transcriptHash.length);
}
