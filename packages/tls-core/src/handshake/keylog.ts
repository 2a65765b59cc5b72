/**
 * SSLKEYLOGFILE (NSS key log) lines: `LABEL <client_random hex> <secret hex>`, one per secret.
 * TLS 1.3 labels as in NSS and draft-ietf-tls-keylogfile. The handshake core emits them through config `keyLog`; writing the file is the driver's job.
 */
import { toHex } from './codec.js';

export const KeyLogLabel = {
  clientEarly: 'CLIENT_EARLY_TRAFFIC_SECRET',
  clientHandshake: 'CLIENT_HANDSHAKE_TRAFFIC_SECRET',
  serverHandshake: 'SERVER_HANDSHAKE_TRAFFIC_SECRET',
  clientTraffic0: 'CLIENT_TRAFFIC_SECRET_0',
  serverTraffic0: 'SERVER_TRAFFIC_SECRET_0',
  exporter: 'EXPORTER_SECRET',
  earlyExporter: 'EARLY_EXPORTER_SECRET',
} as const;
export type KeyLogLabel = (typeof KeyLogLabel)[keyof typeof KeyLogLabel];

export function keyLogLine(label: KeyLogLabel, clientRandom: Uint8Array, secret: Uint8Array): string {
  return `${label} ${toHex(clientRandom)} ${toHex(secret)}`;
}
