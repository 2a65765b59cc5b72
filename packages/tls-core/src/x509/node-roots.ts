/**
 * Node's bundled root store (`tls.rootCertificates`, Mozilla's CA list). This is the only x509 file
 * that touches a Node built-in, and it does so without a static `node:` import
 * (`process.getBuiltinModule`, Node >= 20.16), so the core still loads in browsers and workers, where
 * it returns null and the application must pass its own roots.
 */
export function nodeRootCertificates(): readonly string[] | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return null;
  try {
    const tls = proc.getBuiltinModule('node:tls') as { rootCertificates?: readonly string[] } | undefined;
    return tls?.rootCertificates ?? null;
  } catch {
    return null;
  }
}
