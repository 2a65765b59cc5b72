/**
 * The crypto providers every crypto-dependent test loops over.
 * PETREL_PROVIDERS="node,noble" (comma-separated) restricts the list.
 */
import { nobleProvider } from '../../packages/tls-core/src/crypto/noble.js';
import { nodeProvider } from '../../packages/tls-core/src/crypto/node.js';
import type { CryptoProvider } from '../../packages/tls-core/src/crypto/provider.js';

const all: CryptoProvider[] = [nodeProvider, nobleProvider];

function select(): CryptoProvider[] {
  const env = process.env.PETREL_PROVIDERS;
  if (!env) return all;
  const names = env.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !all.some((p) => p.name === n));
  if (unknown.length) throw new Error(`PETREL_PROVIDERS: unknown provider(s) ${unknown.join(', ')}; known: ${all.map((p) => p.name).join(', ')}`);
  return all.filter((p) => names.includes(p.name));
}

export const providers: CryptoProvider[] = select();
