/**
 * Service identity (RFC 9525, which obsoletes RFC 6125): matching the name the client asked for
 * (the reference identifier) against the certificate's subjectAltName entries (presented identifiers).
 *
 * - An IP literal (IPv4 dotted quad, IPv6 in any RFC 4291 §2.2 text form, optionally in brackets)
 *   matches only iPAddress SANs, octet for octet (§6.4). A DNS name matches only dNSName SANs (§6.3).
 * - DNS names compare as case-insensitive ASCII; U-labels in the reference are converted to A-labels
 *   first (IDNA, through the WHATWG URL host parser); one trailing dot (an absolute name) is ignored
 *   on either side.
 * - Wildcards: only "*" as the complete left-most label, exactly one of them, matching exactly one
 *   label; never over a single remaining label ("*.com" is ignored). Partial-label wildcards
 *   ("f*.example.com") are invalid and ignored (§6.3).
 * - No fallback to the subject's common name (§6.2: CN-IDs are not used).
 */
import type { Certificate, GeneralName } from './cert.js';

/** Parses an IPv4 or IPv6 literal; null if `s` is not one. Brackets ("[::1]") are accepted. */
export function parseIpLiteral(s: string): Uint8Array | null {
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.includes(':')) return parseIpv6(s);
  return parseIpv4(s);
}

function parseIpv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // Decimal only, no leading zeros (which some parsers read as octal).
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | null {
  if (s.length > 45 || s.includes('%')) return null; // zone identifiers are never in certificates
  const out = new Uint8Array(16);
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (!v4) return null;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        words.push(parseInt(g, 16));
      }
    }
    return words;
  };
  let words: number[];
  if (dbl === -1) {
    const w = parseGroups(s);
    if (!w || w.length !== 8) return null;
    words = w;
  } else {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return null;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Text form of an IP address (4 or 16 bytes); IPv6 in RFC 5952 compressed form. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexw = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart === -1) return hexw(w);
  return `${hexw(w.slice(0, bestStart))}::${hexw(w.slice(bestStart + bestLen))}`;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Normalizes a DNS reference identifier: IDNA to A-labels, lower case, no trailing dot. null if it
 * is not a valid DNS name (empty labels, bad characters, too long, a wildcard).
 */
export function normalizeDnsName(name: string): string | null {
  let n = name;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(n)) {
    // Only a host name goes through the URL parser: nothing that could end or re-route the host part.
    if (/[/?#@:[\]\\%\s]/.test(n)) return null;
    try {
      n = new URL(`http://${n}/`).hostname;
    } catch {
      return null;
    }
  }
  n = n.toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n.length === 0 || n.length > 253) return null;
  for (const l of n.split('.')) if (!LABEL.test(l)) return null;
  return n;
}

/** Does the presented dNSName match the (normalized) reference name? */
export function dnsNameMatches(presented: string, reference: string): boolean {
  let p = presented.toLowerCase();
  if (p.endsWith('.')) p = p.slice(0, -1);
  if (p.startsWith('*.')) {
    const rest = p.slice(2);
    // Exactly one wildcard, the whole left-most label, and never over a single remaining label.
    if (rest.includes('*') || !rest.includes('.')) return false;
    if (normalizeDnsName(rest) !== rest) return false;
    const dot = reference.indexOf('.');
    return dot > 0 && reference.slice(dot + 1) === rest;
  }
  if (p.includes('*')) return false;
  return p === reference;
}

/** "DNS:a.example", "IP:127.0.0.1", ... for messages. */
export function describeGeneralName(g: GeneralName): string {
  switch (g.type) {
    case 'dns':
      return `DNS:${g.value}`;
    case 'ip':
      return `IP:${formatIp(g.bytes)}`;
    case 'email':
      return `email:${g.value}`;
    case 'uri':
      return `URI:${g.value}`;
    case 'directory':
      return `DirName:${g.name.text}`;
    default:
      return `other:[${g.tag & 0x1f}]`;
  }
}

export function presentedNames(cert: Certificate): string[] {
  return (cert.subjectAltNames ?? []).map(describeGeneralName);
}

export type ReferenceIdentity = { type: 'ip'; bytes: Uint8Array } | { type: 'dns'; name: string } | { type: 'invalid' };

export function referenceIdentity(serverName: string): ReferenceIdentity {
  const ip = parseIpLiteral(serverName);
  if (ip) return { type: 'ip', bytes: ip };
  const dns = normalizeDnsName(serverName);
  return dns ? { type: 'dns', name: dns } : { type: 'invalid' };
}

/** Does the certificate's subjectAltName cover `serverName` (a DNS name or IP literal)? */
export function certificateMatchesName(cert: Certificate, serverName: string): boolean {
  const ref = referenceIdentity(serverName);
  if (ref.type === 'invalid') return false;
  for (const g of cert.subjectAltNames ?? []) {
    if (ref.type === 'ip') {
      if (g.type === 'ip' && g.bytes.length === ref.bytes.length && g.bytes.every((b, i) => b === ref.bytes[i])) return true;
    } else if (g.type === 'dns' && dnsNameMatches(g.value, ref.name)) return true;
  }
  return false;
}
