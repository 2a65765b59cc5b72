/**
 * Reads hex dumps out of RFC 8448 (/work/shared/specs/rfc8448.txt, or ../shared/specs relative
 * to the repo). Page breaks (the "[Page N]" footer, form feed and "RFC 8448 ..." header lines)
 * are removed first, so a dump that crosses a page reads as one block.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hex } from '../src/handshake/codec.js';

function specPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../../shared/specs/rfc8448.txt'), '/work/shared/specs/rfc8448.txt'];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error('rfc8448.txt not found');
}

let cleaned: string[] | null = null;
function lines(): string[] {
  if (cleaned) return cleaned;
  const raw = fs.readFileSync(specPath(), 'utf8').split('\n');
  cleaned = raw.filter((l) => !/\[Page \d+\]\s*$/.test(l) && !/^\f?RFC 8448 /.test(l) && l !== '\f').map((l) => l.replace(/\f/g, ''));
  return cleaned;
}

const SECTION_TITLES: Record<number, string> = {
  3: '3.  Simple 1-RTT Handshake',
  4: '4.  Resumed 0-RTT Handshake',
  5: '5.  HelloRetryRequest',
  6: '6.  Client Authentication',
  7: '7.  Compatibility Mode',
};

export function section(n: 3 | 4 | 5 | 6 | 7): string[] {
  const ls = lines();
  const start = ls.findIndex((l) => l === SECTION_TITLES[n]);
  if (start < 0) throw new Error(`section ${n} not found`);
  const next = ls.findIndex((l, i) => i > start && /^\d+\.  \S/.test(l));
  return ls.slice(start, next < 0 ? ls.length : next);
}

const CONT = /^ {9}[0-9a-f]{2}( [0-9a-f]{2})*\s*$/;

/**
 * The hex value of `label (N octets):` inside the `occurrence`-th step whose title line contains
 * `step` (e.g. '{server}  construct a ServerHello'). Checks the octet count.
 */
export function field(sec: string[], step: string, label: string, occurrence = 0): Uint8Array {
  let seen = 0;
  for (let i = 0; i < sec.length; i++) {
    if (!sec[i]!.startsWith('   {') || !sec[i]!.includes(step)) continue;
    if (seen++ < occurrence) continue;
    for (let j = i + 1; j < sec.length && !sec[j]!.startsWith('   {'); j++) {
      const m = /^ {6}(.+?) \((\d+) octets\):\s*(.*)$/.exec(sec[j]!);
      if (!m || m[1] !== label) continue;
      let h = m[3]!;
      for (let k = j + 1; k < sec.length; k++) {
        if (sec[k]!.trim() === '') continue;
        if (!CONT.test(sec[k]!)) break;
        h += ' ' + sec[k]!;
      }
      const v = hex(h);
      if (v.length !== Number(m[2])) throw new Error(`${step} / ${label}: got ${v.length} octets, expected ${m[2]}`);
      return v;
    }
    throw new Error(`label "${label}" not found in step "${step}"`);
  }
  throw new Error(`step "${step}" #${occurrence} not found`);
}

