/**
 * Name constraints (RFC 5280 §4.2.1.10, §6.1.3 (b)-(c)).
 *
 * - dNSName: a constraint "example.com" covers example.com and every name below it
 *   (www.example.com), never "badexample.com"; a constraint with a leading dot (".example.com",
 *   common practice outside RFC 5280) covers only names strictly below it. An empty constraint covers
 *   every DNS name. A wildcard SAN "*.example.com" is checked as the set of names it can match: it
 *   is permitted only if every name it matches is permitted, and excluded if any name it matches is
 *   excluded (stricter than OpenSSL, which compares the literal "*.example.com").
 * - iPAddress: address & mask == base & mask, same address family only.
 * - directoryName: the constraint's RDN sequence is a prefix of the subject's (exact bytes).
 * - rfc822Name: a mailbox, a host ("example.com": mailboxes at that host), or a domain
 *   (".example.com": mailboxes at hosts below it); applied to email SANs.
 * - uniformResourceIdentifier: the host part, as a host ("example.com") or a domain (".example.com");
 *   a URI without a host is outside every subtree (and never cleared by an excluded one).
 * - Other forms (otherName, ...): if a constraint of such a form is present and a certificate
 *   below presents a name of that form, the name is rejected (fail closed), as we cannot evaluate it.
 */
import type { Certificate, GeneralName, NameConstraints } from './cert.js';
import { bytesEqual } from './cert.js';
import { describeGeneralName } from './identity.js';
import { OID } from './oids.js';

type Form = GeneralName['type'];

/** Returns the first name of `cert` (SANs, subject DN, subject emailAddress) that `nc` does not allow, or null. */
export function nameConstraintViolation(nc: NameConstraints, cert: Certificate): string | null {
  const names: GeneralName[] = [...(cert.subjectAltNames ?? [])];
  if (cert.subject.rdns.length > 0) names.push({ type: 'directory', name: cert.subject });
  // §4.2.1.10: rfc822Name constraints also apply to emailAddress attributes of the subject.
  for (const rdn of cert.subject.rdns) for (const a of rdn) if (a.type === OID.emailAddress) names.push({ type: 'email', value: a.value });
  for (const name of names) {
    if (!allowed(nc, name)) return describeGeneralName(name);
  }
  return null;
}

/**
 * The subject commonName values of `cert` taken as DNS names, checked against the dNSName
 * constraints of `nc`; for callers that fall back to the CN as a host name when the certificate has
 * no DNS subjectAltName (node:tls checkServerIdentity does). Without this check a CA constrained to
 * `example.com` could issue a SAN-less leaf with CN=evil.test that such a caller accepts for
 * evil.test. OpenSSL applies the same rule (NAME_CONSTRAINTS_check_CN) to CNs that look like
 * host names; here every CN that a host-name comparison could match (non-empty, printable ASCII
 * without spaces) is checked, including single-label and wildcard CNs, which OpenSSL skips.
 * Returns null if the certificate has a DNS subjectAltName (the CN is then never used as a name).
 */
export function commonNameConstraintViolation(nc: NameConstraints, cert: Certificate): { name: string; excluded: boolean } | null {
  if (cert.subjectAltNames?.some((n) => n.type === 'dns')) return null;
  for (const rdn of cert.subject.rdns) {
    for (const a of rdn) {
      if (a.type !== OID.commonName || a.value.length === 0 || /[^\x21-\x7e]/.test(a.value)) continue;
      const name: GeneralName = { type: 'dns', value: a.value };
      for (const c of nc.excluded) if (c.type === 'dns' && dnsWithin(a.value, c.value, 'excluded')) return { name: a.value, excluded: true };
      const permitted = nc.permitted.filter((c) => c.type === 'dns');
      if (permitted.length > 0 && !permitted.some((c) => within(name, c, 'permitted') === true)) return { name: a.value, excluded: false };
    }
  }
  return null;
}

function allowed(nc: NameConstraints, name: GeneralName): boolean {
  const form: Form = name.type;
  for (const c of nc.excluded) {
    if (c.type !== form) continue;
    const r = within(name, c, 'excluded');
    if (r !== false) return false; // excluded, or cannot evaluate
  }
  const permitted = nc.permitted.filter((c) => c.type === form);
  if (permitted.length === 0) return true;
  for (const c of permitted) if (within(name, c, 'permitted') === true) return true;
  return false;
}

/** true: inside the subtree; false: outside; null: cannot evaluate (treated as a violation). */
function within(name: GeneralName, c: GeneralName, mode: 'permitted' | 'excluded'): boolean | null {
  if (name.type === 'dns' && c.type === 'dns') return dnsWithin(name.value, c.value, mode);
  if (name.type === 'ip' && c.type === 'ip') {
    const n = name.bytes.length;
    if (c.bytes.length !== 2 * n) return false;
    for (let i = 0; i < n; i++) {
      const m = c.bytes[n + i]!;
      if ((name.bytes[i]! & m) !== (c.bytes[i]! & m)) return false;
    }
    return true;
  }
  if (name.type === 'directory' && c.type === 'directory') {
    const base = c.name.rdnRaw;
    const sub = name.name.rdnRaw;
    if (base.length > sub.length) return false;
    for (let i = 0; i < base.length; i++) if (!bytesEqual(base[i]!, sub[i]!)) return false;
    return true;
  }
  if (name.type === 'email' && c.type === 'email') return emailWithin(name.value.toLowerCase(), c.value.toLowerCase());
  if (name.type === 'uri' && c.type === 'uri') {
    const host = uriHost(name.value);
    if (host === null) return null; // no host part: cannot be within any subtree, and cannot be cleared
    const base = c.value.toLowerCase();
    return base.startsWith('.') ? host.endsWith(base) : host === base;
  }
  return null;
}

function dnsWithin(nameIn: string, baseIn: string, mode: 'permitted' | 'excluded'): boolean {
  let name = nameIn.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  let base = baseIn.toLowerCase();
  if (base.endsWith('.')) base = base.slice(0, -1);
  if (base === '') return true;
  let wildcard = false;
  if (name.startsWith('*.')) {
    wildcard = true;
    name = name.slice(2);
  }
  const strictlyBelow = base.startsWith('.');
  if (strictlyBelow) base = base.slice(1);
  const inSubtree = (n: string, strict: boolean): boolean => (!strict && n === base) || n.endsWith(`.${base}`);
  if (!wildcard) return inSubtree(name, strictlyBelow);
  // "*.rest" matches exactly the names "<label>.rest".
  if (inSubtree(name, false)) return true; // every match is strictly below base (rest is at or below it)
  if (mode === 'excluded') {
    // Some match is inside the excluded subtree if base is "<label>.rest" (one label more than rest).
    const dot = base.indexOf('.');
    if (dot > 0 && base.slice(dot + 1) === name) return true;
  }
  return false;
}

function emailWithin(addr: string, base: string): boolean {
  const at = addr.lastIndexOf('@');
  if (at <= 0) return false;
  const host = addr.slice(at + 1);
  if (base.includes('@')) return addr === base;
  if (base.startsWith('.')) return host.endsWith(base);
  return host === base;
}

/** The host of "scheme://[userinfo@]host[:port]/...", lower case; null if there is none (or it is an IP literal). */
function uriHost(uri: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^:/?#[\]]+)(?::\d*)?(?:[/?#]|$)/i.exec(uri);
  return m ? m[1]!.toLowerCase() : null;
}
