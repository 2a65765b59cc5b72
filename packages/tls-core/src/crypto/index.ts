/**
 * Crypto providers: `node` (node:crypto, the default on Node) and `noble` (@noble/*, portable).
 */
import { ConfigError } from '../errors.js';
import { nobleProvider } from './noble.js';
import { nodeProvider } from './node.js';
import type { CryptoProvider } from './provider.js';

export * from './provider.js';
export { nodeProvider } from './node.js';
export { nobleProvider } from './noble.js';

const byName: Record<string, CryptoProvider> = { node: nodeProvider, noble: nobleProvider };

/**
 * The default provider: `node` (node:crypto) where node:crypto is available (Node, and Deno/Bun
 * through their Node compatibility), else `noble`.
 */
export function defaultProvider(): CryptoProvider {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return proc?.versions?.node ? nodeProvider : nobleProvider;
}

/** A provider by name ('node' or 'noble'). Throws ConfigError for anything else. */
export function getProvider(name: string): CryptoProvider {
  const p = Object.hasOwn(byName, name) ? byName[name] : undefined;
  if (!p) throw new ConfigError(`unknown crypto provider '${name}': use 'node' or 'noble'`);
  return p;
}
