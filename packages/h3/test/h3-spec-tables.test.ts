// The constant tables against the RFC text itself (the specs folder): every RFC 9114 error code
// (IANA table, §11.2.3) and every RFC 9204 error code (§8.3 / §6).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { H3Error, QpackError } from '../src/errors.js';

const SPECS = process.env.PETREL_SPECS ?? path.resolve(import.meta.dirname, '../../../../shared/specs');

function rows(file: string, prefix: string): Map<string, number> {
  const out = new Map<string, number>();
  const text = fs.readFileSync(path.join(SPECS, file), 'utf8');
  const re = new RegExp(`\\|\\s*(${prefix}_[A-Z_0-9]*)\\s*\\|\\s*(0x[0-9a-fA-F]+)\\s*\\|`, 'g');
  // Error codes are 0x100 and up; the same tables style also lists settings (0x01, 0x07...).
  for (const m of text.matchAll(re)) if (parseInt(m[2]!, 16) >= 0x100) out.set(m[1]!, parseInt(m[2]!, 16));
  return out;
}

test('H3Error equals the RFC 9114 error code registry', () => {
  const want = rows('rfc9114.txt', 'H3');
  assert.is(want.size, 17);
  assert.equal(new Map(Object.entries(H3Error)), want);
});

test('QpackError equals the RFC 9204 error code registry', () => {
  const want = rows('rfc9204.txt', 'QPACK');
  assert.is(want.size, 3);
  assert.equal(new Map(Object.entries(QpackError)), want);
});

test.run();
