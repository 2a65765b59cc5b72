/**
 * Minimal strict DER reader (X.690). Used by key loading, SPKI extraction and the X.509 parser.
 * Every read is bounds-checked; malformed input throws DerError (callers turn it into a typed
 * parse error or a TLS alert). No BigInt: INTEGERs are returned as their content bytes.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export interface Tlv {
  tag: number;
  /** Content bytes (a view into the input). */
  value: Uint8Array;
  /** The whole element including tag and length (a view into the input). */
  raw: Uint8Array;
}

export class DerReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number {
    if (this.pos >= this.buf.length) throw new DerError('unexpected end of DER data');
    return this.buf[this.pos]!;
  }

  /** Reads the next element; if `tag` is given it must match. Only single-byte tags (low-tag-number form). */
  read(tag?: number): Tlv {
    const b = this.buf;
    const start = this.pos;
    if (start + 2 > b.length) throw new DerError('truncated DER element');
    const t = b[start]!;
    if ((t & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
    if (tag !== undefined && t !== tag) throw new DerError(`expected DER tag 0x${tag.toString(16)}, got 0x${t.toString(16)}`);
    let len = b[start + 1]!;
    let p = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new DerError('unsupported DER length encoding');
      if (p + n > b.length) throw new DerError('truncated DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
      // DER: minimal length encoding.
      if (len < 0x80 || b[p] === 0) throw new DerError('non-minimal DER length');
      p += n;
    }
    if (p + len > b.length) throw new DerError('DER element overruns its container');
    this.pos = p + len;
    return { tag: t, value: b.subarray(p, p + len), raw: b.subarray(start, p + len) };
  }

  /** Reads the next element if its tag is `tag`, else returns undefined. */
  optional(tag: number): Tlv | undefined {
    if (this.done || this.buf[this.pos] !== tag) return undefined;
    return this.read(tag);
  }

  /** Reads a constructed element and returns a reader over its contents. */
  enter(tag: number): DerReader {
    return new DerReader(this.read(tag).value);
  }

  end(): void {
    if (!this.done) throw new DerError('trailing data in DER element');
  }
}

/** Decodes an OBJECT IDENTIFIER's content bytes to dotted form. */
export function oidToString(v: Uint8Array): string {
  if (v.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (acc === 0 && c === 0x80) throw new DerError('non-minimal OID arc');
    acc = acc * 128 + (c & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if (!(c & 0x80)) {
      if (parts.length === 0) {
        const first = acc < 80 ? Math.floor(acc / 40) : 2;
        parts.push(first, acc - first * 40);
      } else parts.push(acc);
      acc = 0;
    } else if (i === v.length - 1) throw new DerError('truncated OID');
  }
  return parts.join('.');
}

/** Encodes a DER length + tag header around `content`. */
export function derEncode(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const hdr = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : n < 0x10000 ? [tag, 0x82, n >> 8, n & 0xff] : [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(hdr.length + n);
  out.set(hdr, 0);
  out.set(content, hdr.length);
  return out;
}

/** PEM → list of {label, der}. Ignores text outside BEGIN/END blocks. Throws DerError on bad base64. */
export function pemDecode(pem: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) {
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new DerError(`bad base64 in PEM block ${m[1]}`);
    out.push({ label: m[1]!, der: base64Decode(b64) });
  }
  return out;
}

function base64Decode(s: string): Uint8Array {
  // atob exists on Node >= 16 and every browser/runtime we target.
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function pemEncode(label: string, der: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < der.length; i++) bin += String.fromCharCode(der[i]!);
  const b64 = btoa(bin).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// ---- DER encoding helpers (X.690), used by the certificate generator. ----

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** SEQUENCE of already-encoded elements. */
export function derSequence(...elements: Uint8Array[]): Uint8Array {
  return derEncode(Tag.SEQUENCE, concatBytes(...elements));
}

/** SET of already-encoded elements (the caller orders them; one element in practice). */
export function derSet(...elements: Uint8Array[]): Uint8Array {
  return derEncode(Tag.SET, concatBytes(...elements));
}

/** OBJECT IDENTIFIER from dotted form. */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new DerError(`bad OID ${dotted}`);
    return Number(s);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) throw new DerError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: number): void => {
    const tmp = [v & 0x7f];
    v = Math.floor(v / 128);
    while (v > 0) {
      tmp.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (let i = 2; i < arcs.length; i++) push(arcs[i]!);
  return derEncode(Tag.OID, Uint8Array.from(bytes));
}

/** INTEGER from unsigned big-endian magnitude bytes (leading zeros stripped, a 0x00 added if the top bit is set). */
export function derUnsignedInteger(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let m = magnitude.subarray(i);
  if (m.length === 0) m = Uint8Array.of(0);
  if (m[0]! & 0x80) m = concatBytes(Uint8Array.of(0), m);
  return derEncode(Tag.INTEGER, m);
}

/** INTEGER from a small non-negative number. */
export function derSmallInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new DerError(`bad integer ${n}`);
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  return derUnsignedInteger(Uint8Array.from(bytes));
}

export function derBoolean(v: boolean): Uint8Array {
  return Uint8Array.of(Tag.BOOLEAN, 1, v ? 0xff : 0);
}

export function derNull(): Uint8Array {
  return Uint8Array.of(Tag.NULL, 0);
}

export function derOctetString(v: Uint8Array): Uint8Array {
  return derEncode(Tag.OCTET_STRING, v);
}

/** BIT STRING with `unusedBits` unused bits in the last octet. */
export function derBitString(v: Uint8Array, unusedBits = 0): Uint8Array {
  return derEncode(Tag.BIT_STRING, concatBytes(Uint8Array.of(unusedBits), v));
}

export function derUtf8String(s: string): Uint8Array {
  return derEncode(Tag.UTF8String, new TextEncoder().encode(s));
}

/** Context-specific tag: [n] IMPLICIT (primitive) or EXPLICIT/constructed. */
export function derContext(n: number, content: Uint8Array, constructed: boolean): Uint8Array {
  return derEncode((constructed ? 0xa0 : 0x80) | n, content);
}

/** X.509 Time: UTCTime for years 1950-2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
export function derTime(ms: number): Uint8Array {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derEncode(Tag.UTCTime, new TextEncoder().encode(p2(y % 100) + rest));
  return derEncode(Tag.GeneralizedTime, new TextEncoder().encode(String(y).padStart(4, '0') + rest));
}
